package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/lib/pq"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/partnerhub/fulfillment/testenv"
)

// publisherIDs lists the ids of a publisher's list answer, checking that it
// never shows a publisher link.
func publisherIDs(t *testing.T, r testenv.Response) []string {
	t.Helper()
	require.Equal(t, http.StatusOK, r.Status, r.String())
	ids := []string{}
	for _, item := range r.Body["items"].([]any) {
		sub := item.(map[string]any)
		assert.Nil(t, sub["publisher_link"], "a publisher never sees the link: %v", sub["id"])
		assert.Contains(t, sub, "publisher_link", "every field is present")
		ids = append(ids, sub["id"].(string))
	}
	return ids
}

// pageAll follows next_cursor from target, limit items a page.
func pageAll(t *testing.T, p testenv.Publisher, target string) (ids []string, pages int) {
	t.Helper()
	next := target
	for {
		r := p.Get(next)
		ids = append(ids, publisherIDs(t, r)...)
		pages++
		cursor, _ := r.Body["next_cursor"].(string)
		if cursor == "" {
			require.Nil(t, r.Body["next_cursor"], r.String())
			return ids, pages
		}
		require.Less(t, pages, 20, "paging does not end")
		next = target + "&cursor=" + url.QueryEscape(cursor)
	}
}

// A publisher that lost notifications reads what it sold: only its own
// subscriptions (whichever partner sold them), newest first, by status, page
// by page; another publisher's id is 404. Reads are signed like callbacks,
// over "GET {path?query}": unsigned or badly signed reads are 401, and a
// read's signature is good for no other path, query or method.
func TestPublisherReads(t *testing.T) {
	t.Parallel()
	w := newWorld(t, testenvOpts())
	buy := func(p testenv.Partner, customer, offer string) testenv.Response {
		r := p.Purchase(map[string]any{"customer_id": customer, "offer_id": offer, "plan_id": "annual", "quantity": 2})
		require.Equal(t, http.StatusCreated, r.Status, r.String())
		return r
	}
	// Oldest first: contoso's offer sold by both partners, litware's by northwind.
	c1 := buy(w.admin, "woodgrove", "analytics")
	l1 := buy(w.other, "tailspin", "docs")
	c2 := buy(w.admin, "woodgrove", "analytics")
	c3 := buy(w.other, "tailspin", "analytics")
	c4 := buy(w.admin, "woodgrove", "analytics")
	require.Equal(t, "active", w.fulfill(t, c1, 2).Str("status"))
	cancelled := w.admin.Do(http.MethodPost, "/v1/subscriptions/"+c4.Str("id")+"/cancel", nil)
	require.Equal(t, "cancelled", cancelled.Str("status"), cancelled.String())
	id := func(rs ...testenv.Response) []string {
		out := []string{}
		for _, r := range rs {
			out = append(out, r.Str("id"))
		}
		return out
	}

	t.Run("lists only its own, newest first", func(t *testing.T) {
		assert.Equal(t, id(c4, c3, c2, c1), publisherIDs(t, w.contoso.Get("/v1/publisher/subscriptions")))
		assert.Equal(t, id(l1), publisherIDs(t, w.litware.Get("/v1/publisher/subscriptions")))
		r := w.contoso.Get("/v1/publisher/subscriptions?limit=100")
		for _, item := range r.Body["items"].([]any) {
			assert.Equal(t, "contoso", item.(map[string]any)["publisher_id"])
		}
		assert.Nil(t, r.Body["next_cursor"])
	})

	t.Run("status filter", func(t *testing.T) {
		for query, want := range map[string][]string{
			"status=active":                        id(c1),
			"status=pending_fulfillment":           id(c3, c2),
			"status=cancelled":                     id(c4),
			"status=pending_fulfillment,cancelled": id(c4, c3, c2),
			"status=active&status=cancelled":       id(c4, c1),
			"status=expired":                       {},
		} {
			assert.Equal(t, want, publisherIDs(t, w.contoso.Get("/v1/publisher/subscriptions?"+query)), query)
		}
		assert.Equal(t, []string{}, publisherIDs(t, w.litware.Get("/v1/publisher/subscriptions?status=active")))
		for _, bad := range []string{"status=paused", "status=", "status=active,", "status=ACTIVE", "limit=0", "limit=101", "cursor=bogus"} {
			mustProblem(t, w.contoso.Get("/v1/publisher/subscriptions?"+bad), http.StatusBadRequest, "invalid_request", bad)
		}
	})

	t.Run("cursor", func(t *testing.T) {
		for _, limit := range []int{1, 2, 3, 4} {
			ids, pages := pageAll(t, w.contoso, fmt.Sprintf("/v1/publisher/subscriptions?limit=%d", limit))
			assert.Equal(t, id(c4, c3, c2, c1), ids, "limit %d: each once, newest first", limit)
			assert.Equal(t, (4+limit-1)/limit, pages, "limit %d: no empty last page", limit)
		}
		ids, pages := pageAll(t, w.contoso, "/v1/publisher/subscriptions?status=pending_fulfillment&limit=1")
		assert.Equal(t, id(c3, c2), ids)
		assert.Equal(t, 2, pages)

		// A purchase landing while the publisher pages does not shift its pages.
		first := w.contoso.Get("/v1/publisher/subscriptions?limit=2")
		require.Equal(t, id(c4, c3), publisherIDs(t, first))
		c5 := buy(w.admin, "woodgrove", "analytics")
		rest := w.contoso.Get("/v1/publisher/subscriptions?limit=2&cursor=" + url.QueryEscape(first.Str("next_cursor")))
		assert.Equal(t, id(c2, c1), publisherIDs(t, rest))
		assert.Equal(t, id(c5, c4), publisherIDs(t, w.contoso.Get("/v1/publisher/subscriptions?limit=2")), "a fresh first page shows it")

		// Another publisher's cursor positions its own list, nothing more.
		assert.Equal(t, id(l1), publisherIDs(t, w.litware.Get("/v1/publisher/subscriptions?cursor="+url.QueryEscape(first.Str("next_cursor")))))
	})

	t.Run("reads one of its own, 404 for any other", func(t *testing.T) {
		r := w.contoso.Get("/v1/publisher/subscriptions/" + c1.Str("id"))
		require.Equal(t, http.StatusOK, r.Status, r.String())
		partnerView := trustSubscription(t, w.admin, c1.Str("id"))
		for _, field := range []string{"status", "partner_id", "customer_id", "offer_id", "plan_id", "quantity", "licenses_assigned",
			"fulfillment_confirmed", "site_url", "billing_started_at", "term_end", "entitlement_number", "version"} {
			assert.Equal(t, partnerView.Body[field], r.Body[field], field)
		}
		assert.Equal(t, "active", r.Str("status"))
		pending := w.contoso.Get("/v1/publisher/subscriptions/" + c3.Str("id"))
		require.Equal(t, http.StatusOK, pending.Status, pending.String())
		assert.Nil(t, pending.Body["publisher_link"], "not even while pending")
		assert.Equal(t, "northwind", pending.Str("partner_id"), "whichever partner sold it")

		unknown := w.contoso.Get("/v1/publisher/subscriptions/sub_does-not-exist")
		mustProblem(t, unknown, http.StatusNotFound, "not_found")
		for _, c := range []struct {
			who string
			p   testenv.Publisher
			id  string
		}{{"litware", w.litware, c1.Str("id")}, {"contoso", w.contoso, l1.Str("id")}} {
			r := c.p.Get("/v1/publisher/subscriptions/" + c.id)
			mustProblem(t, r, http.StatusNotFound, "not_found", "%s reading %s", c.who, c.id)
			assert.Equal(t, strings.ReplaceAll(unknown.Str("detail"), "sub_does-not-exist", "ID"),
				strings.ReplaceAll(r.Str("detail"), c.id, "ID"), "another publisher's id answers like an unknown one")
		}
		// A partner key is no publisher credential.
		mustProblem(t, w.admin.Do(http.MethodGet, "/v1/publisher/subscriptions/"+c1.Str("id"), nil), http.StatusUnauthorized, "unauthenticated")
	})

	t.Run("refused unless signed for this very request", func(t *testing.T) {
		list := "/v1/publisher/subscriptions?status=active"
		one := "/v1/publisher/subscriptions/" + c2.Str("id")
		signed := func(target string, edit func(h http.Header)) *http.Request {
			req := w.contoso.SignedGet(newWebhookID(), target)
			if edit != nil {
				edit(req.Header)
			}
			return req
		}
		moved := func(req *http.Request, target string) *http.Request {
			u, err := url.Parse(w.BaseURL + target)
			require.NoError(t, err)
			req.URL = u
			return req
		}
		stale := w.contoso
		stale.Skew = -10 * time.Minute
		var webhookIDs []string
		for _, c := range []struct {
			name string
			req  *http.Request
		}{
			{"unsigned", func() *http.Request {
				req, err := http.NewRequest(http.MethodGet, w.BaseURL+list, nil)
				require.NoError(t, err)
				req.Header.Set("X-Publisher-Id", "contoso")
				return req
			}()},
			{"no X-Publisher-Id", signed(list, func(h http.Header) { h.Del("X-Publisher-Id") })},
			{"claiming litware", signed(list, func(h http.Header) { h.Set("X-Publisher-Id", "litware") })},
			{"another publisher's secret", w.Publisher("contoso", LitwareSecret).SignedGet(newWebhookID(), list)},
			{"stale timestamp", stale.SignedGet(newWebhookID(), list)},
			{"no signature", signed(list, func(h http.Header) { h.Del(standardwebhooks.HeaderWebhookSignature) })},
			{"webhook-id changed after signing", signed(list, func(h http.Header) { h.Set(standardwebhooks.HeaderWebhookID, newWebhookID()) })},
			{"query changed after signing", moved(signed(list, nil), "/v1/publisher/subscriptions?status=cancelled")},
			{"query dropped after signing", moved(signed(list, nil), "/v1/publisher/subscriptions")},
			{"path changed after signing", moved(signed(one, nil), "/v1/publisher/subscriptions/"+c3.Str("id"))},
			{"signed over the empty body, as a POST would be", func() *http.Request {
				req := signedMessage{publisher: "contoso", secret: ContosoSecret, webhookID: newWebhookID(), signed: []byte{}}.request(t, w, list)
				req.Method, req.Body, req.ContentLength = http.MethodGet, http.NoBody, 0
				return req
			}()},
		} {
			webhookIDs = append(webhookIDs, c.req.Header.Get(standardwebhooks.HeaderWebhookID))
			mustProblem(t, w.Send(c.req), http.StatusUnauthorized, "unauthenticated", c.name)
		}

		// A read's signature replayed as a callback with an empty body, at
		// the same path's activate, activates nothing.
		read := w.contoso.SignedGet(newWebhookID(), "/v1/publisher/subscriptions/"+c2.Str("id")+"/activate")
		webhookIDs = append(webhookIDs, read.Header.Get(standardwebhooks.HeaderWebhookID))
		post, err := http.NewRequest(http.MethodPost, read.URL.String(), bytes.NewReader(nil))
		require.NoError(t, err)
		post.Header = read.Header.Clone()
		mustProblem(t, w.Send(post), http.StatusUnauthorized, "unauthenticated", "a GET's signature on a POST")
		assert.Equal(t, false, trustSubscription(t, w.admin, c2.Str("id")).Body["fulfillment_confirmed"])

		// Refused reads consumed no webhook-id and are in the audit log.
		var stored int
		require.NoError(t, w.Store.DB().Get(&stored, `SELECT count(*) FROM publisher_messages WHERE webhook_id = ANY($1)`, pq.Array(webhookIDs)))
		assert.Zero(t, stored)

		// A GET carrying a body is malformed, signed or not.
		withBody, err := http.NewRequest(http.MethodGet, w.BaseURL+list, strings.NewReader(`{"status":"active"}`))
		require.NoError(t, err)
		withBody.Header = w.contoso.SignedGet(newWebhookID(), list).Header
		mustProblem(t, w.Send(withBody), http.StatusBadRequest, "invalid_request", "a GET with a body")
	})

	t.Run("a webhook-id is one message, reads included", func(t *testing.T) {
		msg := newWebhookID()
		target := "/v1/publisher/subscriptions/" + c2.Str("id")
		first := w.contoso.GetAs(msg, target)
		require.Equal(t, http.StatusOK, first.Status, first.String())
		assert.Empty(t, first.Header.Get("Idempotent-Replayed"))
		again := w.contoso.GetAs(msg, target)
		require.Equal(t, http.StatusOK, again.Status, again.String())
		assert.Equal(t, "true", again.Header.Get("Idempotent-Replayed"))
		assert.JSONEq(t, string(first.Raw), string(again.Raw))
		mustProblem(t, w.contoso.GetAs(msg, "/v1/publisher/subscriptions"), http.StatusUnprocessableEntity, "idempotency_key_reused",
			"the same webhook-id for another read")
		fresh := w.contoso.Get(target)
		require.Equal(t, http.StatusOK, fresh.Status, fresh.String())
		assert.Empty(t, fresh.Header.Get("Idempotent-Replayed"), "a fresh webhook-id reads afresh")
	})
}
