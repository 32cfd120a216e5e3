package store_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/partnerhub/fulfillment/domain"
	"github.com/partnerhub/fulfillment/store"
)

// A plan's billing frequency and its allowed list round-trip through the
// catalog; a plan without them bills once per term.
func TestPlanBillingFrequencies(t *testing.T) {
	f := seeded(t)
	monthly := domain.Plan{ID: "annual-monthly", OfferID: offerID, Name: "Annual, billed monthly", Term: "P1Y",
		UnitPriceMinor: 1200, Currency: "USD", MinQuantity: 1, MaxQuantity: 10, CancellationWindow: "P7D", ActivationDeadline: "P30D",
		BillingFrequency: "P1M", BillingFrequencies: []string{"P3M", "P1Y"}}
	require.NoError(t, f.st.UpsertPlan(f.ctx, monthly))

	p, err := f.st.Plan(f.ctx, offerID, "annual-monthly")
	require.NoError(t, err)
	assert.Equal(t, "P1M", p.BillingFrequency)
	assert.Equal(t, []string{"P3M", "P1Y"}, p.BillingFrequencies)
	plain, err := f.st.Plan(f.ctx, offerID, planID)
	require.NoError(t, err)
	assert.Equal(t, "", plain.BillingFrequency)
	assert.Nil(t, plain.BillingFrequencies)
	assert.Equal(t, []string{"P1Y"}, plain.Frequencies())

	o, err := f.st.CatalogOffer(f.ctx, offerID)
	require.NoError(t, err)
	require.Len(t, o.Plans, 2)
	assert.Equal(t, "P1M", o.Plans[0].BillingFrequency)
	assert.Equal(t, []string{"P3M", "P1Y"}, o.Plans[0].BillingFrequencies)

	monthly.BillingFrequencies = nil
	require.NoError(t, f.st.UpsertPlan(f.ctx, monthly))
	p, err = f.st.Plan(f.ctx, offerID, "annual-monthly")
	require.NoError(t, err)
	assert.Nil(t, p.BillingFrequencies, "the list is replaced")
}

// The read model keeps the subscription's frequency, the pending one and the
// periods billed; a snapshot without a frequency (a run started before
// billing periods) leaves the row's alone.
func TestSaveChangeKeepsBillingFrequencyColumns(t *testing.T) {
	f := seeded(t)
	sub := subscription("sub-freq")
	sub.BillingFrequency = "P1M"
	f.save(t, purchase(sub), []byte("code-freq"))
	c := activation(sub)
	pending := "P3M"
	c.Subscription.PeriodsBilled, c.Subscription.PendingBillingFrequency = 1, &pending
	f.save(t, c, nil)

	got, err := f.st.Subscription(f.ctx, sub.ID)
	require.NoError(t, err)
	assert.Equal(t, "P1M", got.BillingFrequency)
	require.NotNil(t, got.PendingBillingFrequency)
	assert.Equal(t, "P3M", *got.PendingBillingFrequency)
	assert.Equal(t, 1, got.PeriodsBilled)

	legacy := got
	legacy.BillingFrequency, legacy.PendingBillingFrequency, legacy.PeriodsBilled, legacy.Version = "", nil, 0, 3
	f.save(t, domain.Change{Subscription: legacy}, nil)
	got, err = f.st.Subscription(f.ctx, sub.ID)
	require.NoError(t, err)
	assert.Equal(t, "P1M", got.BillingFrequency, "an empty frequency never overwrites one")
	assert.Nil(t, got.PendingBillingFrequency)
	assert.Equal(t, 0, got.PeriodsBilled)
	assert.Equal(t, 1, got.BilledPeriods(), "a billed term charged at least its first period")
}

// Each period's charge is its own row; a period charged again under its key
// with another amount is a conflict, never an overwrite.
func TestPeriodChargesAreKeyedPerPeriod(t *testing.T) {
	f := seeded(t)
	sub := subscription("sub-periods")
	sub.BillingFrequency = "P1M"
	f.save(t, purchase(sub), []byte("code-periods"))
	c := activation(sub)
	c.Ledger[0].AmountMinor, c.Ledger[0].PeriodEnd = 500, c.Ledger[0].PeriodStart.AddDate(0, 1, 0)
	c.Subscription.PeriodsBilled = 1
	f.save(t, c, nil)

	s := c.Subscription
	start := *s.TermStart
	period2 := func(amount int64) domain.Change {
		s.Version, s.PeriodsBilled = 3, 2
		return domain.Change{Subscription: s, Ledger: []domain.LedgerEntry{{
			ID: chargeID(s.ID, 1) + ":2", SubscriptionID: s.ID, TermNumber: 1, Kind: domain.LedgerCharge, AmountMinor: amount,
			Currency: "USD", PeriodStart: start.AddDate(0, 1, 0), PeriodEnd: start.AddDate(0, 2, 0), CreatedAt: start.AddDate(0, 1, 0),
		}}}
	}
	f.save(t, period2(500), nil)
	f.save(t, period2(500), nil) // a retried write adds nothing
	_, err := f.st.SaveChange(f.ctx, period2(501), nil)
	require.ErrorIs(t, err, store.ErrConflict)

	entries, balance, err := f.st.Ledger(f.ctx, s.ID)
	require.NoError(t, err)
	require.Len(t, entries, 2)
	assert.Equal(t, "charge:sub-periods:1:2", entries[1].ID)
	assert.Equal(t, start.AddDate(0, 1, 0).UTC(), entries[1].PeriodStart)
	assert.Equal(t, int64(1000), balance)
	got, err := f.st.Subscription(f.ctx, s.ID)
	require.NoError(t, err)
	assert.Equal(t, 2, got.PeriodsBilled)
}

// Billing reads the subscription with its ledger as of one instant.
func TestBillingReadsSubscriptionAndLedgerTogether(t *testing.T) {
	f := seeded(t)
	sub := subscription("sub-billing")
	f.save(t, purchase(sub), []byte("code-billing"))
	c := activation(sub)
	c.Subscription.PeriodsBilled = 1
	f.save(t, c, nil)

	got, entries, balance, err := f.st.Billing(f.ctx, sub.ID)
	require.NoError(t, err)
	assert.Equal(t, 1, got.PeriodsBilled)
	assert.Equal(t, domain.StatusActive, got.Status)
	require.Len(t, entries, 1)
	assert.Equal(t, int64(6000), balance)
	_, _, _, err = f.st.Billing(f.ctx, "nope")
	assert.ErrorIs(t, err, store.ErrNotFound)
}

// The snapshot carries the price, term and quantity bounds of the plan the workflow charges
// from; they round-trip through the upsert whatever the catalog says since,
// follow a plan change, and a snapshot without them (a row saved before the
// columns, or by a worker that does not know them) stores NULL and still reads.
func TestSaveChangeKeepsTheCarriedPrice(t *testing.T) {
	f := seeded(t)
	sub := subscription("sub-price")
	price, currency, term, lo, hi := int64(1200), "USD", "P1Y", 1, 100
	sub.UnitPriceMinor, sub.Currency, sub.PlanTerm = &price, &currency, &term
	sub.MinQuantity, sub.MaxQuantity = &lo, &hi
	f.save(t, purchase(sub), []byte("code-price"))

	// The operator re-prices the catalog's plan: the row keeps what the workflow carries.
	plan, err := f.st.Plan(f.ctx, offerID, planID)
	require.NoError(t, err)
	plan.UnitPriceMinor, plan.Currency, plan.Term, plan.MinQuantity, plan.MaxQuantity = 1500, "EUR", "P2Y", 5, 10
	require.NoError(t, f.st.UpsertPlan(f.ctx, plan))
	got, err := f.st.Subscription(f.ctx, sub.ID)
	require.NoError(t, err)
	require.NotNil(t, got.UnitPriceMinor)
	require.NotNil(t, got.Currency)
	assert.Equal(t, int64(1200), *got.UnitPriceMinor)
	assert.Equal(t, "USD", *got.Currency)
	assert.Equal(t, int64(1200), got.PricedPlan(plan).UnitPriceMinor)
	assert.Equal(t, "USD", got.PricedPlan(plan).Currency)
	if assert.NotNil(t, got.PlanTerm) {
		assert.Equal(t, "P1Y", *got.PlanTerm)
	}
	assert.Equal(t, "P1Y", got.PricedPlan(plan).Term, "the carried term, not the catalog's")
	if assert.NotNil(t, got.MinQuantity) && assert.NotNil(t, got.MaxQuantity) {
		assert.Equal(t, [2]int{1, 100}, [2]int{*got.MinQuantity, *got.MaxQuantity})
	}
	assert.Equal(t, [2]int{1, 100}, [2]int{got.PricedPlan(plan).MinQuantity, got.PricedPlan(plan).MaxQuantity},
		"the carried quantity bounds, not the catalog's")

	c := activation(sub)
	changed := int64(2000)
	c.Subscription.UnitPriceMinor = &changed // a plan change took effect in the workflow
	f.save(t, c, nil)
	billed, _, _, err := f.st.Billing(f.ctx, sub.ID)
	require.NoError(t, err)
	require.NotNil(t, billed.UnitPriceMinor)
	assert.Equal(t, int64(2000), *billed.UnitPriceMinor, "the billing read sees the carried price")

	legacy := billed
	legacy.UnitPriceMinor, legacy.Currency, legacy.PlanTerm, legacy.Version = nil, nil, nil, 3
	legacy.MinQuantity, legacy.MaxQuantity = nil, nil
	f.save(t, domain.Change{Subscription: legacy}, nil)
	got, err = f.st.Subscription(f.ctx, sub.ID)
	require.NoError(t, err)
	assert.Nil(t, got.UnitPriceMinor, "not kept from an earlier snapshot: it may be another plan's")
	assert.Nil(t, got.Currency)
	assert.Equal(t, int64(1500), got.PricedPlan(plan).UnitPriceMinor, "NULL falls back to the catalog")
	assert.Equal(t, "P2Y", got.PricedPlan(plan).Term)
	assert.Equal(t, [2]int{5, 10}, [2]int{got.PricedPlan(plan).MinQuantity, got.PricedPlan(plan).MaxQuantity})
	var nulls int
	require.NoError(t, f.db.GetContext(f.ctx, &nulls, `SELECT count(*) FROM subscriptions
		WHERE id = $1 AND unit_price_minor IS NULL AND currency IS NULL AND plan_term IS NULL
		AND min_quantity IS NULL AND max_quantity IS NULL`, sub.ID))
	assert.Equal(t, 1, nulls)
}
