package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/lib/pq"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/partnerhub/fulfillment/testenv"
)

// TestLifecycle drives life after activation — renewals, expiry, the
// cancellation window, roles, PATCH, linked subscriptions and lists — over
// HTTP against one stack (separate api and worker processes). The subtests
// are independent and run in parallel; each buys its own subscriptions.
func TestLifecycle(t *testing.T) {
	t.Parallel()
	w := newWorld(t, testenv.StackOptions{Temporal: ownTemporal(t)})
	keepLogsOnFailure(t, w)

	// Two renewals (a charge each, keyed by term), then auto_renew off: the
	// third term ends in expiry, not in a fourth charge.
	t.Run("RenewsTwiceThenExpires", func(t *testing.T) {
		t.Parallel()
		p := w.buy(t, "analytics", "short-term", 2)
		id := p.Str("id")
		w.fulfill(t, p, 2)

		var s testenv.Response
		testenv.WaitFor(t, 30*time.Second, id+" to reach its third term", func() bool {
			s = w.get(t, id)
			return num(s.Body["term_number"]) >= 3
		})
		require.EqualValues(t, 3, s.Body["term_number"], s.String())
		require.Equal(t, "active", s.Str("status"))
		assert.NotNil(t, s.Body["next_bill_date"], "a renewing subscription has a next bill date")

		r := w.admin.Do(http.MethodPatch, "/v1/subscriptions/"+id, map[string]any{"auto_renew": false})
		require.Equal(t, http.StatusOK, r.Status, r.String())
		assert.Equal(t, false, r.Body["auto_renew"])
		require.EqualValues(t, 3, r.Body["term_number"], "auto_renew went off inside the third term")
		assert.Nil(t, r.Body["next_bill_date"], "no next bill date without auto_renew")

		end := w.waitStatus(t, id, "expired", 20*time.Second)
		assert.EqualValues(t, 3, end.Body["term_number"])
		assert.Equal(t, "inactive", end.Str("tab"))

		ledger := w.ledger(t, id)
		require.Len(t, ledger, 3, "exactly three charges: the first term and two renewals")
		for i, l := range ledger {
			assert.Equal(t, fmt.Sprintf("charge:%s:%d", id, i+1), l.ID)
			assert.Equal(t, "charge", l.Kind)
			assert.Equal(t, i+1, l.Term)
			assert.EqualValues(t, 2000, l.Amount, "1000 × quantity 2")
			assert.Equal(t, 4*time.Second, l.PeriodEnd.Sub(l.PeriodStart), "4-second terms")
			if i > 0 {
				assert.True(t, l.PeriodStart.Equal(ledger[i-1].PeriodEnd), "term %d starts where term %d ended", i+1, i)
			}
		}
		types := w.eventTypes(t, id)
		assert.Equal(t, 2, count(types, "renewed"), "%v", types)
		assert.Equal(t, 1, count(types, "auto_renew_changed"), "%v", types)
		assert.Equal(t, "expired", types[len(types)-1], "%v", types)
		renewed := w.eventsOfType(t, id, "renewed")
		require.Len(t, renewed, 2)
		assert.EqualValues(t, 2, renewed[0].Detail["term_number"])
		assert.EqualValues(t, 3, renewed[1].Detail["term_number"])
		assert.Equal(t, "system", renewed[0].Actor)

		bill := w.admin.Do(http.MethodGet, "/v1/subscriptions/"+id+"/billing", nil)
		require.Equal(t, http.StatusOK, bill.Status, bill.String())
		assert.EqualValues(t, 6000, bill.Body["balance_minor"])
	})

	// Inside the window: cancelled, and the refund gives back everything the
	// term billed (the charge and a proration).
	t.Run("CancelInsideWindowRefundsTheTerm", func(t *testing.T) {
		t.Parallel()
		p := w.buy(t, "analytics", "annual", 2)
		id := p.Str("id")
		w.fulfill(t, p, 2)
		r := w.admin.Do(http.MethodPatch, "/v1/subscriptions/"+id, map[string]any{"quantity": 4})
		require.Equal(t, http.StatusOK, r.Status, r.String())

		c := w.admin.Do(http.MethodPost, "/v1/subscriptions/"+id+"/cancel", nil)
		require.Equal(t, http.StatusOK, c.Status, c.String())
		assert.Equal(t, "cancelled", c.Str("status"))
		assert.Equal(t, "inactive", c.Str("tab"))

		var billed, refunded int64
		require.NoError(t, w.Store.DB().Get(&billed, `SELECT coalesce(sum(amount_minor), 0) FROM ledger
			WHERE subscription_id = $1 AND term_number = 1 AND kind IN ('charge', 'proration')`, id))
		assert.Greater(t, billed, int64(2400), "the charge plus a positive proration")
		refunds := w.ledgerOfKind(t, id, "refund")
		require.Len(t, refunds, 1)
		refunded = refunds[0].Amount
		assert.Equal(t, "refund:"+id+":1", refunds[0].ID)
		assert.Equal(t, -billed, refunded, "the refund is minus what the term billed")

		bill := w.admin.Do(http.MethodGet, "/v1/subscriptions/"+id+"/billing", nil)
		require.Equal(t, http.StatusOK, bill.Status, bill.String())
		assert.EqualValues(t, 0, bill.Body["balance_minor"])
		cancelled := w.eventsOfType(t, id, "cancelled")
		require.Len(t, cancelled, 1)
		assert.EqualValues(t, billed, cancelled[0].Detail["refund_minor"])
		assert.Equal(t, "agent:fabrikam/alice", cancelled[0].Actor)

		again := w.admin.Do(http.MethodPost, "/v1/subscriptions/"+id+"/cancel", nil)
		requireProblem(t, again, http.StatusConflict, "invalid_state")
		assert.Len(t, w.ledgerOfKind(t, id, "refund"), 1, "refunded once")
	})

	// After the window: cancel and quantity decrease are refused and change
	// nothing; an increase is still fine.
	t.Run("AfterWindowCancelAndDecreaseAreRefused", func(t *testing.T) {
		t.Parallel()
		p := w.buy(t, "analytics", "short-window", 3)
		id := p.Str("id")
		active := w.fulfill(t, p, 2)
		windowEnd := timeField(t, active, "cancellation_window_ends_at")
		testenv.WaitFor(t, 10*time.Second, "the cancellation window to close", func() bool {
			return time.Now().After(windowEnd)
		})
		before := w.get(t, id)
		ledgerBefore := w.ledger(t, id)
		eventsBefore := w.events(t, id)

		c := w.admin.Do(http.MethodPost, "/v1/subscriptions/"+id+"/cancel", nil)
		requireProblem(t, c, http.StatusConflict, "cancellation_window_closed")
		d := w.admin.Do(http.MethodPatch, "/v1/subscriptions/"+id, map[string]any{"quantity": 2})
		requireProblem(t, d, http.StatusConflict, "cancellation_window_closed")

		after := w.get(t, id)
		assert.Equal(t, "active", after.Str("status"))
		assert.EqualValues(t, 3, after.Body["quantity"])
		assert.Equal(t, before.Body["version"], after.Body["version"], "nothing saved")
		assert.Equal(t, ledgerBefore, w.ledger(t, id), "ledger unchanged")
		assert.Equal(t, eventsBefore, w.events(t, id), "no new event")

		up := w.admin.Do(http.MethodPatch, "/v1/subscriptions/"+id, map[string]any{"quantity": 4})
		require.Equal(t, http.StatusOK, up.Status, up.String())
		assert.EqualValues(t, 4, up.Body["quantity"])
		assert.Len(t, w.ledgerOfKind(t, id, "proration"), 1, "an increase after the window is prorated")
	})

	// A sales agent is refused every admin action, nothing changes, and each
	// attempt is in the timeline; it may still buy and edit the free fields.
	t.Run("SalesAgentRefusedAdminActions", func(t *testing.T) {
		t.Parallel()
		p := w.purchase(t, w.sales, map[string]any{"customer_id": "woodgrove", "offer_id": "analytics", "plan_id": "annual", "quantity": 2})
		id := p.Str("id")
		w.fulfill(t, p, 2)
		before := w.get(t, id)
		ledgerBefore := w.ledger(t, id)

		refusals := []struct {
			method, path string
			body         any
		}{
			{http.MethodPatch, "", map[string]any{"quantity": 3}},
			{http.MethodPatch, "", map[string]any{"auto_renew": false}},
			{http.MethodPatch, "", map[string]any{"nickname": "sneaky", "quantity": 5}},
			{http.MethodPost, "/cancel", nil},
			{http.MethodPost, "/deactivate", nil},
		}
		for _, tc := range refusals {
			r := w.sales.Do(tc.method, "/v1/subscriptions/"+id+tc.path, tc.body)
			requireProblem(t, r, http.StatusForbidden, "forbidden_role")
		}
		after := w.get(t, id)
		for _, field := range []string{"status", "quantity", "auto_renew", "nickname", "version"} {
			assert.Equal(t, before.Body[field], after.Body[field], field)
		}
		assert.Equal(t, ledgerBefore, w.ledger(t, id), "billing unchanged")
		refused := w.eventsOfType(t, id, "action_refused")
		require.Len(t, refused, len(refusals), "every attempt is in the timeline")
		for _, e := range refused {
			assert.Equal(t, "agent:fabrikam/bob", e.Actor)
			assert.Equal(t, "forbidden_role", e.Detail["reason"])
		}
		actions := []any{refused[0].Detail["action"], refused[3].Detail["action"], refused[4].Detail["action"]}
		assert.Equal(t, []any{"change quantity or auto_renew of", "cancel", "deactivate"}, actions)

		r := w.sales.Do(http.MethodPatch, "/v1/subscriptions/"+id, map[string]any{"nickname": "HQ", "reseller_partner_id": "contoso-reseller"})
		require.Equal(t, http.StatusOK, r.Status, r.String())
		assert.Equal(t, "HQ", r.Body["nickname"])
		assert.Equal(t, "contoso-reseller", r.Body["reseller_partner_id"])
		nick := w.eventsOfType(t, id, "nickname_changed")
		require.Len(t, nick, 1)
		assert.Equal(t, "agent:fabrikam/bob", nick[0].Actor)
		assert.Len(t, w.eventsOfType(t, id, "reseller_changed"), 1)
		assert.Equal(t, "active", w.get(t, id).Str("status"))
	})

	t.Run("Patch", func(t *testing.T) {
		t.Parallel()
		p := w.buy(t, "analytics", "annual", 2)
		id := p.Str("id")
		w.fulfill(t, p, 2)
		patch := func(body any) testenv.Response {
			return w.admin.Do(http.MethodPatch, "/v1/subscriptions/"+id, body)
		}

		for _, q := range []int{0, -1, 101} {
			requireProblem(t, patch(map[string]any{"quantity": q}), http.StatusUnprocessableEntity, "validation_failed")
		}
		requireProblem(t, patch(map[string]any{"quantity": 1}), http.StatusUnprocessableEntity, "validation_failed") // below 2 licenses
		requireProblem(t, patch(map[string]any{"reseller_partner_id": strings.Repeat("r", 65)}), http.StatusBadRequest, "invalid_request")
		requireProblem(t, patch(map[string]any{"nickname": "x", "color": "blue"}), http.StatusBadRequest, "invalid_request")
		requireProblem(t, patch(`{"quantity": "3"}`), http.StatusBadRequest, "invalid_request")
		requireProblem(t, patch(`{}`), http.StatusBadRequest, "invalid_request")
		requireProblem(t, patch(`{"quantity": null}`), http.StatusBadRequest, "invalid_request")
		assert.Empty(t, w.ledgerOfKind(t, id, "proration"), "refused PATCHes bill nothing")
		assert.EqualValues(t, 2, w.get(t, id).Body["quantity"])

		up := patch(map[string]any{"quantity": 3})
		require.Equal(t, http.StatusOK, up.Status, up.String())
		assert.EqualValues(t, 3, up.Body["quantity"])
		prorations := w.ledgerOfKind(t, id, "proration")
		require.Len(t, prorations, 1)
		assert.Greater(t, prorations[0].Amount, int64(0))
		assert.LessOrEqual(t, prorations[0].Amount, int64(1200), "at most one unit for a whole term")
		changed := w.eventsOfType(t, id, "quantity_changed")
		require.Len(t, changed, 1)
		assert.EqualValues(t, 2, changed[0].Detail["from"])
		assert.EqualValues(t, 3, changed[0].Detail["to"])
		assert.EqualValues(t, prorations[0].Amount, changed[0].Detail["proration_minor"])

		// Inside the window a decrease is allowed (and prorated back).
		down := patch(map[string]any{"quantity": 2})
		require.Equal(t, http.StatusOK, down.Status, down.String())
		assert.EqualValues(t, 2, down.Body["quantity"])

		set := patch(map[string]any{"nickname": "Head office", "reseller_partner_id": strings.Repeat("r", 64)})
		require.Equal(t, http.StatusOK, set.Status, set.String())
		assert.Equal(t, "Head office", set.Body["nickname"])
		assert.Equal(t, strings.Repeat("r", 64), set.Body["reseller_partner_id"])
		cleared := patch(`{"nickname": null, "reseller_partner_id": null}`)
		require.Equal(t, http.StatusOK, cleared.Status, cleared.String())
		assert.Nil(t, cleared.Body["nickname"])
		assert.Nil(t, cleared.Body["reseller_partner_id"])
		got := w.get(t, id)
		assert.Nil(t, got.Body["nickname"], "cleared in the read model too")
		assert.Contains(t, got.Body, "nickname", "null fields are present")

		d := w.admin.Do(http.MethodPost, "/v1/subscriptions/"+id+"/deactivate", nil)
		require.Equal(t, http.StatusOK, d.Status, d.String())
		versionAfterEnd := w.get(t, id).Body["version"]
		requireProblem(t, patch(map[string]any{"nickname": "late"}), http.StatusConflict, "invalid_state")
		requireProblem(t, patch(map[string]any{"quantity": 5}), http.StatusConflict, "invalid_state")
		final := w.get(t, id)
		assert.Equal(t, versionAfterEnd, final.Body["version"])
		assert.Nil(t, final.Body["nickname"])
	})

	// Deactivating a parent deactivates every linked app, for good, with no
	// billing after that instant; a terminal parent takes no new links.
	t.Run("DeactivateCascadesToLinkedApps", func(t *testing.T) {
		t.Parallel()
		parent := w.buy(t, "analytics", "annual", 3)
		pid := parent.Str("id")
		w.fulfill(t, parent, 3)
		app := func(customer, parentID string) map[string]any {
			return map[string]any{"customer_id": customer, "offer_id": "insights-app", "plan_id": "monthly", "quantity": 1,
				"parent_subscription_id": parentID}
		}
		app1 := w.purchase(t, w.admin, app("woodgrove", pid))
		app2 := w.purchase(t, w.admin, app("woodgrove", pid))
		assert.Equal(t, pid, app1.Str("parent_subscription_id"))
		w.fulfill(t, app1, 1)
		w.fulfill(t, app2, 1)
		apps := []string{app1.Str("id"), app2.Str("id")}
		assert.ElementsMatch(t, apps, strs(w.get(t, pid).Body["linked_subscription_ids"]))

		// Refused links leave the parent's links alone.
		noParent := w.admin.Purchase(map[string]any{"customer_id": "woodgrove", "offer_id": "insights-app", "plan_id": "monthly", "quantity": 1})
		requireProblem(t, noParent, http.StatusUnprocessableEntity, "validation_failed")
		otherCustomer := w.buy(t, "analytics", "annual", 1) // woodgrove's; the app is for contoso-pharma
		requireProblem(t, w.admin.Purchase(app("contoso-pharma", otherCustomer.Str("id"))), http.StatusUnprocessableEntity, "validation_failed")
		northwind := w.purchase(t, w.other, map[string]any{"customer_id": "tailspin", "offer_id": "analytics", "plan_id": "annual", "quantity": 1})
		requireProblem(t, w.admin.Purchase(app("woodgrove", northwind.Str("id"))), http.StatusUnprocessableEntity, "validation_failed")
		notApp := w.admin.Purchase(map[string]any{"customer_id": "woodgrove", "offer_id": "analytics", "plan_id": "annual", "quantity": 1,
			"parent_subscription_id": pid})
		requireProblem(t, notApp, http.StatusUnprocessableEntity, "validation_failed")
		assert.Empty(t, strs(w.get(t, otherCustomer.Str("id")).Body["linked_subscription_ids"]))

		d := w.admin.Do(http.MethodPost, "/v1/subscriptions/"+pid+"/deactivate", nil)
		require.Equal(t, http.StatusOK, d.Status, d.String())
		assert.Equal(t, "deactivated", d.Str("status"))
		for _, id := range apps {
			w.waitStatus(t, id, "deactivated", 15*time.Second)
			ev := w.eventsOfType(t, id, "deactivated")
			require.Len(t, ev, 1)
			assert.Equal(t, "system", ev[0].Actor)
			assert.Equal(t, "parent_ended", ev[0].Detail["reason"])
		}

		var deactivatedAt time.Time
		require.NoError(t, w.Store.DB().Get(&deactivatedAt,
			`SELECT at FROM events WHERE subscription_id = $1 AND type = 'deactivated'`, pid))
		var later, refunds, appRows int
		all := pq.StringArray(append([]string{pid}, apps...))
		require.NoError(t, w.Store.DB().Get(&later,
			`SELECT count(*) FROM ledger WHERE subscription_id = ANY($1) AND created_at > $2`, all, deactivatedAt))
		assert.Zero(t, later, "no ledger row after the parent's deactivation")
		require.NoError(t, w.Store.DB().Get(&refunds, `SELECT count(*) FROM ledger WHERE subscription_id = ANY($1) AND kind <> 'charge'`, all))
		assert.Zero(t, refunds, "deactivation refunds nothing")
		require.NoError(t, w.Store.DB().Get(&appRows, `SELECT count(*) FROM ledger WHERE subscription_id = ANY($1)`, pq.StringArray(apps)))
		assert.Equal(t, 2, appRows, "one charge per app, nothing since")

		requireProblem(t, w.admin.Do(http.MethodPost, "/v1/subscriptions/"+pid+"/deactivate", nil), http.StatusConflict, "invalid_state")
		requireProblem(t, w.admin.Do(http.MethodPost, "/v1/subscriptions/"+apps[0]+"/deactivate", nil), http.StatusConflict, "invalid_state")
		requireProblem(t, w.admin.Purchase(app("woodgrove", pid)), http.StatusUnprocessableEntity, "validation_failed")
		assert.ElementsMatch(t, apps, strs(w.get(t, pid).Body["linked_subscription_ids"]), "no link taken after the end")
	})

	t.Run("CancelledParentDeactivatesItsApp", func(t *testing.T) {
		t.Parallel()
		parent := w.buy(t, "analytics", "annual", 1)
		pid := parent.Str("id")
		w.fulfill(t, parent, 1)
		app := w.purchase(t, w.admin, map[string]any{"customer_id": "woodgrove", "offer_id": "insights-app", "plan_id": "monthly",
			"quantity": 2, "parent_subscription_id": pid})
		w.fulfill(t, app, 2)

		c := w.admin.Do(http.MethodPost, "/v1/subscriptions/"+pid+"/cancel", nil)
		require.Equal(t, http.StatusOK, c.Status, c.String())
		assert.Equal(t, "cancelled", c.Str("status"))
		w.waitStatus(t, app.Str("id"), "deactivated", 15*time.Second)
		assert.Len(t, w.ledgerOfKind(t, pid, "refund"), 1, "the parent is refunded")
		// The customer could not use the app without its parent: its term is refunded too.
		refunds := w.ledgerOfKind(t, app.Str("id"), "refund")
		require.Len(t, refunds, 1)
		charges := w.ledgerOfKind(t, app.Str("id"), "charge")
		require.Len(t, charges, 1)
		assert.Equal(t, -charges[0].Amount, refunds[0].Amount)
		assert.Equal(t, "parent_ended", w.eventsOfType(t, app.Str("id"), "deactivated")[0].Detail["reason"])
	})

	t.Run("Lists", func(t *testing.T) {
		t.Parallel()
		cust := w.newCustomer(t)
		buyFor := func(customer string) string {
			return w.purchase(t, w.admin, map[string]any{"customer_id": customer, "offer_id": "analytics", "plan_id": "annual", "quantity": 1}).Str("id")
		}
		// One of each tab, plus a cancelled one, for a fresh customer.
		pending := buyFor(cust)
		activeP := w.purchase(t, w.admin, map[string]any{"customer_id": cust, "offer_id": "analytics", "plan_id": "annual", "quantity": 1})
		w.fulfill(t, activeP, 1)
		active := activeP.Str("id")
		deactivated := buyFor(cust)
		require.Equal(t, http.StatusOK, w.admin.Do(http.MethodPost, "/v1/subscriptions/"+deactivated+"/deactivate", nil).Status)
		cancelled := buyFor(cust)
		require.Equal(t, http.StatusOK, w.admin.Do(http.MethodPost, "/v1/subscriptions/"+cancelled+"/cancel", nil).Status)

		for tab, want := range map[string][]string{
			"upcoming": {pending},
			"active":   {active},
			"inactive": {cancelled, deactivated},
			"":         {cancelled, deactivated, active, pending},
		} {
			q := url.Values{"customer_id": {cust}}
			if tab != "" {
				q.Set("tab", tab)
			}
			page := w.list(t, q)
			assert.Equal(t, want, ids(page.Body["items"]), "tab %q, newest first", tab)
			assert.Nil(t, page.Body["next_cursor"])
			for _, it := range page.Body["items"].([]any) {
				if tab != "" {
					assert.Equal(t, tab, it.(map[string]any)["tab"])
				}
			}
		}
		// Without customer_id the tab still holds only its statuses.
		for _, tab := range []string{"upcoming", "active", "inactive"} {
			page := w.list(t, url.Values{"tab": {tab}, "limit": {"100"}})
			for _, it := range page.Body["items"].([]any) {
				assert.Equal(t, tab, it.(map[string]any)["tab"])
			}
		}
		assert.Contains(t, ids(w.list(t, url.Values{"tab": {"upcoming"}, "limit": {"100"}}).Body["items"]), pending)

		for _, bad := range []url.Values{
			{"limit": {"0"}}, {"limit": {"101"}}, {"limit": {"-3"}}, {"limit": {"ten"}},
			{"tab": {"archived"}}, {"tab": {"Active"}}, {"cursor": {"not-a-cursor"}},
		} {
			r := w.admin.Do(http.MethodGet, "/v1/subscriptions?"+bad.Encode(), nil)
			requireProblem(t, r, http.StatusBadRequest, "invalid_request")
		}
		for _, ok := range []string{"1", "100"} {
			r := w.admin.Do(http.MethodGet, "/v1/subscriptions?limit="+ok, nil)
			require.Equal(t, http.StatusOK, r.Status, r.String())
		}

		// Cursor paging over seven subscriptions while new ones are bought
		// between pages: every original item exactly once, newest first.
		pager := w.newCustomer(t)
		var original []string
		for range 7 {
			original = append([]string{buyFor(pager)}, original...)
		}
		var seen []string
		q := url.Values{"customer_id": {pager}, "limit": {"3"}}
		for pages := 0; ; pages++ {
			require.Less(t, pages, 5, "paging must end")
			page := w.list(t, q)
			items := ids(page.Body["items"])
			assert.LessOrEqual(t, len(items), 3)
			seen = append(seen, items...)
			next, _ := page.Body["next_cursor"].(string)
			if next == "" {
				break
			}
			buyFor(pager) // inserted between pages
			q.Set("cursor", next)
		}
		assert.Equal(t, original, seen)

		// customer_id filters to that customer only.
		mine := ids(w.list(t, url.Values{"customer_id": {cust}, "limit": {"100"}}).Body["items"])
		assert.Len(t, mine, 4)
		for _, id := range mine {
			assert.Equal(t, cust, w.get(t, id).Str("customer_id"))
		}
		assert.NotContains(t, ids(w.list(t, url.Values{"customer_id": {"woodgrove"}, "limit": {"100"}}).Body["items"]), pending)
		other := w.other.Do(http.MethodGet, "/v1/subscriptions?customer_id="+cust, nil)
		require.Equal(t, http.StatusOK, other.Status, other.String())
		assert.Empty(t, other.Body["items"], "another partner sees none of them")
	})
}

// --- helpers --------------------------------------------------------------

// ownTemporal starts a dev server for one test. Stacks on one server share
// the task queue, so a worker of one stack would run another stack's
// workflows against the wrong database: a test that runs in parallel with
// others needs its own server.
func ownTemporal(t *testing.T) *testenv.Temporal {
	t.Helper()
	temporal, err := testenv.StartTemporal(context.Background(), "", "")
	require.NoError(t, err)
	t.Cleanup(func() { _ = temporal.Stop() })
	return temporal
}

// keepLogsOnFailure prints the tail of the api and worker logs when t fails.
func keepLogsOnFailure(t *testing.T, w *world) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		logs := w.Logs()
		if dir := os.Getenv("E2E_LOG_DIR"); dir != "" {
			_ = os.WriteFile(filepath.Join(dir, strings.ReplaceAll(t.Name(), "/", "_")+".log"), []byte(logs), 0o644)
		}
		lines := strings.Split(strings.TrimSpace(logs), "\n")
		t.Logf("last process log lines:\n%s", strings.Join(lines[max(0, len(lines)-60):], "\n"))
	})
}

// purchase buys as the given agent and requires 201.
func (w *world) purchase(t *testing.T, agent testenv.Partner, body map[string]any) testenv.Response {
	t.Helper()
	r := agent.Purchase(body)
	require.Equal(t, http.StatusCreated, r.Status, r.String())
	return r
}

// get reads a subscription as the admin agent.
func (w *world) get(t *testing.T, id string) testenv.Response {
	t.Helper()
	r := w.admin.Do(http.MethodGet, "/v1/subscriptions/"+id, nil)
	require.Equal(t, http.StatusOK, r.Status, r.String())
	return r
}

func (w *world) list(t *testing.T, q url.Values) testenv.Response {
	t.Helper()
	r := w.admin.Do(http.MethodGet, "/v1/subscriptions?"+q.Encode(), nil)
	require.Equal(t, http.StatusOK, r.Status, r.String())
	return r
}

// newCustomer creates a fresh customer of fabrikam.
func (w *world) newCustomer(t *testing.T) string {
	t.Helper()
	id := "cust-" + uuid.NewString()[:8]
	r := w.admin.Do(http.MethodPost, "/v1/customers", map[string]any{"id": id, "name": "Customer " + id})
	require.Equal(t, http.StatusCreated, r.Status, r.String())
	return id
}

// ledgerLine is one ledger row, read with SQL.
type ledgerLine struct {
	ID          string    `db:"id"`
	Kind        string    `db:"kind"`
	Term        int       `db:"term_number"`
	Amount      int64     `db:"amount_minor"`
	PeriodStart time.Time `db:"period_start"`
	PeriodEnd   time.Time `db:"period_end"`
	CreatedAt   time.Time `db:"created_at"`
}

func (w *world) ledger(t *testing.T, id string) []ledgerLine {
	t.Helper()
	var rows []ledgerLine
	require.NoError(t, w.Store.DB().Select(&rows, `SELECT id, kind, term_number, amount_minor, period_start, period_end, created_at
		FROM ledger WHERE subscription_id = $1 ORDER BY created_at, id`, id))
	return rows
}

func (w *world) ledgerOfKind(t *testing.T, id, kind string) []ledgerLine {
	t.Helper()
	var out []ledgerLine
	for _, l := range w.ledger(t, id) {
		if l.Kind == kind {
			out = append(out, l)
		}
	}
	return out
}

// timelineEvent is one item of GET /v1/subscriptions/{id}/events.
type timelineEvent struct {
	At     string
	Type   string
	Actor  string
	Detail map[string]any
}

func (w *world) events(t *testing.T, id string) []timelineEvent {
	t.Helper()
	r := w.admin.Do(http.MethodGet, "/v1/subscriptions/"+id+"/events", nil)
	require.Equal(t, http.StatusOK, r.Status, r.String())
	var out []timelineEvent
	for _, it := range r.Body["items"].([]any) {
		m := it.(map[string]any)
		e := timelineEvent{Type: m["type"].(string), Actor: m["actor"].(string), At: m["at"].(string)}
		e.Detail, _ = m["detail"].(map[string]any)
		out = append(out, e)
	}
	return out
}

func (w *world) eventsOfType(t *testing.T, id, typ string) []timelineEvent {
	t.Helper()
	var out []timelineEvent
	for _, e := range w.events(t, id) {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

func (w *world) eventTypes(t *testing.T, id string) []string {
	t.Helper()
	var out []string
	for _, e := range w.events(t, id) {
		out = append(out, e.Type)
	}
	return out
}

// requireProblem checks a problem+json answer's status and code.
func requireProblem(t *testing.T, r testenv.Response, status int, code string) {
	t.Helper()
	require.Equal(t, status, r.Status, r.String())
	require.Equal(t, code, r.Str("code"), r.String())
	require.Contains(t, r.Header.Get("Content-Type"), "application/problem+json")
}

func timeField(t *testing.T, r testenv.Response, field string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339Nano, r.Str(field))
	require.NoError(t, err, "%s in %s", field, r.String())
	return v
}

func num(v any) float64 {
	f, _ := v.(float64)
	return f
}

func count(list []string, s string) int {
	n := 0
	for _, v := range list {
		if v == s {
			n++
		}
	}
	return n
}

func strs(v any) []string {
	out := []string{}
	list, _ := v.([]any)
	for _, x := range list {
		out = append(out, x.(string))
	}
	return out
}

// ids lists the ids of a page's items in order.
func ids(items any) []string {
	out := []string{}
	list, _ := items.([]any)
	for _, it := range list {
		out = append(out, it.(map[string]any)["id"].(string))
	}
	return out
}
