package api

import (
	"bytes"
	"net/http"
	"strconv"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/partnerhub/fulfillment/vault"
)

// BenchmarkVerifySignature is the CPU of authenticating one publisher
// callback, as verifySignature does it without the database read: parse the
// header, open the sealed secret, verify the HMAC over the body. With
// rotation a publisher may hold two secrets; the second case matches on the
// second (the first is tried and fails).
func BenchmarkVerifySignature(b *testing.B) {
	v, err := vault.New(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		b.Fatal(err)
	}
	const current, next = "whsec_ZTJlLWNvbnRvc28tc2lnbmluZy1zZWNyZXQtMDE=", "whsec_ZTJlLWNvbnRvc28tc2lnbmluZy1zZWNyZXQtMDI="
	seal := func(s string) []byte {
		sealed, err := v.Seal([]byte(s))
		if err != nil {
			b.Fatal(err)
		}
		return sealed
	}
	body := []byte(`{"site_url":"https://woodgrove.contoso.example"}`)
	wh, err := standardwebhooks.NewWebhook(current)
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	sig, err := wh.Sign("msg_bench", now, body)
	if err != nil {
		b.Fatal(err)
	}
	header := http.Header{}
	header.Set(standardwebhooks.HeaderWebhookID, "msg_bench")
	header.Set(standardwebhooks.HeaderWebhookTimestamp, strconv.FormatInt(now.Unix(), 10))
	header.Set(standardwebhooks.HeaderWebhookSignature, sig)
	for _, bc := range []struct {
		name    string
		secrets [][]byte
	}{{"one-secret", [][]byte{seal(current)}}, {"rotated-second-matches", [][]byte{seal(next), seal(current)}}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ParseSignatureHeader(header.Get(standardwebhooks.HeaderWebhookSignature)); err != nil {
					b.Fatal(err)
				}
				ok := false
				for _, sealed := range bc.secrets {
					secret, err := v.Open(sealed)
					if err != nil {
						b.Fatal(err)
					}
					w, err := standardwebhooks.NewWebhook(string(secret))
					if err != nil {
						b.Fatal(err)
					}
					if w.Verify(body, header) == nil {
						ok = true
						break
					}
				}
				if !ok {
					b.Fatal("no secret verified the signature")
				}
			}
		})
	}
}

// benchPurchase has the purchase body's shape (the handler's own type may move).
type benchPurchase struct {
	CustomerID string  `json:"customer_id"`
	OfferID    string  `json:"offer_id"`
	PlanID     string  `json:"plan_id"`
	Quantity   *int    `json:"quantity"`
	Nickname   *string `json:"nickname"`
	AutoRenew  *bool   `json:"auto_renew"`
}

// BenchmarkDecodeStrict is the strict decoding of a purchase body.
func BenchmarkDecodeStrict(b *testing.B) {
	body := []byte(`{"customer_id":"woodgrove","offer_id":"analytics","plan_id":"annual","quantity":5,"nickname":"Finance team","auto_renew":true}`)
	b.ReportAllocs()
	for b.Loop() {
		var req benchPurchase
		if err := DecodeStrict(body, &req); err != nil {
			b.Fatal(err)
		}
	}
}
