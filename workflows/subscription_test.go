package workflows

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"github.com/partnerhub/fulfillment/domain"
)

// --- purchase -----------------------------------------------------------

func TestPurchaseIsRecorded(t *testing.T) {
	for _, tc := range []struct {
		name   string
		notify bool
	}{{"publisher without webhook", false}, {"publisher with webhook", true}} {
		t.Run(tc.name, func(t *testing.T) {
			notify := tc.notify
			h := newHarness(t)
			opts := []func(*State){withoutAutoRenew}
			if notify {
				opts = append(opts, withNotifications)
			}
			purchase := h.update(0, UpdatePurchase, "idem-purchase-1")
			h.run(newInput("sub-p", opts...)) // nobody fulfils: ends at the activation deadline

			answer := purchase.applied(t)
			assert.Equal(t, "sub-p", answer.ID)
			assert.Equal(t, domain.StatusPendingFulfillment, answer.Status)
			assert.Equal(t, int64(1), answer.Version, "the answer is the recorded snapshot")
			assert.Equal(t, testQuantity, answer.Quantity)

			require.NotEmpty(t, h.store.Changes())
			first := h.store.Changes()[0]
			require.Len(t, first.Events, 2)
			assert.Equal(t, "purchased", first.Events[0].Type)
			assert.Equal(t, "agent:alice", first.Events[0].Actor)
			assert.Equal(t, t0, first.Events[0].At)
			assert.Equal(t, jsonOf(map[string]any{"quantity": testQuantity, "plan_id": "std-hourly"}), first.Events[0].Detail)
			assert.Equal(t, "link_issued", first.Events[1].Type)
			assert.Equal(t, "system", first.Events[1].Actor)
			assert.Equal(t, []string{"sub-p:1", "sub-p:2"}, []string{first.Events[0].Key, first.Events[1].Key})
			require.NotNil(t, first.IssueLinkUntil)
			assert.Equal(t, at(testActivation), *first.IssueLinkUntil)
			assert.Empty(t, first.Ledger)
			assert.Equal(t, domain.StatusPendingFulfillment, first.Subscription.Status)
			if notify {
				require.Len(t, first.Notifications, 1)
				assert.Equal(t, domain.NotifyPurchased, first.Notifications[0].Type)
				assert.Equal(t, "msg_sub-p_2", first.Notifications[0].ID)
				assert.Equal(t, t0, first.Notifications[0].OccurredAt)
			} else {
				assert.Empty(t, first.Notifications)
			}
			// Only the first change issues a link.
			for _, c := range h.store.Changes()[1:] {
				assert.Nil(t, c.IssueLinkUntil)
			}
			h.store.requireConsistent(t)
		})
	}
}

func TestRecordedPurchaseIsNotRecordedAgain(t *testing.T) {
	h := newHarness(t)
	in := newInput("sub-r", withoutAutoRenew)
	in.Recorded = true
	in.EventSeq = 2
	purchase := h.update(0, UpdatePurchase, "idem")
	h.run(in)
	assert.Equal(t, domain.StatusPendingFulfillment, purchase.applied(t).Status)
	assert.Equal(t, []string{"fulfillment_expired"}, h.store.EventTypes())
	for _, c := range h.store.Changes() {
		assert.Nil(t, c.IssueLinkUntil)
	}
}

// --- fulfillment and billing --------------------------------------------

func TestBillingStartsOnceBothCallbacksAreIn(t *testing.T) {
	type step struct {
		at   time.Duration
		name string
		arg  any
	}
	licenses := LicensesRequest{MessageID: "wh-l", Actor: publisher, Assigned: 3}
	activate := FulfillmentRequest{MessageID: "wh-a", Actor: publisher, SiteURL: ptr("https://t.example/woodgrove")}
	for _, tc := range []struct {
		name        string
		first, last step
		events      []string
	}{
		{"licenses then activate",
			step{testLicensesAt, UpdateAssignLicenses, licenses}, step{testActivateAt, UpdateConfirmFulfillment, activate},
			[]string{"purchased", "link_issued", "licenses_assigned", "fulfillment_confirmed", "billing_started", "expired"}},
		{"activate then licenses",
			step{testLicensesAt, UpdateConfirmFulfillment, activate}, step{testActivateAt, UpdateAssignLicenses, licenses},
			[]string{"purchased", "link_issued", "fulfillment_confirmed", "licenses_assigned", "billing_started", "expired"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			first := h.update(tc.first.at, tc.first.name, "u-first", tc.first.arg)
			last := h.update(tc.last.at, tc.last.name, "u-last", tc.last.arg)
			midTerm := h.queryAt(30 * time.Minute)
			h.run(newInput("sub-b", withoutAutoRenew, withNotifications))

			assert.Equal(t, domain.StatusPendingFulfillment, first.applied(t).Status, "one callback is not enough")
			got := last.applied(t)
			assert.Equal(t, domain.StatusActive, got.Status, "the answer to the last callback already shows active")
			assert.Equal(t, 3, got.LicensesAssigned)
			assert.True(t, got.FulfillmentConfirmed)
			assert.Equal(t, "https://t.example/woodgrove", *got.SiteURL)
			assert.Equal(t, 1, got.TermNumber)
			assert.Equal(t, at(testActivateAt), *got.BillingStartedAt)
			assert.Equal(t, at(testActivateAt), *got.TermStart)
			assert.Equal(t, at(testActivateAt+testTerm), *got.TermEnd)
			assert.Equal(t, at(testActivateAt+testWindow), *got.CancellationWindowEndsAt)
			assert.Equal(t, domain.StatusActive, midTerm.Status)

			require.Equal(t, []domain.LedgerEntry{{
				ID: "charge:sub-b:1", SubscriptionID: "sub-b", TermNumber: 1, Kind: domain.LedgerCharge,
				AmountMinor: unitPrice * testQuantity, Currency: "USD",
				PeriodStart: at(testActivateAt), PeriodEnd: at(testActivateAt + testTerm), CreatedAt: at(testActivateAt),
			}}, h.store.Ledger(), "exactly one charge: unit price × quantity")

			assert.Equal(t, tc.events, h.store.EventTypes())
			billing := h.store.Event(t, "billing_started")
			assert.EqualValues(t, unitPrice*testQuantity, billing.Detail["amount_minor"])
			assert.Equal(t, at(testActivateAt), billing.At)
			assert.Equal(t, []string{domain.NotifyPurchased, domain.NotifyActivated, domain.NotifyExpired}, h.store.NotificationTypes())
			assert.Equal(t, []string{"active", "expired"}, h.upsertedStatuses())
			// The charge, the status and the billing event land in one atomic change.
			require.Len(t, h.store.Changes(), 4, "purchase, first callback, last callback, expiry")
			billed := h.store.Changes()[2]
			assert.Len(t, billed.Ledger, 1)
			assert.Equal(t, domain.StatusActive, billed.Subscription.Status)

			final := h.result()
			assert.Equal(t, domain.StatusExpired, final.Status)
			h.store.requireConsistent(t)
		})
	}
}

func TestCallbacksDeliveredTwiceBillOnce(t *testing.T) {
	h := newHarness(t)
	lic := LicensesRequest{MessageID: "wh-l", Actor: publisher, Assigned: 3}
	act := FulfillmentRequest{MessageID: "wh-a", Actor: publisher}
	// Same update id: Temporal deduplicates.
	l1 := h.update(testLicensesAt, UpdateAssignLicenses, "wh-l", lic)
	l2 := h.update(testLicensesAt+time.Second, UpdateAssignLicenses, "wh-l", lic)
	a1 := h.update(testActivateAt, UpdateConfirmFulfillment, "wh-a", act)
	a2 := h.update(testActivateAt, UpdateConfirmFulfillment, "wh-a", act) // while the first is in flight
	// Same webhook-id under a new update id (as after continue-as-new): the workflow deduplicates.
	lic2 := lic
	lic2.Assigned = 4 // a redelivery carries the original body; a different one must still change nothing
	l3 := h.update(testLicensesAt+30*time.Second, UpdateAssignLicenses, "retry-l", lic2)
	a3 := h.update(testActivateAt+time.Minute, UpdateConfirmFulfillment, "retry-a", act)
	l4 := h.update(testActivateAt+2*time.Minute, UpdateAssignLicenses, "retry-l2", lic2)
	h.run(newInput("sub-d", withoutAutoRenew))

	for _, o := range []*outcome{l1, l2, l3} {
		s := o.applied(t)
		assert.Equal(t, 3, s.LicensesAssigned, o.name)
	}
	for _, o := range []*outcome{a1, a2, a3, l4} {
		s := o.applied(t)
		assert.Equal(t, domain.StatusActive, s.Status, o.name)
		assert.Equal(t, 3, s.LicensesAssigned, o.name)
	}
	require.Len(t, h.store.LedgerOfKind(domain.LedgerCharge), 1)
	assert.Equal(t, "charge:sub-d:1", h.store.Ledger()[0].ID)
	assert.Len(t, h.store.EventsOfType("licenses_assigned"), 1)
	assert.Len(t, h.store.EventsOfType("fulfillment_confirmed"), 1)
	assert.Len(t, h.store.EventsOfType("billing_started"), 1)
	h.store.requireConsistent(t)
}

func TestLicensesOutsideOneToQuantityAreRejected(t *testing.T) {
	h := newHarness(t)
	zero := h.update(time.Minute, UpdateAssignLicenses, "l0", LicensesRequest{MessageID: "l0", Assigned: 0})
	neg := h.update(time.Minute, UpdateAssignLicenses, "l-1", LicensesRequest{MessageID: "l-1", Assigned: -1})
	over := h.update(time.Minute, UpdateAssignLicenses, "l6", LicensesRequest{MessageID: "l6", Assigned: testQuantity + 1})
	all := h.update(2*time.Minute, UpdateAssignLicenses, "l5", LicensesRequest{MessageID: "l5", Assigned: testQuantity})
	one := h.update(3*time.Minute, UpdateAssignLicenses, "l1", LicensesRequest{MessageID: "l1", Assigned: 1})
	h.update(4*time.Minute, UpdateConfirmFulfillment, "a", FulfillmentRequest{MessageID: "a"})
	overActive := h.update(5*time.Minute, UpdateAssignLicenses, "l7", LicensesRequest{MessageID: "l7", Assigned: testQuantity + 2})
	h.run(newInput("sub-l", withoutAutoRenew))

	zero.rejectedWith(t, ErrValidationFailed)
	neg.rejectedWith(t, ErrValidationFailed)
	over.rejectedWith(t, ErrValidationFailed)
	overActive.rejectedWith(t, ErrValidationFailed)
	assert.Equal(t, testQuantity, all.applied(t).LicensesAssigned)
	assert.Equal(t, 1, one.applied(t).LicensesAssigned)
	assert.Len(t, h.store.EventsOfType("licenses_assigned"), 2, "rejected callbacks leave no trace")
	assert.Equal(t, 1, h.result().LicensesAssigned)
}

func TestActivateAgainOnActiveHasNoEffect(t *testing.T) {
	h := newHarness(t)
	h.fulfil()
	var changesBefore int
	h.at(5*time.Minute-time.Second, func() { changesBefore = len(h.store.Changes()) })
	again := h.update(5*time.Minute, UpdateConfirmFulfillment, "wh-a2",
		FulfillmentRequest{MessageID: "wh-a2", Actor: publisher, SiteURL: ptr("https://elsewhere.example")})
	var changesAfter int
	h.at(5*time.Minute+time.Second, func() { changesAfter = len(h.store.Changes()) })
	h.run(newInput("sub-a", withoutAutoRenew))

	s := again.unchanged(t)
	assert.Equal(t, domain.StatusActive, s.Status)
	assert.Equal(t, "https://contoso.example/t/woodgrove", *s.SiteURL, "no effect: the site url stays")
	assert.Equal(t, changesBefore, changesAfter, "nothing saved")
	assert.Len(t, h.store.EventsOfType("fulfillment_confirmed"), 1)
	assert.Len(t, h.store.Ledger(), 1)
}

// Once a subscription is terminal its workflow closes as soon as in-flight
// handlers answer; messages that reach it in that instant are refused (by the
// validator once the cancel is saved, by the handler's re-check while its
// write runs; after the workflow closes the server answers for it).
func TestMessagesAfterTerminalStatusAreRejected(t *testing.T) {
	h := newHarness(t)
	h.fulfil()
	var cancel, licenses, activate, change, deactivate, cancelAgain, link, redelivered *outcome
	h.at(5*time.Minute, func() {
		cancel = h.updateNow(UpdateCancel, "c1", EndRequest{MessageID: "c1", Actor: admin})
		licenses = h.updateNow(UpdateAssignLicenses, "l2", LicensesRequest{MessageID: "l2", Assigned: 2})
		activate = h.updateNow(UpdateConfirmFulfillment, "a2", FulfillmentRequest{MessageID: "a2"})
		change = h.updateNow(UpdateChange, "p1", ChangeRequest{MessageID: "p1", Nickname: ptr("late")})
		deactivate = h.updateNow(UpdateDeactivate, "d1", EndRequest{MessageID: "d1", Actor: admin})
		cancelAgain = h.updateNow(UpdateCancel, "c2", EndRequest{MessageID: "c2", Actor: admin})
		link = h.updateNow(UpdateLink, "k1", LinkRequest{SubscriptionID: "app-1", CustomerID: "woodgrove", PartnerID: "fabrikam"})
		redelivered = h.updateNow(UpdateCancel, "c1-again", EndRequest{MessageID: "c1", Actor: admin})
	})
	h.run(newInput("sub-t"))

	assert.Equal(t, domain.StatusCancelled, cancel.applied(t).Status)
	licenses.refusedWith(t, ErrInvalidState)
	// Validated on the state the cancel's write in flight leaves: cancelled.
	activate.refusedWith(t, ErrInvalidState)
	change.refusedWith(t, ErrInvalidState)
	deactivate.refusedWith(t, ErrInvalidState)
	cancelAgain.refusedWith(t, ErrInvalidState)
	link.refusedWith(t, ErrValidationFailed)
	assert.Equal(t, domain.StatusCancelled, redelivered.applied(t).Status, "a redelivered cancel gets the same answer")
	assert.Equal(t, domain.StatusCancelled, h.result().Status)
	assert.Len(t, h.store.EventsOfType("cancelled"), 1)
	assert.Len(t, h.store.LedgerOfKind(domain.LedgerRefund), 1)
	assert.Nil(t, h.result().Nickname, "the late change was not applied")
}

// --- timers and ends ----------------------------------------------------

func TestActivationDeadlinePassesWithoutCharge(t *testing.T) {
	h := newHarness(t)
	lic := h.update(testLicensesAt, UpdateAssignLicenses, "l", LicensesRequest{MessageID: "l", Assigned: 1})
	before := h.queryAt(testActivation - time.Second)
	h.run(newInput("sub-x", withNotifications))

	lic.applied(t)
	assert.Equal(t, domain.StatusPendingFulfillment, before.Status)
	s := h.result()
	assert.Equal(t, domain.StatusFulfillmentExpired, s.Status)
	assert.Nil(t, s.BillingStartedAt)
	assert.Empty(t, h.store.Ledger(), "no charge")
	ev := h.store.EventsOfType("fulfillment_expired")
	require.Len(t, ev, 1)
	assert.Equal(t, at(testActivation), ev[0].At)
	assert.Equal(t, "system", ev[0].Actor)
	assert.Equal(t, []string{domain.NotifyPurchased, domain.NotifyFulfillmentExpired}, h.store.NotificationTypes())
	assert.Equal(t, []string{"fulfillment_expired"}, h.upsertedStatuses())
	assert.Equal(t, at(testActivation), h.env.Now().UTC(), "the workflow closes at the deadline")
}

func TestCallbackJustBeforeDeadlineStillActivates(t *testing.T) {
	h := newHarness(t)
	h.update(testLicensesAt, UpdateAssignLicenses, "l", LicensesRequest{MessageID: "l", Assigned: 1})
	act := h.update(testActivation-time.Millisecond, UpdateConfirmFulfillment, "a", FulfillmentRequest{MessageID: "a"})
	h.run(newInput("sub-x2", withoutAutoRenew))
	assert.Equal(t, domain.StatusActive, act.applied(t).Status)
	assert.Equal(t, domain.StatusExpired, h.result().Status, "it ran its term instead of expiring unfulfilled")
	assert.Len(t, h.store.LedgerOfKind(domain.LedgerCharge), 1)
}

func TestCancelBeforeBillingCancelsWithoutLedger(t *testing.T) {
	h := newHarness(t)
	h.update(testLicensesAt, UpdateAssignLicenses, "l", LicensesRequest{MessageID: "l", Assigned: 2})
	cancel := h.update(testActivateAt, UpdateCancel, "c", EndRequest{MessageID: "c", Actor: admin})
	h.run(newInput("sub-c0", withNotifications))

	got := cancel.applied(t)
	assert.Equal(t, domain.StatusCancelled, got.Status)
	assert.Equal(t, domain.StatusCancelled, h.result().Status)
	assert.Empty(t, h.store.Ledger(), "no charge, no refund")
	ev := h.store.EventsOfType("cancelled")
	require.Len(t, ev, 1)
	assert.Equal(t, "agent:alice", ev[0].Actor)
	assert.Nil(t, ev[0].Detail)
	assert.Equal(t, []string{domain.NotifyPurchased, domain.NotifyCancelled}, h.store.NotificationTypes())
	assert.Equal(t, []string{"cancelled"}, h.upsertedStatuses())
}

func TestCancelInsideWindowRefundsTheTerm(t *testing.T) {
	h := newHarness(t)
	h.fulfil()
	cancel := h.update(testActivateAt+testWindow-time.Millisecond, UpdateCancel, "c", EndRequest{MessageID: "c", Actor: admin})
	h.run(newInput("sub-c1", withNotifications))

	assert.Equal(t, domain.StatusCancelled, cancel.applied(t).Status)
	ledger := h.store.Ledger()
	require.Len(t, ledger, 2)
	charge, refund := ledger[0], ledger[1]
	assert.Equal(t, domain.LedgerRefund, refund.Kind)
	assert.Equal(t, "refund:sub-c1:1", refund.ID)
	assert.Equal(t, -charge.AmountMinor, refund.AmountMinor, "refund = minus the term's billed amount")
	assert.Equal(t, int64(-6000), refund.AmountMinor)
	assert.Equal(t, 1, refund.TermNumber)
	assert.Equal(t, charge.PeriodStart, refund.PeriodStart)
	assert.Equal(t, charge.PeriodEnd, refund.PeriodEnd)
	assert.Equal(t, int64(0), h.store.Balance())
	ev := h.store.EventsOfType("cancelled")
	require.Len(t, ev, 1)
	assert.Equal(t, jsonOf(map[string]any{"refund_minor": int64(6000)}), ev[0].Detail)
	assert.Equal(t, []string{domain.NotifyPurchased, domain.NotifyActivated, domain.NotifyCancelled}, h.store.NotificationTypes())
	assert.Equal(t, []string{"active", "cancelled"}, h.upsertedStatuses())
}

func TestCancelWindowIsHalfOpen(t *testing.T) {
	windowEnd := testActivateAt + testWindow
	for _, tc := range []struct {
		name   string
		at     time.Duration
		refuse bool
	}{
		{"one millisecond before the window closes", windowEnd - time.Millisecond, false},
		{"at the very instant the window closes", windowEnd, true},
		{"after the window", windowEnd + time.Second, true},
		{"late in the term", testActivateAt + 50*time.Minute, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.fulfil()
			cancel := h.update(tc.at, UpdateCancel, "c", EndRequest{MessageID: "c", Actor: admin})
			h.run(newInput("sub-w", withoutAutoRenew))
			if tc.refuse {
				cancel.rejectedWith(t, ErrCancellationWindowClosed)
				assert.Equal(t, domain.StatusExpired, h.result().Status, "it lives on to its term end")
				assert.Empty(t, h.store.LedgerOfKind(domain.LedgerRefund))
				assert.Equal(t, unitPrice*testQuantity, h.store.Balance())
			} else {
				assert.Equal(t, domain.StatusCancelled, cancel.applied(t).Status)
				assert.Equal(t, int64(0), h.store.Balance())
			}
		})
	}
}

func TestDeactivateIsFinal(t *testing.T) {
	h := newHarness(t)
	h.fulfil()
	var deactivate, link, again, redelivered, licenses *outcome
	h.at(20*time.Minute, func() {
		deactivate = h.updateNow(UpdateDeactivate, "d", EndRequest{MessageID: "d", Actor: admin})
		link = h.updateNow(UpdateLink, "k", LinkRequest{SubscriptionID: "app-9", CustomerID: "woodgrove", PartnerID: "fabrikam"})
		again = h.updateNow(UpdateDeactivate, "d2", EndRequest{MessageID: "d2", Actor: admin})
		redelivered = h.updateNow(UpdateDeactivate, "d-retry", EndRequest{MessageID: "d", Actor: admin})
		licenses = h.updateNow(UpdateAssignLicenses, "l9", LicensesRequest{MessageID: "l9", Assigned: 1})
	})
	h.run(newInput("sub-dx", withNotifications))

	assert.Equal(t, domain.StatusDeactivated, deactivate.applied(t).Status)
	link.refusedWith(t, ErrValidationFailed)
	again.refusedWith(t, ErrInvalidState)
	licenses.refusedWith(t, ErrInvalidState)
	assert.Equal(t, domain.StatusDeactivated, redelivered.applied(t).Status)
	s := h.result()
	assert.Equal(t, domain.StatusDeactivated, s.Status)
	assert.Empty(t, s.LinkedSubscriptionIDs)
	require.Len(t, h.store.Ledger(), 1, "no refund on deactivation")
	assert.Equal(t, domain.LedgerCharge, h.store.Ledger()[0].Kind)
	ev := h.store.EventsOfType("deactivated")
	require.Len(t, ev, 1)
	assert.Equal(t, "agent:alice", ev[0].Actor)
	assert.Equal(t, at(20*time.Minute), ev[0].At)
	assert.Equal(t, []string{domain.NotifyPurchased, domain.NotifyActivated, domain.NotifyDeactivated}, h.store.NotificationTypes())
	assert.Equal(t, []string{"active", "deactivated"}, h.upsertedStatuses())
	assert.Equal(t, at(20*time.Minute), h.env.Now().UTC(), "the workflow closes right away, not at term end")
}

func TestDeactivateWhilePending(t *testing.T) {
	h := newHarness(t)
	d := h.update(time.Minute, UpdateDeactivate, "d", EndRequest{MessageID: "d", Actor: admin})
	h.run(newInput("sub-dp"))
	assert.Equal(t, domain.StatusDeactivated, d.applied(t).Status)
	assert.Equal(t, []string{"purchased", "link_issued", "deactivated"}, h.store.EventTypes())
	assert.Empty(t, h.store.Ledger())
}

// --- persistence --------------------------------------------------------

func TestSaveIsRetriedWithTheSameChange(t *testing.T) {
	h := newHarness(t)
	h.store.failFirst = 2
	purchase := h.update(0, UpdatePurchase, "p")
	h.run(newInput("sub-s", withoutAutoRenew))
	assert.Equal(t, domain.StatusPendingFulfillment, purchase.applied(t).Status)
	assert.Equal(t, []string{"purchased", "link_issued", "fulfillment_expired"}, h.store.EventTypes())
	require.Len(t, h.store.tried, 4, "two failures, then the purchase, then the expiry")
	assert.Equal(t, h.store.tried[0], h.store.tried[1], "a retry sends the very same change")
	assert.Equal(t, h.store.tried[0], h.store.tried[2])
	require.Len(t, h.store.Changes(), 2)
	assert.Equal(t, h.store.tried[2], h.store.Changes()[0])
}

// --- small pure pieces --------------------------------------------------

func TestProblemCode(t *testing.T) {
	code, msg, ok := ProblemCode(problem(ErrCancellationWindowClosed, "closed at %s", "noon"))
	assert.True(t, ok)
	assert.Equal(t, ErrCancellationWindowClosed, code)
	assert.Equal(t, "closed at noon", msg)
	_, _, ok = ProblemCode(errors.New("boom"))
	assert.False(t, ok)
	_, _, ok = ProblemCode(nil)
	assert.False(t, ok)
}

func TestSearchAttributesAndMemo(t *testing.T) {
	in := newInput("sub-sa")
	sa := SearchAttributes(in.Subscription)
	for key, want := range map[string]string{
		SearchPartnerID: "fabrikam", SearchCustomerID: "woodgrove", SearchOfferID: "contoso-analytics",
		SearchSubscriptionStatus: "pending_fulfillment",
	} {
		got, ok := sa.GetKeyword(temporal.NewSearchAttributeKeyKeyword(key))
		assert.True(t, ok, key)
		assert.Equal(t, want, got, key)
	}
	assert.Equal(t, map[string]any{"nickname": "", "offer": "contoso-analytics", "plan": "Standard hourly"}, Memo(in.Subscription, in.Plan))
	in.Subscription.Nickname = ptr("HQ")
	assert.Equal(t, "HQ", Memo(in.Subscription, in.Plan)["nickname"])
	assert.Equal(t, "subscription/sub-sa", WorkflowID("sub-sa"))
}
