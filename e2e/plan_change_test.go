package e2e

import (
	"math/big"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/partnerhub/fulfillment/domain"
	"github.com/partnerhub/fulfillment/testenv"
)

// planChange asks for a plan change as agent under an Idempotency-Key.
func planChange(agent testenv.Partner, id, planID, key string) testenv.Response {
	return agent.Do(http.MethodPost, "/v1/subscriptions/"+id+"/plan-change", map[string]any{"plan_id": planID}, "Idempotency-Key", key)
}

// eventTypes lists a subscription's timeline event types as the partner reads them.
func eventTypes(t *testing.T, agent testenv.Partner, id string) []string {
	t.Helper()
	r := agent.Do(http.MethodGet, "/v1/subscriptions/"+id+"/events", nil)
	require.Equal(t, http.StatusOK, r.Status, r.String())
	var out []string
	for _, e := range r.Body["items"].([]any) {
		out = append(out, e.(map[string]any)["type"].(string))
	}
	return out
}

// An admin upgrades; a sales agent may not; the signing publisher is told,
// lets the veto window pass, and the ledger gets the proration of the rest
// of the term, to the cent; the publisher is told the change took effect.
func TestPlanChangeUpgradeTakesEffectAfterTheVetoWindow(t *testing.T) {
	t.Parallel()
	rc := newWebhookReceiver(t, ContosoSecret, ContosoSecret2)
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	w := newWorld(t, testenv.StackOptions{Seed: seed(srv.URL)})
	keepLogsOnFailure(t, w)

	p := w.buy(t, "analytics", "pc-standard", 3)
	id := p.Str("id")
	pending := planChange(w.admin, id, "pc-premium", uuid.NewString())
	mustProblem(t, pending, http.StatusConflict, "invalid_state", "only an active subscription changes plan")
	w.fulfill(t, p, 3)

	sales := planChange(w.sales, id, "pc-premium", uuid.NewString())
	mustProblem(t, sales, http.StatusForbidden, "forbidden_role")
	assert.Contains(t, sales.Str("detail"), "ask an admin agent")
	mustProblem(t, planChange(w.admin, id, "pc-standard", uuid.NewString()), http.StatusUnprocessableEntity, "validation_failed")
	mustProblem(t, planChange(w.admin, id, "no-such-plan", uuid.NewString()), http.StatusUnprocessableEntity, "validation_failed")
	mustProblem(t, planChange(w.admin, id, "monthly", uuid.NewString()), http.StatusUnprocessableEntity, "validation_failed",
		"a plan of another offer is unknown to this one")

	key := uuid.NewString()
	r := planChange(w.admin, id, "pc-premium", key)
	require.Equal(t, http.StatusAccepted, r.Status, r.String())
	assert.Equal(t, "pc-standard", r.Str("plan_id"), "nothing changes before the veto window ends")
	pc, ok := r.Body["pending_plan_change"].(map[string]any)
	require.True(t, ok, r.String())
	assert.Equal(t, "pc-premium", pc["plan_id"])
	assert.Equal(t, "pc-standard", pc["from_plan_id"])
	assert.Equal(t, "upgrade", pc["kind"])
	assert.Equal(t, "now", pc["effective"])
	assert.Equal(t, "awaiting_publisher", pc["stage"])
	requested, err := time.Parse(time.RFC3339Nano, pc["requested_at"].(string))
	require.NoError(t, err)
	vetoEnds, err := time.Parse(time.RFC3339Nano, pc["veto_ends_at"].(string))
	require.NoError(t, err)
	assert.Equal(t, 8*time.Second, vetoEnds.Sub(requested), "the current plan's veto window")

	again := planChange(w.admin, id, "pc-premium", key)
	require.Equal(t, http.StatusAccepted, again.Status, "the same request under the same key: %s", again.String())
	assert.Equal(t, pc, again.Body["pending_plan_change"])
	mustProblem(t, planChange(w.admin, id, "pc-standard-long-veto", key), http.StatusUnprocessableEntity, "idempotency_key_reused")
	second := planChange(w.admin, id, "pc-standard-long-veto", uuid.NewString())
	mustProblem(t, second, http.StatusConflict, "invalid_state")
	assert.Contains(t, second.Str("detail"), "pc-premium", "the refusal names the pending change")

	asked := rc.waitAcked(t, "subscription.plan_change_requested", id)
	data, _ := asked.Body["data"].(map[string]any)
	assert.Equal(t, "pc-standard", data["from_plan_id"], "%s", asked.Raw)
	assert.Equal(t, "pc-premium", data["plan_id"])
	assert.Equal(t, "pc-premium", subscriptionOf(asked)["pending_plan_change"].(map[string]any)["plan_id"])

	// The publisher does not refuse: the change takes effect when the window ends.
	var changed testenv.Response
	testenv.WaitFor(t, 30*time.Second, "the plan change to take effect", func() bool {
		changed = w.admin.Do(http.MethodGet, "/v1/subscriptions/"+id, nil)
		return changed.Str("plan_id") == "pc-premium"
	})
	assert.Nil(t, changed.Body["pending_plan_change"])
	var row struct {
		ID          string    `db:"id"`
		AmountMinor int64     `db:"amount_minor"`
		CreatedAt   time.Time `db:"created_at"`
		PeriodStart time.Time `db:"period_start"`
		PeriodEnd   time.Time `db:"period_end"`
	}
	require.NoError(t, w.Store.DB().Get(&row, `
		SELECT id, amount_minor, created_at, period_start, period_end FROM ledger
		WHERE subscription_id = $1 AND kind = 'proration'`, id))
	assert.False(t, row.CreatedAt.Before(vetoEnds), "applied when the veto window ended, not before")
	// (2500 − 1000) × 3 seats × remaining / term length, in milliseconds, truncated toward zero.
	full := big.NewInt((2500 - 1000) * 3)
	want := new(big.Int).Mul(full, big.NewInt(row.PeriodEnd.Sub(row.CreatedAt).Milliseconds()))
	want.Quo(want, big.NewInt(row.PeriodEnd.Sub(row.PeriodStart).Milliseconds()))
	assert.Equal(t, want.Int64(), row.AmountMinor, "proration to the cent")
	assert.Greater(t, row.AmountMinor, int64(4400), "nearly the whole year's difference")
	bill := w.admin.Do(http.MethodGet, "/v1/subscriptions/"+id+"/billing", nil)
	assert.EqualValues(t, 1000*3+row.AmountMinor, bill.Body["balance_minor"])
	assert.Equal(t, 1, w.ledgerRows(t, id, domain.LedgerProration))

	done := rc.waitAcked(t, "subscription.plan_changed", id)
	assert.Equal(t, "pc-premium", subscriptionOf(done)["plan_id"])
	assert.EqualValues(t, row.AmountMinor, done.Body["data"].(map[string]any)["proration_minor"])
	assert.Subset(t, eventTypes(t, w.admin, id), []string{"action_refused", "plan_change_requested", "plan_changed"})
	mustProblem(t, w.contoso.Send("/v1/publisher/subscriptions/"+id+"/plan-change/refuse", map[string]any{"reason": "too late"}),
		http.StatusConflict, "invalid_state", "nothing is pending any more")
	state := w.requireAgree(t, id)
	assert.Equal(t, "pc-premium", state.PlanID)
}

// The publisher refuses inside the veto window: the plan stays, nothing is
// billed, the partner reads the reason on the timeline; a redelivered
// refusal is answered the same, a second one finds nothing pending.
func TestPlanChangeRefusedByThePublisher(t *testing.T) {
	t.Parallel()
	w := newWorld(t, testenvOpts())
	keepLogsOnFailure(t, w)
	p := w.buy(t, "analytics", "pc-standard-long-veto", 2)
	id := p.Str("id")
	w.fulfill(t, p, 2)

	r := planChange(w.admin, id, "pc-premium", uuid.NewString())
	require.Equal(t, http.StatusAccepted, r.Status, r.String())
	mustProblem(t, w.contoso.Send("/v1/publisher/subscriptions/"+id+"/plan-change/refuse", map[string]any{}),
		http.StatusBadRequest, "invalid_request", "a refusal says why")
	mustProblem(t, w.litware.Send("/v1/publisher/subscriptions/"+id+"/plan-change/refuse", map[string]any{"reason": "not mine"}),
		http.StatusNotFound, "not_found", "another publisher's subscription")

	webhookID := "msg_" + uuid.NewString()
	refused := w.contoso.SendAs(webhookID, "/v1/publisher/subscriptions/"+id+"/plan-change/refuse", map[string]any{"reason": "premium needs a contract"})
	require.Equal(t, http.StatusOK, refused.Status, refused.String())
	assert.Equal(t, "pc-standard-long-veto", refused.Str("plan_id"))
	assert.Nil(t, refused.Body["pending_plan_change"])
	replayed := w.contoso.SendAs(webhookID, "/v1/publisher/subscriptions/"+id+"/plan-change/refuse", map[string]any{"reason": "premium needs a contract"})
	assert.Equal(t, http.StatusOK, replayed.Status, replayed.String())
	assert.Equal(t, refused.Raw, replayed.Raw, "a redelivery gets the first answer")
	mustProblem(t, w.contoso.Send("/v1/publisher/subscriptions/"+id+"/plan-change/refuse", map[string]any{"reason": "again"}),
		http.StatusConflict, "invalid_state", "nothing pending")

	got := w.admin.Do(http.MethodGet, "/v1/subscriptions/"+id, nil)
	assert.Equal(t, "pc-standard-long-veto", got.Str("plan_id"))
	assert.Nil(t, got.Body["pending_plan_change"])
	events := w.admin.Do(http.MethodGet, "/v1/subscriptions/"+id+"/events", nil)
	var reason any
	for _, e := range events.Body["items"].([]any) {
		if ev := e.(map[string]any); ev["type"] == "plan_change_refused" {
			assert.Equal(t, "publisher:contoso", ev["actor"])
			reason = ev["detail"].(map[string]any)["reason"]
		}
	}
	assert.Equal(t, "premium needs a contract", reason)
	assert.Zero(t, w.ledgerRows(t, id, domain.LedgerProration))
	var pendingColumn *string
	require.NoError(t, w.Store.DB().Get(&pendingColumn, `SELECT pending_plan_change::text FROM subscriptions WHERE id = $1`, id))
	assert.Nil(t, pendingColumn, "the read model's pending change is cleared")
	w.requireAgree(t, id)
}

// activeAfterTheWindow buys quantity seats of pc-20s (20-second terms, a
// 2-second cancellation window), activates it and returns once its
// cancellation window has closed: a downgrade asked now waits for the renewal.
func activeAfterTheWindow(t *testing.T, w *world, quantity int) (id string, termEnd time.Time) {
	t.Helper()
	p := w.buy(t, "analytics", "pc-20s", quantity)
	active := w.fulfill(t, p, quantity)
	windowEnds, err := time.Parse(time.RFC3339Nano, active.Str("cancellation_window_ends_at"))
	require.NoError(t, err)
	termEnd, err = time.Parse(time.RFC3339Nano, active.Str("term_end"))
	require.NoError(t, err)
	time.Sleep(time.Until(windowEnds) + 200*time.Millisecond) // the clock itself is the condition
	return p.Str("id"), termEnd
}

// A downgrade asked after the cancellation window takes effect at the
// renewal: no proration, and the next term is charged the new plan's price.
func TestPlanChangeDowngradeAtRenewal(t *testing.T) {
	t.Parallel() // mostly waits on second-long terms: overlaps with the other waiting tests
	w := newWorld(t, testenvOpts())
	keepLogsOnFailure(t, w)
	id, termEnd := activeAfterTheWindow(t, w, 3)
	require.Greater(t, time.Until(termEnd), 3*time.Second, "the veto window (1 s) ends before the term")

	r := planChange(w.admin, id, "pc-20s-lite", uuid.NewString())
	require.Equal(t, http.StatusAccepted, r.Status, r.String())
	pc := r.Body["pending_plan_change"].(map[string]any)
	assert.Equal(t, "downgrade", pc["kind"])
	assert.Equal(t, "renewal", pc["effective"])

	var renewed testenv.Response
	testenv.WaitFor(t, 30*time.Second, "the renewal on the new plan", func() bool {
		renewed = w.admin.Do(http.MethodGet, "/v1/subscriptions/"+id, nil)
		n, _ := renewed.Body["term_number"].(float64)
		return n >= 2
	})
	assert.Equal(t, "pc-20s-lite", renewed.Str("plan_id"))
	var charges []int64
	require.NoError(t, w.Store.DB().Select(&charges, `
		SELECT amount_minor FROM ledger WHERE subscription_id = $1 AND kind = 'charge' AND term_number <= 2 ORDER BY term_number`, id))
	assert.Equal(t, []int64{700 * 3, 400 * 3}, charges, "term 1 on the old price, term 2 on the new")
	assert.Zero(t, w.ledgerRows(t, id, domain.LedgerProration), "a downgrade at renewal prorates nothing")
	assert.Subset(t, eventTypes(t, w.admin, id), []string{"plan_change_requested", "plan_change_scheduled", "plan_changed", "renewed"})
	off := w.admin.Do(http.MethodPost, "/v1/subscriptions/"+id+"/deactivate", nil)
	require.Equal(t, http.StatusOK, off.Status, off.String())
}

// A downgrade scheduled for the renewal is withdrawn by an admin (a sales
// agent may not): the next term starts on the old plan at its price.
func TestPlanChangeWithdrawnBeforeTheRenewal(t *testing.T) {
	t.Parallel() // mostly waits on second-long terms: overlaps with the other waiting tests
	w := newWorld(t, testenvOpts())
	keepLogsOnFailure(t, w)
	id, _ := activeAfterTheWindow(t, w, 2)

	r := planChange(w.admin, id, "pc-20s-lite", uuid.NewString())
	require.Equal(t, http.StatusAccepted, r.Status, r.String())
	testenv.WaitFor(t, 15*time.Second, "the downgrade scheduled for the renewal", func() bool {
		pc, _ := w.admin.Do(http.MethodGet, "/v1/subscriptions/"+id, nil).Body["pending_plan_change"].(map[string]any)
		return pc != nil && pc["stage"] == "scheduled"
	})
	// Scheduled, the next term is announced at the new plan's price ...
	assert.EqualValues(t, 400*2, nextTermCharge(t, w, id), "upcoming: term 2 on the scheduled plan")
	refused := w.sales.Do(http.MethodDelete, "/v1/subscriptions/"+id+"/plan-change", nil)
	assert.Equal(t, http.StatusForbidden, refused.Status, refused.String())
	key := uuid.NewString()
	withdrawn := w.admin.Do(http.MethodDelete, "/v1/subscriptions/"+id+"/plan-change", nil, "Idempotency-Key", key)
	require.Equal(t, http.StatusOK, withdrawn.Status, withdrawn.String())
	assert.Nil(t, withdrawn.Body["pending_plan_change"])
	// ... withdrawn, at the current plan's, which is what term 2 is charged.
	assert.EqualValues(t, 700*2, nextTermCharge(t, w, id), "upcoming: term 2 on the current plan")
	replay := w.admin.Do(http.MethodDelete, "/v1/subscriptions/"+id+"/plan-change", nil, "Idempotency-Key", key)
	assert.Equal(t, http.StatusOK, replay.Status, "the same key again answers the same: %s", replay)
	nothing := w.admin.Do(http.MethodDelete, "/v1/subscriptions/"+id+"/plan-change", nil)
	assert.Equal(t, http.StatusConflict, nothing.Status, nothing.String())

	testenv.WaitFor(t, 40*time.Second, "the renewal", func() bool {
		n, _ := w.admin.Do(http.MethodGet, "/v1/subscriptions/"+id, nil).Body["term_number"].(float64)
		return n >= 2
	})
	renewed := w.admin.Do(http.MethodGet, "/v1/subscriptions/"+id, nil)
	assert.Equal(t, "pc-20s", renewed.Str("plan_id"))
	var charges []int64
	require.NoError(t, w.Store.DB().Select(&charges, `
		SELECT amount_minor FROM ledger WHERE subscription_id = $1 AND kind = 'charge' AND term_number <= 2 ORDER BY term_number`, id))
	assert.Equal(t, []int64{700 * 2, 700 * 2}, charges, "both terms on the old plan's price")
	types := eventTypes(t, w.admin, id)
	assert.Contains(t, types, "plan_change_withdrawn")
	assert.NotContains(t, types, "plan_changed")
	off := w.admin.Do(http.MethodPost, "/v1/subscriptions/"+id+"/deactivate", nil)
	require.Equal(t, http.StatusOK, off.Status, off.String())
}

// nextTermCharge is what the billing endpoint announces for term 2 (the
// subscription must still be in term 1).
func nextTermCharge(t *testing.T, w *world, id string) float64 {
	t.Helper()
	for _, u := range w.billingOf(t, id).upcoming {
		if u["term_number"] == float64(2) {
			return u["amount_minor"].(float64)
		}
	}
	t.Fatalf("no upcoming charge for term 2 of %s", id)
	return 0
}
