package store

import (
	"context"
	"fmt"
	"time"

	"github.com/partnerhub/fulfillment/domain"
)

// StatementTotal sums one group's ledger rows of one currency, in minor units.
// Refunds are negative, so Total is Charges + Prorations + Refunds.
type StatementTotal struct {
	// GroupID is the billing account id ("" for lines on no account).
	GroupID    string `db:"group_id"`
	Currency   string `db:"currency"`
	Charges    int64  `db:"charges"`
	Prorations int64  `db:"prorations"`
	Refunds    int64  `db:"refunds"`
	Total      int64  `db:"total"`
	Lines      int    `db:"lines"`
}

// StatementLine is one ledger row of a statement, with the billing account it
// landed on and its subscription's offer and plan.
type StatementLine struct {
	domain.LedgerEntry
	BillingAccountID   *string `db:"billing_account_id"`
	BillingAccountName *string `db:"billing_account_name"`
	OfferID            string  `db:"offer_id"`
	PlanID             string  `db:"plan_id"`
}

// Statement is a customer's ledger rows created in [From, To), grouped per
// billing account the row landed on (ledger.billing_account_id, stamped when
// the row is written; a subscription moved to another account later leaves
// its earlier rows where they were), with sums per account and currency and
// per currency overall, all computed by PostgreSQL.
type Statement struct {
	Lines       []StatementLine // by account (no account last), then subscription, time and id
	GroupTotals []StatementTotal
	Totals      []StatementTotal // GroupID is empty
}

// CustomerStatement reads the statement of one partner's customer.
func (s *Store) CustomerStatement(ctx context.Context, partnerID, customerID string, from, to time.Time) (Statement, error) {
	const rows = `
		FROM ledger l JOIN subscriptions s ON s.id = l.subscription_id
		WHERE s.partner_id = $1 AND s.customer_id = $2 AND l.created_at >= $3 AND l.created_at < $4`
	const sums = `
		coalesce(sum(l.amount_minor) FILTER (WHERE l.kind = 'charge'), 0) AS charges,
		coalesce(sum(l.amount_minor) FILTER (WHERE l.kind = 'proration'), 0) AS prorations,
		coalesce(sum(l.amount_minor) FILTER (WHERE l.kind = 'refund'), 0) AS refunds,
		sum(l.amount_minor) AS total, count(*) AS lines`
	st := Statement{Lines: []StatementLine{}, GroupTotals: []StatementTotal{}, Totals: []StatementTotal{}}
	args := []any{partnerID, customerID, from, to}
	if err := s.db.SelectContext(ctx, &st.Lines, `
		SELECT l.id, l.subscription_id, l.term_number, l.kind, l.amount_minor, l.currency, l.period_start,
		       l.period_end, l.created_at, l.billing_account_id, ba.name AS billing_account_name, s.offer_id, s.plan_id
		FROM ledger l JOIN subscriptions s ON s.id = l.subscription_id
		LEFT JOIN billing_accounts ba ON ba.id = l.billing_account_id
		WHERE s.partner_id = $1 AND s.customer_id = $2 AND l.created_at >= $3 AND l.created_at < $4
		ORDER BY l.billing_account_id NULLS LAST, l.subscription_id, l.created_at, l.id`, args...); err != nil {
		return st, fmt.Errorf("statement lines of %s/%s: %w", partnerID, customerID, err)
	}
	for i := range st.Lines {
		e := &st.Lines[i].LedgerEntry
		e.PeriodStart, e.PeriodEnd, e.CreatedAt = e.PeriodStart.UTC(), e.PeriodEnd.UTC(), e.CreatedAt.UTC()
	}
	if err := s.db.SelectContext(ctx, &st.GroupTotals, `
		SELECT coalesce(l.billing_account_id, '') AS group_id, l.currency,`+sums+rows+`
		GROUP BY l.billing_account_id, l.currency ORDER BY l.billing_account_id NULLS LAST, l.currency`, args...); err != nil {
		return st, fmt.Errorf("statement sums of %s/%s: %w", partnerID, customerID, err)
	}
	if err := s.db.SelectContext(ctx, &st.Totals, `
		SELECT '' AS group_id, l.currency,`+sums+rows+`
		GROUP BY l.currency ORDER BY l.currency`, args...); err != nil {
		return st, fmt.Errorf("statement totals of %s/%s: %w", partnerID, customerID, err)
	}
	return st, nil
}
