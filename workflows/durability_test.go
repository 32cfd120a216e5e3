package workflows

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/partnerhub/fulfillment/domain"
)

// outage takes the store down from one virtual offset to another.
func (h *harness) outage(from, to time.Duration) {
	h.at(from, func() { h.store.down.Store(true) })
	h.at(to, func() { h.store.down.Store(false) })
}

// An activation deadline that passes while the database is down is acted on
// once it is back, however long the outage: the workflow neither fails nor
// freezes, and the state changes only with the write.
func TestActivationDeadlineDuringLongOutage(t *testing.T) {
	h := newHarness(t)
	h.outage(testActivation-time.Minute, testActivation+3*time.Hour)
	during := h.queryAt(testActivation + time.Hour)
	h.run(newInput("sub-od", withNotifications))

	final := h.result()
	assert.Equal(t, domain.StatusPendingFulfillment, during.Status, "nothing changes before the write succeeds")
	assert.Equal(t, domain.StatusFulfillmentExpired, final.Status)
	assert.GreaterOrEqual(t, h.env.Now().Sub(at(testActivation+3*time.Hour)), time.Duration(0), "it ended after the outage")
	assert.Equal(t, []string{"purchased", "link_issued", "fulfillment_expired"}, h.store.EventTypes())
	assert.Empty(t, h.store.Ledger())
	assert.Greater(t, len(h.store.tried), len(h.store.Changes()), "writes were retried through the outage")
	h.store.requireConsistent(t)
}

// Term ends during an outage renew once each, charge once each, and the
// callers' messages sent meanwhile wait and then apply in order. The outage
// outlasts term 2 too: once the store is back the run renews term 2, then at
// once term 3 (in place), each term starting where the one before ended.
func TestRenewalAndMessagesDuringOutage(t *testing.T) {
	h := newHarness(t)
	h.fulfil()
	h.outage(termEnd-time.Minute, termEnd+90*time.Minute) // past term 2's end (+60m), before term 3's (+120m)
	patch := h.update(termEnd+10*time.Minute, UpdateChange, "p-out", ChangeRequest{MessageID: "p-out", Actor: admin, Nickname: ptr("through the outage")})
	during := h.queryAt(termEnd + time.Hour)
	h.suggestContinueAsNew(termEnd + 91*time.Minute)
	h.run(newInput("sub-or"))

	next := h.continued()
	assert.Equal(t, 1, during.TermNumber, "the renewal is not adopted before it is saved")
	assert.Equal(t, 3, next.Subscription.TermNumber)
	assert.Equal(t, at(termEnd+testTerm), *next.Subscription.TermStart)
	assert.Equal(t, "through the outage", *patch.applied(t).Nickname)
	assert.Equal(t, "through the outage", *next.Subscription.Nickname)
	charges := h.store.LedgerOfKind(domain.LedgerCharge)
	require.Len(t, charges, 3, "one charge per term")
	for i, c := range charges {
		assert.Equal(t, fmt.Sprintf("charge:sub-or:%d", i+1), c.ID)
	}
	assert.Equal(t, 3*unitPrice*testQuantity, h.store.Balance())
	assert.Len(t, h.store.EventsOfType(domain.EventRenewed), 2)
	h.store.requireConsistent(t)
}

// A callback refused by nothing but an outage is applied when the store is
// back; its redelivery (same webhook-id) bills nothing more.
func TestCallbackDuringOutageBillsOnce(t *testing.T) {
	h := newHarness(t)
	h.outage(testActivateAt-time.Second, testActivateAt+20*time.Minute)
	licenses, activate := h.fulfil()
	redelivered := h.update(testActivateAt+25*time.Minute, UpdateConfirmFulfillment, "wh-activate-2",
		FulfillmentRequest{MessageID: "wh-activate", Actor: publisher})
	h.run(newInput("sub-ocb", withoutAutoRenew))

	licenses.applied(t)
	assert.Equal(t, domain.StatusActive, activate.applied(t).Status)
	assert.Equal(t, domain.StatusActive, redelivered.applied(t).Status)
	require.Len(t, h.store.LedgerOfKind(domain.LedgerCharge), 1)
	assert.Equal(t, unitPrice*testQuantity, h.store.Balance())
	h.store.requireConsistent(t)
}

// A cancel whose write fails leaves nothing behind in the state: the
// subscription is still active and its charge still billed, so nothing is
// refunded twice and a later cancel refunds exactly the charge.
func TestStateChangesOnlyAfterTheWrite(t *testing.T) {
	h := newHarness(t)
	h.fulfil()
	h.outage(5*time.Minute, 8*time.Minute)
	cancel := h.update(6*time.Minute, UpdateCancel, "c", EndRequest{MessageID: "c", Actor: admin})
	during := h.queryAt(7 * time.Minute)
	h.run(newInput("sub-sa"))

	assert.Equal(t, domain.StatusActive, during.Status)
	assert.Equal(t, domain.StatusCancelled, cancel.applied(t).Status)
	refunds := h.store.LedgerOfKind(domain.LedgerRefund)
	require.Len(t, refunds, 1)
	assert.Equal(t, -unitPrice*testQuantity, refunds[0].AmountMinor)
	assert.Zero(t, h.store.Balance())
}

// When Temporal suggests it, the run continues as new at once (not only at
// renewal), carrying the whole state; the next run waits for the same
// deadline.
func TestContinuesAsNewWhenSuggested(t *testing.T) {
	h := newHarness(t)
	h.fulfil()
	h.at(20*time.Minute, func() { h.env.SetContinueAsNewSuggested(true) })
	h.update(20*time.Minute+time.Second, UpdateChange, "p", ChangeRequest{MessageID: "p", Actor: admin, Nickname: ptr("n")})
	h.run(newInput("sub-cs"))

	next := h.continued()
	assert.True(t, h.env.Now().Before(at(termEnd)), "continued before the term ended")
	assert.Equal(t, domain.StatusActive, next.Subscription.Status)
	assert.Equal(t, 1, next.Subscription.TermNumber)
	assert.True(t, next.Recorded)
	assert.Equal(t, h.store.Last(), next.Subscription, "the carried state is the saved one")
	assert.Equal(t, 5, next.EventSeq)

	final, h2 := runCarried(t, withoutRenewal(next), h.env.Now())
	assert.Equal(t, domain.StatusExpired, final.Status)
	assert.Equal(t, at(termEnd), h2.env.Now().UTC(), "the next run ends the term at the same instant")
}

func withoutRenewal(st State) State {
	st.Subscription.AutoRenew = false
	return st
}

// A run that has taken updatesPerRun Updates continues as new; messages that
// arrive while it drains are turned away to come again, and none is lost.
func TestContinuesAsNewAfterManyUpdates(t *testing.T) {
	h := newHarness(t)
	h.fulfil()
	var sent []*outcome
	h.at(5*time.Minute, func() {
		for i := range updatesPerRun + 5 {
			id := fmt.Sprintf("p%d", i)
			sent = append(sent, h.updateNow(UpdateChange, id, ChangeRequest{MessageID: id, Actor: admin, Nickname: ptr(id)}))
		}
	})
	h.run(newInput("sub-many"))

	next := h.continued()
	applied, turnedAway := 0, 0
	for _, o := range sent {
		o.mu.Lock()
		switch {
		case o.rejected != nil && ComeAgain(o.rejected):
			turnedAway++
		case o.completed && o.err == nil:
			applied++
		default:
			t.Errorf("%s: neither applied nor turned away (rejected=%v err=%v)", o.name, o.rejected, o.err)
		}
		o.mu.Unlock()
	}
	// Which messages the run still took depends on the order the handlers
	// ran; every one is either applied or told to come again.
	assert.GreaterOrEqual(t, applied, updatesPerRun-len(sent)+updatesPerRun, "the run took about its share")
	assert.Positive(t, turnedAway, "messages during the drain come again to the next run")
	nicknames := h.store.EventsOfType(domain.EventNicknameChanged)
	assert.Len(t, nicknames, applied)
	assert.Equal(t, nicknames[len(nicknames)-1].Detail["nickname"], *next.Subscription.Nickname)
	assert.Len(t, next.Handled, handledLimit)
}
