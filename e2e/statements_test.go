package e2e

import (
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/partnerhub/fulfillment/testenv"
)

// A customer's monthly statement lists exactly the ledger rows the
// subscriptions wrote that month (charges, a proration, a refund; in two
// currencies), grouped by the billing account each landed on, and its sums
// match the ledger's to the cent. Other partners get 404 for the customer,
// and a malformed month is a 400.
func TestStatementMatchesTheLedger(t *testing.T) {
	t.Parallel()
	w := newWorld(t, testenv.StackOptions{})

	grown := w.buy(t, "analytics", "annual", 5) // USD
	w.fulfill(t, grown, 5)
	r := w.admin.Do(http.MethodPatch, "/v1/subscriptions/"+grown.Str("id"), map[string]any{"quantity": 7})
	require.Equal(t, http.StatusOK, r.Status, r.String())
	refunded := w.buy(t, "docs", "annual", 2) // EUR, Litware, billed to a second account
	id := refunded.Str("id")
	europe := w.admin.Do(http.MethodPost, "/v1/customers/woodgrove/billing-accounts", map[string]any{"name": "Europe"},
		"Idempotency-Key", uuid.NewString())
	require.Equal(t, http.StatusCreated, europe.Status, europe.String())
	r = w.admin.Do(http.MethodPost, "/v1/subscriptions/"+id+"/transfer", map[string]any{"billing_account_id": europe.Str("id")})
	require.Equal(t, http.StatusOK, r.Status, r.String())
	link := refunded.Body["publisher_link"].(map[string]any)
	for _, step := range []struct {
		path string
		body map[string]any
	}{
		{"/v1/publisher/resolve", map[string]any{"authorization_code": link["authorization_code"]}},
		{"/v1/publisher/subscriptions/" + id + "/licenses", map[string]any{"assigned": 2}},
		{"/v1/publisher/subscriptions/" + id + "/activate", map[string]any{}},
	} {
		r := w.litware.Send(step.path, step.body)
		require.Equal(t, http.StatusOK, r.Status, r.String())
	}
	r = w.admin.Do(http.MethodPost, "/v1/subscriptions/"+id+"/cancel", nil)
	require.Equal(t, http.StatusOK, r.Status, r.String())
	w.buy(t, "analytics", "annual", 1) // pending: nothing billed

	// The ledger as PostgreSQL has it, for the month of its first row.
	var first time.Time
	require.NoError(t, w.Store.DB().Get(&first, `SELECT min(l.created_at) FROM ledger l JOIN subscriptions s ON s.id = l.subscription_id
		WHERE s.partner_id = 'fabrikam' AND s.customer_id = 'woodgrove'`))
	month := first.UTC().Format("2006-01")
	from, _ := time.Parse("2006-01", month)
	type sums struct {
		Currency   string `db:"currency"`
		Charges    int64  `db:"charges"`
		Prorations int64  `db:"prorations"`
		Refunds    int64  `db:"refunds"`
		Total      int64  `db:"total"`
	}
	var ledger []sums
	require.NoError(t, w.Store.DB().Select(&ledger, `
		SELECT l.currency,
		       sum(CASE WHEN kind = 'charge' THEN amount_minor ELSE 0 END) AS charges,
		       sum(CASE WHEN kind = 'proration' THEN amount_minor ELSE 0 END) AS prorations,
		       sum(CASE WHEN kind = 'refund' THEN amount_minor ELSE 0 END) AS refunds,
		       sum(amount_minor) AS total
		FROM ledger l JOIN subscriptions s ON s.id = l.subscription_id
		WHERE s.partner_id = 'fabrikam' AND s.customer_id = 'woodgrove' AND l.created_at >= $1 AND l.created_at < $2
		GROUP BY l.currency ORDER BY l.currency`, from, from.AddDate(0, 1, 0)))
	var ledgerIDs []string
	require.NoError(t, w.Store.DB().Select(&ledgerIDs, `
		SELECT l.id FROM ledger l JOIN subscriptions s ON s.id = l.subscription_id
		WHERE s.partner_id = 'fabrikam' AND s.customer_id = 'woodgrove' AND l.created_at >= $1 AND l.created_at < $2`,
		from, from.AddDate(0, 1, 0)))
	require.Len(t, ledger, 2, "USD and EUR")

	st := w.sales.Do(http.MethodGet, "/v1/billing/statements?customer_id=woodgrove&month="+month, nil) // both roles read statements
	require.Equal(t, http.StatusOK, st.Status, st.String())
	assert.Equal(t, "billing_account", st.Str("grouped_by"))
	assert.Equal(t, from.Format(time.RFC3339), st.Str("period_start"))
	totals := st.Body["totals"].([]any)
	require.Len(t, totals, len(ledger))
	for i, want := range ledger {
		got := totals[i].(map[string]any)
		assert.Equal(t, want.Currency, got["currency"])
		assert.EqualValues(t, want.Charges, got["charges_minor"], want.Currency)
		assert.EqualValues(t, want.Prorations, got["prorations_minor"], want.Currency)
		assert.EqualValues(t, want.Refunds, got["refunds_minor"], want.Currency)
		assert.EqualValues(t, want.Total, got["total_minor"], want.Currency)
	}
	var lines []string
	groups := map[string]map[string]any{} // by account name
	for _, g := range st.Body["groups"].([]any) {
		g := g.(map[string]any)
		name, _ := g["billing_account_name"].(string)
		groups[name] = g
		var sum float64
		for _, l := range g["lines"].([]any) {
			l := l.(map[string]any)
			lines = append(lines, l["id"].(string))
			sum += l["amount_minor"].(float64)
			var account string
			require.NoError(t, w.Store.DB().Get(&account, `SELECT coalesce(billing_account_id, '') FROM ledger WHERE id = $1`, l["id"]))
			assert.Equal(t, g["billing_account_id"], account, "line %s is on its group's account", l["id"])
		}
		var groupTotal float64
		for _, tot := range g["totals"].([]any) {
			groupTotal += tot.(map[string]any)["total_minor"].(float64)
		}
		assert.Equal(t, sum, groupTotal, "group %s sums its lines", name)
	}
	assert.ElementsMatch(t, ledgerIDs, lines, "exactly the month's ledger rows")
	if first.UTC().Month() == time.Now().UTC().Month() { // all rows in one month (not run across midnight of a month's end)
		require.Len(t, groups, 2, "Default and Europe; the pending subscription billed nothing")
		usd := groups["Default"]["totals"].([]any)[0].(map[string]any)
		assert.EqualValues(t, 5*1200, usd["charges_minor"])
		assert.Greater(t, usd["prorations_minor"].(float64), 0.0, "two seats added for the rest of the term")
		assert.Equal(t, europe.Str("id"), groups["Europe"]["billing_account_id"])
		for _, l := range groups["Europe"]["lines"].([]any) {
			assert.Equal(t, id, l.(map[string]any)["subscription_id"])
		}
		eur := groups["Europe"]["totals"].([]any)[0].(map[string]any)
		assert.EqualValues(t, 2*900, eur["charges_minor"])
		assert.EqualValues(t, -2*900, eur["refunds_minor"])
		assert.EqualValues(t, 0, eur["total_minor"])
	}

	before := w.admin.Do(http.MethodGet, "/v1/billing/statements?customer_id=woodgrove&month="+from.AddDate(0, -1, 0).Format("2006-01"), nil)
	require.Equal(t, http.StatusOK, before.Status, before.String())
	assert.Empty(t, before.Body["groups"])
	assert.Empty(t, before.Body["totals"])

	for path, want := range map[string]int{
		"/v1/billing/statements?customer_id=woodgrove&month=" + month:        http.StatusNotFound, // northwind asks for fabrikam's customer
		"/v1/billing/statements?customer_id=no-such-customer&month=" + month: http.StatusNotFound,
	} {
		r := w.other.Do(http.MethodGet, path, nil)
		assert.Equal(t, want, r.Status, r.String())
	}
	for _, q := range []string{"customer_id=woodgrove&month=2026-13", "customer_id=woodgrove&month=2026-1", "customer_id=woodgrove", "month=" + month} {
		r := w.admin.Do(http.MethodGet, "/v1/billing/statements?"+q, nil)
		assert.Equal(t, http.StatusBadRequest, r.Status, "%s: %s", q, r)
		assert.Equal(t, "application/problem+json", r.Header.Get("Content-Type"))
	}
	r = w.Do(http.MethodGet, "/v1/billing/statements?customer_id=woodgrove&month="+month, nil)
	assert.Equal(t, http.StatusUnauthorized, r.Status)
}
