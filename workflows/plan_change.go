package workflows

import (
	"time"

	"github.com/partnerhub/fulfillment/domain"
)

// A plan change (issue 13, item 2) moves an active subscription to another
// plan of its offer. It is pending while the publisher may refuse it (the
// current plan's veto window); then an upgrade, or a downgrade asked inside
// the cancellation window, takes effect at once with a proration of the rest
// of the term, and a downgrade asked later takes effect at the renewal.

// checkPlanChange admits a plan change: an active subscription, none pending,
// another plan of the same offer, with the same term and currency, that
// allows the current quantity.
func (w *subscriptionWorkflow) checkPlanChange(_ time.Time, req PlanChangeRequest) error {
	s, to := w.st.Subscription, req.Plan
	switch {
	case s.Status != domain.StatusActive:
		return problem(ErrInvalidState, "only an active subscription can change plan; this one is %s", s.Status)
	case s.PendingPlanChange != nil:
		pc := s.PendingPlanChange
		return problem(ErrInvalidState, "a change to plan %q is already pending (%s, %s, effective %s); one plan change at a time",
			pc.PlanID, pc.Kind, pc.Stage, pc.Effective)
	case to.ID == s.PlanID:
		return problem(ErrValidationFailed, "the subscription is already on plan %q", to.ID)
	case to.OfferID != s.OfferID:
		return problem(ErrValidationFailed, "plan %q is not a plan of offer %q", to.ID, s.OfferID)
	case to.Term != w.st.Plan.Term || to.Currency != w.st.Plan.Currency:
		return problem(ErrValidationFailed, "plan %q bills %s in %s; a plan change keeps the term (%s) and currency (%s)",
			to.ID, to.Term, to.Currency, w.st.Plan.Term, w.st.Plan.Currency)
	case !to.AllowsFrequency(w.st.frequency()):
		return problem(ErrValidationFailed, "plan %q is not billed every %s, as this subscription is", to.ID, w.st.frequency())
	case s.Quantity < to.MinQuantity || s.Quantity > to.MaxQuantity:
		return problem(ErrValidationFailed, "plan %q allows a quantity between %d and %d; this subscription has %d",
			to.ID, to.MinQuantity, to.MaxQuantity, s.Quantity)
	}
	if err := to.Validate(); err != nil {
		return problem(ErrValidationFailed, "%v", err)
	}
	return nil
}

// requestPlanChange records the pending change and asks the publisher.
// Upgrade or downgrade is decided by the term price at the current quantity
// (the same price counts as an upgrade: it takes effect at once, prorating
// nothing).
func (w *subscriptionWorkflow) requestPlanChange(t *transition, req PlanChangeRequest) {
	s := t.sub()
	from, to := t.next.Plan, req.Plan
	kind, effective := domain.PlanChangeUpgrade, domain.PlanChangeNow
	if to.TermPriceMinor(s.Quantity) < from.TermPriceMinor(s.Quantity) {
		kind = domain.PlanChangeDowngrade
		if !s.InCancellationWindow(t.now) {
			effective = domain.PlanChangeRenewal
		}
	}
	s.PendingPlanChange = &domain.PlanChange{
		PlanID: to.ID, FromPlanID: s.PlanID, Kind: kind, Effective: effective, Stage: domain.PlanChangeAwaitingPublisher,
		RequestedAt: t.now, VetoEndsAt: domain.MustAdd(t.now, from.VetoWindow()), UnitPriceMinor: &to.UnitPriceMinor,
	}
	t.next.PendingPlan = &PendingPlan{Plan: to, MessageID: req.MessageID, Actor: req.Actor}
	pc := s.PendingPlanChange
	t.event(domain.EventPlanChangeRequested, req.Actor.String(), map[string]any{
		"from_plan_id": pc.FromPlanID, "plan_id": pc.PlanID, "kind": pc.Kind, "effective": pc.Effective, "veto_ends_at": pc.VetoEndsAt,
	})
	t.notifyWith(domain.NotifyPlanChangeRequested, map[string]any{
		"from_plan_id": pc.FromPlanID, "plan_id": pc.PlanID, "kind": pc.Kind, "effective": pc.Effective, "veto_ends_at": pc.VetoEndsAt,
	})
}

// checkPlanChangeAnswer admits the publisher's answer only while the change
// waits for it, strictly before the veto window ends.
func (w *subscriptionWorkflow) checkPlanChangeAnswer(now time.Time, _ PlanChangeAnswer) error {
	s := w.st.Subscription
	pc := s.PendingPlanChange
	switch {
	case s.Status.Terminal():
		return problem(ErrInvalidState, "subscription is %s", s.Status)
	case pc == nil:
		return problem(ErrInvalidState, "no plan change is pending")
	case pc.Stage != domain.PlanChangeAwaitingPublisher || !now.Before(pc.VetoEndsAt):
		return problem(ErrInvalidState, "the veto window of the change to plan %q closed at %s", pc.PlanID, pc.VetoEndsAt.Format(time.RFC3339))
	}
	return nil
}

// refusePlanChange drops the pending change: the publisher refused it.
func (w *subscriptionWorkflow) refusePlanChange(t *transition, req PlanChangeAnswer) {
	s := t.sub()
	pc := s.PendingPlanChange
	t.clearPlanChange()
	t.event(domain.EventPlanChangeRefused, req.Actor.String(), map[string]any{
		"from_plan_id": pc.FromPlanID, "plan_id": pc.PlanID, "reason": req.Reason,
	})
}

// checkPlanChangePending admits the partner's withdrawal of a change while it
// is pending, in either stage: waiting for the publisher or for the renewal.
func (w *subscriptionWorkflow) checkPlanChangePending(time.Time, PlanChangeAnswer) error {
	switch s := w.st.Subscription; {
	case s.Status.Terminal():
		return problem(ErrInvalidState, "subscription is %s", s.Status)
	case s.PendingPlanChange == nil:
		return problem(ErrInvalidState, "no plan change is pending")
	}
	return nil
}

// withdrawPlanChange drops the pending change at the partner's request; the
// publisher, told of the request, is told it is withdrawn.
func (w *subscriptionWorkflow) withdrawPlanChange(t *transition, req PlanChangeAnswer) {
	pc := t.sub().PendingPlanChange
	t.clearPlanChange()
	t.event(domain.EventPlanChangeWithdrawn, req.Actor.String(), map[string]any{
		"from_plan_id": pc.FromPlanID, "plan_id": pc.PlanID, "stage": pc.Stage,
	})
	t.notifyWith(domain.NotifyPlanChangeWithdrawn, map[string]any{"from_plan_id": pc.FromPlanID, "plan_id": pc.PlanID})
}

// acceptPlanChange ends the veto window early: the publisher agreed.
func (w *subscriptionWorkflow) acceptPlanChange(t *transition, req PlanChangeAnswer) {
	t.settlePlanChange(req.Actor)
}

// settlePlanChange acts on a change the publisher did not refuse: it takes
// effect now, or is scheduled for the renewal.
func (t *transition) settlePlanChange(actor Actor) {
	s := t.sub()
	pc := s.PendingPlanChange
	if pc == nil || pc.Stage != domain.PlanChangeAwaitingPublisher {
		return
	}
	if pc.Effective == domain.PlanChangeRenewal {
		scheduled := *pc
		scheduled.Stage = domain.PlanChangeScheduled
		s.PendingPlanChange = &scheduled
		t.event(domain.EventPlanChangeScheduled, actor.String(), map[string]any{
			"from_plan_id": pc.FromPlanID, "plan_id": pc.PlanID, "effective_at": s.TermEnd,
		})
		return
	}
	from := t.next.Plan
	to := t.next.PendingPlan.Plan
	key := "plan-" + t.next.PendingPlan.MessageID
	detail := map[string]any{"from_plan_id": from.ID, "plan_id": to.ID, "kind": pc.Kind, "effective": pc.Effective, "proration_minor": int64(0)}
	// The rest of the term at the new term price: (new − old) × quantity ×
	// remaining / length, truncated toward zero; negative for a downgrade.
	if entry, ok := t.prorateTerm(to.TermPriceMinor(s.Quantity)-from.TermPriceMinor(s.Quantity), key); ok {
		detail["proration_minor"] = entry.AmountMinor
	}
	t.applyPlanChange()
	t.event(domain.EventPlanChanged, actor.String(), detail)
	t.notifyWith(domain.NotifyPlanChanged, map[string]any{
		"from_plan_id": from.ID, "plan_id": to.ID, "proration_minor": detail["proration_minor"],
	})
}

// applyPlanChange moves the subscription to the pending plan.
func (t *transition) applyPlanChange() {
	s := t.sub()
	to := t.next.PendingPlan.Plan
	s.PlanID = to.ID
	t.next.Plan = to
	t.memo = true
	t.clearPlanChange()
}

func (t *transition) clearPlanChange() {
	t.sub().PendingPlanChange = nil
	t.next.PendingPlan = nil
}

// changePlanAtRenewal moves a subscription whose downgrade was scheduled to
// the new plan as its term ends (before the new term is started and billed).
func (t *transition) changePlanAtRenewal() {
	s := t.sub()
	pc := s.PendingPlanChange
	if pc == nil || pc.Effective != domain.PlanChangeRenewal || pc.Stage != domain.PlanChangeScheduled {
		return
	}
	from := s.PlanID
	t.applyPlanChange()
	t.event(domain.EventPlanChanged, SystemActor.String(), map[string]any{
		"from_plan_id": from, "plan_id": s.PlanID, "kind": pc.Kind, "effective": pc.Effective, "proration_minor": int64(0),
	})
	t.notifyWith(domain.NotifyPlanChanged, map[string]any{"from_plan_id": from, "plan_id": s.PlanID, "proration_minor": int64(0)})
}

// planDeadline is when the workflow must act on a pending plan change: the
// end of its veto window (zero when nothing waits for a timer).
func (st *State) planDeadline() time.Time {
	if pc := st.Subscription.PendingPlanChange; pc != nil && pc.Stage == domain.PlanChangeAwaitingPublisher {
		return pc.VetoEndsAt
	}
	return time.Time{}
}
