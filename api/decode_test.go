package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/partnerhub/fulfillment/domain"
	"github.com/partnerhub/fulfillment/store"
	"github.com/partnerhub/fulfillment/workflows"
)

var testAgent = store.Agent{PartnerID: "fabrikam", ID: "alice", Role: domain.RoleAdminAgent}

// decodeRouter answers like the handlers do before they touch a dependency:
// read the body within the limit, decode it strictly, answer problem+json.
func decodeRouter() *gin.Engine {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	handle := func(decode func([]byte) error) gin.HandlerFunc {
		return func(c *gin.Context) {
			body, err := readBody(c)
			if err == nil {
				err = decode(body)
			}
			if err != nil {
				writeProblem(c, err)
				return
			}
			c.Status(http.StatusNoContent)
		}
	}
	r.POST("/purchase", handle(func(b []byte) error { _, err := DecodePurchase(b); return err }))
	r.PATCH("/patch", handle(func(b []byte) error { _, err := DecodePatch(b); return err }))
	r.POST("/plan-change", handle(func(b []byte) error { _, err := DecodePlanChange(b); return err }))
	return r
}

const validPurchase = `{"customer_id":"woodgrove","offer_id":"analytics","plan_id":"annual","quantity":5}`

func TestDecodeRejectsBadBodies(t *testing.T) {
	huge := `{"customer_id":"woodgrove","offer_id":"analytics","plan_id":"annual","quantity":5,"nickname":"` +
		strings.Repeat("x", MaxBodyBytes) + `"}`
	cases := []struct {
		name, path, body string
		chunked          bool // no Content-Length: the limit must hold while reading
		status           int
		code             string
	}{
		{"valid purchase", "/purchase", validPurchase, false, 204, ""},
		{"valid patch", "/patch", `{"nickname":null}`, false, 204, ""},
		{"body of exactly 64 KiB is read", "/purchase", validPurchase + strings.Repeat(" ", MaxBodyBytes-len(validPurchase)), false, 204, ""},
		{"body over 64 KiB", "/purchase", huge, false, 413, CodePayloadTooLarge},
		{"body over 64 KiB without Content-Length", "/purchase", huge, true, 413, CodePayloadTooLarge},
		{"one byte over 64 KiB", "/patch", `{"nickname":"a"}` + strings.Repeat(" ", MaxBodyBytes-15), true, 413, CodePayloadTooLarge},
		{"empty body", "/purchase", "", false, 400, CodeInvalidRequest},
		{"unknown field", "/purchase", strings.TrimSuffix(validPurchase, "}") + `,"discount":100}`, false, 400, CodeInvalidRequest},
		{"unknown field in patch", "/patch", `{"nickname":"x","status":"cancelled"}`, false, 400, CodeInvalidRequest},
		{"trailing object", "/purchase", validPurchase + `{}`, false, 400, CodeInvalidRequest},
		{"trailing garbage", "/patch", `{"nickname":"x"} x`, false, 400, CodeInvalidRequest},
		{"two objects", "/patch", `{"nickname":"x"}{"quantity":2}`, false, 400, CodeInvalidRequest},
		{"non-UTF-8 bytes", "/purchase", "{\"customer_id\":\"wood\xffgrove\",\"offer_id\":\"analytics\",\"plan_id\":\"annual\",\"quantity\":5}", false, 400, CodeInvalidRequest},
		{"NUL in a text field", "/purchase", strings.TrimSuffix(validPurchase, "}") + `,"nickname":"a\u0000b"}`, false, 400, CodeInvalidRequest},
		{"NUL in an id", "/purchase", `{"customer_id":"wood\u0000","offer_id":"analytics","plan_id":"annual","quantity":5}`, false, 400, CodeInvalidRequest},
		{"quantity as string", "/purchase", `{"customer_id":"woodgrove","offer_id":"analytics","plan_id":"annual","quantity":"5"}`, false, 400, CodeInvalidRequest},
		{"quantity as fraction", "/patch", `{"quantity":1.5}`, false, 400, CodeInvalidRequest},
		{"quantity beyond int64", "/purchase", `{"customer_id":"woodgrove","offer_id":"analytics","plan_id":"annual","quantity":99999999999999999999}`, false, 400, CodeInvalidRequest},
		{"auto_renew as string", "/patch", `{"auto_renew":"false"}`, false, 400, CodeInvalidRequest},
		{"id as object", "/purchase", `{"customer_id":{"id":"woodgrove"},"offer_id":"analytics","plan_id":"annual","quantity":5}`, false, 400, CodeInvalidRequest},
		{"array body", "/purchase", `[]`, false, 400, CodeInvalidRequest},
		{"null body", "/patch", `null`, false, 400, CodeInvalidRequest},
		{"malformed JSON", "/purchase", `{"customer_id":`, false, 400, CodeInvalidRequest},
		{"missing customer_id", "/purchase", `{"offer_id":"analytics","plan_id":"annual","quantity":5}`, false, 400, CodeInvalidRequest},
		{"missing offer_id", "/purchase", `{"customer_id":"woodgrove","plan_id":"annual","quantity":5}`, false, 400, CodeInvalidRequest},
		{"missing plan_id", "/purchase", `{"customer_id":"woodgrove","offer_id":"analytics","quantity":5}`, false, 400, CodeInvalidRequest},
		{"missing quantity", "/purchase", `{"customer_id":"woodgrove","offer_id":"analytics","plan_id":"annual"}`, false, 400, CodeInvalidRequest},
		{"nickname of 257 characters", "/purchase", strings.TrimSuffix(validPurchase, "}") + `,"nickname":"` + strings.Repeat("ü", 257) + `"}`, false, 400, CodeInvalidRequest},
		{"nickname of 256 characters", "/purchase", strings.TrimSuffix(validPurchase, "}") + `,"nickname":"` + strings.Repeat("ü", 256) + `"}`, false, 204, ""},
		{"reseller id of 65 characters", "/patch", `{"reseller_partner_id":"` + strings.Repeat("r", 65) + `"}`, false, 400, CodeInvalidRequest},
		{"empty patch", "/patch", `{}`, false, 400, CodeInvalidRequest},
		{"null quantity", "/patch", `{"quantity":null}`, false, 400, CodeInvalidRequest},
		{"valid plan change", "/plan-change", `{"plan_id":"premium"}`, false, 204, ""},
		{"plan change without plan_id", "/plan-change", `{}`, false, 400, CodeInvalidRequest},
		{"plan change with an empty plan_id", "/plan-change", `{"plan_id":""}`, false, 400, CodeInvalidRequest},
		{"plan change with a null plan_id", "/plan-change", `{"plan_id":null}`, false, 400, CodeInvalidRequest},
		{"plan change with an unknown field", "/plan-change", `{"plan_id":"premium","quantity":2}`, false, 400, CodeInvalidRequest},
		{"plan change with NUL", "/plan-change", `{"plan_id":"pre\u0000mium"}`, false, 400, CodeInvalidRequest},
		{"plan change with a plan_id of 129 characters", "/plan-change", `{"plan_id":"` + strings.Repeat("p", 129) + `"}`, false, 400, CodeInvalidRequest},
	}
	router := decodeRouter()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			method := http.MethodPost
			if tc.path == "/patch" {
				method = http.MethodPatch
			}
			var body io.Reader = strings.NewReader(tc.body)
			if tc.chunked {
				body = io.MultiReader(body) // hides the length from httptest
			}
			req := httptest.NewRequest(method, tc.path, body)
			if tc.chunked && req.ContentLength != -1 {
				req.ContentLength = -1
			}
			rec := httptest.NewRecorder()
			router.ServeHTTP(rec, req)
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.status, rec.Body.String())
			}
			if tc.code == "" {
				return
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
				t.Fatalf("Content-Type %q, want application/problem+json", ct)
			}
			var p map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
				t.Fatalf("problem body is not JSON: %v: %s", err, rec.Body.String())
			}
			if p["code"] != tc.code || p["status"] != float64(tc.status) || p["type"] != ProblemTypeBase+tc.code ||
				p["title"] == "" || p["detail"] == "" {
				t.Fatalf("problem %v, want code %s status %d", p, tc.code, tc.status)
			}
		})
	}
}

// readBody refuses a declared length over the limit before reading anything.
func TestReadBodyRefusesDeclaredOversize(t *testing.T) {
	w := httptest.NewRecorder()
	c, _ := gin.CreateTestContext(w)
	reader := &countingReader{r: bytes.NewReader(make([]byte, MaxBodyBytes+1))}
	c.Request = httptest.NewRequest(http.MethodPost, "/", reader)
	c.Request.ContentLength = MaxBodyBytes + 1
	_, err := readBody(c)
	var p *Problem
	if !errors.As(err, &p) || p.Code != CodePayloadTooLarge || p.Status != http.StatusRequestEntityTooLarge {
		t.Fatalf("readBody = %v, want payload_too_large", err)
	}
	if reader.n != 0 {
		t.Fatalf("read %d bytes of a body declared too large", reader.n)
	}
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// A key repeated in a PATCH body counts once, as its last value.
func TestDecodePatchRepeatedKeyLastWins(t *testing.T) {
	req, err := DecodePatch([]byte(`{"nickname":null,"nickname":"x"}`))
	if err != nil {
		t.Fatal(err)
	}
	if req.Nickname.Null || req.Nickname.Value != "x" {
		t.Fatalf("nickname = %+v, want the last value x", req.Nickname)
	}
	msg := req.changeRequest("m", workflows.Actor{Kind: "agent"})
	if msg.ClearNickname || msg.Nickname == nil || *msg.Nickname != "x" {
		t.Fatalf("change = %+v, want nickname x", msg)
	}
}

// A known path with another method answers 405 with the Allow header.
func TestMethodNotAllowed(t *testing.T) {
	r := (&Server{}).Router()
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, httptest.NewRequest(http.MethodDelete, "/v1/subscriptions", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Fatalf("status %d, want 405: %s", rec.Code, rec.Body)
	}
	if allow := rec.Header().Get("Allow"); !strings.Contains(allow, "GET") || !strings.Contains(allow, "POST") {
		t.Fatalf("Allow = %q, want GET and POST", allow)
	}
	var p Problem
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || p.Code != CodeMethodNotAllowed {
		t.Fatalf("body %s: want problem %s", rec.Body, CodeMethodNotAllowed)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("content type %q", ct)
	}
}
