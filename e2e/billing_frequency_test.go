package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/partnerhub/fulfillment/testenv"
	"github.com/partnerhub/fulfillment/workflows"
)

// billingView is GET /v1/subscriptions/{id}/billing: the charges of a term
// and the upcoming charges.
type billingView struct {
	charges  map[int][]map[string]any // by term
	upcoming []map[string]any
}

func (w *world) billingOf(t *testing.T, id string) billingView {
	t.Helper()
	r := w.admin.Do(http.MethodGet, "/v1/subscriptions/"+id+"/billing", nil)
	require.Equal(t, http.StatusOK, r.Status, r.String())
	v := billingView{charges: map[int][]map[string]any{}}
	for _, item := range r.Body["items"].([]any) {
		e := item.(map[string]any)
		if e["kind"] == "charge" {
			term := int(e["term_number"].(float64))
			v.charges[term] = append(v.charges[term], e)
		}
	}
	for _, u := range r.Body["upcoming_charges"].([]any) {
		v.upcoming = append(v.upcoming, u.(map[string]any))
	}
	return v
}

// A 12-second term billed every 3 seconds: bought and activated over HTTP,
// its 4 charges appear one by one in the billing endpoint while the upcoming
// charges shrink; a frequency PATCHed meanwhile applies from the renewal.
func TestBillingFrequencyChargesEachPeriodOverHTTP(t *testing.T) {
	t.Parallel() // mostly waits on second-long terms: overlaps with the other waiting tests
	w := newWorld(t, testenvOpts())

	refused := w.admin.Purchase(map[string]any{"customer_id": "woodgrove", "offer_id": "analytics", "plan_id": "periods-3s",
		"quantity": 7, "billing_frequency": "PT4S"})
	require.Equal(t, http.StatusUnprocessableEntity, refused.Status, refused.String())
	assert.Equal(t, "validation_failed", refused.Str("code"))

	sub := w.buy(t, "analytics", "periods-3s", 7)
	id := sub.Str("id")
	assert.Equal(t, "PT3S", sub.Str("billing_frequency"), "the plan's frequency by default")
	assert.Nil(t, sub.Body["pending_billing_frequency"])
	assert.Empty(t, w.billingOf(t, id).upcoming, "nothing is upcoming before billing starts")
	// The operator re-prices the plan after the purchase and doubles its
	// term: the workflow keeps charging the price it was bought at (1000 a
	// seat) over the term it was bought for (12 s in 4 periods), and the
	// upcoming charges must say so, not the catalog's 1300 over 24 s.
	plan, err := w.Store.Plan(context.Background(), "analytics", "periods-3s")
	require.NoError(t, err)
	plan.UnitPriceMinor, plan.Term = 1300, "PT24S"
	require.NoError(t, w.Store.UpsertPlan(context.Background(), plan))
	w.fulfill(t, sub, 7)

	// What upcoming_charges last said of each (term, period start), checked
	// against the charge when it is made.
	said, checked, compared := map[string]float64{}, map[string]bool{}, 0
	keyOf := func(e map[string]any) string { return fmt.Sprintf("%v@%v", e["term_number"], e["period_start"]) }
	checkSaid := func(v billingView) {
		for _, charges := range v.charges {
			for _, c := range charges {
				if checked[keyOf(c)] {
					continue
				}
				checked[keyOf(c)] = true
				want, ok := said[keyOf(c)]
				if c["id"] == fmt.Sprintf("charge:%s:1", id) {
					continue // charged at activation, never upcoming
				}
				if assert.True(t, ok, "charge %v was upcoming before it was made (said: %v)", c["id"], said) {
					assert.Equal(t, want, c["amount_minor"], "charge %v is what upcoming_charges said", c["id"])
					compared++
				}
			}
		}
		for _, u := range v.upcoming {
			said[keyOf(u)] = u["amount_minor"].(float64)
		}
	}

	// Term 1: 7 seats × 1000 = 7000 in 4 installments of 1750, one every 3 s.
	seen := map[int]bool{}
	patched := false
	testenv.WaitFor(t, 30*time.Second, "the 4 charges of term 1", func() bool {
		v := w.billingOf(t, id)
		checkSaid(v)
		n := len(v.charges[1])
		if n == 0 || seen[n] || len(v.charges[2]) > 0 {
			return n == 4
		}
		seen[n] = true
		last := v.charges[1][n-1]
		key := fmt.Sprintf("charge:%s:1", id)
		if n > 1 {
			key = fmt.Sprintf("%s:%d", key, n)
		}
		assert.Equal(t, key, last["id"])
		assert.EqualValues(t, 1750, last["amount_minor"])
		// The rest of term 1, then term 2's first charge (auto_renew is on).
		if assert.Len(t, v.upcoming, 4-n+1, "after %d charges", n) {
			for i, u := range v.upcoming[:4-n] {
				assert.EqualValues(t, 1, u["term_number"])
				assert.EqualValues(t, n+1+i, u["period"])
				assert.EqualValues(t, 1750, u["amount_minor"])
			}
			next := v.upcoming[4-n]
			assert.EqualValues(t, 2, next["term_number"])
			if patched {
				assert.EqualValues(t, 7000, next["amount_minor"], "the next term at the pending frequency: once")
			}
		}
		if n == 2 && !patched {
			r := w.sales.Do(http.MethodPatch, "/v1/subscriptions/"+id, map[string]any{"billing_frequency": "PT12S"})
			assert.Equal(t, http.StatusForbidden, r.Status, r.String())
			r = w.admin.Do(http.MethodPatch, "/v1/subscriptions/"+id, map[string]any{"billing_frequency": "PT12S"})
			require.Equal(t, http.StatusOK, r.Status, r.String())
			assert.Equal(t, "PT3S", r.Str("billing_frequency"))
			assert.Equal(t, "PT12S", r.Str("pending_billing_frequency"))
			r = w.admin.Do(http.MethodPatch, "/v1/subscriptions/"+id, map[string]any{"billing_frequency": "PT12S"})
			assert.Equal(t, http.StatusOK, r.Status, "the same again changes nothing: %s", r.String())
			patched = true
		}
		return n == 4
	})
	assert.Len(t, seen, 4, "each of the 4 charges was seen on its own: %v", seen)

	// Renewal: term 2 billed once, at the frequency PATCHed in term 1.
	testenv.WaitFor(t, 30*time.Second, "the renewal", func() bool {
		v := w.billingOf(t, id)
		checkSaid(v)
		return len(v.charges[2]) == 1
	})
	v := w.billingOf(t, id)
	checkSaid(v)
	assert.Equal(t, "USD", v.upcoming[0]["currency"])
	assert.EqualValues(t, 7000, v.upcoming[0]["amount_minor"], "term 3 at the price bought, not the catalog's 9100")
	assert.Equal(t, 4, compared, "term 1's periods 2..4 and term 2's charge were each upcoming first")
	assert.EqualValues(t, 7000, v.charges[2][0]["amount_minor"])
	assert.Equal(t, fmt.Sprintf("charge:%s:2", id), v.charges[2][0]["id"])
	var term1 int64
	for _, c := range v.charges[1] {
		term1 += int64(c["amount_minor"].(float64))
	}
	assert.Equal(t, int64(7000), term1, "term 1's charges add up to its price")
	got := w.admin.Do(http.MethodGet, "/v1/subscriptions/"+id, nil)
	assert.Equal(t, "PT12S", got.Str("billing_frequency"))
	assert.Nil(t, got.Body["pending_billing_frequency"])
	w.requireAgree(t, id)

	// The run renewed in place: term 2 runs in the run that lived term 1,
	// which already waits for term 2's end. Term 1's part of its history
	// stays bounded: a timer and a save per period.
	c := w.Temporal.Client(t)
	var events, timers int
	testenv.WaitFor(t, 15*time.Second, "the run to wait for term 2's end", func() bool {
		var waiting bool
		events, timers, waiting = termOneOfRun(t, c, id)
		return waiting
	})
	t.Logf("term 1 in the run: %d history events, %d timers", events, timers)
	assert.LessOrEqual(t, timers, 1+3+1, "activation deadline, periods 2..4, term end")
	assert.Less(t, events, 120, "history of a 4-period term")
}

// termOneOfRun reads the history of the subscription's current run, which
// must be its first (it renews in place), and counts its events and timers up
// to the renewal's save; waiting reports a timer started after it (the run
// waits for the next deadline in the same run).
func termOneOfRun(t *testing.T, c client.Client, id string) (events, timers int, waiting bool) {
	t.Helper()
	it := c.GetWorkflowHistory(context.Background(), workflows.WorkflowID(id), "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	renewed := false
	for it.HasNext() {
		e, err := it.Next()
		require.NoError(t, err)
		if a := e.GetWorkflowExecutionStartedEventAttributes(); a != nil {
			require.Empty(t, a.GetContinuedExecutionRunId(), "term 2 runs in the run that lived term 1 (renewed in place)")
		}
		require.NotEqual(t, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW, e.GetEventType(), "the run renews in place")
		if renewed {
			waiting = waiting || e.GetEventType() == enumspb.EVENT_TYPE_TIMER_STARTED
			continue
		}
		events++
		if e.GetEventType() == enumspb.EVENT_TYPE_TIMER_STARTED {
			timers++
		}
		if a := e.GetActivityTaskScheduledEventAttributes(); a != nil {
			for _, p := range a.GetInput().GetPayloads() {
				renewed = renewed || bytes.Contains(p.GetData(), []byte(`"type":"renewed"`))
			}
		}
	}
	return events, timers, waiting
}
