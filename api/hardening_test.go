package api_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/partnerhub/fulfillment/api"
	"github.com/partnerhub/fulfillment/seed"
	"github.com/partnerhub/fulfillment/store"
	"github.com/partnerhub/fulfillment/testenv"
	"github.com/partnerhub/fulfillment/vault"
)

const (
	testKey    = "api_test_fabrikam_admin_key"
	testSecret = "whsec_YXBpLXRlc3QtY29udG9zby1zaWduaW5nLXNlY3JldA=="
)

// seededStore is a fresh database loaded with a seed file's JSON, and the
// vault that sealed its secrets.
func seededStore(t *testing.T, seedJSON string) (*store.Store, *vault.Vault) {
	t.Helper()
	st, _ := testenv.Database(t)
	v, err := vault.New([]byte(strings.Repeat("k", 32)))
	require.NoError(t, err)
	f, err := seed.Parse([]byte(seedJSON))
	require.NoError(t, err)
	require.NoError(t, seed.Load(context.Background(), st, v, f))
	return st, v
}

// authServer is the API over a fresh seeded database, without Temporal:
// everything under test here answers before a workflow is asked.
func authServer(t *testing.T, configure func(*api.Server)) (*api.Server, http.Handler) {
	t.Helper()
	st, v := seededStore(t, `{
	  "publishers": [{"id": "contoso", "name": "Contoso", "landing_url": "https://contoso.example", "webhook_url": null,
	                  "signing_secret": "`+testSecret+`"}],
	  "offers": [], "customers": [],
	  "partners": [{"id": "fabrikam", "name": "Fabrikam", "agents": [{"id": "alice", "role": "admin_agent", "api_key": "`+testKey+`"}]}]
	}`)
	s := &api.Server{Store: st, Vault: v}
	if configure != nil {
		configure(s)
	}
	return s, s.Handler()
}

type answer struct {
	Status int
	Code   string
	Header http.Header
}

func call(h http.Handler, method, target, remoteAddr string, headers ...string) answer {
	req := httptest.NewRequest(method, target, nil)
	if remoteAddr != "" {
		req.RemoteAddr = remoteAddr
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var p struct{ Code string }
	_ = json.Unmarshal(rec.Body.Bytes(), &p)
	return answer{Status: rec.Code, Code: p.Code, Header: rec.Header()}
}

// signed is a publisher request signed with secret.
func signed(t *testing.T, secret, path, body string) *http.Request {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(secret)
	require.NoError(t, err)
	id := fmt.Sprintf("msg_%d", time.Now().UnixNano())
	sig, err := wh.Sign(id, time.Now(), []byte(body))
	require.NoError(t, err)
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	req.Header.Set("X-Publisher-Id", "contoso")
	req.Header.Set(standardwebhooks.HeaderWebhookID, id)
	req.Header.Set(standardwebhooks.HeaderWebhookTimestamp, fmt.Sprint(time.Now().Unix()))
	req.Header.Set(standardwebhooks.HeaderWebhookSignature, sig)
	return req
}

func TestFailedAuthThrottlesFailuresNotValidKeys(t *testing.T) {
	_, h := authServer(t, func(s *api.Server) {
		s.Limits = api.RateLimits{FailedAuthRPS: 0.001, FailedAuthBurst: 2}
		s.TrustedProxies = []string{"10.0.0.0/8"}
	})
	const attacker = "192.0.2.1:5000"
	bad := func(addr string, headers ...string) answer {
		return call(h, http.MethodGet, "/v1/customers", addr, append([]string{"Authorization", "Bearer wrong-key"}, headers...)...)
	}
	assert.Equal(t, http.StatusUnauthorized, bad(attacker).Status)
	assert.Equal(t, http.StatusUnauthorized, bad(attacker).Status)
	throttled := bad(attacker)
	assert.Equal(t, http.StatusTooManyRequests, throttled.Status)
	assert.NotEmpty(t, throttled.Header.Get("Retry-After"))
	assert.Equal(t, http.StatusTooManyRequests, call(h, http.MethodGet, "/v1/customers", attacker).Status, "a missing key is a failure too")

	good := call(h, http.MethodGet, "/v1/customers", attacker, "Authorization", "Bearer "+testKey)
	assert.Equal(t, http.StatusOK, good.Status, "a valid key from the throttled address is served")
	res := httptest.NewRecorder()
	req := signed(t, testSecret, "/v1/publisher/resolve", `{"authorization_code":"ac_x"}`)
	req.RemoteAddr = attacker
	h.ServeHTTP(res, req)
	assert.Equal(t, http.StatusNotFound, res.Code, "a valid signature from the throttled address is served: %s", res.Body)

	assert.Equal(t, http.StatusUnauthorized, bad("192.0.2.2:5000").Status, "another address has its own budget")

	// Behind a trusted proxy X-Forwarded-For names the client; from anyone else it is ignored.
	const proxy = "10.1.2.3:443"
	for range 2 {
		assert.Equal(t, http.StatusUnauthorized, bad(proxy, "X-Forwarded-For", "198.51.100.7").Status)
	}
	assert.Equal(t, http.StatusTooManyRequests, bad(proxy, "X-Forwarded-For", "198.51.100.7").Status)
	assert.Equal(t, http.StatusUnauthorized, bad(proxy, "X-Forwarded-For", "198.51.100.8").Status, "another client behind the proxy")
	assert.Equal(t, http.StatusTooManyRequests, bad(attacker, "X-Forwarded-For", "198.51.100.9").Status,
		"an untrusted sender cannot pick a fresh address")
}

func TestLegacyKeyHashIsUpgradedOnUse(t *testing.T) {
	s, h := authServer(t, nil)
	const legacy = "legacy-key-0123456789"
	_, err := s.Store.DB().Exec(`INSERT INTO api_keys (key_hash, partner_id, agent_id) VALUES ($1, 'fabrikam', 'alice')`, vault.Hash(legacy))
	require.NoError(t, err)

	// Concurrent first uses: one upgrades the row, the others find it upgraded.
	var wg sync.WaitGroup
	statuses := make([]int, 8)
	for i := range statuses {
		wg.Go(func() {
			statuses[i] = call(h, http.MethodGet, "/v1/customers", "", "Authorization", "Bearer "+legacy).Status
		})
	}
	wg.Wait()
	for i, st := range statuses {
		assert.Equal(t, http.StatusOK, st, "request %d", i)
	}
	var keyed, bare int
	require.NoError(t, s.Store.DB().Get(&keyed, `SELECT count(*) FROM api_keys WHERE key_hash = $1`, s.Vault.KeyHash(legacy)))
	require.NoError(t, s.Store.DB().Get(&bare, `SELECT count(*) FROM api_keys WHERE key_hash = $1`, vault.Hash(legacy)))
	assert.Equal(t, 1, keyed)
	assert.Zero(t, bare)

	other, err := vault.New([]byte(strings.Repeat("o", 32)))
	require.NoError(t, err)
	assert.NotEqual(t, s.Vault.KeyHash(testKey), other.KeyHash(testKey), "the hash depends on SECRET_KEY")
	assert.NotEqual(t, vault.Hash(testKey), s.Vault.KeyHash(testKey))
}

// A database error while authenticating is 503 unavailable, never 401.
func TestAuthenticationDatabaseErrorIs503(t *testing.T) {
	s, h := authServer(t, nil)
	// The publisher row is readable but its secrets are not.
	_, err := s.Store.DB().Exec(`ALTER TABLE publisher_secrets RENAME TO publisher_secrets_gone`)
	require.NoError(t, err)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, signed(t, testSecret, "/v1/publisher/resolve", `{"authorization_code":"ac_x"}`))
	assert.Equal(t, http.StatusServiceUnavailable, rec.Code, rec.Body.String())
	assert.Equal(t, "application/problem+json", rec.Header().Get("Content-Type"))

	_, err = s.Store.DB().Exec(`ALTER TABLE api_keys RENAME TO api_keys_gone`)
	require.NoError(t, err)
	a := call(h, http.MethodGet, "/v1/customers", "", "Authorization", "Bearer "+testKey)
	assert.Equal(t, http.StatusServiceUnavailable, a.Status)
	assert.Equal(t, "unavailable", a.Code)
}

// recordingMetrics keeps every label pair it was given.
type recordingMetrics struct {
	mu     sync.Mutex
	labels map[string]bool
}

func (m *recordingMetrics) ObserveRequest(route, method string, _ int, _ time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.labels[route+" "+method] = true
}
func (m *recordingMetrics) Handler() http.Handler { return http.NotFoundHandler() }

func TestMetricLabelsAreBounded(t *testing.T) {
	m := &recordingMetrics{labels: map[string]bool{}}
	h := (&api.Server{Metrics: m}).Handler()
	for i := range 50 {
		call(h, fmt.Sprintf("BREW%d", i), "/healthz", "")
		call(h, fmt.Sprintf("X%d", i), fmt.Sprintf("/no/such/path/%d", i), "")
		call(h, http.MethodGet, fmt.Sprintf("/v1/nothing-%d", i), "")
	}
	call(h, http.MethodGet, "/healthz", "")
	// A method the path does not take (405) has no route either.
	assert.Equal(t, map[string]bool{"unmatched other": true, "unmatched GET": true, "/healthz GET": true}, m.labels)
}

func TestInvalidUTF8InHeadersAndQueryIs400(t *testing.T) {
	h := (&api.Server{}).Handler()
	for _, tc := range []struct {
		name, target string
		headers      []string
	}{
		{"header value", "/healthz", []string{"X-Anything", "a\xffb"}},
		{"Authorization", "/v1/customers", []string{"Authorization", "Bearer \xc3\x28"}},
		{"query value", "/healthz?x=%FF", nil},
		{"query name", "/healthz?%C3%28=1", nil},
		{"NUL in a query value", "/v1/subscriptions?customer_id=a%00b", nil},
	} {
		a := call(h, http.MethodGet, tc.target, "", tc.headers...)
		assert.Equal(t, http.StatusBadRequest, a.Status, tc.name)
		assert.Equal(t, "invalid_request", a.Code, tc.name)
	}
	ok := call(h, http.MethodGet, "/healthz?name=Zo%C3%AB", "", "X-Note", "café")
	assert.Equal(t, http.StatusOK, ok.Status, "valid UTF-8 passes")
	rid := call(h, http.MethodGet, "/healthz", "", "X-Request-Id", base64.StdEncoding.EncodeToString([]byte("id")))
	assert.Equal(t, "aWQ=", rid.Header.Get("X-Request-Id"), "a valid request id is echoed")
}

// A database that hands out no connection (every one held elsewhere) makes a
// request answer 503 when its time is up, not hang for as long as the
// client waits.
func TestRequestWithNoDatabaseConnectionEndsIn503(t *testing.T) {
	s, h := authServer(t, func(s *api.Server) { s.RequestTimeout = time.Second })
	s.Store.SetMaxConns(1)
	held, err := s.Store.DB().Conn(context.Background())
	require.NoError(t, err)
	defer held.Close()

	done := make(chan answer, 1)
	go func() { done <- call(h, http.MethodGet, "/v1/customers", "", "Authorization", "Bearer "+testKey) }()
	select {
	case a := <-done:
		assert.Equal(t, http.StatusServiceUnavailable, a.Status)
		assert.Equal(t, "unavailable", a.Code)
	case <-time.After(15 * time.Second):
		t.Fatal("the request still waits for a database connection")
	}
	require.NoError(t, held.Close())
	assert.Equal(t, http.StatusOK, call(h, http.MethodGet, "/v1/customers", "", "Authorization", "Bearer "+testKey).Status,
		"served again once a connection is free")
}
