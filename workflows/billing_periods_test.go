package workflows

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/partnerhub/fulfillment/domain"
)

// The fixtures of billing periods: the hour-long term of the harness billed
// every 5 minutes (12 periods), 1000 minor units a seat, 7 seats: a term of
// 7000 is 11 installments of 583 and a last one of 587.
//
//	t0+3m   active: period 1 [3m, 8m) charged; period k starts at 3m + (k-1)×5m
//	t0+63m  term end: renewal, period 1 of term 2
const (
	periodLength = 5 * time.Minute
	periodPrice  = int64(1000)
	periodSeats  = 7
)

func withPeriods(freq string, allowed ...string) func(*State) {
	return func(in *State) {
		in.Plan.UnitPriceMinor = periodPrice
		in.Plan.BillingFrequency = freq
		in.Plan.BillingFrequencies = allowed
		in.Subscription.BillingFrequency = freq
		in.Subscription.Quantity = periodSeats
	}
}

// periodStart is when period k of term 1 starts.
func periodStart(k int) time.Duration { return testActivateAt + time.Duration(k-1)*periodLength }

// chargesOfTerm are the charges of one term, in order.
func (f *fakeStore) chargesOfTerm(term int) []domain.LedgerEntry {
	var out []domain.LedgerEntry
	for _, l := range f.LedgerOfKind(domain.LedgerCharge) {
		if l.TermNumber == term {
			out = append(out, l)
		}
	}
	return out
}

func sum(entries []domain.LedgerEntry) int64 {
	var total int64
	for _, l := range entries {
		total += l.AmountMinor
	}
	return total
}

// Each of the 12 periods is charged once, at its start, over its bounds, and
// the term's charges add up to the term price to the cent. History stays
// bounded: one timer and one save per period.
func TestEachPeriodChargedOnceSummingToTheTermPrice(t *testing.T) {
	h := newHarness(t)
	timers := 0
	h.env.SetOnTimerScheduledListener(func(string, time.Duration) { timers++ })
	h.fulfil()
	h.suggestContinueAsNew(termEnd + time.Minute)
	h.run(newInput("sub-per", withPeriods("PT5M")))
	next := h.continued()

	charges := h.store.chargesOfTerm(1)
	require.Len(t, charges, 12)
	for i, c := range charges {
		k := i + 1
		id := fmt.Sprintf("charge:sub-per:1:%d", k)
		if k == 1 {
			id = "charge:sub-per:1" // the key of a whole term's charge, as before
		}
		assert.Equal(t, id, c.ID)
		want := int64(583)
		if k == 12 {
			want = 587
		}
		assert.Equal(t, want, c.AmountMinor, "period %d", k)
		assert.Equal(t, at(periodStart(k)), c.PeriodStart, "period %d", k)
		assert.Equal(t, at(periodStart(k+1)), c.PeriodEnd, "period %d", k)
		assert.Equal(t, at(periodStart(k)), c.CreatedAt, "period %d charged at its start", k)
	}
	assert.Equal(t, at(termEnd), charges[11].PeriodEnd, "the last period ends with the term")
	assert.Equal(t, periodPrice*periodSeats, sum(charges), "the installments add up to the term price")

	events := h.store.EventsOfType(domain.EventPeriodCharged)
	require.Len(t, events, 11, "period 1 is charged by billing_started")
	assert.Equal(t, jsonOf(map[string]any{
		"term_number": 1, "period": 2, "amount_minor": 583, "period_start": at(periodStart(2)), "period_end": at(periodStart(3)),
	}), events[0].Detail)

	// Term 2 starts with its first period; the count starts again.
	renewal := h.store.chargesOfTerm(2)
	require.Len(t, renewal, 1)
	assert.Equal(t, "charge:sub-per:2", renewal[0].ID)
	assert.Equal(t, int64(583), renewal[0].AmountMinor)
	assert.Equal(t, at(termEnd), renewal[0].PeriodStart)
	assert.Equal(t, at(termEnd+periodLength), renewal[0].PeriodEnd)
	assert.Equal(t, 1, next.Subscription.PeriodsBilled)
	assert.Equal(t, int64(583), next.TermBilledMinor)
	assert.Equal(t, "PT5M", next.Subscription.BillingFrequency)

	// Bounded history: the activation deadline, one timer per later period
	// and the term end, then term 2's period 2 (the run renewed in place);
	// one save each for purchase, both callbacks, the 11 periods and the
	// renewal.
	assert.Equal(t, 1+11+1+1, timers)
	assert.Len(t, h.store.tried, 3+11+1)
	h.store.requireConsistent(t)
}

// More seats in the middle of period 3 prorate its remaining 3 of 5 minutes
// at the per-period price; later periods charge the new quantity's
// installments.
func TestQuantityChangeProratesTheRestOfThePeriod(t *testing.T) {
	h := newHarness(t)
	h.fulfil()
	when := periodStart(3) + 2*time.Minute
	more := h.update(when, UpdateChange, "more", ChangeRequest{MessageID: "more", Actor: admin, Quantity: ptr(9)})
	h.suggestContinueAsNew(termEnd + time.Minute)
	h.run(newInput("sub-perq", withPeriods("PT5M")))
	h.continued()

	more.applied(t)
	prorations := h.store.LedgerOfKind(domain.LedgerProration)
	require.Len(t, prorations, 1)
	// 2 seats × 1000 / 12 periods × 3/5 of the period = 100.
	assert.Equal(t, int64(100), prorations[0].AmountMinor)
	assert.EqualValues(t, 100, h.store.Event(t, domain.EventQuantityChanged).Detail["proration_minor"])

	charges := h.store.chargesOfTerm(1)
	require.Len(t, charges, 12)
	for i, c := range charges {
		want := int64(583) // 7 seats
		if i >= 3 {
			want = 750 // 9 seats: 9000 / 12
		}
		assert.Equal(t, want, c.AmountMinor, "period %d", i+1)
	}
	assert.Equal(t, int64(3*583+9*750+100), sum(charges)+sum(prorations))
	assert.Equal(t, int64(750), h.store.chargesOfTerm(2)[0].AmountMinor, "the next term bills the new quantity")
}

// A frequency PATCHed mid-term waits for the next term: term 1 keeps its 12
// periods, term 2 is billed in 4, in the same run (renewed in place), and
// so is term 3.
func TestFrequencyChangeAppliesAtTheNextTerm(t *testing.T) {
	h := newHarness(t)
	h.fulfil()
	change := h.update(10*time.Minute, UpdateChange, "freq", ChangeRequest{MessageID: "freq", Actor: admin, BillingFrequency: ptr("PT15M")})
	during := h.queryAt(30 * time.Minute)
	term3 := termEnd + testTerm
	h.suggestContinueAsNew(term3 + time.Minute)
	h.run(newInput("sub-perf", withPeriods("PT5M", "PT15M", "PT1H")))
	next := h.continued()

	s := change.applied(t)
	assert.Equal(t, "PT5M", s.BillingFrequency)
	assert.Equal(t, "PT15M", *s.PendingBillingFrequency)
	assert.Equal(t, "PT15M", *during.PendingBillingFrequency)
	ev := h.store.Event(t, domain.EventBillingFrequencyChanged)
	assert.Equal(t, "agent:alice", ev.Actor)
	assert.Equal(t, jsonOf(map[string]any{"billing_frequency": "PT5M", "pending_billing_frequency": "PT15M"}), ev.Detail)
	require.Len(t, h.store.chargesOfTerm(1), 12, "the current term keeps its frequency")

	term2 := h.store.chargesOfTerm(2)
	require.Len(t, term2, 4)
	assert.Equal(t, "charge:sub-perf:2", term2[0].ID)
	assert.Equal(t, at(termEnd+15*time.Minute), term2[0].PeriodEnd)
	for i, c := range term2 {
		if i > 0 {
			assert.Equal(t, fmt.Sprintf("charge:sub-perf:2:%d", i+1), c.ID)
		}
		assert.Equal(t, int64(1750), c.AmountMinor, "7000 in 4 installments")
	}
	assert.Equal(t, at(term3), term2[3].PeriodEnd)
	renewed := h.store.EventsOfType(domain.EventRenewed)
	require.Len(t, renewed, 2)
	assert.Equal(t, "PT15M", renewed[0].Detail["billing_frequency"])
	assert.NotContains(t, renewed[1].Detail, "billing_frequency", "adopted once")
	require.Len(t, h.store.chargesOfTerm(3), 1)
	assert.Equal(t, "PT15M", next.Subscription.BillingFrequency)
	assert.Nil(t, next.Subscription.PendingBillingFrequency)
	assert.Equal(t, 3, next.Subscription.TermNumber)
	assert.Equal(t, 1, next.Subscription.PeriodsBilled)
}

// PATCH back to the current frequency drops the pending one; the same again
// is a no-op; a frequency the plan does not offer is refused.
func TestFrequencyPatchBackClearsAndNoOpIsRefused(t *testing.T) {
	h := newHarness(t)
	h.fulfil()
	set := h.update(10*time.Minute, UpdateChange, "f1", ChangeRequest{MessageID: "f1", Actor: admin, BillingFrequency: ptr("PT15M")})
	back := h.update(11*time.Minute, UpdateChange, "f2", ChangeRequest{MessageID: "f2", Actor: admin, BillingFrequency: ptr("PT5M")})
	again := h.update(12*time.Minute, UpdateChange, "f3", ChangeRequest{MessageID: "f3", Actor: admin, BillingFrequency: ptr("PT5M")})
	odd := h.update(13*time.Minute, UpdateChange, "f4", ChangeRequest{MessageID: "f4", Actor: admin, BillingFrequency: ptr("PT7M")})
	h.run(newInput("sub-perb", withPeriods("PT5M", "PT15M"), withoutAutoRenew))

	assert.Equal(t, "PT15M", *set.applied(t).PendingBillingFrequency)
	assert.Nil(t, back.applied(t).PendingBillingFrequency)
	assert.Nil(t, again.unchanged(t).PendingBillingFrequency)
	odd.rejectedWith(t, ErrValidationFailed)
	assert.Len(t, h.store.EventsOfType(domain.EventBillingFrequencyChanged), 2)
	assert.Equal(t, domain.StatusExpired, h.result().Status)
	assert.Len(t, h.store.chargesOfTerm(1), 12)
}

// Before billing starts, a frequency PATCH takes effect at once: the first
// term is billed at it.
func TestFrequencyPatchBeforeBillingAppliesToTheFirstTerm(t *testing.T) {
	h := newHarness(t)
	change := h.update(time.Minute, UpdateChange, "f", ChangeRequest{MessageID: "f", Actor: admin, BillingFrequency: ptr("PT1H")})
	h.fulfil()
	h.run(newInput("sub-perp", withPeriods("PT5M", "PT1H"), withoutAutoRenew))

	s := change.applied(t)
	assert.Equal(t, "PT1H", s.BillingFrequency)
	assert.Nil(t, s.PendingBillingFrequency)
	charges := h.store.chargesOfTerm(1)
	require.Len(t, charges, 1)
	assert.Equal(t, periodPrice*periodSeats, charges[0].AmountMinor)
	assert.Equal(t, at(termEnd), charges[0].PeriodEnd)
}

// No period is charged while suspended; the periods whose start passed are
// charged at once on reinstatement, each over its own bounds.
func TestSuspendedPeriodsAreChargedOnReinstatement(t *testing.T) {
	h := newHarness(t)
	h.fulfil()
	h.update(9*time.Minute, UpdatePaymentFailed, "pf", PaymentRequest{MessageID: "pf", Actor: billing})
	h.update(25*time.Minute, UpdatePaymentReceived, "pr", PaymentRequest{MessageID: "pr", Actor: billing})
	h.run(newInput("sub-pers", withPeriods("PT5M"), withoutAutoRenew))

	assert.Equal(t, domain.StatusExpired, h.result().Status)
	charges := h.store.chargesOfTerm(1)
	require.Len(t, charges, 12)
	for i, c := range charges {
		k := i + 1
		assert.Equal(t, at(periodStart(k)), c.PeriodStart, "period %d", k)
		switch {
		case k <= 2:
			assert.Equal(t, at(periodStart(k)), c.CreatedAt, "period %d before the suspension", k)
		case k <= 5: // periods 3, 4, 5 started at 13m, 18m, 23m, while suspended
			assert.Equal(t, at(25*time.Minute), c.CreatedAt, "period %d charged on reinstatement", k)
		default:
			assert.Equal(t, at(periodStart(k)), c.CreatedAt, "period %d", k)
		}
	}
	assert.Equal(t, periodPrice*periodSeats, sum(charges))
	h.store.requireConsistent(t)
}

// A cancel inside the window refunds every period billed so far, and the
// prorations.
func TestCancelInsideWindowRefundsEveryBilledPeriod(t *testing.T) {
	h := newHarness(t)
	h.fulfil()
	h.update(9*time.Minute, UpdateChange, "more", ChangeRequest{MessageID: "more", Actor: admin, Quantity: ptr(8)})
	cancel := h.update(12*time.Minute, UpdateCancel, "c", EndRequest{MessageID: "c", Actor: admin})
	h.run(newInput("sub-perc", withPeriods("PT5M")))

	assert.Equal(t, domain.StatusCancelled, cancel.applied(t).Status)
	require.Len(t, h.store.chargesOfTerm(1), 2, "periods 1 and 2 (8m) were billed")
	refunds := h.store.LedgerOfKind(domain.LedgerRefund)
	require.Len(t, refunds, 1)
	assert.Equal(t, int64(0), h.store.Balance(), "everything billed comes back")
	assert.Less(t, refunds[0].AmountMinor, -2*int64(583))
}

// A run that continues as new mid-term carries the count of billed periods:
// the next run charges the following period, none twice.
func TestContinueAsNewMidTermKeepsTheCount(t *testing.T) {
	h := newHarness(t)
	h.fulfil()
	h.at(20*time.Minute, func() { h.env.SetContinueAsNewSuggested(true) })
	h.run(newInput("sub-percan", withPeriods("PT5M")))
	next := h.continued()
	require.Equal(t, 4, next.Subscription.PeriodsBilled, "periods 1..4 (3m, 8m, 13m, 18m)")
	assert.Equal(t, int64(4*583), next.TermBilledMinor)

	h2 := newHarnessAt(t, h.env.Now())
	h2.suggestContinueAsNew(at(termEnd).Sub(h.env.Now()) + time.Minute)
	h2.run(next)
	h2.continued()
	rest := h2.store.chargesOfTerm(1)
	require.Len(t, rest, 8)
	assert.Equal(t, "charge:sub-percan:1:5", rest[0].ID)
	assert.Equal(t, at(periodStart(5)), rest[0].CreatedAt)
	assert.Equal(t, periodPrice*periodSeats, sum(h.store.chargesOfTerm(1))+sum(rest))
}

// Period starts that pass while the database is down are charged once each
// when it is back: the charge is adopted only with its write, retried
// without limit, and the next period waits for the one before.
func TestPeriodsDuringOutageAreChargedOnceEach(t *testing.T) {
	h := newHarness(t)
	h.fulfil()
	h.outage(periodStart(3)-time.Minute, periodStart(5)+time.Minute)
	during := h.queryAt(periodStart(4) + time.Minute)
	h.run(newInput("sub-pero", withPeriods("PT5M"), withoutAutoRenew))

	assert.Equal(t, 2, during.PeriodsBilled, "nothing is adopted before it is saved")
	charges := h.store.chargesOfTerm(1)
	require.Len(t, charges, 12)
	assert.Equal(t, periodPrice*periodSeats, sum(charges))
	for i, c := range charges {
		assert.Equal(t, at(periodStart(i+1)), c.PeriodStart, "period %d over its own bounds", i+1)
	}
	assert.Greater(t, len(h.store.tried), len(h.store.Changes()), "writes were retried through the outage")
	h.store.requireConsistent(t)
}

// A run carried over from before billing periods (no frequency, no count of
// periods billed, mid-term) bills its term once, as before: no period
// charge, the renewal at the term's price.
func TestStateFromBeforeBillingPeriodsBillsOncePerTerm(t *testing.T) {
	h := newHarness(t)
	h.fulfil()
	h.suggestContinueAsNew(termEnd + time.Minute)
	h.run(newInput("sub-old"))
	carried := h.continued()
	carried.Subscription.PeriodsBilled = 0 // as a run saved before billing periods carries it
	carried.Subscription.BillingFrequency = ""

	h2 := newHarnessAt(t, h.env.Now())
	h2.suggestContinueAsNew(testTerm) // a minute after term 3 starts
	h2.run(carried)
	h2.continued()
	assert.Empty(t, h2.store.EventsOfType(domain.EventPeriodCharged))
	charges := h2.store.LedgerOfKind(domain.LedgerCharge)
	require.Len(t, charges, 1)
	assert.Equal(t, "charge:sub-old:3", charges[0].ID)
	assert.Equal(t, unitPrice*testQuantity, charges[0].AmountMinor)
}

// A plan change mid-term prorates the rest of the current billing period at
// the per-period price difference; the later periods charge the new plan's
// installments. A plan that is not billed at the subscription's frequency is
// refused.
func TestPlanChangeProratesTheCurrentPeriod(t *testing.T) {
	premium := premiumPlan()
	premium.BillingFrequency = "PT5M"
	monthlyless := premiumPlan() // billed once per term only
	h := newHarness(t)
	h.fulfil()
	refused := h.update(periodStart(3)+time.Minute, UpdateChangePlan, "pc-no", changePlan("pc-no", monthlyless))
	h.update(periodStart(3)+time.Minute, UpdateChangePlan, "pc-up", changePlan("pc-up", premium))
	h.run(newInput("sub-perpc", withPeriods("PT5M"), withoutAutoRenew, withVeto("PT1M")))

	refused.rejectedWith(t, ErrValidationFailed)
	assert.Equal(t, domain.StatusExpired, h.result().Status)
	prorations := h.store.LedgerOfKind(domain.LedgerProration)
	require.Len(t, prorations, 1)
	// (2000 − 1000) × 7 seats / 12 periods × 3 of the period's 5 minutes left = 350.
	assert.Equal(t, int64(350), prorations[0].AmountMinor)
	charges := h.store.chargesOfTerm(1)
	require.Len(t, charges, 12)
	for i, c := range charges {
		want := int64(583)
		switch {
		case i == 11:
			want = 14000 - 11*1166
		case i >= 3:
			want = 1166 // 2000 × 7 / 12
		}
		assert.Equal(t, want, c.AmountMinor, "period %d", i+1)
	}
	h.store.requireConsistent(t)
}
