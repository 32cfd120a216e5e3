package worker

import (
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/workflow"

	"github.com/partnerhub/fulfillment/activities"
	"github.com/partnerhub/fulfillment/workflows"
)

// RegisterReconciliation puts the reconciliation workflow and (when rec is
// set) its activities on a registry.
func RegisterReconciliation(r interface {
	RegisterWorkflowWithOptions(any, workflow.RegisterOptions)
	RegisterActivityWithOptions(any, activity.RegisterOptions)
}, rec *activities.Reconciler) {
	r.RegisterWorkflowWithOptions(workflows.ReconciliationWorkflow, workflow.RegisterOptions{Name: workflows.ReconciliationWorkflowType})
	if rec != nil {
		r.RegisterActivityWithOptions(rec.BeginReconciliation, activity.RegisterOptions{Name: workflows.ActivityBeginReconciliation})
		r.RegisterActivityWithOptions(rec.ReconcileBatch, activity.RegisterOptions{Name: workflows.ActivityReconcileBatch})
		r.RegisterActivityWithOptions(rec.ReconcileRunningWorkflows, activity.RegisterOptions{Name: workflows.ActivityReconcileWorkflows})
		r.RegisterActivityWithOptions(rec.FinishReconciliation, activity.RegisterOptions{Name: workflows.ActivityFinishReconciliation})
	}
}
