package workflows

import (
	"encoding/json"
	"fmt"
	"sync/atomic"
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
	assert.EqualValues(t, 2, renewed[0].Detail["term_number"])
	assert.EqualValues(t, unitPrice*testQuantity, renewed[0].Detail["amount_minor"])
	assert.Equal(t, []string{domain.NotifyPurchased, domain.NotifyActivated, domain.NotifyRenewed}, h.store.NotificationTypes())
	assert.Equal(t, []string{"active"}, h.upsertedStatuses(), "the status did not move at renewal")
	assert.Empty(t, h.cascadeSignals())

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
	assert.Equal(t, []string{domain.NotifyPurchased, domain.NotifyActivated, domain.NotifyExpired}, h.store.NotificationTypes())
	assert.Equal(t, []string{"active", "expired"}, h.upsertedStatuses())
	assert.Equal(t, cascade("sub-ex", domain.StatusExpired, "app-1"), h.cascadeSignals())
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
	firstSize := carriedSize(t, in)

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
		require.Equal(t, []string{"nickname_changed", "renewed"}, h.store.EventTypes(), "run %d", run)
		assert.Equal(t, fmt.Sprintf("%s:%d", id, next.EventSeq), h.store.Events()[1].Key, "event keys keep counting across runs")
		assert.LessOrEqual(t, len(next.Handled), handledLimit)
		assert.Equal(t, msg, next.Handled[len(next.Handled)-1])
		assert.Empty(t, next.Subscription.LinkedSubscriptionIDs)
		assert.LessOrEqual(t, carriedSize(t, next), firstSize+256, "run %d: the carried state does not grow with the terms", run)

		in, start = next, h.env.Now()
	}
	assert.Equal(t, 11, in.Subscription.TermNumber)
	assert.Equal(t, domain.StatusActive, in.Subscription.Status)
	assert.Len(t, in.Handled, handledLimit)
	assert.Contains(t, in.Handled, "wh-licenses")
	assert.Equal(t, "old-10", in.Handled[0], "nine more ids pushed nine more old ones out")
	assert.Equal(t, unitPrice*testQuantity, in.TermBilledMinor, "only the current term's billing is carried")
	assert.Equal(t, at(testActivateAt+10*testTerm), *in.Subscription.TermStart, "terms chain without drift")
}

// In the very instant the term ends, the test environment always runs the
// workflow's term-end timer before a message sent for that instant; the
// renewal's save is then held until the message has reached the workflow
// (without that, the environment could close the run before delivering it and
// never answer it). Just before the instant, the message's own save is held
// until the term-end timer has fired, so the renewal waits for its lock.

// sendAtTermEnd sends an update in the instant the first term ends.
func sendAtTermEnd(h *harness, name, updateID string, arg any) *outcome {
	o := h.update(termEnd, name, updateID, arg)
	h.holdSave("renewed", o.validated)
	return o
}

// sendJustBeforeTermEnd sends an update 20 ms before the term ends and keeps
// its save (the one adding eventType) running until the term-end timer fired.
func sendJustBeforeTermEnd(h *harness, name, updateID string, arg any, eventType string) *outcome {
	o := h.update(termEnd-20*time.Millisecond, name, updateID, arg)
	h.holdSave(eventType, func() bool { return !h.env.Now().Before(at(termEnd)) })
	return o
}

// A quantity increase racing the term end is serialized with the renewal by
// the workflow's lock, and the new term is billed at exactly unit price × the
// resulting quantity either way:
//   - just before the end it lands in the old term (no proration: nothing is
//     left of it) and the renewal charge uses the new quantity;
//   - in the instant of the end the new term [end, end+term) has begun, so
//     it lands after the renewal charge and prorates the whole new term.
func TestQuantityChangeRacingTermEnd(t *testing.T) {
	for _, when := range []string{"just before the end", "in the instant of the end"} {
		t.Run(when, func(t *testing.T) {
			h := newHarness(t)
			h.fulfil()
			var o *outcome
			if when == "just before the end" {
				o = sendJustBeforeTermEnd(h, UpdateChange, "patch-race", changeQuantity("patch-race", 7), "quantity_changed")
			} else {
				o = sendAtTermEnd(h, UpdateChange, "patch-race", changeQuantity("patch-race", 7))
			}
			h.run(newInput("sub-race"))

			assert.Equal(t, 7, o.applied(t).Quantity)
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
			assert.Equal(t, unitPrice*testQuantity, term1, "the old term is not charged for a change at its very end")
			assert.Equal(t, unitPrice*7, term2, "the new term bills the resulting quantity")
			assert.Equal(t, term2, next.TermBilledMinor)

			ledger := h.store.Ledger()
			require.GreaterOrEqual(t, len(ledger), 2)
			require.Equal(t, "charge:sub-race:2", ledger[1].ID)
			if when == "just before the end" {
				assert.Equal(t, unitPrice*7, ledger[1].AmountMinor, "the renewal charge uses the new quantity")
				assert.Len(t, ledger, 2)
				assert.Equal(t, []string{"quantity_changed", "renewed"}, h.store.EventTypes()[5:])
			} else {
				assert.Equal(t, unitPrice*testQuantity, ledger[1].AmountMinor)
				require.Len(t, ledger, 3)
				assert.Equal(t, domain.LedgerEntry{
					ID: "proration:sub-race:2:patch-race", SubscriptionID: "sub-race", TermNumber: 2,
					Kind: domain.LedgerProration, AmountMinor: unitPrice * 2, Currency: "USD",
					PeriodStart: at(termEnd), PeriodEnd: at(termEnd + testTerm), CreatedAt: at(termEnd),
				}, ledger[2])
				assert.Equal(t, []string{"renewed", "quantity_changed"}, h.store.EventTypes()[5:])
			}
			h.store.requireConsistent(t)
		})
	}
}

// A message at continue-as-new is never lost: it is either rejected by its
// validator, or applied and then visible in the state the next run starts
// from (or in the run's result when it ended the subscription first).
func TestMessageAtContinueAsNewIsNeverLost(t *testing.T) {
	link := LinkRequest{SubscriptionID: "app-1", CustomerID: "woodgrove", PartnerID: "fabrikam"}
	for _, tc := range []struct {
		name   string
		update string
		arg    any
		before string // just before the end, the event whose save is held; "-": no hold; "": in the instant
		check  func(t *testing.T, o *outcome, h *harness)
	}{
		{"nickname in the instant", UpdateChange, ChangeRequest{MessageID: "n", Nickname: ptr("eve")}, "",
			func(t *testing.T, o *outcome, h *harness) {
				assert.Equal(t, "eve", *o.applied(t).Nickname)
				next := h.continued()
				assert.Equal(t, "eve", *next.Subscription.Nickname)
				assert.Equal(t, 2, next.Subscription.TermNumber)
				assert.Contains(t, next.Handled, "n")
			}},
		{"nickname just before", UpdateChange, ChangeRequest{MessageID: "n", Nickname: ptr("eve")}, "nickname_changed",
			func(t *testing.T, o *outcome, h *harness) {
				assert.Equal(t, "eve", *o.applied(t).Nickname)
				assert.Equal(t, "eve", *h.continued().Subscription.Nickname)
				assert.Equal(t, []string{"nickname_changed", "renewed"}, h.store.EventTypes()[5:])
			}},
		{"licenses in the instant", UpdateAssignLicenses, LicensesRequest{MessageID: "l", Assigned: 5}, "",
			func(t *testing.T, o *outcome, h *harness) {
				assert.Equal(t, 5, o.applied(t).LicensesAssigned)
				assert.Equal(t, 5, h.continued().Subscription.LicensesAssigned)
			}},
		{"link in the instant", UpdateLink, link, "",
			func(t *testing.T, o *outcome, h *harness) {
				assert.Equal(t, []string{"app-1"}, o.applied(t).LinkedSubscriptionIDs)
				assert.Equal(t, []string{"app-1"}, h.continued().Subscription.LinkedSubscriptionIDs)
			}},
		{"cancel just before: the window is long closed", UpdateCancel, EndRequest{MessageID: "c", Actor: admin}, "cancelled",
			func(t *testing.T, o *outcome, h *harness) {
				o.rejectedWith(t, ErrCancellationWindowClosed)
				assert.Equal(t, domain.StatusActive, h.continued().Subscription.Status)
				assert.Empty(t, h.store.LedgerOfKind(domain.LedgerRefund))
			}},
		// The renewal is not saved yet when the cancel is validated: the saved
		// term's window is closed, so it is refused and nothing is refunded.
		{"cancel in the instant: the renewal is not saved yet", UpdateCancel, EndRequest{MessageID: "c", Actor: admin}, "",
			func(t *testing.T, o *outcome, h *harness) {
				o.refusedWith(t, ErrCancellationWindowClosed)
				assert.Equal(t, domain.StatusActive, h.continued().Subscription.Status)
				assert.Equal(t, 2, h.continued().Subscription.TermNumber)
				assert.Empty(t, h.store.LedgerOfKind(domain.LedgerRefund))
			}},
		// No hold here: once deactivated the workflow drops its term-end timer.
		{"deactivate just before", UpdateDeactivate, EndRequest{MessageID: "d", Actor: admin}, "-",
			func(t *testing.T, o *outcome, h *harness) {
				assert.Equal(t, domain.StatusDeactivated, o.applied(t).Status)
				assert.Equal(t, domain.StatusDeactivated, h.result().Status, "it never renewed")
				assert.Len(t, h.store.Ledger(), 1)
				assert.Empty(t, h.store.EventsOfType("renewed"))
			}},
		{"deactivate in the instant", UpdateDeactivate, EndRequest{MessageID: "d", Actor: admin}, "",
			func(t *testing.T, o *outcome, h *harness) {
				assert.Equal(t, domain.StatusDeactivated, o.applied(t).Status)
				assert.Equal(t, domain.StatusDeactivated, h.result().Status, "it closes in this run")
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.fulfil()
			var o *outcome
			switch tc.before {
			case "-":
				o = h.update(termEnd-20*time.Millisecond, tc.update, "at-can", tc.arg)
			default:
				o = sendJustBeforeTermEnd(h, tc.update, "at-can", tc.arg, tc.before)
			case "":
				o = sendAtTermEnd(h, tc.update, "at-can", tc.arg)
			}
			h.run(newInput("sub-can"))
			require.True(t, o.answered(), "the update got no answer at all")
			tc.check(t, o, h)
			h.store.requireConsistent(t)
		})
	}
}

// The parent's cascade signal at the renewal: just before, it stops the
// renewal; in the instant, the renewed run deactivates before it would
// continue as new.
func TestParentEndedAtContinueAsNewIsCarried(t *testing.T) {
	pe := ParentEnded{ParentID: "sub-parent", Status: domain.StatusCancelled}
	t.Run("just before", func(t *testing.T) {
		h := newHarness(t)
		h.store.parentStatus = domain.StatusActive
		h.fulfil()
		h.signalParentEnded(termEnd-time.Millisecond, pe)
		h.run(newInput("sub-pc", withParent("sub-parent")))
		assert.Equal(t, domain.StatusDeactivated, h.result().Status)
		assert.Empty(t, h.store.EventsOfType("renewed"))
		assert.Len(t, h.store.Ledger(), 1)
	})
	t.Run("in the instant", func(t *testing.T) {
		h := newHarness(t)
		h.store.parentStatus = domain.StatusActive
		h.fulfil()
		var delivered atomic.Bool
		h.at(termEnd, func() {
			h.env.SignalWorkflow(SignalParentEnded, pe)
			h.env.RegisterDelayedCallback(func() { delivered.Store(true) }, 0) // runs after the signal
		})
		h.holdSave("renewed", delivered.Load)
		h.run(newInput("sub-pc", withParent("sub-parent")))
		final := h.result()
		assert.Equal(t, domain.StatusDeactivated, final.Status, "the signal is acted on in this run, not dropped")
		assert.Equal(t, 2, final.TermNumber)
		types := h.store.EventTypes()
		assert.Equal(t, []string{"renewed", "deactivated"}, types[len(types)-2:])
		assert.Equal(t, jsonOf(map[string]any{"reason": "parent_ended"}), h.store.Events()[len(types)-1].Detail)
	})
}

// carriedSize is the encoded size of a continue-as-new input.
func carriedSize(t *testing.T, in State) int {
	t.Helper()
	b, err := json.Marshal(in)
	require.NoError(t, err)
	return len(b)
}

// runCarried runs a carried input in a fresh environment and requires it to end.
func runCarried(t *testing.T, in State, start time.Time) (domain.Subscription, *harness) {
	t.Helper()
	h := newHarnessAt(t, start)
	h.run(in)
	return h.result(), h
}
