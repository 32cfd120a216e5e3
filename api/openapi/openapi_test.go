package openapi

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

type statusCode struct {
	status int
	code   string
}

// errorTable is API.md's error table (status, code), then the codes this
// implementation adds: the catch-all 500 and a duplicate customer id.
var errorTable = []statusCode{
	{400, "invalid_request"},
	{400, "idempotency_key_required"},
	{401, "unauthenticated"},
	{403, "forbidden_role"},
	{404, "not_found"},
	{409, "invalid_state"},
	{409, "cancellation_window_closed"},
	{409, "idempotency_key_in_use"},
	{413, "payload_too_large"},
	{422, "idempotency_key_reused"},
	{422, "validation_failed"},
	{429, "rate_limited"},
	{503, "unavailable"},

	{500, "internal"},
	{409, "already_exists"},
	{405, "method_not_allowed"},
}

// routingCodes are answered by the router itself (a known path with another
// method, with an Allow header), not by any documented operation.
var routingCodes = map[string]bool{"method_not_allowed": true}

const problemJSON = "application/problem+json"

func load(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

func TestDocumentIsValidOpenAPI31(t *testing.T) {
	if !json.Valid(Document()) {
		t.Fatal("openapi.json is not valid JSON")
	}
	doc := load(t)
	if doc.OpenAPI != "3.1.0" {
		t.Errorf("openapi = %q, want 3.1.0", doc.OpenAPI)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("validate: %v", err)
	}
}

// operation is one operation of the document with where it lives.
type operation struct {
	method, path string
	op           *openapi3.Operation
	item         *openapi3.PathItem
}

func operations(doc *openapi3.T) []operation {
	var ops []operation
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			ops = append(ops, operation{method, path, op, item})
		}
	}
	return ops
}

// problemCodes returns the codes a problem response declares in its schema's code enum.
func problemCodes(t *testing.T, where string, resp *openapi3.Response) []string {
	t.Helper()
	mt := resp.Content.Get(problemJSON)
	if mt == nil || mt.Schema == nil {
		t.Errorf("%s: no %s schema", where, problemJSON)
		return nil
	}
	var codes []string
	var walk func(s *openapi3.SchemaRef)
	walk = func(s *openapi3.SchemaRef) {
		// Skip the shared Problem schema: its code enum lists every code.
		if s == nil || s.Ref != "" || s.Value == nil {
			return
		}
		if c := s.Value.Properties["code"]; c != nil && c.Value != nil {
			for _, v := range c.Value.Enum {
				if code, ok := v.(string); ok && !slices.Contains(codes, code) {
					codes = append(codes, code)
				}
			}
		}
		for _, sub := range s.Value.AllOf {
			walk(sub)
		}
	}
	for _, sub := range mt.Schema.Value.AllOf {
		walk(sub)
	}
	if len(codes) == 0 {
		t.Errorf("%s: problem response narrows no code", where)
	}
	return codes
}

func TestErrorTableIsCovered(t *testing.T) {
	doc := load(t)

	enum := doc.Components.Schemas["ProblemCode"].Value.Enum
	for _, e := range errorTable {
		if !slices.Contains(enum, any(e.code)) {
			t.Errorf("ProblemCode enum lacks %q", e.code)
		}
	}
	if len(enum) != len(errorTable) {
		t.Errorf("ProblemCode enum has %d codes, the contract %d: %v", len(enum), len(errorTable), enum)
	}

	statusOf := map[string]int{}
	for _, e := range errorTable {
		statusOf[e.code] = e.status
	}
	seen := map[string]bool{}
	for _, o := range operations(doc) {
		for key, ref := range o.op.Responses.Map() {
			status, err := strconv.Atoi(key)
			if err != nil || status < 400 {
				continue
			}
			where := o.method + " " + o.path + " " + key
			for _, code := range problemCodes(t, where, ref.Value) {
				if statusOf[code] != status {
					t.Errorf("%s: code %q belongs to status %d", where, code, statusOf[code])
				}
				seen[key+" "+code] = true
			}
		}
	}
	for _, e := range errorTable {
		if !seen[strconv.Itoa(e.status)+" "+e.code] && !routingCodes[e.code] {
			t.Errorf("no operation answers %d %s", e.status, e.code)
		}
	}
	if h := doc.Components.Responses["RateLimited"].Value.Headers["Retry-After"]; h == nil {
		t.Error("429 lacks the Retry-After header")
	}
}

func TestEveryContractOperationIsDocumented(t *testing.T) {
	doc := load(t)
	type want struct {
		method, path string
		status       int
		auth         string // "partner", "publisher" or "" (none)
	}
	for _, w := range []want{
		{http.MethodPost, "/v1/subscriptions", 201, "partner"},
		{http.MethodGet, "/v1/subscriptions", 200, "partner"},
		{http.MethodGet, "/v1/subscriptions/{id}", 200, "partner"},
		{http.MethodPatch, "/v1/subscriptions/{id}", 200, "partner"},
		{http.MethodPost, "/v1/subscriptions/{id}/cancel", 200, "partner"},
		{http.MethodPost, "/v1/subscriptions/{id}/deactivate", 200, "partner"},
		{http.MethodPost, "/v1/subscriptions/{id}/plan-change", 202, "partner"},
		{http.MethodGet, "/v1/subscriptions/{id}/events", 200, "partner"},
		{http.MethodGet, "/v1/subscriptions/{id}/billing", 200, "partner"},
		{http.MethodPost, "/v1/customers", 201, "partner"},
		{http.MethodGet, "/v1/customers", 200, "partner"},
		{http.MethodGet, "/v1/customers/{id}", 200, "partner"},
		{http.MethodPost, "/v1/publisher/resolve", 200, "publisher"},
		{http.MethodPost, "/v1/publisher/subscriptions/{id}/licenses", 200, "publisher"},
		{http.MethodPost, "/v1/publisher/subscriptions/{id}/activate", 200, "publisher"},
		{http.MethodPost, "/v1/publisher/subscriptions/{id}/plan-change/refuse", 200, "publisher"},
		{http.MethodPost, "/v1/publisher/subscriptions/{id}/plan-change/accept", 200, "publisher"},
		{http.MethodGet, "/v1/offers", 200, "partner"},
		{http.MethodGet, "/v1/offers/{id}", 200, "partner"},
		{http.MethodGet, "/v1/publisher/subscriptions", 200, "publisher"},
		{http.MethodGet, "/v1/publisher/subscriptions/{id}", 200, "publisher"},
		{http.MethodGet, "/healthz", 200, ""},
		{http.MethodGet, "/readyz", 200, ""},
		{http.MethodGet, "/metrics", 200, ""},
		{http.MethodGet, "/openapi.json", 200, ""},
	} {
		name := w.method + " " + w.path
		item := doc.Paths.Value(w.path)
		if item == nil {
			t.Errorf("%s: path missing", name)
			continue
		}
		op := item.GetOperation(w.method)
		if op == nil {
			t.Errorf("%s: operation missing", name)
			continue
		}
		if op.Responses.Status(w.status) == nil {
			t.Errorf("%s: no %d response", name, w.status)
		}
		if op.Security == nil {
			t.Errorf("%s: security not declared", name)
			continue
		}
		switch w.auth {
		case "partner":
			if len(*op.Security) != 1 || (*op.Security)[0]["partnerApiKey"] == nil {
				t.Errorf("%s: security %v, want partnerApiKey", name, *op.Security)
			}
			if op.Responses.Status(401) == nil || op.Responses.Status(429) == nil || op.Responses.Status(503) == nil {
				t.Errorf("%s: lacks 401, 429 or 503", name)
			}
		case "publisher":
			if len(*op.Security) != 1 || (*op.Security)[0]["publisherSignature"] == nil || (*op.Security)[0]["publisherId"] == nil {
				t.Errorf("%s: security %v, want publisherSignature and publisherId", name, *op.Security)
			}
			for _, h := range []string{"webhook-id", "webhook-timestamp", "webhook-signature", "X-Publisher-Id"} {
				p := op.Parameters.GetByInAndName(openapi3.ParameterInHeader, h)
				if p == nil || !p.Required {
					t.Errorf("%s: required header %s missing", name, h)
				}
			}
		default:
			if len(*op.Security) != 0 {
				t.Errorf("%s: should need no authentication", name)
			}
		}
	}

	purchase := doc.Paths.Value("/v1/subscriptions").Post
	if p := purchase.Parameters.GetByInAndName(openapi3.ParameterInHeader, "Idempotency-Key"); p == nil || !p.Required ||
		p.Schema.Value.MaxLength == nil || *p.Schema.Value.MaxLength != 255 {
		t.Error("POST /v1/subscriptions: Idempotency-Key must be required with maxLength 255")
	}
	for _, path := range []string{"/v1/subscriptions/{id}", "/v1/subscriptions/{id}/cancel", "/v1/subscriptions/{id}/deactivate", "/v1/subscriptions/{id}/plan-change"} {
		item := doc.Paths.Value(path)
		op := item.Patch
		if op == nil {
			op = item.Post
		}
		if p := op.Parameters.GetByInAndName(openapi3.ParameterInHeader, "Idempotency-Key"); p == nil || p.Required {
			t.Errorf("%s: Idempotency-Key must be an optional header", path)
		}
	}
}

func TestRequestBodiesRejectUnknownFields(t *testing.T) {
	doc := load(t)
	for _, o := range operations(doc) {
		if o.op.RequestBody == nil {
			continue
		}
		s := o.op.RequestBody.Value.Content.Get("application/json").Schema.Value
		if s.AdditionalProperties.Has == nil || *s.AdditionalProperties.Has {
			t.Errorf("%s %s: request body must set additionalProperties: false", o.method, o.path)
		}
	}
	purchase := doc.Components.Schemas["PurchaseRequest"].Value
	ok := map[string]any{"customer_id": "woodgrove", "offer_id": "o", "plan_id": "p", "quantity": float64(1)}
	if err := doc.ValidateSchemaJSON(purchase, ok); err != nil {
		t.Errorf("valid purchase rejected: %v", err)
	}
	ok["colour"] = "blue"
	if err := doc.ValidateSchemaJSON(purchase, ok); err == nil {
		t.Error("purchase with an unknown field accepted")
	}
}

// subscriptionFields is the Subscription object of API.md plus the fields
// this implementation adds.
var subscriptionFields = []string{
	"id", "status", "tab", "partner_id", "customer_id", "offer_id", "plan_id", "quantity",
	"nickname", "auto_renew", "reseller_partner_id", "parent_subscription_id",
	"linked_subscription_ids", "entitlement_number", "site_url", "licenses_assigned",
	"fulfillment_confirmed", "publisher_link", "activation_deadline", "billing_started_at",
	"term_start", "term_end", "next_bill_date", "days_until_renewal",
	"cancellation_window_ends_at", "created_at", "updated_at",
	"publisher_id", "term_number", "version", "billing_frequency", "pending_billing_frequency",
	"site", "billing_account_id", "action_required", "pending_plan_change",
}

func TestSubscriptionSchema(t *testing.T) {
	doc := load(t)
	s := doc.Components.Schemas["Subscription"].Value
	for _, f := range subscriptionFields {
		if s.Properties[f] == nil {
			t.Errorf("Subscription lacks %s", f)
		}
		if !slices.Contains(s.Required, f) {
			t.Errorf("Subscription.%s is not required", f)
		}
	}
	if len(s.Properties) != len(subscriptionFields) {
		t.Errorf("Subscription has %d properties, want %d", len(s.Properties), len(subscriptionFields))
	}

	// A purchased subscription as a partner sees it, with every null the contract allows.
	sub := map[string]any{
		"id": "s1", "status": "active", "tab": "active", "partner_id": "fabrikam", "publisher_id": "contoso",
		"customer_id": "woodgrove", "offer_id": "o", "plan_id": "p", "quantity": 3.0,
		"nickname": nil, "auto_renew": true, "reseller_partner_id": nil, "parent_subscription_id": nil,
		"linked_subscription_ids": []any{}, "entitlement_number": "ENT-1", "site_url": nil,
		"licenses_assigned": 3.0, "fulfillment_confirmed": true, "publisher_link": nil,
		"activation_deadline": "2026-01-01T00:00:00Z", "billing_started_at": "2026-01-01T00:00:00Z",
		"term_number": 1.0, "term_start": "2026-01-01T00:00:00Z", "term_end": "2027-01-01T00:00:00Z",
		"next_bill_date": "2027-01-01T00:00:00Z", "days_until_renewal": 365.0,
		"cancellation_window_ends_at": nil, "billing_frequency": "P1M", "pending_billing_frequency": nil,
		"created_at": "2026-01-01T00:00:00Z",
		"updated_at": "2026-01-01T00:00:00Z", "version": 4.0,
		"site": map[string]any{"id": "site_1", "name": "HQ", "url": "https://hq.example"}, "billing_account_id": "ba_1",
		"action_required": nil, "pending_plan_change": nil,
	}
	if err := doc.ValidateSchemaJSON(s, sub, openapi3.EnableJSONSchema2020()); err != nil {
		t.Errorf("valid subscription rejected: %v", err)
	}
	sub["publisher_link"] = map[string]any{"url": "https://x.example/?token=a", "authorization_code": "a", "expires_at": "2026-01-01T00:00:00Z"}
	if err := doc.ValidateSchemaJSON(s, sub, openapi3.EnableJSONSchema2020()); err != nil {
		t.Errorf("subscription with a publisher link rejected: %v", err)
	}
	delete(sub, "nickname")
	if err := doc.ValidateSchemaJSON(s, sub, openapi3.EnableJSONSchema2020()); err == nil {
		t.Error("subscription without nickname accepted; every field must be present")
	}
	sub["nickname"] = nil
	sub["status"] = "paused"
	if err := doc.ValidateSchemaJSON(s, sub, openapi3.EnableJSONSchema2020()); err == nil {
		t.Error("unknown status accepted")
	}
}

// Validate does not check JSON Schema "examples" keywords, so check them here.
func TestSchemaExamplesMatchTheirSchemas(t *testing.T) {
	doc := load(t)
	n := 0
	for name, ref := range doc.Components.Schemas {
		for i, ex := range ref.Value.Examples {
			n++
			if err := doc.ValidateSchemaJSON(ref.Value, ex, openapi3.EnableJSONSchema2020()); err != nil {
				t.Errorf("%s example %d: %v", name, i, err)
			}
		}
	}
	if n == 0 {
		t.Error("no schema examples found")
	}
}
