package store_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/partnerhub/fulfillment/store"
)

// notStale is a stale duration no test outlives.
const notStale = time.Hour

func (f *fixture) claimKey(t *testing.T, partner, key string, requestHash []byte, subscriptionID string, stale time.Duration) store.Claim {
	t.Helper()
	c, err := f.st.ClaimIdempotencyKey(f.ctx, partner, key, requestHash, subscriptionID, stale)
	require.NoError(t, err)
	return c
}

func (f *fixture) claimMessage(t *testing.T, publisher, webhookID string, requestHash []byte, stale time.Duration) store.Claim {
	t.Helper()
	c, err := f.st.ClaimPublisherMessage(f.ctx, publisher, webhookID, requestHash, stale)
	require.NoError(t, err)
	return c
}

func TestIdempotencyKeyLifecycle(t *testing.T) {
	f := newFixture(t)
	body, other := hash(`{"quantity":5}`), hash(`{"quantity":6}`)

	assert.Equal(t, store.Claim{State: store.ClaimNew, SubscriptionID: "sub-1"}, f.claimKey(t, "fabrikam", "k1", body, "sub-1", notStale))
	assert.Equal(t, store.Claim{State: store.ClaimInUse, SubscriptionID: "sub-1"}, f.claimKey(t, "fabrikam", "k1", body, "sub-2", notStale),
		"a retry while the first runs is told so, with the first's subscription")
	assert.Equal(t, store.ClaimMismatch, f.claimKey(t, "fabrikam", "k1", other, "sub-3", notStale).State)

	require.NoError(t, f.st.CompleteIdempotencyKey(f.ctx, "fabrikam", "k1", 201, []byte(`{"id":"sub-1"}`)))
	replay := store.Claim{State: store.ClaimReplay, SubscriptionID: "sub-1", ResponseStatus: 201, ResponseBody: []byte(`{"id":"sub-1"}`)}
	assert.Equal(t, replay, f.claimKey(t, "fabrikam", "k1", body, "sub-4", notStale))
	assert.Equal(t, store.ClaimMismatch, f.claimKey(t, "fabrikam", "k1", other, "sub-5", notStale).State)

	require.NoError(t, f.st.CompleteIdempotencyKey(f.ctx, "fabrikam", "k1", 500, []byte("late")))
	require.NoError(t, f.st.ReleaseIdempotencyKey(f.ctx, "fabrikam", "k1"))
	assert.Equal(t, replay, f.claimKey(t, "fabrikam", "k1", body, "sub-6", notStale), "an answered key is neither rewritten nor released")

	assert.Equal(t, store.Claim{State: store.ClaimNew, SubscriptionID: "sub-7"}, f.claimKey(t, "tailspin", "k1", other, "sub-7", notStale),
		"keys are scoped per partner")
	assert.Equal(t, 2, f.count(t, "idempotency_keys"))
}

func TestIdempotencyKeyRelease(t *testing.T) {
	f := newFixture(t)
	require.Equal(t, store.ClaimNew, f.claimKey(t, "fabrikam", "k1", hash("a"), "sub-1", notStale).State)
	require.NoError(t, f.st.ReleaseIdempotencyKey(f.ctx, "fabrikam", "k1"))
	assert.Equal(t, store.Claim{State: store.ClaimNew, SubscriptionID: "sub-2"}, f.claimKey(t, "fabrikam", "k1", hash("b"), "sub-2", notStale),
		"a released key is free again, even for another body")
}

func TestIdempotencyKeyStaleClaimIsTakenOver(t *testing.T) {
	f := newFixture(t)
	body := hash("a")
	require.Equal(t, store.ClaimNew, f.claimKey(t, "fabrikam", "k1", body, "sub-1", notStale).State)
	require.Equal(t, store.ClaimNew, f.claimKey(t, "fabrikam", "k2", body, "sub-2", notStale).State)
	require.NoError(t, f.st.CompleteIdempotencyKey(f.ctx, "fabrikam", "k2", 201, []byte("done")))
	f.exec(t, `UPDATE idempotency_keys SET locked_at = now() - interval '10 minutes'`) // both owners died

	assert.Equal(t, store.ClaimInUse, f.claimKey(t, "fabrikam", "k1", body, "sub-9", notStale).State, "not stale yet for an hour")
	assert.Equal(t, store.ClaimMismatch, f.claimKey(t, "fabrikam", "k1", hash("b"), "sub-9", time.Minute).State,
		"another body never takes a claim over")
	assert.Equal(t, store.Claim{State: store.ClaimNew, SubscriptionID: "sub-1"}, f.claimKey(t, "fabrikam", "k1", body, "sub-9", time.Minute),
		"taken over with the SAME subscription id, so the purchase resumes")
	assert.Equal(t, store.Claim{State: store.ClaimInUse, SubscriptionID: "sub-1"}, f.claimKey(t, "fabrikam", "k1", body, "sub-10", time.Minute),
		"the takeover renews the lock")
	assert.Equal(t, store.ClaimReplay, f.claimKey(t, "fabrikam", "k2", body, "sub-11", time.Minute).State, "an answered key is never taken over")
	assert.Equal(t, 2, f.count(t, "idempotency_keys"))
}

func TestIdempotencyKeyZeroStaleTakesOverAtOnce(t *testing.T) {
	f := newFixture(t)
	require.Equal(t, store.ClaimNew, f.claimKey(t, "fabrikam", "k1", hash("a"), "sub-1", 0).State)
	assert.Equal(t, store.Claim{State: store.ClaimNew, SubscriptionID: "sub-1"}, f.claimKey(t, "fabrikam", "k1", hash("a"), "sub-2", 0))
}

func TestIdempotencyKeyConcurrentClaims(t *testing.T) {
	f := newFixture(t)
	claims := make([]store.Claim, 50)
	var wg sync.WaitGroup
	for i := range claims {
		wg.Go(func() {
			c, err := f.st.ClaimIdempotencyKey(f.ctx, "fabrikam", "k1", hash("a"), fmt.Sprintf("sub-%d", i), notStale)
			assert.NoError(t, err)
			claims[i] = c
		})
	}
	wg.Wait()

	var winners []string
	for _, c := range claims {
		if c.State == store.ClaimNew {
			winners = append(winners, c.SubscriptionID)
		}
	}
	require.Len(t, winners, 1, "exactly one request owns the key")
	for _, c := range claims {
		if c.State != store.ClaimNew {
			assert.Equal(t, store.Claim{State: store.ClaimInUse, SubscriptionID: winners[0]}, c)
		}
	}
	assert.Equal(t, 1, f.count(t, "idempotency_keys"))
}

func TestPublisherMessageLifecycle(t *testing.T) {
	f := newFixture(t)
	body := hash(`{"assigned":3}`)

	assert.Equal(t, store.Claim{State: store.ClaimNew}, f.claimMessage(t, "contoso", "msg-1", body, notStale))
	assert.Equal(t, store.Claim{State: store.ClaimInUse}, f.claimMessage(t, "contoso", "msg-1", body, notStale))
	assert.Equal(t, store.Claim{State: store.ClaimMismatch}, f.claimMessage(t, "contoso", "msg-1", hash("other"), notStale))
	assert.Equal(t, store.Claim{State: store.ClaimNew}, f.claimMessage(t, "litware", "msg-1", body, notStale), "scoped per publisher")

	require.NoError(t, f.st.CompletePublisherMessage(f.ctx, "contoso", "msg-1", 200, []byte(`{"status":"active"}`)))
	require.NoError(t, f.st.ReleasePublisherMessage(f.ctx, "contoso", "msg-1"))
	assert.Equal(t, store.Claim{State: store.ClaimReplay, ResponseStatus: 200, ResponseBody: []byte(`{"status":"active"}`)},
		f.claimMessage(t, "contoso", "msg-1", body, notStale), "the redelivery gets the stored answer")

	require.NoError(t, f.st.ReleasePublisherMessage(f.ctx, "litware", "msg-1")) // unavailable: nothing consumed
	assert.Equal(t, store.Claim{State: store.ClaimNew}, f.claimMessage(t, "litware", "msg-1", hash("retry"), notStale))

	require.Equal(t, store.ClaimNew, f.claimMessage(t, "contoso", "msg-2", body, notStale).State)
	f.exec(t, `UPDATE publisher_messages SET locked_at = now() - interval '10 minutes' WHERE webhook_id = 'msg-2'`)
	assert.Equal(t, store.Claim{State: store.ClaimNew}, f.claimMessage(t, "contoso", "msg-2", body, time.Minute), "a stale claim is taken over")
	assert.Equal(t, store.Claim{State: store.ClaimInUse}, f.claimMessage(t, "contoso", "msg-2", body, time.Minute))
}

func TestPublisherMessageConcurrentClaims(t *testing.T) {
	f := newFixture(t)
	states := make([]store.ClaimState, 50)
	var wg sync.WaitGroup
	for i := range states {
		wg.Go(func() {
			c, err := f.st.ClaimPublisherMessage(f.ctx, "contoso", "msg-1", hash("a"), notStale)
			assert.NoError(t, err)
			states[i] = c.State
		})
	}
	wg.Wait()
	counts := map[store.ClaimState]int{}
	for _, s := range states {
		counts[s]++
	}
	assert.Equal(t, map[store.ClaimState]int{store.ClaimNew: 1, store.ClaimInUse: 49}, counts)
}

func TestPurgeMessagesKeepsADay(t *testing.T) {
	f := newFixture(t)
	ages := map[string]string{"fresh": "0 hours", "young": "2 hours", "day-old": "23 hours", "old": "30 hours",
		"older": "50 hours", "ancient": "30 days"}
	for key, age := range ages {
		f.claimKey(t, "fabrikam", key, hash(key), "sub-"+key, notStale)
		f.claimMessage(t, "contoso", key, hash(key), notStale)
		f.exec(t, `UPDATE idempotency_keys SET created_at = now() - $1::interval WHERE key = $2`, age, key)
		f.exec(t, `UPDATE publisher_messages SET created_at = now() - $1::interval WHERE webhook_id = $2`, age, key)
	}
	require.NoError(t, f.st.CompleteIdempotencyKey(f.ctx, "fabrikam", "young", 201, []byte("{}")))
	left := func(table, column string) []string {
		var keys []string
		require.NoError(t, f.db.SelectContext(f.ctx, &keys, `SELECT `+column+` FROM `+table+` ORDER BY created_at DESC`))
		return keys
	}

	require.NoError(t, f.st.PurgeMessages(f.ctx, 48*time.Hour))
	assert.Equal(t, []string{"fresh", "young", "day-old", "old"}, left("idempotency_keys", "key"), "a keep over a day is honoured")
	assert.Equal(t, []string{"fresh", "young", "day-old", "old"}, left("publisher_messages", "webhook_id"))

	require.NoError(t, f.st.PurgeMessages(f.ctx, time.Minute), "asks for less than a day")
	assert.Equal(t, []string{"fresh", "young", "day-old"}, left("idempotency_keys", "key"), "younger than 24 h is kept anyway")
	assert.Equal(t, []string{"fresh", "young", "day-old"}, left("publisher_messages", "webhook_id"))
	assert.Equal(t, store.ClaimReplay, f.claimKey(t, "fabrikam", "young", hash("young"), "sub-x", notStale).State,
		"a kept answer still replays")
}
