// Command fulfillment is the one binary of the service: dev, api, worker,
// migrate, seed, keys and reconcile. It only wires configuration to the service package.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/partnerhub/fulfillment/config"
	"github.com/partnerhub/fulfillment/seed"
	"github.com/partnerhub/fulfillment/service"
)

const usage = `usage: fulfillment <command>

commands:
  dev         Temporal dev server (if none answers), migrations, demo seed, worker and API
  api         the HTTP API
  worker      the Temporal worker and the publisher notification dispatcher
  migrate     create the database if missing and apply migrations
  seed FILE   load a seed file (idempotent upsert)
  reconcile   run the reconciliation schedule now (creating or updating it first)
  keys ...    create, rotate and revoke agent API keys and publisher signing secrets
              (fulfillment keys -h)
  contacts set-primary --partner ID --customer ID --email ADDRESS --operator NAME [--reason TEXT]
              reassign a customer's primary contact (operators; audited)
  billing payment-failed|payment-received --subscription ID --operator NAME [--reason TEXT]
              suspend a subscription for non-payment, or reinstate it (operators; audited)
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	cfg, err := config.FromEnv()
	if err != nil {
		fmt.Fprintln(os.Stderr, "configuration:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger := cfg.Logger()
	slog.SetDefault(logger)
	// A stop signal while waiting for a dependency is a clean exit, not a failure.
	if err := run(ctx, os.Args[1], os.Args[2:], cfg, logger); err != nil && !(ctx.Err() != nil && errors.Is(err, context.Canceled)) {
		logger.Error("fulfillment failed", "command", os.Args[1], "error", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, command string, args []string, cfg config.Config, logger *slog.Logger) error {
	switch command {
	case "dev":
		return service.RunDev(ctx, cfg, logger)
	case "migrate":
		return service.Migrate(ctx, cfg)
	case "seed":
		if len(args) != 1 {
			return fmt.Errorf("usage: fulfillment seed FILE")
		}
		f, err := seed.Read(args[0])
		if err != nil {
			return err
		}
		return service.Seed(ctx, cfg, f)
	case "keys":
		return service.Keys(ctx, cfg, logger, args, os.Stdout)
	case "contacts":
		return service.Contacts(ctx, cfg, args, os.Stdout, logger)
	case "billing":
		return service.Billing(ctx, cfg, args, os.Stdout, logger)
	case "reconcile":
		d, err := service.Connect(ctx, cfg, logger)
		if err != nil {
			return err
		}
		defer d.Close()
		return service.TriggerReconciliation(ctx, cfg, d)
	case "api", "worker":
		logger.Info("starting", append([]any{"command", command}, cfg.Masked()...)...)
		d, err := service.Connect(ctx, cfg, logger)
		if err != nil {
			return err
		}
		defer d.Close()
		if command == "api" {
			return service.RunAPI(ctx, d, service.NewMetrics(d))
		}
		return service.RunWorker(ctx, d, d.Metrics.ObserveEvent)
	}
	fmt.Fprint(os.Stderr, usage)
	return fmt.Errorf("unknown command %q", command)
}
