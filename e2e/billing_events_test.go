package e2e

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/partnerhub/fulfillment/domain"
	"github.com/partnerhub/fulfillment/testenv"
	"github.com/partnerhub/fulfillment/vault"
)

// billingSigner is a partner's billing system: it signs like a publisher
// (Standard Webhooks) with the partner's billing secret and names the partner.
type billingSigner struct {
	w       *world
	partner string
	secret  string
}

func (w *world) billingSystem(partner, secret string) billingSigner {
	return billingSigner{w: w, partner: partner, secret: secret}
}

// request signs raw under webhookID for POST /v1/billing/events.
func (b billingSigner) request(webhookID string, raw []byte) *http.Request {
	req := b.w.Publisher(b.partner, b.secret).SignedRequest(webhookID, "/v1/billing/events", raw)
	req.Header.Del("X-Publisher-Id")
	req.Header.Set("X-Partner-Id", b.partner)
	return req
}

func (b billingSigner) send(t *testing.T, body any) testenv.Response {
	t.Helper()
	raw, err := json.Marshal(body)
	require.NoError(t, err)
	return b.w.Send(b.request("msg_"+uuid.NewString(), raw))
}

// The partner's billing system reports a failed payment over HTTP, signed:
// the subscription is suspended (contacts emailed as by the operator's
// command); a forged message changes nothing; the same event again gets the
// same answer; a payment received reinstates it with the same term dates.
func TestBillingSystemEventsOverHTTP(t *testing.T) {
	t.Parallel()
	w, mp := mailWorld(t)
	sub := w.admin.Purchase(map[string]any{"customer_id": "woodgrove", "offer_id": "analytics", "plan_id": "annual",
		"quantity": 2, "customer_contact_email": "ann@woodgrove.example"})
	require.Equal(t, http.StatusCreated, sub.Status, sub.String())
	pending := w.admin.Purchase(map[string]any{"customer_id": "woodgrove", "offer_id": "analytics", "plan_id": "annual", "quantity": 1})
	require.Equal(t, http.StatusCreated, pending.Status, pending.String())
	active := w.fulfill(t, sub, 2)
	id := sub.Str("id")
	fabrikam := w.billingSystem("fabrikam", FabrikamBillingSecret)
	failed := map[string]any{"event_id": "evt_" + uuid.NewString(), "type": "payment_failed", "subscription_id": id,
		"reason": "card declined", "occurred_at": "2026-11-30T08:00:00Z"}

	// Forged: signed with another partner's secret, with a publisher's, or not signed at all.
	for name, forged := range map[string]billingSigner{
		"northwind's secret": w.billingSystem("fabrikam", NorthwindBillingSecret),
		"contoso's secret":   w.billingSystem("fabrikam", ContosoSecret),
	} {
		mustProblem(t, forged.send(t, failed), http.StatusUnauthorized, "unauthenticated", name)
	}
	mustProblem(t, w.admin.Do(http.MethodPost, "/v1/billing/events", failed), http.StatusUnauthorized, "unauthenticated", "a partner's API key")
	assert.Equal(t, "active", trustSubscription(t, w.admin, id).Str("status"), "a forged event changes nothing")
	assert.NotContains(t, trustEvents(t, w.admin, id), "suspended")

	// Another partner's billing system, an unknown subscription: 404 alike.
	northwind := w.billingSystem("northwind", NorthwindBillingSecret)
	foreign := northwind.send(t, failed)
	mustProblem(t, foreign, http.StatusNotFound, "not_found", "another partner's subscription")
	unknown := map[string]any{"event_id": "evt_" + uuid.NewString(), "type": "payment_failed", "subscription_id": "sub_nope"}
	mustProblem(t, fabrikam.send(t, unknown), http.StatusNotFound, "not_found", "an unknown subscription")
	mustProblem(t, fabrikam.send(t, map[string]any{"event_id": "evt_x", "type": "payment_failed", "subscription_id": id, "amount": 1}),
		http.StatusBadRequest, "invalid_request", "an unknown field")
	mustProblem(t, fabrikam.send(t, map[string]any{"event_id": "evt_y", "type": "refund", "subscription_id": id}),
		http.StatusBadRequest, "invalid_request", "an unknown type")
	mustProblem(t, fabrikam.send(t, map[string]any{"event_id": "evt_" + uuid.NewString(), "type": "payment_failed",
		"subscription_id": pending.Str("id")}), http.StatusConflict, "invalid_state", "payment failed on a pending subscription")

	// The payment failed: suspended, emailed; replayed, the same answer.
	raw, err := json.Marshal(failed)
	require.NoError(t, err)
	signed := fabrikam.request("msg_"+uuid.NewString(), raw)
	first := w.Send(signed)
	require.Equal(t, http.StatusOK, first.Status, first.String())
	assert.Equal(t, "suspended", first.Str("status"))
	assert.Equal(t, active.Str("term_end"), first.Str("term_end"))
	mail := waitMail(t, mp, "ann@woodgrove.example", "Contoso Analytics is suspended")
	assert.Contains(t, mail.Text, "does not renew")

	replayed := w.Send(fabrikam.request(signed.Header.Get("webhook-id"), raw)) // the same message again
	require.Equal(t, http.StatusOK, replayed.Status, replayed.String())
	assert.Equal(t, "true", replayed.Header.Get("Idempotent-Replayed"))
	assert.JSONEq(t, string(first.Raw), string(replayed.Raw), "a replayed event gets the first answer")
	again := fabrikam.send(t, failed) // redelivered by the billing system under a new webhook-id
	require.Equal(t, http.StatusOK, again.Status, again.String())
	assert.JSONEq(t, string(first.Raw), string(again.Raw))
	reused := map[string]any{"event_id": failed["event_id"], "type": "payment_received", "subscription_id": id}
	mustProblem(t, fabrikam.send(t, reused), http.StatusUnprocessableEntity, "idempotency_key_reused", "the same event_id for another event")
	mustProblem(t, northwind.send(t, failed), http.StatusNotFound, "not_found", "event ids are per partner: northwind's answer stands")

	var suspended int
	for _, e := range w.admin.Do(http.MethodGet, "/v1/subscriptions/"+id+"/events", nil).Body["items"].([]any) {
		ev := e.(map[string]any)
		if ev["type"] == "suspended" {
			suspended++
			assert.Equal(t, "billing:fabrikam", ev["actor"])
			assert.Equal(t, "card declined", ev["detail"].(map[string]any)["reason"])
			assert.Equal(t, "2026-11-30T08:00:00Z", ev["detail"].(map[string]any)["occurred_at"])
		}
	}
	assert.Equal(t, 1, suspended, "the replays suspended nothing twice")

	// The payment arrived: active again, the same term.
	received := fabrikam.send(t, map[string]any{"event_id": "evt_" + uuid.NewString(), "type": "payment_received", "subscription_id": id})
	require.Equal(t, http.StatusOK, received.Status, received.String())
	assert.Equal(t, "active", received.Str("status"))
	assert.Equal(t, active.Str("term_start"), received.Str("term_start"))
	assert.Equal(t, active.Str("term_end"), received.Str("term_end"), "reinstated with the same term dates")
	assert.Equal(t, 1, w.ledgerRows(t, id, domain.LedgerCharge))
	w.requireAgree(t, id)

	var audited int
	require.NoError(t, w.Store.DB().Get(&audited, `SELECT count(*) FROM audit_log WHERE actor = 'billing:fabrikam' AND action LIKE 'billing.payment_%'`))
	assert.Equal(t, 3, audited, "each event taken is audited once (the refused one too), replays are not")
	var denied int
	require.NoError(t, w.Store.DB().Get(&denied, `SELECT count(*) FROM audit_log WHERE action = 'verify_signature' AND outcome = 'denied' AND actor = 'billing:fabrikam'`))
	assert.Equal(t, 2, denied, "forged events are audited as denied")
}

// The partner's billing secret is managed like a publisher's: rotate prints
// a new one once (the old one verifies during the overlap, or stops at once
// without it), list shows fingerprints only, revoke stops one now; audited;
// no secret reaches a log or the audit trail.
func TestBillingSecretsCommandLine(t *testing.T) {
	t.Parallel()
	w := newWorld(t, testenvOpts())
	id := w.buy(t, "analytics", "annual", 1).Str("id")
	// A payment_failed on a pending subscription is refused (409) once verified: the status tells a verified signature (401 otherwise).
	verifies := func(secret string) int {
		return w.billingSystem("fabrikam", secret).send(t, map[string]any{"event_id": "evt_" + uuid.NewString(),
			"type": "payment_failed", "subscription_id": id}).Status
	}
	require.Equal(t, http.StatusConflict, verifies(FabrikamBillingSecret))

	out, errOut := keysCLI(t, w, "billing", "rotate", "fabrikam", "-overlap", "1h")
	second := strings.TrimSpace(out)
	require.True(t, strings.HasPrefix(second, "whsec_"), out)
	assert.Contains(t, errOut, `"action":"keys.billing.rotate"`)
	assert.Equal(t, http.StatusConflict, verifies(second), "the new secret verifies")
	assert.Equal(t, http.StatusConflict, verifies(FabrikamBillingSecret), "the old one too, during the overlap")

	list, _ := keysCLI(t, w, "billing", "list", "fabrikam")
	assert.NotContains(t, list, second)
	assert.NotContains(t, list, FabrikamBillingSecret)
	assert.Contains(t, list, vault.Fingerprint(second))
	keysCLI(t, w, "billing", "revoke", "fabrikam", vault.Fingerprint(FabrikamBillingSecret))
	assert.Equal(t, http.StatusUnauthorized, verifies(FabrikamBillingSecret), "revoked immediately")

	out, _ = keysCLI(t, w, "billing", "rotate", "fabrikam", "-overlap", "0s")
	third := strings.TrimSpace(out)
	assert.Equal(t, http.StatusConflict, verifies(third))
	assert.Equal(t, http.StatusUnauthorized, verifies(second), "without overlap the old ones stop at once")
	assert.Equal(t, http.StatusConflict, w.billingSystem("northwind", NorthwindBillingSecret).send(t, map[string]any{
		"event_id": "evt_" + uuid.NewString(), "type": "payment_received", "subscription_id": w.otherPending(t)}).Status,
		"another partner's secrets are untouched")

	var actions []string
	require.NoError(t, w.Store.DB().Select(&actions, `SELECT action || ' ' || tenant || ' ' || outcome FROM audit_log WHERE actor LIKE 'cli:%' ORDER BY id`))
	assert.Equal(t, []string{"keys.billing.rotate fabrikam ok", "keys.billing.revoke fabrikam ok", "keys.billing.rotate fabrikam ok"}, actions)
	var details []string
	require.NoError(t, w.Store.DB().Select(&details, `SELECT detail::text FROM audit_log`))
	logs := w.Logs() + strings.Join(details, "\n")
	for _, secret := range []string{second, third, FabrikamBillingSecret, NorthwindBillingSecret} {
		assert.NotContains(t, logs, strings.TrimPrefix(secret, "whsec_"), "a billing secret is printed once, on stdout only")
	}
}

// otherPending buys a subscription for northwind's customer and returns its id.
func (w *world) otherPending(t *testing.T) string {
	t.Helper()
	r := w.other.Purchase(map[string]any{"customer_id": "tailspin", "offer_id": "docs", "plan_id": "annual", "quantity": 1})
	require.Equal(t, http.StatusCreated, r.Status, r.String())
	return r.Str("id")
}
