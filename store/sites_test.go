package store_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/partnerhub/fulfillment/domain"
	"github.com/partnerhub/fulfillment/email"
	"github.com/partnerhub/fulfillment/store"
)

func key(k string, body string) store.CreationKey {
	return store.CreationKey{Key: k, Hash: []byte(body)}
}

func TestSitesAreCreatedOncePerKeyAndPaged(t *testing.T) {
	f := seeded(t)
	hq, replayed, err := f.st.CreateSite(f.ctx, woodgrove, "HQ", "https://hq.example", "agent:alice", key("k1", "hq"))
	require.NoError(t, err)
	assert.False(t, replayed)
	again, replayed, err := f.st.CreateSite(f.ctx, woodgrove, "HQ", "https://hq.example", "agent:alice", key("k1", "hq"))
	require.NoError(t, err)
	assert.True(t, replayed)
	assert.Equal(t, hq.ID, again.ID)
	_, _, err = f.st.CreateSite(f.ctx, woodgrove, "Lab", "https://lab.example", "agent:alice", key("k1", "lab"))
	assert.ErrorIs(t, err, store.ErrIdempotencyKeyReused)
	_, _, err = f.st.CreateSite(f.ctx, woodgrove, "HQ2", "https://hq.example", "agent:alice", key("k2", "hq2"))
	assert.ErrorIs(t, err, store.ErrSiteExists)
	lab, _, err := f.st.CreateSite(f.ctx, woodgrove, "Lab", "https://lab.example", "agent:alice", key("k3", "lab"))
	require.NoError(t, err)
	// The same URL at another customer is another site; a refused create left no key behind.
	_, _, err = f.st.CreateSite(f.ctx, store.CustomerRef{PartnerID: partnerID, CustomerID: otherCustomer}, "HQ", "https://hq.example", "agent:alice", key("k2", "x"))
	require.NoError(t, err)

	page, next, err := f.st.Sites(f.ctx, woodgrove, store.Page{Limit: 1})
	require.NoError(t, err)
	require.Len(t, page, 1)
	assert.Equal(t, lab.ID, page[0].ID, "newest first")
	page, next, err = f.st.Sites(f.ctx, woodgrove, store.Page{Limit: 1, BeforeSeq: next})
	require.NoError(t, err)
	require.Len(t, page, 1)
	assert.Equal(t, hq.ID, page[0].ID)
	assert.Zero(t, next)
	none, _, err := f.st.Sites(f.ctx, store.CustomerRef{PartnerID: otherPartner, CustomerID: customerID}, store.Page{})
	require.NoError(t, err)
	assert.Empty(t, none, "another partner's customer of the same id sees nothing")
}

func TestPurchasePlacesOnDefaultAccountAndActivationOnSite(t *testing.T) {
	f := seeded(t)
	sub := subscription("sub-1")
	f.save(t, purchase(sub), nil)
	accounts, _, err := f.st.BillingAccounts(f.ctx, woodgrove, store.Page{})
	require.NoError(t, err)
	require.Len(t, accounts, 1, "a default account is created for the first purchase")
	assert.True(t, accounts[0].Default)
	f.save(t, purchase(subscription("sub-2")), nil)
	accounts, _, err = f.st.BillingAccounts(f.ctx, woodgrove, store.Page{})
	require.NoError(t, err)
	assert.Len(t, accounts, 1, "and reused")

	act := activation(sub)
	url := "https://woodgrove.contoso.example"
	act.Subscription.SiteURL = &url
	act.Events = append(act.Events, domain.Event{SubscriptionID: sub.ID, Key: "sub-1:confirmed", At: t0, Type: "fulfillment_confirmed", Actor: "publisher:contoso"})
	f.save(t, act, nil)
	f.save(t, act, nil) // retried: no second site

	app := subscription("app-1")
	app.ParentSubscriptionID = &sub.ID
	f.save(t, purchase(app), nil)
	placed, err := f.st.Placements(f.ctx, []string{sub.ID, app.ID, "sub-2"})
	require.NoError(t, err)
	require.NotNil(t, placed[sub.ID].SiteURL)
	assert.Equal(t, url, *placed[sub.ID].SiteURL)
	assert.Equal(t, "woodgrove.contoso.example", *placed[sub.ID].SiteName, "named after its host")
	require.NotNil(t, placed[app.ID].SiteURL, "an app lives on its parent's site")
	assert.Equal(t, *placed[sub.ID].SiteID, *placed[app.ID].SiteID)
	assert.Nil(t, placed["sub-2"].SiteID)
	assert.Equal(t, accounts[0].ID, *placed[sub.ID].BillingAccountID)
	assert.Nil(t, placed[sub.ID].SetupInstructions)
	steps := "Sign in and pick a site."
	require.NoError(t, f.st.SetSetupInstructions(f.ctx, offerID, &steps))
	placed, err = f.st.Placements(f.ctx, []string{sub.ID})
	require.NoError(t, err)
	require.NotNil(t, placed[sub.ID].SetupInstructions)
	assert.Equal(t, steps, *placed[sub.ID].SetupInstructions)
	assert.Equal(t, 1, f.count(t, "customer_sites"))
	assert.Equal(t, 1, f.count(t, "ledger WHERE billing_account_id = $1", accounts[0].ID), "the charge landed on the account")
}

// A move is a workflow transition: its snapshot carries the new account, so
// later charges land there, the move is on both timelines once and every
// contact is emailed once, however often the write is retried.
func TestTransferMovesFutureChargesAndEmails(t *testing.T) {
	f := seeded(t)
	withContacts(t, f)
	sub := subscription("sub-1")
	res, err := f.st.SaveChange(f.ctx, purchase(sub), nil)
	require.NoError(t, err)
	require.NotNil(t, res.BillingAccountID, "the purchase answers the default account it was placed on")
	europe, _, err := f.st.CreateBillingAccount(f.ctx, woodgrove, "Europe", "agent:alice", key("k", "europe"))
	require.NoError(t, err)
	assert.False(t, europe.Default)
	other, _, err := f.st.CreateBillingAccount(f.ctx, store.CustomerRef{PartnerID: partnerID, CustomerID: otherCustomer}, "Elsewhere", "agent:alice", key("k2", "x"))
	require.NoError(t, err)
	_, err = f.st.BillingAccount(f.ctx, woodgrove, other.ID)
	assert.ErrorIs(t, err, store.ErrNotFound, "another customer's account")
	got, err := f.st.BillingAccount(f.ctx, woodgrove, europe.ID)
	require.NoError(t, err)
	assert.Equal(t, "Europe", got.Name)

	sub.Version = 2
	sub.BillingAccountID = &europe.ID
	move := domain.Change{Subscription: sub, Events: []domain.Event{{SubscriptionID: sub.ID, Key: "sub-1:3", At: t0,
		Type: domain.EventBillingAccountChanged, Actor: "agent:fabrikam/alice",
		Detail: map[string]any{"from_billing_account_id": *res.BillingAccountID, "to_billing_account_id": europe.ID}}}}
	f.save(t, move, nil)
	f.save(t, move, nil) // retried

	act := activation(sub)
	act.Subscription.Version = 3
	act.Subscription.BillingAccountID = nil // a snapshot that does not know the account keeps the row's
	f.save(t, act, nil)
	placed, err := f.st.Placements(f.ctx, []string{sub.ID})
	require.NoError(t, err)
	assert.Equal(t, europe.ID, *placed[sub.ID].BillingAccountID)
	read, err := f.st.Subscription(f.ctx, sub.ID)
	require.NoError(t, err)
	assert.Equal(t, europe.ID, *read.BillingAccountID, "the read model's subscription carries its account")
	assert.Equal(t, 1, f.count(t, "ledger WHERE billing_account_id = $1", europe.ID), "the next charge lands on the new account")
	assert.Equal(t, 1, f.count(t, "events WHERE subscription_id = $1 AND type = 'billing_account_changed'", sub.ID))
	assert.Equal(t, 1, f.count(t, "customer_events WHERE type = 'subscription_transferred' AND detail->>'subscription_id' = $1", sub.ID))
	emails, err := f.st.CustomerEmails(f.ctx, woodgrove)
	require.NoError(t, err)
	var moved int
	for _, e := range emails {
		if e.Kind == email.KindBillingAccountChanged {
			moved++
		}
	}
	assert.Equal(t, 2, moved, "both contacts are told, once")
}

// The site chosen for set-up is the workflow's: its snapshot writes the
// site id; the publisher's activation does not replace it.
func TestChosenSiteIsWrittenByTheTransition(t *testing.T) {
	f := seeded(t)
	sub := subscription("sub-1")
	f.save(t, purchase(sub), nil)
	mine, _, err := f.st.CreateSite(f.ctx, woodgrove, "HQ", "https://hq.example", "contact:x", key("k1", "a"))
	require.NoError(t, err)
	theirs, _, err := f.st.CreateSite(f.ctx, store.CustomerRef{PartnerID: partnerID, CustomerID: otherCustomer}, "HQ", "https://hq.example", "agent:x", key("k2", "b"))
	require.NoError(t, err)
	_, err = f.st.Site(f.ctx, woodgrove, theirs.ID)
	assert.ErrorIs(t, err, store.ErrNotFound, "another customer's site")
	got, err := f.st.Site(f.ctx, woodgrove, mine.ID)
	require.NoError(t, err)
	assert.Equal(t, "https://hq.example", got.URL)

	sub.Version = 2
	sub.SiteID, sub.SiteURL = &mine.ID, &mine.URL
	chosen := domain.Change{Subscription: sub, Events: []domain.Event{{SubscriptionID: sub.ID, Key: "sub-1:3", At: t0,
		Type: domain.EventSiteChosen, Actor: "contact:x", Detail: map[string]any{"site_id": mine.ID, "url": mine.URL}}}}
	f.save(t, chosen, nil)
	f.save(t, chosen, nil)
	act := activation(sub)
	act.Subscription.Version = 3
	other := "https://elsewhere.example"
	act.Subscription.SiteURL = &other
	act.Events = append(act.Events, domain.Event{SubscriptionID: sub.ID, Key: "sub-1:confirmed", At: t0, Type: "fulfillment_confirmed", Actor: "publisher:contoso"})
	f.save(t, act, nil)
	placed, err := f.st.Placements(f.ctx, []string{sub.ID})
	require.NoError(t, err)
	assert.Equal(t, mine.ID, *placed[sub.ID].SiteID, "the chosen site stays")
	assert.Equal(t, 1, f.count(t, "customer_events WHERE type = 'site_chosen' AND detail->>'subscription_id' = $1", sub.ID))
}

// When the workflow records a move itself (NOTES-customers.md), its
// transition queues the same email.
func TestWorkflowMoveEventQueuesEmail(t *testing.T) {
	f := seeded(t)
	withContacts(t, f)
	sub := subscription("sub-1")
	f.save(t, purchase(sub), nil)
	accounts, _, err := f.st.BillingAccounts(f.ctx, woodgrove, store.Page{})
	require.NoError(t, err)
	europe, _, err := f.st.CreateBillingAccount(f.ctx, woodgrove, "Europe", "agent:alice", key("k", "europe"))
	require.NoError(t, err)
	sub.Version = 2
	change := domain.Change{Subscription: sub, Events: []domain.Event{{SubscriptionID: sub.ID, Key: "sub-1:9", At: t0,
		Type: store.EventBillingAccountChanged, Actor: "agent:alice",
		Detail: map[string]any{"from_billing_account_id": accounts[0].ID, "to_billing_account_id": europe.ID}}}}
	f.save(t, change, nil)
	f.save(t, change, nil)
	due, err := f.st.ClaimDueEmails(f.ctx, 50, time.Minute)
	require.NoError(t, err)
	var moved []store.PendingEmail
	for _, d := range due {
		if d.Kind == email.KindBillingAccountChanged {
			moved = append(moved, d)
		}
	}
	require.Len(t, moved, 2, "one per contact, once")
	d, err := moved[0].Data()
	require.NoError(t, err)
	assert.Equal(t, "Default", d.FromAccount)
	assert.Equal(t, "Europe", d.ToAccount)
}

// A purchase's write answers the billing account it was placed on: the
// default it created, the default a second purchase reuses, and the same
// account when the write is retried.
func TestPurchaseAnswersItsBillingAccount(t *testing.T) {
	f := seeded(t)
	first := f.save(t, purchase(subscription("sub-1")), nil)
	accounts, _, err := f.st.BillingAccounts(f.ctx, woodgrove, store.Page{})
	require.NoError(t, err)
	require.Len(t, accounts, 1)
	require.NotNil(t, first.BillingAccountID, "created the default account")
	assert.Equal(t, accounts[0].ID, *first.BillingAccountID)

	second := f.save(t, purchase(subscription("sub-2")), nil)
	require.NotNil(t, second.BillingAccountID, "placed on the existing default")
	assert.Equal(t, accounts[0].ID, *second.BillingAccountID)

	retried := f.save(t, purchase(subscription("sub-2")), nil)
	require.NotNil(t, retried.BillingAccountID, "a retried purchase answers the account of its first write")
	assert.Equal(t, accounts[0].ID, *retried.BillingAccountID)

	activated := f.save(t, activation(subscription("sub-1")), nil)
	assert.Nil(t, activated.BillingAccountID, "only a purchase answers its account")
}

// Every ledger line a change writes carries the subscription's billing
// account: a charge after the purchase (stamped as it is inserted), a charge
// in the purchase's own change (stamped once the purchase placed it), and a
// line written before without one (an older build's, found by the retry).
func TestLedgerLinesCarryTheBillingAccount(t *testing.T) {
	f := seeded(t)
	account := func(ledgerID string) *string {
		t.Helper()
		var id *string
		require.NoError(t, f.db.GetContext(f.ctx, &id, `SELECT billing_account_id FROM ledger WHERE id = $1`, ledgerID))
		return id
	}
	bought := f.save(t, purchase(subscription("sub-1")), nil)
	require.NotNil(t, bought.BillingAccountID)
	f.save(t, activation(subscription("sub-1")), nil)
	assert.Equal(t, bought.BillingAccountID, account(chargeID("sub-1", 1)), "a charge after the purchase")

	both := purchase(subscription("sub-2"))
	both.Ledger = activation(subscription("sub-2")).Ledger
	res := f.save(t, both, nil)
	require.NotNil(t, res.BillingAccountID)
	assert.Equal(t, res.BillingAccountID, account(chargeID("sub-2", 1)), "a charge in the purchase's own change")

	f.save(t, purchase(subscription("sub-3")), nil)
	act := activation(subscription("sub-3"))
	f.save(t, act, nil)
	f.exec(t, `UPDATE ledger SET billing_account_id = NULL WHERE id = $1`, chargeID("sub-3", 1))
	f.save(t, act, nil) // retried
	assert.Equal(t, bought.BillingAccountID, account(chargeID("sub-3", 1)), "a line written before without one")
}
