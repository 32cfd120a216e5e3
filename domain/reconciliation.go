package domain

import (
	"fmt"
	"slices"
	"strconv"
	"time"
)

// Kinds of reconciliation findings (issue 13, item 6). Each names one way the
// workflow's state, the read model and the ledger disagree, or a subscription
// that waits on its publisher too long. Nothing is repaired automatically.
const (
	FindingStatusMismatch       = "status_mismatch"
	FindingVersionMismatch      = "version_mismatch"
	FindingTermMismatch         = "term_mismatch"
	FindingQuantityMismatch     = "quantity_mismatch"
	FindingWorkflowMissing      = "workflow_missing"
	FindingReadModelMissing     = "read_model_missing"
	FindingWorkflowUnreadable   = "workflow_unreadable"
	FindingChargeMissing        = "charge_missing"
	FindingChargeDuplicate      = "charge_duplicate"
	FindingRefundExceedsCharges = "refund_exceeds_charges"
	FindingLedgerBeyondTerm     = "ledger_beyond_term"
	FindingPendingOverdue       = "pending_fulfillment_overdue"
)

// FindingKinds lists every kind, in the order reports and metrics show them.
var FindingKinds = []string{
	FindingStatusMismatch, FindingVersionMismatch, FindingTermMismatch, FindingQuantityMismatch,
	FindingWorkflowMissing, FindingReadModelMissing, FindingWorkflowUnreadable, FindingChargeMissing, FindingChargeDuplicate,
	FindingRefundExceedsCharges, FindingLedgerBeyondTerm, FindingPendingOverdue,
}

// Finding is one disagreement found by a reconciliation run. TermNumber is
// set for ledger findings (0 otherwise).
type Finding struct {
	SubscriptionID string  `json:"subscription_id" db:"subscription_id"`
	Kind           string  `json:"kind" db:"kind"`
	TermNumber     int     `json:"term_number" db:"term_number"`
	Detail         string  `json:"detail" db:"detail"`
	WorkflowValue  *string `json:"workflow_value" db:"workflow_value"`
	ReadModelValue *string `json:"read_model_value" db:"read_model_value"`
}

// Reconcile compares one subscription's workflow state (nil when the
// workflow could not be found) with its read-model row and its ledger rows.
// The workflow is the truth for the ledger: terms 1..N of a billed state are
// charged once per billing period (a term billed once per term has one
// charge), no period twice, the periods of a term one after the other with
// no gap (a past term's through to the next term's start), the current term
// exactly the periods the workflow billed; no row belongs to a term beyond
// N, and no term's refunds exceed what it billed (charges and prorations). A subscription
// pending fulfillment longer than pendingThreshold whose publisher has not
// sent both callbacks is listed too.
func Reconcile(state *Subscription, row Subscription, ledger []LedgerEntry, now time.Time, pendingThreshold time.Duration) []Finding {
	var out []Finding
	add := func(kind string, term int, detail string, wf, rm *string) {
		out = append(out, Finding{SubscriptionID: row.ID, Kind: kind, TermNumber: term, Detail: detail, WorkflowValue: wf, ReadModelValue: rm})
	}
	subject := row
	if state == nil {
		add(FindingWorkflowMissing, 0, "no workflow "+strconv.Quote("subscription/"+row.ID)+" for an open read-model row", nil, ptr(string(row.Status)))
	} else {
		subject = *state
		compare := func(kind, what string, wf, rm string) {
			if wf != rm {
				add(kind, 0, fmt.Sprintf("%s: workflow %s, read model %s", what, wf, rm), ptr(wf), ptr(rm))
			}
		}
		compare(FindingStatusMismatch, "status", string(state.Status), string(row.Status))
		compare(FindingVersionMismatch, "version", strconv.FormatInt(state.Version, 10), strconv.FormatInt(row.Version, 10))
		compare(FindingTermMismatch, "term_number", strconv.Itoa(state.TermNumber), strconv.Itoa(row.TermNumber))
		compare(FindingQuantityMismatch, "quantity", strconv.Itoa(state.Quantity), strconv.Itoa(row.Quantity))
	}

	billed := 0 // terms the subject has billed
	if subject.BillingStartedAt != nil {
		billed = subject.TermNumber
	}
	charges := map[int][]LedgerEntry{}
	billedMinor := map[int]int64{} // charges and prorations per term
	refundedMinor := map[int]int64{}
	beyond := map[int]bool{}
	for _, l := range ledger {
		if l.TermNumber < 1 || l.TermNumber > billed {
			if !beyond[l.TermNumber] {
				beyond[l.TermNumber] = true
				add(FindingLedgerBeyondTerm, l.TermNumber, fmt.Sprintf("ledger row %s is for term %d; the subscription billed terms 1..%d", l.ID, l.TermNumber, billed), nil, nil)
			}
			continue
		}
		switch l.Kind {
		case LedgerCharge:
			charges[l.TermNumber] = append(charges[l.TermNumber], l)
			billedMinor[l.TermNumber] += l.AmountMinor
		case LedgerProration:
			billedMinor[l.TermNumber] += l.AmountMinor
		case LedgerRefund:
			refundedMinor[l.TermNumber] -= l.AmountMinor // refunds are negative
		}
	}
	periods := make([][]LedgerEntry, billed+2) // per term, one charge per period start, by start
	for term := 1; term <= billed; term++ {
		periods[term] = chargedPeriods(charges[term], func(start time.Time, n int) {
			add(FindingChargeDuplicate, term, fmt.Sprintf("term %d has %d charges for the period starting %s", term, n, start.UTC().Format(time.RFC3339)), nil, nil)
		})
	}
	for term := 1; term <= billed; term++ {
		got := periods[term]
		if len(got) == 0 {
			add(FindingChargeMissing, term, fmt.Sprintf("term %d has no charge", term), nil, nil)
		}
		for i := 1; i < len(got); i++ {
			if !got[i-1].PeriodEnd.Equal(got[i].PeriodStart) {
				add(FindingChargeMissing, term, fmt.Sprintf("term %d has no charge from %s to %s", term,
					got[i-1].PeriodEnd.UTC().Format(time.RFC3339), got[i].PeriodStart.UTC().Format(time.RFC3339)), nil, nil)
			}
		}
		if next := periods[term+1]; term < billed && len(got) > 0 && len(next) > 0 && !got[len(got)-1].PeriodEnd.Equal(next[0].PeriodStart) {
			add(FindingChargeMissing, term, fmt.Sprintf("term %d has no charge from %s to the next term's start %s", term,
				got[len(got)-1].PeriodEnd.UTC().Format(time.RFC3339), next[0].PeriodStart.UTC().Format(time.RFC3339)), nil, nil)
		}
		if want := subject.BilledPeriods(); term == billed && len(got) > 0 && len(got) != want {
			kind := FindingChargeMissing
			if len(got) > want {
				kind = FindingChargeDuplicate
			}
			add(kind, term, fmt.Sprintf("term %d has charges for %d periods; the subscription billed %d", term, len(got), want), nil, nil)
		}
		if refundedMinor[term] > billedMinor[term] {
			add(FindingRefundExceedsCharges, term, fmt.Sprintf("term %d refunded %d minor units of %d billed", term, refundedMinor[term], billedMinor[term]), nil, nil)
		}
	}

	if subject.Status == StatusPendingFulfillment && now.Sub(row.CreatedAt) > pendingThreshold &&
		(subject.LicensesAssigned == 0 || !subject.FulfillmentConfirmed) {
		add(FindingPendingOverdue, 0, fmt.Sprintf("waiting on publisher %s since %s (licenses assigned: %t, fulfillment confirmed: %t)",
			row.PublisherID, row.CreatedAt.UTC().Format(time.RFC3339), subject.LicensesAssigned > 0, subject.FulfillmentConfirmed), nil, nil)
	}
	return out
}

// chargedPeriods keeps one charge per period start, ordered by start, and
// reports every start charged more than once.
func chargedPeriods(charges []LedgerEntry, duplicate func(start time.Time, n int)) []LedgerEntry {
	byStart := map[int64][]LedgerEntry{}
	for _, c := range charges {
		byStart[c.PeriodStart.UnixNano()] = append(byStart[c.PeriodStart.UnixNano()], c)
	}
	out := make([]LedgerEntry, 0, len(byStart))
	for _, cs := range byStart {
		out = append(out, cs[0])
	}
	slices.SortFunc(out, func(a, b LedgerEntry) int { return a.PeriodStart.Compare(b.PeriodStart) })
	for _, c := range out {
		if n := len(byStart[c.PeriodStart.UnixNano()]); n > 1 {
			duplicate(c.PeriodStart, n)
		}
	}
	return out
}

func ptr(s string) *string { return &s }
