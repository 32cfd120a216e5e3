package workflows

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/partnerhub/fulfillment/domain"
)

// Plans of the test offer beside testPlan (1200 a seat a term, PT1H terms):
// premium costs more, basic less; both keep the term and currency.
func premiumPlan() domain.Plan {
	p := testPlan()
	p.ID, p.Name, p.UnitPriceMinor = "premium-hourly", "Premium hourly", 2000
	return p
}

func basicPlan() domain.Plan {
	p := testPlan()
	p.ID, p.Name, p.UnitPriceMinor, p.MaxQuantity = "basic-hourly", "Basic hourly", 800, 6
	return p
}

// withVeto sets the current plan's veto window.
func withVeto(period string) func(*State) {
	return func(st *State) { st.Plan.PlanChangeVetoWindow = period }
}

func changePlan(id string, to domain.Plan) PlanChangeRequest {
	return PlanChangeRequest{MessageID: id, Actor: admin, Plan: to}
}

func answer(id, reason string) PlanChangeAnswer {
	return PlanChangeAnswer{MessageID: id, Actor: publisher, Reason: reason}
}

// An upgrade is pending for the current plan's veto window, then takes
// effect with a proration of the rest of the term:
// (2000 − 1200) × 5 seats × remaining / 3600 s, truncated toward zero.
func TestUpgradeTakesEffectWhenTheVetoWindowEnds(t *testing.T) {
	requested := 20*time.Minute + 7*time.Second // after the cancellation window
	vetoEnd := requested + 5*time.Minute        // t0+25m7s
	h := newHarness(t)
	h.fulfil()
	req := h.update(requested, UpdateChangePlan, "pc-up", changePlan("pc-up", premiumPlan()))
	pending := h.queryAt(vetoEnd - time.Second)
	after := h.queryAt(vetoEnd + time.Second)
	h.run(newInput("sub-up", withNotifications, withoutAutoRenew, withVeto("PT5M")))

	s := req.applied(t)
	require.NotNil(t, s.PendingPlanChange)
	assert.Equal(t, domain.PlanChange{
		PlanID: "premium-hourly", FromPlanID: "std-hourly", Kind: domain.PlanChangeUpgrade, Effective: domain.PlanChangeNow,
		Stage: domain.PlanChangeAwaitingPublisher, RequestedAt: at(requested), VetoEndsAt: at(vetoEnd),
		UnitPriceMinor: ptr(int64(2000)), // the target plan's, as the workflow carries it
	}, *s.PendingPlanChange)
	assert.Equal(t, "std-hourly", s.PlanID, "nothing changes before the veto window ends")
	assert.Equal(t, "std-hourly", pending.PlanID)
	assert.NotNil(t, pending.PendingPlanChange)
	assert.Equal(t, "premium-hourly", after.PlanID)
	assert.Nil(t, after.PendingPlanChange)

	// 800 × 5 × (63m − 25m7s = 2273 s) / 3600 s = 2525.55… → 2525
	prorations := h.store.LedgerOfKind(domain.LedgerProration)
	require.Len(t, prorations, 1)
	assert.Equal(t, domain.LedgerEntry{
		ID: "proration:sub-up:1:plan-pc-up", SubscriptionID: "sub-up", TermNumber: 1, Kind: domain.LedgerProration,
		AmountMinor: 2525, Currency: "USD", PeriodStart: at(testActivateAt), PeriodEnd: at(termEnd), CreatedAt: at(vetoEnd),
	}, prorations[0])
	changed := h.store.Event(t, domain.EventPlanChanged)
	assert.Equal(t, at(vetoEnd), changed.At)
	assert.Equal(t, "system", changed.Actor)
	assert.Equal(t, jsonOf(map[string]any{
		"from_plan_id": "std-hourly", "plan_id": "premium-hourly", "kind": "upgrade", "effective": "now", "proration_minor": 2525,
	}), jsonOf(changed.Detail))
	requestedEv := h.store.Event(t, domain.EventPlanChangeRequested)
	assert.Equal(t, "agent:alice", requestedEv.Actor)
	assert.Equal(t, []string{domain.NotifyPurchased, domain.NotifyActivated, domain.NotifyPlanChangeRequested,
		domain.NotifyPlanChanged, domain.NotifyExpired}, h.store.NotificationTypes())
	var data []map[string]any
	for _, c := range h.store.Changes() {
		for _, n := range c.Notifications {
			if n.Data != nil {
				data = append(data, jsonOf(n.Data))
			}
		}
	}
	require.Len(t, data, 2)
	// Every snapshot carries the price (and term) of the plan the workflow
	// charges from at that save: the old plan's until the change took effect.
	for _, c := range h.store.Changes() {
		s := c.Subscription
		want := map[string]int64{"std-hourly": unitPrice, "premium-hourly": 2000}[s.PlanID]
		if assert.NotNil(t, s.UnitPriceMinor, "version %d", s.Version) && assert.NotNil(t, s.Currency) {
			assert.Equal(t, want, *s.UnitPriceMinor, "version %d on %s", s.Version, s.PlanID)
			assert.Equal(t, "USD", *s.Currency)
		}
		if assert.NotNil(t, s.PlanTerm, "version %d", s.Version) {
			assert.Equal(t, "PT1H", *s.PlanTerm, "and the term its terms and periods follow")
		}
	}
	assert.Equal(t, "std-hourly", data[0]["from_plan_id"])
	assert.Equal(t, "premium-hourly", data[0]["plan_id"])
	assert.EqualValues(t, 2525, data[1]["proration_minor"])

	final := h.result()
	assert.Equal(t, domain.StatusExpired, final.Status)
	assert.Equal(t, "premium-hourly", final.PlanID)
	assert.Equal(t, "Premium hourly", h.memos[len(h.memos)-1]["plan"], "the memo shows the new plan")
	assert.Equal(t, unitPrice*testQuantity+2525, h.store.Balance())
	h.store.requireConsistent(t)
}

// A downgrade asked inside the cancellation window takes effect when its veto
// window ends, crediting the rest of the term (negative, truncated toward zero).
func TestDowngradeInsideTheWindowIsCredited(t *testing.T) {
	h := newHarness(t)
	h.fulfil()
	req := h.update(5*time.Minute, UpdateChangePlan, "pc-down", changePlan("pc-down", basicPlan()))
	h.run(newInput("sub-dn", withoutAutoRenew, withVeto("PT5M")))

	pc := req.applied(t).PendingPlanChange
	require.NotNil(t, pc)
	assert.Equal(t, domain.PlanChangeDowngrade, pc.Kind)
	assert.Equal(t, domain.PlanChangeNow, pc.Effective)
	// (800 − 1200) × 5 × (63m − 10m = 3180 s) / 3600 s = −1766.67 → −1766
	prorations := h.store.LedgerOfKind(domain.LedgerProration)
	require.Len(t, prorations, 1)
	assert.Equal(t, int64(-1766), prorations[0].AmountMinor)
	assert.Equal(t, at(10*time.Minute), prorations[0].CreatedAt)
	assert.Equal(t, "basic-hourly", h.result().PlanID)
	assert.Equal(t, unitPrice*testQuantity-1766, h.store.Balance())
}

// A downgrade asked after the cancellation window is scheduled when its veto
// window ends and takes effect at the renewal: the new term is on the new
// plan, billed at its price, with no proration.
func TestDowngradeOutsideTheWindowTakesEffectAtRenewal(t *testing.T) {
	h := newHarness(t)
	h.fulfil()
	req := h.update(20*time.Minute, UpdateChangePlan, "pc-later", changePlan("pc-later", basicPlan()))
	scheduled := h.queryAt(30 * time.Minute)
	h.suggestContinueAsNew(termEnd + time.Minute)
	h.run(newInput("sub-ren", withNotifications, withVeto("PT5M")))

	pc := req.applied(t).PendingPlanChange
	require.NotNil(t, pc)
	assert.Equal(t, domain.PlanChangeRenewal, pc.Effective)
	require.NotNil(t, scheduled.PendingPlanChange)
	assert.Equal(t, domain.PlanChangeScheduled, scheduled.PendingPlanChange.Stage)
	assert.Equal(t, "std-hourly", scheduled.PlanID, "the term runs out on the old plan")
	ev := h.store.Event(t, domain.EventPlanChangeScheduled)
	assert.Equal(t, at(25*time.Minute), ev.At)
	assert.Empty(t, h.store.LedgerOfKind(domain.LedgerProration))

	next := h.continued()
	assert.Equal(t, "basic-hourly", next.Subscription.PlanID)
	assert.Equal(t, basicPlan(), next.Plan)
	assert.Nil(t, next.PendingPlan)
	assert.Nil(t, next.Subscription.PendingPlanChange)
	charges := h.store.LedgerOfKind(domain.LedgerCharge)
	require.Len(t, charges, 2)
	assert.Equal(t, domain.LedgerEntry{
		ID: "charge:sub-ren:2", SubscriptionID: "sub-ren", TermNumber: 2, Kind: domain.LedgerCharge,
		AmountMinor: 800 * testQuantity, Currency: "USD", PeriodStart: at(termEnd), PeriodEnd: at(termEnd + testTerm), CreatedAt: at(termEnd),
	}, charges[1])
	changed := h.store.Event(t, domain.EventPlanChanged)
	assert.Equal(t, at(termEnd), changed.At)
	assert.Equal(t, "renewal", changed.Detail["effective"])
	renewed := h.store.Event(t, domain.EventRenewed)
	assert.Equal(t, "basic-hourly", renewed.Detail["plan_id"])
	assert.Equal(t, "std-hourly", renewed.Detail["from_plan_id"])
	assert.Equal(t, []string{domain.NotifyPurchased, domain.NotifyActivated, domain.NotifyPlanChangeRequested,
		domain.NotifyPlanChanged, domain.NotifyRenewed}, h.store.NotificationTypes())
	// Every snapshot carries the quantity bounds of the plan the workflow
	// enforces at that save: the old plan's (1–10) until the renewal, the
	// new plan's (1–6) from it.
	for _, c := range h.store.Changes() {
		s := c.Subscription
		want := map[string][2]int{"std-hourly": {1, 10}, "basic-hourly": {1, 6}}[s.PlanID]
		if assert.NotNil(t, s.MinQuantity, "version %d", s.Version) && assert.NotNil(t, s.MaxQuantity) {
			assert.Equal(t, want, [2]int{*s.MinQuantity, *s.MaxQuantity}, "version %d on %s", s.Version, s.PlanID)
		}
	}
	h.store.requireConsistent(t)
}

// Auto-renew off: the term expires and the scheduled downgrade is dropped
// with it (the expired event names it).
func TestExpiryDropsAScheduledDowngrade(t *testing.T) {
	h := newHarness(t)
	h.fulfil()
	h.update(20*time.Minute, UpdateChangePlan, "pc-exp", changePlan("pc-exp", basicPlan()))
	h.run(newInput("sub-exp", withoutAutoRenew, withVeto("PT5M")))

	final := h.result()
	assert.Equal(t, domain.StatusExpired, final.Status)
	assert.Equal(t, "std-hourly", final.PlanID)
	assert.Nil(t, final.PendingPlanChange)
	assert.Equal(t, "basic-hourly", h.store.Event(t, string(domain.StatusExpired)).Detail["dropped_plan_change"])
	assert.Empty(t, h.store.EventsOfType(domain.EventPlanChanged))
}

// The publisher refuses inside the veto window: the change is dropped, the
// partner sees why on the timeline, nothing is billed.
func TestPublisherRefusesInsideTheVetoWindow(t *testing.T) {
	h := newHarness(t)
	h.fulfil()
	h.update(20*time.Minute, UpdateChangePlan, "pc-r", changePlan("pc-r", premiumPlan()))
	refused := h.update(23*time.Minute, UpdateRefusePlanChange, "wh-refuse", answer("wh-refuse", "premium is sold out"))
	again := h.update(40*time.Minute, UpdateChangePlan, "pc-r2", changePlan("pc-r2", basicPlan()))
	h.run(newInput("sub-ref", withoutAutoRenew, withVeto("PT5M")))

	s := refused.applied(t)
	assert.Nil(t, s.PendingPlanChange)
	assert.Equal(t, "std-hourly", s.PlanID)
	ev := h.store.Event(t, domain.EventPlanChangeRefused)
	assert.Equal(t, "publisher:contoso", ev.Actor)
	assert.Equal(t, "premium is sold out", ev.Detail["reason"])
	assert.Equal(t, "premium-hourly", ev.Detail["plan_id"])
	assert.NotNil(t, again.applied(t).PendingPlanChange, "another change may be asked once the first is refused")
	assert.Empty(t, h.store.LedgerOfKind(domain.LedgerProration))
	assert.Equal(t, "std-hourly", h.result().PlanID, "the later downgrade waits for a renewal that never comes")
}

// A refusal at or after the end of the veto window, or with nothing pending,
// is refused (409 invalid_state); the change has taken effect.
func TestRefusalAfterTheVetoWindowIsRefused(t *testing.T) {
	h := newHarness(t)
	h.fulfil()
	nothing := h.update(10*time.Minute, UpdateRefusePlanChange, "wh-0", answer("wh-0", "no"))
	h.update(20*time.Minute, UpdateChangePlan, "pc-l", changePlan("pc-l", premiumPlan()))
	atEnd := h.update(25*time.Minute, UpdateRefusePlanChange, "wh-1", answer("wh-1", "too late"))
	late := h.update(26*time.Minute, UpdateRefusePlanChange, "wh-2", answer("wh-2", "too late"))
	lateAccept := h.update(26*time.Minute, UpdateAcceptPlanChange, "wh-3", answer("wh-3", ""))
	h.run(newInput("sub-late", withoutAutoRenew, withVeto("PT5M")))

	nothing.rejectedWith(t, ErrInvalidState)
	atEnd.refusedWith(t, ErrInvalidState)
	late.rejectedWith(t, ErrInvalidState)
	lateAccept.rejectedWith(t, ErrInvalidState)
	assert.Equal(t, "premium-hourly", h.result().PlanID)
	assert.Empty(t, h.store.EventsOfType(domain.EventPlanChangeRefused))
	require.Len(t, h.store.LedgerOfKind(domain.LedgerProration), 1)
}

// What a plan change request must satisfy: an active subscription, one
// pending change at a time, another plan of the offer with the same term and
// currency that allows the quantity.
func TestPlanChangeRules(t *testing.T) {
	other := premiumPlan()
	other.OfferID = "another-offer"
	monthly := premiumPlan()
	monthly.Term = "P1M"
	small := premiumPlan()
	small.MaxQuantity = 4
	h := newHarness(t)
	pending := h.update(time.Minute, UpdateChangePlan, "pc-pending", changePlan("pc-pending", premiumPlan()))
	h.fulfil()
	same := h.update(5*time.Minute, UpdateChangePlan, "pc-same", changePlan("pc-same", testPlan()))
	otherOffer := h.update(5*time.Minute, UpdateChangePlan, "pc-offer", changePlan("pc-offer", other))
	otherTerm := h.update(5*time.Minute, UpdateChangePlan, "pc-term", changePlan("pc-term", monthly))
	tooSmall := h.update(5*time.Minute, UpdateChangePlan, "pc-small", changePlan("pc-small", small))
	first := h.update(6*time.Minute, UpdateChangePlan, "pc-1", changePlan("pc-1", basicPlan()))
	redelivered := h.update(6*time.Minute+time.Second, UpdateChangePlan, "pc-1", changePlan("pc-1", basicPlan()))
	second := h.update(7*time.Minute, UpdateChangePlan, "pc-2", changePlan("pc-2", premiumPlan()))
	tooMany := h.update(8*time.Minute, UpdateChange, "q7", changeQuantity("q7", 7))
	h.run(newInput("sub-rules", withoutAutoRenew, withVeto("PT5M")))

	pending.rejectedWith(t, ErrInvalidState)
	same.rejectedWith(t, ErrValidationFailed)
	otherOffer.rejectedWith(t, ErrValidationFailed)
	otherTerm.rejectedWith(t, ErrValidationFailed)
	tooSmall.rejectedWith(t, ErrValidationFailed)
	assert.Equal(t, "basic-hourly", first.applied(t).PendingPlanChange.PlanID)
	assert.Equal(t, "basic-hourly", redelivered.applied(t).PendingPlanChange.PlanID, "a redelivery answers as the first")
	second.rejectedWith(t, ErrInvalidState)
	tooMany.rejectedWith(t, ErrValidationFailed) // basic allows at most 6
	assert.Len(t, h.store.EventsOfType(domain.EventPlanChangeRequested), 1)
	assert.Equal(t, "basic-hourly", h.result().PlanID)
}

// The publisher may accept before the window ends; a cancel inside the
// cancellation window then refunds everything the term billed, the
// proration included.
func TestCancelAfterUpgradeRefundsEverything(t *testing.T) {
	h := newHarness(t)
	h.fulfil()
	h.update(5*time.Minute, UpdateChangePlan, "pc-c", changePlan("pc-c", premiumPlan()))
	accepted := h.update(6*time.Minute, UpdateAcceptPlanChange, "wh-ok", answer("wh-ok", ""))
	cancel := h.update(8*time.Minute, UpdateCancel, "c", EndRequest{MessageID: "c", Actor: admin})
	h.run(newInput("sub-cx", withVeto("PT30M")))

	assert.Equal(t, "premium-hourly", accepted.applied(t).PlanID, "accepted: in effect at once")
	assert.Equal(t, domain.StatusCancelled, cancel.applied(t).Status)
	// 800 × 5 × (63m − 6m = 3420 s) / 3600 s = 3800
	prorations := h.store.LedgerOfKind(domain.LedgerProration)
	require.Len(t, prorations, 1)
	assert.Equal(t, int64(3800), prorations[0].AmountMinor)
	refunds := h.store.LedgerOfKind(domain.LedgerRefund)
	require.Len(t, refunds, 1)
	assert.Equal(t, -(unitPrice*testQuantity + 3800), refunds[0].AmountMinor)
	assert.Zero(t, h.store.Balance())
	assert.Equal(t, "publisher:contoso", h.store.Event(t, domain.EventPlanChanged).Actor)
}

// A run that continues as new during the veto window carries the pending
// change; the next run waits for the rest of the window and applies it.
func TestPlanChangeSurvivesContinueAsNew(t *testing.T) {
	h := newHarness(t)
	h.fulfil()
	h.update(20*time.Minute, UpdateChangePlan, "pc-can", changePlan("pc-can", premiumPlan()))
	h.at(21*time.Minute, func() { h.env.SetContinueAsNewSuggested(true) })
	h.update(21*time.Minute+time.Second, UpdateChange, "n", ChangeRequest{MessageID: "n", Actor: admin, Nickname: ptr("n")})
	h.run(newInput("sub-can", withoutAutoRenew, withVeto("PT5M")))

	next := h.continued()
	require.NotNil(t, next.PendingPlan)
	assert.Equal(t, premiumPlan(), next.PendingPlan.Plan)
	require.NotNil(t, next.Subscription.PendingPlanChange)
	assert.Equal(t, at(25*time.Minute), next.Subscription.PendingPlanChange.VetoEndsAt)
	assert.Empty(t, h.store.EventsOfType(domain.EventPlanChanged))

	final, h2 := runCarried(t, next, h.env.Now())
	assert.Equal(t, "premium-hourly", final.PlanID)
	changed := h2.store.Event(t, domain.EventPlanChanged)
	assert.Equal(t, at(25*time.Minute), changed.At, "the next run ends the veto window at the same instant")
	prorations := h2.store.LedgerOfKind(domain.LedgerProration)
	require.Len(t, prorations, 1)
	// 800 × 5 × (63m − 25m = 2280 s) / 3600 s = 2533.33 → 2533
	assert.Equal(t, domain.LedgerEntry{
		ID: "proration:sub-can:1:plan-pc-can", SubscriptionID: "sub-can", TermNumber: 1, Kind: domain.LedgerProration,
		AmountMinor: 2533, Currency: "USD", PeriodStart: at(testActivateAt), PeriodEnd: at(termEnd), CreatedAt: at(25 * time.Minute),
	}, prorations[0])
	assert.Equal(t, domain.StatusExpired, final.Status)
}

// A change effective now whose veto window outlasts the term: the renewals
// bill the old plan's price while it is pending (in one run, renewing in
// place), and the change is prorated over the term in which its window ends.
func TestVetoWindowOutlastingTheTerm(t *testing.T) {
	h := newHarness(t)
	h.fulfil()
	h.update(20*time.Minute, UpdateChangePlan, "pc-long", changePlan("pc-long", premiumPlan()))
	atTerm3 := h.queryAt(130 * time.Minute)
	h.suggestContinueAsNew(141 * time.Minute)
	h.run(newInput("sub-long", withVeto("PT2H"))) // the window ends at t0+2h20m

	require.NotNil(t, atTerm3.PendingPlanChange, "term 2 [63m, 123m) renewed into term 3 with the change pending")
	assert.Equal(t, 3, atTerm3.TermNumber)
	assert.Equal(t, "std-hourly", atTerm3.PlanID)
	charges := h.store.LedgerOfKind(domain.LedgerCharge)
	require.Len(t, charges, 3)
	assert.Equal(t, unitPrice*testQuantity, charges[1].AmountMinor, "term 2 is billed on the old plan")
	assert.Equal(t, unitPrice*testQuantity, charges[2].AmountMinor, "so is term 3")

	final := h.continued()
	assert.Equal(t, "premium-hourly", final.Subscription.PlanID)
	assert.Nil(t, final.PendingPlan)
	prorations := h.store.LedgerOfKind(domain.LedgerProration)
	require.Len(t, prorations, 1)
	// Term 3 is [123m, 183m): 800 × 5 × (183m − 140m = 2580 s) / 3600 s = 2866.67 → 2866
	assert.Equal(t, 3, prorations[0].TermNumber)
	assert.Equal(t, int64(2866), prorations[0].AmountMinor)
	assert.Equal(t, at(140*time.Minute), prorations[0].CreatedAt)
}

// A veto window that ends while the subscription is suspended: the publisher
// can no longer refuse, and the change takes effect when the payment
// reinstates the subscription, prorated from then.
func TestPlanChangeSettlesWhenReinstated(t *testing.T) {
	h := newHarness(t)
	h.fulfil()
	h.update(20*time.Minute, UpdateChangePlan, "pc-sus", changePlan("pc-sus", premiumPlan()))
	h.update(22*time.Minute, UpdatePaymentFailed, "pf", PaymentRequest{MessageID: "pf", Actor: billing})
	suspended := h.queryAt(27 * time.Minute)
	late := h.update(28*time.Minute, UpdateRefusePlanChange, "wh-late", answer("wh-late", "too late"))
	h.update(30*time.Minute, UpdatePaymentReceived, "pr", PaymentRequest{MessageID: "pr", Actor: billing})
	h.run(newInput("sub-sus-pc", withoutAutoRenew, withVeto("PT5M"), withGrace("P1D")))

	assert.Equal(t, "std-hourly", suspended.PlanID, "nothing changes while suspended")
	late.rejectedWith(t, ErrInvalidState)
	changed := h.store.Event(t, domain.EventPlanChanged)
	assert.Equal(t, at(30*time.Minute), changed.At)
	prorations := h.store.LedgerOfKind(domain.LedgerProration)
	require.Len(t, prorations, 1)
	// 800 × 5 × (63m − 30m = 1980 s) / 3600 s = 2200
	assert.Equal(t, int64(2200), prorations[0].AmountMinor)
	assert.Equal(t, "premium-hourly", h.result().PlanID)
}

// A downgrade at renewal whose veto window is still open when the term ends:
// the renewal bills the old plan, the change is scheduled when its window
// ends, and the following renewal moves to the new plan.
func TestDowngradeWithItsWindowOpenAtRenewalWaitsForTheNext(t *testing.T) {
	h := newHarness(t)
	h.fulfil()
	req := h.update(55*time.Minute, UpdateChangePlan, "pc-edge", changePlan("pc-edge", basicPlan()))
	inTerm2 := h.queryAt(70 * time.Minute)
	h.suggestContinueAsNew(124 * time.Minute)
	h.run(newInput("sub-edge", withVeto("PT20M"))) // the window ends at t0+75m, after the term end at 63m

	assert.Equal(t, domain.PlanChangeRenewal, req.applied(t).PendingPlanChange.Effective)
	assert.Equal(t, 2, inTerm2.TermNumber)
	assert.Equal(t, "std-hourly", inTerm2.PlanID)
	require.NotNil(t, inTerm2.PendingPlanChange)
	assert.Equal(t, domain.PlanChangeAwaitingPublisher, inTerm2.PendingPlanChange.Stage)

	third := h.continued()
	assert.Equal(t, at(75*time.Minute), h.store.Event(t, domain.EventPlanChangeScheduled).At)
	assert.Equal(t, "basic-hourly", third.Subscription.PlanID, "the renewal at 123m moves to the new plan")
	assert.Equal(t, 3, third.Subscription.TermNumber)
	charges := h.store.LedgerOfKind(domain.LedgerCharge)
	require.Len(t, charges, 3)
	assert.Equal(t, unitPrice*testQuantity, charges[1].AmountMinor, "term 2 on the old plan")
	assert.Equal(t, int64(800*testQuantity), charges[2].AmountMinor)
	assert.Equal(t, 3, charges[2].TermNumber)
	assert.Empty(t, h.store.LedgerOfKind(domain.LedgerProration))
}

// The partner withdraws a scheduled downgrade before the renewal: the next
// term starts on the old plan at its price; the publisher is told. A
// withdrawal with nothing pending is refused.
func TestWithdrawnDowngradeLeavesTheRenewalOnTheOldPlan(t *testing.T) {
	h := newHarness(t)
	h.fulfil()
	nothing := h.update(10*time.Minute, UpdateWithdrawPlanChange, "wd-0", PlanChangeAnswer{MessageID: "wd-0", Actor: admin})
	h.update(20*time.Minute, UpdateChangePlan, "pc-w", changePlan("pc-w", basicPlan()))
	withdrawn := h.update(40*time.Minute, UpdateWithdrawPlanChange, "wd-1", PlanChangeAnswer{MessageID: "wd-1", Actor: admin})
	again := h.update(41*time.Minute, UpdateWithdrawPlanChange, "wd-2", PlanChangeAnswer{MessageID: "wd-2", Actor: admin})
	h.suggestContinueAsNew(termEnd + time.Minute)
	h.run(newInput("sub-wd", withNotifications, withVeto("PT5M")))

	nothing.rejectedWith(t, ErrInvalidState)
	again.rejectedWith(t, ErrInvalidState)
	s := withdrawn.applied(t)
	assert.Nil(t, s.PendingPlanChange)
	assert.Equal(t, "std-hourly", s.PlanID)
	ev := h.store.Event(t, domain.EventPlanChangeWithdrawn)
	assert.Equal(t, "agent:alice", ev.Actor)
	assert.Equal(t, domain.PlanChangeScheduled, ev.Detail["stage"])
	assert.Equal(t, "basic-hourly", ev.Detail["plan_id"])

	next := h.continued()
	assert.Equal(t, "std-hourly", next.Subscription.PlanID)
	assert.Nil(t, next.PendingPlan)
	charges := h.store.LedgerOfKind(domain.LedgerCharge)
	require.Len(t, charges, 2)
	assert.Equal(t, unitPrice*int64(testQuantity), charges[1].AmountMinor, "term 2 at the old plan's price")
	assert.Empty(t, h.store.EventsOfType(domain.EventPlanChanged))
	assert.Equal(t, []string{domain.NotifyPurchased, domain.NotifyActivated, domain.NotifyPlanChangeRequested,
		domain.NotifyPlanChangeWithdrawn, domain.NotifyRenewed}, h.store.NotificationTypes())
	h.store.requireConsistent(t)
}

// An upgrade withdrawn inside its veto window never takes effect: the timer
// that would have settled it finds nothing pending.
func TestWithdrawnUpgradeNeverTakesEffect(t *testing.T) {
	h := newHarness(t)
	h.fulfil()
	h.update(20*time.Minute, UpdateChangePlan, "pc-wu", changePlan("pc-wu", premiumPlan()))
	h.update(22*time.Minute, UpdateWithdrawPlanChange, "wd-u", PlanChangeAnswer{MessageID: "wd-u", Actor: admin})
	late := h.update(23*time.Minute, UpdateAcceptPlanChange, "wh-u", answer("wh-u", ""))
	h.run(newInput("sub-wu", withoutAutoRenew, withVeto("PT5M")))

	late.rejectedWith(t, ErrInvalidState)
	final := h.result()
	assert.Equal(t, "std-hourly", final.PlanID)
	assert.Empty(t, h.store.LedgerOfKind(domain.LedgerProration))
	assert.Empty(t, h.store.EventsOfType(domain.EventPlanChanged))
}

// A message that arrives while a transition's write is in flight is judged
// on the state that write leaves, not on the one before it: the read model
// may already show the new state (the write committed before the workflow
// adopted it), and a client that read it must not be refused for what the
// workflow has not adopted yet. Here a downgrade asked in the instant the
// upgrade's veto window ends, while the upgrade's write runs, is accepted
// once the upgrade has taken effect (it used to be refused: "a change is
// already pending").
func TestMessageDuringAWriteIsJudgedOnTheStateItLeaves(t *testing.T) {
	requested := 20*time.Minute + 7*time.Second
	vetoEnd := requested + 5*time.Minute
	h := newHarness(t)
	h.fulfil()
	up := h.update(requested, UpdateChangePlan, "pc-up", changePlan("pc-up", premiumPlan()))
	down := h.update(vetoEnd, UpdateChangePlan, "pc-down", changePlan("pc-down", basicPlan()))
	h.holdSave(domain.EventPlanChanged, down.validated)
	h.run(newInput("sub-race", withNotifications, withoutAutoRenew, withVeto("PT5M")))

	up.applied(t)
	s := down.applied(t)
	assert.Equal(t, "premium-hourly", s.PlanID, "judged after the upgrade took effect")
	require.NotNil(t, s.PendingPlanChange)
	assert.Equal(t, "basic-hourly", s.PendingPlanChange.PlanID)
	assert.Equal(t, "premium-hourly", s.PendingPlanChange.FromPlanID)
}
