package e2e

import (
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/partnerhub/fulfillment/testenv"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.StopShared()
	os.Exit(code)
}

// seed returns the e2e seed with the publisher webhook URL (or null).
func seed(webhookURL string) []byte {
	v := "null"
	if webhookURL != "" {
		v = `"` + webhookURL + `"`
	}
	return []byte(strings.Replace(Seed, "WEBHOOK_URL", v, 1))
}

// world is a running stack with the seed's actors.
type world struct {
	*testenv.Stack
	admin, sales, other testenv.Partner
	contoso, litware    testenv.Publisher
}

func newWorld(t *testing.T, opts testenv.StackOptions) *world {
	if opts.Seed == nil {
		opts.Seed = seed("")
	}
	s := testenv.StartStack(t, opts)
	return &world{
		Stack: s, admin: s.Partner(AdminKey), sales: s.Partner(SalesKey), other: s.Partner(OtherAdminKey),
		contoso: s.Publisher("contoso", ContosoSecret), litware: s.Publisher("litware", LitwareSecret),
	}
}

// buy purchases a plan for woodgrove and returns the 201 answer. Like a
// partner, it retries a 503 under the same Idempotency-Key (the contract's
// "may still take effect … retrying is safe"): a setup step on a loaded host
// must not fail a test about something else.
func (w *world) buy(t *testing.T, offer, plan string, quantity int) testenv.Response {
	t.Helper()
	return w.buyWith(t, map[string]any{"customer_id": "woodgrove", "offer_id": offer, "plan_id": plan, "quantity": quantity})
}

// buyWith is buy with a whole purchase body (e.g. an app with its parent).
func (w *world) buyWith(t *testing.T, body map[string]any) testenv.Response {
	t.Helper()
	key := uuid.NewString()
	r := retryUnavailable(t, func() testenv.Response {
		return w.admin.Do(http.MethodPost, "/v1/subscriptions", body, "Idempotency-Key", key)
	})
	require.Equal(t, http.StatusCreated, r.Status, r.String())
	return r
}

// retryUnavailable sends a message again (the caller keeps its key or
// webhook-id) while it answers 503, for up to a minute, and returns the
// answer. For setup steps only: a test of the 503 itself sends once.
func retryUnavailable(t *testing.T, send func() testenv.Response) testenv.Response {
	t.Helper()
	var r testenv.Response
	unavailable := 0
	testenv.WaitFor(t, time.Minute, "a setup step to answer other than 503", func() bool {
		if r = send(); r.Status != http.StatusServiceUnavailable {
			return true
		}
		if unavailable++; unavailable == 1 {
			t.Logf("a setup step answered 503, retrying under the same key: %s", r.String())
		}
		return false
	})
	return r
}

// fulfill resolves the code, assigns licenses and confirms; it returns the last answer.
func (w *world) fulfill(t *testing.T, purchase testenv.Response, licenses int) testenv.Response {
	t.Helper()
	id := purchase.Str("id")
	link := purchase.Body["publisher_link"].(map[string]any)
	r := w.deliver(t, "/v1/publisher/resolve", map[string]any{"authorization_code": link["authorization_code"]})
	require.Equal(t, http.StatusOK, r.Status, r.String())
	r = w.deliver(t, "/v1/publisher/subscriptions/"+id+"/licenses", map[string]any{"assigned": licenses})
	require.Equal(t, http.StatusOK, r.Status, r.String())
	r = w.deliver(t, "/v1/publisher/subscriptions/"+id+"/activate", map[string]any{"site_url": "https://woodgrove.contoso.example"})
	require.Equal(t, http.StatusOK, r.Status, r.String())
	return r
}

// deliver sends a Contoso callback as a setup step: a 503 is redelivered
// under the same webhook-id, as a publisher would.
func (w *world) deliver(t *testing.T, path string, body any) testenv.Response {
	t.Helper()
	id := "msg_" + uuid.NewString()
	return retryUnavailable(t, func() testenv.Response { return w.contoso.SendAs(id, path, body) })
}

// waitStatus polls the subscription until it shows status.
func (w *world) waitStatus(t *testing.T, id, status string, timeout time.Duration) testenv.Response {
	t.Helper()
	var last testenv.Response
	testenv.WaitFor(t, timeout, id+" to become "+status, func() bool {
		last = w.admin.Do(http.MethodGet, "/v1/subscriptions/"+id, nil)
		return last.Str("status") == status
	})
	return last
}

// ledgerRows counts ledger rows of a kind with SQL, not through the API.
func (w *world) ledgerRows(t *testing.T, id, kind string) int {
	t.Helper()
	var n int
	require.NoError(t, w.Store.DB().Get(&n, `SELECT count(*) FROM ledger WHERE subscription_id = $1 AND kind = $2`, id, kind))
	return n
}

func testenvOpts() testenv.StackOptions { return testenv.StackOptions{} }
