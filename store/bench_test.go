package store_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/partnerhub/fulfillment/domain"
	"github.com/partnerhub/fulfillment/store"
	"github.com/partnerhub/fulfillment/testenv"
)

// benchStore is a fresh database with the catalog the fixtures expect.
func benchStore(b *testing.B) *store.Store {
	b.Helper()
	ctx := context.Background()
	st, _ := testenv.Database(b)
	must := func(err error) {
		if err != nil {
			b.Fatal(err)
		}
	}
	must(st.UpsertPublisher(ctx, store.Publisher{ID: publisherID, Name: "Contoso", LandingURL: "https://contoso.example/setup"}))
	must(st.UpsertOffer(ctx, store.Offer{ID: offerID, PublisherID: publisherID, Name: "Contoso Analytics", Kind: domain.OfferKindSaaS}))
	must(st.UpsertPartner(ctx, store.Partner{ID: partnerID, Name: partnerID}))
	must(st.UpsertCustomer(ctx, store.Customer{PartnerID: partnerID, ID: customerID, Name: customerID}))
	return st
}

// BenchmarkSaveChange measures the one write behind every workflow
// transition: a first write (purchase, activation with its charge) against
// the same transition retried, which must add nothing. Compare the sub-
// benchmarks of one run with benchstat (make bench).
func BenchmarkSaveChange(b *testing.B) {
	ctx := context.Background()
	st := benchStore(b)
	b.Run("purchase", func(b *testing.B) {
		for i := range b.N {
			sub := subscription(fmt.Sprintf("bench-p-%d", i))
			if _, err := st.SaveChange(ctx, purchase(sub), []byte(fmt.Sprint("code-hash-", i))); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("activation", func(b *testing.B) {
		subs := make([]domain.Subscription, b.N)
		for i := range subs {
			subs[i] = subscription(fmt.Sprintf("bench-a-%d-%d", b.N, i))
			if _, err := st.SaveChange(ctx, domain.Change{Subscription: subs[i]}, nil); err != nil {
				b.Fatal(err)
			}
		}
		b.ResetTimer()
		for i := range b.N {
			if _, err := st.SaveChange(ctx, activation(subs[i]), nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("retried", func(b *testing.B) {
		sub := subscription(fmt.Sprintf("bench-r-%d", b.N))
		change := activation(sub)
		if _, err := st.SaveChange(ctx, change, nil); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for range b.N {
			if _, err := st.SaveChange(ctx, change, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkResolveReads is what a publisher's resolve reads before it
// answers: ResolveCode's one statement against the five it replaced (the
// code's subscription id, the subscription, its customer, its partner, its
// placement), on the same row. Compare the two with benchstat (make bench-go).
func BenchmarkResolveReads(b *testing.B) {
	ctx := context.Background()
	st := benchStore(b)
	code := []byte("bench-code-hash")
	sub := subscription("bench-resolve")
	if _, err := st.SaveChange(ctx, purchase(sub), code); err != nil {
		b.Fatal(err)
	}
	now := t0
	b.Run("one-statement", func(b *testing.B) {
		for b.Loop() {
			if _, err := st.ResolveCode(ctx, code, now); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("five-statements", func(b *testing.B) {
		for b.Loop() {
			var id string
			if err := st.DB().GetContext(ctx, &id, `SELECT subscription_id FROM authorization_codes WHERE code_hash = $1 AND expires_at > $2`, code, now); err != nil {
				b.Fatal(err)
			}
			s, err := st.Subscription(ctx, id)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := st.Customer(ctx, s.PartnerID, s.CustomerID); err != nil {
				b.Fatal(err)
			}
			if _, err := st.Partner(ctx, s.PartnerID); err != nil {
				b.Fatal(err)
			}
			if _, err := st.Placements(ctx, []string{id}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
