package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/partnerhub/fulfillment/testenv"
)

// delivery is one POST the publisher's webhook receiver got.
type delivery struct {
	WebhookID string
	Body      map[string]any
	Raw       []byte
	Verified  error
	// VerifiedNew is the check against the publisher's other active secret.
	VerifiedNew error
	Answer      int
	// From says where it came from, for a failure message.
	From string
}

// webhookReceiver plays the publisher's endpoint: it verifies every delivery's
// Standard Webhooks signature and answers 500 to the first delivery of each
// webhook-id, 200 to the next ones, so every event is retried once.
type webhookReceiver struct {
	wh, whNew  *standardwebhooks.Webhook
	mu         sync.Mutex
	deliveries []delivery
	seen       map[string]int
}

func newWebhookReceiver(t *testing.T, secret, newSecret string) *webhookReceiver {
	wh, err := standardwebhooks.NewWebhook(secret)
	require.NoError(t, err)
	whNew, err := standardwebhooks.NewWebhook(newSecret)
	require.NoError(t, err)
	return &webhookReceiver{wh: wh, whNew: whNew, seen: map[string]int{}}
}

func (rc *webhookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	d := delivery{WebhookID: r.Header.Get(standardwebhooks.HeaderWebhookID), Raw: raw,
		From: fmt.Sprintf("%s %s from %s (User-Agent %q)", r.Method, r.URL.Path, r.RemoteAddr, r.UserAgent())}
	d.Verified = rc.wh.Verify(raw, r.Header)
	d.VerifiedNew = rc.whNew.Verify(raw, r.Header)
	_ = json.Unmarshal(raw, &d.Body)
	rc.mu.Lock()
	switch {
	case d.Verified != nil:
		d.Answer = http.StatusUnauthorized
	case rc.seen[d.WebhookID] == 0:
		d.Answer = http.StatusInternalServerError
	default:
		d.Answer = http.StatusOK
	}
	if d.Verified == nil {
		rc.seen[d.WebhookID]++
	}
	rc.deliveries = append(rc.deliveries, d)
	rc.mu.Unlock()
	w.WriteHeader(d.Answer)
}

func (rc *webhookReceiver) all() []delivery {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]delivery(nil), rc.deliveries...)
}

// waitAcked waits until an event of type typ for the subscription was
// answered 200 and returns that delivery.
func (rc *webhookReceiver) waitAcked(t *testing.T, typ, subscriptionID string) delivery {
	t.Helper()
	var got delivery
	testenv.WaitFor(t, 30*time.Second, typ+" acknowledged", func() bool {
		for _, d := range rc.all() {
			if d.Verified != nil {
				t.Fatalf("delivery %q (%s) failed verification with the publisher's secret: %v; body %.200s", d.WebhookID, d.From, d.Verified, d.Raw)
			}
			if d.Answer == http.StatusOK && d.Body["type"] == typ && subscriptionOf(d)["id"] == subscriptionID {
				got = d
				return true
			}
		}
		return false
	})
	return got
}

func subscriptionOf(d delivery) map[string]any {
	s, _ := d.Body["subscription"].(map[string]any)
	return s
}

// TestNotificationsAreSignedAndRetried follows a purchase, its fulfillment and
// its cancellation from the publisher's side: each event arrives signed per
// Standard Webhooks, is retried after a 500 under the same webhook-id, and
// the purchase carries an authorization code that resolves.
func TestNotificationsAreSignedAndRetried(t *testing.T) {
	t.Parallel()
	rc := newWebhookReceiver(t, ContosoSecret, ContosoSecret2)
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	w := newWorld(t, testenv.StackOptions{Seed: seed(srv.URL), Temporal: ownTemporal(t)})
	keepLogsOnFailure(t, w)
	t.Cleanup(func() {
		if t.Failed() {
			for _, d := range rc.all() {
				t.Logf("delivery %s answered %d (signature: %v): %s", d.WebhookID, d.Answer, d.Verified, d.Raw)
			}
		}
	})

	p := w.buy(t, "analytics", "annual", 2)
	id := p.Str("id")

	purchased := rc.waitAcked(t, "subscription.purchased", id)
	sub := subscriptionOf(purchased)
	assert.Equal(t, "pending_fulfillment", sub["status"])
	link, ok := sub["publisher_link"].(map[string]any)
	require.True(t, ok, "subscription.purchased carries the publisher link: %s", purchased.Raw)
	code, _ := link["authorization_code"].(string)
	require.NotEmpty(t, code)
	assert.Contains(t, link["url"], "https://contoso.example/setup?token=")

	// The publisher sets the customer up from the notification alone.
	r := w.contoso.Send("/v1/publisher/resolve", map[string]any{"authorization_code": code})
	require.Equal(t, http.StatusOK, r.Status, r.String())
	assert.Equal(t, id, r.Body["subscription"].(map[string]any)["id"])
	assert.Equal(t, "woodgrove", r.Body["customer"].(map[string]any)["id"])
	r = w.contoso.Send("/v1/publisher/subscriptions/"+id+"/licenses", map[string]any{"assigned": 2})
	require.Equal(t, http.StatusOK, r.Status, r.String())
	r = w.contoso.Send("/v1/publisher/subscriptions/"+id+"/activate", map[string]any{})
	require.Equal(t, http.StatusOK, r.Status, r.String())
	require.Equal(t, "active", r.Str("status"))

	activated := rc.waitAcked(t, "subscription.activated", id)
	assert.Equal(t, "active", subscriptionOf(activated)["status"])
	assert.Nil(t, subscriptionOf(activated)["publisher_link"])

	c := w.admin.Do(http.MethodPost, "/v1/subscriptions/"+id+"/cancel", nil)
	require.Equal(t, http.StatusOK, c.Status, c.String())
	cancelled := rc.waitAcked(t, "subscription.cancelled", id)
	assert.Equal(t, "cancelled", subscriptionOf(cancelled)["status"])

	// Every delivery verified; each event went out under one webhook-id,
	// first refused with 500, then retried with the same id and body.
	byID := map[string][]delivery{}
	var order []string
	for _, d := range rc.all() {
		require.NoError(t, d.Verified, "delivery %s must verify with the publisher's secret", d.WebhookID)
		require.NoError(t, d.VerifiedNew, "delivery %s must also verify with the publisher's second active secret (rotation)", d.WebhookID)
		if _, ok := byID[d.WebhookID]; !ok {
			order = append(order, d.WebhookID)
		}
		byID[d.WebhookID] = append(byID[d.WebhookID], d)
	}
	var types []any
	var last time.Time
	for _, webhookID := range order {
		ds := byID[webhookID]
		require.GreaterOrEqual(t, len(ds), 2, "%s was retried after the 500", webhookID)
		assert.Equal(t, http.StatusInternalServerError, ds[0].Answer)
		assert.Equal(t, http.StatusOK, ds[len(ds)-1].Answer)
		first := ds[0].Body
		types = append(types, first["type"])
		for _, field := range []string{"type", "id", "occurred_at", "subscription"} {
			assert.Contains(t, first, field, "body of %s", webhookID)
		}
		assert.Equal(t, webhookID, first["id"], "the body's id is the webhook-id")
		assert.Equal(t, id, subscriptionOf(ds[0])["id"])
		for _, retry := range ds[1:] {
			assert.Equal(t, first["type"], retry.Body["type"], "a retry carries the same event")
			assert.Equal(t, first["id"], retry.Body["id"])
			assert.Equal(t, first["occurred_at"], retry.Body["occurred_at"])
		}
		at, err := time.Parse(time.RFC3339Nano, first["occurred_at"].(string))
		require.NoError(t, err)
		assert.False(t, at.Before(last), "events occur in order")
		last = at
	}
	assert.Equal(t, []any{"subscription.purchased", "subscription.activated", "subscription.cancelled"}, types)

	// The dispatcher marks a delivery after the publisher's 200 reached it.
	testenv.WaitFor(t, 15*time.Second, "the outbox to be drained", func() bool {
		var undelivered int
		require.NoError(t, w.Store.DB().Get(&undelivered, `SELECT count(*) FROM outbox WHERE delivered_at IS NULL`))
		return undelivered == 0
	})
}
