package e2e

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/partnerhub/fulfillment/testenv"
)

// When Temporal or PostgreSQL is unreachable, the API answers 503
// unavailable as problem+json and changes nothing; once it is back, the same
// requests succeed, and a purchase whose answer was 503 is resumed (not
// duplicated) under its Idempotency-Key.
func TestOutageAnswers503AndChangesNothing(t *testing.T) {
	t.Parallel()
	w := newWorld(t, testenv.StackOptions{Proxied: true, Env: []string{"UPDATE_TIMEOUT=3s"}})
	active := w.buy(t, "analytics", "annual", 2)
	w.fulfill(t, active, 2)
	pending := w.buy(t, "analytics", "annual", 1)
	id := active.Str("id")
	before := w.admin.Do(http.MethodGet, "/v1/subscriptions/"+id, nil)
	eventsBefore := w.admin.Do(http.MethodGet, "/v1/subscriptions/"+id+"/events", nil)
	countSubs := func() int {
		var n int
		require.NoError(t, w.Store.DB().Get(&n, `SELECT count(*) FROM subscriptions`))
		return n
	}
	subsBefore := countSubs()
	unavailable := func(r testenv.Response) {
		t.Helper()
		assert.Equal(t, http.StatusServiceUnavailable, r.Status, r.String())
		assert.Equal(t, "unavailable", r.Str("code"))
		assert.Equal(t, "application/problem+json", r.Header.Get("Content-Type"))
	}

	// Temporal unreachable.
	w.TemporalProxy.Cut()
	unavailable(w.Do(http.MethodGet, "/readyz", nil))
	purchase := map[string]any{"customer_id": "woodgrove", "offer_id": "analytics", "plan_id": "annual", "quantity": 3}
	unavailable(w.admin.Do(http.MethodPost, "/v1/subscriptions", purchase, "Idempotency-Key", "during-outage"))
	unavailable(w.admin.Do(http.MethodPatch, "/v1/subscriptions/"+id, map[string]any{"nickname": "lost?"}))
	unavailable(w.admin.Do(http.MethodPost, "/v1/subscriptions/"+id+"/cancel", nil))
	licenses := map[string]any{"assigned": 1}
	unavailable(w.contoso.SendAs("msg-during-outage", "/v1/publisher/subscriptions/"+pending.Str("id")+"/licenses", licenses))

	assert.Equal(t, subsBefore, countSubs(), "no purchase happened")
	after := w.admin.Do(http.MethodGet, "/v1/subscriptions/"+id, nil) // reads come from PostgreSQL
	assert.Equal(t, before.Body["version"], after.Body["version"], "nothing changed")
	assert.Equal(t, before.Body["status"], after.Body["status"])
	assert.Equal(t, before.Body["nickname"], after.Body["nickname"])
	assert.Equal(t, eventsBefore.Raw, w.admin.Do(http.MethodGet, "/v1/subscriptions/"+id+"/events", nil).Raw)

	w.TemporalProxy.Restore()
	testenv.WaitFor(t, 30*time.Second, "readyz after Temporal is back", func() bool {
		return w.Do(http.MethodGet, "/readyz", nil).Status == http.StatusOK
	})
	// The publisher redelivers until the worker has reconnected too.
	var r testenv.Response
	testenv.WaitFor(t, 60*time.Second, "the refused callback to be processed on redelivery", func() bool {
		r = w.contoso.SendAs("msg-during-outage", "/v1/publisher/subscriptions/"+pending.Str("id")+"/licenses", licenses)
		return r.Status != http.StatusServiceUnavailable
	})
	require.Equal(t, http.StatusOK, r.Status, "a callback refused for the outage is processed on redelivery: %s", r)
	assert.Empty(t, r.Header.Get("Idempotent-Replayed"))
	assert.EqualValues(t, 1, r.Body["licenses_assigned"])

	// The purchase that got 503 resumes under its key once the claim is stale: one subscription, never two.
	var resumed testenv.Response
	testenv.WaitFor(t, 30*time.Second, "the interrupted purchase to resume", func() bool {
		resumed = w.admin.Do(http.MethodPost, "/v1/subscriptions", purchase, "Idempotency-Key", "during-outage")
		if resumed.Status == http.StatusConflict {
			assert.Equal(t, "idempotency_key_in_use", resumed.Str("code"))
		}
		return resumed.Status != http.StatusConflict
	})
	require.Equal(t, http.StatusCreated, resumed.Status, resumed.String())
	assert.Equal(t, subsBefore+1, countSubs())
	replay := w.admin.Do(http.MethodPost, "/v1/subscriptions", purchase, "Idempotency-Key", "during-outage")
	assert.Equal(t, resumed.Raw, replay.Raw)
	assert.Equal(t, subsBefore+1, countSubs())

	// PostgreSQL unreachable: nothing can be authenticated or read.
	w.PostgresProxy.Cut()
	unavailable(w.Do(http.MethodGet, "/readyz", nil))
	unavailable(w.admin.Do(http.MethodGet, "/v1/subscriptions/"+id, nil))
	unavailable(w.admin.Do(http.MethodPost, "/v1/subscriptions", purchase, "Idempotency-Key", "pg-down"))
	w.PostgresProxy.Restore()
	testenv.WaitFor(t, 30*time.Second, "readyz after PostgreSQL is back", func() bool {
		return w.Do(http.MethodGet, "/readyz", nil).Status == http.StatusOK
	})
	assert.Equal(t, subsBefore+1, countSubs(), "the refused purchase left nothing")
	r = w.admin.Do(http.MethodPost, "/v1/subscriptions", purchase, "Idempotency-Key", "pg-down")
	assert.Equal(t, http.StatusCreated, r.Status, r.String())
}
