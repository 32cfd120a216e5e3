// Billing periods (issue 13, item 3): a term billed in installments, one per
// period of the billing frequency.
package domain

import (
	"fmt"
	"slices"
	"time"
)

// MaxBillingPeriods bounds the periods of one term, so the workflow's history
// per term stays bounded (a timer and a charge per period).
const MaxBillingPeriods = 52

// calendar is a period split the way AddTo applies it: whole months, whole
// days, then exact time.
type calendar struct {
	months, days int
	exact        time.Duration
}

func (p Period) calendar() calendar {
	d := p.d
	return calendar{
		months: int(d.Years)*12 + int(d.Months),
		days:   int(d.Weeks*7 + d.Days),
		exact:  time.Duration((d.Hours*3600 + d.Minutes*60 + d.Seconds) * float64(time.Second)),
	}
}

// AddTimes returns t shifted by k times the period, computed from t in one
// step (never by adding the period k times), so month ends do not drift:
// the third month after Jan 31 is Apr 30 + 1 day exactly as P3M would be.
func (p Period) AddTimes(t time.Time, k int) time.Time {
	c := p.calendar()
	return t.AddDate(0, k*c.months, k*c.days).Add(time.Duration(k) * c.exact)
}

// PeriodsPerTerm is how many billing periods of frequency freq make up term.
// The term must be a whole number of periods, unit by unit (months with
// months, days with days, time with time: P1Y/P1M = 12, P1Y/P3M = 4,
// PT12S/PT3S = 4; P1M/P1W and P1Y/P1W are refused, as no count of weeks is a
// month or a year), and at most MaxBillingPeriods. An empty freq is the term
// itself: one period.
func PeriodsPerTerm(term, freq string) (int, error) {
	t, err := ParsePeriod(term)
	if err != nil {
		return 0, err
	}
	if freq == "" || freq == term {
		return 1, nil
	}
	f, err := ParsePeriod(freq)
	if err != nil {
		return 0, err
	}
	tc, fc := t.calendar(), f.calendar()
	n := 0
	for _, pair := range [][2]int64{{int64(tc.months), int64(fc.months)}, {int64(tc.days), int64(fc.days)}, {int64(tc.exact), int64(fc.exact)}} {
		whole, part := pair[0], pair[1]
		switch {
		case part == 0 && whole == 0:
			continue
		case part == 0 || whole%part != 0:
			return 0, fmt.Errorf("term %s is not a whole number of billing periods %s", term, freq)
		}
		if k := int(whole / part); n == 0 {
			n = k
		} else if k != n {
			return 0, fmt.Errorf("term %s is not a whole number of billing periods %s", term, freq)
		}
	}
	if n < 1 {
		return 0, fmt.Errorf("term %s is not a whole number of billing periods %s", term, freq)
	}
	if n > MaxBillingPeriods {
		return 0, fmt.Errorf("term %s billed every %s makes %d periods; at most %d", term, freq, n, MaxBillingPeriods)
	}
	return n, nil
}

// BillingPeriod is the bounds of period k (1-based) of a term that starts at
// termStart and is billed every freq: [start + (k-1)×freq, start + k×freq).
// An empty freq is the term (one period).
func BillingPeriod(termStart time.Time, term, freq string, k int) (start, end time.Time) {
	if freq == "" {
		freq = term
	}
	p, err := ParsePeriod(freq)
	if err != nil {
		panic(err) // validated when the plan was stored
	}
	return p.AddTimes(termStart, k-1), p.AddTimes(termStart, k)
}

// Installment is what period k of n charges for a term priced termPrice:
// floor(termPrice/n), and the last period also the remainder, so the n
// installments add up to the term price exactly.
func Installment(termPrice int64, n, k int) int64 {
	if n <= 1 {
		return termPrice
	}
	each := termPrice / int64(n)
	if k == n {
		return termPrice - each*int64(n-1)
	}
	return each
}

// Frequency is the plan's default billing frequency: its BillingFrequency,
// or its term (one charge per term).
func (p Plan) Frequency() string {
	if p.BillingFrequency == "" {
		return p.Term
	}
	return p.BillingFrequency
}

// Frequencies are the billing frequencies a subscription of the plan may
// choose: BillingFrequencies, always with the default among them.
func (p Plan) Frequencies() []string {
	out := []string{p.Frequency()}
	for _, f := range p.BillingFrequencies {
		if !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return out
}

// AllowsFrequency reports whether freq is one of the plan's frequencies.
func (p Plan) AllowsFrequency(freq string) bool {
	return slices.Contains(p.Frequencies(), freq)
}

// validateFrequencies checks every billing frequency divides the term.
func (p Plan) validateFrequencies() error {
	for _, f := range p.Frequencies() {
		if _, err := PeriodsPerTerm(p.Term, f); err != nil {
			return fmt.Errorf("plan %s: billing frequency: %w", p.ID, err)
		}
	}
	return nil
}

// Periods is the number of billing periods in the subscription's current
// term (1 when it bills once per term).
func (s Subscription) Periods(term string) int {
	n, err := PeriodsPerTerm(term, s.BillingFrequency)
	if err != nil {
		return 1
	}
	return n
}

// BilledPeriods is how many periods of the current term have been charged.
// A billed subscription saved before billing periods existed has 0 and
// billed its one period.
func (s Subscription) BilledPeriods() int {
	if s.PeriodsBilled == 0 && s.TermNumber > 0 {
		return 1
	}
	return s.PeriodsBilled
}

// nextPeriodStart is the start of the current term's first period not
// charged yet, if one starts before the term ends.
func (s Subscription) nextPeriodStart() (time.Time, bool) {
	if s.BillingFrequency == "" || s.TermStart == nil || s.TermEnd == nil || s.TermNumber == 0 {
		return time.Time{}, false
	}
	p, err := ParsePeriod(s.BillingFrequency)
	if err != nil {
		return time.Time{}, false
	}
	next := p.AddTimes(*s.TermStart, s.BilledPeriods())
	return next, next.Before(*s.TermEnd)
}

// UpcomingCharge is a charge the subscription will make if nothing changes.
type UpcomingCharge struct {
	TermNumber  int       `json:"term_number"`
	Period      int       `json:"period"`
	PeriodStart time.Time `json:"period_start"`
	PeriodEnd   time.Time `json:"period_end"`
	AmountMinor int64     `json:"amount_minor"`
	Currency    string    `json:"currency"`
}

// UpcomingCharges lists the charges still to come in an active or suspended
// subscription's current term at its current quantity, then the next term's
// first charge when it renews (at the pending frequency, if one is set, and
// at the target plan's price when a plan change is scheduled for the
// renewal). They are priced at the price the subscription's workflow
// carries when the snapshot records it, else at the catalog plan's (see
// PricedPlan).
func UpcomingCharges(s Subscription, plan Plan) []UpcomingCharge {
	out := []UpcomingCharge{}
	if (s.Status != StatusActive && s.Status != StatusSuspended) || s.TermStart == nil || s.TermEnd == nil {
		return out
	}
	plan = s.PricedPlan(plan)
	price := plan.UnitPriceMinor * int64(s.Quantity)
	n := s.Periods(plan.Term)
	for k := s.BilledPeriods() + 1; k <= n; k++ {
		start, end := BillingPeriod(*s.TermStart, plan.Term, s.BillingFrequency, k)
		out = append(out, UpcomingCharge{TermNumber: s.TermNumber, Period: k, PeriodStart: start.UTC(), PeriodEnd: end.UTC(),
			AmountMinor: Installment(price, n, k), Currency: plan.Currency})
	}
	if s.AutoRenew {
		next := s
		if s.PendingBillingFrequency != nil {
			next.BillingFrequency = *s.PendingBillingFrequency
		}
		if pc := s.PendingPlanChange; pc != nil && pc.Effective == PlanChangeRenewal && pc.Stage == PlanChangeScheduled && pc.UnitPriceMinor != nil {
			price = *pc.UnitPriceMinor * int64(s.Quantity) // the renewal takes the new plan (same term and currency)
		}
		n := next.Periods(plan.Term)
		start, end := BillingPeriod(*s.TermEnd, plan.Term, next.BillingFrequency, 1)
		out = append(out, UpcomingCharge{TermNumber: s.TermNumber + 1, Period: 1, PeriodStart: start.UTC(), PeriodEnd: end.UTC(),
			AmountMinor: Installment(price, n, 1), Currency: plan.Currency})
	}
	return out
}
