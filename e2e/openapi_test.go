package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/partnerhub/fulfillment/api/openapi"
	"github.com/partnerhub/fulfillment/testenv"
)

// contract checks every exchange with the real stack against the OpenAPI
// document: each response (status, headers, Content-Type, body) must match
// the operation's declared response; each request the test means to be
// valid must match the operation too, and each request sent malformed on
// purpose must be one the document rejects as well.
type contract struct {
	t      *testing.T
	w      *world
	doc    *openapi3.T
	router routers.Router
	// answered records "METHOD /path status" of every validated exchange.
	answered map[string]bool
}

func newContract(t *testing.T, w *world) *contract {
	t.Helper()
	doc, err := openapi.Load()
	require.NoError(t, err)
	// The document's server is "/" (the host serving it): route against the stack.
	doc.Servers = openapi3.Servers{{URL: w.BaseURL}}
	router, err := legacy.NewRouter(doc)
	require.NoError(t, err, "router from the document")
	return &contract{t: t, w: w, doc: doc, router: router, answered: map[string]bool{}}
}

// exchange is one request of the flow.
type exchange struct {
	step string        // what the step does, for failure messages
	req  *http.Request // built without a body; raw is its body
	raw  []byte
	want int
	// malformed marks a request sent invalid on purpose: the document must
	// reject it too (it is not validated as a good request).
	malformed bool
}

func jsonBody(t *testing.T, body any) []byte {
	t.Helper()
	switch b := body.(type) {
	case nil:
		return nil
	case []byte:
		return b
	case string:
		return []byte(b)
	}
	raw, err := json.Marshal(body)
	require.NoError(t, err)
	return raw
}

// partnerRequest builds a request with an API key ("" for none) and extra headers.
func (c *contract) partnerRequest(key, method, path string, body any, headers ...string) (*http.Request, []byte) {
	c.t.Helper()
	raw := jsonBody(c.t, body)
	req, err := http.NewRequest(method, c.w.BaseURL+path, nil)
	require.NoError(c.t, err)
	if raw != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return req, raw
}

// publisherGet builds a GET of target signed by pub under webhookID.
func (c *contract) publisherGet(pub testenv.Publisher, webhookID, target string) (*http.Request, []byte) {
	c.t.Helper()
	return pub.SignedGet(webhookID, target), nil
}

// publisherRequest builds a request signed by pub under webhookID.
func (c *contract) publisherRequest(pub testenv.Publisher, webhookID, path string, body any) (*http.Request, []byte) {
	c.t.Helper()
	raw := jsonBody(c.t, body)
	return pub.SignedRequest(webhookID, path, raw), raw
}

func withBody(req *http.Request, raw []byte) *http.Request {
	r := req.Clone(context.Background())
	if raw == nil {
		r.Body, r.GetBody, r.ContentLength = http.NoBody, nil, 0
		return r
	}
	r.Body = io.NopCloser(bytes.NewReader(raw))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(raw)), nil }
	r.ContentLength = int64(len(raw))
	return r
}

// do sends the exchange, validates request and response against the
// document, and stops the test if the status is not the one the flow needs.
func (c *contract) do(x exchange) testenv.Response {
	c.t.Helper()
	resp, err := http.DefaultClient.Do(withBody(x.req, x.raw))
	require.NoError(c.t, err, "%s: %s %s", x.step, x.req.Method, x.req.URL.RequestURI())
	raw, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(c.t, err)
	r := testenv.Response{Status: resp.StatusCode, Header: resp.Header, Raw: raw}
	_ = json.Unmarshal(raw, &r.Body)

	c.validate(x, r)
	require.Equal(c.t, x.want, r.Status, "%s: %s %s answered %s", x.step, x.req.Method, x.req.URL.RequestURI(), r)
	return r
}

func (c *contract) validate(x exchange, r testenv.Response) {
	c.t.Helper()
	ctx := context.Background()
	what := fmt.Sprintf("%s: %s %s", x.step, x.req.Method, x.req.URL.RequestURI())
	req := withBody(x.req, x.raw)
	route, pathParams, err := c.router.FindRoute(req)
	if err != nil {
		c.t.Errorf("%s: not an operation of the document: %v", what, err)
		return
	}
	op := fmt.Sprintf("%s (%s %s)", route.Operation.OperationID, route.Method, route.Path)
	opts := &openapi3filter.Options{
		AuthenticationFunc:    openapi3filter.NoopAuthenticationFunc,
		IncludeResponseStatus: true, // a status the operation does not declare fails
		MultiError:            true,
	}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: pathParams, Route: route, Options: opts}
	reqErr := openapi3filter.ValidateRequest(ctx, in)
	switch {
	case x.malformed && reqErr == nil:
		c.t.Errorf("%s: operation %s: the service rejects this request with %d but the document accepts it", what, op, r.Status)
	case !x.malformed && reqErr != nil:
		c.t.Errorf("%s: operation %s: request does not match the document: %v", what, op, reqErr)
	}

	// The request's body was read by its validation; the response needs only its route.
	in.Request = withBody(x.req, x.raw)
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in, Status: r.Status, Header: r.Header, Options: opts,
	}
	out.SetBodyBytes(r.Raw)
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		c.t.Errorf("%s: operation %s: response %d (Content-Type %q) does not match the document: %v\nbody: %s",
			what, op, r.Status, r.Header.Get("Content-Type"), err, truncateForLog(r.Raw))
	}
	// Every 4xx/5xx is a problem: the document's schemas already say so,
	// but a status it declared without content would slip through.
	if r.Status >= 400 && r.Header.Get("Content-Type") != "application/problem+json" {
		c.t.Errorf("%s: operation %s: %d answered with Content-Type %q, want application/problem+json", what, op, r.Status, r.Header.Get("Content-Type"))
	}
	c.answered[fmt.Sprintf("%s %s %d", route.Method, route.Path, r.Status)] = true
}

func truncateForLog(b []byte) string {
	if len(b) > 2000 {
		return string(b[:2000]) + "…"
	}
	return string(b)
}

// TestOpenAPIResponsesMatchDocument runs a realistic flow against the real
// stack (api and worker processes) and validates every answer against
// api/openapi/openapi.json with kin-openapi's openapi3filter.
func TestOpenAPIResponsesMatchDocument(t *testing.T) {
	t.Parallel()
	w := newWorld(t, testenv.StackOptions{Env: opsEnv})
	c := newContract(t, w)
	admin, sales, other := AdminKey, SalesKey, OtherAdminKey
	type P = map[string]any

	// partner sends as a partner agent; key "" sends no Authorization.
	partner := func(step, key, method, path string, body any, want int, headers ...string) testenv.Response {
		t.Helper()
		req, raw := c.partnerRequest(key, method, path, body, headers...)
		return c.do(exchange{step: step, req: req, raw: raw, want: want})
	}
	// malformedPartner sends a request the document must reject as well.
	malformedPartner := func(step, key, method, path string, body any, want int, headers ...string) testenv.Response {
		t.Helper()
		req, raw := c.partnerRequest(key, method, path, body, headers...)
		return c.do(exchange{step: step, req: req, raw: raw, want: want, malformed: true})
	}
	publisherAs := func(step string, pub testenv.Publisher, webhookID, path string, body any, want int) testenv.Response {
		t.Helper()
		req, raw := c.publisherRequest(pub, webhookID, path, body)
		return c.do(exchange{step: step, req: req, raw: raw, want: want})
	}
	publisher := func(step, path string, body any, want int) testenv.Response {
		t.Helper()
		return publisherAs(step, w.contoso, "msg_"+uuid.NewString(), path, body, want)
	}
	purchase := func(step, key, idemKey string, body any, want int) testenv.Response {
		t.Helper()
		return partner(step, key, http.MethodPost, "/v1/subscriptions", body, want, "Idempotency-Key", idemKey)
	}

	// Operations.
	partner("liveness", "", http.MethodGet, "/healthz", nil, http.StatusOK)
	partner("readiness", "", http.MethodGet, "/readyz", nil, http.StatusOK)
	doc := partner("the contract", "", http.MethodGet, "/openapi.json", nil, http.StatusOK)
	// Compared as bytes: a diff of the whole document would bury the report.
	require.True(t, bytes.Equal(openapi.Document(), doc.Raw), "/openapi.json does not serve the embedded document (a stale binary?)")
	partner("metrics", "", http.MethodGet, "/metrics", nil, http.StatusOK)

	// The catalog.
	offers := partner("list the catalog, one offer per page", sales, http.MethodGet, "/v1/offers?limit=1", nil, http.StatusOK)
	offersCursor, _ := offers.Body["next_cursor"].(string)
	require.NotEmpty(t, offersCursor, offers.String())
	partner("list the catalog's next page", admin, http.MethodGet, "/v1/offers?limit=1&cursor="+url.QueryEscape(offersCursor), nil, http.StatusOK)
	partner("list the whole catalog", other, http.MethodGet, "/v1/offers", nil, http.StatusOK)
	malformedPartner("list the catalog with limit 0", admin, http.MethodGet, "/v1/offers?limit=0", nil, http.StatusBadRequest)
	partner("list the catalog with a cursor this API never returned", admin, http.MethodGet, "/v1/offers?cursor=bogus", nil, http.StatusBadRequest)
	partner("list the catalog without an API key", "", http.MethodGet, "/v1/offers", nil, http.StatusUnauthorized)
	partner("get an offer", admin, http.MethodGet, "/v1/offers/analytics", nil, http.StatusOK)
	partner("get an app offer", sales, http.MethodGet, "/v1/offers/insights-app", nil, http.StatusOK)
	partner("get an unknown offer", admin, http.MethodGet, "/v1/offers/no-such-offer", nil, http.StatusNotFound)

	// Customers.
	cust := partner("create a customer", admin, http.MethodPost, "/v1/customers",
		P{"id": "oa-lamna", "name": "Lamna Healthcare", "domain": "lamna.example"}, http.StatusCreated)
	require.Equal(t, "/v1/customers/oa-lamna", cust.Header.Get("Location"))
	partner("create a customer with a generated id and no domain", sales, http.MethodPost, "/v1/customers",
		P{"name": "Proseware"}, http.StatusCreated)
	partner("create a customer whose id is taken", admin, http.MethodPost, "/v1/customers",
		P{"id": "oa-lamna", "name": "Lamna again"}, http.StatusConflict)
	malformedPartner("create a customer without name", admin, http.MethodPost, "/v1/customers",
		P{"domain": "nameless.example"}, http.StatusBadRequest)
	malformedPartner("create a customer with an unknown field", admin, http.MethodPost, "/v1/customers",
		P{"name": "Colourful", "colour": "blue"}, http.StatusBadRequest)
	partner("create a customer without an API key", "", http.MethodPost, "/v1/customers",
		P{"name": "Anonymous"}, http.StatusUnauthorized)
	list := partner("list customers", admin, http.MethodGet, "/v1/customers", nil, http.StatusOK)
	require.NotEmpty(t, list.Body["items"])
	partner("get a customer", admin, http.MethodGet, "/v1/customers/oa-lamna", nil, http.StatusOK)
	partner("get another partner's customer", admin, http.MethodGet, "/v1/customers/tailspin", nil, http.StatusNotFound)
	partner("list customers with an unknown key", "no-such-key", http.MethodGet, "/v1/customers", nil, http.StatusUnauthorized)

	// Purchases.
	buy := P{"customer_id": "oa-lamna", "offer_id": "analytics", "plan_id": "annual", "quantity": 5, "nickname": "OpenAPI",
		"customer_contact_email": "it@lamna.example"}
	key := uuid.NewString()
	first := purchase("purchase", admin, key, buy, http.StatusCreated)
	id := first.Str("id")
	require.Equal(t, "/v1/subscriptions/"+id, first.Header.Get("Location"))
	require.NotNil(t, first.Body["publisher_link"], first.String())
	replay := purchase("replay the purchase", admin, key, buy, http.StatusCreated)
	require.Equal(t, "true", replay.Header.Get("Idempotent-Replayed"))
	require.JSONEq(t, string(first.Raw), string(replay.Raw), "a replay answers the same body")
	changed := P{"customer_id": "oa-lamna", "offer_id": "analytics", "plan_id": "annual", "quantity": 6}
	purchase("reuse the key with another body", admin, key, changed, http.StatusUnprocessableEntity)
	malformedPartner("purchase without Idempotency-Key", admin, http.MethodPost, "/v1/subscriptions", buy, http.StatusBadRequest)
	malformedPartner("purchase with a 300-character Idempotency-Key", admin, http.MethodPost, "/v1/subscriptions", buy,
		http.StatusBadRequest, "Idempotency-Key", strings.Repeat("k", 300))
	purchase("purchase above the plan's maximum quantity", admin, uuid.NewString(),
		P{"customer_id": "oa-lamna", "offer_id": "analytics", "plan_id": "annual", "quantity": 1000}, http.StatusUnprocessableEntity)
	purchase("purchase an unknown offer", admin, uuid.NewString(),
		P{"customer_id": "oa-lamna", "offer_id": "no-such-offer", "plan_id": "annual", "quantity": 1}, http.StatusUnprocessableEntity)
	malformedPartner("purchase with an unknown field", admin, http.MethodPost, "/v1/subscriptions",
		P{"customer_id": "oa-lamna", "offer_id": "analytics", "plan_id": "annual", "quantity": 1, "colour": "blue"},
		http.StatusBadRequest, "Idempotency-Key", uuid.NewString())
	malformedPartner("purchase with a string quantity", admin, http.MethodPost, "/v1/subscriptions",
		P{"customer_id": "oa-lamna", "offer_id": "analytics", "plan_id": "annual", "quantity": "five"},
		http.StatusBadRequest, "Idempotency-Key", uuid.NewString())
	malformedPartner("purchase with malformed JSON", admin, http.MethodPost, "/v1/subscriptions",
		`{"customer_id": "oa-lamna",`, http.StatusBadRequest, "Idempotency-Key", uuid.NewString())
	malformedPartner("purchase with a body over 64 KiB", admin, http.MethodPost, "/v1/subscriptions",
		P{"customer_id": "oa-lamna", "offer_id": "analytics", "plan_id": "annual", "quantity": 1, "nickname": strings.Repeat("n", 70<<10)},
		http.StatusRequestEntityTooLarge, "Idempotency-Key", uuid.NewString())
	purchase("purchase without an API key", "", uuid.NewString(), buy, http.StatusUnauthorized)
	// A sales agent may purchase too; this one is deactivated below.
	second := purchase("purchase as a sales agent, with reseller and auto_renew off", sales, uuid.NewString(),
		P{"customer_id": "oa-lamna", "offer_id": "analytics", "plan_id": "annual", "quantity": 2,
			"reseller_partner_id": "contoso-reseller", "auto_renew": false}, http.StatusCreated)
	app := purchase("purchase an app linked to the first subscription", admin, uuid.NewString(),
		P{"customer_id": "oa-lamna", "offer_id": "insights-app", "plan_id": "monthly", "quantity": 1, "parent_subscription_id": id},
		http.StatusCreated)
	require.Equal(t, id, app.Str("parent_subscription_id"))

	// Lists.
	page := partner("list upcoming subscriptions, one per page", admin, http.MethodGet, "/v1/subscriptions?tab=upcoming&limit=1", nil, http.StatusOK)
	cursor, _ := page.Body["next_cursor"].(string)
	require.NotEmpty(t, cursor, "three upcoming subscriptions do not fit one page: %s", page)
	partner("list the next page", admin, http.MethodGet, "/v1/subscriptions?tab=upcoming&limit=1&cursor="+url.QueryEscape(cursor), nil, http.StatusOK)
	partner("list a customer's subscriptions", sales, http.MethodGet, "/v1/subscriptions?customer_id=oa-lamna&limit=100", nil, http.StatusOK)
	partner("list every subscription", admin, http.MethodGet, "/v1/subscriptions", nil, http.StatusOK)
	malformedPartner("list an unknown tab", admin, http.MethodGet, "/v1/subscriptions?tab=paused", nil, http.StatusBadRequest)
	malformedPartner("list with limit 0", admin, http.MethodGet, "/v1/subscriptions?limit=0", nil, http.StatusBadRequest)
	malformedPartner("list with limit 101", admin, http.MethodGet, "/v1/subscriptions?limit=101", nil, http.StatusBadRequest)
	partner("list with a cursor this API never returned", admin, http.MethodGet, "/v1/subscriptions?cursor=bogus", nil, http.StatusBadRequest)
	partner("list without an API key", "", http.MethodGet, "/v1/subscriptions", nil, http.StatusUnauthorized)

	// Get.
	got := partner("get the subscription", admin, http.MethodGet, "/v1/subscriptions/"+id, nil, http.StatusOK)
	require.Equal(t, []any{app.Str("id")}, got.Body["linked_subscription_ids"])
	partner("get another partner's subscription", other, http.MethodGet, "/v1/subscriptions/"+id, nil, http.StatusNotFound)
	partner("get an unknown subscription", admin, http.MethodGet, "/v1/subscriptions/sub-does-not-exist", nil, http.StatusNotFound)

	// The publisher fulfils.
	code := first.Body["publisher_link"].(map[string]any)["authorization_code"]
	resolved := publisher("resolve the authorization code", "/v1/publisher/resolve", P{"authorization_code": code}, http.StatusOK)
	require.Equal(t, id, resolved.Body["subscription"].(map[string]any)["id"])
	publisher("resolve an unknown code", "/v1/publisher/resolve", P{"authorization_code": "not-a-code"}, http.StatusNotFound)
	req, raw := c.publisherRequest(w.contoso, "msg_"+uuid.NewString(), "/v1/publisher/resolve", P{"code": code})
	c.do(exchange{step: "resolve with an unknown field", req: req, raw: raw, want: http.StatusBadRequest, malformed: true})
	publisherAs("resolve signed with another publisher's secret", w.Publisher("contoso", LitwareSecret),
		"msg_"+uuid.NewString(), "/v1/publisher/resolve", P{"authorization_code": code}, http.StatusUnauthorized)
	unsigned, _ := http.NewRequest(http.MethodPost, w.BaseURL+"/v1/publisher/resolve", nil)
	unsigned.Header.Set("Content-Type", "application/json")
	unsigned.Header.Set("X-Publisher-Id", "contoso")
	c.do(exchange{step: "resolve without a signature", req: unsigned, raw: jsonBody(t, P{"authorization_code": code}),
		want: http.StatusUnauthorized, malformed: true})
	stale := w.contoso
	stale.Skew = -10 * time.Minute
	publisherAs("resolve with a stale timestamp", stale, "msg_"+uuid.NewString(), "/v1/publisher/resolve",
		P{"authorization_code": code}, http.StatusUnauthorized)
	publisherAs("assign licenses on another publisher's subscription", w.litware, "msg_"+uuid.NewString(),
		"/v1/publisher/subscriptions/"+id+"/licenses", P{"assigned": 1}, http.StatusNotFound)
	publisher("assign more licenses than seats", "/v1/publisher/subscriptions/"+id+"/licenses", P{"assigned": 500}, http.StatusUnprocessableEntity)
	licensesMsg := "msg_" + uuid.NewString()
	lic := publisherAs("assign licenses", w.contoso, licensesMsg, "/v1/publisher/subscriptions/"+id+"/licenses", P{"assigned": 5}, http.StatusOK)
	require.Nil(t, lic.Body["publisher_link"], "publishers never see the link")
	again := publisherAs("redeliver the licenses message", w.contoso, licensesMsg, "/v1/publisher/subscriptions/"+id+"/licenses", P{"assigned": 5}, http.StatusOK)
	require.Equal(t, "true", again.Header.Get("Idempotent-Replayed"))
	publisherAs("reuse the webhook-id for another message", w.contoso, licensesMsg, "/v1/publisher/subscriptions/"+id+"/licenses",
		P{"assigned": 4}, http.StatusUnprocessableEntity)
	active := publisher("confirm fulfillment", "/v1/publisher/subscriptions/"+id+"/activate",
		P{"site_url": "https://lamna.contoso.example"}, http.StatusOK)
	require.Equal(t, "active", active.Str("status"), active.String())
	publisher("confirm fulfillment again", "/v1/publisher/subscriptions/"+id+"/activate", P{}, http.StatusOK)

	// The partner's billing system reports payments (signed with its billing secret).
	billingEvent := func(step string, signer billingSigner, webhookID string, body any, want int) testenv.Response {
		t.Helper()
		raw := jsonBody(t, body)
		return c.do(exchange{step: step, req: signer.request(webhookID, raw), raw: raw, want: want})
	}
	fabBilling := w.billingSystem("fabrikam", FabrikamBillingSecret)
	failedEvent := P{"event_id": "evt_" + uuid.NewString(), "type": "payment_failed", "subscription_id": id, "reason": "card declined"}
	failedMsg := "msg_" + uuid.NewString()
	billingEvent("a payment failed", fabBilling, failedMsg, failedEvent, http.StatusOK)
	billingEvent("the same payment event again", fabBilling, failedMsg, failedEvent, http.StatusOK)
	billingEvent("a payment event signed with another partner's secret", w.billingSystem("fabrikam", NorthwindBillingSecret),
		"msg_"+uuid.NewString(), failedEvent, http.StatusUnauthorized)
	billingEvent("another event under the same event_id", fabBilling, "msg_"+uuid.NewString(),
		P{"event_id": failedEvent["event_id"], "type": "payment_received", "subscription_id": id}, http.StatusUnprocessableEntity)
	billingEvent("a payment event for another partner's subscription", w.billingSystem("northwind", NorthwindBillingSecret),
		"msg_"+uuid.NewString(), P{"event_id": "evt_" + uuid.NewString(), "type": "payment_failed", "subscription_id": id}, http.StatusNotFound)
	reinstated := billingEvent("a payment received", fabBilling, "msg_"+uuid.NewString(),
		P{"event_id": "evt_" + uuid.NewString(), "type": "payment_received", "subscription_id": id, "occurred_at": "2026-11-30T09:00:00Z"}, http.StatusOK)
	require.Equal(t, "active", reinstated.Str("status"), reinstated.String())
	billingEvent("a payment received for an active subscription", fabBilling, "msg_"+uuid.NewString(),
		P{"event_id": "evt_" + uuid.NewString(), "type": "payment_received", "subscription_id": id}, http.StatusConflict)

	// The publisher reads what it sold (signed GETs).
	publisherRead := func(step string, pub testenv.Publisher, webhookID, target string, want int, malformed bool) testenv.Response {
		t.Helper()
		req, raw := c.publisherGet(pub, webhookID, target)
		return c.do(exchange{step: step, req: req, raw: raw, want: want, malformed: malformed})
	}
	read := func(step, target string, want int) testenv.Response {
		t.Helper()
		return publisherRead(step, w.contoso, "msg_"+uuid.NewString(), target, want, false)
	}
	sold := read("list the publisher's subscriptions, one per page", "/v1/publisher/subscriptions?limit=1", http.StatusOK)
	soldCursor, _ := sold.Body["next_cursor"].(string)
	require.NotEmpty(t, soldCursor, sold.String())
	read("list the publisher's next page", "/v1/publisher/subscriptions?limit=1&cursor="+url.QueryEscape(soldCursor), http.StatusOK)
	read("list the publisher's active and pending subscriptions", "/v1/publisher/subscriptions?status=active,pending_fulfillment", http.StatusOK)
	publisherRead("list with an unknown status", w.contoso, "msg_"+uuid.NewString(), "/v1/publisher/subscriptions?status=paused", http.StatusBadRequest, true)
	read("list with a cursor this API never returned", "/v1/publisher/subscriptions?cursor=bogus", http.StatusBadRequest)
	readMsg := "msg_" + uuid.NewString()
	mine := publisherRead("read one of the publisher's subscriptions", w.contoso, readMsg, "/v1/publisher/subscriptions/"+id, http.StatusOK, false)
	require.Nil(t, mine.Body["publisher_link"], "publishers never see the link")
	replayedRead := publisherRead("read again under the same webhook-id", w.contoso, readMsg, "/v1/publisher/subscriptions/"+id, http.StatusOK, false)
	require.Equal(t, "true", replayedRead.Header.Get("Idempotent-Replayed"))
	publisherRead("reuse a read's webhook-id for another read", w.contoso, readMsg, "/v1/publisher/subscriptions", http.StatusUnprocessableEntity, false)
	publisherRead("read another publisher's subscription", w.litware, "msg_"+uuid.NewString(), "/v1/publisher/subscriptions/"+id, http.StatusNotFound, false)
	publisherRead("read signed with another publisher's secret", w.Publisher("contoso", LitwareSecret), "msg_"+uuid.NewString(),
		"/v1/publisher/subscriptions/"+id, http.StatusUnauthorized, false)

	// The partner changes it.
	partner("rename as a sales agent", sales, http.MethodPatch, "/v1/subscriptions/"+id, P{"nickname": "Lamna analytics"}, http.StatusOK)
	partner("clear the nickname with an Idempotency-Key", admin, http.MethodPatch, "/v1/subscriptions/"+id,
		P{"nickname": nil, "reseller_partner_id": "contoso-reseller"}, http.StatusOK, "Idempotency-Key", uuid.NewString())
	partner("change quantity as a sales agent", sales, http.MethodPatch, "/v1/subscriptions/"+id, P{"quantity": 7}, http.StatusForbidden)
	partner("increase quantity", admin, http.MethodPatch, "/v1/subscriptions/"+id, P{"quantity": 7}, http.StatusOK)
	partner("quantity above the plan's maximum", admin, http.MethodPatch, "/v1/subscriptions/"+id, P{"quantity": 1000}, http.StatusUnprocessableEntity)
	malformedPartner("patch nothing", admin, http.MethodPatch, "/v1/subscriptions/"+id, P{}, http.StatusBadRequest)
	malformedPartner("patch an unknown field", admin, http.MethodPatch, "/v1/subscriptions/"+id, P{"colour": "blue"}, http.StatusBadRequest)
	malformedPartner("patch a null quantity", admin, http.MethodPatch, "/v1/subscriptions/"+id, P{"quantity": nil}, http.StatusBadRequest)
	partner("patch an unknown subscription", admin, http.MethodPatch, "/v1/subscriptions/sub-does-not-exist", P{"nickname": "x"}, http.StatusNotFound)
	events := partner("events", admin, http.MethodGet, "/v1/subscriptions/"+id+"/events", nil, http.StatusOK)
	require.NotEmpty(t, events.Body["items"])
	partner("events of an unknown subscription", admin, http.MethodGet, "/v1/subscriptions/sub-does-not-exist/events", nil, http.StatusNotFound)
	bill := partner("billing", admin, http.MethodGet, "/v1/subscriptions/"+id+"/billing", nil, http.StatusOK)
	require.Len(t, bill.Body["items"], 2, "a charge and a proration: %s", bill)
	empty := partner("billing of a subscription never billed", admin, http.MethodGet, "/v1/subscriptions/"+second.Str("id")+"/billing", nil, http.StatusOK)
	require.Empty(t, empty.Body["items"])
	partner("billing of another partner's subscription", other, http.MethodGet, "/v1/subscriptions/"+id+"/billing", nil, http.StatusNotFound)

	// The customer side: contacts, sites, billing accounts, a move.
	contacts := partner("list the customer's contacts", sales, http.MethodGet, "/v1/customers/oa-lamna/contacts", nil, http.StatusOK)
	require.Len(t, contacts.Body["items"], 1, "the purchase's customer_contact_email: %s", contacts)
	partner("list another partner's customer's contacts", admin, http.MethodGet, "/v1/customers/tailspin/contacts", nil, http.StatusNotFound)
	siteKey := uuid.NewString()
	partner("add a site", admin, http.MethodPost, "/v1/customers/oa-lamna/sites",
		P{"name": "Lab", "url": "https://lab.lamna.example"}, http.StatusCreated, "Idempotency-Key", siteKey)
	partner("replay adding the site", admin, http.MethodPost, "/v1/customers/oa-lamna/sites",
		P{"name": "Lab", "url": "https://lab.lamna.example"}, http.StatusCreated, "Idempotency-Key", siteKey)
	partner("reuse the site's key for another site", admin, http.MethodPost, "/v1/customers/oa-lamna/sites",
		P{"url": "https://other.lamna.example"}, http.StatusUnprocessableEntity, "Idempotency-Key", siteKey)
	partner("add a site whose URL the customer has", admin, http.MethodPost, "/v1/customers/oa-lamna/sites",
		P{"url": "https://lab.lamna.example"}, http.StatusConflict, "Idempotency-Key", uuid.NewString())
	malformedPartner("add a site without Idempotency-Key", admin, http.MethodPost, "/v1/customers/oa-lamna/sites",
		P{"url": "https://x.lamna.example"}, http.StatusBadRequest)
	partner("add a site with a relative URL", admin, http.MethodPost, "/v1/customers/oa-lamna/sites",
		P{"url": "/relative"}, http.StatusUnprocessableEntity, "Idempotency-Key", uuid.NewString())
	sites := partner("list sites, one per page", admin, http.MethodGet, "/v1/customers/oa-lamna/sites?limit=1", nil, http.StatusOK)
	require.NotNil(t, sites.Body["next_cursor"], "the activation's site and the lab: %s", sites)
	partner("list the next page of sites", admin, http.MethodGet,
		"/v1/customers/oa-lamna/sites?limit=1&cursor="+url.QueryEscape(sites.Body["next_cursor"].(string)), nil, http.StatusOK)
	partner("list billing accounts", admin, http.MethodGet, "/v1/customers/oa-lamna/billing-accounts", nil, http.StatusOK)
	account := partner("add a billing account", sales, http.MethodPost, "/v1/customers/oa-lamna/billing-accounts",
		P{"name": "Research"}, http.StatusCreated, "Idempotency-Key", uuid.NewString())
	malformedPartner("add a billing account without a name", admin, http.MethodPost, "/v1/customers/oa-lamna/billing-accounts",
		P{}, http.StatusBadRequest, "Idempotency-Key", uuid.NewString())
	partner("move as a sales agent", sales, http.MethodPost, "/v1/subscriptions/"+id+"/transfer",
		P{"billing_account_id": account.Str("id")}, http.StatusForbidden)
	partner("move to an unknown billing account", admin, http.MethodPost, "/v1/subscriptions/"+id+"/transfer",
		P{"billing_account_id": "ba_nope"}, http.StatusUnprocessableEntity)
	moved := partner("move to another billing account", admin, http.MethodPost, "/v1/subscriptions/"+id+"/transfer",
		P{"billing_account_id": account.Str("id")}, http.StatusOK)
	require.Equal(t, account.Str("id"), moved.Body["billing_account_id"])

	// Change the plan: refused by the publisher, asked again and accepted early.
	partner("change the plan as a sales agent", sales, http.MethodPost, "/v1/subscriptions/"+id+"/plan-change",
		P{"plan_id": "pc-premium"}, http.StatusForbidden)
	partner("change to a plan the offer does not have", admin, http.MethodPost, "/v1/subscriptions/"+id+"/plan-change",
		P{"plan_id": "no-such-plan"}, http.StatusUnprocessableEntity, "Idempotency-Key", uuid.NewString())
	malformedPartner("change the plan without plan_id", admin, http.MethodPost, "/v1/subscriptions/"+id+"/plan-change",
		P{}, http.StatusBadRequest)
	upgrade := partner("change the plan", admin, http.MethodPost, "/v1/subscriptions/"+id+"/plan-change",
		P{"plan_id": "pc-premium"}, http.StatusAccepted, "Idempotency-Key", uuid.NewString())
	require.NotNil(t, upgrade.Body["pending_plan_change"], upgrade.String())
	partner("change the plan while a change is pending", admin, http.MethodPost, "/v1/subscriptions/"+id+"/plan-change",
		P{"plan_id": "pc-standard"}, http.StatusConflict)
	publisher("refuse the plan change", "/v1/publisher/subscriptions/"+id+"/plan-change/refuse", P{"reason": "needs a contract"}, http.StatusOK)
	publisher("refuse with nothing pending", "/v1/publisher/subscriptions/"+id+"/plan-change/refuse", P{"reason": "again"}, http.StatusConflict)
	partner("withdraw with nothing pending", admin, http.MethodDelete, "/v1/subscriptions/"+id+"/plan-change", nil, http.StatusConflict)
	partner("change the plan to withdraw it", admin, http.MethodPost, "/v1/subscriptions/"+id+"/plan-change",
		P{"plan_id": "pc-premium"}, http.StatusAccepted)
	partner("withdraw the plan change as a sales agent", sales, http.MethodDelete, "/v1/subscriptions/"+id+"/plan-change", nil, http.StatusForbidden)
	withdrawn := partner("withdraw the plan change", admin, http.MethodDelete, "/v1/subscriptions/"+id+"/plan-change", nil, http.StatusOK,
		"Idempotency-Key", uuid.NewString())
	require.Nil(t, withdrawn.Body["pending_plan_change"], withdrawn.String())
	partner("change the plan again", admin, http.MethodPost, "/v1/subscriptions/"+id+"/plan-change",
		P{"plan_id": "pc-premium"}, http.StatusAccepted)
	accepted := publisher("accept the plan change", "/v1/publisher/subscriptions/"+id+"/plan-change/accept", P{}, http.StatusOK)
	require.Equal(t, "pc-premium", accepted.Str("plan_id"), accepted.String())
	publisher("accept with nothing pending", "/v1/publisher/subscriptions/"+id+"/plan-change/accept", nil, http.StatusConflict)

	// Cancel (refunding the charge and both prorations).
	partner("cancel as a sales agent", sales, http.MethodPost, "/v1/subscriptions/"+id+"/cancel", nil, http.StatusForbidden)
	malformedPartner("cancel with a body", admin, http.MethodPost, "/v1/subscriptions/"+id+"/cancel", P{"reason": "x"}, http.StatusBadRequest)
	cancelled := partner("cancel", admin, http.MethodPost, "/v1/subscriptions/"+id+"/cancel", nil, http.StatusOK, "Idempotency-Key", uuid.NewString())
	require.Equal(t, "cancelled", cancelled.Str("status"))
	partner("cancel again", admin, http.MethodPost, "/v1/subscriptions/"+id+"/cancel", P{}, http.StatusConflict)
	partner("patch a cancelled subscription", admin, http.MethodPatch, "/v1/subscriptions/"+id, P{"nickname": "late"}, http.StatusConflict)
	publisher("confirm fulfillment after cancel", "/v1/publisher/subscriptions/"+id+"/activate", nil, http.StatusConflict)
	publisher("assign licenses after cancel", "/v1/publisher/subscriptions/"+id+"/licenses", P{"assigned": 1}, http.StatusConflict)
	refunded := partner("billing after cancel", admin, http.MethodGet, "/v1/subscriptions/"+id+"/billing", nil, http.StatusOK)
	require.EqualValues(t, 0, refunded.Body["balance_minor"], refunded.String())
	w.waitStatus(t, app.Str("id"), "deactivated", 30*time.Second)
	partner("get the app deactivated with its parent", admin, http.MethodGet, "/v1/subscriptions/"+app.Str("id"), nil, http.StatusOK)
	partner("list inactive subscriptions", admin, http.MethodGet, "/v1/subscriptions?tab=inactive", nil, http.StatusOK)

	// Deactivate.
	sid := second.Str("id")
	partner("deactivate as a sales agent", sales, http.MethodPost, "/v1/subscriptions/"+sid+"/deactivate", nil, http.StatusForbidden)
	partner("deactivate another partner's subscription", other, http.MethodPost, "/v1/subscriptions/"+sid+"/deactivate", nil, http.StatusNotFound)
	off := partner("deactivate", admin, http.MethodPost, "/v1/subscriptions/"+sid+"/deactivate", P{}, http.StatusOK)
	require.Equal(t, "deactivated", off.Str("status"))
	partner("deactivate again", admin, http.MethodPost, "/v1/subscriptions/"+sid+"/deactivate", nil, http.StatusConflict)

	// The cancellation window closes one second after billing starts.
	short := purchase("purchase a plan with a one-second window", admin, uuid.NewString(),
		P{"customer_id": "oa-lamna", "offer_id": "analytics", "plan_id": "short-window", "quantity": 3}, http.StatusCreated)
	shortID := short.Str("id")
	publisher("resolve the second code", "/v1/publisher/resolve",
		P{"authorization_code": short.Body["publisher_link"].(map[string]any)["authorization_code"]}, http.StatusOK)
	publisher("confirm fulfillment first", "/v1/publisher/subscriptions/"+shortID+"/activate", nil, http.StatusOK)
	billed := publisher("assign licenses last", "/v1/publisher/subscriptions/"+shortID+"/licenses", P{"assigned": 3}, http.StatusOK)
	require.Equal(t, "active", billed.Str("status"), billed.String())
	windowEnds, err := time.Parse(time.RFC3339Nano, billed.Str("cancellation_window_ends_at"))
	require.NoError(t, err, billed.String())
	time.Sleep(time.Until(windowEnds) + 500*time.Millisecond)
	partner("cancel after the window", admin, http.MethodPost, "/v1/subscriptions/"+shortID+"/cancel", nil, http.StatusConflict)
	partner("decrease quantity after the window", admin, http.MethodPatch, "/v1/subscriptions/"+shortID, P{"quantity": 1}, http.StatusConflict)
	partner("turn auto_renew off instead", admin, http.MethodPatch, "/v1/subscriptions/"+shortID, P{"auto_renew": false}, http.StatusOK)

	// Statements (the month of the first charge) and the reconciliation report.
	var firstCharge time.Time
	require.NoError(t, w.Store.DB().Get(&firstCharge, `SELECT min(created_at) FROM ledger`))
	month := firstCharge.UTC().Format("2006-01")
	partner("a customer's statement", sales, http.MethodGet, "/v1/billing/statements?customer_id=oa-lamna&month="+month, nil, http.StatusOK)
	partner("a statement of a month without billing", admin, http.MethodGet, "/v1/billing/statements?customer_id=oa-lamna&month=1999-01", nil, http.StatusOK)
	malformedPartner("a statement of month 13", admin, http.MethodGet, "/v1/billing/statements?customer_id=oa-lamna&month=2026-13", nil, http.StatusBadRequest)
	malformedPartner("a statement without customer", admin, http.MethodGet, "/v1/billing/statements?month="+month, nil, http.StatusBadRequest)
	partner("a statement of another partner's customer", other, http.MethodGet, "/v1/billing/statements?customer_id=oa-lamna&month="+month, nil, http.StatusNotFound)
	partner("the reconciliation report before any run", OpsKey, http.MethodGet, "/v1/ops/reconciliation/latest", nil, http.StatusNotFound)
	partner("the reconciliation report with a partner's key", admin, http.MethodGet, "/v1/ops/reconciliation/latest", nil, http.StatusForbidden)
	partner("the reconciliation report without a key", "", http.MethodGet, "/v1/ops/reconciliation/latest", nil, http.StatusUnauthorized)
	w.reconcile(t)
	partner("the reconciliation report", OpsKey, http.MethodGet, "/v1/ops/reconciliation/latest?limit=1", nil, http.StatusOK)
	partner("the reconciliation report with a cursor this API never returned", OpsKey, http.MethodGet, "/v1/ops/reconciliation/latest?cursor=bogus", nil, http.StatusBadRequest)

	// Every documented operation was answered with a success, and the error
	// statuses of the contract were all seen.
	for path, item := range c.doc.Paths.Map() {
		for method, op := range item.Operations() {
			ok := false
			for status := 200; status < 300; status++ {
				ok = ok || c.answered[fmt.Sprintf("%s %s %d", method, path, status)]
			}
			if !ok {
				t.Errorf("operation %s (%s %s) was never answered with a success in this flow", op.OperationID, method, path)
			}
		}
	}
	var seen []string
	for k := range c.answered {
		seen = append(seen, k)
	}
	slices.Sort(seen)
	for _, status := range []int{400, 401, 403, 404, 409, 413, 422} {
		found := slices.ContainsFunc(seen, func(k string) bool { return strings.HasSuffix(k, fmt.Sprintf(" %d", status)) })
		if !found {
			t.Errorf("no answer with status %d was validated", status)
		}
	}
	t.Logf("validated (operation, status) pairs:\n%s", strings.Join(seen, "\n"))
}
