package e2e

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPurchaseToBillingStart(t *testing.T) {
	t.Parallel()
	w := newWorld(t, testenvOpts())
	p := w.buy(t, "analytics", "annual", 5)
	assert.Equal(t, "pending_fulfillment", p.Str("status"))
	link := p.Body["publisher_link"].(map[string]any)
	assert.Contains(t, link["url"], "https://contoso.example/setup?token=")

	last := w.fulfill(t, p, 3)
	assert.Equal(t, "active", last.Str("status"), "the answer to the last callback already shows active")
	assert.Nil(t, last.Body["publisher_link"], "publishers never see the link")

	got := w.admin.Do(http.MethodGet, "/v1/subscriptions/"+p.Str("id"), nil)
	require.Equal(t, http.StatusOK, got.Status)
	assert.Equal(t, "active", got.Str("status"))
	assert.EqualValues(t, 3, got.Body["licenses_assigned"])
	assert.NotNil(t, got.Body["billing_started_at"])
	assert.Nil(t, got.Body["publisher_link"], "no link once fulfilled")

	bill := w.admin.Do(http.MethodGet, "/v1/subscriptions/"+p.Str("id")+"/billing", nil)
	require.Equal(t, http.StatusOK, bill.Status)
	items := bill.Body["items"].([]any)
	require.Len(t, items, 1)
	assert.Equal(t, "charge", items[0].(map[string]any)["kind"])
	assert.EqualValues(t, 6000, bill.Body["balance_minor"])
	assert.Equal(t, 1, w.ledgerRows(t, p.Str("id"), "charge"))
}

func TestActivationDeadlineExpires(t *testing.T) {
	t.Parallel()
	w := newWorld(t, testenvOpts())
	p := w.buy(t, "analytics", "quick-expiry", 1)
	w.waitStatus(t, p.Str("id"), "fulfillment_expired", 15*time.Second)
	assert.Equal(t, 0, w.ledgerRows(t, p.Str("id"), "charge"))
	r := w.contoso.Send("/v1/publisher/subscriptions/"+p.Str("id")+"/licenses", map[string]any{"assigned": 1})
	assert.Equal(t, http.StatusConflict, r.Status, r.String())
	assert.Equal(t, "invalid_state", r.Str("code"))
}

// A replayed purchase answers the same bytes, while the stored copy of the
// answer holds no authorization code (codes are kept only as hashes).
func TestPurchaseReplayKeepsNoCode(t *testing.T) {
	t.Parallel()
	w := newWorld(t, testenvOpts())
	body := map[string]any{"customer_id": "woodgrove", "offer_id": "analytics", "plan_id": "annual", "quantity": 2}
	first := w.admin.Do(http.MethodPost, "/v1/subscriptions", body, "Idempotency-Key", "replay-me")
	require.Equal(t, http.StatusCreated, first.Status, first.String())
	code := first.Body["publisher_link"].(map[string]any)["authorization_code"].(string)

	again := w.admin.Do(http.MethodPost, "/v1/subscriptions", body, "Idempotency-Key", "replay-me")
	require.Equal(t, http.StatusCreated, again.Status)
	assert.Equal(t, "true", again.Header.Get("Idempotent-Replayed"))
	assert.Equal(t, string(first.Raw), string(again.Raw))

	var stored []byte
	require.NoError(t, w.Store.DB().Get(&stored, `SELECT response_body FROM idempotency_keys WHERE key = 'replay-me'`))
	assert.NotContains(t, string(stored), code)
	assert.Contains(t, string(stored), first.Str("id"))
}
