package wire_test

import (
	"encoding/json"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/partnerhub/fulfillment/domain"
	"github.com/partnerhub/fulfillment/wire"
)

func activeSubscription(i int) domain.Subscription {
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).Add(time.Duration(i) * time.Minute)
	termEnd, window := created.AddDate(1, 0, 0), created.AddDate(0, 0, 7)
	nickname, site := "Finance team", "https://woodgrove.contoso.example"
	id := fmt.Sprintf("sub-%08d", i)
	return domain.Subscription{
		ID: id, PartnerID: "fabrikam", CustomerID: "woodgrove", PublisherID: "contoso", OfferID: "analytics",
		PlanID: "annual", Quantity: 5, Nickname: &nickname, AutoRenew: true, LinkedSubscriptionIDs: []string{},
		EntitlementNumber: domain.EntitlementNumber(id), SiteURL: &site, LicensesAssigned: 3, FulfillmentConfirmed: true,
		Status: domain.StatusActive, TermNumber: 1, ActivationDeadline: created.AddDate(0, 0, 30),
		BillingStartedAt: &created, TermStart: &created, TermEnd: &termEnd, CancellationWindowEndsAt: &window,
		CreatedAt: created, UpdatedAt: created, Version: 3,
	}
}

// BenchmarkRenderSubscription is one subscription's wire form, rendered as
// JSON (every GET and every callback answer).
func BenchmarkRenderSubscription(b *testing.B) {
	sub, now := activeSubscription(1), time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	b.ReportAllocs()
	for b.Loop() {
		if err := json.NewEncoder(io.Discard).Encode(wire.NewSubscription(sub, now, nil)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRenderListPage is a default page of GET /v1/subscriptions (50
// items) rendered as JSON, without the read.
func BenchmarkRenderListPage(b *testing.B) {
	subs := make([]domain.Subscription, 50)
	for i := range subs {
		subs[i] = activeSubscription(i)
	}
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	b.ReportAllocs()
	for b.Loop() {
		items := make([]wire.Subscription, 0, len(subs))
		for _, s := range subs {
			items = append(items, wire.NewSubscription(s, now, nil))
		}
		if err := json.NewEncoder(io.Discard).Encode(map[string]any{"items": items, "next_cursor": "czoxMjM0NQ"}); err != nil {
			b.Fatal(err)
		}
	}
}
