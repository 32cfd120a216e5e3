package e2e

import (
	"bytes"
	"crypto/sha256"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/partnerhub/fulfillment/testenv"
	"github.com/partnerhub/fulfillment/vault"
)

// A flood of bad keys from one address is throttled (429), but a valid key
// from that same address is still served: the limiter spends failures, not
// credentials. Behind a trusted proxy (TRUSTED_PROXIES) the budget is per
// forwarded client address, so one client's flood does not throttle another.
func TestBadKeyFloodDoesNotLockOutValidKeys(t *testing.T) {
	t.Parallel()
	w := newWorld(t, testenv.StackOptions{Env: []string{
		"RATE_LIMIT_FAILED_AUTH_RPS=0.25", "RATE_LIMIT_FAILED_AUTH_BURST=" + strconv.Itoa(rateBurst),
		"TRUSTED_PROXIES=127.0.0.1/32",
	}})
	guess := w.Partner("not-a-key-0000000000")
	for i := range rateBurst {
		mustProblem(t, guess.Do(http.MethodGet, "/v1/customers", nil), http.StatusUnauthorized, "unauthenticated", "failure %d", i+1)
	}
	for i := range 5 {
		requireRateLimited(t, guess.Do(http.MethodGet, "/v1/customers", nil))
		r := w.admin.Do(http.MethodGet, "/v1/customers", nil)
		require.Equal(t, http.StatusOK, r.Status, "valid key during the flood (round %d): %s", i+1, r)
	}
	// A correctly signed publisher message from the same address is served too.
	mustProblem(t, w.contoso.Send("/v1/publisher/resolve", map[string]any{"authorization_code": "ac_unknown"}),
		http.StatusNotFound, "not_found")
	// A forged one is throttled.
	forger := w.Publisher("contoso", LitwareSecret)
	requireRateLimited(t, forger.Send("/v1/publisher/resolve", map[string]any{"authorization_code": "x"}))

	var audited int
	require.NoError(t, w.Store.DB().Get(&audited, `SELECT count(*) FROM audit_log WHERE outcome = 'denied'`))
	assert.Equal(t, rateBurst, audited, "throttled failures write no audit rows")

	// The proxy is trusted: X-Forwarded-For names the client. Another client
	// behind it still has its whole budget; the flooding one does not.
	fromClient := func(addr string) testenv.Response {
		return w.Do(http.MethodGet, "/v1/customers", nil, "Authorization", "Bearer not-a-key-0000000000", "X-Forwarded-For", addr)
	}
	for i := range rateBurst {
		mustProblem(t, fromClient("203.0.113.7"), http.StatusUnauthorized, "unauthenticated", "client .7 failure %d", i+1)
	}
	requireRateLimited(t, fromClient("203.0.113.7"))
	mustProblem(t, fromClient("203.0.113.8"), http.StatusUnauthorized, "unauthenticated", "another client behind the proxy")
}

// Without TRUSTED_PROXIES no one may choose its address with X-Forwarded-For.
func TestForwardedForIgnoredByDefault(t *testing.T) {
	t.Parallel()
	w := newWorld(t, testenv.StackOptions{Env: []string{
		"RATE_LIMIT_FAILED_AUTH_RPS=0.25", "RATE_LIMIT_FAILED_AUTH_BURST=" + strconv.Itoa(rateBurst),
	}})
	for i := range rateBurst {
		r := w.Do(http.MethodGet, "/v1/customers", nil, "Authorization", "Bearer bad-key-000000000000", "X-Forwarded-For", "198.51.100."+strconv.Itoa(i))
		mustProblem(t, r, http.StatusUnauthorized, "unauthenticated")
	}
	r := w.Do(http.MethodGet, "/v1/customers", nil, "Authorization", "Bearer bad-key-000000000000", "X-Forwarded-For", "198.51.100.99")
	requireRateLimited(t, r)
}

// An Idempotency-Key reused on PATCH, cancel or deactivate for another
// request answers 422 idempotency_key_reused and changes nothing; the same
// key with the same request still replays the first answer.
func TestIdempotencyKeyReusedOnChanges(t *testing.T) {
	t.Parallel()
	w := newWorld(t, testenvOpts())
	first := w.buy(t, "analytics", "annual", 2)
	second := w.buy(t, "analytics", "annual", 2)
	third := w.buy(t, "analytics", "annual", 2)
	id := first.Str("id")
	path := "/v1/subscriptions/" + id

	key := "patch-" + uuid.NewString()
	r := w.admin.Do(http.MethodPatch, path, map[string]any{"nickname": "first"}, "Idempotency-Key", key)
	require.Equal(t, http.StatusOK, r.Status, r.String())
	replay := w.admin.Do(http.MethodPatch, path, map[string]any{"nickname": "first"}, "Idempotency-Key", key)
	require.Equal(t, http.StatusOK, replay.Status, replay.String())
	assert.Equal(t, "first", replay.Str("nickname"))
	// Another agent of the same partner with the same key and body: the same request.
	require.Equal(t, http.StatusOK, w.sales.Do(http.MethodPatch, path, map[string]any{"nickname": "first"}, "Idempotency-Key", key).Status)

	mustProblem(t, w.admin.Do(http.MethodPatch, path, map[string]any{"nickname": "second"}, "Idempotency-Key", key),
		http.StatusUnprocessableEntity, "idempotency_key_reused", "PATCH with another body")
	mustProblem(t, w.admin.Do(http.MethodPatch, "/v1/subscriptions/"+second.Str("id"), map[string]any{"nickname": "first"}, "Idempotency-Key", key),
		http.StatusUnprocessableEntity, "idempotency_key_reused", "PATCH of another subscription")
	mustProblem(t, w.admin.Do(http.MethodPost, path+"/cancel", nil, "Idempotency-Key", key),
		http.StatusUnprocessableEntity, "idempotency_key_reused", "cancel with a PATCH's key")
	after := w.admin.Do(http.MethodGet, path, nil)
	assert.Equal(t, "first", after.Str("nickname"), "the refused PATCH changed nothing")
	assert.Equal(t, "pending_fulfillment", after.Str("status"), "the refused cancel changed nothing")
	assert.Equal(t, "pending_fulfillment", w.admin.Do(http.MethodGet, "/v1/subscriptions/"+second.Str("id"), nil).Str("status"))
	assert.Nil(t, w.admin.Do(http.MethodGet, "/v1/subscriptions/"+second.Str("id"), nil).Body["nickname"])

	// Another partner may use the same key: keys are scoped to the partner.
	mustProblem(t, w.other.Do(http.MethodPatch, path, map[string]any{"nickname": "x"}, "Idempotency-Key", key),
		http.StatusNotFound, "not_found")

	cancelKey := "cancel-" + uuid.NewString()
	r = w.admin.Do(http.MethodPost, "/v1/subscriptions/"+second.Str("id")+"/cancel", nil, "Idempotency-Key", cancelKey)
	require.Equal(t, http.StatusOK, r.Status, r.String())
	r = w.admin.Do(http.MethodPost, "/v1/subscriptions/"+second.Str("id")+"/cancel", "{}", "Idempotency-Key", cancelKey)
	require.Equal(t, http.StatusOK, r.Status, "an empty body and {} are the same request: %s", r)
	assert.Equal(t, "cancelled", r.Str("status"))
	mustProblem(t, w.admin.Do(http.MethodPost, "/v1/subscriptions/"+third.Str("id")+"/cancel", nil, "Idempotency-Key", cancelKey),
		http.StatusUnprocessableEntity, "idempotency_key_reused", "cancel of another subscription")
	mustProblem(t, w.admin.Do(http.MethodPost, "/v1/subscriptions/"+third.Str("id")+"/deactivate", nil, "Idempotency-Key", cancelKey),
		http.StatusUnprocessableEntity, "idempotency_key_reused", "deactivate with a cancel's key")
	assert.Equal(t, "pending_fulfillment", w.admin.Do(http.MethodGet, "/v1/subscriptions/"+third.Str("id"), nil).Str("status"))

	deactivateKey := "deactivate-" + uuid.NewString()
	r = w.admin.Do(http.MethodPost, "/v1/subscriptions/"+third.Str("id")+"/deactivate", nil, "Idempotency-Key", deactivateKey)
	require.Equal(t, http.StatusOK, r.Status, r.String())
	r = w.admin.Do(http.MethodPost, "/v1/subscriptions/"+third.Str("id")+"/deactivate", nil, "Idempotency-Key", deactivateKey)
	require.Equal(t, http.StatusOK, r.Status, "replay: %s", r)
	assert.Equal(t, "deactivated", r.Str("status"))
	mustProblem(t, w.admin.Do(http.MethodPost, path+"/deactivate", nil, "Idempotency-Key", deactivateKey),
		http.StatusUnprocessableEntity, "idempotency_key_reused", "deactivate of another subscription")
	assert.Equal(t, "pending_fulfillment", w.admin.Do(http.MethodGet, path, nil).Str("status"))
}

// Invalid UTF-8 in a header or query value is the client's mistake: 400
// problem+json, never 503 (PostgreSQL refuses such text).
func TestInvalidUTF8HeaderOrQueryIs400(t *testing.T) {
	t.Parallel()
	w := newWorld(t, testenvOpts())
	buy := map[string]any{"customer_id": "woodgrove", "offer_id": "analytics", "plan_id": "annual", "quantity": 1}
	cases := []struct {
		name string
		r    func() testenv.Response
	}{
		{"Idempotency-Key of a purchase", func() testenv.Response {
			return w.admin.Do(http.MethodPost, "/v1/subscriptions", buy, "Idempotency-Key", "key-\xff\xfe")
		}},
		{"customer_id query", func() testenv.Response {
			return w.admin.Do(http.MethodGet, "/v1/subscriptions?customer_id=%FF%FE", nil)
		}},
		{"unknown query parameter", func() testenv.Response { return w.admin.Do(http.MethodGet, "/v1/customers?x=%C3%28", nil) }},
		{"query name", func() testenv.Response { return w.admin.Do(http.MethodGet, "/v1/customers?%FF=1", nil) }},
		{"any header", func() testenv.Response {
			return w.admin.Do(http.MethodGet, "/v1/customers", nil, "X-Anything", "\xc3\x28")
		}},
		{"webhook-id", func() testenv.Response {
			return w.contoso.SendAs("msg-\xff", "/v1/publisher/resolve", map[string]any{"authorization_code": "ac_x"})
		}},
		{"request id", func() testenv.Response {
			return w.Do(http.MethodGet, "/healthz", nil, "X-Request-Id", "\xff")
		}},
	}
	for _, c := range cases {
		r := c.r()
		mustProblem(t, r, http.StatusBadRequest, "invalid_request", c.name)
	}
}

// With PostgreSQL unreachable, authentication cannot decide: 503
// unavailable, never 401 (which would tell a client its key is wrong).
func TestDatabaseDownDuringAuthenticationIs503(t *testing.T) {
	t.Parallel()
	w := newWorld(t, testenv.StackOptions{Proxied: true})
	w.PostgresProxy.Cut()
	mustProblem(t, w.admin.Do(http.MethodGet, "/v1/customers", nil), http.StatusServiceUnavailable, "unavailable", "partner")
	mustProblem(t, w.contoso.Send("/v1/publisher/resolve", map[string]any{"authorization_code": "ac_x"}),
		http.StatusServiceUnavailable, "unavailable", "publisher")
	w.PostgresProxy.Restore()
	testenv.WaitFor(t, 30*time.Second, "authentication once PostgreSQL is back", func() bool {
		return w.admin.Do(http.MethodGet, "/v1/customers", nil).Status == http.StatusOK
	})
}

// keysCLI runs `fulfillment keys ARGS` against the stack's database.
func keysCLI(t *testing.T, w *world, args ...string) (stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(testenv.Binary(t), append([]string{"keys"}, args...)...)
	cmd.Env = w.Env
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	require.NoError(t, cmd.Run(), "fulfillment keys %v: %s", args, errOut.String())
	return out.String(), errOut.String()
}

// API keys and publisher signing secrets are created, rotated and revoked
// from the command line; revocation takes effect at once, rotation keeps the
// old credential for the overlap; every action is audited; the new secret is
// printed once, on stdout, and nowhere else.
func TestKeysCommandLine(t *testing.T) {
	t.Parallel()
	w := newWorld(t, testenvOpts())
	customers := func(key string) int { return w.Partner(key).Do(http.MethodGet, "/v1/customers", nil).Status }

	out, errOut := keysCLI(t, w, "agent", "create", "fabrikam", "carol", "-role", "sales_agent")
	carol := strings.TrimSpace(out)
	require.NotEmpty(t, carol)
	assert.Equal(t, http.StatusOK, customers(carol), "the new key works")
	assert.NotContains(t, errOut, carol)
	assert.Contains(t, errOut, `"msg":"audit"`, "each action is an audit log line too")
	assert.Contains(t, errOut, `"action":"keys.agent.create"`)

	out, _ = keysCLI(t, w, "agent", "rotate", "fabrikam", "carol", "-overlap", "1h")
	carol2 := strings.TrimSpace(out)
	require.NotEqual(t, carol, carol2)
	assert.Equal(t, http.StatusOK, customers(carol2), "the rotated key works")
	assert.Equal(t, http.StatusOK, customers(carol), "the old key works during the overlap")

	out, _ = keysCLI(t, w, "agent", "rotate", "fabrikam", "alice", "-overlap", "0s")
	alice2 := strings.TrimSpace(out)
	assert.Equal(t, http.StatusOK, customers(alice2))
	assert.Equal(t, http.StatusUnauthorized, customers(AdminKey), "without overlap the old key stops at once")

	out, _ = keysCLI(t, w, "agent", "revoke", "fabrikam", "carol")
	assert.Empty(t, strings.TrimSpace(out), "revocation prints no secret")
	assert.Equal(t, http.StatusUnauthorized, customers(carol), "revoked immediately")
	assert.Equal(t, http.StatusUnauthorized, customers(carol2), "revoked immediately")
	assert.Equal(t, http.StatusOK, customers(SalesKey), "bob's key is untouched")

	// Publisher secrets: contoso has two active ones; revoke the second by its fingerprint.
	resolve := func(p testenv.Publisher) int {
		return p.Send("/v1/publisher/resolve", map[string]any{"authorization_code": "ac_unknown"}).Status
	}
	list, _ := keysCLI(t, w, "publisher", "list", "contoso")
	assert.NotContains(t, list, ContosoSecret)
	assert.NotContains(t, list, ContosoSecret2)
	fingerprint := vault.Fingerprint(ContosoSecret2)
	assert.Contains(t, list, fingerprint)
	keysCLI(t, w, "publisher", "revoke", "contoso", fingerprint)
	assert.Equal(t, http.StatusUnauthorized, resolve(w.Publisher("contoso", ContosoSecret2)), "revoked immediately")
	assert.Equal(t, http.StatusNotFound, resolve(w.contoso), "the other secret still verifies")

	out, _ = keysCLI(t, w, "publisher", "rotate", "litware", "-overlap", "1h")
	litware2 := strings.TrimSpace(out)
	require.True(t, strings.HasPrefix(litware2, "whsec_"), out)
	assert.Equal(t, http.StatusNotFound, resolve(w.Publisher("litware", litware2)), "the new secret verifies")
	assert.Equal(t, http.StatusNotFound, resolve(w.litware), "the old one too, during the overlap")
	out, _ = keysCLI(t, w, "publisher", "rotate", "litware", "-overlap", "0s")
	litware3 := strings.TrimSpace(out)
	assert.Equal(t, http.StatusNotFound, resolve(w.Publisher("litware", litware3)))
	assert.Equal(t, http.StatusUnauthorized, resolve(w.Publisher("litware", litware2)), "without overlap the old ones stop at once")
	assert.Equal(t, http.StatusUnauthorized, resolve(w.litware))

	var actions []string
	require.NoError(t, w.Store.DB().Select(&actions, `SELECT action || ' ' || tenant || ' ' || outcome FROM audit_log WHERE actor LIKE 'cli:%' ORDER BY id`))
	assert.Equal(t, []string{
		"keys.agent.create fabrikam ok", "keys.agent.rotate fabrikam ok", "keys.agent.rotate fabrikam ok",
		"keys.agent.revoke fabrikam ok", "keys.publisher.revoke publisher:contoso ok",
		"keys.publisher.rotate publisher:litware ok", "keys.publisher.rotate publisher:litware ok",
	}, actions)
	var details []string
	require.NoError(t, w.Store.DB().Select(&details, `SELECT detail::text FROM audit_log`))
	logs := w.Logs() + strings.Join(details, "\n")
	for _, secret := range []string{carol, carol2, alice2, litware2, litware3} {
		assert.NotContains(t, logs, secret, "a new secret is printed once, on stdout only")
	}
}

// A key stored as a bare SHA-256 hash (before keyed hashing) keeps working,
// and its row is upgraded to the keyed hash on first use.
func TestLegacyKeyHashStillAuthenticates(t *testing.T) {
	t.Parallel()
	w := newWorld(t, testenvOpts())
	const legacy = "legacy_fabrikam_key_0123456789"
	sum := sha256.Sum256([]byte(legacy))
	_, err := w.Store.DB().Exec(`INSERT INTO api_keys (key_hash, partner_id, agent_id) VALUES ($1, 'fabrikam', 'alice')`, sum[:])
	require.NoError(t, err)
	r := w.Partner(legacy).Do(http.MethodGet, "/v1/customers", nil)
	require.Equal(t, http.StatusOK, r.Status, r.String())
	var stillLegacy int
	require.NoError(t, w.Store.DB().Get(&stillLegacy, `SELECT count(*) FROM api_keys WHERE key_hash = $1`, sum[:]))
	assert.Zero(t, stillLegacy, "the row now holds the keyed hash")
	assert.Equal(t, http.StatusOK, w.Partner(legacy).Do(http.MethodGet, "/v1/customers", nil).Status, "and still authenticates")
	// The seed's keys are stored keyed: no row holds their bare SHA-256.
	admin := sha256.Sum256([]byte(AdminKey))
	var bare int
	require.NoError(t, w.Store.DB().Get(&bare, `SELECT count(*) FROM api_keys WHERE key_hash = $1`, admin[:]))
	assert.Zero(t, bare)
}
