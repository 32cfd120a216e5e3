package workflows

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/partnerhub/fulfillment/domain"
)

// A move to another billing account is one transition: the snapshot carries
// the account and the timeline the move; a move to the account it is on is a
// no-op (no history); a terminal subscription moves nowhere.
func TestTransferBillingAccount(t *testing.T) {
	h := newHarness(t)
	h.fulfil()
	moved := h.update(20*time.Minute, UpdateTransferBilling, "t1",
		TransferRequest{MessageID: "t1", Actor: admin, BillingAccountID: "ba-eu", From: ptr("ba-default")})
	again := h.update(21*time.Minute, UpdateTransferBilling, "t1",
		TransferRequest{MessageID: "t1", Actor: admin, BillingAccountID: "ba-eu", From: ptr("ba-default")})
	same := h.update(22*time.Minute, UpdateTransferBilling, "t2",
		TransferRequest{MessageID: "t2", Actor: admin, BillingAccountID: "ba-eu", From: ptr("ba-default")})
	h.update(23*time.Minute, UpdateDeactivate, "d", EndRequest{MessageID: "d", Actor: admin})
	h.run(newInput("sub-move"))

	s := moved.applied(t)
	require.NotNil(t, s.BillingAccountID)
	assert.Equal(t, "ba-eu", *s.BillingAccountID)
	assert.Equal(t, "ba-eu", *again.applied(t).BillingAccountID, "the same message again answers the same")
	assert.Equal(t, "ba-eu", *same.unchanged(t).BillingAccountID, "the account it is on: a no-op")
	events := h.store.EventsOfType(domain.EventBillingAccountChanged)
	require.Len(t, events, 1)
	assert.Equal(t, "agent:alice", events[0].Actor)
	assert.Equal(t, map[string]any{"from_billing_account_id": "ba-default", "to_billing_account_id": "ba-eu"}, jsonOf(events[0].Detail))
	assert.Equal(t, domain.StatusDeactivated, h.result().Status)
	require.NotNil(t, h.result().BillingAccountID)
	assert.Equal(t, "ba-eu", *h.result().BillingAccountID, "the state keeps the account")
	h.store.requireConsistent(t)
}

// The purchase's write answers the default account it placed the
// subscription on; the workflow carries it, so a move names where it came
// from and a move back to it is a no-op.
func TestPurchaseCarriesTheDefaultAccount(t *testing.T) {
	h := newHarness(t)
	h.store.defaultAccount = ptr("ba-default")
	moved := h.update(time.Minute, UpdateTransferBilling, "t1", TransferRequest{MessageID: "t1", Actor: admin, BillingAccountID: "ba-eu"})
	home := h.update(2*time.Minute, UpdateTransferBilling, "t2", TransferRequest{MessageID: "t2", Actor: admin, BillingAccountID: "ba-eu"})
	h.run(newInput("sub-default", withoutAutoRenew))

	assert.Equal(t, "ba-eu", *moved.applied(t).BillingAccountID)
	home.unchanged(t)
	ev := h.store.Event(t, domain.EventBillingAccountChanged)
	assert.Equal(t, "ba-default", ev.Detail["from_billing_account_id"])
}

// The workflow's own account wins over the caller's idea of it.
func TestTransferBillingAccountFromTheWorkflowsAccount(t *testing.T) {
	h := newHarness(t)
	first := h.update(time.Minute, UpdateTransferBilling, "t1", TransferRequest{MessageID: "t1", Actor: admin, BillingAccountID: "ba-eu"})
	back := h.update(2*time.Minute, UpdateTransferBilling, "t2",
		TransferRequest{MessageID: "t2", Actor: admin, BillingAccountID: "ba-default", From: ptr("ba-default")})
	h.run(newInput("sub-move2", withoutAutoRenew))

	assert.Equal(t, "ba-eu", *first.applied(t).BillingAccountID)
	assert.Equal(t, "ba-default", *back.applied(t).BillingAccountID, "it is on ba-eu, whatever the caller read")
	events := h.store.EventsOfType(domain.EventBillingAccountChanged)
	require.Len(t, events, 2)
	assert.Nil(t, events[0].Detail["from_billing_account_id"], "an account nobody knew")
	assert.Equal(t, "ba-eu", events[1].Detail["from_billing_account_id"])
}

// The site a contact chose for set-up is recorded while the subscription
// waits for it; the same site again is a no-op; once set up, or ended, no
// site is chosen.
func TestChooseSite(t *testing.T) {
	h := newHarness(t)
	contact := Actor{Kind: "contact", ID: "ann"}
	chosen := h.update(time.Minute, UpdateChooseSite, "s1",
		ChooseSiteRequest{MessageID: "s1", Actor: contact, SiteID: "site-hq", SiteURL: "https://hq.woodgrove.example"})
	same := h.update(2*time.Minute, UpdateChooseSite, "s2",
		ChooseSiteRequest{MessageID: "s2", Actor: contact, SiteID: "site-hq", SiteURL: "https://hq.woodgrove.example"})
	other := h.update(3*time.Minute, UpdateChooseSite, "s3",
		ChooseSiteRequest{MessageID: "s3", Actor: contact, SiteID: "site-lab", SiteURL: "https://lab.woodgrove.example"})
	h.fulfil()
	late := h.update(testActivateAt+time.Minute, UpdateChooseSite, "s4",
		ChooseSiteRequest{MessageID: "s4", Actor: contact, SiteID: "site-hq", SiteURL: "https://hq.woodgrove.example"})
	h.run(newInput("sub-site", withoutAutoRenew))

	s := chosen.applied(t)
	assert.Equal(t, "site-hq", *s.SiteID)
	assert.Equal(t, "https://hq.woodgrove.example", *s.SiteURL)
	assert.Equal(t, "site-hq", *same.unchanged(t).SiteID)
	assert.Equal(t, "site-lab", *other.applied(t).SiteID, "another site may be chosen until set-up")
	late.refusedWith(t, ErrInvalidState)
	events := h.store.EventsOfType(domain.EventSiteChosen)
	require.Len(t, events, 2)
	assert.Equal(t, "contact:ann", events[0].Actor)
	assert.Equal(t, map[string]any{"site_id": "site-hq", "url": "https://hq.woodgrove.example"}, jsonOf(events[0].Detail))
	h.store.requireConsistent(t)
}

// A terminal subscription moves nowhere and takes no site. (Its workflow
// closes at once, so the API answers a closed one from the read model; the
// check is what a message arriving while it drains meets.)
func TestCustomerSideRefusedWhenTerminal(t *testing.T) {
	for _, status := range []domain.Status{domain.StatusCancelled, domain.StatusDeactivated, domain.StatusExpired,
		domain.StatusFulfillmentExpired, domain.StatusUnsubscribed} {
		w := &subscriptionWorkflow{st: newInput("sub-end")}
		w.st.Subscription.Status = status
		_, ok := problemOf(notTerminal[TransferRequest](w)(t0, TransferRequest{BillingAccountID: "ba-eu"}))
		assert.True(t, ok, "transfer when %s", status)
		_, ok = problemOf(w.checkChooseSite(t0, ChooseSiteRequest{SiteID: "site-hq"}))
		assert.True(t, ok, "choose a site when %s", status)
	}
	w := &subscriptionWorkflow{st: newInput("sub-open")}
	assert.NoError(t, notTerminal[TransferRequest](w)(t0, TransferRequest{BillingAccountID: "ba-eu"}))
	assert.NoError(t, w.checkChooseSite(t0, ChooseSiteRequest{SiteID: "site-hq"}))
}

// problemOf reports whether err is an invalid_state refusal.
func problemOf(err error) (string, bool) {
	code, msg, ok := ProblemCode(err)
	return msg, ok && code == ErrInvalidState
}
