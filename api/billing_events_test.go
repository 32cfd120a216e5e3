package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/mocks"
	"go.temporal.io/sdk/temporal"

	"github.com/partnerhub/fulfillment/api"
	"github.com/partnerhub/fulfillment/domain"
	"github.com/partnerhub/fulfillment/workflows"
)

const (
	fabrikamBilling  = "whsec_dW5pdC1mYWJyaWthbS1iaWxsaW5nLXNlY3JldA=="
	northwindBilling = "whsec_dW5pdC1ub3J0aHdpbmQtYmlsbGluZy1zZWNyZXQ="
)

// billingServer is the API over a seeded database with one active
// subscription of fabrikam's and one of northwind's, Temporal mocked.
func billingServer(t *testing.T) (*mocks.Client, http.Handler) {
	t.Helper()
	st, v := seededStore(t, `{
	  "publishers": [{"id": "contoso", "name": "Contoso", "landing_url": "https://contoso.example", "webhook_url": null,
	                  "signing_secret": "`+testSecret+`"}],
	  "offers": [{"id": "analytics", "publisher_id": "contoso", "name": "Analytics", "kind": "saas", "parent_offer_ids": [],
	              "plans": [{"id": "annual", "name": "Annual", "term": "P1Y", "unit_price_minor": 1200, "currency": "USD",
	                         "min_quantity": 1, "max_quantity": 100, "cancellation_window": "P7D", "activation_deadline": "P30D"}]}],
	  "customers": [{"id": "woodgrove", "partner_id": "fabrikam", "name": "Woodgrove"},
	                {"id": "tailspin", "partner_id": "northwind", "name": "Tailspin"}],
	  "partners": [{"id": "fabrikam", "name": "Fabrikam", "billing_signing_secret": "`+fabrikamBilling+`",
	                "agents": [{"id": "alice", "role": "admin_agent", "api_key": "`+testKey+`"}]},
	               {"id": "northwind", "name": "Northwind", "billing_signing_secret": "`+northwindBilling+`", "agents": []}]
	}`)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Microsecond)
	for id, partner := range map[string]string{"sub-fab": "fabrikam", "sub-nw": "northwind"} {
		customer := map[string]string{"fabrikam": "woodgrove", "northwind": "tailspin"}[partner]
		sub := domain.Subscription{
			ID: id, PartnerID: partner, CustomerID: customer, PublisherID: "contoso", OfferID: "analytics",
			PlanID: "annual", Quantity: 2, AutoRenew: true, LinkedSubscriptionIDs: []string{},
			EntitlementNumber: domain.EntitlementNumber(id), Status: domain.StatusActive,
			ActivationDeadline: now.Add(time.Hour), CreatedAt: now, UpdatedAt: now, Version: 1,
		}
		_, err := st.SaveChange(ctx, domain.Change{Subscription: sub}, nil)
		require.NoError(t, err)
	}
	c := &mocks.Client{}
	s := &api.Server{Store: st, Vault: v, Temporal: c, UpdateTimeout: 2 * time.Second}
	return c, s.Handler()
}

// billingPost signs body with secret in partner's name (skew shifts the
// timestamp) and posts it to /v1/billing/events.
func billingPost(t *testing.T, h http.Handler, partner, secret, body string, skew time.Duration) (int, http.Header, map[string]any) {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(secret)
	require.NoError(t, err)
	id, ts := "msg_"+strconv.FormatInt(time.Now().UnixNano(), 36), time.Now().Add(skew)
	sig, err := wh.Sign(id, ts, []byte(body))
	require.NoError(t, err)
	req := httptest.NewRequest(http.MethodPost, "/v1/billing/events", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Partner-Id", partner)
	req.Header.Set(standardwebhooks.HeaderWebhookID, id)
	req.Header.Set(standardwebhooks.HeaderWebhookTimestamp, strconv.FormatInt(ts.Unix(), 10))
	req.Header.Set(standardwebhooks.HeaderWebhookSignature, sig)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var out map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &out)
	return rec.Code, rec.Header(), out
}

func updatesSent(c *mocks.Client) []client.UpdateWorkflowOptions {
	var sent []client.UpdateWorkflowOptions
	for _, call := range c.Calls {
		if call.Method == "UpdateWorkflow" {
			sent = append(sent, call.Arguments.Get(1).(client.UpdateWorkflowOptions))
		}
	}
	return sent
}

// Only a message signed with the partner's own billing secret, within the
// timestamp tolerance, reaches a workflow; anything else is 401 and sends nothing.
func TestBillingEventSignature(t *testing.T) {
	c, h := billingServer(t)
	body := `{"event_id":"evt-1","type":"payment_failed","subscription_id":"sub-fab"}`
	for name, tc := range map[string]struct {
		partner, secret string
		skew            time.Duration
	}{
		"another partner's secret":   {"fabrikam", northwindBilling, 0},
		"a publisher's secret":       {"fabrikam", testSecret, 0},
		"six minutes old":            {"fabrikam", fabrikamBilling, -6 * time.Minute},
		"six minutes ahead":          {"fabrikam", fabrikamBilling, 6 * time.Minute},
		"an unknown partner":         {"nobody", fabrikamBilling, 0},
		"a publisher's id as sender": {"contoso", testSecret, 0},
	} {
		status, _, out := billingPost(t, h, tc.partner, tc.secret, body, tc.skew)
		assert.Equal(t, http.StatusUnauthorized, status, "%s: %v", name, out)
		assert.Equal(t, "unauthenticated", out["code"], name)
	}
	req := httptest.NewRequest(http.MethodPost, "/v1/billing/events", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+testKey)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	assert.Equal(t, http.StatusUnauthorized, rec.Code, "a partner's API key is no signature")
	assert.Empty(t, updatesSent(c))
}

// A signed event is one Update of the partner's own subscription, with an
// Update id from the event_id; the same event again is answered from the
// first answer, another event under its id is 422; another partner's
// subscription is 404; the workflow's refusal is its problem.
func TestBillingEventTakesEffectOnce(t *testing.T) {
	c, h := billingServer(t)
	suspended := domain.Subscription{ID: "sub-fab", PartnerID: "fabrikam", CustomerID: "woodgrove", PublisherID: "contoso",
		OfferID: "analytics", PlanID: "annual", Quantity: 2, Status: domain.StatusSuspended, LinkedSubscriptionIDs: []string{}}
	answering(c, suspended, nil)
	body := `{"event_id":"evt-1","type":"payment_failed","subscription_id":"sub-fab","reason":"card declined","occurred_at":"2026-11-30T08:00:00+01:00"}`
	status, _, out := billingPost(t, h, "fabrikam", fabrikamBilling, body, 0)
	require.Equal(t, http.StatusOK, status, "%v", out)
	assert.Equal(t, "suspended", out["status"])
	sent := updatesSent(c)
	require.Len(t, sent, 1)
	assert.Equal(t, workflows.UpdatePaymentFailed, sent[0].UpdateName)
	assert.Equal(t, "billing-event:fabrikam:evt-1", sent[0].UpdateID)
	assert.Equal(t, workflows.WorkflowID("sub-fab"), sent[0].WorkflowID)
	msg := sent[0].Args[0].(workflows.PaymentRequest)
	assert.Equal(t, workflows.Actor{Kind: "billing", ID: "fabrikam"}, msg.Actor)
	assert.Equal(t, "card declined", msg.Reason)
	require.NotNil(t, msg.OccurredAt)
	assert.Equal(t, time.Date(2026, 11, 30, 7, 0, 0, 0, time.UTC), *msg.OccurredAt)

	// The same event again (its fields in another order): the first answer, nothing sent.
	again := `{"type":"payment_failed","event_id":"evt-1","subscription_id":"sub-fab","occurred_at":"2026-11-30T07:00:00Z","reason":"card declined"}`
	status, header, replayed := billingPost(t, h, "fabrikam", fabrikamBilling, again, 0)
	assert.Equal(t, http.StatusOK, status)
	assert.Equal(t, "true", header.Get("Idempotent-Replayed"))
	assert.Equal(t, out, replayed)
	status, _, out = billingPost(t, h, "fabrikam", fabrikamBilling, `{"event_id":"evt-1","type":"payment_received","subscription_id":"sub-fab"}`, 0)
	assert.Equal(t, http.StatusUnprocessableEntity, status)
	assert.Equal(t, "idempotency_key_reused", out["code"])
	assert.Len(t, updatesSent(c), 1)

	// Another partner's subscription answers like an unknown one.
	_, _, foreign := billingPost(t, h, "fabrikam", fabrikamBilling, `{"event_id":"evt-2","type":"payment_failed","subscription_id":"sub-nw"}`, 0)
	_, _, unknown := billingPost(t, h, "fabrikam", fabrikamBilling, `{"event_id":"evt-3","type":"payment_failed","subscription_id":"sub-zz"}`, 0)
	assert.EqualValues(t, http.StatusNotFound, foreign["status"])
	assert.Equal(t, strings.Replace(unknown["detail"].(string), "sub-zz", "sub-nw", 1), foreign["detail"])
	assert.Len(t, updatesSent(c), 1)

	// Event ids are per partner: northwind's evt-1 is its own event.
	answering(c, domain.Subscription{}, temporal.NewNonRetryableApplicationError("only a suspended subscription can be reinstated", workflows.ErrInvalidState, nil))
	status, _, out = billingPost(t, h, "northwind", northwindBilling, `{"event_id":"evt-1","type":"payment_received","subscription_id":"sub-nw"}`, 0)
	assert.Equal(t, http.StatusConflict, status, "%v", out)
	assert.Equal(t, "invalid_state", out["code"])
	status, header, _ = billingPost(t, h, "northwind", northwindBilling, `{"event_id":"evt-1","type":"payment_received","subscription_id":"sub-nw"}`, 0)
	assert.Equal(t, http.StatusConflict, status, "a refusal is the event's answer too")
	assert.Equal(t, "true", header.Get("Idempotent-Replayed"))
	assert.Len(t, updatesSent(c), 2)
	c.AssertExpectations(t)
}

func TestDecodeBillingEvent(t *testing.T) {
	for _, tc := range []struct {
		body string
		ok   bool
	}{
		{`{"event_id":"e","type":"payment_failed","subscription_id":"s"}`, true},
		{`{"event_id":"e","type":"payment_received","subscription_id":"s","reason":null,"occurred_at":null}`, true},
		{`{"event_id":"e","type":"payment_failed","subscription_id":"s","occurred_at":"2026-11-30T08:00:00Z","reason":"card declined"}`, true},
		{`{"type":"payment_failed","subscription_id":"s"}`, false},
		{`{"event_id":" ","type":"payment_failed","subscription_id":"s"}`, false},
		{`{"event_id":"e","subscription_id":"s"}`, false},
		{`{"event_id":"e","type":"refund","subscription_id":"s"}`, false},
		{`{"event_id":"e","type":"payment_failed"}`, false},
		{`{"event_id":"e","type":"payment_failed","subscription_id":"s","amount":5}`, false},
		{`{"event_id":"e","type":"payment_failed","subscription_id":"s","occurred_at":"yesterday"}`, false},
		{`{"event_id":"e","type":"payment_failed","subscription_id":"s","reason":"` + strings.Repeat("x", 501) + `"}`, false},
		{`{"event_id":"` + strings.Repeat("e", 256) + `","type":"payment_failed","subscription_id":"s"}`, false},
		{`{"event_id":"e","type":"payment_failed","subscription_id":"s"} {}`, false},
		{`[]`, false},
	} {
		_, err := api.DecodeBillingEvent([]byte(tc.body))
		if tc.ok {
			assert.NoError(t, err, tc.body)
			continue
		}
		var p *api.Problem
		if assert.ErrorAs(t, err, &p, tc.body) {
			assert.Equal(t, "invalid_request", p.Code, tc.body)
		}
	}
}
