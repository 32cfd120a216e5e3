package domain

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func kinds(fs []Finding) []string {
	out := []string{}
	for _, f := range fs {
		out = append(out, f.Kind)
	}
	return out
}

func TestReconcileComparesStateReadModelAndLedger(t *testing.T) {
	now := time.Date(2030, 1, 10, 0, 0, 0, 0, time.UTC)
	started := now.Add(-48 * time.Hour)
	active := Subscription{ID: "s1", PublisherID: "contoso", Status: StatusActive, Version: 5, TermNumber: 2, Quantity: 3,
		BillingStartedAt: &started, CreatedAt: started, LicensesAssigned: 3, FulfillmentConfirmed: true}
	charge := func(term int, amount int64) LedgerEntry {
		return LedgerEntry{ID: "charge:s1:" + string(rune('0'+term)), TermNumber: term, Kind: LedgerCharge, AmountMinor: amount}
	}
	healthy := []LedgerEntry{charge(1, 300), charge(2, 300), {ID: "p", TermNumber: 2, Kind: LedgerProration, AmountMinor: 50}}

	t.Run("agreeing", func(t *testing.T) {
		assert.Empty(t, Reconcile(&active, active, healthy, now, time.Hour))
	})
	t.Run("read model drifted", func(t *testing.T) {
		row := active
		row.Status, row.Version, row.TermNumber, row.Quantity = StatusPendingFulfillment, 4, 1, 9
		fs := Reconcile(&active, row, healthy, now, time.Hour)
		assert.Equal(t, []string{FindingStatusMismatch, FindingVersionMismatch, FindingTermMismatch, FindingQuantityMismatch}, kinds(fs))
		assert.Equal(t, "active", *fs[0].WorkflowValue)
		assert.Equal(t, "pending_fulfillment", *fs[0].ReadModelValue)
	})
	t.Run("ledger against the workflow's terms", func(t *testing.T) {
		ledger := []LedgerEntry{charge(1, 300), charge(1, 300), {ID: "r", TermNumber: 1, Kind: LedgerRefund, AmountMinor: -700},
			charge(3, 300), {ID: "z", TermNumber: 0, Kind: LedgerCharge, AmountMinor: 1}}
		fs := Reconcile(&active, active, ledger, now, time.Hour)
		assert.ElementsMatch(t, []string{FindingLedgerBeyondTerm, FindingLedgerBeyondTerm, FindingChargeDuplicate,
			FindingRefundExceedsCharges, FindingChargeMissing}, kinds(fs))
	})
	t.Run("a full refund of charge and prorations is fine", func(t *testing.T) {
		ledger := append(healthy, LedgerEntry{ID: "r", TermNumber: 2, Kind: LedgerRefund, AmountMinor: -350})
		assert.Empty(t, Reconcile(&active, active, ledger, now, time.Hour))
	})
	t.Run("no workflow", func(t *testing.T) {
		assert.Equal(t, []string{FindingWorkflowMissing}, kinds(Reconcile(nil, active, healthy, now, time.Hour)))
	})
	t.Run("pending on the publisher too long", func(t *testing.T) {
		pending := Subscription{ID: "s2", PublisherID: "contoso", Status: StatusPendingFulfillment, Version: 2, CreatedAt: now.Add(-2 * time.Hour)}
		assert.Equal(t, []string{FindingPendingOverdue}, kinds(Reconcile(&pending, pending, nil, now, time.Hour)))
		assert.Empty(t, Reconcile(&pending, pending, nil, now, 3*time.Hour), "not yet past the threshold")
		waitingOnParent := pending
		waitingOnParent.LicensesAssigned, waitingOnParent.FulfillmentConfirmed = 1, true
		assert.Empty(t, Reconcile(&waitingOnParent, waitingOnParent, nil, now, time.Hour), "both callbacks in: not waiting on the publisher")
		assert.Equal(t, []string{FindingLedgerBeyondTerm}, kinds(Reconcile(&waitingOnParent, waitingOnParent, []LedgerEntry{charge(1, 300)}, now, time.Hour)),
			"an unbilled subscription has no ledger rows")
	})
}

// A term billed in periods has one charge per period: all of them in a past
// term, exactly the periods billed so far in the current one.
func TestReconcileBillingPeriods(t *testing.T) {
	now := time.Date(2030, 6, 10, 0, 0, 0, 0, time.UTC)
	term1 := time.Date(2029, 1, 1, 0, 0, 0, 0, time.UTC)
	term2 := MustAdd(term1, "P1Y")
	end2 := MustAdd(term2, "P1Y")
	charge := func(termStart time.Time, term, k int) LedgerEntry {
		start, end := BillingPeriod(termStart, "P1Y", "P3M", k)
		return LedgerEntry{ID: fmt.Sprintf("charge:s1:%d:%d", term, k), TermNumber: term, Kind: LedgerCharge, AmountMinor: 250,
			PeriodStart: start, PeriodEnd: end}
	}
	state := Subscription{ID: "s1", Status: StatusActive, Version: 9, TermNumber: 2, Quantity: 1, BillingStartedAt: &term1,
		TermStart: &term2, TermEnd: &end2, BillingFrequency: "P3M", PeriodsBilled: 2, CreatedAt: term1}
	full := []LedgerEntry{charge(term1, 1, 1), charge(term1, 1, 2), charge(term1, 1, 3), charge(term1, 1, 4), charge(term2, 2, 1), charge(term2, 2, 2)}

	t.Run("every period once", func(t *testing.T) {
		assert.Empty(t, Reconcile(&state, state, full, now, time.Hour))
	})
	t.Run("a period charged twice", func(t *testing.T) {
		again := charge(term1, 1, 2)
		again.ID = "charge:s1:1:2:again"
		fs := Reconcile(&state, state, append(slices.Clone(full), again), now, time.Hour)
		assert.Equal(t, []string{FindingChargeDuplicate}, kinds(fs))
		assert.Equal(t, 1, fs[0].TermNumber)
	})
	t.Run("a past term's period missing", func(t *testing.T) {
		fs := Reconcile(&state, state, slices.Delete(slices.Clone(full), 2, 3), now, time.Hour)
		assert.Equal(t, []string{FindingChargeMissing}, kinds(fs))
		fs = Reconcile(&state, state, slices.Delete(slices.Clone(full), 3, 4), now, time.Hour)
		assert.Equal(t, []string{FindingChargeMissing}, kinds(fs), "the last period of a past term")
	})
	t.Run("the current term against the periods billed", func(t *testing.T) {
		fewer := state
		fewer.PeriodsBilled = 3
		assert.Equal(t, []string{FindingChargeMissing}, kinds(Reconcile(&fewer, fewer, full, now, time.Hour)))
		more := state
		more.PeriodsBilled = 1
		assert.Equal(t, []string{FindingChargeDuplicate}, kinds(Reconcile(&more, more, full, now, time.Hour)))
	})
}
