// Package worker registers the subscription workflow and its activities on
// the task queue.
package worker

import (
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/partnerhub/fulfillment/activities"
	"github.com/partnerhub/fulfillment/workflows"
)

// New builds a worker for the subscription task queue.
func New(c client.Client, taskQueue string, acts *activities.Activities, opts sdkworker.Options) sdkworker.Worker {
	w := sdkworker.New(c, taskQueue, opts)
	Register(w, acts)
	return w
}

// Register puts the workflow and activities on a registry (a worker or a replayer).
func Register(r interface {
	RegisterWorkflowWithOptions(any, workflow.RegisterOptions)
	RegisterActivityWithOptions(any, activity.RegisterOptions)
}, acts *activities.Activities) {
	r.RegisterWorkflowWithOptions(workflows.SubscriptionWorkflow, workflow.RegisterOptions{Name: workflows.WorkflowType})
	if acts != nil {
		r.RegisterActivityWithOptions(acts.SaveSubscription, activity.RegisterOptions{Name: workflows.ActivitySaveSubscription})
	}
}
