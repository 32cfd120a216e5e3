package workflows

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/partnerhub/fulfillment/domain"
)

var termEnd = testActivateAt + testTerm // t0+63m, the end of the first term

func TestTermEndWithAutoRenewRenewsAndContinuesAsNew(t *testing.T) {
	h := newHarness(t)
	h.fulfil()
	h.run(newInput("sub-rn", withNotifications))

	next := h.continued()
	assert.Equal(t, at(termEnd), h.env.Now().UTC(), "the run ends at term end")

	ledger := h.store.Ledger()
	require.Len(t, ledger, 2)
	assert.Equal(t, domain.LedgerEntry{
		ID: "charge:sub-rn:2", SubscriptionID: "sub-rn", TermNumber: 2, Kind: domain.LedgerCharge,
		AmountMinor: unitPrice * testQuantity, Currency: "USD",
		PeriodStart: at(termEnd), PeriodEnd: at(termEnd + testTerm), CreatedAt: at(termEnd),
	}, ledger[1])
	renewed := h.store.EventsOfType("renewed")
	require.Len(t, renewed, 1)
	assert.Equal(t, "system", renewed[0].Actor)
	assert.Equal(t, at(termEnd), renewed[0].At)
	assert.Equal(t, 2, renewed[0].Detail["term_number"])
	assert.Equal(t, unitPrice*testQuantity, renewed[0].Detail["amount_minor"])
	assert.Equal(t, []string{domain.NotifyPurchased, domain.NotifyActivated, domain.NotifyRenewed}, h.store.NotificationTypes())
	assert.Equal(t, []string{"active"}, h.upsertedStatuses(), "the status did not move at renewal")
	assert.Empty(t, h.sentSignals())

	// The carried state is the whole subscription, in its new term.
	s := next.Subscription
	assert.Equal(t, domain.StatusActive, s.Status)
	assert.Equal(t, 2, s.TermNumber)
	assert.Equal(t, at(termEnd), *s.TermStart)
	assert.Equal(t, at(termEnd+testTerm), *s.TermEnd)
	assert.Equal(t, at(termEnd+testWindow), *s.CancellationWindowEndsAt, "the window reopens")
	assert.Equal(t, at(testActivateAt), *s.BillingStartedAt, "billing started once, in term 1")
	assert.Equal(t, 3, s.LicensesAssigned)
	assert.True(t, s.FulfillmentConfirmed)
	assert.Equal(t, h.store.Last(), s, "the carried snapshot is the one last saved")
	assert.True(t, next.Recorded)
	assert.True(t, next.NotifyPublisher)
	assert.Equal(t, unitPrice*testQuantity, next.TermBilledMinor)
	assert.Equal(t, len(h.store.Events()), next.EventSeq)
	assert.Equal(t, []string{"wh-licenses", "wh-activate"}, next.Handled)
	assert.Equal(t, testPlan(), next.Plan)
	assert.Equal(t, admin, next.Purchaser)
	assert.False(t, next.ParentEnded)
	h.store.requireConsistent(t)
}

func TestTermEndWithoutAutoRenewExpires(t *testing.T) {
	h := newHarness(t)
	h.fulfil()
	before := h.queryAt(termEnd - time.Millisecond)
	h.run(newInput("sub-ex", withoutAutoRenew, withNotifications, withLinked("app-1")))

	s := h.result()
	assert.Equal(t, domain.StatusActive, before.Status)
	assert.Equal(t, domain.StatusExpired, s.Status)
	assert.Equal(t, 1, s.TermNumber)
	assert.Equal(t, at(termEnd), h.env.Now().UTC())
	assert.Len(t, h.store.Ledger(), 1, "no renewal charge")
	ev := h.store.EventsOfType("expired")
	require.Len(t, ev, 1)
	assert.Equal(t, at(termEnd), ev[0].At)
	assert.Equal(t, "system", ev[0].Actor)
	assert.Equal(t, domain.NotifyExpired, h.store.NotificationTypes()[2])
	assert.Equal(t, []string{"active", "expired"}, h.upsertedStatuses())
	assert.Equal(t, []sentSignal{{WorkflowID: "subscription/app-1", Name: SignalParentEnded,
		Arg: ParentEnded{ParentID: "sub-ex", Status: domain.StatusExpired}}}, h.sentSignals())
}

// Ten renewals, each in its own run started from the input the previous one
// carried. The dedup list and the state stay bounded, message ids survive
// continue-as-new, and each term is charged exactly once.
func TestTenRenewalsAcrossContinueAsNew(t *testing.T) {
	const id = "sub-chain"
	in := newInput(id)
	for i := range handledLimit - 1 { // almost full already
		in.Handled = append(in.Handled, fmt.Sprintf("old-%d", i))
	}
	h := newHarness(t)
	h.fulfil()
	h.run(in)
	in = h.continued()
	require.Equal(t, 2, in.Subscription.TermNumber)
	require.Len(t, in.Handled, handledLimit)
	assert.Equal(t, "old-1", in.Handled[0], "the oldest id is dropped first")

	start := h.env.Now()
	for run := 2; run <= 10; run++ {
		term := in.Subscription.TermNumber
		h := newHarnessAt(t, start)
		msg := fmt.Sprintf("patch-%d", run)
		nick := h.update(time.Minute, UpdateChange, msg, ChangeRequest{MessageID: msg, Nickname: ptr(msg)})
		// The previous run's PATCH and the first callback, redelivered under new update ids.
		var oldPatch *outcome
		if run > 2 {
			prev := fmt.Sprintf("patch-%d", run-1)
			oldPatch = h.update(2*time.Minute, UpdateChange, "redelivered-"+prev, ChangeRequest{MessageID: prev, Nickname: ptr("stale")})
		}
		oldLicenses := h.update(3*time.Minute, UpdateAssignLicenses, fmt.Sprintf("redelivered-l-%d", run),
			LicensesRequest{MessageID: "wh-licenses", Assigned: 1})
		h.run(in)

		assert.Equal(t, msg, *nick.applied(t).Nickname)
		if oldPatch != nil {
			assert.Equal(t, msg, *oldPatch.applied(t).Nickname, "run %d: a message seen before continue-as-new has no effect", run)
		}
		assert.Equal(t, 3, oldLicenses.applied(t).LicensesAssigned, "run %d", run)

		next := h.continued()
		assert.Equal(t, term+1, next.Subscription.TermNumber)
		assert.Equal(t, start.Add(testTerm).UTC(), next.Subscription.TermStart.UTC())
		charges := h.store.LedgerOfKind(domain.LedgerCharge)
		require.Len(t, charges, 1, "run %d", run)
		assert.Equal(t, fmt.Sprintf("charge:%s:%d", id, term+1), charges[0].ID)
		assert.Equal(t, unitPrice*testQuantity, charges[0].AmountMinor)
		assert.Equal(t, []string{"nickname_changed", "renewed"}, h.store.EventTypes(), "run %d", run)
		assert.Equal(t, fmt.Sprintf("%s:%d", id, next.EventSeq), h.store.Events()[1].Key, "event keys keep counting across runs")
		assert.LessOrEqual(t, len(next.Handled), handledLimit)
		assert.Equal(t, msg, next.Handled[len(next.Handled)-1])
		assert.Empty(t, next.Subscription.LinkedSubscriptionIDs)

		in, start = next, h.env.Now()
	}
	assert.Equal(t, 11, in.Subscription.TermNumber)
	assert.Equal(t, domain.StatusActive, in.Subscription.Status)
	assert.Len(t, in.Handled, handledLimit)
	assert.Contains(t, in.Handled, "wh-licenses")
	assert.NotContains(t, in.Handled, "old-9")
	assert.Equal(t, unitPrice*testQuantity, in.TermBilledMinor, "only the current term's billing is carried")
	assert.Equal(t, at(testActivateAt+10*testTerm), *in.Subscription.TermStart, "terms chain without drift")
}

// A quantity increase arriving in the very instant the term ends is
// serialized with the renewal by the workflow's lock. Either it lands first
// (no proration: nothing of the old term is left; the renewal bills the new
// quantity) or the renewal lands first and the change prorates the whole new
// term. Both bill the new term at exactly unit price × the resulting quantity.
func TestQuantityChangeRacingTermEnd(t *testing.T) {
	for _, first := range []string{"update", "timer"} {
		t.Run(first+" first", func(t *testing.T) {
			h := newHarness(t)
			h.fulfil()
			o := sendAtTermEnd(h, first, UpdateChange, "patch-race", changeQuantity("patch-race", 7))
			h.run(newInput("sub-race"))

			assert.Equal(t, 7, o().applied(t).Quantity)
			next := h.continued()
			assert.Equal(t, 7, next.Subscription.Quantity)
			assert.Equal(t, 2, next.Subscription.TermNumber)

			var term1, term2 int64
			for _, l := range h.store.Ledger() {
				switch l.TermNumber {
				case 1:
					term1 += l.AmountMinor
				case 2:
					term2 += l.AmountMinor
				}
			}
			assert.Equal(t, unitPrice*testQuantity, term1, "the old term is not charged for a change at its last instant")
			assert.Equal(t, unitPrice*7, term2, "the new term bills the resulting quantity")
			assert.Equal(t, term2, next.TermBilledMinor)

			charge2 := h.store.Ledger()[1]
			require.Equal(t, "charge:sub-race:2", charge2.ID)
			if first == "update" {
				assert.Equal(t, unitPrice*7, charge2.AmountMinor, "the renewal charge uses the new quantity")
				assert.Len(t, h.store.Ledger(), 2)
			} else {
				assert.Equal(t, unitPrice*testQuantity, charge2.AmountMinor)
				require.Len(t, h.store.Ledger(), 3)
				assert.Equal(t, domain.LedgerEntry{
					ID: "proration:sub-race:2:patch-race", SubscriptionID: "sub-race", TermNumber: 2,
					Kind: domain.LedgerProration, AmountMinor: unitPrice * 2, Currency: "USD",
					PeriodStart: at(termEnd), PeriodEnd: at(termEnd + testTerm), CreatedAt: at(termEnd),
				}, h.store.Ledger()[2])
			}
			h.store.requireConsistent(t)
		})
	}
}

// sendAtTermEnd sends an update in the same virtual instant as the first
// term's end, either before the workflow's timer fires ("update") or after
// ("timer"). The test clock fires same-instant timers in creation order, so
// the update's timer is created before or after the workflow's.
func sendAtTermEnd(h *harness, first, name, updateID string, arg any) func() *outcome {
	var o *outcome
	switch first {
	case "update":
		o = h.update(termEnd, name, updateID, arg)
	case "timer":
		// Created at t0+4m, after the term-end timer the activation at t0+3m set.
		h.at(4*time.Minute, func() {
			h.env.RegisterDelayedCallback(func() { o = h.updateNow(name, updateID, arg) }, termEnd-4*time.Minute)
		})
	}
	return func() *outcome {
		require.NotNil(h.t, o, "the update was never sent")
		return o
	}
}

// A message in the instant of continue-as-new is never lost: it is either
// rejected by its validator, or applied and then visible in the state the next
// run starts from (or in the run's result when it ended the subscription).
func TestMessageAtContinueAsNewIsNeverLost(t *testing.T) {
	type check func(t *testing.T, o *outcome, h *harness)
	for _, tc := range []struct {
		name, first string
		update      string
		arg         any
		check       check
	}{
		{"nickname, update first", "update", UpdateChange, ChangeRequest{MessageID: "n", Nickname: ptr("eve")},
			func(t *testing.T, o *outcome, h *harness) {
				assert.Equal(t, "eve", *o.applied(t).Nickname)
				next := h.continued()
				assert.Equal(t, "eve", *next.Subscription.Nickname)
				assert.Contains(t, next.Handled, "n")
			}},
		{"nickname, timer first", "timer", UpdateChange, ChangeRequest{MessageID: "n", Nickname: ptr("eve")},
			func(t *testing.T, o *outcome, h *harness) {
				assert.Equal(t, "eve", *o.applied(t).Nickname)
				next := h.continued()
				assert.Equal(t, "eve", *next.Subscription.Nickname)
				assert.Equal(t, 2, next.Subscription.TermNumber)
			}},
		{"cancel, update first: the old window is closed", "update", UpdateCancel, EndRequest{MessageID: "c", Actor: admin},
			func(t *testing.T, o *outcome, h *harness) {
				o.rejectedWith(t, ErrCancellationWindowClosed)
				assert.Equal(t, domain.StatusActive, h.continued().Subscription.Status)
				assert.Empty(t, h.store.LedgerOfKind(domain.LedgerRefund))
			}},
		{"cancel, timer first: the new window is open", "timer", UpdateCancel, EndRequest{MessageID: "c", Actor: admin},
			func(t *testing.T, o *outcome, h *harness) {
				assert.Equal(t, domain.StatusCancelled, o.applied(t).Status)
				next := h.continued()
				assert.Equal(t, domain.StatusCancelled, next.Subscription.Status)
				assert.Equal(t, int64(0), next.TermBilledMinor)
				refunds := h.store.LedgerOfKind(domain.LedgerRefund)
				require.Len(t, refunds, 1)
				assert.Equal(t, "refund:sub-can:2", refunds[0].ID)
				assert.Equal(t, -unitPrice*testQuantity, refunds[0].AmountMinor)
				// The next run only closes the subscription.
				final, h2 := runCarried(t, next, h.env.Now())
				assert.Equal(t, domain.StatusCancelled, final.Status)
				assert.Empty(t, h2.store.Changes())
			}},
		{"deactivate, update first", "update", UpdateDeactivate, EndRequest{MessageID: "d", Actor: admin},
			func(t *testing.T, o *outcome, h *harness) {
				assert.Equal(t, domain.StatusDeactivated, o.applied(t).Status)
				assert.Equal(t, domain.StatusDeactivated, h.result().Status, "it never renewed")
				assert.Len(t, h.store.Ledger(), 1)
			}},
		{"deactivate, timer first", "timer", UpdateDeactivate, EndRequest{MessageID: "d", Actor: admin},
			func(t *testing.T, o *outcome, h *harness) {
				assert.Equal(t, domain.StatusDeactivated, o.applied(t).Status)
				next := h.continued()
				assert.Equal(t, domain.StatusDeactivated, next.Subscription.Status)
				final, _ := runCarried(t, next, h.env.Now())
				assert.Equal(t, domain.StatusDeactivated, final.Status)
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.fulfil()
			o := sendAtTermEnd(h, tc.first, tc.update, "at-can", tc.arg)
			h.run(newInput("sub-can"))
			require.True(t, o().answered(), "the update got no answer at all")
			tc.check(t, o(), h)
			h.store.requireConsistent(t)
		})
	}
}

// The parent's cascade signal in the instant of renewal: either it stops the
// renewal, or it is carried into the next run, which deactivates at once.
func TestParentEndedAtContinueAsNewIsCarried(t *testing.T) {
	pe := ParentEnded{ParentID: "sub-parent", Status: domain.StatusCancelled}
	t.Run("signal first", func(t *testing.T) {
		h := newHarness(t)
		h.fulfil()
		h.signalParentEnded(termEnd, pe)
		h.run(newInput("sub-pc", withParent("sub-parent")))
		assert.Equal(t, domain.StatusDeactivated, h.result().Status)
		assert.Empty(t, h.store.EventsOfType("renewed"))
		assert.Len(t, h.store.Ledger(), 1)
	})
	t.Run("timer first", func(t *testing.T) {
		h := newHarness(t)
		h.fulfil()
		h.at(4*time.Minute, func() {
			h.env.RegisterDelayedCallback(func() { h.env.SignalWorkflow(SignalParentEnded, pe) }, termEnd-4*time.Minute)
		})
		h.run(newInput("sub-pc", withParent("sub-parent")))
		next := h.continued()
		assert.True(t, next.ParentEnded, "the signal is carried, not dropped")
		assert.Equal(t, 2, next.Subscription.TermNumber)

		final, h2 := runCarried(t, next, h.env.Now())
		assert.Equal(t, domain.StatusDeactivated, final.Status)
		assert.Equal(t, []string{"deactivated"}, h2.store.EventTypes())
		assert.Equal(t, map[string]any{"reason": "parent_ended"}, h2.store.Events()[0].Detail)
		assert.Empty(t, h2.store.Ledger(), "no further charge")
	})
}

// runCarried runs a carried input in a fresh environment and requires it to end.
func runCarried(t *testing.T, in Input, start time.Time) (domain.Subscription, *harness) {
	t.Helper()
	h := newHarnessAt(t, start)
	h.run(in)
	return h.result(), h
}
