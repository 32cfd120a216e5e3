package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/partnerhub/fulfillment/domain"
	"github.com/partnerhub/fulfillment/testenv"
)

// billing runs `fulfillment billing …` against the stack, as an operator would.
func (w *world) billing(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(testenv.Binary(t), append([]string{"billing"}, args...)...)
	cmd.Env = w.Env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// A failed payment suspends a subscription (publisher told, contacts emailed,
// ops find it in the Temporal UI), a payment reinstates it with the same
// term, and past the grace period it ends — unsubscribed, with its app.
func TestSuspensionForNonPayment(t *testing.T) {
	t.Parallel()
	w, mp := mailWorld(t)
	sub := w.admin.Purchase(map[string]any{"customer_id": "woodgrove", "offer_id": "analytics", "plan_id": "grace-6s",
		"quantity": 2, "customer_contact_email": "ann@woodgrove.example"})
	require.Equal(t, http.StatusCreated, sub.Status, sub.String())
	active := w.fulfill(t, sub, 2)
	id := sub.Str("id")

	out, err := w.billing(t, "payment-received", "--subscription", id, "--operator", "olga")
	require.Error(t, err, "an active subscription cannot be reinstated: %s", out)
	assert.Contains(t, out, "invalid_state")

	out, err = w.billing(t, "payment-failed", "--subscription", id, "--operator", "olga", "--reason", "card declined")
	require.NoError(t, err, out)
	assert.Contains(t, out, id+" is suspended")
	got := w.admin.Do(http.MethodGet, "/v1/subscriptions/"+id, nil)
	assert.Equal(t, "suspended", got.Str("status"))
	assert.Equal(t, "active", got.Str("tab"))
	mail := waitMail(t, mp, "ann@woodgrove.example", "Contoso Analytics is suspended")
	assert.Contains(t, mail.Text, "does not renew")
	testenv.WaitFor(t, 30*time.Second, "ops to find it suspended", func() bool {
		resp, err := w.Temporal.Client(t).ListWorkflow(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{
			Query: fmt.Sprintf(`SubscriptionStatus="suspended" AND WorkflowId=%q`, "subscription/"+id),
		})
		return err == nil && len(resp.Executions) == 1
	})

	out, err = w.billing(t, "payment-received", "--subscription", id, "--operator", "olga")
	require.NoError(t, err, out)
	back := w.admin.Do(http.MethodGet, "/v1/subscriptions/"+id, nil)
	assert.Equal(t, "active", back.Str("status"))
	assert.Equal(t, active.Str("term_end"), back.Str("term_end"), "reinstated with the same term dates")
	assert.Equal(t, 1, w.ledgerRows(t, id, domain.LedgerCharge))

	// An app under it; this time nobody pays.
	app := w.admin.Purchase(map[string]any{"customer_id": "woodgrove", "offer_id": "insights-app", "plan_id": "monthly",
		"quantity": 1, "parent_subscription_id": id})
	require.Equal(t, http.StatusCreated, app.Status, app.String())
	out, err = w.billing(t, "payment-failed", "--subscription", id, "--operator", "olga")
	require.NoError(t, err, out)
	w.waitStatus(t, id, "unsubscribed", 30*time.Second)
	w.waitStatus(t, app.Str("id"), "deactivated", 30*time.Second)
	assert.Equal(t, 1, w.ledgerRows(t, id, domain.LedgerCharge))
	assert.Zero(t, w.ledgerRows(t, id, domain.LedgerRefund), "ending for non-payment refunds nothing")
	w.requireAgree(t, id)
	ended := waitMail(t, mp, "ann@woodgrove.example", "Contoso Analytics has ended")
	assert.Contains(t, ended.Text, "Insights", "it lists the linked app that ended with it")

	var audited int
	require.NoError(t, w.Store.DB().Get(&audited, `SELECT count(*) FROM audit_log WHERE actor = 'operator:olga' AND action LIKE 'billing.%'`))
	assert.Equal(t, 4, audited, "every command is audited, refused ones too")
}
