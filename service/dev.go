package service

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/partnerhub/fulfillment/config"
	"github.com/partnerhub/fulfillment/store"
)

// DevServerArgs are the `temporal server start-dev` arguments that give a
// persistent SQLite file, the UI, and config.DevServerFlags (engine settings
// and the ops search attributes).
func DevServerArgs(address string, uiPort int, dbFile string) ([]string, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, fmt.Errorf("TEMPORAL_ADDRESS %q: %w", address, err)
	}
	args := []string{"server", "start-dev", "--ip", host, "--port", port,
		"--ui-port", fmt.Sprint(uiPort), "--db-filename", dbFile, "--log-level", "warn",
	}
	return append(args, config.DevServerFlags()...), nil
}

// withDevWebhooks lets `fulfillment dev` deliver publisher webhooks to
// loopback and private addresses (a publisher simulator on the same laptop),
// unless WEBHOOK_ALLOW_PRIVATE says otherwise.
func withDevWebhooks(cfg config.Config) config.Config {
	if _, set := os.LookupEnv("WEBHOOK_ALLOW_PRIVATE"); !set {
		cfg.WebhookAllowPrivate = true
	}
	return cfg
}

// migrateWhenReachable waits (with backoff, logging now and then) until
// PostgreSQL answers, then creates and migrates the database. A stop signal
// during the wait ends it with ctx's error.
func migrateWhenReachable(ctx context.Context, cfg config.Config, logger *slog.Logger) error {
	reachable := waitUntil(ctx, logger, "PostgreSQL", func(ctx context.Context) error {
		return store.CreateDatabase(ctx, cfg.DatabaseURL)
	})
	if !reachable {
		return ctx.Err()
	}
	return Migrate(ctx, cfg)
}

// DevTemporal is a Temporal dev server this process started (nil Cmd when one
// was already answering).
type DevTemporal struct {
	Cmd   *exec.Cmd
	UIURL string
}

// StartDevTemporal starts the Temporal CLI's dev server unless one already
// answers at the configured address, and waits until it is healthy.
func StartDevTemporal(ctx context.Context, cli, address, namespace string, uiPort int, dataDir string, logger *slog.Logger) (*DevTemporal, error) {
	host, _, _ := net.SplitHostPort(address)
	dev := &DevTemporal{UIURL: fmt.Sprintf("http://%s:%d", host, uiPort)}
	if healthy(ctx, address, namespace) {
		logger.Info("using the Temporal server already answering", "address", address)
		return dev, nil
	}
	if _, err := os.Stat(cli); err != nil {
		return nil, fmt.Errorf("temporal CLI not found at %s (`make run` or `make test` installs it): %w", cli, err)
	}
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return nil, err
	}
	args, err := DevServerArgs(address, uiPort, filepath.Join(dataDir, "temporal.db"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(cli, args...)
	logFile, err := os.Create(filepath.Join(dataDir, "temporal.log"))
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = childProcess() // Ctrl-C reaches us; we stop it in order
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start Temporal dev server: %w", err)
	}
	dev.Cmd = cmd
	logger.Info("starting Temporal dev server", "address", address, "ui", dev.UIURL, "log", logFile.Name())
	deadline := time.Now().Add(60 * time.Second)
	for !healthy(ctx, address, namespace) {
		if ctx.Err() != nil {
			dev.Stop()
			return nil, ctx.Err()
		}
		if time.Now().After(deadline) {
			dev.Stop()
			return nil, fmt.Errorf("Temporal dev server did not become healthy; see %s", logFile.Name())
		}
		time.Sleep(250 * time.Millisecond)
	}
	return dev, nil
}

func healthy(ctx context.Context, address, namespace string) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	c, err := client.DialContext(ctx, client.Options{HostPort: address, Namespace: namespace, Logger: quietLogger{}})
	if err != nil {
		return false
	}
	defer c.Close()
	_, err = c.CheckHealth(ctx, &client.CheckHealthRequest{})
	return err == nil
}

// Stop ends the dev server this process started.
func (d *DevTemporal) Stop() {
	if d == nil || d.Cmd == nil || d.Cmd.Process == nil {
		return
	}
	_ = d.Cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = d.Cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = d.Cmd.Process.Kill()
		<-done
	}
}

type quietLogger struct{}

func (quietLogger) Debug(string, ...any) {}
func (quietLogger) Info(string, ...any)  {}
func (quietLogger) Warn(string, ...any)  {}
func (quietLogger) Error(string, ...any) {}
