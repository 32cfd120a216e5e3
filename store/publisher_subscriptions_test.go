package store_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/partnerhub/fulfillment/domain"
	"github.com/partnerhub/fulfillment/store"
)

func (f *fixture) publisherList(t *testing.T, filter store.PublisherSubscriptionFilter) store.SubscriptionPage {
	t.Helper()
	page, err := f.st.ListPublisherSubscriptions(f.ctx, filter)
	require.NoError(t, err)
	return page
}

// publisherWorld: contoso's offer is sold by two partners, litware's by one;
// the statuses are spread so that every filter selects a different set.
func publisherWorld(t *testing.T) (*fixture, map[string]domain.Subscription) {
	t.Helper()
	f := seeded(t)
	require.NoError(t, f.st.UpsertPublisher(f.ctx, store.Publisher{ID: "litware", Name: "Litware", LandingURL: "https://litware.example"}))
	require.NoError(t, f.st.UpsertOffer(f.ctx, store.Offer{ID: "docs", PublisherID: "litware", Name: "Docs", Kind: domain.OfferKindSaaS}))
	saved := map[string]domain.Subscription{}
	for _, r := range []struct {
		id, publisher, partner string
		status                 domain.Status
	}{ // oldest first
		{"c1", publisherID, partnerID, domain.StatusPendingFulfillment},
		{"l1", "litware", partnerID, domain.StatusActive},
		{"c2", publisherID, otherPartner, domain.StatusActive},
		{"c3", publisherID, partnerID, domain.StatusCancelled},
		{"l2", "litware", otherPartner, domain.StatusPendingFulfillment},
		{"c4", publisherID, otherPartner, domain.StatusPendingFulfillment},
		{"c5", publisherID, partnerID, domain.StatusActive},
	} {
		sub := subscription(r.id)
		sub.PublisherID, sub.PartnerID, sub.Status = r.publisher, r.partner, r.status
		if r.publisher == "litware" {
			sub.OfferID = "docs"
		}
		if r.partner == otherPartner {
			sub.CustomerID = otherPartnerCustomer
		}
		f.save(t, domain.Change{Subscription: sub}, nil)
		saved[r.id] = sub
	}
	return f, saved
}

func TestListPublisherSubscriptionsOnlyTheirOwn(t *testing.T) {
	f, saved := publisherWorld(t)
	statuses := func(s ...domain.Status) []domain.Status { return s }
	for _, c := range []struct {
		name   string
		filter store.PublisherSubscriptionFilter
		want   []string
	}{
		{"contoso, every partner", store.PublisherSubscriptionFilter{PublisherID: publisherID}, []string{"c5", "c4", "c3", "c2", "c1"}},
		{"litware", store.PublisherSubscriptionFilter{PublisherID: "litware"}, []string{"l2", "l1"}},
		{"contoso active", store.PublisherSubscriptionFilter{PublisherID: publisherID, Statuses: statuses(domain.StatusActive)}, []string{"c5", "c2"}},
		{"contoso pending or cancelled", store.PublisherSubscriptionFilter{PublisherID: publisherID,
			Statuses: statuses(domain.StatusPendingFulfillment, domain.StatusCancelled)}, []string{"c4", "c3", "c1"}},
		{"litware active", store.PublisherSubscriptionFilter{PublisherID: "litware", Statuses: statuses(domain.StatusActive)}, []string{"l1"}},
		{"a status nobody has", store.PublisherSubscriptionFilter{PublisherID: publisherID, Statuses: statuses(domain.StatusExpired)}, []string{}},
		{"unknown publisher", store.PublisherSubscriptionFilter{PublisherID: "nobody"}, []string{}},
		{"a partner's id is no publisher id", store.PublisherSubscriptionFilter{PublisherID: partnerID}, []string{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.filter.Limit = 50
			page := f.publisherList(t, c.filter)
			assert.Equal(t, c.want, ids(page.Items))
			assert.NotNil(t, page.Items)
			assert.Zero(t, page.NextSeq, "everything fits on one page")
			for _, got := range page.Items {
				assert.Equal(t, saved[got.ID], got)
			}
		})
	}
}

func TestListPublisherSubscriptionsPages(t *testing.T) {
	f, _ := publisherWorld(t)
	// Seven more of contoso's, interleaved with litware's, so a page of
	// contoso's never counts the other publisher's rows.
	var added []string
	for i := 1; i <= 7; i++ {
		sub := subscription(fmt.Sprintf("p-%02d", i))
		f.save(t, domain.Change{Subscription: sub}, nil)
		added = append(added, sub.ID)
		other := subscription(fmt.Sprintf("lp-%02d", i))
		other.PublisherID, other.OfferID = "litware", "docs"
		f.save(t, domain.Change{Subscription: other}, nil)
	}
	all := append(newestFirst(added), "c5", "c4", "c3", "c2", "c1") // 12 of contoso's

	for _, limit := range []int{1, 5, 11, 12} {
		var seen []string
		filter := store.PublisherSubscriptionFilter{PublisherID: publisherID, Limit: limit}
		for pages := 1; ; pages++ {
			page := f.publisherList(t, filter)
			assert.LessOrEqual(t, len(page.Items), limit)
			seen = append(seen, ids(page.Items)...)
			if page.NextSeq == 0 {
				assert.Equal(t, (len(all)+limit-1)/limit, pages, "limit %d: no empty last page", limit)
				break
			}
			filter.BeforeSeq = page.NextSeq
			require.Less(t, pages, 20)
		}
		assert.Equal(t, all, seen, "limit %d: every subscription once, newest first", limit)
	}
	assert.NotZero(t, f.publisherList(t, store.PublisherSubscriptionFilter{PublisherID: publisherID, Limit: 11}).NextSeq)
	assert.Zero(t, f.publisherList(t, store.PublisherSubscriptionFilter{PublisherID: publisherID, Limit: 12}).NextSeq,
		"exactly limit rows: no further page")

	// A status filter pages too, and a cursor taken without the filter still works with it.
	active := store.PublisherSubscriptionFilter{PublisherID: publisherID, Statuses: []domain.Status{domain.StatusActive}, Limit: 1}
	page := f.publisherList(t, active)
	assert.Equal(t, []string{"c5"}, ids(page.Items))
	require.NotZero(t, page.NextSeq)
	active.BeforeSeq = page.NextSeq
	page = f.publisherList(t, active)
	assert.Equal(t, []string{"c2"}, ids(page.Items))
	assert.Zero(t, page.NextSeq)

	// Another publisher's cursor positions, it never reveals: litware still sees only its own.
	contosoCursor := f.publisherList(t, store.PublisherSubscriptionFilter{PublisherID: publisherID, Limit: 3}).NextSeq
	for _, got := range f.publisherList(t, store.PublisherSubscriptionFilter{PublisherID: "litware", Limit: 50, BeforeSeq: contosoCursor}).Items {
		assert.Equal(t, "litware", got.PublisherID)
	}
}
