package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"

	"github.com/partnerhub/fulfillment/testenv"
	"github.com/partnerhub/fulfillment/workflows"
)

// dupDelivery is one HTTP delivery of a publisher message.
type dupDelivery struct {
	webhookID string
	path      string
	raw       []byte
	answer    chaosAnswer
	err       error
}

// dupDeliverAll sends every delivery at once (one goroutine each, released
// together) and fills in the answers. Each delivery is signed afresh, as a
// publisher's retry would be.
func dupDeliverAll(w *world, cl *chaosClient, deliveries []*dupDelivery) {
	start := make(chan struct{})
	var wg sync.WaitGroup
	for _, d := range deliveries {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			req, err := chaosSignedRequest(w.BaseURL, "contoso", ContosoSecret, d.webhookID, d.path, d.raw)
			if err != nil {
				d.err = err
				return
			}
			d.answer, d.err = cl.do(req)
		}()
	}
	close(start)
	wg.Wait()
}

func dupJSON(v any) []byte {
	raw, _ := json.Marshal(v)
	return raw
}

// dupCount counts rows with SQL.
func dupCount(t *testing.T, w *world, query string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, w.Store.DB().Get(&n, query, args...))
	return n
}

// TestDuplicateCallbacksBillOnce: a publisher's every message (resolve,
// licenses, activate) arrives three times with the same webhook-id, all
// shuffled together and concurrently, for several subscriptions at once.
// Billing starts exactly once each; every delivery of one webhook-id gets the
// same 200 answer, byte for byte, and the redeliveries say they are replays.
func TestDuplicateCallbacksBillOnce(t *testing.T) {
	t.Parallel()
	w := newWorld(t, testenvOpts())
	cl := newChaosClient()
	const subscriptions, copies = 4, 3

	var ids []string
	var deliveries []*dupDelivery
	for i := range subscriptions {
		p := w.buy(t, "analytics", "annual", 3+i)
		id := p.Str("id")
		ids = append(ids, id)
		code := p.Body["publisher_link"].(map[string]any)["authorization_code"]
		messages := []*dupDelivery{
			{webhookID: "msg_" + uuid.NewString(), path: "/v1/publisher/resolve", raw: dupJSON(map[string]any{"authorization_code": code})},
			{webhookID: "msg_" + uuid.NewString(), path: "/v1/publisher/subscriptions/" + id + "/licenses", raw: dupJSON(map[string]any{"assigned": 2 + i})},
			{webhookID: "msg_" + uuid.NewString(), path: "/v1/publisher/subscriptions/" + id + "/activate", raw: dupJSON(map[string]any{"site_url": fmt.Sprintf("https://dup%d.contoso.example", i)})},
		}
		for _, m := range messages {
			for range copies {
				c := *m
				deliveries = append(deliveries, &c)
			}
		}
	}
	rand.Shuffle(len(deliveries), func(i, j int) { deliveries[i], deliveries[j] = deliveries[j], deliveries[i] })
	dupDeliverAll(w, cl, deliveries)

	byID := map[string][]*dupDelivery{}
	for _, d := range deliveries {
		require.NoError(t, d.err, "%s %s", d.path, d.webhookID)
		assert.Equal(t, http.StatusOK, d.answer.status, "%s %s: %s", d.path, d.webhookID, d.answer)
		byID[d.webhookID] = append(byID[d.webhookID], d)
	}
	require.Len(t, byID, subscriptions*3)
	for webhookID, ds := range byID {
		replayed := 0
		for _, d := range ds {
			assert.Equal(t, string(ds[0].answer.raw), string(d.answer.raw), "webhook-id %s: one answer for every delivery", webhookID)
			if d.answer.header.Get("Idempotent-Replayed") == "true" {
				replayed++
			}
		}
		assert.Equal(t, copies-1, replayed, "webhook-id %s: every delivery but the first is a replay", webhookID)
	}

	for i, id := range ids {
		assert.Equal(t, 1, dupCount(t, w, `SELECT count(*) FROM ledger WHERE subscription_id = $1 AND kind = 'charge'`, id), "%s: one charge", id)
		assert.Equal(t, 1, dupCount(t, w, `SELECT count(*) FROM ledger WHERE subscription_id = $1`, id), "%s: nothing else billed", id)
		assert.Equal(t, 1, dupCount(t, w, `SELECT count(*) FROM subscriptions WHERE id = $1 AND status = 'active' AND licenses_assigned = $2 AND fulfillment_confirmed`, id, 2+i), "%s: active, fulfilled", id)
		for _, typ := range []string{"link_resolved", "licenses_assigned", "fulfillment_confirmed", "billing_started"} {
			assert.Equal(t, 1, dupCount(t, w, `SELECT count(*) FROM events WHERE subscription_id = $1 AND type = $2`, id, typ), "%s: one %s event", id, typ)
		}
	}
	assert.Equal(t, subscriptions*3, dupCount(t, w, `SELECT count(*) FROM publisher_messages WHERE publisher_id = 'contoso' AND response_status = 200`), "one record per webhook-id")
	t.Logf("duplicates: %d deliveries of %d messages for %d subscriptions, %d charges", len(deliveries), len(byID), subscriptions,
		dupCount(t, w, `SELECT count(*) FROM ledger`))

	// Different webhook-ids for the same callbacks, concurrently: several
	// publisher retries that each minted a new id. Still one charge.
	t.Run("DistinctWebhookIDs", func(t *testing.T) {
		p := w.buy(t, "analytics", "annual", 3)
		id := p.Str("id")
		var ds []*dupDelivery
		for i := range 6 {
			ds = append(ds,
				&dupDelivery{webhookID: "msg_" + uuid.NewString(), path: "/v1/publisher/subscriptions/" + id + "/licenses", raw: dupJSON(map[string]any{"assigned": 1 + i%3})},
				&dupDelivery{webhookID: "msg_" + uuid.NewString(), path: "/v1/publisher/subscriptions/" + id + "/activate", raw: dupJSON(map[string]any{})})
		}
		rand.Shuffle(len(ds), func(i, j int) { ds[i], ds[j] = ds[j], ds[i] })
		dupDeliverAll(w, cl, ds)
		active := 0
		for _, d := range ds {
			require.NoError(t, d.err)
			assert.Equal(t, http.StatusOK, d.answer.status, "%s: %s", d.path, d.answer)
			if d.answer.str("status") == "active" {
				active++
			}
		}
		assert.NotZero(t, active, "the callback that completed fulfillment answered active")
		assert.Equal(t, 1, dupCount(t, w, `SELECT count(*) FROM ledger WHERE subscription_id = $1`, id), "one charge")
		assert.Equal(t, 1, dupCount(t, w, `SELECT count(*) FROM events WHERE subscription_id = $1 AND type = 'billing_started'`, id))
		var last struct {
			Assigned int `db:"assigned"`
			Current  int `db:"current"`
		}
		require.NoError(t, w.Store.DB().Get(&last, `
			SELECT (e.detail->>'assigned')::int AS assigned, s.licenses_assigned AS current
			FROM events e JOIN subscriptions s ON s.id = e.subscription_id
			WHERE e.subscription_id = $1 AND e.type = 'licenses_assigned' ORDER BY e.id DESC LIMIT 1`, id))
		assert.Equal(t, last.Assigned, last.Current, "the read model shows the licenses of the last licenses event")
		again := w.contoso.Send("/v1/publisher/subscriptions/"+id+"/activate", map[string]any{})
		require.Equal(t, http.StatusOK, again.Status, again.String())
		assert.Equal(t, "active", again.Str("status"), "confirming an active subscription again: no effect, 200")
		assert.Equal(t, 1, dupCount(t, w, `SELECT count(*) FROM ledger WHERE subscription_id = $1`, id), "still one charge")
	})
}

// TestDuplicateCallbacksAfterEnd: callbacks for a subscription that ended —
// cancelled while pending, and cancelled after billing started (its workflow
// closed by then) — answer 409 invalid_state, each redelivery the same
// answer, and are recorded once in the timeline as callback_refused; nothing
// else moves: not the version, not the ledger.
func TestDuplicateCallbacksAfterEnd(t *testing.T) {
	t.Parallel()
	w := newWorld(t, testenvOpts())
	cl := newChaosClient()
	tc := w.Temporal.Client(t)

	pending := w.buy(t, "analytics", "annual", 2)
	r := w.contoso.Send("/v1/publisher/subscriptions/"+pending.Str("id")+"/licenses", map[string]any{"assigned": 1})
	require.Equal(t, http.StatusOK, r.Status, r.String())
	active := w.buy(t, "analytics", "annual", 2)
	w.fulfill(t, active, 2)

	for _, c := range []struct {
		name, id   string
		ledger     int
		waitClosed bool
	}{
		{name: "CancelledWhilePending", id: pending.Str("id"), ledger: 0},
		{name: "CancelledAfterBilling", id: active.Str("id"), ledger: 2, waitClosed: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := w.admin.Do(http.MethodPost, "/v1/subscriptions/"+c.id+"/cancel", nil)
			require.Equal(t, http.StatusOK, r.Status, r.String())
			require.Equal(t, "cancelled", r.Str("status"))
			if c.waitClosed {
				testenv.WaitFor(t, 20*time.Second, "the workflow to close", func() bool {
					d, err := tc.DescribeWorkflowExecution(context.Background(), workflows.WorkflowID(c.id), "")
					return err == nil && d.WorkflowExecutionInfo.Status != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING
				})
			}
			db := w.Store.DB()
			type snapshot struct {
				Version int64  `db:"version"`
				Status  string `db:"status"`
				Ledger  int    `db:"ledger"`
				Events  int    `db:"events"`
			}
			read := func() snapshot {
				var s snapshot
				require.NoError(t, db.Get(&s, `SELECT version, status,
					(SELECT count(*) FROM ledger WHERE subscription_id = $1) AS ledger,
					(SELECT count(*) FROM events WHERE subscription_id = $1) AS events
					FROM subscriptions WHERE id = $1`, c.id))
				return s
			}
			before := read()
			require.Equal(t, c.ledger, before.Ledger, "ledger after the cancel")

			licenses := &dupDelivery{webhookID: "msg_" + uuid.NewString(), path: "/v1/publisher/subscriptions/" + c.id + "/licenses", raw: dupJSON(map[string]any{"assigned": 2})}
			activate := &dupDelivery{webhookID: "msg_" + uuid.NewString(), path: "/v1/publisher/subscriptions/" + c.id + "/activate", raw: dupJSON(map[string]any{"site_url": "https://late.contoso.example"})}
			var ds []*dupDelivery
			for range 3 {
				l, a := *licenses, *activate
				ds = append(ds, &l, &a)
			}
			rand.Shuffle(len(ds), func(i, j int) { ds[i], ds[j] = ds[j], ds[i] })
			dupDeliverAll(w, cl, ds)
			first := map[string][]byte{}
			for _, d := range ds {
				require.NoError(t, d.err)
				assert.Equal(t, http.StatusConflict, d.answer.status, "%s: %s", d.path, d.answer)
				assert.Equal(t, "invalid_state", d.answer.str("code"), d.answer.String())
				assert.Equal(t, "application/problem+json", d.answer.header.Get("Content-Type"))
				if prev, ok := first[d.webhookID]; ok {
					assert.Equal(t, string(prev), string(d.answer.raw), "the same answer for the same webhook-id")
				} else {
					first[d.webhookID] = d.answer.raw
				}
			}

			after := read()
			assert.Equal(t, before.Version, after.Version, "version unchanged")
			assert.Equal(t, "cancelled", after.Status)
			assert.Equal(t, before.Ledger, after.Ledger, "no ledger rows added")
			assert.Equal(t, before.Events+2, after.Events, "only the two refusals were added to the timeline")
			var refused []struct {
				Actor  string `db:"actor"`
				Detail []byte `db:"detail"`
			}
			require.NoError(t, db.Select(&refused, `SELECT actor, detail FROM events WHERE subscription_id = $1 AND type = 'callback_refused' ORDER BY id`, c.id))
			require.Len(t, refused, 2, "one callback_refused per refused message")
			callbacks := []string{}
			for _, e := range refused {
				assert.Equal(t, "publisher:contoso", e.Actor)
				var detail map[string]any
				require.NoError(t, json.Unmarshal(e.Detail, &detail))
				assert.Equal(t, "invalid_state", detail["code"], string(e.Detail))
				callbacks = append(callbacks, fmt.Sprint(detail["callback"]))
			}
			assert.ElementsMatch(t, []string{workflows.UpdateAssignLicenses, workflows.UpdateConfirmFulfillment}, callbacks)

			// The partner sees the refusals in the timeline.
			ev := w.admin.Do(http.MethodGet, "/v1/subscriptions/"+c.id+"/events", nil)
			require.Equal(t, http.StatusOK, ev.Status, ev.String())
			assert.Equal(t, 2, strings.Count(string(ev.Raw), `"callback_refused"`), ev.String())
		})
	}
}

// TestIdempotentPurchase: the Idempotency-Key contract of POST /v1/subscriptions.
func TestIdempotentPurchase(t *testing.T) {
	t.Parallel()
	w := newWorld(t, testenvOpts())
	cl := newChaosClient()
	db := w.Store.DB()
	key := "idem-" + uuid.NewString()
	body := []byte(`{"customer_id":"woodgrove","offer_id":"analytics","plan_id":"annual","quantity":4,"nickname":"idempotent"}`)
	post := func(apiKey, key string, body []byte) chaosAnswer {
		t.Helper()
		req, err := chaosPartnerRequest(w.BaseURL, apiKey, key, body)
		require.NoError(t, err)
		a, err := cl.do(req)
		require.NoError(t, err)
		return a
	}

	// 50 at once, one key, one body.
	const concurrent = 50
	answers := make([]chaosAnswer, concurrent)
	errs := make([]error, concurrent)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range concurrent {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, err := chaosPartnerRequest(w.BaseURL, AdminKey, key, body)
			if err != nil {
				errs[i] = err
				return
			}
			<-start
			answers[i], errs[i] = cl.do(req)
		}()
	}
	close(start)
	wg.Wait()
	var created []chaosAnswer
	fresh, inUse := 0, 0
	for i, a := range answers {
		require.NoError(t, errs[i])
		switch a.status {
		case http.StatusCreated:
			created = append(created, a)
			if a.header.Get("Idempotent-Replayed") != "true" {
				fresh++
			}
		case http.StatusConflict:
			assert.Equal(t, "idempotency_key_in_use", a.str("code"), a.String())
			inUse++
		default:
			t.Errorf("answer %d: %s", i, a)
		}
	}
	require.NotEmpty(t, created, "one of the 50 bought")
	assert.Equal(t, 1, fresh, "exactly one answer is not a replay")
	for _, a := range created {
		assert.Equal(t, string(created[0].raw), string(a.raw), "every 201 carries the same body")
	}
	id := created[0].str("id")
	assert.Equal(t, 1, dupCount(t, w, `SELECT count(*) FROM subscriptions`), "exactly one subscription row")
	assert.Equal(t, 1, dupCount(t, w, `SELECT count(*) FROM subscriptions WHERE id = $1`, id))
	t.Logf("idempotency: %d concurrent purchases with one key → %d × 201 (%d replayed), %d × 409 idempotency_key_in_use",
		concurrent, len(created), len(created)-fresh, inUse)

	// A replay after completion: identical bytes, marked as a replay.
	replay := post(AdminKey, key, body)
	require.Equal(t, http.StatusCreated, replay.status, replay.String())
	assert.Equal(t, "true", replay.header.Get("Idempotent-Replayed"))
	assert.Equal(t, string(created[0].raw), string(replay.raw), "the replay is the first answer, byte for byte")

	// The same body written differently is the same request.
	reordered := []byte(`{ "quantity": 4, "nickname": "idempotent", "plan_id": "annual", "offer_id": "analytics", "customer_id": "woodgrove" }`)
	same := post(AdminKey, key, reordered)
	require.Equal(t, http.StatusCreated, same.status, same.String())
	assert.Equal(t, string(created[0].raw), string(same.raw))

	// Same key, another body.
	other := post(AdminKey, key, bytes.Replace(body, []byte(`"quantity":4`), []byte(`"quantity":5`), 1))
	assert.Equal(t, http.StatusUnprocessableEntity, other.status, other.String())
	assert.Equal(t, "idempotency_key_reused", other.str("code"), other.String())

	// The key is scoped to the partner: Northwind's purchase with it is its own.
	theirs := post(OtherAdminKey, key, []byte(`{"customer_id":"tailspin","offer_id":"analytics","plan_id":"annual","quantity":1}`))
	require.Equal(t, http.StatusCreated, theirs.status, theirs.String())
	assert.Empty(t, theirs.header.Get("Idempotent-Replayed"))
	assert.NotEqual(t, id, theirs.str("id"))
	assert.Equal(t, "northwind", theirs.str("partner_id"))
	theirReplay := post(OtherAdminKey, key, []byte(`{"customer_id":"tailspin","offer_id":"analytics","plan_id":"annual","quantity":1}`))
	assert.Equal(t, string(theirs.raw), string(theirReplay.raw))
	again := post(AdminKey, key, body)
	assert.Equal(t, string(created[0].raw), string(again.raw), "Fabrikam's answer is untouched by Northwind's purchase")

	// The records are kept, with their time.
	var records []struct {
		PartnerID      string    `db:"partner_id"`
		SubscriptionID string    `db:"subscription_id"`
		Status         *int      `db:"response_status"`
		CreatedAt      time.Time `db:"created_at"`
	}
	require.NoError(t, db.Select(&records, `SELECT partner_id, subscription_id, response_status, created_at FROM idempotency_keys WHERE key = $1 ORDER BY partner_id`, key))
	require.Len(t, records, 2)
	for i, want := range []struct{ partner, id string }{{"fabrikam", id}, {"northwind", theirs.str("id")}} {
		assert.Equal(t, want.partner, records[i].PartnerID)
		assert.Equal(t, want.id, records[i].SubscriptionID)
		if assert.NotNil(t, records[i].Status) {
			assert.Equal(t, http.StatusCreated, *records[i].Status)
		}
		assert.False(t, records[i].CreatedAt.IsZero())
		assert.WithinDuration(t, time.Now(), records[i].CreatedAt, 5*time.Minute)
	}

	// Keys: required, at most 255 characters.
	missing := post(AdminKey, "", body)
	assert.Equal(t, http.StatusBadRequest, missing.status, missing.String())
	assert.Equal(t, "idempotency_key_required", missing.str("code"), missing.String())
	tooLong := post(AdminKey, strings.Repeat("k", 256), body)
	assert.Equal(t, http.StatusBadRequest, tooLong.status, tooLong.String())
	assert.Equal(t, "invalid_request", tooLong.str("code"), tooLong.String())
	longest := post(AdminKey, strings.Repeat("k", 255), body)
	assert.Equal(t, http.StatusCreated, longest.status, "255 characters are allowed: %s", longest)

	assert.Equal(t, 3, dupCount(t, w, `SELECT count(*) FROM subscriptions`), "Fabrikam's, Northwind's and the 255-character key's")
}
