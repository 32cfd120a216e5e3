package store_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/partnerhub/fulfillment/domain"
	"github.com/partnerhub/fulfillment/store"
)

func TestCollectionItems(t *testing.T) {
	f := seeded(t)
	require.NoError(t, f.st.UpsertOffer(f.ctx, store.Offer{ID: "suite", PublisherID: publisherID, Name: "Suite", Kind: domain.OfferKindCollection}))
	require.NoError(t, f.st.UpsertOffer(f.ctx, store.Offer{ID: "app", PublisherID: publisherID, Name: "App", Kind: domain.OfferKindApp, ParentOfferIDs: []string{"suite"}}))
	require.NoError(t, f.st.UpsertPlan(f.ctx, domain.Plan{ID: "m", OfferID: "app", Name: "M", Term: "P1M", Currency: "USD",
		MinQuantity: 1, MaxQuantity: 5, CancellationWindow: "P3D", ActivationDeadline: "P30D"}))
	items := []store.CollectionItem{{OfferID: "app", PlanID: "m"}, {OfferID: offerID, PlanID: planID}}
	require.NoError(t, f.st.SetCollectionItems(f.ctx, "suite", items))
	require.NoError(t, f.st.SetCollectionItems(f.ctx, "suite", items), "replacing is idempotent")
	got, err := f.st.CollectionItems(f.ctx, "suite")
	require.NoError(t, err)
	assert.Equal(t, items, got, "in order")
	assert.Error(t, f.st.SetCollectionItems(f.ctx, "suite", []store.CollectionItem{{OfferID: "app", PlanID: "nope"}}), "an unknown plan is refused")
	got, err = f.st.CollectionItems(f.ctx, "suite")
	require.NoError(t, err)
	assert.Len(t, got, 2, "a refused replacement changes nothing")
	none, err := f.st.CollectionItems(f.ctx, offerID)
	require.NoError(t, err)
	assert.Empty(t, none)
	assert.Error(t, f.st.UpsertOffer(f.ctx, store.Offer{ID: "x", PublisherID: publisherID, Name: "X", Kind: "bundle"}))
}
