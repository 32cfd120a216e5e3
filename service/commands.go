package service

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/partnerhub/fulfillment/api"
	"github.com/partnerhub/fulfillment/config"
	"github.com/partnerhub/fulfillment/seed"
	"github.com/partnerhub/fulfillment/store"
	"github.com/partnerhub/fulfillment/vault"
)

// Migrate creates the database if it is missing and applies every migration.
func Migrate(ctx context.Context, cfg config.Config) error {
	if err := store.CreateDatabase(ctx, cfg.DatabaseURL); err != nil {
		return err
	}
	st, err := store.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer st.Close()
	return st.Migrate(ctx)
}

// Seed loads a seed file.
func Seed(ctx context.Context, cfg config.Config, f seed.File) error {
	v, err := vault.Parse(cfg.SecretKey)
	if err != nil {
		return err
	}
	st, err := store.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer st.Close()
	return seed.Load(ctx, st, v, f)
}

// NewMetrics is the API's metrics registry: the process's registry, which
// also holds the Temporal SDK's metrics (and, in `dev`, the worker's).
func NewMetrics(d *Deps) api.Metrics {
	if d.Metrics == nil {
		return nil
	}
	return d.Metrics
}

// RunDev runs the whole stack on one machine for a newcomer.
func RunDev(ctx context.Context, cfg config.Config, logger *slog.Logger) error {
	if cfg.SecretKey == "" {
		cfg.SecretKey = config.DevSecretKey
		logger.Warn("SECRET_KEY not set: using the development key; never do this in production")
	}
	cfg = withDevWebhooks(cfg)
	cfg = withDevPortal(cfg)
	dev, err := StartDevTemporal(ctx, cfg.TemporalCLI, cfg.TemporalAddress, cfg.TemporalNamespace, cfg.TemporalUIPort, cfg.DataDir, logger)
	if err != nil {
		return err
	}
	defer dev.Stop()
	mail := &DevMailpit{SMTPURL: cfg.SMTPURL}
	if cfg.SMTPURL == "" {
		// A local SMTP server with a web inbox, so customer emails can be read.
		if mail, err = StartDevMailpit(ctx, cfg.Mailpit, cfg.MailpitSMTPPort, cfg.MailpitUIPort, cfg.DataDir, logger); err != nil {
			logger.Warn("no local mail server: customer emails stay queued", "error", err)
			mail = &DevMailpit{}
		}
		defer mail.Stop()
		cfg.SMTPURL = mail.SMTPURL
	}
	if err := migrateWhenReachable(ctx, cfg, logger); err != nil {
		return err
	}
	demo, err := seed.Parse(seed.Demo)
	if err != nil {
		return err
	}
	if err := Seed(ctx, cfg, demo); err != nil {
		return err
	}
	d, err := Connect(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := EnsureSearchAttributes(ctx, d.Temporal, cfg.TemporalNamespace); err != nil {
		return err
	}
	// One registry serves both: the API's /metrics shows the worker's business
	// counters and SDK metrics too. If either half fails (e.g. the HTTP port
	// is taken), the other stops as well instead of running on alone.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	wg.Add(2)
	run := func(f func() error) {
		defer wg.Done()
		err := f()
		if err != nil {
			cancel()
		}
		errs <- err
	}
	go run(func() error { return RunWorker(ctx, d, d.Metrics.ObserveEvent) })
	go run(func() error { return RunAPI(ctx, d, NewMetrics(d)) })
	links := demoSignInLinks(ctx, d, logger)
	// The welcome text names the API's URLs: print it once the API answers
	// there (the listener is bound in RunAPI's goroutine), never before.
	if serving(ctx, localAddr(cfg.HTTPAddr)) {
		printWelcome(cfg, dev, mail, demo, links)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// serving waits until addr accepts connections; false if ctx ends first
// (the API or the worker failed, or Ctrl-C).
func serving(ctx context.Context, addr string) bool {
	for {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// localAddr is a listen address as this machine dials it (":8080" → 127.0.0.1:8080).
func localAddr(addr string) string {
	if strings.HasPrefix(addr, ":") {
		return "127.0.0.1" + addr
	}
	return addr
}

func printWelcome(cfg config.Config, dev *DevTemporal, mail *DevMailpit, demo seed.File, links []demoLink) {
	addr := localAddr(cfg.HTTPAddr)
	var b strings.Builder
	fmt.Fprintf(&b, "\n  API:          http://%s\n  Temporal UI:  %s\n", addr, dev.UIURL)
	switch {
	case mail.InboxURL != "":
		fmt.Fprintf(&b, "  Mail inbox:   %s  (customer emails; SMTP %s)\n", mail.InboxURL, mail.SMTPURL)
	case mail.SMTPURL != "":
		fmt.Fprintf(&b, "  Mail:         sent to %s\n", maskedSMTP(mail.SMTPURL))
	default:
		fmt.Fprintf(&b, "  Mail:         not sent (no SMTP_URL and no bin/mailpit)\n")
	}
	fmt.Fprintf(&b, "  Portal:       %s/  (sign in by a one-time link sent by email)\n", strings.TrimSuffix(cfg.PortalURL, "/"))
	if len(links) > 0 {
		fmt.Fprintf(&b, "  Demo sign-in links (each works once, for %s):\n", devLinkTTL)
		for _, l := range links {
			fmt.Fprintf(&b, "    %-32s %s\n", l.who, l.url)
		}
	}
	fmt.Fprintf(&b, "  Demo API keys:\n")
	for _, p := range demo.Partners {
		for _, a := range p.Agents {
			fmt.Fprintf(&b, "    %-10s %-6s %-12s %s\n", p.ID, a.ID, a.Role, a.APIKey)
		}
	}
	for _, p := range demo.Publishers {
		fmt.Fprintf(&b, "  Publisher %s signs with %s\n", p.ID, p.SigningSecret)
	}
	for _, p := range demo.Partners {
		if p.BillingSigningSecret != "" {
			fmt.Fprintf(&b, "  Billing system of %s signs POST /v1/billing/events (X-Partner-Id: %s) with %s\n", p.ID, p.ID, p.BillingSigningSecret)
		}
	}
	fmt.Fprintf(&b, "  Ctrl-C stops everything.\n\n")
	fmt.Fprint(os.Stdout, b.String())
}
