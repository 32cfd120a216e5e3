// Package service assembles the processes of the one binary: the API, the
// worker (with the notification dispatcher), migrations and the dev stack.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/partnerhub/fulfillment/activities"
	"github.com/partnerhub/fulfillment/api"
	"github.com/partnerhub/fulfillment/config"
	"github.com/partnerhub/fulfillment/domain"
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
}

// Connect opens PostgreSQL and Temporal.
func Connect(ctx context.Context, cfg config.Config, logger *slog.Logger) (*Deps, error) {
	v, err := vault.Parse(cfg.SecretKey)
	if err != nil {
		return nil, err
	}
	st, err := store.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	opts, err := cfg.TemporalOptions(logger)
	if err != nil {
		st.Close()
		return nil, err
	}
	tc, err := client.DialContext(ctx, opts)
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("connect Temporal at %s: %w", cfg.TemporalAddress, err)
	}
	return &Deps{Config: cfg, Logger: logger, Store: st, Temporal: tc, Vault: v}, nil
}

// Close releases the connections.
func (d *Deps) Close() {
	d.Temporal.Close()
	d.Store.Close()
}

// RunAPI serves HTTP until ctx ends, then drains in-flight requests.
func RunAPI(ctx context.Context, d *Deps, metrics api.Metrics) error {
	srv := &api.Server{
		Store: d.Store, Temporal: d.Temporal, Vault: d.Vault, Logger: d.Logger, Metrics: metrics,
		Limits: api.RateLimits{
			PartnerRPS: d.Config.PartnerRPS, PartnerBurst: d.Config.PartnerBurst,
			PublisherRPS: d.Config.PublisherRPS, PublisherBurst: d.Config.PublisherBurst,
		},
	}
	httpServer := &http.Server{Addr: d.Config.HTTPAddr, Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	errs := make(chan error, 1)
	go func() { errs <- httpServer.ListenAndServe() }()
	d.Logger.Info("api listening", "addr", d.Config.HTTPAddr)
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
// until ctx ends, then stops the worker (in-flight tasks finish).
func RunWorker(ctx context.Context, d *Deps, observe func(event string)) error {
	acts := &activities.Activities{Store: d.Store, Vault: d.Vault}
	if observe != nil {
		acts.Observe = func(e domain.Event) { observe(e.Type) }
	}
	w := worker.New(d.Temporal, acts, sdkworker.Options{})
	if err := w.Start(); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	d.Logger.Info("worker started", "task_queue", workflows.TaskQueue)
	notifier := &activities.Notifier{Store: d.Store, Vault: d.Vault, Client: &http.Client{Timeout: 10 * time.Second}, Logger: d.Logger}
	done := make(chan struct{})
	go func() { notifier.Run(ctx); close(done) }()
	<-ctx.Done()
	w.Stop()
	<-done
	d.Logger.Info("worker stopped")
	return nil
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
