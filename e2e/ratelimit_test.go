package e2e

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/partnerhub/fulfillment/testenv"
)

const rateBurst = 3

// Token buckets per partner and per publisher: burst+1 rapid requests of one
// tenant end in 429 rate_limited with an honest Retry-After, while another
// tenant is served at the same moment. A refill of 0.25/s (a token every
// 4 s) keeps the burst "rapid" even on a loaded machine.
func TestRateLimits(t *testing.T) {
	t.Parallel()
	started := time.Now()
	w := newWorld(t, testenv.StackOptions{Env: []string{
		"RATE_LIMIT_PARTNER_RPS=0.25", "RATE_LIMIT_PARTNER_BURST=" + strconv.Itoa(rateBurst),
		"RATE_LIMIT_PUBLISHER_RPS=0.25", "RATE_LIMIT_PUBLISHER_BURST=" + strconv.Itoa(rateBurst),
	}})

	t.Run("per partner", func(t *testing.T) {
		list := func(p testenv.Partner) testenv.Response { return p.Do(http.MethodGet, "/v1/customers", nil) }
		for i := range rateBurst {
			r := list(w.admin)
			require.Equal(t, http.StatusOK, r.Status, "request %d of the burst: %s", i+1, r)
		}
		limited := list(w.admin)
		retryAfter := requireRateLimited(t, limited)

		// The bucket is the partner's, not the key's: fabrikam's sales agent waits too ...
		requireRateLimited(t, list(w.sales))
		// ... while northwind, at the same moment, has its whole burst.
		for i := range rateBurst {
			r := list(w.other)
			require.Equal(t, http.StatusOK, r.Status, "northwind request %d: %s", i+1, r)
		}
		// Unauthenticated requests spend no partner's tokens.
		r := w.Do(http.MethodGet, "/v1/customers", nil, "Authorization", "Bearer not-a-key-of-anyone")
		mustProblem(t, r, http.StatusUnauthorized, "unauthenticated")

		// Retry-After is honest: waiting that long is enough (this wait is the
		// promise under test, so it is a timer, not a poll).
		time.Sleep(retryAfter)
		r = list(w.admin)
		assert.Equal(t, http.StatusOK, r.Status, "after Retry-After: %s", r)
	})

	t.Run("per publisher", func(t *testing.T) {
		resolve := func(p testenv.Publisher, webhookID string) testenv.Response {
			return p.SendAs(webhookID, "/v1/publisher/resolve", map[string]any{"authorization_code": "ac_unknown"})
		}
		// Badly signed messages in contoso's name spend none of contoso's tokens:
		// otherwise anyone could lock a publisher out by naming it.
		forger := w.Publisher("contoso", LitwareSecret)
		for i := range rateBurst + 2 {
			r := resolve(forger, newWebhookID())
			mustProblem(t, r, http.StatusUnauthorized, "unauthenticated", "forged message %d", i+1)
		}
		for i := range rateBurst {
			r := resolve(w.contoso, newWebhookID())
			mustProblem(t, r, http.StatusNotFound, "not_found", "request %d of the burst", i+1)
		}
		throttledID := newWebhookID()
		retryAfter := requireRateLimited(t, resolve(w.contoso, throttledID))
		for i := range rateBurst {
			r := resolve(w.litware, newWebhookID())
			mustProblem(t, r, http.StatusNotFound, "not_found", "litware request %d", i+1)
		}
		// A throttled message consumed nothing: once the wait is over it is
		// processed, not replayed.
		time.Sleep(retryAfter)
		r := resolve(w.contoso, throttledID)
		mustProblem(t, r, http.StatusNotFound, "not_found", "after Retry-After")
		assert.Empty(t, r.Header.Get("Idempotent-Replayed"))
	})
	t.Logf("TestRateLimits took %s", time.Since(started).Round(time.Millisecond))
}

// requireRateLimited asserts a 429 rate_limited with Retry-After in whole
// seconds (at least 1) and returns it.
func requireRateLimited(t *testing.T, r testenv.Response) time.Duration {
	t.Helper()
	mustProblem(t, r, http.StatusTooManyRequests, "rate_limited")
	header := r.Header.Get("Retry-After")
	seconds, err := strconv.Atoi(header)
	require.NoError(t, err, "Retry-After %q is not an integer number of seconds", header)
	require.GreaterOrEqual(t, seconds, 1, "Retry-After %q", header)
	require.LessOrEqual(t, seconds, 4, "Retry-After %q: a token comes every 4 s", header)
	return time.Duration(seconds) * time.Second
}

// Failed authentications spend a budget per client address; once it is spent
// every failed authentication from that address gets 429 (and writes no audit
// row) until it refills, while valid keys from the same address are served
// (issue 11: one client's bad keys must not lock out every tenant behind a
// load balancer).
func TestFailedAuthenticationsAreThrottled(t *testing.T) {
	t.Parallel()
	w := newWorld(t, testenv.StackOptions{Env: []string{
		"RATE_LIMIT_FAILED_AUTH_RPS=0.25", "RATE_LIMIT_FAILED_AUTH_BURST=" + strconv.Itoa(rateBurst),
	}})
	guess := w.Partner("not-a-key-0000000000")
	for i := range rateBurst - 1 {
		r := guess.Do(http.MethodGet, "/v1/customers", nil)
		require.Equal(t, http.StatusUnauthorized, r.Status, "failure %d: %s", i+1, r)
	}
	// A forged publisher message is a failed authentication too.
	forged := w.Publisher("contoso", LitwareSecret).Send("/v1/publisher/resolve", map[string]any{"authorization_code": "x"})
	require.Equal(t, http.StatusUnauthorized, forged.Status, forged.String())

	retryAfter := requireRateLimited(t, guess.Do(http.MethodGet, "/v1/customers", nil))
	r := w.admin.Do(http.MethodGet, "/v1/customers", nil)
	require.Equal(t, http.StatusOK, r.Status, "a valid key is served while the address is throttled: %s", r)
	var audited int
	require.NoError(t, w.Store.DB().Get(&audited, `SELECT count(*) FROM audit_log WHERE outcome = 'denied'`))
	assert.Equal(t, rateBurst, audited, "throttled requests are not even looked at")

	time.Sleep(retryAfter) // the promise under test is the wait itself
	r = guess.Do(http.MethodGet, "/v1/customers", nil)
	mustProblem(t, r, http.StatusUnauthorized, "unauthenticated", "a failure is looked at again once the budget refilled")
}
