package domain

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPeriodsPerTerm(t *testing.T) {
	for _, c := range []struct {
		term, freq string
		want       int
	}{
		{"P1Y", "", 1}, {"P1Y", "P1Y", 1}, {"P1Y", "P1M", 12}, {"P1Y", "P3M", 4}, {"P1Y", "P6M", 2},
		{"P2Y", "P1Y", 2}, {"P2Y", "P1M", 24}, {"P1M", "P1M", 1}, {"PT12S", "PT3S", 4}, {"PT1H", "PT5M", 12},
		{"P4W", "P1W", 4}, {"P52W", "P1W", 52}, {"P30D", "P1D", 30}, {"P1Y", "P12M", 1},
	} {
		n, err := PeriodsPerTerm(c.term, c.freq)
		require.NoError(t, err, "%s / %s", c.term, c.freq)
		assert.Equal(t, c.want, n, "%s / %s", c.term, c.freq)
	}
	for _, c := range []struct{ term, freq string }{
		{"P1M", "P1W"}, {"P1Y", "P1W"}, {"P1Y", "P5M"}, {"P1M", "P1Y"}, {"P1Y", "P30D"}, {"PT12S", "PT5S"},
		{"P1Y", "junk"}, {"P1M", "P1D"}, {"P53W", "P1W"}, {"P1M1D", "P1M"},
	} {
		_, err := PeriodsPerTerm(c.term, c.freq)
		assert.Error(t, err, "%s / %s", c.term, c.freq)
	}
}

// Period k is computed from the term start, never by accumulating: month
// ends do not drift, and the last period ends exactly with the term.
func TestBillingPeriodBoundsFromTheTermStart(t *testing.T) {
	start := time.Date(2031, time.January, 31, 10, 0, 0, 0, time.UTC)
	date := func(m time.Month, d int) time.Time { return time.Date(2031, m, d, 10, 0, 0, 0, time.UTC) }
	s, e := BillingPeriod(start, "P1Y", "P1M", 1)
	assert.Equal(t, start, s)
	assert.Equal(t, date(time.March, 3), e, "Jan 31 + 1 month, as time.AddDate and the term arithmetic have it")
	s, e = BillingPeriod(start, "P1Y", "P1M", 3)
	assert.Equal(t, date(time.March, 31), s, "2 months after Jan 31, not Mar 3 + 1 month")
	assert.Equal(t, date(time.May, 1), e)
	s, e = BillingPeriod(start, "P1Y", "P1M", 12)
	assert.Equal(t, date(time.December, 31), s)
	assert.Equal(t, MustAdd(start, "P1Y"), e, "the 12th period ends with the term")
	for k := 1; k < 12; k++ {
		_, end := BillingPeriod(start, "P1Y", "P1M", k)
		next, _ := BillingPeriod(start, "P1Y", "P1M", k+1)
		assert.Equal(t, end, next, "periods %d and %d touch", k, k+1)
	}
	s, e = BillingPeriod(start, "P1Y", "", 1)
	assert.Equal(t, start, s)
	assert.Equal(t, MustAdd(start, "P1Y"), e, "once per term: the term")
	_, e = BillingPeriod(start, "PT12S", "PT3S", 4)
	assert.Equal(t, start.Add(12*time.Second), e)
}

func TestInstallmentsAddUpToTheTermPrice(t *testing.T) {
	for _, c := range []struct {
		price int64
		n     int
	}{{7000, 12}, {1, 12}, {0, 4}, {999_999_999_999, 52}, {1200, 1}, {11, 4}} {
		var total int64
		for k := 1; k <= c.n; k++ {
			a := Installment(c.price, c.n, k)
			if k < c.n {
				assert.Equal(t, c.price/int64(c.n), a)
			}
			total += a
		}
		assert.Equal(t, c.price, total, "%d in %d", c.price, c.n)
	}
	assert.Equal(t, int64(587), Installment(7000, 12, 12))
}

func TestPlanFrequencies(t *testing.T) {
	p := Plan{ID: "p", Term: "P1Y", UnitPriceMinor: 1, Currency: "USD", MinQuantity: 1, MaxQuantity: 1,
		CancellationWindow: "P7D", ActivationDeadline: "P30D"}
	require.NoError(t, p.Validate())
	assert.Equal(t, []string{"P1Y"}, p.Frequencies(), "once per term by default")
	p.BillingFrequency, p.BillingFrequencies = "P1M", []string{"P3M", "P1M", "P1Y"}
	require.NoError(t, p.Validate())
	assert.Equal(t, []string{"P1M", "P3M", "P1Y"}, p.Frequencies())
	assert.True(t, p.AllowsFrequency("P3M"))
	assert.False(t, p.AllowsFrequency("P6M"))
	p.BillingFrequencies = []string{"P1W"}
	assert.Error(t, p.Validate(), "a year is no whole number of weeks")
	p.BillingFrequencies, p.BillingFrequency = nil, "P5M"
	assert.Error(t, p.Validate())
}

func TestUpcomingCharges(t *testing.T) {
	start := time.Date(2031, time.January, 1, 0, 0, 0, 0, time.UTC)
	end := MustAdd(start, "P1Y")
	plan := Plan{Term: "P1Y", UnitPriceMinor: 1000, Currency: "EUR", BillingFrequency: "P3M"}
	s := Subscription{Status: StatusActive, Quantity: 7, TermNumber: 2, TermStart: &start, TermEnd: &end,
		BillingFrequency: "P3M", PeriodsBilled: 2, AutoRenew: true}
	up := UpcomingCharges(s, plan)
	require.Len(t, up, 3)
	assert.Equal(t, UpcomingCharge{TermNumber: 2, Period: 3, PeriodStart: MustAdd(start, "P6M"), PeriodEnd: MustAdd(start, "P9M"),
		AmountMinor: 1750, Currency: "EUR"}, up[0])
	assert.Equal(t, 4, up[1].Period)
	assert.Equal(t, UpcomingCharge{TermNumber: 3, Period: 1, PeriodStart: end, PeriodEnd: MustAdd(end, "P3M"), AmountMinor: 1750, Currency: "EUR"}, up[2])

	yearly := "P1Y"
	s.PendingBillingFrequency = &yearly
	up = UpcomingCharges(s, plan)
	assert.Equal(t, int64(7000), up[2].AmountMinor, "the next term at the pending frequency")
	assert.Equal(t, MustAdd(end, "P1Y"), up[2].PeriodEnd)

	// The catalog's plan was re-priced since purchase: the charges to come are
	// at the price the workflow carries (the snapshot's), to the cent.
	carried, currency := int64(900), "EUR"
	s.PendingBillingFrequency, s.UnitPriceMinor, s.Currency = nil, &carried, &currency
	repriced := plan
	repriced.UnitPriceMinor = 1300
	up = UpcomingCharges(s, repriced)
	require.Len(t, up, 3)
	for _, u := range up {
		assert.Equal(t, int64(900*7/4), u.AmountMinor, "period %d of term %d", u.Period, u.TermNumber)
		assert.Equal(t, "EUR", u.Currency)
	}
	s.UnitPriceMinor, s.Currency = nil, nil
	assert.Equal(t, int64(1300*7/4), UpcomingCharges(s, repriced)[0].AmountMinor, "a row without the carried price: the catalog's")

	// The catalog's term was changed since purchase (a yearly plan made
	// two-yearly): the periods follow the term the workflow carries.
	carriedTerm := "P1Y"
	s.PlanTerm = &carriedTerm
	longer := plan
	longer.Term = "P2Y"
	up = UpcomingCharges(s, longer)
	require.Len(t, up, 3, "periods 3 and 4 of a one-year term, then the renewal")
	assert.Equal(t, UpcomingCharge{TermNumber: 2, Period: 3, PeriodStart: MustAdd(start, "P6M"), PeriodEnd: MustAdd(start, "P9M"),
		AmountMinor: 1750, Currency: "EUR"}, up[0])
	assert.Equal(t, UpcomingCharge{TermNumber: 3, Period: 1, PeriodStart: end, PeriodEnd: MustAdd(end, "P3M"), AmountMinor: 1750, Currency: "EUR"}, up[2])
	s.PlanTerm = nil
	assert.Len(t, UpcomingCharges(s, longer), 7, "a row without the carried term: the catalog's (8 periods, 2 billed)")

	// A downgrade scheduled for the renewal: the rest of this term at the
	// current price, the next term at the target plan's (the workflow's). Not
	// yet decided (awaiting the publisher): the current price.
	basic := int64(600)
	s.PendingPlanChange = &PlanChange{PlanID: "basic", Kind: PlanChangeDowngrade, Effective: PlanChangeRenewal,
		Stage: PlanChangeScheduled, UnitPriceMinor: &basic}
	up = UpcomingCharges(s, plan)
	require.Len(t, up, 3)
	assert.Equal(t, int64(1750), up[0].AmountMinor, "this term stays on the current plan")
	assert.Equal(t, int64(600*7/4), up[2].AmountMinor, "the next term on the scheduled plan")
	s.PendingPlanChange.Stage = PlanChangeAwaitingPublisher
	assert.Equal(t, int64(1750), UpcomingCharges(s, plan)[2].AmountMinor, "a change the publisher may still refuse")
	s.PendingPlanChange = nil

	s.AutoRenew, s.PeriodsBilled = false, 4
	assert.Empty(t, UpcomingCharges(s, plan))
	s.Status = StatusCancelled
	assert.Empty(t, UpcomingCharges(s, plan))
}

// The next bill date is the next period's start while the term has periods
// to charge (with or without auto_renew), then the renewal; the days until
// renewal count to the term end either way.
func TestNextBillDateIsTheNextPeriod(t *testing.T) {
	start := time.Date(2031, time.January, 1, 0, 0, 0, 0, time.UTC)
	end := MustAdd(start, "P1Y")
	now := start.Add(24 * time.Hour)
	s := Subscription{Status: StatusActive, TermNumber: 1, TermStart: &start, TermEnd: &end, BillingFrequency: "P1M", PeriodsBilled: 1, AutoRenew: true}
	require.NotNil(t, s.NextBillDate())
	assert.Equal(t, MustAdd(start, "P1M"), *s.NextBillDate())
	assert.Equal(t, 364, *s.DaysUntilRenewal(now))
	s.AutoRenew = false
	assert.Equal(t, MustAdd(start, "P1M"), *s.NextBillDate(), "the term's own periods are charged without auto_renew")
	assert.Nil(t, s.DaysUntilRenewal(now))
	s.PeriodsBilled = 12
	assert.Nil(t, s.NextBillDate(), "every period charged, no renewal")
	s.AutoRenew = true
	assert.Equal(t, end, *s.NextBillDate())
	once := Subscription{Status: StatusActive, TermNumber: 1, TermStart: &start, TermEnd: &end, BillingFrequency: "P1Y", PeriodsBilled: 1, AutoRenew: true}
	assert.Equal(t, end, *once.NextBillDate(), "billed once per term: the renewal, as before")
	once.BillingFrequency, once.PeriodsBilled = "", 0
	assert.Equal(t, end, *once.NextBillDate())
	once.Status = StatusSuspended
	assert.Nil(t, once.NextBillDate())
}
