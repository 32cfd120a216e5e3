package workflows

import (
	"fmt"
	"math/big"
	"slices"
	"time"

	"github.com/partnerhub/fulfillment/domain"
)

// handledLimit bounds the message ids kept for deduplication, across the
// terms of a run and across continue-as-new.
const handledLimit = 256

// State is everything a subscription's workflow carries: the input of its
// first run and of every run it continues as new into. It holds no secret:
// the authorization code is derived outside the workflow.
type State struct {
	Subscription domain.Subscription `json:"subscription"`
	Plan         domain.Plan         `json:"plan"`
	// NotifyPublisher tells whether the offer's publisher takes webhooks.
	NotifyPublisher bool `json:"notify_publisher"`
	// Recorded is true once the purchase is in the read model.
	Recorded bool `json:"recorded"`
	// Handled keeps the ids of recent messages (the last handledLimit,
	// whatever the term) so redeliveries, in the same run or after
	// continue-as-new, stay without effect.
	Handled []string `json:"handled,omitempty"`
	// ParentEnded is set when the parent's terminal signal arrived;
	// ParentEndedRefund when that parent asked for the current term's refund.
	ParentEnded       bool `json:"parent_ended,omitempty"`
	ParentEndedRefund bool `json:"parent_ended_refund,omitempty"`
	// ParentActive is set once the parent started billing: a linked
	// subscription never bills before it (durable runs).
	ParentActive bool  `json:"parent_active,omitempty"`
	Purchaser    Actor `json:"purchaser"`
	// TermBilledMinor is what the current term has billed so far (charge and prorations).
	TermBilledMinor int64 `json:"term_billed_minor"`
	// EventSeq numbers timeline events so each has a deterministic key.
	EventSeq int `json:"event_seq"`
	// GraceEndsAt is when a suspended subscription ends unless paid.
	GraceEndsAt *time.Time `json:"grace_ends_at,omitempty"`
	// PendingPlan is the plan of Subscription.PendingPlanChange and the
	// request that asked for it (its ledger key).
	PendingPlan *PendingPlan `json:"pending_plan,omitempty"`

	// The code paths this subscription's runs take, carried so a run needs
	// no version marker (workflow.GetVersion writes a MarkerRecorded and a
	// TemporalChangeVersion search attribute upsert into the history of
	// every run that asks). Each is set by NewState for a subscription
	// started by the current code, and by a run that asked GetVersion and
	// was answered with the new path, for the runs after it (continue-as-new
	// carries the state). A run reads them from its input only, so they
	// stay fixed for the whole of its replay. Unset, as in every input
	// written before them, the run asks GetVersion at the same place with
	// the same change id as before, so recorded histories replay unchanged.
	//
	// SavesDurably: writes go through the SaveSubscription activity, retried
	// without limit, the state adopted only after the write (durableSave 1).
	SavesDurably bool `json:"saves_durably,omitempty"`
	// RenewsInPlace: a renewal stays in the run, which waits for the next
	// term's deadlines (renewInPlace 1), instead of continuing as new.
	RenewsInPlace bool `json:"renews_in_place,omitempty"`
}

// NewState is the first input of a subscription started by the current code:
// it takes the current code paths (SavesDurably, RenewsInPlace), so its runs
// record no version marker. Every starter of a SubscriptionWorkflow builds
// its input here, so that choice is made in one place; the caller sets
// what else the state needs (NotifyPublisher, or Recorded and the rest
// for a subscription started mid-life).
func NewState(sub domain.Subscription, plan domain.Plan, purchaser Actor) State {
	return State{
		Subscription: sub, Plan: plan, Purchaser: purchaser,
		SavesDurably: true, RenewsInPlace: true,
	}
}

// PendingPlan is what the workflow keeps of a pending plan change beside its
// public view (Subscription.PendingPlanChange).
type PendingPlan struct {
	Plan      domain.Plan `json:"plan"`
	MessageID string      `json:"message_id"`
	Actor     Actor       `json:"actor"`
}

// clone copies the state deeply enough that changing the copy never touches
// the original (pointer fields are replaced, never written through).
func (st State) clone() State {
	c := st
	c.Handled = slices.Clone(st.Handled)
	c.Subscription.LinkedSubscriptionIDs = slices.Clone(st.Subscription.LinkedSubscriptionIDs)
	return c
}

func (st *State) handled(messageID string) bool {
	return messageID != "" && slices.Contains(st.Handled, messageID)
}

func (st *State) markHandled(messageID string) {
	if messageID == "" {
		return
	}
	st.Handled = append(st.Handled, messageID)
	if len(st.Handled) > handledLimit {
		st.Handled = slices.Clone(st.Handled[len(st.Handled)-handledLimit:])
	}
}

// transition is one change of a subscription, built on a copy of the state.
// The workflow adopts next only after the change (snapshot plus the rows it
// adds) is saved, so a failed or interrupted save leaves the state as it was.
type transition struct {
	next   State
	now    time.Time
	change domain.Change
	// memo is set when the change alters what the memo shows (the nickname).
	memo bool
	// parentGate holds billing of a linked subscription until its parent is
	// active (runs on the durable write path).
	parentGate bool
}

func newTransition(st State, now time.Time) *transition {
	return &transition{next: st.clone(), now: now}
}

func (t *transition) sub() *domain.Subscription { return &t.next.Subscription }

// changed reports whether the transition adds anything to the timeline; one
// that does not is a no-op and is never saved.
func (t *transition) changed() bool { return len(t.change.Events) > 0 }

func (t *transition) event(typ, actor string, detail map[string]any) {
	t.next.EventSeq++
	s := t.sub()
	t.change.Events = append(t.change.Events, domain.Event{
		SubscriptionID: s.ID, Key: fmt.Sprintf("%s:%d", s.ID, t.next.EventSeq),
		At: t.now, Type: typ, Actor: actor, Detail: detail,
	})
}

// notify queues a publisher notification keyed by the latest event.
func (t *transition) notify(typ string) { t.notifyWith(typ, nil) }

// notifyWith queues a notification that carries data beside the snapshot.
func (t *transition) notifyWith(typ string, data map[string]any) {
	if !t.next.NotifyPublisher || typ == "" {
		return
	}
	t.change.Notifications = append(t.change.Notifications, domain.Notification{
		ID: fmt.Sprintf("msg_%s_%d", t.sub().ID, t.next.EventSeq), Type: typ, OccurredAt: t.now, Data: data,
	})
}

func (t *transition) ledger(kind, id string, amount int64) domain.LedgerEntry {
	s := t.sub()
	return t.ledgerOver(kind, id, amount, *s.TermStart, *s.TermEnd)
}

// ledgerOver adds a billing line over the given period.
func (t *transition) ledgerOver(kind, id string, amount int64, start, end time.Time) domain.LedgerEntry {
	s := t.sub()
	entry := domain.LedgerEntry{
		ID: id, SubscriptionID: s.ID, TermNumber: s.TermNumber, Kind: kind, AmountMinor: amount,
		Currency: t.next.Plan.Currency, PeriodStart: start, PeriodEnd: end, CreatedAt: t.now,
	}
	t.change.Ledger = append(t.change.Ledger, entry)
	return entry
}

// startTerm sets term bounds and the cancellation window from the plan.
func (t *transition) startTerm(start time.Time) {
	s := t.sub()
	end := domain.MustAdd(start, t.next.Plan.Term)
	window := domain.MustAdd(start, t.next.Plan.CancellationWindow)
	s.TermStart, s.TermEnd, s.CancellationWindowEndsAt = &start, &end, &window
	s.PeriodsBilled = 0
	t.next.TermBilledMinor = 0
}

// charge bills the first period of the current term (the full term, unit
// price × quantity, when it bills once per term; see billing_periods.go).
func (t *transition) charge() domain.LedgerEntry {
	return t.installment(1)
}

// refund gives back everything billed for the current term.
func (t *transition) refund() domain.LedgerEntry {
	s := t.sub()
	amount := -t.next.TermBilledMinor
	t.next.TermBilledMinor = 0
	return t.ledger(domain.LedgerRefund, fmt.Sprintf("refund:%s:%d", s.ID, s.TermNumber), amount)
}

// prorate prices a quantity change for the rest of the current billing
// period at the per-period price: unit price × delta × remaining / (period
// length × periods per term), truncated toward zero to the minor unit (the
// customer is never charged a fraction of a cent). Billed once per term, the
// period is the term. Later periods charge the new quantity's installments.
func (t *transition) prorate(delta int, key string) (domain.LedgerEntry, bool) {
	return t.prorateTerm(t.next.Plan.UnitPriceMinor*int64(delta), key)
}

// prorateTerm bills (or credits, when negative) the rest of the term's share
// of full, a change of the term's price: full × remaining / term length,
// truncated toward zero.
func (t *transition) prorateTerm(full int64, key string) (domain.LedgerEntry, bool) {
	s := t.sub()
	if s.Status != domain.StatusActive || s.TermStart == nil || full == 0 {
		return domain.LedgerEntry{}, false
	}
	start, end, periods := t.currentPeriod()
	length := end.Sub(start)
	remaining := end.Sub(t.now)
	if remaining <= 0 || length <= 0 {
		return domain.LedgerEntry{}, false
	}
	amount := prorate(full, remaining, length*time.Duration(periods))
	if amount == 0 {
		return domain.LedgerEntry{}, false
	}
	if key == "" {
		// A change without a message id is keyed by the quantity_changed event
		// that follows, so two of them in one term do not share a ledger key.
		key = fmt.Sprintf("event-%d", t.next.EventSeq+1)
	}
	t.next.TermBilledMinor += amount
	return t.ledger(domain.LedgerProration, fmt.Sprintf("proration:%s:%d:%s", s.ID, s.TermNumber, key), amount), true
}

// prorate computes full × remaining / length in milliseconds, truncated toward zero.
// The product is taken in big integers: unit price × seats × milliseconds of
// a year overflows int64 for large orders.
func prorate(full int64, remaining, length time.Duration) int64 {
	n := new(big.Int).Mul(big.NewInt(full), big.NewInt(remaining.Milliseconds()))
	return n.Quo(n, big.NewInt(length.Milliseconds())).Int64()
}

// startBilling starts the first term once both publisher callbacks are in.
func (t *transition) startBilling() {
	s := t.sub()
	if !t.readyToBill() {
		return
	}
	now := t.now
	s.Status = domain.StatusActive
	s.BillingStartedAt = &now
	s.TermNumber = 1
	t.startTerm(now)
	charge := t.charge()
	t.event(domain.EventBillingStarted, SystemActor.String(), map[string]any{
		"amount_minor": charge.AmountMinor, "currency": charge.Currency, "term_end": s.TermEnd,
	})
	t.notify(domain.NotifyActivated)
}

// readyToBill: pending, both callbacks in, and a linked subscription's parent active.
func (t *transition) readyToBill() bool {
	s := t.sub()
	if s.Status != domain.StatusPendingFulfillment || s.LicensesAssigned == 0 || !s.FulfillmentConfirmed {
		return false
	}
	return !t.parentGate || s.ParentSubscriptionID == nil || t.next.ParentActive
}

// renew starts the next term at the end of this one and bills it, on the
// plan a scheduled plan change moves it to.
func (t *transition) renew() {
	s := t.sub()
	start := *s.TermEnd
	s.TermNumber++
	from := s.PlanID
	t.changePlanAtRenewal() // the plan first: the frequency adopted next is one it allows
	freq, adopted := t.adoptPendingFrequency()
	t.startTerm(start)
	charge := t.charge()
	detail := map[string]any{
		"term_number": s.TermNumber, "term_start": s.TermStart, "term_end": s.TermEnd, "amount_minor": charge.AmountMinor,
	}
	if from != s.PlanID {
		detail["plan_id"], detail["from_plan_id"] = s.PlanID, from
	}
	if adopted {
		detail["billing_frequency"] = freq
	}
	t.event(domain.EventRenewed, SystemActor.String(), detail)
	t.notify(domain.NotifyRenewed)
}

// end moves the subscription to a terminal status; a cancel of a billed term
// refunds it, and so does a cascade from a parent the customer could not use.
func (t *transition) end(status domain.Status, actor Actor, detail map[string]any) {
	s := t.sub()
	refund := status == domain.StatusCancelled || (status == domain.StatusDeactivated && t.parentGate && t.next.ParentEndedRefund)
	billed := s.Status == domain.StatusActive || s.Status == domain.StatusSuspended
	if refund && billed && s.TermNumber > 0 {
		if refund := t.refund(); refund.AmountMinor != 0 {
			if detail == nil {
				detail = map[string]any{}
			}
			detail["refund_minor"] = -refund.AmountMinor
		} else {
			t.change.Ledger = t.change.Ledger[:len(t.change.Ledger)-1] // nothing was billed
		}
	}
	if pc := s.PendingPlanChange; pc != nil {
		// A subscription that ends takes no plan change (an expiry drops a
		// downgrade scheduled for the renewal that does not come).
		if detail == nil {
			detail = map[string]any{}
		}
		detail["dropped_plan_change"] = pc.PlanID
		t.clearPlanChange()
	}
	s.Status = status
	t.event(string(status), actor.String(), detail)
	t.notify(terminalNotification[status])
}

// suspend holds an active subscription for non-payment until the plan's
// grace period ends.
func (t *transition) suspend(actor Actor, reason string, occurredAt *time.Time) {
	s := t.sub()
	s.Status = domain.StatusSuspended
	graceEnds := domain.MustAdd(t.now, t.next.Plan.GracePeriod())
	t.next.GraceEndsAt = &graceEnds
	detail := map[string]any{"grace_ends_at": graceEnds}
	if reason != "" {
		detail["reason"] = reason
	}
	if occurredAt != nil {
		detail["occurred_at"] = *occurredAt
	}
	t.event(domain.EventSuspended, actor.String(), detail)
	t.notify(domain.NotifySuspended)
}

// reinstate ends a suspension: the same term, the same dates.
func (t *transition) reinstate(actor Actor, occurredAt *time.Time) {
	t.sub().Status = domain.StatusActive
	t.next.GraceEndsAt = nil
	var detail map[string]any
	if occurredAt != nil {
		detail = map[string]any{"occurred_at": *occurredAt}
	}
	t.event(domain.EventReinstated, actor.String(), detail)
	t.notify(domain.NotifyReinstated)
}

var terminalNotification = map[domain.Status]string{
	domain.StatusCancelled:          domain.NotifyCancelled,
	domain.StatusDeactivated:        domain.NotifyDeactivated,
	domain.StatusExpired:            domain.NotifyExpired,
	domain.StatusFulfillmentExpired: domain.NotifyFulfillmentExpired,
	domain.StatusUnsubscribed:       domain.NotifyUnsubscribed,
}
