package e2e

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/partnerhub/fulfillment/testenv"
)

// collectionSeed adds a collection bundling two apps to the e2e seed.
func collectionSeed() []byte {
	s := string(seed(""))
	s = strings.Replace(s, `"parent_offer_ids": ["analytics"]`, `"parent_offer_ids": ["analytics", "suite"]`, 1)
	s = strings.Replace(s, `    {"id": "docs",`, `    {"id": "suite", "publisher_id": "contoso", "name": "Contoso Suite", "kind": "collection", "parent_offer_ids": [],
     "setup_instructions": "Set up the suite once; its apps follow.",
     "plans": [{"id": "annual", "name": "Annual", "term": "P1Y", "unit_price_minor": 0, "currency": "USD",
        "min_quantity": 1, "max_quantity": 100, "cancellation_window": "P7D", "activation_deadline": "P30D"}],
     "bundle": [{"offer_id": "insights-app", "plan_id": "monthly"}, {"offer_id": "reports-app", "plan_id": "monthly"}]},
    {"id": "reports-app", "publisher_id": "contoso", "name": "Reports (app)", "kind": "app", "parent_offer_ids": ["suite"],
     "plans": [{"id": "monthly", "name": "Monthly", "term": "P1M", "unit_price_minor": 200, "currency": "USD",
        "min_quantity": 1, "max_quantity": 5, "cancellation_window": "P3D", "activation_deadline": "P30D"}]},
    {"id": "docs",`, 1)
	return []byte(s)
}

// Buying a collection buys one linked subscription per bundled app; a replay
// buys nothing more; deactivating the collection deactivates its apps.
func TestCollectionBuysItsApps(t *testing.T) {
	t.Parallel()
	w := newWorld(t, testenv.StackOptions{Seed: collectionSeed()})
	key := uuid.NewString()
	body := map[string]any{"customer_id": "woodgrove", "offer_id": "suite", "plan_id": "annual", "quantity": 10}
	r := w.admin.Do(http.MethodPost, "/v1/subscriptions", body, "Idempotency-Key", key)
	require.Equal(t, http.StatusCreated, r.Status, r.String())
	action := r.Body["action_required"].(map[string]any)
	assert.Equal(t, "Set up the suite once; its apps follow.", action["setup_instructions"], "the offer's set-up instructions")
	linked := r.Body["linked_subscription_ids"].([]any)
	require.Len(t, linked, 2, r.String())

	apps := map[string]testenv.Response{}
	for _, id := range linked {
		app := w.admin.Do(http.MethodGet, "/v1/subscriptions/"+id.(string), nil)
		require.Equal(t, http.StatusOK, app.Status)
		assert.Equal(t, r.Str("id"), app.Str("parent_subscription_id"))
		apps[app.Str("offer_id")] = app
	}
	require.Contains(t, apps, "insights-app")
	require.Contains(t, apps, "reports-app")
	assert.EqualValues(t, 10, apps["insights-app"].Body["quantity"])
	assert.EqualValues(t, 5, apps["reports-app"].Body["quantity"], "kept within the app plan's bounds")

	replay := w.admin.Do(http.MethodPost, "/v1/subscriptions", body, "Idempotency-Key", key)
	require.Equal(t, http.StatusCreated, replay.Status)
	assert.Equal(t, r.Str("id"), replay.Str("id"))
	list := w.admin.Do(http.MethodGet, "/v1/subscriptions?customer_id=woodgrove", nil)
	assert.Len(t, list.Body["items"], 3, "the collection and its two apps, once")

	d := w.admin.Do(http.MethodPost, "/v1/subscriptions/"+r.Str("id")+"/deactivate", nil)
	require.Equal(t, http.StatusOK, d.Status, d.String())
	for _, app := range apps {
		w.waitStatus(t, app.Str("id"), "deactivated", 30*time.Second)
	}
}
