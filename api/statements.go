package api

import (
	"errors"
	"net/http"
	"regexp"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/partnerhub/fulfillment/domain"
	"github.com/partnerhub/fulfillment/store"
	"github.com/partnerhub/fulfillment/wire"
)

var monthPattern = regexp.MustCompile(`^[0-9]{4}-(0[1-9]|1[0-2])$`)

// getStatement answers GET /v1/billing/statements?customer_id=&month=YYYY-MM:
// the ledger rows of one of the partner's customers created in that UTC
// month, per billing account, with sums per currency computed by PostgreSQL.
func (s *Server) getStatement(c *gin.Context) {
	customerID, month := c.Query("customer_id"), c.Query("month")
	if customerID == "" {
		writeProblem(c, problem(CodeInvalidRequest, "customer_id is required"))
		return
	}
	if !monthPattern.MatchString(month) {
		writeProblem(c, problem(CodeInvalidRequest, "month must be YYYY-MM, e.g. 2026-11"))
		return
	}
	from, err := time.Parse("2006-01", month)
	if err != nil {
		writeProblem(c, problem(CodeInvalidRequest, "month must be YYYY-MM, e.g. 2026-11"))
		return
	}
	to := from.AddDate(0, 1, 0)
	ctx := c.Request.Context()
	partnerID := currentAgent(c).PartnerID
	if _, err := s.Store.Customer(ctx, partnerID, customerID); errors.Is(err, store.ErrNotFound) {
		writeProblem(c, problem(CodeNotFound, "no customer "+strconv.Quote(customerID)))
		return
	} else if err != nil {
		writeProblem(c, unavailable(err))
		return
	}
	st, err := s.Store.CustomerStatement(ctx, partnerID, customerID, from, to)
	if err != nil {
		writeProblem(c, unavailable(err))
		return
	}
	c.JSON(http.StatusOK, statementView(customerID, month, from, to, st))
}

func statementView(customerID, month string, from, to time.Time, st store.Statement) wire.Statement {
	out := wire.Statement{CustomerID: customerID, Month: month, PeriodStart: from, PeriodEnd: to,
		GroupedBy: "billing_account", Groups: []wire.StatementGroup{}, Totals: statementTotals(st.Totals)}
	byAccount := map[string]int{} // "" is the group of lines on no account
	for _, l := range st.Lines {  // lines come ordered by account
		key := ""
		if l.BillingAccountID != nil {
			key = *l.BillingAccountID
		}
		i, ok := byAccount[key]
		if !ok {
			i = len(out.Groups)
			byAccount[key] = i
			out.Groups = append(out.Groups, wire.StatementGroup{BillingAccountID: l.BillingAccountID, BillingAccountName: l.BillingAccountName,
				Totals: []wire.StatementTotal{}, Lines: []wire.StatementLine{}})
		}
		out.Groups[i].Lines = append(out.Groups[i].Lines, wire.StatementLine{
			LedgerEntry: wire.Ledger([]domain.LedgerEntry{l.LedgerEntry})[0], SubscriptionID: l.SubscriptionID, OfferID: l.OfferID, PlanID: l.PlanID})
	}
	for _, t := range st.GroupTotals {
		if i, ok := byAccount[t.GroupID]; ok {
			out.Groups[i].Totals = append(out.Groups[i].Totals, statementTotals([]store.StatementTotal{t})...)
		}
	}
	return out
}

func statementTotals(ts []store.StatementTotal) []wire.StatementTotal {
	out := make([]wire.StatementTotal, 0, len(ts))
	for _, t := range ts {
		out = append(out, wire.StatementTotal{Currency: t.Currency, ChargesMinor: t.Charges, ProrationsMinor: t.Prorations,
			RefundsMinor: t.Refunds, TotalMinor: t.Total, Lines: t.Lines})
	}
	return out
}
