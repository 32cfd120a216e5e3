package main

import (
	"context"
	"math"
	"strings"
	"time"

	"github.com/google/uuid"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/partnerhub/fulfillment/workflows"
)

// The ceiling: a workflow with the purchase's message shape and nothing else.
// Update-with-Start "purchase" answers once the purchase step ran; Updates
// "assign_licenses" and "confirm_fulfillment" each run one step under a
// mutex; then the run waits on a term timer, as a subscription does. A step
// is one no-op activity, regular (the service's write path now) or local (its
// old one), with the service's options.
const (
	ceilingWorkflowType = "BenchCeiling"
	noopActivityName    = "BenchNoop"
)

func noopActivity(context.Context) error { return nil }

// paddedActivity is the no-op of the x-payloads phase, with an input.
func paddedActivity(context.Context, []byte) error { return nil }

const paddedActivityName = "BenchNoopPadded"

// ceilingInput picks the variant. Extras adds what the service's workflow
// does beside its three writes, to tell the engine's share of the gap from
// the service's own: a GetVersion (a marker and a TemporalChangeVersion
// search attribute upsert; the service's runs asked one until their code
// paths were carried in workflows.State, and the runs of subscriptions sold
// before still do; kept so the variant measures what it always measured),
// the status search attribute upserted at activation, and a state-sized
// input (Pad) and memo.
type ceilingInput struct {
	Local  bool
	Extras bool
	Pad    []byte
	// One of the extras alone (the x- phases, to tell their costs apart):
	// search attributes at start, memo at start, status upsert at activation,
	// GetVersion; Payload pads each activity's input and each Update's
	// result to the service's sizes (about 2.5 and 1.5 KB).
	SAs, Memo, Upsert, Version bool
	Payload                    int
}

func (in ceilingInput) sas() bool     { return in.Extras || in.SAs }
func (in ceilingInput) memo() bool    { return in.Extras || in.Memo }
func (in ceilingInput) upsert() bool  { return in.Extras || in.Upsert }
func (in ceilingInput) version() bool { return in.Extras || in.Version }

var ceilingStatusKey = temporal.NewSearchAttributeKeyKeyword(workflows.SearchSubscriptionStatus)

// CeilingWorkflow is the no-op subscription.
func CeilingWorkflow(ctx workflow.Context, in ceilingInput) error {
	local := in.Local
	var pad []byte // each activity's input; the Updates answer a string of the same length
	if in.Payload > 0 {
		pad = make([]byte, in.Payload)
	}
	answer := "ok" + strings.Repeat(" ", in.Payload/2) // "ok" as before unless padded
	var recorded, licensed, confirmed bool
	lock := workflow.NewMutex(ctx)
	name, args := noopActivityName, []any{} // the regular ceiling's activity takes no input, as before the x- phases
	if pad != nil {
		name, args = paddedActivityName, []any{pad}
	}
	step := func(ctx workflow.Context) error {
		retry := &temporal.RetryPolicy{
			InitialInterval: 200 * time.Millisecond, BackoffCoefficient: 2, MaximumInterval: 10 * time.Second,
			MaximumAttempts: math.MaxInt32,
		}
		if local {
			lctx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
				ScheduleToCloseTimeout: 365 * 24 * time.Hour, StartToCloseTimeout: 10 * time.Second, RetryPolicy: retry,
			})
			return workflow.ExecuteLocalActivity(lctx, name, args...).Get(ctx, nil)
		}
		actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: 10 * time.Second, RetryPolicy: retry})
		return workflow.ExecuteActivity(actx, name, args...).Get(ctx, nil)
	}
	message := func(done *bool) func(ctx workflow.Context, n int) (string, error) {
		return func(ctx workflow.Context, _ int) (string, error) {
			if err := workflow.Await(ctx, func() bool { return recorded }); err != nil {
				return "", err
			}
			if err := lock.Lock(ctx); err != nil {
				return "", err
			}
			defer lock.Unlock()
			if err := step(ctx); err != nil {
				return "", err
			}
			*done = true
			return answer, nil
		}
	}
	if err := workflow.SetUpdateHandler(ctx, workflows.UpdatePurchase, func(ctx workflow.Context) (string, error) {
		return "recorded" + answer[2:], workflow.Await(ctx, func() bool { return recorded })
	}); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandler(ctx, workflows.UpdateAssignLicenses, message(&licensed)); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandler(ctx, workflows.UpdateConfirmFulfillment, message(&confirmed)); err != nil {
		return err
	}
	if in.version() {
		_ = workflow.GetVersion(ctx, "bench-extras", workflow.DefaultVersion, 1)
	}
	if err := step(ctx); err != nil {
		return err
	}
	recorded = true
	if err := workflow.Await(ctx, func() bool { return licensed && confirmed }); err != nil {
		return err
	}
	if in.upsert() {
		if err := workflow.UpsertTypedSearchAttributes(ctx, ceilingStatusKey.ValueSet("active")); err != nil {
			return err
		}
	}
	return workflow.Sleep(ctx, 365*24*time.Hour)
}

// ceilingFlow drives one no-op subscription through its three messages.
func ceilingFlow(c client.Client, taskQueue string, in ceilingInput) flow {
	return func(ctx context.Context, timed func(string, time.Duration)) (string, error) {
		id := "bench-ceiling/" + uuid.NewString()
		t := time.Now()
		opts := client.StartWorkflowOptions{
			ID: id, TaskQueue: taskQueue,
			WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		}
		if in.sas() {
			opts.TypedSearchAttributes = temporal.NewSearchAttributes(
				temporal.NewSearchAttributeKeyKeyword(workflows.SearchPartnerID).ValueSet("fabrikam"),
				temporal.NewSearchAttributeKeyKeyword(workflows.SearchCustomerID).ValueSet("woodgrove"),
				temporal.NewSearchAttributeKeyKeyword(workflows.SearchOfferID).ValueSet("analytics"),
				ceilingStatusKey.ValueSet("pending_fulfillment"))
		}
		if in.memo() {
			opts.Memo = map[string]any{"nickname": "", "offer": "analytics", "plan": "Annual"}
		}
		start := c.NewWithStartWorkflowOperation(opts, ceilingWorkflowType, in)
		h, err := c.UpdateWithStartWorkflow(ctx, client.UpdateWithStartWorkflowOptions{
			StartWorkflowOperation: start,
			UpdateOptions: client.UpdateWorkflowOptions{
				UpdateID: "purchase:" + id, UpdateName: workflows.UpdatePurchase, WaitForStage: client.WorkflowUpdateStageCompleted,
			},
		})
		if err == nil {
			err = h.Get(ctx, nil)
		}
		if err != nil {
			return id, err
		}
		timed("purchase", time.Since(t))
		for _, m := range []struct{ kind, name string }{
			{"licenses", workflows.UpdateAssignLicenses}, {"activate", workflows.UpdateConfirmFulfillment},
		} {
			t = time.Now()
			h, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
				WorkflowID: id, UpdateID: uuid.NewString(), UpdateName: m.name, Args: []any{1},
				WaitForStage: client.WorkflowUpdateStageCompleted,
			})
			if err == nil {
				err = h.Get(ctx, nil)
			}
			if err != nil {
				return id, err
			}
			timed(m.kind, time.Since(t))
		}
		return id, nil
	}
}
