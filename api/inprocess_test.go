package api_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/partnerhub/fulfillment/api"
	"github.com/partnerhub/fulfillment/metrics"
	"github.com/partnerhub/fulfillment/store"
)

// The portal's calls through AsAgent are part of the portal request that made
// them: only that request is logged at info and counted in the HTTP metrics.
func TestInProcessCallsAreNotCountedAsHTTPRequests(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	reg := metrics.New(logger)
	defer reg.Close()
	srv := &api.Server{Logger: logger, Metrics: reg}
	r := srv.Router()

	status, _ := srv.AsAgent(context.Background(), store.Agent{PartnerID: "fabrikam", ID: "alice"}, http.MethodGet, "/v1/no-such-route", nil, "")
	assert.Equal(t, http.StatusNotFound, status)
	assert.NotContains(t, logs.String(), "msg=request", "no request line for the in-process call")

	w := httptest.NewRecorder()
	r.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	require.Equal(t, http.StatusOK, w.Code)
	scrape := httptest.NewRecorder()
	reg.Handler().ServeHTTP(scrape, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	var counted []string
	for _, line := range strings.Split(scrape.Body.String(), "\n") {
		if strings.HasPrefix(line, metrics.HTTPRequestsTotal+"{") {
			counted = append(counted, line)
		}
	}
	require.Len(t, counted, 1, "only the real HTTP request is counted: %v", counted)
	assert.Contains(t, counted[0], `route="/healthz"`)
	assert.Contains(t, logs.String(), "route=/healthz", "the real request is logged")
}
