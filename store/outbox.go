package store

import (
	"context"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// PendingNotification is a queued publisher notification due for delivery.
type PendingNotification struct {
	ID             string    `db:"id"`
	PublisherID    string    `db:"publisher_id"`
	SubscriptionID string    `db:"subscription_id"`
	Type           string    `db:"type"`
	OccurredAt     time.Time `db:"occurred_at"`
	Attempts       int       `db:"attempts"`
	// Snapshot is the subscription when the event happened (JSON of domain.Subscription).
	Snapshot []byte `db:"subscription"`
	// Data is what the notification says beside the snapshot (JSON object), nil for most.
	Data []byte `db:"data"`
}

// ClaimDueNotifications leases up to limit due notifications for lease, so
// several dispatchers never send the same one at the same time.
func (s *Store) ClaimDueNotifications(ctx context.Context, limit int, lease time.Duration) ([]PendingNotification, error) {
	return s.claimDue(ctx, limit, nil, lease, func(due []PendingNotification) []PendingNotification { return due })
}

// NotificationClaim is what a dispatcher delivering to several publishers at
// once takes: at most Publishers publishers, at most PerPublisher
// notifications of each (oldest due first), none of the publishers in Skip
// (those it is still delivering to).
type NotificationClaim struct {
	Publishers   int
	PerPublisher int
	Skip         []string
	Lease        time.Duration
}

// ClaimDueNotificationsByPublisher leases due notifications as c says. Of the
// due rows it looks at (the oldest, a few times what it may take), it leases
// only those it takes; the others stay due for the next claim.
func (s *Store) ClaimDueNotificationsByPublisher(ctx context.Context, c NotificationClaim) ([]PendingNotification, error) {
	c.Publishers, c.PerPublisher = max(c.Publishers, 1), max(c.PerPublisher, 1)
	scan := max(4*c.Publishers*c.PerPublisher, 50)
	return s.claimDue(ctx, scan, c.Skip, c.Lease, func(due []PendingNotification) []PendingNotification {
		taken := map[string]int{}
		var out []PendingNotification
		for _, n := range due {
			if _, ok := taken[n.PublisherID]; !ok && len(taken) == c.Publishers {
				continue
			}
			if taken[n.PublisherID] == c.PerPublisher {
				continue
			}
			taken[n.PublisherID]++
			out = append(out, n)
		}
		return out
	})
}

// claimDue locks up to scan due rows (skipping rows another dispatcher holds
// and the publishers in skip), keeps those pick returns, and leases them.
func (s *Store) claimDue(ctx context.Context, scan int, skip []string, lease time.Duration,
	pick func([]PendingNotification) []PendingNotification) ([]PendingNotification, error) {
	if skip == nil {
		skip = []string{}
	}
	var due []PendingNotification
	err := s.tx(ctx, func(tx *sqlx.Tx) error {
		if err := tx.SelectContext(ctx, &due, `
			SELECT id, publisher_id, subscription_id, type, occurred_at, attempts, subscription, data FROM outbox
			WHERE delivered_at IS NULL AND next_attempt_at <= now() AND publisher_id <> ALL($2::text[])
			ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED`, scan, pq.StringArray(skip)); err != nil {
			return err
		}
		due = pick(due)
		if len(due) == 0 {
			return nil
		}
		ids := make([]string, len(due))
		for i, n := range due {
			ids[i] = n.ID
		}
		_, err := tx.ExecContext(ctx, `
			UPDATE outbox SET next_attempt_at = now() + make_interval(secs => $2) WHERE id = ANY($1)`,
			pq.StringArray(ids), lease.Seconds())
		return err
	})
	for i := range due {
		due[i].OccurredAt = due[i].OccurredAt.UTC()
	}
	return due, wrap(err, "claim due notifications")
}

// MarkNotificationDelivered records a 2xx answer.
func (s *Store) MarkNotificationDelivered(ctx context.Context, id string) error {
	_, err := s.db.ExecContext(ctx, `
		UPDATE outbox SET delivered_at = now(), attempts = attempts + 1, last_error = NULL WHERE id = $1`, id)
	return wrap(err, "mark %s delivered", id)
}

// MarkNotificationFailed schedules the next attempt.
func (s *Store) MarkNotificationFailed(ctx context.Context, id string, next time.Time, reason string) error {
	_, err := s.db.ExecContext(ctx, `
		UPDATE outbox SET attempts = attempts + 1, next_attempt_at = $2, last_error = $3 WHERE id = $1`, id, next, reason)
	return wrap(err, "mark %s failed", id)
}
