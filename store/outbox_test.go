package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/partnerhub/fulfillment/domain"
	"github.com/partnerhub/fulfillment/store"
)

// queue saves subscription id with n notifications and returns their ids.
func (f *fixture) queue(t *testing.T, id string, n int) []string {
	t.Helper()
	c := domain.Change{Subscription: subscription(id)}
	ids := make([]string, 0, n)
	for i := range n {
		nid := fmt.Sprintf("%s:n%02d", id, i)
		c.Notifications = append(c.Notifications, domain.Notification{ID: nid, Type: domain.NotifyPurchased, OccurredAt: t0.Add(time.Duration(i) * time.Second)})
		ids = append(ids, nid)
	}
	f.save(t, c, nil)
	return ids
}

func (f *fixture) claimDue(t *testing.T, limit int) []store.PendingNotification {
	t.Helper()
	due, err := f.st.ClaimDueNotifications(f.ctx, limit, time.Minute)
	require.NoError(t, err)
	return due
}

func notificationIDs(due []store.PendingNotification) []string {
	out := make([]string, 0, len(due))
	for _, n := range due {
		out = append(out, n.ID)
	}
	sort.Strings(out)
	return out
}

func TestClaimDueNotificationsLeases(t *testing.T) {
	f := seeded(t)
	queued := f.queue(t, "sub-1", 3)

	due := f.claimDue(t, 10)
	assert.Equal(t, queued, notificationIDs(due))
	for _, n := range due {
		if n.ID == queued[1] {
			var snap domain.Subscription
			require.NoError(t, json.Unmarshal(n.Snapshot, &snap), "the subscription as of the event travels with it")
			assert.Equal(t, "sub-1", snap.ID)
			n.Snapshot = nil
			assert.Equal(t, store.PendingNotification{ID: queued[1], PublisherID: publisherID, SubscriptionID: "sub-1",
				Type: domain.NotifyPurchased, OccurredAt: t0.Add(time.Second)}, n)
		}
	}
	assert.Empty(t, f.claimDue(t, 10), "leased rows are not due again right away")
	assert.Equal(t, 3, f.count(t, "outbox WHERE next_attempt_at > now() + interval '50 seconds'"), "for the lease")

	f.exec(t, `UPDATE outbox SET next_attempt_at = now() - interval '1 second'`) // the dispatcher died; the lease ran out
	assert.Equal(t, queued, notificationIDs(f.claimDue(t, 10)), "an expired lease makes them due again")
}

func TestClaimDueNotificationsRespectsLimit(t *testing.T) {
	f := seeded(t)
	queued := f.queue(t, "sub-1", 5)
	first := notificationIDs(f.claimDue(t, 2))
	rest := notificationIDs(f.claimDue(t, 10))
	assert.Len(t, first, 2)
	assert.Len(t, rest, 3)
	assert.ElementsMatch(t, queued, append(first, rest...))
}

func TestClaimDueNotificationsSkipsLockedRows(t *testing.T) {
	f := seeded(t)
	queued := f.queue(t, "sub-1", 3)
	other, err := f.db.BeginTxx(f.ctx, nil)
	require.NoError(t, err)
	defer other.Rollback()
	_, err = other.ExecContext(f.ctx, `SELECT id FROM outbox WHERE id = $1 FOR UPDATE`, queued[0])
	require.NoError(t, err)

	ctx, cancel := context.WithTimeout(f.ctx, 5*time.Second)
	defer cancel()
	due, err := f.st.ClaimDueNotifications(ctx, 10, time.Minute)
	require.NoError(t, err, "a locked row is skipped, not waited for")
	assert.Equal(t, queued[1:], notificationIDs(due))

	require.NoError(t, other.Rollback())
	assert.Equal(t, queued[:1], notificationIDs(f.claimDue(t, 10)))
}

func TestConcurrentClaimersNeverShareARow(t *testing.T) {
	f := seeded(t)
	queued := f.queue(t, "sub-1", 60)

	claimed := make([][]string, 6)
	var wg sync.WaitGroup
	for i := range claimed {
		wg.Go(func() {
			for {
				due, err := f.st.ClaimDueNotifications(f.ctx, 4, time.Minute)
				if !assert.NoError(t, err) || len(due) == 0 {
					return
				}
				claimed[i] = append(claimed[i], notificationIDs(due)...)
			}
		})
	}
	wg.Wait()

	var all []string
	for _, ids := range claimed {
		all = append(all, ids...)
	}
	sort.Strings(all)
	assert.Equal(t, queued, all, "every notification claimed exactly once")
}

func TestMarkNotificationFailedReschedules(t *testing.T) {
	f := seeded(t)
	queued := f.queue(t, "sub-1", 2)
	require.Len(t, f.claimDue(t, 10), 2)

	require.NoError(t, f.st.MarkNotificationFailed(f.ctx, queued[0], time.Now().Add(-time.Second), "503 from publisher"))
	due := f.claimDue(t, 10)
	require.Len(t, due, 1, "due again at the chosen time; the other is still leased")
	assert.Equal(t, queued[0], due[0].ID)
	assert.Equal(t, 1, due[0].Attempts)
	assert.Equal(t, 1, f.count(t, "outbox WHERE id = $1 AND last_error = '503 from publisher'", queued[0]))

	require.NoError(t, f.st.MarkNotificationFailed(f.ctx, queued[0], time.Now().Add(time.Hour), "timeout"))
	assert.Empty(t, f.claimDue(t, 10), "not due before the next attempt")
	assert.Equal(t, 1, f.count(t, `outbox WHERE id = $1 AND attempts = 2 AND last_error = 'timeout'
		AND next_attempt_at > now() + interval '59 minutes' AND delivered_at IS NULL`, queued[0]))
}

func TestMarkNotificationDeliveredRemovesItFromDue(t *testing.T) {
	f := seeded(t)
	queued := f.queue(t, "sub-1", 2)
	require.Len(t, f.claimDue(t, 10), 2)
	require.NoError(t, f.st.MarkNotificationFailed(f.ctx, queued[0], time.Now().Add(-time.Second), "503"))
	require.NoError(t, f.st.MarkNotificationDelivered(f.ctx, queued[0]))

	f.exec(t, `UPDATE outbox SET next_attempt_at = now() - interval '1 hour'`)
	assert.Equal(t, queued[1:], notificationIDs(f.claimDue(t, 10)), "a delivered notification is never due again")
	assert.Equal(t, 1, f.count(t, `outbox WHERE id = $1 AND delivered_at IS NOT NULL AND attempts = 2 AND last_error IS NULL`, queued[0]))
}

func TestRecordAudit(t *testing.T) {
	f := newFixture(t)
	denied := store.AuditEntry{Actor: "agent:fabrikam/bob", Tenant: "fabrikam", Action: "subscription.cancel", Outcome: "forbidden_role",
		Detail: map[string]any{"subscription_id": "sub-1", "attempt": float64(1)}}
	require.NoError(t, f.st.RecordAudit(f.ctx, denied))
	require.NoError(t, f.st.RecordAudit(f.ctx, store.AuditEntry{Actor: "publisher:contoso", Tenant: "contoso", Action: "publisher.resolve", Outcome: "ok"}))

	var rows []struct {
		store.AuditEntry
		DetailJSON []byte    `db:"detail"`
		At         time.Time `db:"at"`
	}
	require.NoError(t, f.db.SelectContext(f.ctx, &rows, `SELECT actor, tenant, action, outcome, detail, at FROM audit_log ORDER BY id`))
	require.Len(t, rows, 2)
	assert.Equal(t, [4]string{denied.Actor, denied.Tenant, denied.Action, denied.Outcome},
		[4]string{rows[0].Actor, rows[0].Tenant, rows[0].Action, rows[0].Outcome})
	var detail map[string]any
	require.NoError(t, json.Unmarshal(rows[0].DetailJSON, &detail))
	assert.Equal(t, denied.Detail, detail)
	assert.JSONEq(t, `{}`, string(rows[1].DetailJSON))
	assert.WithinDuration(t, time.Now(), rows[0].At, time.Minute)
}

// A dispatcher delivering to several publishers at once takes a bounded
// batch of each, skips the publishers it is still delivering to, and leases
// only what it took: the rest stays due for the next claim.
func TestClaimDueNotificationsByPublisher(t *testing.T) {
	f := seeded(t)
	for i := range 6 {
		f.exec(t, `INSERT INTO outbox (id, publisher_id, subscription_id, type, occurred_at, next_attempt_at)
			VALUES ($1, 'slow', 'sub-s', 'subscription.purchased', now(), now() - make_interval(secs => $2))`,
			fmt.Sprintf("slow:%d", i), 100-i)
	}
	for _, pub := range []string{"fast", "other"} {
		f.exec(t, `INSERT INTO outbox (id, publisher_id, subscription_id, type, occurred_at, next_attempt_at)
			VALUES ($1, $2, 'sub-f', 'subscription.purchased', now(), now() - interval '1 second')`, pub+":0", pub)
	}
	claim := func(c store.NotificationClaim) []string {
		c.Lease = time.Minute
		due, err := f.st.ClaimDueNotificationsByPublisher(f.ctx, c)
		require.NoError(t, err)
		return notificationIDs(due)
	}

	assert.Equal(t, []string{"fast:0", "slow:0", "slow:1"}, claim(store.NotificationClaim{Publishers: 2, PerPublisher: 2}),
		"the two publishers due first, two of each, oldest first")
	assert.Equal(t, []string{"other:0"}, claim(store.NotificationClaim{Publishers: 2, PerPublisher: 2, Skip: []string{"slow"}}),
		"a publisher still being delivered to is skipped")
	assert.Equal(t, []string{"slow:2", "slow:3", "slow:4", "slow:5"}, claim(store.NotificationClaim{Publishers: 3, PerPublisher: 5}),
		"what was looked at but not taken stayed due")
	assert.Empty(t, claim(store.NotificationClaim{Publishers: 3, PerPublisher: 5}), "everything is leased")
}
