package metrics

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/partnerhub/fulfillment/api"
)

var _ api.Metrics = (*Registry)(nil)

func scrape(t *testing.T, r *Registry) string {
	t.Helper()
	rec := httptest.NewRecorder()
	r.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	body, _ := io.ReadAll(rec.Body)
	return string(body)
}

func TestRequestMetrics(t *testing.T) {
	r := New(nil)
	defer r.Close()
	r.ObserveRequest("/v1/subscriptions/:id", http.MethodGet, 200, 12*time.Millisecond)
	r.ObserveRequest("/v1/subscriptions/:id", http.MethodGet, 200, 40*time.Millisecond)
	r.ObserveRequest("/v1/subscriptions/:id", http.MethodGet, 404, time.Millisecond)
	r.ObserveRequest("/v1/subscriptions", http.MethodPost, 201, 2*time.Second)

	assert.Equal(t, 2.0, testutil.ToFloat64(r.requests.WithLabelValues("/v1/subscriptions/:id", "GET", "200")))
	assert.Equal(t, 1.0, testutil.ToFloat64(r.requests.WithLabelValues("/v1/subscriptions/:id", "GET", "404")))
	assert.Equal(t, 1.0, testutil.ToFloat64(r.requests.WithLabelValues("/v1/subscriptions", "POST", "201")))

	body := scrape(t, r)
	assert.Contains(t, body, `fulfillment_http_requests_total{method="GET",route="/v1/subscriptions/:id",status="200"} 2`)
	assert.Contains(t, body, `fulfillment_http_request_duration_seconds_count{method="GET",route="/v1/subscriptions/:id"} 3`)
	assert.Contains(t, body, `fulfillment_http_request_duration_seconds_bucket{method="POST",route="/v1/subscriptions",le="2.5"} 1`)
	assert.Contains(t, body, `fulfillment_http_request_duration_seconds_bucket{method="POST",route="/v1/subscriptions",le="1"} 0`)
	assert.Contains(t, body, "go_goroutines ")
	assert.Contains(t, body, "process_start_time_seconds ")
}

func TestSubscriptionEventCounters(t *testing.T) {
	r := New(nil)
	defer r.Close()
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() { defer wg.Done(); r.ObserveEvent("billing_started") }()
	}
	wg.Wait()
	r.ObserveEvent("purchased")
	body := scrape(t, r)
	assert.Contains(t, body, `fulfillment_subscription_events_total{type="billing_started"} 50`)
	assert.Contains(t, body, `fulfillment_subscription_events_total{type="purchased"} 1`)
}

// The SDK's metrics go to the same registry, with Prometheus names, once the
// reporting loop has run (Close reports a last time).
func TestTemporalSDKMetricsShareTheRegistry(t *testing.T) {
	r := New(nil)
	h := r.TemporalHandler().WithTags(map[string]string{"namespace": "default", "task_queue": "q"})
	h.Counter("temporal_request").Inc(3)
	h.Timer("temporal_request_latency").Record(150 * time.Millisecond)
	h.Gauge("temporal_num_pollers").Update(2)
	require.NoError(t, r.Close())

	body := scrape(t, r)
	assert.Contains(t, body, `temporal_request_total{namespace="default",task_queue="q"} 3`)
	assert.Contains(t, body, `temporal_request_latency_seconds_bucket{namespace="default",task_queue="q",le="0.25"} 1`)
	assert.Contains(t, body, `temporal_num_pollers{namespace="default",task_queue="q"} 2`)
}

// A metric name the SDK reuses with other tag keys is refused by Prometheus:
// the registry logs it once and keeps going (tally's default is to panic).
func TestRefusedSDKMetricIsLoggedNotPanicking(t *testing.T) {
	var logs bytes.Buffer
	r := New(slog.New(slog.NewJSONHandler(&logs, nil)))
	r.TemporalHandler().WithTags(map[string]string{"a": "1"}).Counter("temporal_clash").Inc(1)
	for range 3 {
		r.TemporalHandler().WithTags(map[string]string{"b": "2"}).Counter("temporal_clash").Inc(1)
	}
	require.NotPanics(t, func() { require.NoError(t, r.Close()) })
	body := scrape(t, r)
	assert.Contains(t, body, `temporal_clash_total{a="1"} 1`)
	assert.Equal(t, 1, strings.Count(logs.String(), "temporal SDK metric not exported"), logs.String())
}
