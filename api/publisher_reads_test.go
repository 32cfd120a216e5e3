package api

import (
	"bufio"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
)

// parseRequest reads a raw HTTP/1.1 request as the server would receive it.
func parseRequest(t *testing.T, raw string) *http.Request {
	t.Helper()
	req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func TestSignedPayload(t *testing.T) {
	gin.SetMode(gin.TestMode)
	for _, c := range []struct {
		name, raw, want string
		code            string
	}{
		{"a POST signs its raw body", "POST /v1/publisher/resolve HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n\r\n{\"a\":  \"b\" }", `{"a":  "b" }`, ""},
		{"a POST with no body signs nothing", "POST /v1/publisher/subscriptions/s1/activate HTTP/1.1\r\nHost: x\r\n\r\n", "", ""},
		{"a GET signs method and path", "GET /v1/publisher/subscriptions/s1 HTTP/1.1\r\nHost: x\r\n\r\n",
			"GET /v1/publisher/subscriptions/s1", ""},
		{"with the query as sent", "GET /v1/publisher/subscriptions?status=active,cancelled&limit=2 HTTP/1.1\r\nHost: x\r\n\r\n",
			"GET /v1/publisher/subscriptions?status=active,cancelled&limit=2", ""},
		{"percent-encoding as sent", "GET /v1/publisher/subscriptions/a%2Fb?cursor=czo0%3D HTTP/1.1\r\nHost: x\r\n\r\n",
			"GET /v1/publisher/subscriptions/a%2Fb?cursor=czo0%3D", ""},
		{"an empty query stays", "GET /v1/publisher/subscriptions? HTTP/1.1\r\nHost: x\r\n\r\n", "GET /v1/publisher/subscriptions?", ""},
		{"an absolute-form target signs its path and query", "GET http://x/v1/publisher/subscriptions?limit=1 HTTP/1.1\r\nHost: x\r\n\r\n",
			"GET /v1/publisher/subscriptions?limit=1", ""},
		{"a GET with a body is malformed", "GET /v1/publisher/subscriptions HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}", "", CodeInvalidRequest},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, _ := gin.CreateTestContext(httptest.NewRecorder())
			ctx.Request = parseRequest(t, c.raw)
			got, err := signedPayload(ctx)
			var p *Problem
			switch {
			case c.code != "" && (!errors.As(err, &p) || p.Code != c.code):
				t.Fatalf("error %v, want problem %s", err, c.code)
			case c.code == "" && err != nil:
				t.Fatal(err)
			case string(got) != c.want:
				t.Errorf("payload %q, want %q", got, c.want)
			}
		})
	}
}
