package main

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/lib/pq"

	"github.com/partnerhub/fulfillment/domain"
	"github.com/partnerhub/fulfillment/e2e"
)

// bulkCustomers is how many customers the loader spreads fabrikam's rows over.
const bulkCustomers = 1000

// loadSubscriptions writes n read-model rows for the partner fabrikam straight
// into the subscriptions table with COPY (no workflows: only the list reads
// them). Statuses are a plausible mix; customers bulk-0000.. are created.
func loadSubscriptions(ctx context.Context, dbURL string, n int) error {
	db, err := sql.Open("postgres", dbURL)
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `
		INSERT INTO customers (partner_id, id, name)
		SELECT 'fabrikam', 'bulk-' || lpad(g::text, 4, '0'), 'Bulk customer ' || g FROM generate_series(0, $1 - 1) g
		ON CONFLICT DO NOTHING`, bulkCustomers); err != nil {
		return fmt.Errorf("bulk customers: %w", err)
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	stmt, err := tx.PrepareContext(ctx, pq.CopyIn("subscriptions",
		"id", "partner_id", "customer_id", "publisher_id", "offer_id", "plan_id", "quantity", "auto_renew",
		"entitlement_number", "licenses_assigned", "fulfillment_confirmed", "status", "term_number",
		"activation_deadline", "billing_started_at", "term_start", "term_end", "cancellation_window_ends_at",
		"created_at", "updated_at", "version"))
	if err != nil {
		return fmt.Errorf("copy subscriptions: %w", err)
	}
	base := time.Now().UTC().Add(-time.Duration(n) * time.Minute)
	for i := range n {
		id := fmt.Sprintf("bulk-%08d", i)
		created := base.Add(time.Duration(i) * time.Minute)
		status := domain.StatusActive
		switch i % 20 {
		case 0:
			status = domain.StatusPendingFulfillment
		case 1, 2:
			status = domain.StatusCancelled
		case 3:
			status = domain.StatusExpired
		}
		var billed, termStart, termEnd, window any
		if status != domain.StatusPendingFulfillment {
			billed, termStart, termEnd, window = created, created, created.AddDate(1, 0, 0), created.AddDate(0, 0, 7)
		}
		_, err := stmt.ExecContext(ctx, id, "fabrikam", fmt.Sprintf("bulk-%04d", i%bulkCustomers), "contoso", "analytics", "annual",
			5, true, domain.EntitlementNumber(id), 3, status != domain.StatusPendingFulfillment, string(status), 1,
			created.AddDate(0, 0, 30), billed, termStart, termEnd, window, created, created, 3)
		if err != nil {
			return fmt.Errorf("copy row %d: %w", i, err)
		}
	}
	if _, err := stmt.ExecContext(ctx); err != nil {
		return fmt.Errorf("copy subscriptions: %w", err)
	}
	if err := stmt.Close(); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	_, err = db.ExecContext(ctx, `ANALYZE subscriptions`)
	return err
}

// listCase is one kind of list request, measured sequentially.
type listCase struct {
	name    string
	query   url.Values
	follow  bool // walk next_cursor from page to page
	latency samples
	items   int
}

// measureList sends each case's request n times (cursor cases walk n pages)
// to each target, one request to each in turn, so targets (e.g. a baseline
// build and this one) share the same moment's noise; cases[t] are target t's.
func measureList(ctx context.Context, targets []*stack, n int) ([][]*listCase, error) {
	newCases := func() []*listCase {
		return []*listCase{
			{name: "default page (50)", query: url.Values{}},
			{name: "cursor walk, 50/page", query: url.Values{}, follow: true},
			{name: "limit=100 cursor walk", query: url.Values{"limit": {"100"}}, follow: true},
			{name: "tab=active", query: url.Values{"tab": {"active"}}},
			{name: "tab=inactive cursor walk", query: url.Values{"tab": {"inactive"}}, follow: true},
			{name: "customer_id (100 rows)", query: url.Values{"customer_id": {"bulk-0042"}}},
			{name: "customer_id + tab=upcoming", query: url.Values{"customer_id": {"bulk-0040"}, "tab": {"upcoming"}}},
		}
	}
	cases := make([][]*listCase, len(targets))
	for t := range targets {
		cases[t] = newCases()
	}
	for i := range cases[0] {
		qs := make([]url.Values, len(targets))
		for t := range targets {
			qs[t] = url.Values{}
			for k, v := range cases[t][i].query {
				qs[t][k] = v
			}
		}
		for range n {
			for t, s := range targets {
				c, q := cases[t][i], qs[t]
				req := s.partner(http.MethodGet, "/v1/subscriptions?"+q.Encode(), e2e.AdminKey, nil)
				start := time.Now()
				a, err := s.do(ctx, req)
				if err != nil {
					return cases, err
				}
				c.latency.add(time.Since(start))
				items, _ := a.body["items"].([]any)
				c.items += len(items)
				if c.follow {
					next, _ := a.body["next_cursor"].(string)
					if next == "" {
						delete(q, "cursor")
					} else {
						q.Set("cursor", next)
					}
				}
			}
		}
	}
	return cases, nil
}

// explainList prints the plan of the store's list query for one filter.
func explainList(ctx context.Context, dbURL, customer string, statuses []string, beforeSeq int64) (string, error) {
	db, err := sql.Open("postgres", dbURL)
	if err != nil {
		return "", err
	}
	defer db.Close()
	if statuses == nil {
		statuses = []string{} // as the store sends it: empty, not NULL
	}
	rows, err := db.QueryContext(ctx, `EXPLAIN (ANALYZE, BUFFERS, COSTS OFF)
		SELECT seq, id FROM subscriptions
		WHERE partner_id = $1
		  AND ($2 = '' OR customer_id = $2)
		  AND (cardinality($3::text[]) = 0 OR status = ANY($3))
		  AND ($4::bigint = 0 OR seq < $4)
		ORDER BY seq DESC LIMIT $5`, "fabrikam", customer, pq.StringArray(statuses), beforeSeq, 51)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	var out string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return "", err
		}
		out += "    " + line + "\n"
	}
	return out, rows.Err()
}
