package store

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/partnerhub/fulfillment/domain"
)

// Billing reads a subscription and its ledger as of one instant (one
// read-only repeatable-read transaction), so what is upcoming, computed from
// the subscription's periods billed, agrees with the charges listed even
// while the workflow charges a period.
func (s *Store) Billing(ctx context.Context, subscriptionID string) (domain.Subscription, []domain.LedgerEntry, int64, error) {
	tx, err := s.db.BeginTxx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		return domain.Subscription{}, nil, 0, fmt.Errorf("billing of %s: %w", subscriptionID, err)
	}
	defer func() { _ = tx.Rollback() }()
	var row subscriptionRow
	if err := tx.GetContext(ctx, &row, `SELECT seq, `+subscriptionColumns+` FROM subscriptions WHERE id = $1`, subscriptionID); err != nil {
		return domain.Subscription{}, nil, 0, notFound(err)
	}
	entries, balance, err := ledgerOf(ctx, tx, subscriptionID)
	return row.subscription(), entries, balance, err
}
