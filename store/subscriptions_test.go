package store_test

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/lib/pq"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/partnerhub/fulfillment/domain"
	"github.com/partnerhub/fulfillment/store"
)

func hash(s string) []byte {
	sum := sha256.Sum256([]byte(s))
	return sum[:]
}

func TestSaveChangeWritesEverythingOnce(t *testing.T) {
	f := seeded(t)
	sub := subscription("sub-1")
	site, reseller := "https://woodgrove.contoso.example", "indirect-7"
	sub.SiteURL, sub.ResellerPartnerID = &site, &reseller
	sub.LinkedSubscriptionIDs = []string{"sub-app-1", "sub-app-2"}
	bought := purchase(sub)

	res := f.save(t, bought, hash("code-1"))
	assert.Empty(t, res.ParentStatus, "no parent, no parent status")
	require.NotNil(t, res.BillingAccountID, "the purchase answers the default account it was placed on")
	sub.BillingAccountID = res.BillingAccountID

	got, err := f.st.Subscription(f.ctx, "sub-1")
	require.NoError(t, err)
	assert.Equal(t, sub, got, "the read model round-trips every field")
	afterPurchase := map[string]int{"subscriptions": 1, "events": 2, "ledger": 0, "outbox": 1, "authorization_codes": 1}
	assert.Equal(t, afterPurchase, f.rowCounts(t))
	assert.Equal(t, 1, f.count(t, "authorization_codes WHERE code_hash = $1 AND subscription_id = 'sub-1' AND expires_at = $2",
		hash("code-1"), *bought.IssueLinkUntil), "only the hash of the code is kept")

	f.save(t, bought, hash("code-1")) // the activity is retried
	assert.Equal(t, afterPurchase, f.rowCounts(t), "a retried change writes nothing twice")

	activated := activation(sub)
	f.save(t, activated, hash("code-2")) // a code hash without IssueLinkUntil is not stored
	f.save(t, activated, hash("code-2"))
	assert.Equal(t, map[string]int{"subscriptions": 1, "events": 3, "ledger": 1, "outbox": 2, "authorization_codes": 1}, f.rowCounts(t))
	got, err = f.st.Subscription(f.ctx, "sub-1")
	require.NoError(t, err)
	assert.Equal(t, activated.Subscription, got)
}

func TestSaveChangeNeverMovesTheSnapshotBackwards(t *testing.T) {
	f := seeded(t)
	sub := subscription("sub-1")
	activated := activation(sub) // version 2

	f.save(t, activated, nil)
	placed := f.save(t, purchase(sub), hash("code")).BillingAccountID // version 1 arrives late
	require.NotNil(t, placed)
	activated.Subscription.BillingAccountID = placed // the late purchase still placed it on the default account
	got, err := f.st.Subscription(f.ctx, "sub-1")
	require.NoError(t, err)
	assert.Equal(t, activated.Subscription, got, "an older version does not overwrite a newer snapshot")
	assert.Equal(t, 3, f.count(t, "events"), "the late change's keyed rows still land")

	same := activated.Subscription
	same.Quantity = 99
	f.save(t, domain.Change{Subscription: same}, nil)
	got, err = f.st.Subscription(f.ctx, "sub-1")
	require.NoError(t, err)
	assert.Equal(t, 99, got.Quantity, "an equal version is the same transition retried: it restates the snapshot")

	newer := activated.Subscription
	newer.Quantity, newer.Version = 7, 3
	f.save(t, domain.Change{Subscription: newer}, nil)
	got, err = f.st.Subscription(f.ctx, "sub-1")
	require.NoError(t, err)
	assert.Equal(t, newer, got, "a newer version does")
}

func TestSaveChangeChargesATermOnce(t *testing.T) {
	f := seeded(t)
	sub := subscription("sub-1")
	f.save(t, purchase(sub), nil)
	first := activation(sub)
	f.save(t, first, nil)
	// The activity's completion was lost (a worker died after the commit):
	// the server retries it with the same input.
	f.save(t, activation(sub), nil)

	entries, balance, err := f.st.Ledger(f.ctx, "sub-1")
	require.NoError(t, err)
	require.Len(t, entries, 1, "one charge per (subscription, term)")
	assert.Equal(t, first.Ledger[0], entries[0])
	assert.Equal(t, int64(6000), balance)
	assert.Equal(t, 1, f.count(t, "events WHERE dedup_key = $1", first.Events[0].Key))
}

// A row under a transition's key with other content is a bug, never an
// overwrite: the whole change is refused and nothing of it is written.
func TestSaveChangeRefusesConflictingRows(t *testing.T) {
	f := seeded(t)
	sub := subscription("sub-1")
	f.save(t, purchase(sub), nil)
	first := activation(sub)
	f.save(t, first, nil)

	other := activation(sub)
	other.Subscription.Version++
	other.Ledger[0].AmountMinor = 1
	other.Events[0].Key = "sub-1:99"
	_, err := f.st.SaveChange(f.ctx, other, nil)
	require.ErrorIs(t, err, store.ErrConflict)

	entries, balance, err := f.st.Ledger(f.ctx, "sub-1")
	require.NoError(t, err)
	assert.Equal(t, []domain.LedgerEntry{first.Ledger[0]}, entries, "the charge stands as first written")
	assert.Equal(t, int64(6000), balance)
	assert.Zero(t, f.count(t, "events WHERE dedup_key = $1", "sub-1:99"), "nothing of the refused change is written")
	got, err := f.st.Subscription(f.ctx, "sub-1")
	require.NoError(t, err)
	assert.Equal(t, first.Subscription.Version, got.Version)

	renamed := activation(sub)
	renamed.Subscription.Version++
	renamed.Ledger = nil
	renamed.Events[0].Type = "cancelled"
	_, err = f.st.SaveChange(f.ctx, renamed, nil)
	require.ErrorIs(t, err, store.ErrConflict, "an event key reused for another event is refused too")
}

func ptr[T any](v T) *T { return &v }

func TestSaveChangeReportsParentStatus(t *testing.T) {
	f := seeded(t)
	parent := activation(subscription("sub-parent"))
	f.save(t, parent, nil)

	child := subscription("sub-app")
	child.ParentSubscriptionID = &parent.Subscription.ID
	res := f.save(t, purchase(child), nil)
	assert.Equal(t, domain.StatusActive, res.ParentStatus)

	gone := parent.Subscription
	gone.Status, gone.Version = domain.StatusDeactivated, 3
	f.save(t, domain.Change{Subscription: gone}, nil)
	child.Version = 2
	res = f.save(t, domain.Change{Subscription: child}, nil)
	assert.Equal(t, domain.StatusDeactivated, res.ParentStatus, "the child's next save sees the parent's current status")
}

func TestSaveChangeWithUnknownParentWritesNothing(t *testing.T) {
	f := seeded(t)
	child := subscription("sub-app")
	missing := "sub-missing"
	child.ParentSubscriptionID = &missing

	_, err := f.st.SaveChange(f.ctx, purchase(child), hash("code"))
	require.ErrorIs(t, err, store.ErrNotFound)
	assert.Equal(t, map[string]int{"subscriptions": 0, "events": 0, "ledger": 0, "outbox": 0, "authorization_codes": 0}, f.rowCounts(t))
}

func TestSaveChangeRollsBackEverythingOnFailure(t *testing.T) {
	f := seeded(t)
	sub := subscription("sub-1")
	sub.BillingAccountID = f.save(t, purchase(sub), hash("code-1")).BillingAccountID
	before := f.rowCounts(t)

	// The snapshot, the event and the first ledger row are written before the
	// second ledger row breaks the kind CHECK.
	broken := activation(sub)
	broken.Ledger = append(broken.Ledger, domain.LedgerEntry{ID: "gift:sub-1", TermNumber: 1, Kind: "gift",
		AmountMinor: 1, Currency: "USD", PeriodStart: t0, PeriodEnd: t0, CreatedAt: t0})
	_, err := f.st.SaveChange(f.ctx, broken, nil)
	var pqErr *pq.Error
	require.True(t, errors.As(err, &pqErr), "want a PostgreSQL error, got %v", err)
	assert.Equal(t, pq.ErrorCode("23514"), pqErr.Code, "check_violation")
	assert.Contains(t, err.Error(), "sub-1")

	assert.Equal(t, before, f.rowCounts(t), "nothing of the failed change remains")
	got, err := f.st.Subscription(f.ctx, "sub-1")
	require.NoError(t, err)
	assert.Equal(t, sub, got, "the snapshot is still version 1")

	fresh := purchase(subscription("sub-2"))
	fresh.Ledger = broken.Ledger[1:]
	_, err = f.st.SaveChange(f.ctx, fresh, hash("code-2"))
	require.Error(t, err)
	_, err = f.st.Subscription(f.ctx, "sub-2")
	assert.ErrorIs(t, err, store.ErrNotFound, "a new subscription is not half-created")
	assert.Equal(t, before, f.rowCounts(t))
}

func TestSaveChangeAcceptsNilLinkedSubscriptions(t *testing.T) {
	f := seeded(t)
	sub := subscription("sub-1")
	sub.LinkedSubscriptionIDs = nil // what a JSON null decodes to

	f.save(t, purchase(sub), nil)
	got, err := f.st.Subscription(f.ctx, "sub-1")
	require.NoError(t, err)
	assert.Equal(t, []string{}, got.LinkedSubscriptionIDs)
}

func TestSubscriptionUnknown(t *testing.T) {
	f := seeded(t)
	_, err := f.st.Subscription(f.ctx, "sub-missing")
	assert.ErrorIs(t, err, store.ErrNotFound)
}

// saveN saves n fabrikam/woodgrove subscriptions prefix-01… in order and returns their ids.
func (f *fixture) saveN(t *testing.T, prefix string, n int) []string {
	t.Helper()
	ids := make([]string, 0, n)
	for i := 1; i <= n; i++ {
		id := fmt.Sprintf("%s-%02d", prefix, i)
		f.save(t, domain.Change{Subscription: subscription(id)}, nil)
		ids = append(ids, id)
	}
	return ids
}

func (f *fixture) list(t *testing.T, filter store.SubscriptionFilter) store.SubscriptionPage {
	t.Helper()
	page, err := f.st.ListSubscriptions(f.ctx, filter)
	require.NoError(t, err)
	return page
}

func ids(subs []domain.Subscription) []string {
	out := make([]string, 0, len(subs))
	for _, s := range subs {
		out = append(out, s.ID)
	}
	return out
}

func newestFirst(ids []string) []string {
	out := slices.Clone(ids)
	slices.Reverse(out)
	return out
}

func TestListSubscriptionsFilters(t *testing.T) {
	f := seeded(t)
	saved := map[string]domain.Subscription{}
	for _, r := range []struct {
		id, customer string
		status       domain.Status
	}{ // oldest first
		{"s1", customerID, domain.StatusPendingFulfillment},
		{"s2", otherCustomer, domain.StatusActive},
		{"s3", customerID, domain.StatusActive},
		{"s4", customerID, domain.StatusCancelled},
		{"s5", otherCustomer, domain.StatusExpired},
		{"s6", customerID, domain.StatusPendingFulfillment},
	} {
		sub := subscription(r.id)
		sub.CustomerID, sub.Status = r.customer, r.status
		f.save(t, domain.Change{Subscription: sub}, nil)
		saved[r.id] = sub
	}
	foreign := subscription("t1")
	foreign.PartnerID, foreign.CustomerID = otherPartner, otherPartnerCustomer
	f.save(t, domain.Change{Subscription: foreign}, nil)

	for _, c := range []struct {
		name   string
		filter store.SubscriptionFilter
		want   []string
	}{
		{"partner", store.SubscriptionFilter{PartnerID: partnerID}, []string{"s6", "s5", "s4", "s3", "s2", "s1"}},
		{"customer", store.SubscriptionFilter{PartnerID: partnerID, CustomerID: customerID}, []string{"s6", "s4", "s3", "s1"}},
		{"upcoming", store.SubscriptionFilter{PartnerID: partnerID, Statuses: domain.TabStatuses(domain.TabUpcoming)}, []string{"s6", "s1"}},
		{"active", store.SubscriptionFilter{PartnerID: partnerID, Statuses: domain.TabStatuses(domain.TabActive)}, []string{"s3", "s2"}},
		{"inactive", store.SubscriptionFilter{PartnerID: partnerID, Statuses: domain.TabStatuses(domain.TabInactive)}, []string{"s5", "s4"}},
		{"customer and statuses", store.SubscriptionFilter{PartnerID: partnerID, CustomerID: otherCustomer,
			Statuses: domain.TabStatuses(domain.TabInactive)}, []string{"s5"}},
		{"other partner", store.SubscriptionFilter{PartnerID: otherPartner}, []string{"t1"}},
		{"other partner's customer id", store.SubscriptionFilter{PartnerID: partnerID, CustomerID: otherPartnerCustomer}, []string{}},
		{"unknown partner", store.SubscriptionFilter{PartnerID: "nobody"}, []string{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.filter.Limit = 50
			page := f.list(t, c.filter)
			assert.Equal(t, c.want, ids(page.Items))
			assert.Zero(t, page.NextSeq, "everything fits on one page")
			for _, got := range page.Items {
				want := foreign
				if got.ID != foreign.ID {
					want = saved[got.ID]
				}
				assert.Equal(t, want, got)
			}
		})
	}
}

func TestListSubscriptionsPages(t *testing.T) {
	f := seeded(t)
	all := newestFirst(f.saveN(t, "s", 7))

	page := f.list(t, store.SubscriptionFilter{PartnerID: partnerID, Limit: 3})
	assert.Equal(t, all[0:3], ids(page.Items))
	require.NotZero(t, page.NextSeq)
	page = f.list(t, store.SubscriptionFilter{PartnerID: partnerID, Limit: 3, BeforeSeq: page.NextSeq})
	assert.Equal(t, all[3:6], ids(page.Items))
	require.NotZero(t, page.NextSeq)
	page = f.list(t, store.SubscriptionFilter{PartnerID: partnerID, Limit: 3, BeforeSeq: page.NextSeq})
	assert.Equal(t, all[6:], ids(page.Items))
	assert.Zero(t, page.NextSeq, "the last page says so")

	assert.Zero(t, f.list(t, store.SubscriptionFilter{PartnerID: partnerID, Limit: 7}).NextSeq,
		"exactly limit rows left: no further page")
	assert.NotZero(t, f.list(t, store.SubscriptionFilter{PartnerID: partnerID, Limit: 6}).NextSeq)

	// A newer version of the oldest row keeps its place in the list.
	oldest := subscription("s-01")
	oldest.Version, oldest.Nickname = 2, nil
	f.save(t, domain.Change{Subscription: oldest}, nil)
	page = f.list(t, store.SubscriptionFilter{PartnerID: partnerID, Limit: 50})
	assert.Equal(t, all, ids(page.Items))
	assert.Equal(t, oldest, page.Items[6])
}

func TestListSubscriptionsCursorIsStableUnderConcurrentInserts(t *testing.T) {
	f := seeded(t)
	original := newestFirst(f.saveN(t, "old", 10))

	page := f.list(t, store.SubscriptionFilter{PartnerID: partnerID, Limit: 4})
	seen := ids(page.Items)

	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			_, err := f.st.SaveChange(f.ctx, domain.Change{Subscription: subscription(fmt.Sprintf("new-%02d", i))}, nil)
			assert.NoError(t, err)
		})
	}
	for page.NextSeq != 0 { // page on while the inserts land
		page = f.list(t, store.SubscriptionFilter{PartnerID: partnerID, Limit: 4, BeforeSeq: page.NextSeq})
		seen = append(seen, ids(page.Items)...)
	}
	wg.Wait()

	assert.Equal(t, original, seen, "every original row once, in order: none repeated, none skipped")
	first := f.list(t, store.SubscriptionFilter{PartnerID: partnerID, Limit: 20})
	for _, id := range ids(first.Items) {
		assert.Regexp(t, `^new-`, id, "new rows come before the cursor, on a fresh first page")
	}
	assert.Equal(t, original[:1], ids(f.list(t, store.SubscriptionFilter{PartnerID: partnerID, Limit: 1, BeforeSeq: first.NextSeq}).Items))
}

func TestListSubscriptionsBeyond32BitSequence(t *testing.T) {
	f := seeded(t)
	f.exec(t, `SELECT setval(pg_get_serial_sequence('subscriptions', 'seq'), 3000000000)`)
	all := newestFirst(f.saveN(t, "s", 3))

	page := f.list(t, store.SubscriptionFilter{PartnerID: partnerID, Limit: 2})
	require.Greater(t, page.NextSeq, int64(math.MaxInt32))
	page = f.list(t, store.SubscriptionFilter{PartnerID: partnerID, Limit: 2, BeforeSeq: page.NextSeq})
	assert.Equal(t, all[2:], ids(page.Items), "a cursor past 2^31 still pages")
}

func TestResolveCode(t *testing.T) {
	f := seeded(t)
	bought := purchase(subscription("sub-1"))
	f.save(t, bought, hash("code-1"))
	until := *bought.IssueLinkUntil

	for _, c := range []struct {
		name  string
		code  []byte
		now   time.Time
		found bool
	}{
		{"valid", hash("code-1"), t0, true},
		{"just before expiry", hash("code-1"), until.Add(-time.Microsecond), true},
		{"at expiry", hash("code-1"), until, false},
		{"expired", hash("code-1"), until.Add(time.Hour), false},
		{"unknown", hash("code-2"), t0, false},
		{"unhashed", []byte("code-1"), t0, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, err := f.st.ResolveCode(f.ctx, c.code, c.now)
			if !c.found {
				assert.ErrorIs(t, err, store.ErrNotFound)
				return
			}
			require.NoError(t, err)
			want, err := f.st.Subscription(f.ctx, "sub-1")
			require.NoError(t, err)
			assert.Equal(t, want, r.Subscription, "the read model's row")
			customer, err := f.st.Customer(f.ctx, partnerID, customerID)
			require.NoError(t, err)
			assert.Equal(t, customer, r.Customer)
			assert.Equal(t, store.Partner{ID: partnerID, Name: partnerID}, r.Partner)
		})
	}
}

// ResolveCode's placement is the one Placements reads: the default billing
// account, the site confirmed at activation, an app's parent's site, the
// offer's set-up instructions.
func TestResolveCodePlacesAsPlacements(t *testing.T) {
	f := seeded(t)
	sub := subscription("sub-1")
	f.save(t, purchase(sub), hash("code-1"))
	placement := func(id string, code []byte) (store.Placement, store.Placement) {
		t.Helper()
		r, err := f.st.ResolveCode(f.ctx, code, t0)
		require.NoError(t, err)
		placed, err := f.st.Placements(f.ctx, []string{id})
		require.NoError(t, err)
		return placed[id], r.Placement
	}
	want, got := placement(sub.ID, hash("code-1"))
	assert.Equal(t, want, got, "pending: billing account only")
	require.NotNil(t, got.BillingAccountID)
	assert.Nil(t, got.SiteID)

	act := activation(sub)
	url := "https://woodgrove.contoso.example"
	act.Subscription.SiteURL = &url
	act.Events = append(act.Events, domain.Event{SubscriptionID: sub.ID, Key: "sub-1:confirmed", At: t0, Type: "fulfillment_confirmed", Actor: "publisher:contoso"})
	f.save(t, act, nil)
	steps := "Sign in and pick a site."
	require.NoError(t, f.st.SetSetupInstructions(f.ctx, offerID, &steps))
	want, got = placement(sub.ID, hash("code-1"))
	assert.Equal(t, want, got, "active on its site")
	require.NotNil(t, got.SiteURL)
	assert.Equal(t, url, *got.SiteURL)
	require.NotNil(t, got.SetupInstructions)

	app := subscription("app-1")
	app.ParentSubscriptionID = &sub.ID
	f.save(t, purchase(app), hash("code-app"))
	want, got = placement(app.ID, hash("code-app"))
	assert.Equal(t, want, got, "an app on its parent's site")
	require.NotNil(t, got.SiteID)
}

func TestEventsOldestFirstWithDetail(t *testing.T) {
	f := seeded(t)
	sub := subscription("sub-1")
	bought := purchase(sub)
	f.save(t, bought, nil)
	f.save(t, purchase(subscription("sub-2")), nil) // another timeline

	resolved := domain.Event{SubscriptionID: "sub-1", Key: "sub-1:link_resolved:msg-1", At: t0.Add(time.Minute),
		Type: "link_resolved", Actor: "publisher:contoso", Detail: map[string]any{
			"publisher": "contoso", "attempt": float64(2), "ok": true, "tags": []any{"a", "b"},
			"nested": map[string]any{"site": "https://woodgrove.example", "none": nil},
		}}
	require.NoError(t, f.st.AppendEvent(f.ctx, resolved))
	redelivered := resolved
	redelivered.Type, redelivered.Detail = "tampered", nil
	require.NoError(t, f.st.AppendEvent(f.ctx, redelivered), "a known key is not an error")
	f.save(t, activation(sub), nil)

	events, err := f.st.Events(f.ctx, "sub-1")
	require.NoError(t, err)
	types := make([]string, 0, len(events))
	for _, e := range events {
		types = append(types, e.Type)
	}
	assert.Equal(t, []string{"purchased", "link_issued", "link_resolved", "billing_started"}, types, "oldest first, once each")

	got := events[2]
	assert.Equal(t, resolved.Detail, got.Detail, "detail round-trips through jsonb")
	assert.Equal(t, resolved.At, got.At)
	assert.Equal(t, resolved.Actor, got.Actor)
	assert.Equal(t, resolved.Key, got.Key)
	assert.Equal(t, "sub-1", got.SubscriptionID)
	assert.Equal(t, bought.Events[0].Detail, events[0].Detail)
	assert.Equal(t, map[string]any{}, events[1].Detail, "no detail reads back as {}")
	assert.Equal(t, 1, f.count(t, "events WHERE dedup_key = $1", resolved.Key))

	none, err := f.st.Events(f.ctx, "sub-missing")
	require.NoError(t, err)
	assert.Empty(t, none)
}

func TestLedgerBalanceIsTheSum(t *testing.T) {
	f := seeded(t)
	sub := subscription("sub-1")
	f.save(t, purchase(sub), nil)
	activated := activation(sub)
	f.save(t, activated, nil)
	termEnd := *activated.Subscription.TermEnd

	grown := activated.Subscription
	grown.Quantity, grown.Version = 7, 3
	proration := domain.LedgerEntry{ID: "proration:sub-1:1:v3", SubscriptionID: "sub-1", TermNumber: 1, Kind: domain.LedgerProration,
		AmountMinor: 2400, Currency: "USD", PeriodStart: t0.Add(2 * time.Hour), PeriodEnd: termEnd, CreatedAt: t0.Add(2 * time.Hour)}
	f.save(t, domain.Change{Subscription: grown, Ledger: []domain.LedgerEntry{proration}}, nil)
	cancelled := grown
	cancelled.Status, cancelled.Version = domain.StatusCancelled, 4
	refund := domain.LedgerEntry{ID: "refund:sub-1:1", SubscriptionID: "sub-1", TermNumber: 1, Kind: domain.LedgerRefund,
		AmountMinor: -8400, Currency: "USD", PeriodStart: t0.Add(3 * time.Hour), PeriodEnd: termEnd, CreatedAt: t0.Add(3 * time.Hour)}
	f.save(t, domain.Change{Subscription: cancelled, Ledger: []domain.LedgerEntry{refund}}, nil)

	entries, balance, err := f.st.Ledger(f.ctx, "sub-1")
	require.NoError(t, err)
	assert.Equal(t, []domain.LedgerEntry{activated.Ledger[0], proration, refund}, entries, "in order of creation")
	assert.Negative(t, entries[2].AmountMinor, "a refund is negative")
	assert.Equal(t, int64(6000+2400-8400), balance)

	none, balance, err := f.st.Ledger(f.ctx, "sub-missing")
	require.NoError(t, err)
	assert.Equal(t, []domain.LedgerEntry{}, none)
	assert.Zero(t, balance)
}

// A transition's events go in as one statement: a retry adds none, their ids
// follow the transition's order, and one whose later event's key holds
// another event is refused whole.
func TestSaveChangeWritesEventsTogether(t *testing.T) {
	f := seeded(t)
	sub := subscription("sub-1")
	c := purchase(sub)
	require.GreaterOrEqual(t, len(c.Events), 2, "the purchase writes several events")
	f.save(t, c, nil)
	f.save(t, c, nil)
	events, err := f.st.Events(f.ctx, "sub-1")
	require.NoError(t, err)
	require.Len(t, events, len(c.Events), "a retried change adds no events")
	for i, e := range events {
		assert.Equal(t, c.Events[i].Key, e.Key, "ids follow the transition's order")
	}

	other := purchase(sub)
	other.Subscription.Version++
	other.Events[0].Key = "sub-1:98"
	other.Events[1].Type = "cancelled"
	_, err = f.st.SaveChange(f.ctx, other, nil)
	require.ErrorIs(t, err, store.ErrConflict)
	assert.Zero(t, f.count(t, "events WHERE dedup_key = $1", "sub-1:98"), "nothing of the refused change is written")
}
