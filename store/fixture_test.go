// Fixtures shared by the store tests: every test gets its own migrated
// database (testenv.Database) and, where it needs one, a small seeded catalog.
package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/partnerhub/fulfillment/domain"
	"github.com/partnerhub/fulfillment/store"
	"github.com/partnerhub/fulfillment/testenv"
)

// Seeded catalog ids.
const (
	publisherID          = "contoso"
	offerID              = "contoso-analytics"
	planID               = "std-annual"
	partnerID            = "fabrikam"
	customerID           = "woodgrove"
	otherCustomer        = "northwind" // second customer of fabrikam
	otherPartner         = "tailspin"
	otherPartnerCustomer = "adatum" // tailspin's customer
)

// t0 is a fixed instant, already at PostgreSQL's microsecond precision.
var t0 = time.Date(2025, 3, 14, 9, 26, 53, 589793000, time.UTC)

type fixture struct {
	ctx context.Context
	st  *store.Store
	db  *sqlx.DB
	url string
}

// newFixture gives a fresh database with nothing in it.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	t.Parallel()
	st, url := testenv.Database(t)
	return &fixture{ctx: context.Background(), st: st, db: st.DB(), url: url}
}

// seeded gives a fresh database with one publisher, offer and plan, and two
// partners with their customers.
func seeded(t *testing.T) *fixture {
	t.Helper()
	f := newFixture(t)
	require.NoError(t, f.st.UpsertPublisher(f.ctx, store.Publisher{ID: publisherID, Name: "Contoso", LandingURL: "https://contoso.example/setup"}))
	require.NoError(t, f.st.UpsertOffer(f.ctx, store.Offer{ID: offerID, PublisherID: publisherID, Name: "Contoso Analytics", Kind: domain.OfferKindSaaS}))
	require.NoError(t, f.st.UpsertPlan(f.ctx, domain.Plan{ID: planID, OfferID: offerID, Name: "Standard", Term: "P1Y",
		UnitPriceMinor: 1200, Currency: "USD", MinQuantity: 1, MaxQuantity: 1000, CancellationWindow: "P7D", ActivationDeadline: "P30D"}))
	for partner, customers := range map[string][]string{partnerID: {customerID, otherCustomer}, otherPartner: {otherPartnerCustomer}} {
		require.NoError(t, f.st.UpsertPartner(f.ctx, store.Partner{ID: partner, Name: partner}))
		for _, c := range customers {
			require.NoError(t, f.st.UpsertCustomer(f.ctx, store.Customer{PartnerID: partner, ID: c, Name: c}))
		}
	}
	return f
}

// subscription builds a pending subscription of fabrikam's customer woodgrove at version 1.
func subscription(id string) domain.Subscription {
	nickname := "nick " + id
	return domain.Subscription{
		ID: id, PartnerID: partnerID, CustomerID: customerID, PublisherID: publisherID, OfferID: offerID, PlanID: planID,
		Quantity: 5, Nickname: &nickname, AutoRenew: true, LinkedSubscriptionIDs: []string{},
		EntitlementNumber: domain.EntitlementNumber(id), Status: domain.StatusPendingFulfillment,
		ActivationDeadline: t0.Add(30 * 24 * time.Hour), CreatedAt: t0, UpdatedAt: t0, Version: 1,
		BillingFrequency: "P1Y", // the plan's term: billed once per term
	}
}

// purchase is the first change of a subscription: two events, one
// notification and an authorization code valid for a day.
func purchase(sub domain.Subscription) domain.Change {
	until := t0.Add(24 * time.Hour)
	return domain.Change{
		Subscription: sub,
		Events: []domain.Event{
			{SubscriptionID: sub.ID, Key: sub.ID + ":purchased", At: t0, Type: "purchased", Actor: "agent:alice",
				Detail: map[string]any{"quantity": float64(sub.Quantity)}},
			{SubscriptionID: sub.ID, Key: sub.ID + ":link_issued", At: t0, Type: "link_issued", Actor: "system"},
		},
		Notifications:  []domain.Notification{{ID: sub.ID + ":purchased", Type: domain.NotifyPurchased, OccurredAt: t0}},
		IssueLinkUntil: &until,
	}
}

// activation moves sub to active at version 2 and charges term 1.
func activation(sub domain.Subscription) domain.Change {
	at := t0.Add(time.Hour)
	end := at.AddDate(1, 0, 0)
	window := at.Add(7 * 24 * time.Hour)
	sub.Status, sub.Version, sub.UpdatedAt = domain.StatusActive, 2, at
	sub.LicensesAssigned, sub.FulfillmentConfirmed, sub.TermNumber = 5, true, 1
	sub.BillingStartedAt, sub.TermStart, sub.TermEnd, sub.CancellationWindowEndsAt = &at, &at, &end, &window
	return domain.Change{
		Subscription: sub,
		Events:       []domain.Event{{SubscriptionID: sub.ID, Key: sub.ID + ":billing_started:1", At: at, Type: "billing_started", Actor: "system"}},
		Ledger: []domain.LedgerEntry{{ID: chargeID(sub.ID, 1), SubscriptionID: sub.ID, TermNumber: 1, Kind: domain.LedgerCharge,
			AmountMinor: 6000, Currency: "USD", PeriodStart: at, PeriodEnd: end, CreatedAt: at}},
		Notifications: []domain.Notification{{ID: sub.ID + ":activated", Type: domain.NotifyActivated, OccurredAt: at}},
	}
}

func chargeID(subscriptionID string, term int) string {
	return fmt.Sprintf("charge:%s:%d", subscriptionID, term)
}

func (f *fixture) save(t *testing.T, c domain.Change, codeHash []byte) domain.SaveResult {
	t.Helper()
	res, err := f.st.SaveChange(f.ctx, c, codeHash)
	require.NoError(t, err)
	return res
}

// count runs SELECT count(*) FROM <from>.
func (f *fixture) count(t *testing.T, from string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, f.db.GetContext(f.ctx, &n, "SELECT count(*) FROM "+from, args...))
	return n
}

// exec runs raw SQL, for arranging what the store API cannot (ages, locks).
func (f *fixture) exec(t *testing.T, query string, args ...any) {
	t.Helper()
	_, err := f.db.ExecContext(f.ctx, query, args...)
	require.NoError(t, err)
}

// rowCounts counts every table a change writes to.
func (f *fixture) rowCounts(t *testing.T) map[string]int {
	t.Helper()
	counts := map[string]int{}
	for _, table := range []string{"subscriptions", "events", "ledger", "outbox", "authorization_codes"} {
		counts[table] = f.count(t, table)
	}
	return counts
}
