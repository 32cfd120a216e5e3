package api_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/partnerhub/fulfillment/api"
)

// A purchase the catalog refuses answers 422 with what is wrong — an unknown
// customer before an unknown offer — before any workflow is asked (this
// server has no Temporal client), and frees its Idempotency-Key.
func TestPurchaseCatalogRefusals(t *testing.T) {
	st, v := seededStore(t, `{
	  "publishers": [{"id": "contoso", "name": "Contoso", "landing_url": "https://contoso.example", "webhook_url": null,
	                  "signing_secret": "`+testSecret+`"}],
	  "offers": [{"id": "analytics", "publisher_id": "contoso", "name": "Analytics", "kind": "saas", "parent_offer_ids": [],
	              "plans": [{"id": "annual", "name": "Standard", "term": "P1Y", "unit_price_minor": 1200, "currency": "USD",
	                         "min_quantity": 1, "max_quantity": 10, "cancellation_window": "P7D", "activation_deadline": "P30D"}]}],
	  "partners": [
	    {"id": "fabrikam", "name": "Fabrikam", "agents": [{"id": "alice", "role": "admin_agent", "api_key": "`+testKey+`"}]},
	    {"id": "tailspin", "name": "Tailspin", "agents": []}],
	  "customers": [{"id": "woodgrove", "partner_id": "fabrikam", "name": "Woodgrove"},
	                {"id": "adatum", "partner_id": "tailspin", "name": "Adatum"}]
	}`)
	h := (&api.Server{Store: st, Vault: v}).Handler()

	buy := func(key, customer, offer, plan string, quantity int) (int, map[string]any) {
		body, _ := json.Marshal(map[string]any{"customer_id": customer, "offer_id": offer, "plan_id": plan, "quantity": quantity})
		req := httptest.NewRequest(http.MethodPost, "/v1/subscriptions", strings.NewReader(string(body)))
		req.Header.Set("Authorization", "Bearer "+testKey)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", key)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var p map[string]any
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &p), rec.Body.String())
		return rec.Code, p
	}
	for _, c := range []struct {
		name, customer, offer, plan string
		quantity                    int
		detail                      string
	}{
		{"unknown customer", "nobody", "analytics", "annual", 1, `unknown customer "nobody"`},
		{"another partner's customer", "adatum", "analytics", "annual", 1, `unknown customer "adatum"`},
		{"unknown customer and offer", "nobody", "no-such-offer", "annual", 1, `unknown customer "nobody"`},
		{"unknown offer", "woodgrove", "no-such-offer", "annual", 1, `unknown offer "no-such-offer"`},
		{"unknown plan", "woodgrove", "analytics", "monthly", 1, `offer "analytics" has no plan "monthly"`},
		{"quantity above the plan's", "woodgrove", "analytics", "annual", 11, "quantity must be between 1 and 10"},
	} {
		t.Run(c.name, func(t *testing.T) {
			key := uuid.NewString()
			status, p := buy(key, c.customer, c.offer, c.plan, c.quantity)
			assert.Equal(t, http.StatusUnprocessableEntity, status)
			assert.Equal(t, "validation_failed", p["code"])
			assert.Equal(t, c.detail, p["detail"])
			// Refused: the key is free again, so the same key with another body is refused the same way, not as a reuse.
			status, p = buy(key, "nobody", "analytics", "annual", 1)
			assert.Equal(t, http.StatusUnprocessableEntity, status)
			assert.Equal(t, `unknown customer "nobody"`, p["detail"])
		})
	}
	var subscriptions int
	require.NoError(t, st.DB().Get(&subscriptions, `SELECT count(*) FROM subscriptions`))
	assert.Zero(t, subscriptions, "nothing was bought")
}
