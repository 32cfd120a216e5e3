package api

import (
	"context"
	"fmt"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/partnerhub/fulfillment/domain"
	"github.com/partnerhub/fulfillment/workflows"
)

// update sends one Update to a subscription's workflow and maps its answer:
// a validator's or handler's refusal to its problem code; a closed workflow
// to invalid_state; anything else to unavailable.
func (s *Server) update(ctx context.Context, subscriptionID, name, updateID string, arg any) (domain.Subscription, error) {
	ctx, cancel := context.WithTimeout(ctx, s.UpdateTimeout)
	defer cancel()
	sub, err := s.sendUpdate(ctx, subscriptionID, name, updateID, arg)
	if err == nil {
		return sub, nil
	}
	if unchanged, ok := workflows.Unchanged(err); ok {
		return unchanged, nil // a no-op: the subscription as it stands
	}
	if code, msg, ok := workflows.ProblemCode(err); ok {
		return sub, problem(code, msg)
	}
	// A workflow that has closed takes no messages: its subscription ended.
	lookup, cancelLookup := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancelLookup()
	if current, rerr := s.Store.Subscription(lookup, subscriptionID); rerr == nil && current.Status.Terminal() {
		return current, problem(CodeInvalidState, "subscription is "+string(current.Status))
	}
	return sub, unavailable(fmt.Errorf("update %s of %s: %w", name, subscriptionID, err))
}

// sendUpdate sends an Update and waits for its result. A message turned away
// while the workflow continues as new, or one Temporal stopped waiting for on
// its own (an Update admitted as the run closed is aborted), is sent again
// under the same Update id, with backoff, until it is answered or ctx ends:
// Temporal and the workflow's own message ids apply it at most once.
func (s *Server) sendUpdate(ctx context.Context, subscriptionID, name, updateID string, arg any) (domain.Subscription, error) {
	var sub domain.Subscription
	for wait := 20 * time.Millisecond; ; wait = min(2*wait, 500*time.Millisecond) {
		// Each attempt waits a bounded time: an Update the server lost (its
		// registry cleared with the workflow's cached state) is never answered,
		// and only sending it again under the same id brings its answer.
		attempt, cancel := context.WithTimeout(ctx, updateAttempt)
		handle, err := s.Temporal.UpdateWorkflow(attempt, client.UpdateWorkflowOptions{
			WorkflowID: workflows.WorkflowID(subscriptionID), UpdateID: updateID, UpdateName: name,
			Args: []any{arg}, WaitForStage: client.WorkflowUpdateStageCompleted,
		})
		if err == nil {
			err = handle.Get(attempt, &sub)
		}
		cancel()
		if !workflows.ComeAgain(err) && !(ctx.Err() == nil && mayStillApply(err)) {
			return sub, err
		}
		select {
		case <-ctx.Done():
			return sub, ctx.Err()
		case <-time.After(wait):
		}
	}
}

// updateAttempt bounds one wait for an Update's answer (see sendUpdate).
const updateAttempt = 5 * time.Second
