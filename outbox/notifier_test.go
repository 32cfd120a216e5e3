package outbox_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/partnerhub/fulfillment/activities"
	"github.com/partnerhub/fulfillment/domain"
	"github.com/partnerhub/fulfillment/outbox"
	"github.com/partnerhub/fulfillment/seed"
	"github.com/partnerhub/fulfillment/testenv"
	"github.com/partnerhub/fulfillment/vault"
	"github.com/partnerhub/fulfillment/wire"
)

const secret = "whsec_bm90aWZpZXItdGVzdC1zZWNyZXQtMDAwMDAwMDE="

type delivery struct {
	id   string
	body wire.Notification
}

// receiver verifies every delivery and fails the first attempt of each id.
type receiver struct {
	t        *testing.T
	mu       sync.Mutex
	attempts map[string]int
	got      []delivery
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	raw, _ := io.ReadAll(req.Body)
	wh, _ := standardwebhooks.NewWebhook(secret)
	if err := wh.Verify(raw, req.Header); err != nil {
		r.t.Errorf("delivery not signed with the publisher's secret: %v", err)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	id := req.Header.Get(standardwebhooks.HeaderWebhookID)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.attempts[id]++
	if r.attempts[id] == 1 {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	var n wire.Notification
	require.NoError(r.t, json.Unmarshal(raw, &n))
	r.got = append(r.got, delivery{id: id, body: n})
}

// A notification retried after later changes still describes the moment of
// its event, is signed, and keeps its webhook-id across retries.
func TestNotifierDeliversTheSubscriptionAsOfTheEvent(t *testing.T) {
	ctx := context.Background()
	st, _ := testenv.Database(t)
	v, err := vault.Parse(testenv.SecretKey())
	require.NoError(t, err)
	rcv := &receiver{t: t, attempts: map[string]int{}}
	hook := httptest.NewServer(rcv)
	defer hook.Close()

	f, err := seed.Parse([]byte(`{"publishers":[{"id":"contoso","name":"Contoso","landing_url":"https://contoso.example/setup",
	  "webhook_url":"` + hook.URL + `","signing_secret":"` + secret + `"}],
	  "offers":[{"id":"analytics","publisher_id":"contoso","name":"A","kind":"saas","parent_offer_ids":[],
	    "plans":[{"id":"annual","name":"Annual","term":"P1Y","unit_price_minor":100,"currency":"USD","min_quantity":1,
	      "max_quantity":10,"cancellation_window":"P7D","activation_deadline":"P30D"}]}],
	  "partners":[{"id":"fabrikam","name":"Fabrikam","agents":[]}],
	  "customers":[{"id":"woodgrove","partner_id":"fabrikam","name":"Woodgrove"}]}`))
	require.NoError(t, err)
	require.NoError(t, seed.Load(ctx, st, v, f))

	now := time.Now().UTC().Truncate(time.Microsecond)
	sub := domain.Subscription{ID: "sub-1", PartnerID: "fabrikam", CustomerID: "woodgrove", PublisherID: "contoso",
		OfferID: "analytics", PlanID: "annual", Quantity: 2, AutoRenew: true, LinkedSubscriptionIDs: []string{},
		EntitlementNumber: domain.EntitlementNumber("sub-1"), Status: domain.StatusPendingFulfillment,
		ActivationDeadline: now.Add(time.Hour), CreatedAt: now, UpdatedAt: now, Version: 1}
	acts := &activities.Activities{Store: st, Vault: v}
	save := func(s domain.Subscription, typ, id string) {
		_, err := acts.SaveSubscription(ctx, domain.Change{Subscription: s, IssueLinkUntil: &s.ActivationDeadline,
			Notifications: []domain.Notification{{ID: id, Type: typ, OccurredAt: s.UpdatedAt}}})
		require.NoError(t, err)
	}
	save(sub, domain.NotifyPurchased, "msg_1")
	sub.Status, sub.Version = domain.StatusActive, 2
	save(sub, domain.NotifyActivated, "msg_2")
	sub.Status, sub.Version = domain.StatusCancelled, 3
	save(sub, domain.NotifyCancelled, "msg_3")

	n := &outbox.Notifier{Store: st, Vault: v, Client: hook.Client(), Logger: slog.New(slog.DiscardHandler)}
	require.NoError(t, n.DeliverDue(ctx))                                     // every first attempt fails
	st.DB().MustExecContext(ctx, `UPDATE outbox SET next_attempt_at = now()`) // skip the backoff
	require.NoError(t, n.DeliverDue(ctx))

	require.Len(t, rcv.got, 3)
	byID := map[string]wire.Notification{}
	for _, d := range rcv.got {
		assert.Equal(t, d.id, d.body.ID, "the body's id is the webhook-id")
		assert.Equal(t, 2, rcv.attempts[d.id], "retried under the same webhook-id")
		byID[d.id] = d.body
	}
	assert.Equal(t, domain.StatusPendingFulfillment, byID["msg_1"].Subscription.Status)
	require.NotNil(t, byID["msg_1"].Subscription.PublisherLink, "the purchase carries the link")
	assert.Equal(t, v.AuthorizationCode("sub-1"), byID["msg_1"].Subscription.PublisherLink.AuthorizationCode)
	assert.Equal(t, domain.StatusActive, byID["msg_2"].Subscription.Status, "as of activation, not as of delivery")
	assert.Nil(t, byID["msg_2"].Subscription.PublisherLink)
	assert.Equal(t, domain.StatusCancelled, byID["msg_3"].Subscription.Status)

	var undelivered int
	require.NoError(t, st.DB().Get(&undelivered, `SELECT count(*) FROM outbox WHERE delivered_at IS NULL`))
	assert.Zero(t, undelivered)
}
