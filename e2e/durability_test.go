package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/partnerhub/fulfillment/domain"
	"github.com/partnerhub/fulfillment/testenv"
	"github.com/partnerhub/fulfillment/workflows"
)

// outageLength is how long the durability tests cut a dependency: 60 s by
// default (OUTAGE=2m, say, for a longer one).
func outageLength(t *testing.T) time.Duration {
	d := 60 * time.Second
	if v := os.Getenv("OUTAGE"); v != "" {
		var err error
		d, err = time.ParseDuration(v)
		require.NoError(t, err, "OUTAGE")
	}
	return d
}

// workflowState asks Temporal for the subscription its workflow holds.
func (w *world) workflowState(t *testing.T, id string) domain.Subscription {
	t.Helper()
	var s domain.Subscription
	testenv.WaitFor(t, 30*time.Second, "the state query of "+id, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		v, err := w.Temporal.Client(t).QueryWorkflow(ctx, workflows.WorkflowID(id), "", workflows.QueryState)
		return err == nil && v.Get(&s) == nil
	})
	return s
}

// requireAgree checks that Temporal, the read model and the ledger tell the
// same story of one subscription: same status, version and term; charges
// for every billed term, one per billing period (one per term when it bills
// once per term), refunds never above charges, the balance their sum.
func (w *world) requireAgree(t *testing.T, id string) domain.Subscription {
	t.Helper()
	state := w.workflowState(t, id)
	row, err := w.Store.Subscription(context.Background(), id)
	require.NoError(t, err)
	assert.Equal(t, state.Status, row.Status, "%s: status", id)
	assert.Equal(t, state.Version, row.Version, "%s: version", id)
	assert.Equal(t, state.TermNumber, row.TermNumber, "%s: term", id)
	assert.Equal(t, state.Quantity, row.Quantity, "%s: quantity", id)
	var charges, periods, terms int
	require.NoError(t, w.Store.DB().Get(&charges, `SELECT count(*) FROM ledger WHERE subscription_id = $1 AND kind = 'charge'`, id))
	require.NoError(t, w.Store.DB().Get(&periods, `SELECT count(DISTINCT (term_number, period_start)) FROM ledger WHERE subscription_id = $1 AND kind = 'charge'`, id))
	require.NoError(t, w.Store.DB().Get(&terms, `SELECT count(DISTINCT term_number) FROM ledger WHERE subscription_id = $1 AND kind = 'charge'`, id))
	assert.Equal(t, state.TermNumber, terms, "%s: every billed term is charged", id)
	assert.Equal(t, periods, charges, "%s: never two charges for a billing period", id)
	var refunds, charged int64
	require.NoError(t, w.Store.DB().Get(&refunds, `SELECT coalesce(-sum(amount_minor), 0) FROM ledger WHERE subscription_id = $1 AND kind = 'refund'`, id))
	require.NoError(t, w.Store.DB().Get(&charged, `SELECT coalesce(sum(amount_minor), 0) FROM ledger WHERE subscription_id = $1 AND kind <> 'refund'`, id))
	assert.LessOrEqual(t, refunds, charged, "%s: refunds never above charges", id)
	return state
}

// No dependency outage, however long, fails or freezes a workflow: across a
// cut of PostgreSQL (then, separately, of Temporal) a renewal, an activation
// deadline, a cascade from a parent that missed its deadline and a publisher
// callback all come out as their timers and messages call for, and Temporal,
// the read model and the ledger agree.
func TestOutageAcrossDeadlinesRenewalsCascadesAndCallbacks(t *testing.T) {
	t.Parallel()
	for _, dependency := range []string{"postgres", "temporal"} {
		t.Run(dependency, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, testenv.StackOptions{Proxied: true, Env: []string{"UPDATE_TIMEOUT=3s"}})
			proxy := w.PostgresProxy
			if dependency == "temporal" {
				proxy = w.TemporalProxy
			}
			renewing := w.buy(t, "analytics", "term-8s", 2)
			w.fulfill(t, renewing, 2)
			expiring := w.buy(t, "analytics", "deadline-8s", 1)
			parent := w.buy(t, "analytics", "deadline-8s", 1)
			app := w.buyWith(t, map[string]any{"customer_id": "woodgrove", "offer_id": "insights-app", "plan_id": "monthly",
				"quantity": 1, "parent_subscription_id": parent.Str("id")})
			called := w.buy(t, "analytics", "annual", 3)
			r := w.deliver(t, "/v1/publisher/subscriptions/"+called.Str("id")+"/licenses", map[string]any{"assigned": 3})
			require.Equal(t, http.StatusOK, r.Status, r.String())
			termAtCut := int(w.admin.Do(http.MethodGet, "/v1/subscriptions/"+renewing.Str("id"), nil).Body["term_number"].(float64))

			proxy.Cut()
			cutAt := time.Now()
			activate := map[string]any{"site_url": "https://woodgrove.contoso.example"}
			refused := w.contoso.SendAs("activate-during-outage", "/v1/publisher/subscriptions/"+called.Str("id")+"/activate", activate)
			assert.Equal(t, http.StatusServiceUnavailable, refused.Status, refused.String())
			time.Sleep(outageLength(t) - time.Since(cutAt)) // the outage itself: nothing to wait for
			proxy.Restore()

			// The publisher redelivers the refused callback with its webhook-id.
			var lastAt time.Time
			redelivered := func() bool {
				r = w.contoso.SendAs("activate-during-outage", "/v1/publisher/subscriptions/"+called.Str("id")+"/activate", activate)
				lastAt = time.Now()
				return r.Status == http.StatusOK
			}
			t.Cleanup(func() {
				if t.Failed() && !lastAt.IsZero() {
					t.Logf("the redelivered callback's last answer, %s after the cut: %s", lastAt.Sub(cutAt).Round(time.Second), r.String())
				}
			})
			// The callback must go through; it has two minutes. Once, in a full
			// suite on a host half as fast, it had not after one (cause not found:
			// the dev server is shared with the other stacks, the flood test's
			// among them; a failure now prints the stack's log).
			testenv.WaitFor(t, 2*time.Minute, "the refused callback to go through on redelivery", redelivered)
			assert.Equal(t, "active", r.Str("status"))
			w.waitStatus(t, expiring.Str("id"), "fulfillment_expired", 60*time.Second)
			w.waitStatus(t, parent.Str("id"), "fulfillment_expired", 60*time.Second)
			w.waitStatus(t, app.Str("id"), "deactivated", 60*time.Second)
			testenv.WaitFor(t, 60*time.Second, "renewals to resume", func() bool {
				g := w.admin.Do(http.MethodGet, "/v1/subscriptions/"+renewing.Str("id"), nil)
				n, _ := g.Body["term_number"].(float64)
				return int(n) > termAtCut+1
			})
			off := w.admin.Do(http.MethodPatch, "/v1/subscriptions/"+renewing.Str("id"), map[string]any{"auto_renew": false})
			require.Equal(t, http.StatusOK, off.Status, off.String())
			w.waitStatus(t, renewing.Str("id"), "expired", 30*time.Second)

			for _, id := range []string{renewing.Str("id"), expiring.Str("id"), parent.Str("id"), app.Str("id"), called.Str("id")} {
				w.requireAgree(t, id)
			}
			assert.Equal(t, 1, w.ledgerRows(t, called.Str("id"), domain.LedgerCharge), "the redelivered callback billed once")
			assert.Zero(t, w.ledgerRows(t, expiring.Str("id"), domain.LedgerCharge))
			assert.Zero(t, w.ledgerRows(t, app.Str("id"), domain.LedgerCharge))
		})
	}
}

// A flood of changes on one subscription (far beyond the ~2,000 Updates a
// run takes) leaves it answering: the workflow continues as new on its own,
// and the admin can still cancel inside the window. Every change is applied
// exactly once, also those a loaded machine answered 503 and the client sent
// again under the same Idempotency-Key.
//
// FLOOD_CHANGES sets the number (default 2,500, past the server's 2,000 per
// run; 5,000 takes about four minutes here).
func TestFloodOfChangesLeavesTheSubscriptionAnswering(t *testing.T) {
	t.Parallel()
	const concurrency = 16
	changes := int64(2500)
	if v := os.Getenv("FLOOD_CHANGES"); v != "" {
		n, err := strconv.Atoi(v)
		require.NoError(t, err, "FLOOD_CHANGES")
		changes = int64(n)
	}
	w := newWorld(t, testenv.StackOptions{})
	t.Cleanup(func() {
		if t.Failed() {
			if f := os.Getenv("FLOOD_LOG"); f != "" {
				_ = os.WriteFile(f, []byte(w.Logs()), 0o644)
			}
			for _, l := range strings.Split(w.Logs(), "\n") {
				if strings.Contains(l, `"dependency failed"`) || strings.Contains(l, `"level":"ERROR"`) {
					t.Log(l)
				}
			}
		}
	})
	sub := w.buy(t, "analytics", "annual", 2)
	w.fulfill(t, sub, 2)
	id := sub.Str("id")

	// Each change is sent as a careful client would: with an Idempotency-Key,
	// sent again under the same key when the answer is 503 (Temporal did not
	// answer in time; the change may still apply), at most 10 times.
	var next, failed, retried atomic.Int64
	var firstFailure sync.Once
	var wg sync.WaitGroup
	for range concurrency {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > changes {
					return
				}
				key := fmt.Sprintf("flood-%d", i)
				var r testenv.Response
				for attempt := 1; attempt <= 10; attempt++ {
					r = w.sales.Do(http.MethodPatch, "/v1/subscriptions/"+id, map[string]any{"nickname": fmt.Sprintf("flood %d", i)},
						"Idempotency-Key", key)
					if r.Status != http.StatusServiceUnavailable {
						break
					}
					retried.Add(1)
				}
				if r.Status != http.StatusOK {
					failed.Add(1)
					firstFailure.Do(func() { t.Errorf("change %d: %s", i, r) })
				}
			}
		})
	}
	wg.Wait()
	t.Logf("%d changes, %d answers of 503 sent again", changes, retried.Load())
	assert.Zero(t, failed.Load(), "every change answered 200")

	runs := runsOf(t, w.Temporal.Client(t), id)
	assert.GreaterOrEqual(t, int64(len(runs)), changes/500, "the workflow continued as new along the way")
	cancel := w.admin.Do(http.MethodPost, "/v1/subscriptions/"+id+"/cancel", nil)
	require.Equal(t, http.StatusOK, cancel.Status, cancel.String())
	assert.Equal(t, "cancelled", cancel.Str("status"))
	state := w.requireAgree(t, id)
	assert.Equal(t, domain.StatusCancelled, state.Status)
	var nicknames int
	require.NoError(t, w.Store.DB().Get(&nicknames, `SELECT count(*) FROM events WHERE subscription_id = $1 AND type = 'nickname_changed'`, id))
	assert.EqualValues(t, changes, nicknames, "each change is on the timeline once")
	var balance int64
	require.NoError(t, w.Store.DB().Get(&balance, `SELECT sum(amount_minor) FROM ledger WHERE subscription_id = $1`, id))
	assert.Zero(t, balance, "the cancel refunded the charge exactly")
}

// A cancel just before the window closes whose worker dies right after the
// refund commits: the decision was recorded before the write, so the retried
// write (on another worker, after the window closed) completes the same
// transition. Temporal, read model and ledger all say cancelled with the
// refund, once; the publisher is told cancelled once.
func TestCrashAfterRefundCommitAtTheWindowEdge(t *testing.T) {
	t.Parallel()
	hook := newWebhookReceiver(t, ContosoSecret, ContosoSecret2)
	srv := httptest.NewServer(hook)
	t.Cleanup(srv.Close)
	w := newWorld(t, testenv.StackOptions{Seed: seed(srv.URL), Env: []string{"UPDATE_TIMEOUT=40s"}})
	w.KillWorker(w.Workers()[0])
	faulty := w.StartWorkerWithEnv("FAULT_EXIT_AFTER_REFUND=1")

	var id string
	var cancel testenv.Response
	for attempt := 1; ; attempt++ {
		require.LessOrEqual(t, attempt, 5, "never got a cancel in before the window closed")
		sub := w.buy(t, "analytics", "short-window", 2)
		active := w.fulfill(t, sub, 2)
		closes, err := time.Parse(time.RFC3339Nano, active.Str("cancellation_window_ends_at"))
		require.NoError(t, err)
		time.Sleep(time.Until(closes.Add(-150 * time.Millisecond))) // aim at the edge of the window
		done := make(chan testenv.Response, 1)
		go func() { done <- w.admin.Do(http.MethodPost, "/v1/subscriptions/"+sub.Str("id")+"/cancel", nil) }()
		select {
		case r := <-done:
			require.Equal(t, http.StatusConflict, r.Status, "the cancel was answered without the fault: %s", r)
			continue // it reached the workflow after the window closed: try again, closer to nothing
		case <-w.Exited(faulty):
		}
		require.Contains(t, w.Logs(), "FAULT_EXIT_AFTER_REFUND: exiting after committing refund:"+sub.Str("id"))
		w.StartWorker() // the retried write runs here, after the window closed
		cancel = <-done
		id = sub.Str("id")
		break
	}
	require.Equal(t, http.StatusOK, cancel.Status, cancel.String())
	assert.Equal(t, "cancelled", cancel.Str("status"))
	state := w.requireAgree(t, id)
	assert.Equal(t, domain.StatusCancelled, state.Status)
	assert.Equal(t, 1, w.ledgerRows(t, id, domain.LedgerRefund))
	var balance int64
	require.NoError(t, w.Store.DB().Get(&balance, `SELECT sum(amount_minor) FROM ledger WHERE subscription_id = $1`, id))
	assert.Zero(t, balance)
	var outboxCancelled int
	require.NoError(t, w.Store.DB().Get(&outboxCancelled, `SELECT count(*) FROM outbox WHERE subscription_id = $1 AND type = $2`, id, domain.NotifyCancelled))
	assert.Equal(t, 1, outboxCancelled, "one cancelled notification queued")
	hook.waitAcked(t, domain.NotifyCancelled, id)
	var ids []string
	for _, d := range hook.all() {
		if d.Body["type"] == domain.NotifyCancelled && subscriptionOf(d)["id"] == id {
			ids = append(ids, d.WebhookID)
		}
	}
	for _, got := range ids {
		assert.Equal(t, ids[0], got, "the publisher is told once: redeliveries carry the same webhook-id")
	}
}
