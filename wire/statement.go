package wire

import "time"

// Statement is GET /v1/billing/statements: a customer's ledger rows created
// in one UTC month, grouped per billing account, summed per currency.
type Statement struct {
	CustomerID  string    `json:"customer_id"`
	Month       string    `json:"month"`
	PeriodStart time.Time `json:"period_start"`
	PeriodEnd   time.Time `json:"period_end"`
	// GroupedBy says what a group is: "billing_account".
	GroupedBy string           `json:"grouped_by"`
	Groups    []StatementGroup `json:"groups"`
	Totals    []StatementTotal `json:"totals"`
}

// StatementGroup is one billing account's part of a statement; lines that
// landed on no account (written before accounts existed) form a group with
// a null id.
type StatementGroup struct {
	BillingAccountID   *string          `json:"billing_account_id"`
	BillingAccountName *string          `json:"billing_account_name"`
	Totals             []StatementTotal `json:"totals"`
	Lines              []StatementLine  `json:"lines"`
}

// StatementLine is a ledger entry with the subscription it bills.
type StatementLine struct {
	LedgerEntry
	SubscriptionID string `json:"subscription_id"`
	OfferID        string `json:"offer_id"`
	PlanID         string `json:"plan_id"`
}

// StatementTotal sums one currency in minor units; refunds are negative and
// total_minor = charges_minor + prorations_minor + refunds_minor.
type StatementTotal struct {
	Currency        string `json:"currency"`
	ChargesMinor    int64  `json:"charges_minor"`
	ProrationsMinor int64  `json:"prorations_minor"`
	RefundsMinor    int64  `json:"refunds_minor"`
	TotalMinor      int64  `json:"total_minor"`
	Lines           int    `json:"lines"`
}
