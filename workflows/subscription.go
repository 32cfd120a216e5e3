// Package workflows holds the subscription state machine. It is pure: every
// side effect goes through the SaveSubscription activity.
package workflows

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/partnerhub/fulfillment/domain"
)

// ActivitySaveSubscription persists a domain.Change (see activities.Activities).
const ActivitySaveSubscription = "SaveSubscription"

// durableSave is the version of the write path. DefaultVersion: a local
// activity, the state changed before the write (runs started before it).
// 1: a regular activity retried without limit, the state adopted only after
// the write, no-op messages refused by validators. A run whose input
// carries State.SavesDurably takes 1 without asking (no marker).
const (
	durableSaveChange  = "durable-save"
	durableSaveVersion = workflow.Version(1)
)

// renewInPlace is the version of the renewal. DefaultVersion: the run
// continues as new right after each renewal, one term per run (runs that
// renewed before it). 1: the run renews in place and waits for the next
// deadline; it continues as new only when Temporal suggests it or after
// updatesPerRun Updates. Asked right after a renewal is saved, so a history
// recorded before it (no marker there, a continue-as-new after the renewal)
// replays unchanged, and a run started before it that is still waiting for
// its term end renews in place. A run whose input carries
// State.RenewsInPlace renews in place without asking (no marker).
const (
	renewInPlaceChange  = "renew-in-place"
	renewInPlaceVersion = workflow.Version(1)
)

// updatesPerRun is how many accepted Updates a run takes before it continues
// as new, well below the server's limit per run (2,000 by default) whatever
// the server suggests.
const updatesPerRun = 500

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
	st   State
	lock workflow.Mutex
	// updates counts the Updates this run accepted.
	updates int
	// closing is set while the run drains its handlers to continue as new:
	// validators then ask new messages to come again to the next run.
	closing bool
	// inFlight is the state a transition's write in flight leaves (durable
	// path), adopted when the write returns: validators judge on it.
	inFlight *State
	// renewed is set when this run started a new term on the old renewal
	// path (renewInPlace DefaultVersion): the run then continues as new.
	renewed bool
}

// clock is workflow time at the read model's precision (PostgreSQL keeps
// microseconds), so every answer shows the same instant as the database.
func clock(ctx workflow.Context) time.Time {
	return workflow.Now(ctx).UTC().Truncate(time.Microsecond)
}

// SubscriptionWorkflow owns one subscription from purchase to its terminal
// status. A run lives as many terms as its history allows: it renews in
// place and continues as new only when Temporal suggests it (history size or
// length) or after updatesPerRun Updates (runs that renewed before
// renewInPlace continued as new at each renewal, one term per run).
func SubscriptionWorkflow(ctx workflow.Context, st State) (domain.Subscription, error) {
	w := &subscriptionWorkflow{st: st, lock: workflow.NewMutex(ctx)}
	if err := w.registerHandlers(ctx); err != nil {
		return domain.Subscription{}, err
	}
	// A run whose input carries the write path asks no version (no marker,
	// no TemporalChangeVersion upsert). One whose input does not asks as
	// before, and carries a durable answer to the runs after it.
	w.st.SavesDurably = w.st.SavesDurably ||
		workflow.GetVersion(ctx, durableSaveChange, workflow.DefaultVersion, durableSaveVersion) == durableSaveVersion
	return w.run(ctx)
}

// durable reports the write path of this run (see durableSave), fixed at its
// start and carried in the state.
func (w *subscriptionWorkflow) durable() bool { return w.st.SavesDurably }

// run reads like the lifecycle: record, wait for fulfillment, live the term,
// end, cascade; a run that has done its share hands over to the next.
func (w *subscriptionWorkflow) run(ctx workflow.Context) (domain.Subscription, error) {
	if !w.st.Recorded {
		if err := w.recordPurchase(ctx); err != nil {
			return w.st.Subscription, err
		}
	}
	for {
		var err error
		w.receiveSignals(ctx)
		switch s := w.st.Subscription; {
		case s.Status.Terminal():
			return w.finish(ctx)
		case w.st.ParentEnded:
			err = w.endBySystem(ctx, domain.StatusDeactivated, map[string]any{"reason": "parent_ended"})
		case w.shouldContinueAsNew(ctx):
			if err = w.drainForContinueAsNew(ctx); err == nil && !w.st.Subscription.Status.Terminal() && !w.st.ParentEnded {
				return w.st.Subscription, workflow.NewContinueAsNewError(ctx, WorkflowType, w.st)
			}
			// A message during the drain ended the subscription: close in this run.
			w.closing = false
		case s.Status == domain.StatusPendingFulfillment:
			err = w.awaitFulfillment(ctx)
		case s.Status == domain.StatusActive:
			err = w.awaitTermEnd(ctx)
		case s.Status == domain.StatusSuspended:
			err = w.awaitPayment(ctx)
		default:
			return s, fmt.Errorf("subscription %s: unknown status %q", s.ID, s.Status)
		}
		if err != nil {
			return w.st.Subscription, err
		}
	}
}

// shouldContinueAsNew: when Temporal suggests it (history size or count,
// Updates), after updatesPerRun Updates, or after a renewal on the old
// renewal path (renewInPlace DefaultVersion, one term per run). A renewal
// in place does not end the run.
func (w *subscriptionWorkflow) shouldContinueAsNew(ctx workflow.Context) bool {
	return w.renewed || w.updates >= updatesPerRun || workflow.GetInfo(ctx).GetContinueAsNewSuggested()
}

// drainForContinueAsNew turns new messages away (they come again to the next
// run), lets every running handler finish and takes in pending signals.
func (w *subscriptionWorkflow) drainForContinueAsNew(ctx workflow.Context) error {
	w.closing = true
	if err := w.awaitHandlers(ctx); err != nil {
		return err
	}
	w.receiveSignals(ctx)
	return nil
}

func (w *subscriptionWorkflow) recordPurchase(ctx workflow.Context) error {
	t := w.begin(ctx)
	s := t.sub()
	t.event(domain.EventPurchased, w.st.Purchaser.String(), map[string]any{"quantity": s.Quantity, "plan_id": s.PlanID})
	t.event(domain.EventLinkIssued, SystemActor.String(), map[string]any{"expires_at": s.ActivationDeadline})
	t.notify(domain.NotifyPurchased)
	deadline := s.ActivationDeadline
	t.change.IssueLinkUntil = &deadline
	t.next.Recorded = true
	res, err := w.commit(ctx, t)
	if err != nil {
		return err
	}
	if s.ParentSubscriptionID != nil && res.ParentStatus.Terminal() {
		// The parent ended before this subscription existed to be signalled.
		w.st.ParentEnded = true
	}
	if res.ParentStatus == domain.StatusActive {
		w.st.ParentActive = true // it started billing before this subscription existed
	}
	if res.BillingAccountID != nil && w.st.Subscription.BillingAccountID == nil {
		// The write placed it on the customer's default account: carry it.
		w.st.Subscription.BillingAccountID = res.BillingAccountID
	}
	return nil
}

func (w *subscriptionWorkflow) awaitFulfillment(ctx workflow.Context) error {
	fired, err := w.awaitUntil(ctx, w.st.Subscription.ActivationDeadline, func() bool {
		return w.st.Subscription.Status != domain.StatusPendingFulfillment || w.st.ParentEnded || w.waitsOnlyForParent(ctx)
	})
	if err != nil {
		return err
	}
	if !fired && w.waitsOnlyForParent(ctx) {
		// Both callbacks were in, waiting for the parent, which is now active.
		return w.locked(ctx, func() error {
			t := w.begin(ctx)
			if t.startBilling(); !t.changed() {
				return nil
			}
			_, err := w.commit(ctx, t)
			return err
		})
	}
	if !fired {
		return nil
	}
	return w.locked(ctx, func() error {
		if w.st.Subscription.Status != domain.StatusPendingFulfillment {
			return nil
		}
		return w.end(ctx, domain.StatusFulfillmentExpired, SystemActor, nil)
	})
}

// waitsOnlyForParent: both callbacks are in and the parent has just become
// active, so billing can start (durable runs only; before, a linked
// subscription billed without waiting).
func (w *subscriptionWorkflow) waitsOnlyForParent(ctx workflow.Context) bool {
	return w.durable() && w.st.Subscription.ParentSubscriptionID != nil && w.begin(ctx).readyToBill()
}

// nextDeadline is the earliest instant an active subscription must act on
// its own: the term end, or an earlier one of its other deadlines (zero
// when not set): the end of a pending plan change's veto window, the start
// of the term's next billing period.
// Without any, it is the term end, as it always was, so recorded histories
// replay with the same timers. awaitTermEnd acts on whichever is due.
func (w *subscriptionWorkflow) nextDeadline() time.Time {
	next := *w.st.Subscription.TermEnd
	for _, d := range []time.Time{w.st.planDeadline(), w.st.periodDeadline()} {
		if !d.IsZero() && d.Before(next) {
			next = d
		}
	}
	return next
}

// awaitTermEnd waits for the next deadline: a plan change's veto window
// ending settles the change; a billing period starting is charged; the term
// ending renews (in place: the main loop then waits for the new term's
// first deadline in this run) or expires. A message that moves the deadline (a plan
// change requested, refused or accepted) ends the wait, and the main loop
// waits again for the new one.
func (w *subscriptionWorkflow) awaitTermEnd(ctx workflow.Context) error {
	deadline := w.nextDeadline()
	fired, err := w.awaitUntil(ctx, deadline, func() bool {
		return w.st.Subscription.Status != domain.StatusActive || w.st.ParentEnded || !w.nextDeadline().Equal(deadline)
	})
	if err != nil || !fired {
		return err
	}
	return w.locked(ctx, func() error {
		if w.st.Subscription.Status != domain.StatusActive || w.st.ParentEnded {
			return nil
		}
		if veto := w.st.planDeadline(); !veto.IsZero() && !workflow.Now(ctx).Before(veto) {
			t := w.begin(ctx)
			t.settlePlanChange(SystemActor)
			_, err := w.commit(ctx, t)
			return err
		}
		if period := w.st.periodDeadline(); !period.IsZero() && !workflow.Now(ctx).Before(period) {
			t := w.begin(ctx)
			t.chargePeriod()
			_, err := w.commit(ctx, t)
			return err
		}
		if workflow.Now(ctx).Before(*w.st.Subscription.TermEnd) {
			return nil // the deadline moved while this waited for the lock
		}
		if !w.st.Subscription.AutoRenew {
			return w.end(ctx, domain.StatusExpired, SystemActor, nil)
		}
		t := w.begin(ctx)
		t.renew()
		if _, err := w.commit(ctx, t); err != nil {
			return err
		}
		// A run whose input carries the renewal in place asks no version.
		// Otherwise it asks as before: histories recorded before renewInPlace
		// have no marker here and continued as new, they replay with
		// DefaultVersion; a new renewal stays in this run and waits for the
		// next deadline, and the state carries that answer (this run asks
		// no more, as GetVersion would answer the same again without a
		// command; the runs after it ask not at all). Set under the lock,
		// after the renewal's commit: every transition begins and commits
		// under it, so none overwrites it.
		if w.st.RenewsInPlace {
			return nil
		}
		if workflow.GetVersion(ctx, renewInPlaceChange, workflow.DefaultVersion, renewInPlaceVersion) == workflow.DefaultVersion {
			w.renewed = true
		} else {
			w.st.RenewsInPlace = true
		}
		return nil
	})
}

// awaitPayment waits, suspended, for the payment until the grace period ends;
// then the subscription ends (unsubscribed) and its linked ones with it.
// Nothing renews meanwhile: a reinstated subscription whose term ended
// renews at once.
func (w *subscriptionWorkflow) awaitPayment(ctx workflow.Context) error {
	fired, err := w.awaitUntil(ctx, *w.st.GraceEndsAt, func() bool {
		return w.st.Subscription.Status != domain.StatusSuspended || w.st.ParentEnded
	})
	if err != nil || !fired {
		return err
	}
	return w.locked(ctx, func() error {
		if w.st.Subscription.Status != domain.StatusSuspended {
			return nil
		}
		return w.end(ctx, domain.StatusUnsubscribed, SystemActor, map[string]any{"reason": "payment_not_received"})
	})
}

// awaitUntil waits for cond or the deadline; fired reports the deadline
// passed first. A run that should continue as new stops waiting too: the next
// run waits for the same deadline.
func (w *subscriptionWorkflow) awaitUntil(ctx workflow.Context, deadline time.Time, cond func() bool) (fired bool, err error) {
	done := func() bool {
		w.receiveSignals(ctx)
		return cond() || w.shouldContinueAsNew(ctx)
	}
	wait := deadline.Sub(workflow.Now(ctx))
	if wait <= 0 {
		return !done(), nil
	}
	// An explicit timer, cancelled when cond wins, so no stale timer wakes
	// the workflow later.
	timerCtx, cancel := workflow.WithCancel(ctx)
	defer cancel()
	timer := workflow.NewTimer(timerCtx, wait)
	err = workflow.Await(ctx, func() bool { return timer.IsReady() || done() })
	return err == nil && !done() && timer.IsReady(), err
}

func (w *subscriptionWorkflow) awaitHandlers(ctx workflow.Context) error {
	return workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) })
}

// finish cascades the terminal status to every linked subscription, then lets
// in-flight handlers answer before the workflow closes.
func (w *subscriptionWorkflow) finish(ctx workflow.Context) (domain.Subscription, error) {
	s := w.st.Subscription
	msg := ParentEnded{ParentID: s.ID, Status: s.Status}
	if w.durable() {
		msg.Refund = s.TermNumber == 0 || s.Status == domain.StatusCancelled
	}
	w.signalLinked(ctx, SignalParentEnded, msg)
	return w.st.Subscription, w.awaitHandlers(ctx)
}

// signalLinked sends a signal to every linked subscription and waits for the
// sends. A linked subscription that already ended, or never started, needs
// none: one that starts later reads this parent's status when it records itself.
func (w *subscriptionWorkflow) signalLinked(ctx workflow.Context, name string, msg any) {
	ids := w.st.Subscription.LinkedSubscriptionIDs
	futures := make([]workflow.Future, 0, len(ids))
	for _, id := range ids {
		futures = append(futures, workflow.SignalExternalWorkflow(ctx, WorkflowID(id), "", name, msg))
	}
	for i, f := range futures {
		if err := f.Get(ctx, nil); err != nil {
			workflow.GetLogger(ctx).Info("signal to a linked subscription not delivered", "signal", name, "linked", ids[i], "error", err)
		}
	}
}

// endBySystem ends the subscription on the workflow's own account.
func (w *subscriptionWorkflow) endBySystem(ctx workflow.Context, status domain.Status, detail map[string]any) error {
	return w.locked(ctx, func() error { return w.end(ctx, status, SystemActor, detail) })
}

// end moves the subscription to a terminal status. The caller holds the lock.
func (w *subscriptionWorkflow) end(ctx workflow.Context, status domain.Status, actor Actor, detail map[string]any) error {
	t := w.begin(ctx)
	t.end(status, actor, detail)
	_, err := w.commit(ctx, t)
	return err
}

// begin starts a transition from the saved state at the current time.
func (w *subscriptionWorkflow) begin(ctx workflow.Context) *transition {
	t := newTransition(w.st, clock(ctx))
	t.parentGate = w.durable()
	return t
}

// commit saves a transition and only then adopts its state, then tells ops:
// the status search attribute when the status moved, the memo when the
// nickname did.
func (w *subscriptionWorkflow) commit(ctx workflow.Context, t *transition) (domain.SaveResult, error) {
	s := t.sub()
	s.Version++
	s.UpdatedAt = t.now
	// The snapshot records the price of the plan this transition leaves the
	// workflow carrying (what it charges), its term (which terms and periods
	// follow) and its quantity bounds (which changes must keep to), so the
	// read model never takes them from a catalog row re-seeded since. Only
	// the activity's input and the carried state change: replay compares
	// neither.
	s.UnitPriceMinor, s.Currency, s.PlanTerm, s.MinQuantity, s.MaxQuantity = nil, nil, nil, nil, nil
	if p := t.next.Plan; p.ID == s.PlanID {
		if p.Currency != "" {
			price, currency := p.UnitPriceMinor, p.Currency
			s.UnitPriceMinor, s.Currency = &price, &currency
		}
		if p.Term != "" {
			term := p.Term
			s.PlanTerm = &term
		}
		if p.MaxQuantity > 0 {
			lo, hi := p.MinQuantity, p.MaxQuantity
			s.MinQuantity, s.MaxQuantity = &lo, &hi
		}
	}
	t.change.Subscription = *s
	t.change.Subscription.LinkedSubscriptionIDs = slices.Clone(s.LinkedSubscriptionIDs)
	before := w.st.Subscription.Status
	if !w.durable() {
		// Runs before durableSave adopted the state before the write (but
		// counted the purchase as recorded only after it): replay needs the same.
		recorded := w.st.Recorded
		w.st = t.next
		w.st.Recorded = recorded
	}
	if w.durable() {
		w.inFlight = &t.next
	}
	res, err := w.save(ctx, t.change)
	w.inFlight = nil
	if err != nil {
		return res, fmt.Errorf("save subscription %s: %w", s.ID, err)
	}
	// The parent's signals may have arrived while the write ran.
	t.next.ParentEnded = t.next.ParentEnded || w.st.ParentEnded
	t.next.ParentEndedRefund = t.next.ParentEndedRefund || w.st.ParentEndedRefund
	t.next.ParentActive = t.next.ParentActive || w.st.ParentActive
	w.st = t.next
	if w.durable() && before == domain.StatusPendingFulfillment && s.Status == domain.StatusActive {
		w.signalLinked(ctx, SignalParentActivated, ParentActivated{ParentID: s.ID})
	}
	if s.Status != before {
		if err := workflow.UpsertTypedSearchAttributes(ctx, statusKey.ValueSet(string(s.Status))); err != nil {
			return res, err
		}
	}
	if t.memo {
		return res, workflow.UpsertMemo(ctx, Memo(*s, w.st.Plan))
	}
	return res, nil
}

// save writes one change. The durable path uses a regular activity: the
// decision to make the change is recorded in history before the write runs
// (so a worker crash can never leave rows of a branch Temporal did not
// record), and the server retries it without limit, with backoff, through a
// database outage of any length, at no history cost per attempt.
func (w *subscriptionWorkflow) save(ctx workflow.Context, c domain.Change) (domain.SaveResult, error) {
	var res domain.SaveResult
	retry := &temporal.RetryPolicy{
		InitialInterval: 200 * time.Millisecond, BackoffCoefficient: 2, MaximumInterval: 10 * time.Second,
		// Without limit in practice (2^31 attempts 10 s apart); stated, because
		// zero means ten in the SDK's test environment.
		MaximumAttempts: math.MaxInt32,
	}
	if w.durable() {
		actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
			StartToCloseTimeout: 10 * time.Second, RetryPolicy: retry,
		})
		return res, workflow.ExecuteActivity(actx, ActivitySaveSubscription, c).Get(ctx, &res)
	}
	lctx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		ScheduleToCloseTimeout: 365 * 24 * time.Hour, StartToCloseTimeout: 10 * time.Second, RetryPolicy: retry,
	})
	return res, workflow.ExecuteLocalActivity(lctx, ActivitySaveSubscription, c).Get(ctx, &res)
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

// receiveSignals takes in the parent's terminal signal. The main loop calls it
// whenever it wakes (also inside its wait conditions), so the flag is set in
// the same step the signal arrives and no transition's adopted state can
// overwrite it.
func (w *subscriptionWorkflow) receiveSignals(ctx workflow.Context) {
	ended := workflow.GetSignalChannel(ctx, SignalParentEnded)
	var msg ParentEnded
	for ended.ReceiveAsync(&msg) {
		w.st.ParentEnded = true
		w.st.ParentEndedRefund = w.st.ParentEndedRefund || msg.Refund
	}
	activated := workflow.GetSignalChannel(ctx, SignalParentActivated)
	for activated.ReceiveAsync(nil) {
		w.st.ParentActive = true
	}
}

func problem(code, format string, args ...any) error {
	return temporal.NewNonRetryableApplicationError(fmt.Sprintf(format, args...), code, nil)
}

// noChange refuses a message that would change nothing, carrying the
// subscription as it stands.
func noChange(s domain.Subscription) error {
	return temporal.NewNonRetryableApplicationError("nothing to change", ErrNoChange, nil, s)
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

// Unchanged reports a refusal of a message that changed nothing, with the
// subscription as it stands.
func Unchanged(err error) (domain.Subscription, bool) {
	var appErr *temporal.ApplicationError
	var s domain.Subscription
	if errors.As(err, &appErr) && appErr.Type() == ErrNoChange && appErr.HasDetails() && appErr.Details(&s) == nil {
		return s, true
	}
	return s, false
}

// ComeAgain reports a message turned away while the run continues as new:
// sending it again shortly reaches the next run.
func ComeAgain(err error) bool {
	var appErr *temporal.ApplicationError
	return errors.As(err, &appErr) && appErr.Type() == ErrContinuingAsNew
}
