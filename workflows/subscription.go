// Package workflows holds the subscription state machine. It is pure: every
// side effect goes through the SaveSubscription local activity.
package workflows

import (
	"errors"
	"fmt"
	"math/big"
	"slices"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/partnerhub/fulfillment/domain"
)

// ActivitySaveSubscription persists a domain.Change (see activities.Activities).
const ActivitySaveSubscription = "SaveSubscription"

// handledLimit bounds the message ids kept for deduplication across runs.
const handledLimit = 256

var (
	statusKey   = temporal.NewSearchAttributeKeyKeyword(SearchSubscriptionStatus)
	partnerKey  = temporal.NewSearchAttributeKeyKeyword(SearchPartnerID)
	customerKey = temporal.NewSearchAttributeKeyKeyword(SearchCustomerID)
	offerKey    = temporal.NewSearchAttributeKeyKeyword(SearchOfferID)
)

// SearchAttributes are the ops search attributes of a subscription at start.
func SearchAttributes(s domain.Subscription) temporal.SearchAttributes {
	return temporal.NewSearchAttributes(
		partnerKey.ValueSet(s.PartnerID),
		customerKey.ValueSet(s.CustomerID),
		offerKey.ValueSet(s.OfferID),
		statusKey.ValueSet(string(s.Status)),
	)
}

// Memo is what ops see beside the workflow in the Temporal UI.
func Memo(s domain.Subscription, plan domain.Plan) map[string]any {
	nickname := ""
	if s.Nickname != nil {
		nickname = *s.Nickname
	}
	return map[string]any{"nickname": nickname, "offer": s.OfferID, "plan": plan.Name}
}

type subscriptionWorkflow struct {
	st   Input
	lock workflow.Mutex
}

// clock is workflow time at the read model's precision (PostgreSQL keeps
// microseconds), so every answer shows the same instant as the database.
func clock(ctx workflow.Context) time.Time {
	return workflow.Now(ctx).UTC().Truncate(time.Microsecond)
}

// SubscriptionWorkflow owns one subscription from purchase to its terminal
// status, one term per run (it continues as new at each renewal).
func SubscriptionWorkflow(ctx workflow.Context, in Input) (domain.Subscription, error) {
	w := &subscriptionWorkflow{st: in, lock: workflow.NewMutex(ctx)}
	if err := w.registerHandlers(ctx); err != nil {
		return domain.Subscription{}, err
	}
	return w.run(ctx)
}

// run reads like the lifecycle: record, wait for fulfillment, live term by
// term, end, cascade.
func (w *subscriptionWorkflow) run(ctx workflow.Context) (domain.Subscription, error) {
	s := &w.st.Subscription
	if !w.st.Recorded {
		if err := w.recordPurchase(ctx); err != nil {
			return *s, err
		}
	}
	for {
		var err error
		switch {
		case s.Status.Terminal():
			return w.finish(ctx)
		case w.st.ParentEnded:
			err = w.locked(ctx, func() error {
				return w.end(ctx, domain.StatusDeactivated, SystemActor, map[string]any{"reason": "parent_ended"})
			})
		case s.Status == domain.StatusPendingFulfillment:
			err = w.awaitFulfillment(ctx)
		case s.Status == domain.StatusActive:
			var renewed bool
			if renewed, err = w.awaitTermEnd(ctx); err == nil && renewed {
				if err = w.awaitHandlers(ctx); err == nil && !s.Status.Terminal() && !w.st.ParentEnded {
					return *s, w.continueAsNew(ctx)
				}
				// A message at the renewal instant ended the subscription: close here
				// rather than carry a terminal status into a new run.
			}
		default:
			return *s, fmt.Errorf("subscription %s: unknown status %q", s.ID, s.Status)
		}
		if err != nil {
			return *s, err
		}
	}
}

func (w *subscriptionWorkflow) recordPurchase(ctx workflow.Context) error {
	s := &w.st.Subscription
	now := clock(ctx)
	actor := w.st.Purchaser.String()
	c := domain.Change{
		Events: []domain.Event{
			w.event(now, "purchased", actor, map[string]any{"quantity": s.Quantity, "plan_id": s.PlanID}),
			w.event(now, "link_issued", SystemActor.String(), map[string]any{"expires_at": s.ActivationDeadline}),
		},
		IssueLinkUntil: &s.ActivationDeadline,
	}
	if w.st.NotifyPublisher {
		c.Notifications = []domain.Notification{w.notification(now, domain.NotifyPurchased)}
	}
	res, err := w.save(ctx, c)
	if err != nil {
		return err
	}
	w.st.Recorded = true
	if s.ParentSubscriptionID != nil && res.ParentStatus.Terminal() {
		// The parent ended before this subscription existed to be signalled.
		w.st.ParentEnded = true
	}
	return nil
}

func (w *subscriptionWorkflow) awaitFulfillment(ctx workflow.Context) error {
	s := &w.st.Subscription
	fired, err := w.awaitUntil(ctx, s.ActivationDeadline, func() bool {
		return s.Status != domain.StatusPendingFulfillment || w.st.ParentEnded
	})
	if err != nil || !fired {
		return err
	}
	return w.locked(ctx, func() error {
		if s.Status != domain.StatusPendingFulfillment {
			return nil
		}
		return w.end(ctx, domain.StatusFulfillmentExpired, SystemActor, nil)
	})
}

// awaitTermEnd waits for the term to end, then renews or expires. It reports
// whether a new term started.
func (w *subscriptionWorkflow) awaitTermEnd(ctx workflow.Context) (bool, error) {
	s := &w.st.Subscription
	fired, err := w.awaitUntil(ctx, *s.TermEnd, func() bool {
		return s.Status != domain.StatusActive || w.st.ParentEnded
	})
	if err != nil || !fired {
		return false, err
	}
	renewed := false
	err = w.locked(ctx, func() error {
		if s.Status != domain.StatusActive || w.st.ParentEnded {
			return nil
		}
		if !s.AutoRenew {
			return w.end(ctx, domain.StatusExpired, SystemActor, nil)
		}
		renewed = true
		return w.renew(ctx)
	})
	return renewed, err
}

// awaitUntil waits for cond or the deadline; fired reports the deadline passed first.
func (w *subscriptionWorkflow) awaitUntil(ctx workflow.Context, deadline time.Time, cond func() bool) (fired bool, err error) {
	wait := deadline.Sub(workflow.Now(ctx))
	if wait <= 0 {
		return !cond(), nil
	}
	// An explicit timer, cancelled when cond wins, so no stale timer wakes
	// the workflow later.
	timerCtx, cancel := workflow.WithCancel(ctx)
	defer cancel()
	timer := workflow.NewTimer(timerCtx, wait)
	err = workflow.Await(ctx, func() bool { return timer.IsReady() || cond() })
	return err == nil && !cond() && timer.IsReady(), err
}

func (w *subscriptionWorkflow) renew(ctx workflow.Context) error {
	s := &w.st.Subscription
	now := clock(ctx)
	start := *s.TermEnd
	s.TermNumber++
	w.startTerm(start)
	charge := w.termCharge(now)
	c := domain.Change{
		Events: []domain.Event{w.event(now, "renewed", SystemActor.String(), map[string]any{
			"term_number": s.TermNumber, "term_start": s.TermStart, "term_end": s.TermEnd, "amount_minor": charge.AmountMinor,
		})},
		Ledger:        []domain.LedgerEntry{charge},
		Notifications: w.notify(now, domain.NotifyRenewed),
	}
	_, err := w.save(ctx, c)
	return err
}

// continueAsNew hands the whole state to a fresh run once every message
// handler has finished and pending signals are drained.
func (w *subscriptionWorkflow) continueAsNew(ctx workflow.Context) error {
	if err := w.awaitHandlers(ctx); err != nil {
		return err
	}
	w.drainSignals(ctx)
	return workflow.NewContinueAsNewError(ctx, SubscriptionWorkflow, w.st)
}

func (w *subscriptionWorkflow) awaitHandlers(ctx workflow.Context) error {
	return workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) })
}

// finish cascades the terminal status to every linked subscription, then lets
// in-flight handlers answer before the workflow closes.
func (w *subscriptionWorkflow) finish(ctx workflow.Context) (domain.Subscription, error) {
	s := &w.st.Subscription
	futures := make([]workflow.Future, 0, len(s.LinkedSubscriptionIDs))
	for _, id := range s.LinkedSubscriptionIDs {
		futures = append(futures, workflow.SignalExternalWorkflow(ctx, WorkflowID(id), "", SignalParentEnded,
			ParentEnded{ParentID: s.ID, Status: s.Status}))
	}
	for i, f := range futures {
		if err := f.Get(ctx, nil); err != nil {
			// A linked subscription that already ended, or never started, needs no signal:
			// one that starts later reads this parent's terminal status when it records itself.
			workflow.GetLogger(ctx).Info("cascade signal not delivered", "linked", s.LinkedSubscriptionIDs[i], "error", err)
		}
	}
	return *s, w.awaitHandlers(ctx)
}

// end moves the subscription to a terminal status. The caller holds the lock.
func (w *subscriptionWorkflow) end(ctx workflow.Context, status domain.Status, actor Actor, detail map[string]any) error {
	s := &w.st.Subscription
	now := clock(ctx)
	c := domain.Change{}
	if status == domain.StatusCancelled && s.Status == domain.StatusActive && s.TermNumber > 0 {
		refund := w.termRefund(now)
		if refund.AmountMinor != 0 {
			c.Ledger = append(c.Ledger, refund)
			if detail == nil {
				detail = map[string]any{}
			}
			detail["refund_minor"] = -refund.AmountMinor
		}
	}
	s.Status = status
	c.Events = append(c.Events, w.event(now, string(status), actor.String(), detail))
	c.Notifications = w.notify(now, terminalNotification[status])
	if _, err := w.save(ctx, c); err != nil {
		return err
	}
	return workflow.UpsertTypedSearchAttributes(ctx, statusKey.ValueSet(string(status)))
}

var terminalNotification = map[domain.Status]string{
	domain.StatusCancelled:          domain.NotifyCancelled,
	domain.StatusDeactivated:        domain.NotifyDeactivated,
	domain.StatusExpired:            domain.NotifyExpired,
	domain.StatusFulfillmentExpired: domain.NotifyFulfillmentExpired,
}

// startTerm sets term bounds and the cancellation window from the plan.
func (w *subscriptionWorkflow) startTerm(start time.Time) {
	s := &w.st.Subscription
	end := domain.MustAdd(start, w.st.Plan.Term)
	window := domain.MustAdd(start, w.st.Plan.CancellationWindow)
	s.TermStart, s.TermEnd, s.CancellationWindowEndsAt = &start, &end, &window
	w.st.TermBilledMinor = 0
}

// termCharge is the full charge of the current term: unit price × quantity.
func (w *subscriptionWorkflow) termCharge(now time.Time) domain.LedgerEntry {
	s := w.st.Subscription
	amount := w.st.Plan.UnitPriceMinor * int64(s.Quantity)
	w.st.TermBilledMinor += amount
	return w.ledger(now, domain.LedgerCharge, fmt.Sprintf("charge:%s:%d", s.ID, s.TermNumber), amount)
}

// termRefund gives back everything billed for the current term.
func (w *subscriptionWorkflow) termRefund(now time.Time) domain.LedgerEntry {
	s := w.st.Subscription
	amount := -w.st.TermBilledMinor
	w.st.TermBilledMinor = 0
	return w.ledger(now, domain.LedgerRefund, fmt.Sprintf("refund:%s:%d", s.ID, s.TermNumber), amount)
}

// proration prices a quantity change for the rest of the term:
// unit price × delta × remaining / term length, truncated toward zero to the
// minor unit (the customer is never charged a fraction of a cent).
func (w *subscriptionWorkflow) proration(now time.Time, delta int, key string) (domain.LedgerEntry, bool) {
	s := w.st.Subscription
	if s.Status != domain.StatusActive || s.TermStart == nil || delta == 0 {
		return domain.LedgerEntry{}, false
	}
	length := s.TermEnd.Sub(*s.TermStart)
	remaining := s.TermEnd.Sub(now)
	if remaining <= 0 || length <= 0 {
		return domain.LedgerEntry{}, false
	}
	amount := prorate(w.st.Plan.UnitPriceMinor*int64(delta), remaining, length)
	if amount == 0 {
		return domain.LedgerEntry{}, false
	}
	if key == "" {
		// A change without a message id is keyed by the quantity_changed event
		// that follows, so two of them in one term do not share a ledger key.
		key = fmt.Sprintf("event-%d", w.st.EventSeq+1)
	}
	w.st.TermBilledMinor += amount
	return w.ledger(now, domain.LedgerProration, fmt.Sprintf("proration:%s:%d:%s", s.ID, s.TermNumber, key), amount), true
}

// prorate computes full × remaining / length in milliseconds, truncated toward zero.
// The product is taken in big integers: unit price × seats × milliseconds of
// a year overflows int64 for large orders.
func prorate(full int64, remaining, length time.Duration) int64 {
	n := new(big.Int).Mul(big.NewInt(full), big.NewInt(remaining.Milliseconds()))
	return n.Quo(n, big.NewInt(length.Milliseconds())).Int64()
}

func (w *subscriptionWorkflow) ledger(now time.Time, kind, id string, amount int64) domain.LedgerEntry {
	s := w.st.Subscription
	return domain.LedgerEntry{
		ID: id, SubscriptionID: s.ID, TermNumber: s.TermNumber, Kind: kind, AmountMinor: amount,
		Currency: w.st.Plan.Currency, PeriodStart: *s.TermStart, PeriodEnd: *s.TermEnd, CreatedAt: now,
	}
}

func (w *subscriptionWorkflow) event(now time.Time, typ, actor string, detail map[string]any) domain.Event {
	s := w.st.Subscription
	w.st.EventSeq++
	return domain.Event{
		SubscriptionID: s.ID, Key: fmt.Sprintf("%s:%d", s.ID, w.st.EventSeq),
		At: now, Type: typ, Actor: actor, Detail: detail,
	}
}

func (w *subscriptionWorkflow) notification(now time.Time, typ string) domain.Notification {
	s := w.st.Subscription
	return domain.Notification{ID: fmt.Sprintf("msg_%s_%d", s.ID, w.st.EventSeq), Type: typ, OccurredAt: now}
}

func (w *subscriptionWorkflow) notify(now time.Time, typ string) []domain.Notification {
	if !w.st.NotifyPublisher || typ == "" {
		return nil
	}
	return []domain.Notification{w.notification(now, typ)}
}

// save persists the current snapshot with the change's additions.
func (w *subscriptionWorkflow) save(ctx workflow.Context, c domain.Change) (domain.SaveResult, error) {
	s := &w.st.Subscription
	s.Version++
	s.UpdatedAt = clock(ctx)
	c.Subscription = *s
	c.Subscription.LinkedSubscriptionIDs = slices.Clone(s.LinkedSubscriptionIDs)
	lctx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout: 10 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: 200 * time.Millisecond, BackoffCoefficient: 2, MaximumInterval: 10 * time.Second,
		},
	})
	var res domain.SaveResult
	err := workflow.ExecuteLocalActivity(lctx, ActivitySaveSubscription, c).Get(ctx, &res)
	if err != nil {
		return res, fmt.Errorf("save subscription %s: %w", s.ID, err)
	}
	return res, nil
}

// locked runs fn under the workflow's mutex so a handler and a timer never
// interleave their transitions.
func (w *subscriptionWorkflow) locked(ctx workflow.Context, fn func() error) error {
	if err := w.lock.Lock(ctx); err != nil {
		return err
	}
	defer w.lock.Unlock()
	return fn()
}

func (w *subscriptionWorkflow) handled(messageID string) bool {
	return messageID != "" && slices.Contains(w.st.Handled, messageID)
}

func (w *subscriptionWorkflow) markHandled(messageID string) {
	if messageID == "" {
		return
	}
	w.st.Handled = append(w.st.Handled, messageID)
	if len(w.st.Handled) > handledLimit {
		w.st.Handled = slices.Clone(w.st.Handled[len(w.st.Handled)-handledLimit:])
	}
}

func (w *subscriptionWorkflow) drainSignals(ctx workflow.Context) {
	ch := workflow.GetSignalChannel(ctx, SignalParentEnded)
	var msg ParentEnded
	for ch.ReceiveAsync(&msg) {
		w.st.ParentEnded = true
	}
}

func problem(code, format string, args ...any) error {
	return temporal.NewNonRetryableApplicationError(fmt.Sprintf(format, args...), code, nil)
}

// ProblemCode extracts the contract's problem code from a workflow error.
func ProblemCode(err error) (string, string, bool) {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		switch appErr.Type() {
		case ErrInvalidState, ErrCancellationWindowClosed, ErrValidationFailed:
			return appErr.Type(), appErr.Message(), true
		}
	}
	return "", "", false
}
