package workflows

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/partnerhub/fulfillment/domain"
)

func changeQuantity(id string, q int) ChangeRequest {
	return ChangeRequest{MessageID: id, Actor: admin, Quantity: &q}
}

func TestQuantityChangeBounds(t *testing.T) {
	windowEnd := testActivateAt + testWindow
	h := newHarness(t)
	h.fulfil() // 3 licenses assigned, quantity 5
	zero := h.update(5*time.Minute, UpdateChange, "q0", changeQuantity("q0", 0))
	over := h.update(5*time.Minute, UpdateChange, "q11", changeQuantity("q11", 11))
	belowLicenses := h.update(5*time.Minute, UpdateChange, "q2", changeQuantity("q2", 2))
	atClose := h.update(windowEnd, UpdateChange, "q4-close", changeQuantity("q4-close", 4))
	after := h.update(windowEnd+time.Minute, UpdateChange, "q4-after", changeQuantity("q4-after", 4))
	max := h.update(windowEnd+2*time.Minute, UpdateChange, "q10", changeQuantity("q10", 10))
	h.run(newInput("sub-q", withoutAutoRenew))

	zero.rejectedWith(t, ErrValidationFailed)
	over.rejectedWith(t, ErrValidationFailed)
	belowLicenses.rejectedWith(t, ErrValidationFailed)
	atClose.rejectedWith(t, ErrCancellationWindowClosed)
	after.rejectedWith(t, ErrCancellationWindowClosed)
	assert.Equal(t, 10, max.applied(t).Quantity, "an increase is fine after the window")
	assert.Len(t, h.store.EventsOfType("quantity_changed"), 1)
	assert.Equal(t, 10, h.result().Quantity)
}

// Proration: unit price × delta × remaining / term length, truncated toward
// zero. The term is [t0+3m, t0+63m): 3600 s long.
func TestQuantityChangesAreProrated(t *testing.T) {
	h := newHarness(t)
	h.fulfil()
	up := h.update(10*time.Minute+12*time.Second+500*time.Millisecond, UpdateChange, "patch-up", changeQuantity("patch-up", 7))
	down := h.update(11*time.Minute+30*time.Second+500*time.Millisecond, UpdateChange, "patch-down", changeQuantity("patch-down", 6))
	cancel := h.update(12*time.Minute, UpdateCancel, "c", EndRequest{MessageID: "c", Actor: admin})
	h.run(newInput("sub-pr", withNotifications))

	assert.Equal(t, 7, up.applied(t).Quantity)
	assert.Equal(t, 6, down.applied(t).Quantity)
	assert.Equal(t, domain.StatusCancelled, cancel.applied(t).Status)

	ledger := h.store.Ledger()
	require.Len(t, ledger, 4)
	// 1200 × 2 × 3167.5 s / 3600 s = 2111.67 → 2111 (truncated, not rounded)
	assert.Equal(t, domain.LedgerEntry{
		ID: "proration:sub-pr:1:patch-up", SubscriptionID: "sub-pr", TermNumber: 1, Kind: domain.LedgerProration,
		AmountMinor: 2111, Currency: "USD", PeriodStart: at(testActivateAt), PeriodEnd: at(testActivateAt + testTerm),
		CreatedAt: at(10*time.Minute + 12*time.Second + 500*time.Millisecond),
	}, ledger[1])
	// 1200 × −1 × 3089.5 s / 3600 s = −1029.83 → −1029 (toward zero)
	assert.Equal(t, "proration:sub-pr:1:patch-down", ledger[2].ID)
	assert.Equal(t, int64(-1029), ledger[2].AmountMinor)
	// The refund gives back everything the term billed: 6000 + 2111 − 1029.
	assert.Equal(t, "refund:sub-pr:1", ledger[3].ID)
	assert.Equal(t, int64(-7082), ledger[3].AmountMinor)
	assert.Equal(t, int64(0), h.store.Balance())

	ev := h.store.EventsOfType("quantity_changed")
	require.Len(t, ev, 2)
	assert.Equal(t, jsonOf(map[string]any{"from": 5, "to": 7, "proration_minor": int64(2111)}), ev[0].Detail)
	assert.Equal(t, "agent:alice", ev[0].Actor)
	assert.Equal(t, jsonOf(map[string]any{"from": 7, "to": 6, "proration_minor": int64(-1029)}), ev[1].Detail)
	assert.Equal(t, []string{domain.NotifyPurchased, domain.NotifyActivated, domain.NotifyQuantityChanged,
		domain.NotifyQuantityChanged, domain.NotifyCancelled}, h.store.NotificationTypes())
	h.store.requireConsistent(t)
}

func TestProrate(t *testing.T) {
	for _, tc := range []struct {
		full              int64
		remaining, length time.Duration
		want              int64
	}{
		{2400, 3167 * time.Second, time.Hour, 2111},
		{-1200, 3089500 * time.Millisecond, time.Hour, -1029},
		{1200, time.Hour, time.Hour, 1200},
		{1200, time.Millisecond, time.Hour, 0},
		{1200, 2999 * time.Second, time.Hour, 999},                         // 999.67: truncated, not rounded
		{-1200, 2999 * time.Second, time.Hour, -999},                       // toward zero, not floor
		{1200 * 1000, 364 * 24 * time.Hour, 365 * 24 * time.Hour, 1196712}, // a year-long plan
	} {
		assert.Equal(t, tc.want, prorate(tc.full, tc.remaining, tc.length), "%d × %s / %s", tc.full, tc.remaining, tc.length)
	}
}

func TestIncreaseAfterWindowIsChargedAndRenewsAtNewQuantity(t *testing.T) {
	h := newHarness(t)
	h.fulfil()
	up := h.update(40*time.Minute, UpdateChange, "patch-6", changeQuantity("patch-6", 6))
	h.suggestContinueAsNew(termEnd + time.Minute)
	h.run(newInput("sub-inc"))

	assert.Equal(t, 6, up.applied(t).Quantity)
	next := h.continued()
	ledger := h.store.Ledger()
	require.Len(t, ledger, 3)
	assert.Equal(t, "proration:sub-inc:1:patch-6", ledger[1].ID)
	assert.Equal(t, int64(460), ledger[1].AmountMinor, "1200 × 1 × 23 min / 60 min")
	assert.Equal(t, "charge:sub-inc:2", ledger[2].ID)
	assert.Equal(t, unitPrice*6, ledger[2].AmountMinor, "the renewal bills the new quantity")
	assert.Equal(t, 6, next.Subscription.Quantity)
	assert.Equal(t, unitPrice*6, next.TermBilledMinor)
}

func TestQuantityChangeWhilePendingIsBilledAtActivation(t *testing.T) {
	h := newHarness(t)
	up := h.update(time.Minute, UpdateChange, "q8", changeQuantity("q8", 8))
	down := h.update(90*time.Second, UpdateChange, "q1", changeQuantity("q1", 1))
	up2 := h.update(100*time.Second, UpdateChange, "q4", changeQuantity("q4", 4))
	h.fulfil()
	h.run(newInput("sub-pq", withoutAutoRenew))

	assert.Equal(t, 8, up.applied(t).Quantity)
	assert.Equal(t, 1, down.applied(t).Quantity, "before billing even a decrease is free")
	assert.Equal(t, 4, up2.applied(t).Quantity)
	require.Len(t, h.store.Ledger(), 1, "no proration before billing")
	assert.Equal(t, unitPrice*4, h.store.Ledger()[0].AmountMinor)
}

func TestAttributeChangesEmitEvents(t *testing.T) {
	h := newHarness(t)
	h.fulfil()
	set := h.update(5*time.Minute, UpdateChange, "patch-1", ChangeRequest{
		MessageID: "patch-1", Actor: Actor{Kind: "agent", ID: "bob"},
		Nickname: ptr("HQ"), AutoRenew: ptr(false), ResellerPartnerID: ptr("northwind"),
	})
	// The same Idempotency-Key under a new update id: no effect, even with another body.
	dup := h.update(6*time.Minute, UpdateChange, "patch-1-again", ChangeRequest{MessageID: "patch-1", Nickname: ptr("Other")})
	var savesBeforeNoop int
	h.at(7*time.Minute-time.Second, func() { savesBeforeNoop = len(h.store.Changes()) })
	noop := h.update(7*time.Minute, UpdateChange, "patch-2", ChangeRequest{MessageID: "patch-2", AutoRenew: ptr(false)})
	clear := h.update(8*time.Minute, UpdateChange, "patch-3", ChangeRequest{MessageID: "patch-3", ClearNickname: true, ClearReseller: true})
	h.run(newInput("sub-attr"))

	s := set.applied(t)
	assert.Equal(t, "HQ", *s.Nickname)
	assert.False(t, s.AutoRenew)
	assert.Equal(t, "northwind", *s.ResellerPartnerID)
	assert.Equal(t, "HQ", *dup.applied(t).Nickname)
	assert.False(t, noop.unchanged(t).AutoRenew, "setting a field to its value is refused as a no-op")
	cleared := clear.applied(t)
	assert.Nil(t, cleared.Nickname)
	assert.Nil(t, cleared.ResellerPartnerID)

	assert.Equal(t, []string{"purchased", "link_issued", "licenses_assigned", "fulfillment_confirmed", "billing_started",
		"nickname_changed", "auto_renew_changed", "reseller_changed", "nickname_changed", "reseller_changed", "expired"},
		h.store.EventTypes())
	nick := h.store.EventsOfType("nickname_changed")
	require.Len(t, nick, 2)
	assert.Equal(t, "agent:bob", nick[0].Actor)
	assert.Equal(t, "HQ", nick[0].Detail["nickname"])
	assert.Nil(t, nick[1].Detail["nickname"])
	assert.Equal(t, jsonOf(map[string]any{"auto_renew": false}), h.store.Event(t, "auto_renew_changed").Detail)
	reseller := h.store.EventsOfType("reseller_changed")
	require.Len(t, reseller, 2)
	assert.Equal(t, "northwind", reseller[0].Detail["reseller_partner_id"])
	assert.Nil(t, reseller[1].Detail["reseller_partner_id"])
	// One change row per PATCH: three events in the first, none for the no-op.
	changes := h.store.Changes()
	assert.Len(t, changes[3].Events, 3)
	assert.Len(t, changes, savesBeforeNoop+2, "after the no-op only the clear and the expiry were saved")
	assert.Len(t, h.store.Ledger(), 1, "attribute changes cost nothing")
	// Turning auto_renew off means the term ends in expiry, not renewal.
	assert.Equal(t, domain.StatusExpired, h.result().Status)
	h.mu.Lock()
	defer h.mu.Unlock()
	require.Len(t, h.memos, 2, "the memo follows the nickname")
	assert.Equal(t, "HQ", h.memos[0]["nickname"])
	assert.Equal(t, "", h.memos[1]["nickname"])
}

// Two PATCHes without an Idempotency-Key must still write two distinct
// proration rows: the ledger's unique key would silently drop the second.
func TestProrationsWithoutMessageIDHaveDistinctKeys(t *testing.T) {
	h := newHarness(t)
	h.fulfil()
	one := h.update(20*time.Minute, UpdateChange, "", ChangeRequest{Quantity: ptr(6)})
	two := h.update(33*time.Minute, UpdateChange, "", ChangeRequest{Quantity: ptr(7)})
	h.run(newInput("sub-nokey", withoutAutoRenew))

	assert.Equal(t, 6, one.applied(t).Quantity)
	assert.Equal(t, 7, two.applied(t).Quantity)
	prorations := h.store.LedgerOfKind(domain.LedgerProration)
	require.Len(t, prorations, 2)
	qc := h.store.EventsOfType("quantity_changed")
	require.Len(t, qc, 2)
	// Keyed by the sequence number of the quantity_changed event they go with.
	assert.Equal(t, []string{"proration:sub-nokey:1:event-6", "proration:sub-nokey:1:event-7"},
		[]string{prorations[0].ID, prorations[1].ID})
	assert.Equal(t, []string{"sub-nokey:6", "sub-nokey:7"},
		[]string{qc[0].Key, qc[1].Key})
	assert.Equal(t, []int64{860, 600}, []int64{prorations[0].AmountMinor, prorations[1].AmountMinor})
	h.store.requireConsistent(t)
}
