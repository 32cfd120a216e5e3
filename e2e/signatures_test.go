package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/lib/pq"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// signedMessage is one publisher request, crafted header by header.
type signedMessage struct {
	publisher, secret, webhookID string
	// webhook-timestamp: offset seconds from the current second, taken when
	// the request is built; roundUp takes it from the next second instead.
	// Older offsets round down and newer ones up where the boundary must be
	// exceeded, so the ±299/±301 cases hold whatever the sub-second clock
	// and latency (under 1 s per request).
	offset   int64
	roundUp  bool
	absolute int64  // a fixed timestamp instead, when non-zero
	signed   []byte // what the signature covers
	sent     []byte // what is sent (default: signed)
}

func later(m signedMessage) signedMessage { m.roundUp = true; return m }

// request signs m per Standard Webhooks and builds the POST to path.
func (m signedMessage) request(t *testing.T, w *world, path string) *http.Request {
	t.Helper()
	ts := time.Now().Unix() + m.offset
	if m.roundUp {
		ts++
	}
	if m.absolute != 0 {
		ts = m.absolute
	}
	wh, err := standardwebhooks.NewWebhook(m.secret)
	require.NoError(t, err)
	sig, err := wh.Sign(m.webhookID, time.Unix(ts, 0), m.signed)
	require.NoError(t, err)
	sent := m.sent
	if sent == nil {
		sent = m.signed
	}
	req, err := http.NewRequest(http.MethodPost, w.BaseURL+path, bytes.NewReader(sent))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Publisher-Id", m.publisher)
	req.Header.Set(standardwebhooks.HeaderWebhookID, m.webhookID)
	req.Header.Set(standardwebhooks.HeaderWebhookTimestamp, fmt.Sprint(ts))
	req.Header.Set(standardwebhooks.HeaderWebhookSignature, sig)
	return req
}

func newWebhookID() string { return "msg_" + uuid.NewString() }

// A publisher message is processed only when its signature verifies with one
// of the publisher's active secrets and its timestamp is within 5 minutes;
// anything else is 401 unauthenticated and consumes nothing.
func TestSignatures(t *testing.T) {
	t.Parallel()
	started := time.Now()
	w := newWorld(t, testenvOpts())
	id := w.buy(t, "analytics", "annual", 5).Str("id")
	path := "/v1/publisher/subscriptions/" + id + "/licenses"
	licenses := func() any { return trustSubscription(t, w.admin, id).Body["licenses_assigned"] }
	// A message that would set 4 licenses if it were processed.
	rejected := []byte(`{"assigned":4}`)
	good := func(offset int64, body []byte) signedMessage {
		return signedMessage{publisher: "contoso", secret: ContosoSecret, webhookID: newWebhookID(), offset: offset, signed: body}
	}

	t.Run("rejected", func(t *testing.T) {
		otherSecret := "whsec_" + strings.Repeat("QUJD", 8)
		cases := []struct {
			name string
			msg  signedMessage
			edit func(h http.Header)
		}{
			{name: "another publisher's secret", msg: func() signedMessage { m := good(0, rejected); m.secret = LitwareSecret; return m }()},
			{name: "nobody's secret", msg: func() signedMessage { m := good(0, rejected); m.secret = otherSecret; return m }()},
			{name: "one body byte flipped", msg: func() signedMessage { m := good(0, []byte(`{"assigned":1}`)); m.sent = rejected; return m }()},
			{name: "missing webhook-id", msg: good(0, rejected), edit: func(h http.Header) { h.Del(standardwebhooks.HeaderWebhookID) }},
			{name: "missing webhook-timestamp", msg: good(0, rejected), edit: func(h http.Header) { h.Del(standardwebhooks.HeaderWebhookTimestamp) }},
			{name: "missing webhook-signature", msg: good(0, rejected), edit: func(h http.Header) { h.Del(standardwebhooks.HeaderWebhookSignature) }},
			{name: "missing X-Publisher-Id", msg: good(0, rejected), edit: func(h http.Header) { h.Del("X-Publisher-Id") }},
			{name: "unknown publisher", msg: func() signedMessage { m := good(0, rejected); m.publisher = "contoso-evil"; return m }()},
			{name: "a long publisher id", msg: func() signedMessage { m := good(0, rejected); m.publisher = "x" + strings.Repeat("é", 100); return m }()},
			{name: "signed as contoso, claiming litware", msg: func() signedMessage { m := good(0, rejected); m.publisher = "litware"; return m }()},
			{name: "timestamp 301 s old", msg: good(-301, rejected)},
			{name: "timestamp 301 s ahead", msg: later(good(301, rejected))},
			{name: "timestamp in milliseconds", msg: func() signedMessage { m := good(0, rejected); m.absolute = time.Now().UnixMilli(); return m }()},
			{name: "malformed timestamp", msg: good(0, rejected), edit: func(h http.Header) { h.Set(standardwebhooks.HeaderWebhookTimestamp, "soon") }},
			{name: "timestamp moved after signing", msg: good(0, rejected), edit: func(h http.Header) {
				ts, err := strconv.ParseInt(h.Get(standardwebhooks.HeaderWebhookTimestamp), 10, 64)
				require.NoError(t, err)
				h.Set(standardwebhooks.HeaderWebhookTimestamp, fmt.Sprint(ts-1))
			}},
			{name: "webhook-id changed after signing", msg: good(0, rejected), edit: func(h http.Header) {
				h.Set(standardwebhooks.HeaderWebhookID, newWebhookID())
			}},
			{name: "valid signature under another version", msg: good(0, rejected), edit: func(h http.Header) {
				h.Set(standardwebhooks.HeaderWebhookSignature, strings.Replace(h.Get(standardwebhooks.HeaderWebhookSignature), "v1,", "v2,", 1))
			}},
			{name: "malformed signature header", msg: good(0, rejected), edit: func(h http.Header) {
				h.Set(standardwebhooks.HeaderWebhookSignature, "v1")
			}},
		}
		var ids []string
		for _, c := range cases {
			req := c.msg.request(t, w, path)
			if c.edit != nil {
				c.edit(req.Header)
			}
			ids = append(ids, c.msg.webhookID, req.Header.Get(standardwebhooks.HeaderWebhookID))
			r := w.Send(req)
			mustProblem(t, r, http.StatusUnauthorized, "unauthenticated", c.name)
		}
		// A publisher id that is not UTF-8 cannot name anyone: like any header
		// value that is not UTF-8, the request is malformed (400); it consumes nothing.
		notUTF8 := good(0, rejected)
		notUTF8.publisher = "contoso\xff"
		ids = append(ids, notUTF8.webhookID)
		mustProblem(t, w.Send(notUTF8.request(t, w, path)), http.StatusBadRequest, "invalid_request", "a publisher id that cannot exist")
		assert.EqualValues(t, 0, licenses(), "a rejected message was processed")
		var stored int
		require.NoError(t, w.Store.DB().Get(&stored, `SELECT count(*) FROM publisher_messages WHERE webhook_id = ANY($1)`, pq.Array(ids)))
		assert.Zero(t, stored, "rejected messages left webhook-id records")
		var audited int
		require.NoError(t, w.Store.DB().Get(&audited, `SELECT count(*) FROM audit_log WHERE action = 'verify_signature' AND outcome = 'denied'`))
		assert.Equal(t, len(cases), audited, "every rejected message is in the audit log")
	})

	t.Run("accepted", func(t *testing.T) {
		bogus := "v1," + strings.Repeat("A", 43) + "="
		withSecret := func(m signedMessage, secret string) signedMessage { m.secret = secret; return m }
		cases := []struct {
			name     string
			msg      signedMessage
			edit     func(h http.Header)
			assigned int
		}{
			{name: "timestamp 299 s old", msg: later(good(-299, []byte(`{"assigned":1}`))), assigned: 1},
			{name: "timestamp 299 s ahead", msg: good(299, []byte(`{"assigned":2}`)), assigned: 2},
			{name: "a bad signature, then the valid one", msg: good(0, []byte(`{"assigned":3}`)), assigned: 3, edit: func(h http.Header) {
				h.Set(standardwebhooks.HeaderWebhookSignature, bogus+" "+h.Get(standardwebhooks.HeaderWebhookSignature))
			}},
			{name: "the valid signature, then a bad one", msg: good(0, []byte(`{"assigned":1}`)), assigned: 1, edit: func(h http.Header) {
				h.Set(standardwebhooks.HeaderWebhookSignature, h.Get(standardwebhooks.HeaderWebhookSignature)+" "+bogus)
			}},
			{name: "signed with the second active secret", msg: withSecret(good(0, []byte(`{"assigned":2}`)), ContosoSecret2), assigned: 2},
			{name: "signed with the first secret again", msg: good(0, []byte(`{"assigned":3}`)), assigned: 3},
		}
		for _, c := range cases {
			req := c.msg.request(t, w, path)
			if c.edit != nil {
				c.edit(req.Header)
			}
			r := w.Send(req)
			require.Equal(t, http.StatusOK, r.Status, "%s: %s", c.name, r)
			assert.EqualValues(t, c.assigned, r.Body["licenses_assigned"], c.name)
			assert.Empty(t, r.Header.Get("Idempotent-Replayed"), c.name)
		}
		assert.EqualValues(t, 3, licenses())
	})

	t.Run("a rejected message consumes nothing", func(t *testing.T) {
		for _, spoil := range []struct {
			name string
			bad  func(m signedMessage) signedMessage
		}{
			{"wrong secret", func(m signedMessage) signedMessage { m.secret = LitwareSecret; return m }},
			{"stale timestamp", func(m signedMessage) signedMessage { m.offset -= 600; return m }},
			{"another body, unsigned", func(m signedMessage) signedMessage {
				m.signed, m.sent = []byte(`{"assigned":1}`), []byte(`{"assigned":2}`)
				return m
			}},
		} {
			msg := good(0, []byte(`{"assigned":5}`))
			r := w.Send(spoil.bad(msg).request(t, w, path))
			mustProblem(t, r, http.StatusUnauthorized, "unauthenticated", spoil.name)

			r = w.Send(msg.request(t, w, path)) // the same webhook-id, now correctly signed
			require.Equal(t, http.StatusOK, r.Status, "%s: %s", spoil.name, r)
			assert.Empty(t, r.Header.Get("Idempotent-Replayed"), "%s: processed, not replayed", spoil.name)
			assert.EqualValues(t, 5, r.Body["licenses_assigned"], spoil.name)

			again := w.Send(msg.request(t, w, path)) // and from now on it is deduplicated
			require.Equal(t, http.StatusOK, again.Status, again.String())
			assert.Equal(t, "true", again.Header.Get("Idempotent-Replayed"), spoil.name)
			assert.JSONEq(t, string(r.Raw), string(again.Raw))

			// Reset for the next round, with a fresh message.
			reset := w.Send(good(0, []byte(`{"assigned":3}`)).request(t, w, path))
			require.Equal(t, http.StatusOK, reset.Status, reset.String())
		}
	})

	t.Run("the testenv signer agrees", func(t *testing.T) {
		// The helper other tests use signs what the service verifies, and its
		// Skew reaches the same boundaries.
		for _, c := range []struct {
			skew   time.Duration
			status int
		}{{0, http.StatusOK}, {-10 * time.Minute, http.StatusUnauthorized}, {10 * time.Minute, http.StatusUnauthorized}} {
			p := w.contoso
			p.Skew = c.skew
			r := w.Send(p.SignedRequest(newWebhookID(), path, []byte(`{"assigned":2}`)))
			assert.Equal(t, c.status, r.Status, "skew %s: %s", c.skew, r)
		}
	})
	t.Logf("TestSignatures took %s", time.Since(started).Round(time.Millisecond))
}
