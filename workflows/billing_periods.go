// Billing periods (issue 13, item 3): a term billed in installments, one per
// period of the subscription's billing frequency. Period 1 is charged when
// the term starts (billing start or renewal, as before); each later period
// when its start passes, by one timer. A subscription billed once per term
// (every one bought before billing periods) has no later period, so its
// workflow makes exactly the commands it made before.
package workflows

import (
	"fmt"
	"strings"
	"time"

	"github.com/partnerhub/fulfillment/domain"
)

// periods is the number of billing periods of the current term.
func (st *State) periods() int { return st.Subscription.Periods(st.Plan.Term) }

// frequency is the subscription's billing frequency, its plan's term when it
// bills once per term.
func (st *State) frequency() string {
	if f := st.Subscription.BillingFrequency; f != "" {
		return f
	}
	return st.Plan.Term
}

// nextPeriod is the first period of the current term not charged yet and
// when it starts; false when every period is charged (or none can be).
func (st *State) nextPeriod() (int, time.Time, bool) {
	s := st.Subscription
	if s.TermStart == nil || s.TermNumber == 0 {
		return 0, time.Time{}, false
	}
	k := s.BilledPeriods() + 1
	if k > st.periods() {
		return 0, time.Time{}, false
	}
	start, _ := domain.BillingPeriod(*s.TermStart, st.Plan.Term, s.BillingFrequency, k)
	return k, start, true
}

// periodDeadline is when the term's next billing period starts (zero when
// every period is charged): the workflow then charges it (awaitTermEnd). A
// period whose start passed while the subscription was suspended is charged
// at once after reinstatement, one per pass of the main loop.
func (st *State) periodDeadline() time.Time {
	if _, start, ok := st.nextPeriod(); ok {
		return start
	}
	return time.Time{}
}

// chargePeriod charges the next period of the current term.
func (t *transition) chargePeriod() {
	s := t.sub()
	k := s.BilledPeriods() + 1
	entry := t.installment(k)
	t.event(domain.EventPeriodCharged, SystemActor.String(), map[string]any{
		"term_number": s.TermNumber, "period": k, "amount_minor": entry.AmountMinor,
		"period_start": entry.PeriodStart, "period_end": entry.PeriodEnd,
	})
}

// installment charges period k of the current term: its share of unit price
// × quantity (domain.Installment) over the period's bounds. Period 1 keeps the
// key of a whole term's charge, charge:<id>:<term>; period k ≥ 2 is
// charge:<id>:<term>:<k>.
func (t *transition) installment(k int) domain.LedgerEntry {
	s := t.sub()
	n := t.next.periods()
	amount := domain.Installment(t.next.Plan.UnitPriceMinor*int64(s.Quantity), n, k)
	id := fmt.Sprintf("charge:%s:%d", s.ID, s.TermNumber)
	if k > 1 {
		id = fmt.Sprintf("%s:%d", id, k)
	}
	start, end := *s.TermStart, *s.TermEnd
	if n > 1 {
		start, end = domain.BillingPeriod(*s.TermStart, t.next.Plan.Term, s.BillingFrequency, k)
		if k == n {
			end = *s.TermEnd
		}
	}
	t.next.TermBilledMinor += amount
	s.PeriodsBilled = k
	return t.ledgerOver(domain.LedgerCharge, id, amount, start, end)
}

// currentPeriod is the bounds of the period billed last and the number of
// periods in the term: a quantity change prorates the rest of it at the
// per-period price.
func (t *transition) currentPeriod() (start, end time.Time, n int) {
	s := t.sub()
	n = t.next.periods()
	if n <= 1 {
		return *s.TermStart, *s.TermEnd, 1
	}
	start, end = domain.BillingPeriod(*s.TermStart, t.next.Plan.Term, s.BillingFrequency, s.BilledPeriods())
	if s.BilledPeriods() == n {
		end = *s.TermEnd
	}
	return start, end, n
}

// adoptPendingFrequency makes a pending billing frequency the current one
// (at renewal, after a plan change due then, before the new term's periods
// are laid out); one the plan does not offer (any more) is dropped.
func (t *transition) adoptPendingFrequency() (string, bool) {
	s := t.sub()
	pending := s.PendingBillingFrequency
	if pending == nil {
		return "", false
	}
	s.PendingBillingFrequency = nil
	if !t.next.Plan.AllowsFrequency(*pending) {
		return "", false
	}
	s.BillingFrequency = *pending
	return s.BillingFrequency, true
}

// changeFrequency applies a PATCH of billing_frequency. Before billing starts
// it changes the frequency at once; afterwards it is pending until the next
// renewal, and asking for the current frequency drops a pending change.
func (t *transition) changeFrequency(freq string, actor string) {
	s := t.sub()
	current := t.next.frequency()
	switch {
	case s.TermNumber == 0 && freq != current:
		s.BillingFrequency = freq
	case s.TermNumber == 0:
		return
	case freq == current && s.PendingBillingFrequency != nil:
		s.PendingBillingFrequency = nil
	case freq != current && !equal(s.PendingBillingFrequency, &freq):
		s.PendingBillingFrequency = &freq
	default:
		return
	}
	t.event(domain.EventBillingFrequencyChanged, actor, map[string]any{
		"billing_frequency": t.next.frequency(), "pending_billing_frequency": s.PendingBillingFrequency,
	})
}

// checkFrequency admits a billing frequency the subscription's plan offers.
func (w *subscriptionWorkflow) checkFrequency(freq string) error {
	if p := w.st.Plan; !p.AllowsFrequency(freq) {
		return problem(ErrValidationFailed, "billing_frequency must be one of %s", strings.Join(p.Frequencies(), ", "))
	}
	return nil
}
