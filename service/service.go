// Package service assembles the processes of the one binary: the API, the
// worker (with the notification dispatcher), migrations and the dev stack.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/partnerhub/fulfillment/activities"
	"github.com/partnerhub/fulfillment/api"
	"github.com/partnerhub/fulfillment/config"
	"github.com/partnerhub/fulfillment/domain"
	"github.com/partnerhub/fulfillment/metrics"
	"github.com/partnerhub/fulfillment/outbox"
	"github.com/partnerhub/fulfillment/portal"
	"github.com/partnerhub/fulfillment/store"
	"github.com/partnerhub/fulfillment/vault"
	"github.com/partnerhub/fulfillment/worker"
	"github.com/partnerhub/fulfillment/workflows"
)

// Deps are the connections every process shares.
type Deps struct {
	Config   config.Config
	Logger   *slog.Logger
	Store    *store.Store
	Temporal client.Client
	Vault    *vault.Vault
	// Metrics is this process's Prometheus registry; the Temporal client
	// reports the SDK's metrics into it.
	Metrics *metrics.Registry
}

// Connect prepares PostgreSQL and Temporal clients, with the Temporal SDK's
// metrics flowing into a fresh metrics registry. It does not wait for either
// to answer: both connect on first use and reconnect after an outage, so a
// process started while a dependency is down comes up, reports itself not
// ready, and serves once it is back. Only configuration errors fail here.
func Connect(ctx context.Context, cfg config.Config, logger *slog.Logger) (*Deps, error) {
	v, err := vault.Parse(cfg.SecretKey)
	if err != nil {
		return nil, err
	}
	st, err := store.OpenLazy(cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	st.SetMaxConns(cfg.DatabaseMaxConns)
	opts, err := cfg.TemporalOptions(logger)
	if err != nil {
		st.Close()
		return nil, err
	}
	reg := metrics.New(logger)
	reg.WatchReconciliation(domain.FindingKinds, latestReconciliation(st))
	opts.MetricsHandler = reg.TemporalHandler()
	tc, err := client.NewLazyClient(opts)
	if err != nil {
		st.Close()
		_ = reg.Close()
		return nil, fmt.Errorf("Temporal client for %s: %w", cfg.TemporalAddress, err)
	}
	return &Deps{Config: cfg, Logger: logger, Store: st, Temporal: tc, Vault: v, Metrics: reg}, nil
}

// Close releases the connections.
func (d *Deps) Close() {
	d.Temporal.Close()
	d.Store.Close()
	if d.Metrics != nil {
		_ = d.Metrics.Close()
	}
}

// RunAPI serves HTTP until ctx ends, then drains in-flight requests.
func RunAPI(ctx context.Context, d *Deps, metrics api.Metrics) error {
	servePprof(d.Logger)
	srv := &api.Server{
		Store: d.Store, Temporal: d.Temporal, Vault: d.Vault, Logger: d.Logger, Metrics: metrics,
		TaskQueue: d.Config.TaskQueue, UpdateTimeout: d.Config.UpdateTimeout,
		Limits: api.RateLimits{
			PartnerRPS: d.Config.PartnerRPS, PartnerBurst: d.Config.PartnerBurst,
			PublisherRPS: d.Config.PublisherRPS, PublisherBurst: d.Config.PublisherBurst,
			FailedAuthRPS: d.Config.FailedAuthRPS, FailedAuthBurst: d.Config.FailedAuthBurst,
		},
		TrustedProxies: d.Config.TrustedProxies,
		OpsKey:         d.Config.OpsAPIKey,
	}
	router := srv.Router()
	pages := &portal.Portal{Store: d.Store, API: srv, Vault: d.Vault, Logger: d.Logger, SecureCookies: d.Config.PortalSecureCookies,
		SignInLimit: api.NewAddressLimiter(d.Config.PortalSignInRPS, d.Config.PortalSignInBurst)}
	pages.Mount(router)
	httpServer := newHTTPServer(d.Config.HTTPAddr, router, timeoutsFor(d.Config.UpdateTimeout))
	errs := make(chan error, 1)
	go func() { errs <- httpServer.ListenAndServe() }()
	d.Logger.Info("api listening", "addr", d.Config.HTTPAddr)
	// /readyz answers 503 until both dependencies answer; meanwhile this logs
	// (with backoff) what the api is waiting for.
	go d.WaitForDependencies(ctx)
	select {
	case err := <-errs:
		return fmt.Errorf("api: %w", err)
	case <-ctx.Done():
	}
	d.Logger.Info("api draining in-flight requests")
	shutdown, cancel := context.WithTimeout(context.Background(), d.Config.ShutdownTimeout)
	defer cancel()
	if err := httpServer.Shutdown(shutdown); err != nil {
		return fmt.Errorf("api shutdown: %w", err)
	}
	if err := <-errs; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	d.Logger.Info("api stopped")
	return nil
}

// RunWorker runs the subscription worker and the notification dispatcher
// until ctx ends, then stops the worker (in-flight tasks finish). observe, if
// set, sees the type of every subscription event a transition wrote. With
// WORKER_METRICS_ADDR set it serves /metrics, /healthz and /readyz there.
// The worker starts polling once PostgreSQL and Temporal both answer; until
// then it waits (SIGTERM still ends it at once, cleanly).
func RunWorker(ctx context.Context, d *Deps, observe func(event string)) error {
	servePprof(d.Logger)
	tuneWorkerCache(d.Logger)
	acts := &activities.Activities{Store: d.Store, Vault: d.Vault}
	if observe != nil {
		acts.Observe = func(e domain.Event) { observe(e.Type) }
	}
	rec := &activities.Reconciler{Store: d.Store, Temporal: d.Temporal, TaskQueue: d.Config.TaskQueue, Observe: func(f workflows.ReconciliationFinish) {
		d.Logger.Info("reconciliation completed", "report_id", f.ReportID, "checked", f.Checked, "counts", f.Counts)
	}}
	var polling atomic.Bool
	stopMetrics, err := serveWorkerMetrics(d, polling.Load)
	if err != nil {
		return err
	}
	defer stopMetrics()
	notifier := &outbox.Notifier{
		Store: d.Store, Vault: d.Vault, Logger: d.Logger,
		Client: outbox.NewWebhookClient(outbox.WebhookClientOptions{AllowPrivate: d.Config.WebhookAllowPrivate}),
	}
	if d.Config.WebhookAllowPrivate {
		d.Logger.Warn("WEBHOOK_ALLOW_PRIVATE is on: publisher webhooks may target loopback and private addresses (development only)")
	}
	stopMailer, err := startMailer(ctx, d)
	if err != nil {
		return err
	}
	done := make(chan struct{}, 3)
	go func() { notifier.Run(ctx); done <- struct{}{} }()
	go func() { purgeMessages(ctx, d); done <- struct{}{} }()
	if w := startWorker(ctx, d, acts, rec); w != nil {
		polling.Store(true)
		d.Logger.Info("worker started", "task_queue", d.Config.TaskQueue)
		go func() { ensureScheduleWhenReachable(ctx, d); done <- struct{}{} }()
		<-ctx.Done()
		w.Stop()
		<-done
	}
	stopMailer()
	<-done
	<-done
	d.Logger.Info("worker stopped")
	return nil
}

// startWorker starts polling once both dependencies answer, and tries again
// (a new worker: an SDK worker's Start is memoized) if Temporal goes away in
// between. It returns nil when ctx ends first.
func startWorker(ctx context.Context, d *Deps, acts *activities.Activities, rec *activities.Reconciler) sdkworker.Worker {
	var r retry
	for d.WaitForDependencies(ctx) {
		w := worker.New(d.Temporal, d.Config.TaskQueue, acts, workerOptions(d.Logger))
		worker.RegisterReconciliation(w, rec)
		started := make(chan error, 1)
		go func() { started <- w.Start() }() // Start retries server calls for a while; a signal must not wait for it
		select {
		case <-ctx.Done():
			go func() {
				if <-started == nil {
					w.Stop()
				}
			}()
			return nil
		case err := <-started:
			if err == nil {
				return w
			}
			delay, log := r.failed(time.Now())
			if log {
				d.Logger.Warn("start worker", "attempt", r.attempt, "retry_in", delay.Round(time.Millisecond).String(), "error", err.Error())
			}
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(delay):
			}
		}
	}
	return nil
}

// purgeMessages deletes Idempotency-Key and webhook-id records hourly once
// they are older than MESSAGE_RETENTION (never less than the contract's 24 h).
func purgeMessages(ctx context.Context, d *Deps) {
	ticker := time.NewTicker(time.Hour)
	defer ticker.Stop()
	for {
		if err := d.Store.PurgeMessages(ctx, d.Config.MessageRetention); err != nil && ctx.Err() == nil {
			d.Logger.Warn("purge idempotency records", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// serveWorkerMetrics serves the registry, /healthz (process up) and /readyz
// (polling, and PostgreSQL and Temporal answer now) on WORKER_METRICS_ADDR
// (when set) until the returned stop is called. A busy address is an error at start.
func serveWorkerMetrics(d *Deps, polling func() bool) (stop func(), err error) {
	addr := d.Config.WorkerMetricsAddr
	if addr == "" || d.Metrics == nil {
		return func() {}, nil
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("worker metrics on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", d.Metrics.Handler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		_, _ = w.Write([]byte(`{"status":"ok"}`))
	})
	mux.Handle("GET /readyz", d.readyHandler(polling))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	d.Logger.Info("worker metrics listening", "addr", l.Addr().String())
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}

// EnsureSearchAttributes registers the ops search attributes on the namespace.
func EnsureSearchAttributes(ctx context.Context, c client.Client, namespace string) error {
	resp, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: namespace})
	if err != nil {
		return fmt.Errorf("list search attributes: %w", err)
	}
	missing := map[string]enums.IndexedValueType{}
	for _, name := range workflows.SearchAttributeNames {
		if _, ok := resp.GetCustomAttributes()[name]; !ok {
			missing[name] = enums.INDEXED_VALUE_TYPE_KEYWORD
		}
	}
	if len(missing) == 0 {
		return nil
	}
	_, err = c.OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
		Namespace: namespace, SearchAttributes: missing,
	})
	if err != nil {
		return fmt.Errorf("add search attributes: %w", err)
	}
	return nil
}
