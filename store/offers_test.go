package store_test

import (
	"testing"

	"github.com/lib/pq"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/partnerhub/fulfillment/domain"
	"github.com/partnerhub/fulfillment/store"
)

// catalog adds to the seeded catalog a second publisher, an app with setup
// instructions, an offer without plans, and ids whose byte order differs
// from a locale's (upper case before lower case).
func catalog(t *testing.T) *fixture {
	t.Helper()
	f := seeded(t)
	instructions := "Sign in at https://litware.example/admin and invite your users."
	require.NoError(t, f.st.UpsertPublisher(f.ctx, store.Publisher{ID: "litware", Name: "Litware", LandingURL: "https://litware.example/start"}))
	for _, o := range []store.Offer{
		{ID: "contoso-insights", PublisherID: publisherID, Name: "Insights", Kind: domain.OfferKindApp, ParentOfferIDs: pq.StringArray{offerID, "Zeta"}},
		{ID: "Zeta", PublisherID: "litware", Name: "Zeta", Kind: domain.OfferKindSaaS, SetupInstructions: &instructions},
		{ID: "alpha", PublisherID: "litware", Name: "Alpha", Kind: domain.OfferKindSaaS},
		{ID: "no-plans", PublisherID: "litware", Name: "Not for sale yet", Kind: domain.OfferKindSaaS},
	} {
		require.NoError(t, f.st.UpsertOffer(f.ctx, o))
	}
	for _, p := range []domain.Plan{
		{ID: "monthly", OfferID: "contoso-insights", Name: "Monthly", Term: "P1M", UnitPriceMinor: 300, Currency: "USD",
			MinQuantity: 1, MaxQuantity: 50, CancellationWindow: "P3D", ActivationDeadline: "P30D"},
		{ID: "b-annual", OfferID: "Zeta", Name: "Annual", Term: "P1Y", UnitPriceMinor: 900, Currency: "EUR",
			MinQuantity: 2, MaxQuantity: 10, CancellationWindow: "P7D", ActivationDeadline: "P14D"},
		{ID: "a-monthly", OfferID: "Zeta", Name: "Monthly", Term: "P1M", UnitPriceMinor: 90, Currency: "EUR",
			MinQuantity: 1, MaxQuantity: 10, CancellationWindow: "P3D", ActivationDeadline: "P14D"},
		{ID: "std", OfferID: "alpha", Name: "Standard", Term: "P1Y", UnitPriceMinor: 100, Currency: "GBP",
			MinQuantity: 1, MaxQuantity: 1, CancellationWindow: "PT30S", ActivationDeadline: "PT1M"},
	} {
		require.NoError(t, f.st.UpsertPlan(f.ctx, p))
	}
	return f
}

// catalogOrder is every offer id of catalog() in byte order.
var catalogOrder = []string{"Zeta", "alpha", "contoso-analytics", "contoso-insights", "no-plans"}

func offerIDs(offers []store.CatalogOffer) []string {
	out := make([]string, 0, len(offers))
	for _, o := range offers {
		out = append(out, o.ID)
	}
	return out
}

func (f *fixture) offers(t *testing.T, filter store.OfferFilter) store.OfferPage {
	t.Helper()
	page, err := f.st.ListOffers(f.ctx, filter)
	require.NoError(t, err)
	return page
}

func TestListOffersPagesTheCatalogInByteOrder(t *testing.T) {
	f := catalog(t)

	all := f.offers(t, store.OfferFilter{Limit: 50})
	assert.Equal(t, catalogOrder, offerIDs(all.Items))
	assert.Nil(t, all.Next, "everything fits on one page")

	for _, limit := range []int{1, 2, 3, 4} {
		var seen []string
		var after *string
		pages := 0
		for {
			page := f.offers(t, store.OfferFilter{Limit: limit, After: after})
			pages++
			assert.LessOrEqual(t, len(page.Items), limit)
			seen = append(seen, offerIDs(page.Items)...)
			if page.Next == nil {
				break
			}
			assert.Equal(t, seen[len(seen)-1], *page.Next, "the cursor is the last id of the page")
			after = page.Next
			require.Less(t, pages, 10, "paging does not end")
		}
		assert.Equal(t, catalogOrder, seen, "limit %d: every offer once, in order", limit)
		assert.Equal(t, (len(catalogOrder)+limit-1)/limit, pages, "limit %d: no empty last page", limit)
	}

	assert.Nil(t, f.offers(t, store.OfferFilter{Limit: len(catalogOrder)}).Next, "exactly limit offers: no further page")
	assert.NotNil(t, f.offers(t, store.OfferFilter{Limit: len(catalogOrder) - 1}).Next)

	// A cursor whose offer is gone (or never was) still continues after it.
	gone := "b"
	assert.Equal(t, catalogOrder[2:], offerIDs(f.offers(t, store.OfferFilter{Limit: 50, After: &gone}).Items))
	last := catalogOrder[len(catalogOrder)-1]
	end := f.offers(t, store.OfferFilter{Limit: 50, After: &last})
	assert.Empty(t, end.Items)
	assert.NotNil(t, end.Items, "an empty page is [], not null")
	assert.Nil(t, end.Next)
}

func TestListOffersCarriesPlansPublisherAndParents(t *testing.T) {
	f := catalog(t)
	byID := map[string]store.CatalogOffer{}
	for _, o := range f.offers(t, store.OfferFilter{Limit: 2}).Items { // plans are attached on every page, not just the first
		byID[o.ID] = o
	}
	for _, o := range f.offers(t, store.OfferFilter{Limit: 50}).Items {
		byID[o.ID] = o
	}

	zeta := byID["Zeta"]
	assert.Equal(t, "litware", zeta.PublisherID)
	assert.Equal(t, "Litware", zeta.PublisherName)
	assert.Equal(t, "https://litware.example/start", zeta.LandingURL)
	require.NotNil(t, zeta.SetupInstructions)
	assert.Contains(t, *zeta.SetupInstructions, "invite your users")
	require.Len(t, zeta.Plans, 2)
	assert.Equal(t, "a-monthly", zeta.Plans[0].ID, "plans by id")
	assert.Equal(t, domain.Plan{ID: "b-annual", OfferID: "Zeta", Name: "Annual", Term: "P1Y", UnitPriceMinor: 900, Currency: "EUR",
		MinQuantity: 2, MaxQuantity: 10, CancellationWindow: "P7D", ActivationDeadline: "P14D",
		PaymentGracePeriod: "P30D", PlanChangeVetoWindow: "PT1H"}, zeta.Plans[1], "the seed names no grace period or veto window: the defaults")

	app := byID["contoso-insights"]
	assert.Equal(t, domain.OfferKindApp, app.Kind)
	assert.Equal(t, pq.StringArray{offerID, "Zeta"}, app.ParentOfferIDs)
	assert.Nil(t, app.SetupInstructions)
	require.Len(t, app.Plans, 1)
	assert.Equal(t, "monthly", app.Plans[0].ID)

	saas := byID[offerID]
	assert.Equal(t, pq.StringArray{}, saas.ParentOfferIDs, "no parents is [], not null")
	require.Len(t, saas.Plans, 1)
	assert.Equal(t, planID, saas.Plans[0].ID)

	assert.Equal(t, []domain.Plan{}, byID["no-plans"].Plans, "an offer without plans has [] plans")
}

func TestCatalogOffer(t *testing.T) {
	f := catalog(t)
	zeta, err := f.st.CatalogOffer(f.ctx, "Zeta")
	require.NoError(t, err)
	listed := f.offers(t, store.OfferFilter{Limit: 1})
	assert.Equal(t, listed.Items[0], zeta, "one offer reads as it is listed")

	empty, err := f.st.CatalogOffer(f.ctx, "no-plans")
	require.NoError(t, err)
	assert.Equal(t, []domain.Plan{}, empty.Plans)

	for _, unknown := range []string{"zeta", "nothing", ""} {
		_, err = f.st.CatalogOffer(f.ctx, unknown)
		assert.ErrorIs(t, err, store.ErrNotFound, unknown)
	}

	// A seed that changes the instructions updates them; one that drops them clears them.
	changed := "Open https://litware.example/setup"
	require.NoError(t, f.st.UpsertOffer(f.ctx, store.Offer{ID: "Zeta", PublisherID: "litware", Name: "Zeta", Kind: domain.OfferKindSaaS, SetupInstructions: &changed}))
	zeta, err = f.st.CatalogOffer(f.ctx, "Zeta")
	require.NoError(t, err)
	assert.Equal(t, &changed, zeta.SetupInstructions)
	require.NoError(t, f.st.UpsertOffer(f.ctx, store.Offer{ID: "Zeta", PublisherID: "litware", Name: "Zeta", Kind: domain.OfferKindSaaS}))
	offer, err := f.st.Offer(f.ctx, "Zeta")
	require.NoError(t, err)
	assert.Nil(t, offer.SetupInstructions)
}
