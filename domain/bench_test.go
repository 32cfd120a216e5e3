package domain_test

import (
	"testing"
	"time"

	"github.com/partnerhub/fulfillment/domain"
)

// BenchmarkMustAdd is the date arithmetic of every transition that sets a
// deadline, a term or a window: the plan's ISO 8601 period is parsed on each
// call.
func BenchmarkMustAdd(b *testing.B) {
	t := time.Date(2026, 1, 31, 12, 0, 0, 0, time.UTC)
	for _, iso := range []string{"P1Y", "P30D", "PT4S", "P1M"} {
		b.Run(iso, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = domain.MustAdd(t, iso)
			}
		})
	}
}

// BenchmarkPeriodAddTo is the same addition with the period parsed once.
func BenchmarkPeriodAddTo(b *testing.B) {
	p, err := domain.ParsePeriod("P1Y")
	if err != nil {
		b.Fatal(err)
	}
	t := time.Date(2026, 1, 31, 12, 0, 0, 0, time.UTC)
	b.ReportAllocs()
	for b.Loop() {
		_ = p.AddTo(t)
	}
}

// BenchmarkDaysUntilRenewal is computed for every subscription rendered.
func BenchmarkDaysUntilRenewal(b *testing.B) {
	end := time.Date(2027, 1, 31, 12, 0, 0, 0, time.UTC)
	s := domain.Subscription{Status: domain.StatusActive, AutoRenew: true, TermEnd: &end}
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	b.ReportAllocs()
	for b.Loop() {
		_ = s.DaysUntilRenewal(now)
	}
}
