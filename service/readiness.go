package service

import (
	"context"
	"encoding/json"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"time"

	"go.temporal.io/sdk/client"
)

// Dependency waiting: a process starts while PostgreSQL or Temporal is down
// (or restarting), keeps retrying with backoff, reports itself not ready in
// the meantime, and never exits for it. Only configuration errors and
// SIGTERM/SIGINT end a process.

// retry paces the checks of an unreachable dependency: checks back off from
// 250 ms to 2 s (cheap, so a dependency that comes back is seen quickly),
// while the log lines back off from every check to one a minute.
type retry struct {
	check    time.Duration
	logEvery time.Duration
	nextLog  time.Time
	attempt  int
}

const (
	retryFirstCheck = 250 * time.Millisecond
	retryMaxCheck   = 2 * time.Second
	retryFirstLog   = time.Second
	retryMaxLog     = time.Minute
)

// failed records a failed attempt and reports whether it deserves a log line.
func (r *retry) failed(now time.Time) (delay time.Duration, log bool) {
	r.attempt++
	if r.check == 0 {
		r.check = retryFirstCheck
	} else {
		r.check = min(2*r.check, retryMaxCheck)
	}
	delay = r.check/2 + rand.N(r.check/2+1)
	if !now.Before(r.nextLog) {
		if r.logEvery == 0 {
			r.logEvery = retryFirstLog
		} else {
			r.logEvery = min(2*r.logEvery, retryMaxLog)
		}
		r.nextLog = now.Add(r.logEvery)
		log = true
	}
	return delay, log
}

// waitUntil calls check until it succeeds (true) or ctx ends (false).
// Failures are logged with backoff, with the attempt count; the error text
// comes from the drivers, which do not include passwords or API keys.
func waitUntil(ctx context.Context, logger *slog.Logger, what string, check func(context.Context) error) bool {
	var r retry
	for {
		attemptCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := check(attemptCtx)
		cancel()
		if err == nil {
			if r.attempt > 0 {
				logger.Info(what+" reachable", "after_attempts", r.attempt+1)
			}
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		delay, log := r.failed(time.Now())
		if log {
			logger.Warn("waiting for "+what, "attempt", r.attempt, "retry_in", delay.Round(time.Millisecond).String(), "error", err.Error())
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(delay):
		}
	}
}

// pingPostgres checks PostgreSQL answers.
func (d *Deps) pingPostgres(ctx context.Context) error { return d.Store.Ping(ctx) }

// pingTemporal checks the Temporal frontend answers (the lazy client
// connects on first use and again after a failure).
func (d *Deps) pingTemporal(ctx context.Context) error {
	_, err := d.Temporal.CheckHealth(ctx, &client.CheckHealthRequest{})
	return err
}

// WaitForDependencies blocks until PostgreSQL and Temporal both answer, or
// ctx ends (false).
func (d *Deps) WaitForDependencies(ctx context.Context) bool {
	return waitUntil(ctx, d.Logger, "PostgreSQL", d.pingPostgres) &&
		waitUntil(ctx, d.Logger, "Temporal", d.pingTemporal)
}

// readyHandler answers 200 when ready() holds and both dependencies answer
// now, else 503 with the failing checks.
func (d *Deps) readyHandler(ready func() bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		checks := map[string]string{"postgres": "ok", "temporal": "ok", "worker": "started"}
		ok := true
		if err := d.pingPostgres(ctx); err != nil {
			checks["postgres"], ok = "unreachable", false
		}
		if err := d.pingTemporal(ctx); err != nil {
			checks["temporal"], ok = "unreachable", false
		}
		if !ready() {
			checks["worker"], ok = "waiting", false
		}
		status, body := http.StatusOK, map[string]any{"status": "ready", "checks": checks}
		if !ok {
			status = http.StatusServiceUnavailable
			body = map[string]any{"status": "unavailable", "checks": checks}
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(body)
	}
}
