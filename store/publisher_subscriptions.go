package store

import (
	"context"
	"fmt"

	"github.com/partnerhub/fulfillment/domain"
)

// PublisherSubscriptionFilter selects a page of the subscriptions of one
// publisher's offers (whoever the partner).
type PublisherSubscriptionFilter struct {
	PublisherID string
	Statuses    []domain.Status // empty: every status
	Limit       int
	// BeforeSeq continues after the last item of the previous page (0: first page).
	BeforeSeq int64
}

// ListPublisherSubscriptions pages a publisher's subscriptions newest first by
// insertion sequence, like ListSubscriptions does for a partner.
func (s *Store) ListPublisherSubscriptions(ctx context.Context, f PublisherSubscriptionFilter) (SubscriptionPage, error) {
	if f.Limit <= 0 {
		f.Limit = 50
	}
	statuses := statusArray(f.Statuses)
	var rows []subscriptionRow
	err := s.db.SelectContext(ctx, &rows, `
		SELECT seq, `+subscriptionColumns+` FROM subscriptions
		WHERE publisher_id = $1
		  AND (cardinality($2::text[]) = 0 OR status = ANY($2))
		  AND ($3::bigint = 0 OR seq < $3)
		ORDER BY seq DESC LIMIT $4`, f.PublisherID, statuses, f.BeforeSeq, f.Limit+1)
	if err != nil {
		return SubscriptionPage{}, fmt.Errorf("list subscriptions of publisher %s: %w", f.PublisherID, err)
	}
	return pageOf(rows, f.Limit), nil
}
