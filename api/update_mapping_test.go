package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/mocks"
	"go.temporal.io/sdk/temporal"

	"github.com/partnerhub/fulfillment/api"
	"github.com/partnerhub/fulfillment/domain"
	"github.com/partnerhub/fulfillment/workflows"
)

// updateServer is the API over a seeded database holding one subscription in
// the read model, with Temporal played by the SDK's mock client: the tests
// below pin down how each answer of a workflow maps to HTTP.
func updateServer(t *testing.T, status domain.Status) (*mocks.Client, http.Handler, domain.Subscription) {
	t.Helper()
	st, v := seededStore(t, `{
	  "publishers": [{"id": "contoso", "name": "Contoso", "landing_url": "https://contoso.example", "webhook_url": null,
	                  "signing_secret": "`+testSecret+`"}],
	  "offers": [{"id": "analytics", "publisher_id": "contoso", "name": "Analytics", "kind": "saas", "parent_offer_ids": [],
	              "plans": [{"id": "annual", "name": "Annual", "term": "P1Y", "unit_price_minor": 1200, "currency": "USD",
	                         "min_quantity": 1, "max_quantity": 100, "cancellation_window": "P7D", "activation_deadline": "P30D"}]}],
	  "customers": [{"id": "woodgrove", "partner_id": "fabrikam", "name": "Woodgrove"}],
	  "partners": [{"id": "fabrikam", "name": "Fabrikam", "agents": [{"id": "alice", "role": "admin_agent", "api_key": "`+testKey+`"}]}]
	}`)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Microsecond)
	sub := domain.Subscription{
		ID: "sub-1", PartnerID: "fabrikam", CustomerID: "woodgrove", PublisherID: "contoso", OfferID: "analytics",
		PlanID: "annual", Quantity: 2, AutoRenew: true, LinkedSubscriptionIDs: []string{},
		EntitlementNumber: domain.EntitlementNumber("sub-1"), Status: status,
		ActivationDeadline: now.Add(time.Hour), CreatedAt: now, UpdatedAt: now, Version: 1,
	}
	_, err := st.SaveChange(ctx, domain.Change{Subscription: sub}, nil)
	require.NoError(t, err)
	c := &mocks.Client{}
	s := &api.Server{Store: st, Vault: v, Temporal: c, UpdateTimeout: 2 * time.Second}
	return c, s.Handler(), sub
}

// answering makes the mock's next UpdateWorkflow return a handle whose
// result is sub or err.
func answering(c *mocks.Client, sub domain.Subscription, err error) *mock.Call {
	h := &mocks.WorkflowUpdateHandle{}
	h.On("Get", mock.Anything, mock.Anything).Return(func(_ context.Context, out any) error {
		if err == nil {
			*out.(*domain.Subscription) = sub
		}
		return err
	})
	return c.On("UpdateWorkflow", mock.Anything, mock.Anything).Return(h, nil).Once()
}

func patch(h http.Handler, body string) (int, map[string]any) {
	req := httptest.NewRequest(http.MethodPatch, "/v1/subscriptions/sub-1", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+testKey)
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var out map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &out)
	return rec.Code, out
}

func TestUpdateRefusalMapsToItsProblem(t *testing.T) {
	for _, tc := range []struct {
		code   string
		status int
	}{
		{workflows.ErrCancellationWindowClosed, http.StatusConflict},
		{workflows.ErrInvalidState, http.StatusConflict},
		{workflows.ErrValidationFailed, http.StatusUnprocessableEntity},
	} {
		t.Run(tc.code, func(t *testing.T) {
			c, h, sub := updateServer(t, domain.StatusActive)
			answering(c, sub, temporal.NewNonRetryableApplicationError("refused", tc.code, nil))
			status, body := patch(h, `{"quantity": 1}`)
			assert.Equal(t, tc.status, status, "%v", body)
			assert.Equal(t, tc.code, body["code"])
			assert.Equal(t, "refused", body["detail"])
		})
	}
}

func TestNoOpChangeAnswersTheSubscriptionAsItStands(t *testing.T) {
	c, h, sub := updateServer(t, domain.StatusActive)
	nickname := "HQ"
	sub.Nickname = &nickname
	answering(c, domain.Subscription{}, temporal.NewNonRetryableApplicationError("nothing to change", workflows.ErrNoChange, nil, sub))
	status, body := patch(h, `{"nickname": "HQ"}`)
	assert.Equal(t, http.StatusOK, status, "%v", body)
	assert.Equal(t, "HQ", body["nickname"])
	assert.Equal(t, "sub-1", body["id"])
}

func TestMessageTurnedAwayDuringContinueAsNewIsSentAgain(t *testing.T) {
	c, h, sub := updateServer(t, domain.StatusActive)
	comeAgain := temporal.NewNonRetryableApplicationError("moving", workflows.ErrContinuingAsNew, nil)
	answering(c, sub, comeAgain)
	answering(c, sub, comeAgain)
	sub.Quantity = 7
	answering(c, sub, nil)
	status, body := patch(h, `{"quantity": 7}`)
	assert.Equal(t, http.StatusOK, status, "%v", body)
	assert.EqualValues(t, 7, body["quantity"])
	var ids []string
	for _, call := range c.Calls {
		ids = append(ids, call.Arguments.Get(1).(client.UpdateWorkflowOptions).UpdateID)
	}
	require.Len(t, ids, 3, "sent until the next run took it")
	assert.Equal(t, ids[0], ids[1], "under the same Update id")
	assert.Equal(t, ids[0], ids[2])
}

// Temporal giving up on its own (an Update aborted as the run closed) is sent
// again under the same id; only the caller's own deadline ends the wait, with
// a 503 that says the change may still apply.
func TestUpdateTimeoutSaysTheChangeMayStillApply(t *testing.T) {
	c, h, sub := updateServer(t, domain.StatusActive)
	answering(c, sub, serviceerror.NewDeadlineExceeded("update aborted"))
	sub.Nickname = ptr("later")
	answering(c, sub, nil)
	status, body := patch(h, `{"nickname": "later"}`)
	assert.Equal(t, http.StatusOK, status, "%v", body)
	require.Len(t, c.Calls, 2)
	assert.Equal(t, c.Calls[0].Arguments.Get(1).(client.UpdateWorkflowOptions).UpdateID,
		c.Calls[1].Arguments.Get(1).(client.UpdateWorkflowOptions).UpdateID, "sent again under the same Update id")

	c, h, sub = updateServer(t, domain.StatusActive)
	h2 := &mocks.WorkflowUpdateHandle{}
	h2.On("Get", mock.Anything, mock.Anything).Return(func(ctx context.Context, _ any) error {
		<-ctx.Done() // no worker answers within UPDATE_TIMEOUT
		return ctx.Err()
	})
	c.On("UpdateWorkflow", mock.Anything, mock.Anything).Return(h2, nil)
	status, body = patch(h, `{"nickname": "never"}`)
	assert.Equal(t, http.StatusServiceUnavailable, status)
	assert.Equal(t, "unavailable", body["code"])
	assert.Contains(t, body["detail"], "may still take effect")
}

func ptr[T any](v T) *T { return &v }

func TestClosedWorkflowIsInvalidState(t *testing.T) {
	c, h, _ := updateServer(t, domain.StatusCancelled)
	c.On("UpdateWorkflow", mock.Anything, mock.Anything).
		Return(nil, serviceerror.NewNotFound("workflow execution already completed")).Once()
	status, body := patch(h, `{"nickname": "late"}`)
	assert.Equal(t, http.StatusConflict, status, "%v", body)
	assert.Equal(t, "invalid_state", body["code"])
}
