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

// At the term end the run renews in place: it charges the new term, keeps
// answering (a query and an Update in term 2 reach the same run), and waits
// for the next deadline; it continues as new only when asked, carrying the
// whole subscription in its new term.
func TestTermEndWithAutoRenewRenewsInPlace(t *testing.T) {
	h := newHarness(t)
	h.fulfil()
	inTerm2 := h.queryAt(termEnd + 10*time.Second)
	patch := h.update(termEnd+20*time.Second, UpdateChange, "p2", ChangeRequest{MessageID: "p2", Actor: admin, Nickname: ptr("term 2")})
	h.suggestContinueAsNew(termEnd + time.Minute)
	h.run(newInput("sub-rn", withNotifications))

	next := h.continued()
	assert.Equal(t, at(termEnd+time.Minute), h.env.Now().UTC(), "the run went on past the term end until it was asked to continue as new")
	assert.Equal(t, 2, inTerm2.TermNumber, "the same run answers in term 2")
	assert.Equal(t, "term 2", *patch.applied(t).Nickname)
	assert.Equal(t, 2, patch.applied(t).TermNumber)

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
	assert.Equal(t, []string{"wh-licenses", "wh-activate", "p2"}, next.Handled)
	assert.Equal(t, testPlan(), next.Plan)
	assert.Equal(t, admin, next.Purchaser)
	assert.False(t, next.ParentEnded)
	h.store.requireConsistent(t)
}

// A run on the renewal path of runs from before renewInPlace (no version
// marker after the renewal, as in every history recorded then) continues as
// new right after the renewal is saved, one term per run, exactly as it did.
func TestOldRenewalPathContinuesAsNewAtEachRenewal(t *testing.T) {
	h := newHarness(t)
	h.oneTermPerRun()
	h.fulfil()
	h.run(newInput("sub-old-path", withNotifications, startedBefore))

	next := h.continued()
	assert.Equal(t, at(termEnd), h.env.Now().UTC(), "the run ends at the term end")
	assert.Equal(t, 2, next.Subscription.TermNumber)
	assert.Equal(t, h.store.Last(), next.Subscription, "the renewal was saved before the run continued as new")
	require.Len(t, h.store.LedgerOfKind(domain.LedgerCharge), 2)
	assert.Equal(t, "charge:sub-old-path:2", h.store.LedgerOfKind(domain.LedgerCharge)[1].ID)
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

// Ten renewals in one run: each term is charged exactly once, event keys
// keep counting, the dedup list stays bounded (message ids seen terms ago
// still have no effect), and the run never continues as new on its own.
func TestTenRenewalsInOneRun(t *testing.T) {
	const id = "sub-chain"
	in := newInput(id)
	for i := range handledLimit - 1 { // almost full already
		in.Handled = append(in.Handled, fmt.Sprintf("old-%d", i))
	}
	h := newHarness(t)
	h.fulfil()
	termStart := func(term int) time.Duration { return testActivateAt + time.Duration(term-1)*testTerm }
	type sent struct{ patch, oldPatch, oldLicenses *outcome }
	perTerm := map[int]sent{}
	for term := 2; term <= 11; term++ {
		msg := fmt.Sprintf("patch-%d", term)
		var o sent
		o.patch = h.update(termStart(term)+time.Minute, UpdateChange, msg, ChangeRequest{MessageID: msg, Nickname: ptr(msg)})
		if term > 2 { // the previous term's PATCH, redelivered under a new update id
			prev := fmt.Sprintf("patch-%d", term-1)
			o.oldPatch = h.update(termStart(term)+2*time.Minute, UpdateChange, "redelivered-"+prev, ChangeRequest{MessageID: prev, Nickname: ptr("stale")})
		}
		// The first callback, redelivered in every term.
		o.oldLicenses = h.update(termStart(term)+3*time.Minute, UpdateAssignLicenses, fmt.Sprintf("redelivered-l-%d", term),
			LicensesRequest{MessageID: "wh-licenses", Assigned: 1})
		perTerm[term] = o
	}
	end := termStart(11) + 5*time.Minute
	h.suggestContinueAsNew(end)
	h.run(in)

	next := h.continued()
	assert.Equal(t, at(end), h.env.Now().UTC(), "one run lived all eleven terms")
	for term := 2; term <= 11; term++ {
		o := perTerm[term]
		msg := fmt.Sprintf("patch-%d", term)
		s := o.patch.applied(t)
		assert.Equal(t, msg, *s.Nickname)
		assert.Equal(t, term, s.TermNumber, "%s applied in its term", msg)
		if o.oldPatch != nil {
			assert.Equal(t, msg, *o.oldPatch.applied(t).Nickname, "term %d: a message seen a term ago has no effect", term)
		}
		assert.Equal(t, 3, o.oldLicenses.applied(t).LicensesAssigned, "term %d", term)
	}

	charges := h.store.LedgerOfKind(domain.LedgerCharge)
	require.Len(t, charges, 11, "one charge per term")
	for i, c := range charges {
		term := i + 1
		assert.Equal(t, fmt.Sprintf("charge:%s:%d", id, term), c.ID)
		assert.Equal(t, term, c.TermNumber)
		assert.Equal(t, unitPrice*testQuantity, c.AmountMinor)
		assert.Equal(t, at(termStart(term)), c.PeriodStart, "terms chain without drift")
		assert.Equal(t, at(termStart(term)), c.CreatedAt, "charged when the term starts")
	}
	renewed := h.store.EventsOfType(domain.EventRenewed)
	require.Len(t, renewed, 10)
	for i, e := range renewed {
		assert.EqualValues(t, i+2, e.Detail["term_number"])
	}
	for i, e := range h.store.Events() {
		assert.Equal(t, fmt.Sprintf("%s:%d", id, i+1), e.Key, "event keys keep counting across the terms")
	}
	assert.Len(t, h.store.EventsOfType(domain.EventNicknameChanged), 10, "redeliveries added nothing")
	h.store.requireConsistent(t)

	assert.Equal(t, 11, next.Subscription.TermNumber)
	assert.Equal(t, domain.StatusActive, next.Subscription.Status)
	assert.Equal(t, len(h.store.Events()), next.EventSeq)
	assert.Len(t, next.Handled, handledLimit)
	assert.Contains(t, next.Handled, "wh-licenses")
	assert.Equal(t, "old-11", next.Handled[0], "ten more ids pushed ten more old ones out")
	assert.Equal(t, "patch-11", next.Handled[len(next.Handled)-1])
	assert.Equal(t, unitPrice*testQuantity, next.TermBilledMinor, "only the current term's billing is carried")
	assert.LessOrEqual(t, carriedSize(t, next), carriedSize(t, in)+1024, "the carried state does not grow with the terms")
}

// The Updates a run takes count across its terms: a run that took part of
// its share in term 1 continues as new in term 2 once it has taken
// updatesPerRun, whatever the term.
func TestUpdatesPerRunCountAcrossTerms(t *testing.T) {
	h := newHarness(t)
	h.fulfil() // 2 Updates
	send := func(after time.Duration, prefix string, n int) {
		h.at(after, func() {
			for i := range n {
				id := fmt.Sprintf("%s%d", prefix, i)
				h.updateNow(UpdateChange, id, ChangeRequest{MessageID: id, Actor: admin, Nickname: ptr(id)})
			}
		})
	}
	send(10*time.Minute, "a", 300)
	send(termEnd+10*time.Minute, "b", updatesPerRun-300) // 2 more than the rest of the share
	h.run(newInput("sub-upr"))

	next := h.continued()
	assert.Equal(t, at(termEnd+10*time.Minute), h.env.Now().UTC(), "continued as new in term 2, when the share was taken")
	assert.Equal(t, 2, next.Subscription.TermNumber)
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
			h.suggestContinueAsNew(termEnd + time.Minute)
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

// A message at a continue-as-new in the instant of a renewal is never lost:
// it is either rejected by its validator, or applied and then visible in the
// state the next run starts from (or in the run's result when it ended the
// subscription first). Two ways a run continues as new there: Temporal
// suggests it as the renewal completes (a run renewing in place), or the
// run is on the renewal path of runs from before renewInPlace, which
// continues as new after every renewal.
func TestMessageAtContinueAsNewIsNeverLost(t *testing.T) {
	for _, path := range []string{"suggested at the renewal", "one term per run"} {
		t.Run(path, func(t *testing.T) { testMessageAtContinueAsNew(t, path) })
	}
}

func testMessageAtContinueAsNew(t *testing.T, path string) {
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
		// The renewal's write is in flight when the cancel is validated: it
		// is judged on the term that write starts (as the read model may
		// already show it), inside that term's window, so it cancels term 2
		// and refunds it, in this run.
		{"cancel in the instant: judged on the renewed term", UpdateCancel, EndRequest{MessageID: "c", Actor: admin}, "",
			func(t *testing.T, o *outcome, h *harness) {
				s := o.applied(t)
				assert.Equal(t, domain.StatusCancelled, s.Status)
				assert.Equal(t, 2, s.TermNumber)
				assert.Equal(t, domain.StatusCancelled, h.result().Status, "it closes in this run")
				refunds := h.store.LedgerOfKind(domain.LedgerRefund)
				require.Len(t, refunds, 1)
				assert.Equal(t, 2, refunds[0].TermNumber)
				assert.Equal(t, -h.store.chargesOfTerm(2)[0].AmountMinor, refunds[0].AmountMinor, "term 2 refunded in full")
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
			var input []func(*State)
			if path == "one term per run" {
				h.oneTermPerRun()
				input = append(input, startedBefore)
			} else {
				// Right after the term-end timer, with no wake of its own:
				// the run sees it when the renewal's save (or the message)
				// wakes it.
				h.at(termEnd+time.Millisecond, func() { h.env.SetContinueAsNewSuggested(true) })
			}
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
			h.run(newInput("sub-can", input...))
			require.True(t, o.answered(), "the update got no answer at all")
			tc.check(t, o, h)
			h.store.requireConsistent(t)
		})
	}
}

// The parent's cascade signal at the renewal: just before, it stops the
// renewal; in the instant, the run renews and then deactivates, in the same
// run.
func TestParentEndedAtRenewalIsActedOn(t *testing.T) {
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

// Messages in the instant Temporal suggests continue-as-new mid-term are
// never lost: each is applied and carried, or turned away to come again to
// the next run; the next run waits for the same term end.
func TestMessagesAtSuggestedContinueAsNewMidTerm(t *testing.T) {
	h := newHarness(t)
	h.fulfil()
	mid := 30 * time.Minute
	// The messages reach the workflow first; the suggestion comes a moment
	// later, while the first one's save is still running (held until then)
	// and the others wait for the lock.
	nick := h.update(mid, UpdateChange, "n", ChangeRequest{MessageID: "n", Actor: admin, Nickname: ptr("mid")})
	lic := h.update(mid, UpdateAssignLicenses, "l", LicensesRequest{MessageID: "l", Actor: publisher, Assigned: 4})
	link := h.update(mid, UpdateLink, "k", LinkRequest{SubscriptionID: "app-1", CustomerID: "woodgrove", PartnerID: "fabrikam"})
	var suggested atomic.Bool
	h.at(mid+time.Millisecond, func() { h.env.SetContinueAsNewSuggested(true); suggested.Store(true) })
	h.holdSave(domain.EventNicknameChanged, suggested.Load)
	h.run(newInput("sub-mid"))

	next := h.continued()
	assert.Equal(t, at(mid+time.Millisecond), h.env.Now().UTC())
	assert.Equal(t, 1, next.Subscription.TermNumber)
	assert.Equal(t, h.store.Last(), next.Subscription, "the carried state is the saved one")
	takenOrComeAgain := func(o *outcome, carried func(State) bool) {
		t.Helper()
		o.mu.Lock()
		defer o.mu.Unlock()
		switch {
		case o.rejected != nil:
			assert.True(t, ComeAgain(o.rejected), "%s: %v", o.name, o.rejected)
		case o.completed:
			require.NoError(t, o.err, o.name)
			assert.True(t, carried(next), "%s: applied but not carried", o.name)
		default:
			t.Errorf("%s: never answered", o.name)
		}
	}
	takenOrComeAgain(nick, func(st State) bool { return st.Subscription.Nickname != nil && *st.Subscription.Nickname == "mid" })
	takenOrComeAgain(lic, func(st State) bool { return st.Subscription.LicensesAssigned == 4 })
	takenOrComeAgain(link, func(st State) bool { return len(st.Subscription.LinkedSubscriptionIDs) == 1 })

	// The next run renews at the same term end, in place.
	h2 := newHarnessAt(t, h.env.Now())
	h2.suggestContinueAsNew(termEnd - mid)
	h2.run(next)
	after := h2.continued()
	assert.Equal(t, 2, after.Subscription.TermNumber)
	require.Len(t, h2.store.LedgerOfKind(domain.LedgerCharge), 1)
	assert.Equal(t, at(termEnd), h2.store.LedgerOfKind(domain.LedgerCharge)[0].CreatedAt)
}

// A run that has renewed in place still ends correctly in a later term: a
// PATCH of auto_renew in term 3 expires it at the end of term 3; a cancel
// inside term 3's window refunds term 3 only; the parent ending in term 3
// deactivates it. Each terminal status cascades to the linked subscriptions.
func TestEndsInALaterTerm(t *testing.T) {
	term3 := termEnd + testTerm // t0+123m
	t.Run("expires", func(t *testing.T) {
		h := newHarness(t)
		h.fulfil()
		off := h.update(term3+20*time.Minute, UpdateChange, "ar", ChangeRequest{MessageID: "ar", Actor: admin, AutoRenew: ptr(false)})
		h.run(newInput("sub-later-ex", withLinked("app-1")))

		assert.False(t, off.applied(t).AutoRenew)
		s := h.result()
		assert.Equal(t, domain.StatusExpired, s.Status)
		assert.Equal(t, 3, s.TermNumber)
		assert.Equal(t, at(term3+testTerm), h.env.Now().UTC(), "at the end of term 3")
		assert.Equal(t, at(term3+testTerm), h.store.Event(t, "expired").At)
		assert.Len(t, h.store.LedgerOfKind(domain.LedgerCharge), 3)
		assert.Equal(t, cascade("sub-later-ex", domain.StatusExpired, "app-1"), h.cascadeSignals())
		assert.Equal(t, []string{"active", "expired"}, h.upsertedStatuses())
		h.store.requireConsistent(t)
	})
	t.Run("cancelled in its window", func(t *testing.T) {
		h := newHarness(t)
		h.fulfil()
		late := h.update(termEnd+20*time.Minute, UpdateCancel, "c2", EndRequest{MessageID: "c2", Actor: admin})
		cancel := h.update(term3+5*time.Minute, UpdateCancel, "c3", EndRequest{MessageID: "c3", Actor: admin})
		h.run(newInput("sub-later-c", withLinked("app-1")))

		late.rejectedWith(t, ErrCancellationWindowClosed)
		assert.Equal(t, domain.StatusCancelled, cancel.applied(t).Status)
		s := h.result()
		assert.Equal(t, 3, s.TermNumber)
		refunds := h.store.LedgerOfKind(domain.LedgerRefund)
		require.Len(t, refunds, 1)
		assert.Equal(t, "refund:sub-later-c:3", refunds[0].ID)
		assert.Equal(t, -unitPrice*testQuantity, refunds[0].AmountMinor, "term 3 only")
		assert.Equal(t, 2*unitPrice*testQuantity, h.store.Balance(), "terms 1 and 2 stay billed")
		assert.Equal(t, []sentSignal{{WorkflowID: WorkflowID("app-1"), Name: SignalParentEnded,
			Arg: ParentEnded{ParentID: "sub-later-c", Status: domain.StatusCancelled, Refund: true}}}, h.cascadeSignals())
		h.store.requireConsistent(t)
	})
	t.Run("parent ended", func(t *testing.T) {
		h := newHarness(t)
		h.store.parentStatus = domain.StatusActive
		h.fulfil()
		h.signalParentEnded(term3+30*time.Minute, ParentEnded{ParentID: "sub-parent", Status: domain.StatusDeactivated})
		h.run(newInput("sub-later-pe", withParent("sub-parent")))

		s := h.result()
		assert.Equal(t, domain.StatusDeactivated, s.Status)
		assert.Equal(t, 3, s.TermNumber)
		assert.Equal(t, at(term3+30*time.Minute), h.store.Event(t, "deactivated").At)
		assert.Len(t, h.store.EventsOfType(domain.EventRenewed), 2)
		assert.Empty(t, h.store.LedgerOfKind(domain.LedgerRefund))
		h.store.requireConsistent(t)
	})
}
