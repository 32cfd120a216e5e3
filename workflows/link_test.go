package workflows

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/partnerhub/fulfillment/domain"
)

func linkRequest(id string) LinkRequest {
	return LinkRequest{SubscriptionID: id, CustomerID: "woodgrove", PartnerID: "fabrikam"}
}

// cascade lists the signals a parent sends its linked subscriptions. They go
// out concurrently, so compare with ElementsMatch.
func cascade(parentID string, status domain.Status, linked ...string) []sentSignal {
	return cascadeWithRefund(parentID, status, false, linked...)
}

// cascadeWithRefund: the signals of a parent that never billed or was
// cancelled inside its window (its linked subscriptions refund their term).
func cascadeWithRefund(parentID string, status domain.Status, refund bool, linked ...string) []sentSignal {
	var out []sentSignal
	for _, id := range linked {
		out = append(out, sentSignal{WorkflowID: WorkflowID(id), Name: SignalParentEnded,
			Arg: ParentEnded{ParentID: parentID, Status: status, Refund: refund}})
	}
	return out
}

func TestLinkAcceptsOnlyTheSameCustomer(t *testing.T) {
	h := newHarness(t)
	h.fulfil()
	otherCustomer := h.update(4*time.Minute, UpdateLink, "k-x",
		LinkRequest{SubscriptionID: "app-x", CustomerID: "contoso-bank", PartnerID: "fabrikam"})
	otherPartner := h.update(4*time.Minute, UpdateLink, "k-y",
		LinkRequest{SubscriptionID: "app-y", CustomerID: "woodgrove", PartnerID: "adatum"})
	pendingLink := h.update(time.Minute, UpdateLink, "k-0", linkRequest("app-0")) // a pending parent takes links
	first := h.update(5*time.Minute, UpdateLink, "k-1", linkRequest("app-1"))
	again := h.update(6*time.Minute, UpdateLink, "k-1b", linkRequest("app-1"))
	second := h.update(7*time.Minute, UpdateLink, "k-2", linkRequest("app-2"))
	deactivate := h.update(20*time.Minute, UpdateDeactivate, "d", EndRequest{MessageID: "d", Actor: admin})
	h.run(newInput("sub-parent"))

	otherCustomer.rejectedWith(t, ErrValidationFailed)
	otherPartner.rejectedWith(t, ErrValidationFailed)
	assert.Equal(t, []string{"app-0"}, pendingLink.applied(t).LinkedSubscriptionIDs)
	assert.Equal(t, []string{"app-0", "app-1"}, first.applied(t).LinkedSubscriptionIDs)
	assert.Equal(t, []string{"app-0", "app-1"}, again.unchanged(t).LinkedSubscriptionIDs, "linking twice changes nothing")
	assert.Equal(t, []string{"app-0", "app-1", "app-2"}, second.applied(t).LinkedSubscriptionIDs)
	assert.Equal(t, domain.StatusDeactivated, deactivate.applied(t).Status)

	linked := h.store.EventsOfType("subscription_linked")
	require.Len(t, linked, 3)
	assert.Equal(t, jsonOf(map[string]any{"subscription_id": "app-1"}), linked[1].Detail)
	assert.Equal(t, []string{"app-0", "app-1", "app-2"}, h.store.Last().LinkedSubscriptionIDs, "the read model sees the links")
	assert.ElementsMatch(t, cascade("sub-parent", domain.StatusDeactivated, "app-0", "app-1", "app-2"), h.cascadeSignals())
}

// Whatever terminal status the parent reaches, each linked subscription's
// workflow gets the cascade signal, once.
func TestParentSignalsLinkedOnEveryTerminalStatus(t *testing.T) {
	for _, tc := range []struct {
		status domain.Status
		setup  func(h *harness)
		opts   []func(*State)
	}{
		{domain.StatusFulfillmentExpired, func(h *harness) {}, nil},
		{domain.StatusCancelled, func(h *harness) {
			h.update(time.Minute, UpdateCancel, "c", EndRequest{MessageID: "c", Actor: admin})
		}, nil},
		{domain.StatusDeactivated, func(h *harness) {
			h.fulfil()
			h.update(30*time.Minute, UpdateDeactivate, "d", EndRequest{MessageID: "d", Actor: admin})
		}, nil},
		{domain.StatusExpired, func(h *harness) { h.fulfil() }, []func(*State){withoutAutoRenew}},
	} {
		t.Run(string(tc.status), func(t *testing.T) {
			h := newHarness(t)
			tc.setup(h)
			h.run(newInput("sub-root", append(tc.opts, withLinked("app-1", "app-2"))...))
			assert.Equal(t, tc.status, h.result().Status)
			neverBilled := tc.status == domain.StatusFulfillmentExpired || tc.status == domain.StatusCancelled
			assert.ElementsMatch(t, cascadeWithRefund("sub-root", tc.status, neverBilled, "app-1", "app-2"), h.cascadeSignals())
		})
	}
}

func TestRenewalDoesNotSignalLinked(t *testing.T) {
	h := newHarness(t)
	h.fulfil()
	h.suggestContinueAsNew(termEnd + testTerm + time.Minute) // two renewals in the run
	h.run(newInput("sub-root", withLinked("app-1")))
	next := h.continued()
	assert.Equal(t, 3, next.Subscription.TermNumber)
	assert.Equal(t, []string{"app-1"}, next.Subscription.LinkedSubscriptionIDs, "links survive the renewals and continue-as-new")
	assert.Empty(t, h.cascadeSignals(), "a renewal ends nothing")
	assert.Equal(t, []sentSignal{{WorkflowID: WorkflowID("app-1"), Name: SignalParentActivated}}, h.sentSignals(),
		"only the activation was announced, so the app may start billing")
}

func TestUndeliverableCascadeSignalDoesNotFailTheParent(t *testing.T) {
	h := newHarness(t)
	h.signalErr = errors.New("unknown external workflow execution")
	h.update(time.Minute, UpdateDeactivate, "d", EndRequest{MessageID: "d", Actor: admin})
	h.run(newInput("sub-root", withLinked("app-gone", "app-2")))
	assert.Equal(t, domain.StatusDeactivated, h.result().Status)
	assert.Len(t, h.sentSignals(), 2, "one failure does not stop the others")
}

func TestLinkedSubscriptionDeactivatesWhenParentEnds(t *testing.T) {
	for _, tc := range []struct {
		name     string
		fulfil   bool
		at       time.Duration
		wantLast []string
	}{
		{"while pending", false, time.Minute, []string{"purchased", "link_issued", "deactivated"}},
		{"while active, inside its window", true, 5 * time.Minute,
			[]string{"purchased", "link_issued", "licenses_assigned", "fulfillment_confirmed", "billing_started", "deactivated"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			if tc.fulfil {
				h.store.parentStatus = domain.StatusActive // the app may bill: its parent is active
				h.fulfil()
			}
			h.signalParentEnded(tc.at, ParentEnded{ParentID: "sub-parent", Status: domain.StatusCancelled})
			h.run(newInput("sub-app", withParent("sub-parent"), withLinked("sub-grandchild"), withNotifications))

			s := h.result()
			assert.Equal(t, domain.StatusDeactivated, s.Status)
			assert.Equal(t, tc.wantLast, h.store.EventTypes())
			ev := h.store.Event(t, "deactivated")
			assert.Equal(t, "system", ev.Actor)
			assert.Equal(t, at(tc.at), ev.At)
			assert.Equal(t, jsonOf(map[string]any{"reason": "parent_ended"}), ev.Detail)
			assert.Empty(t, h.store.LedgerOfKind(domain.LedgerRefund), "a cascade is a deactivation: no refund")
			assert.Contains(t, h.store.NotificationTypes(), domain.NotifyDeactivated)
			assert.ElementsMatch(t, cascadeWithRefund("sub-app", domain.StatusDeactivated, !tc.fulfil, "sub-grandchild"), h.cascadeSignals())
		})
	}
}

// A → B → C: each level reacts to its parent's signal and signals its own
// linked subscriptions. The signal each level sends is what the next level
// receives.
func TestCascadeThroughThreeLevels(t *testing.T) {
	// A, the root, is deactivated by an admin.
	a := newHarness(t)
	a.fulfil()
	a.update(20*time.Minute, UpdateDeactivate, "d", EndRequest{MessageID: "d", Actor: admin})
	a.run(newInput("sub-a", withLinked("sub-b")))
	require.Equal(t, domain.StatusDeactivated, a.result().Status)
	toB := a.cascadeSignals()
	require.ElementsMatch(t, cascade("sub-a", domain.StatusDeactivated, "sub-b"), toB)

	// B, active under A, gets A's signal.
	b := newHarness(t)
	b.store.parentStatus = domain.StatusActive
	b.fulfil()
	b.signalParentEnded(20*time.Minute, toB[0].Arg)
	b.run(newInput("sub-b", withParent("sub-a"), withLinked("sub-c")))
	require.Equal(t, domain.StatusDeactivated, b.result().Status)
	assert.Equal(t, jsonOf(map[string]any{"reason": "parent_ended"}), b.store.Event(t, "deactivated").Detail)
	toC := b.cascadeSignals()
	require.ElementsMatch(t, cascade("sub-b", domain.StatusDeactivated, "sub-c"), toC)

	// C, still pending under B, gets B's signal and has nobody to tell.
	c := newHarness(t)
	c.signalParentEnded(20*time.Minute, toC[0].Arg)
	c.run(newInput("sub-c", withParent("sub-b")))
	assert.Equal(t, domain.StatusDeactivated, c.result().Status)
	assert.Equal(t, jsonOf(map[string]any{"reason": "parent_ended"}), c.store.Event(t, "deactivated").Detail)
	assert.Empty(t, c.cascadeSignals())
	assert.Empty(t, c.store.Ledger())
}

// A subscription bought under a parent that ended before it was recorded
// (so it could not be signalled) deactivates itself as soon as the store
// reports the parent's status.
func TestChildOfEndedParentDeactivatesAtOnce(t *testing.T) {
	for _, tc := range []struct {
		name         string
		parent       bool
		parentStatus domain.Status
		want         domain.Status
	}{
		{"parent deactivated", true, domain.StatusDeactivated, domain.StatusDeactivated},
		{"parent expired", true, domain.StatusExpired, domain.StatusDeactivated},
		{"parent active", true, domain.StatusActive, domain.StatusFulfillmentExpired},
		{"no parent", false, domain.StatusCancelled, domain.StatusFulfillmentExpired},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.store.parentStatus = tc.parentStatus
			purchase := h.update(0, UpdatePurchase, "p")
			opts := []func(*State){withLinked("sub-grandchild")}
			if tc.parent {
				opts = append(opts, withParent("sub-parent"))
			}
			h.run(newInput("sub-late", opts...))

			purchase.applied(t)
			s := h.result()
			assert.Equal(t, tc.want, s.Status)
			if tc.want == domain.StatusDeactivated {
				assert.Equal(t, []string{"purchased", "link_issued", "deactivated"}, h.store.EventTypes())
				assert.Equal(t, t0, h.store.Event(t, "deactivated").At, "immediately, not at a timer")
				assert.Equal(t, jsonOf(map[string]any{"reason": "parent_ended"}), h.store.Event(t, "deactivated").Detail)
			}
			assert.ElementsMatch(t, cascadeWithRefund("sub-late", tc.want, true, "sub-grandchild"), h.cascadeSignals(), "it never billed")
			assert.Empty(t, h.store.Ledger())
		})
	}
}

// An app whose publisher callbacks are in does not bill while its parent is
// pending; it starts billing when the parent announces its activation.
func TestAppBillsOnlyOnceItsParentIsActive(t *testing.T) {
	h := newHarness(t)
	h.fulfil()
	waiting := h.queryAt(10 * time.Minute)
	h.env.RegisterDelayedCallback(func() {
		h.env.SignalWorkflow(SignalParentActivated, ParentActivated{ParentID: "sub-parent"})
	}, 12*time.Minute)
	h.run(newInput("sub-app", withParent("sub-parent"), withoutAutoRenew))

	assert.Equal(t, domain.StatusPendingFulfillment, waiting.Status, "both callbacks in, parent pending: no billing")
	assert.Nil(t, waiting.BillingStartedAt)
	assert.Equal(t, domain.StatusExpired, h.result().Status)
	billing := h.store.Event(t, domain.EventBillingStarted)
	assert.Equal(t, at(12*time.Minute), billing.At, "billing starts when the parent is active")
	assert.Equal(t, "system", billing.Actor)
	require.Len(t, h.store.LedgerOfKind(domain.LedgerCharge), 1)
}

// An app whose parent never activates expires at its own deadline, unbilled.
func TestAppUnderPendingParentExpiresUnbilled(t *testing.T) {
	h := newHarness(t)
	h.fulfil()
	h.run(newInput("sub-app", withParent("sub-parent")))
	assert.Equal(t, domain.StatusFulfillmentExpired, h.result().Status)
	assert.Empty(t, h.store.Ledger())
}

// A parent that was cancelled inside its window (or never billed) asks its
// apps to refund their current term; a parent deactivated after it billed
// does not (deactivation never refunds).
func TestCascadeRefundsAppsTheCustomerCouldNotUse(t *testing.T) {
	for _, tc := range []struct {
		name   string
		refund bool
	}{{"parent cancelled inside its window", true}, {"parent deactivated", false}} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.store.parentStatus = domain.StatusActive
			h.fulfil()
			h.signalParentEnded(6*time.Minute, ParentEnded{ParentID: "sub-parent", Status: domain.StatusCancelled, Refund: tc.refund})
			h.run(newInput("sub-app", withParent("sub-parent")))

			assert.Equal(t, domain.StatusDeactivated, h.result().Status)
			if tc.refund {
				refunds := h.store.LedgerOfKind(domain.LedgerRefund)
				require.Len(t, refunds, 1)
				assert.Equal(t, -unitPrice*testQuantity, refunds[0].AmountMinor)
				assert.Zero(t, h.store.Balance())
				assert.EqualValues(t, unitPrice*testQuantity, h.store.Event(t, "deactivated").Detail["refund_minor"])
			} else {
				assert.Empty(t, h.store.LedgerOfKind(domain.LedgerRefund))
				assert.Equal(t, unitPrice*testQuantity, h.store.Balance())
			}
		})
	}
}

// The parent announces its activation to the apps linked while it was pending.
func TestParentAnnouncesActivationToLinked(t *testing.T) {
	h := newHarness(t)
	h.fulfil()
	h.run(newInput("sub-parent", withLinked("app-1", "app-2"), withoutAutoRenew))
	activated := 0
	for _, s := range h.sentSignals() {
		if s.Name == SignalParentActivated {
			activated++
		}
	}
	assert.Equal(t, 2, activated)
}
