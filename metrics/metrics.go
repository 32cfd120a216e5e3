// Package metrics is the service's Prometheus registry: HTTP request metrics
// for the API, business counters of subscription events for the worker, the
// Temporal SDK's own client and worker metrics (through tally), and the Go
// runtime and process collectors. One Registry per process, served at /metrics.
package metrics

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/uber-go/tally/v4"
	tallyprom "github.com/uber-go/tally/v4/prometheus"
	"go.temporal.io/sdk/client"
	sdktally "go.temporal.io/sdk/contrib/tally"
)

// Metric names (also listed in the README's Operations section).
const (
	HTTPRequestsTotal        = "fulfillment_http_requests_total"
	HTTPRequestDuration      = "fulfillment_http_request_duration_seconds"
	SubscriptionEventsTotal  = "fulfillment_subscription_events_total"
	temporalReportingSeconds = time.Second
)

// durationBuckets cover fast reads up to requests that wait for a workflow
// (Updates wait up to 30 s for the worker's answer).
var durationBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// Registry implements api.Metrics and feeds the Temporal SDK. Its zero value
// is not usable; build it with New and Close it after the Temporal client.
type Registry struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	events   *prometheus.CounterVec
	temporal client.MetricsHandler
	closer   io.Closer
	handler  http.Handler
	logger   *slog.Logger

	mu           sync.Mutex
	registerErrs map[string]bool
}

// New builds a registry. logger receives (once per metric) the SDK metrics
// that Prometheus refused, e.g. a name reused with other labels; may be nil.
func New(logger *slog.Logger) *Registry {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	r := &Registry{
		reg:    prometheus.NewRegistry(),
		logger: logger,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: HTTPRequestsTotal,
			Help: "HTTP requests answered, by route template, method and status code.",
		}, []string{"route", "method", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    HTTPRequestDuration,
			Help:    "Time to answer an HTTP request, by route template and method.",
			Buckets: durationBuckets,
		}, []string{"route", "method"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: SubscriptionEventsTotal,
			Help: "Subscription timeline events written by this worker's transitions, by type (at least once: a retried transition counts again).",
		}, []string{"type"}),
		registerErrs: map[string]bool{},
	}
	r.reg.MustRegister(r.requests, r.duration, r.events,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)

	reporter := tallyprom.NewReporter(tallyprom.Options{
		Registerer:              r.reg,
		DefaultTimerType:        tallyprom.HistogramTimerType,
		DefaultHistogramBuckets: durationBuckets,
		OnRegisterError:         r.onRegisterError,
	})
	scope, closer := tally.NewRootScope(tally.ScopeOptions{
		CachedReporter:         reporter,
		Separator:              tallyprom.DefaultSeparator,
		SanitizeOptions:        &sdktally.PrometheusSanitizeOptions,
		OmitCardinalityMetrics: true,
	}, temporalReportingSeconds)
	r.temporal = sdktally.NewMetricsHandler(sdktally.NewPrometheusNamingScope(scope))
	r.closer = closer
	r.handler = promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{Registry: r.reg})
	return r
}

// onRegisterError keeps a refused SDK metric from panicking the process (the
// tally reporter's default); it logs each refused name once.
func (r *Registry) onRegisterError(err error) {
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		return
	}
	r.mu.Lock()
	seen := r.registerErrs[err.Error()]
	r.registerErrs[err.Error()] = true
	r.mu.Unlock()
	if !seen {
		r.logger.Warn("temporal SDK metric not exported", "error", err)
	}
}

// ObserveRequest counts one answered HTTP request and its duration.
func (r *Registry) ObserveRequest(route, method string, status int, elapsed time.Duration) {
	r.requests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	r.duration.WithLabelValues(route, method).Observe(elapsed.Seconds())
}

// ObserveEvent counts one subscription event (purchased, billing_started,
// cancelled, renewed, …); it is the worker's Observe hook.
func (r *Registry) ObserveEvent(eventType string) {
	r.events.WithLabelValues(eventType).Inc()
}

// Handler serves the registry in the Prometheus text format.
func (r *Registry) Handler() http.Handler { return r.handler }

// TemporalHandler is the Temporal SDK metrics handler to set as
// client.Options.MetricsHandler; its metrics are named temporal_*.
func (r *Registry) TemporalHandler() client.MetricsHandler { return r.temporal }

// Prometheus is the underlying registry (to add collectors).
func (r *Registry) Prometheus() *prometheus.Registry { return r.reg }

// Close stops the SDK metrics reporting loop after a last report.
func (r *Registry) Close() error { return r.closer.Close() }
