package api_test

import (
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/partnerhub/fulfillment/api"
	"github.com/partnerhub/fulfillment/api/openapi"
)

// noopMetrics makes Router register /metrics (it does only when Metrics is set).
type noopMetrics struct{}

func (noopMetrics) ObserveRequest(string, string, int, time.Duration) {}
func (noopMetrics) Handler() http.Handler                             { return http.NotFoundHandler() }

// ginParam matches a Gin path parameter (:id) or catch-all (*path).
var ginParam = regexp.MustCompile(`[:*]([A-Za-z0-9_]+)`)

// openAPIPath converts Gin's /v1/subscriptions/:id to /v1/subscriptions/{id}.
func openAPIPath(ginPath string) string { return ginParam.ReplaceAllString(ginPath, "{$1}") }

// TestOpenAPIRoutesMatchRouter: every route the router registers is an
// operation of the document, and every operation of the document is a route.
func TestOpenAPIRoutesMatchRouter(t *testing.T) {
	doc, err := openapi.Load()
	if err != nil {
		t.Fatal(err)
	}

	registered := map[string]bool{}
	for _, r := range (&api.Server{Metrics: noopMetrics{}}).Router().Routes() {
		if r.Method == http.MethodHead {
			continue
		}
		registered[r.Method+" "+openAPIPath(r.Path)] = true
	}
	documented := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			if method == http.MethodHead {
				continue
			}
			documented[strings.ToUpper(method)+" "+path] = true
		}
	}
	if len(registered) == 0 || len(documented) == 0 {
		t.Fatalf("nothing to compare: %d routes, %d documented operations", len(registered), len(documented))
	}
	if !registered["GET /metrics"] {
		t.Error("GET /metrics is not registered although Metrics is set")
	}

	for _, route := range sortedKeys(registered) {
		if !documented[route] {
			t.Errorf("route %s is registered but not documented in openapi.json", route)
		}
	}
	for _, op := range sortedKeys(documented) {
		if !registered[op] {
			t.Errorf("operation %s is documented in openapi.json but not registered", op)
		}
	}
	t.Logf("%d routes, %d documented operations", len(registered), len(documented))
}

func sortedKeys(m map[string]bool) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
