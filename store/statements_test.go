package store_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/partnerhub/fulfillment/store"
)

// A statement holds exactly the customer's ledger rows created inside the
// UTC month (first instant in, first instant of the next month out), grouped
// by the billing account each row landed on, and its sums, per account and
// currency and overall per currency, equal the rows' plain sums to the cent.
func TestCustomerStatementSumsTheMonthToTheCent(t *testing.T) {
	f := seeded(t)
	for _, id := range []string{"sub-usd", "sub-eur", "sub-other-customer", "sub-other-partner"} {
		sub := subscription(id)
		switch id {
		case "sub-other-customer":
			sub.CustomerID = otherCustomer
		case "sub-other-partner":
			sub.PartnerID, sub.CustomerID = otherPartner, otherPartnerCustomer
		}
		f.save(t, purchase(sub), hash("code-"+id))
	}
	f.exec(t, `INSERT INTO billing_accounts (id, partner_id, customer_id, name, is_default) VALUES
		('ba-main', $1, $2, 'Main', false), ('ba-eu', $1, $2, 'Europe', false)`, partnerID, customerID)
	from := time.Date(2026, time.November, 1, 0, 0, 0, 0, time.UTC)
	to := from.AddDate(0, 1, 0)
	type row struct {
		sub, kind, currency string
		amount              int64
		at                  time.Time
		account             string // "" for a row on no account
	}
	rows := []row{
		{"sub-usd", "charge", "USD", 600_000_07, from, "ba-main"},                        // the month's first instant: in
		{"sub-usd", "proration", "USD", 1_999, from.Add(36 * time.Hour), "ba-main"},      // quantity up
		{"sub-usd", "proration", "USD", -333, from.Add(48 * time.Hour), "ba-main"},       // quantity down
		{"sub-usd", "refund", "USD", -600_001_673, to.Add(-time.Microsecond), "ba-main"}, // the month's last microsecond: in
		{"sub-usd", "charge", "USD", 5_000, from.Add(-time.Microsecond), "ba-main"},      // October: out
		{"sub-usd", "charge", "USD", 7_000, to, "ba-main"},                               // December's first instant: out
		{"sub-eur", "charge", "EUR", 900_01, from.Add(10 * 24 * time.Hour), "ba-eu"},     // another account and currency
		{"sub-eur", "charge", "USD", 1, from.Add(11 * 24 * time.Hour), "ba-eu"},          // an account billed in two currencies
		{"sub-eur", "proration", "EUR", 42, from.Add(12 * 24 * time.Hour), ""},           // a row on no account
		{"sub-other-customer", "charge", "USD", 123, from.Add(time.Hour), ""},            // another customer of the partner: out
		{"sub-other-partner", "charge", "USD", 456, from.Add(time.Hour), ""},             // another partner's customer: out
	}
	for i, r := range rows {
		var account *string
		if r.account != "" {
			account = &r.account
		}
		f.exec(t, `INSERT INTO ledger (id, subscription_id, term_number, kind, amount_minor, currency, period_start, period_end, created_at, billing_account_id)
			VALUES ($1,$2,1,$3,$4,$5,$6,$7,$6,$8)`, fmt.Sprintf("%s:%s:%d", r.kind, r.sub, i), r.sub, r.kind, r.amount, r.currency, r.at, r.at.AddDate(1, 0, 0), account)
	}

	st, err := f.st.CustomerStatement(f.ctx, partnerID, customerID, from, to)
	require.NoError(t, err)

	// What the statement must say, summed here from the rows in the month.
	want := map[string]map[string]*store.StatementTotal{} // account → currency → sums
	overall := map[string]*store.StatementTotal{}
	var wantLines []string
	for i, r := range rows {
		if r.sub != "sub-usd" && r.sub != "sub-eur" || r.at.Before(from) || !r.at.Before(to) {
			continue
		}
		wantLines = append(wantLines, fmt.Sprintf("%s:%s:%d", r.kind, r.sub, i))
		if want[r.account] == nil {
			want[r.account] = map[string]*store.StatementTotal{}
		}
		for _, tot := range []map[string]*store.StatementTotal{want[r.account], overall} {
			if tot[r.currency] == nil {
				tot[r.currency] = &store.StatementTotal{Currency: r.currency}
			}
			s := tot[r.currency]
			switch r.kind {
			case "charge":
				s.Charges += r.amount
			case "proration":
				s.Prorations += r.amount
			case "refund":
				s.Refunds += r.amount
			}
			s.Total += r.amount
			s.Lines++
		}
	}
	var gotLines []string
	names := map[string]string{"ba-main": "Main", "ba-eu": "Europe"}
	for _, l := range st.Lines {
		gotLines = append(gotLines, l.ID)
		assert.Equal(t, offerID, l.OfferID)
		assert.Equal(t, planID, l.PlanID)
		if l.BillingAccountID != nil {
			assert.Equal(t, names[*l.BillingAccountID], *l.BillingAccountName)
		} else {
			assert.Nil(t, l.BillingAccountName)
		}
	}
	assert.ElementsMatch(t, wantLines, gotLines)
	assert.Nil(t, st.Lines[len(st.Lines)-1].BillingAccountID, "lines on no account come last")
	require.Len(t, st.GroupTotals, 4, "ba-eu in two currencies, ba-main in one, no account in one")
	for _, g := range st.GroupTotals {
		w := *want[g.GroupID][g.Currency]
		w.GroupID = g.GroupID
		assert.Equal(t, w, g, "group %s %s", g.GroupID, g.Currency)
	}
	require.Len(t, st.Totals, 2)
	for _, tot := range st.Totals {
		assert.Equal(t, *overall[tot.Currency], tot, "total %s", tot.Currency)
	}
	assert.Equal(t, int64(600_000_07+1_999-333-600_001_673+1), overall["USD"].Total, "the month's USD to the cent")
	assert.Equal(t, "EUR", st.Totals[0].Currency, "ordered by currency")

	// Neighbouring months see exactly their boundary rows.
	oct, err := f.st.CustomerStatement(f.ctx, partnerID, customerID, from.AddDate(0, -1, 0), from)
	require.NoError(t, err)
	require.Len(t, oct.Lines, 1)
	assert.Equal(t, int64(5_000), oct.Totals[0].Total)
	dec, err := f.st.CustomerStatement(f.ctx, partnerID, customerID, to, to.AddDate(0, 1, 0))
	require.NoError(t, err)
	require.Len(t, dec.Lines, 1)
	assert.Equal(t, int64(7_000), dec.Totals[0].Charges)

	// Another partner asking for the same customer id sees nothing of it.
	foreign, err := f.st.CustomerStatement(f.ctx, otherPartner, customerID, from, to)
	require.NoError(t, err)
	assert.Empty(t, foreign.Lines)
	assert.Empty(t, foreign.Totals)
}
