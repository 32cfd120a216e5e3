// Package testenv gives tests the real things: a fresh PostgreSQL database
// per test, a Temporal dev server (the CLI in ./bin), and the service's own
// binary started as separate api and worker processes.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/testsuite"

	"github.com/partnerhub/fulfillment/config"
	"github.com/partnerhub/fulfillment/store"
)

// RepoRoot is the module's root directory.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(file))
}

// AdminURL is the PostgreSQL server the tests create databases on.
func AdminURL() string {
	if u := os.Getenv("TEST_DATABASE_ADMIN_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// Database creates a fresh, migrated database for one test and drops it after.
func Database(t testing.TB) (*store.Store, string) {
	t.Helper()
	ctx := context.Background()
	url := fmt.Sprintf("postgres://postgres@127.0.0.1:5432/fulfillment_test_%s?sslmode=disable", randomHex(6))
	if err := store.CreateDatabase(ctx, url); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	st, err := store.Open(ctx, url)
	if err != nil {
		t.Fatalf("open test database: %v", err)
	}
	if err := st.Migrate(ctx); err != nil {
		t.Fatalf("migrate test database: %v", err)
	}
	t.Cleanup(func() {
		st.Close()
		if os.Getenv("KEEP_TEST_DATABASES") == "" {
			_ = store.DropDatabase(context.Background(), url)
		}
	})
	return st, url
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// SecretKey is a fresh base64 SECRET_KEY.
func SecretKey() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

// TemporalCLI is the path of the Temporal CLI that `make` installs.
func TemporalCLI() string {
	if p := os.Getenv("TEMPORAL_CLI"); p != "" {
		return p
	}
	return filepath.Join(RepoRoot(), "bin", "temporal")
}

// Temporal is a dev server on a free port with the ops search attributes.
type Temporal struct {
	Address string
	DBFile  string
	server  *testsuite.DevServer
}

// StartTemporal starts a dev server; dbFile may be "" for in-memory.
func StartTemporal(ctx context.Context, address, dbFile string) (*Temporal, error) {
	if _, err := os.Stat(TemporalCLI()); err != nil {
		return nil, fmt.Errorf("temporal CLI missing at %s (`make test` installs it): %w", TemporalCLI(), err)
	}
	if address == "" {
		address = freeAddress()
	}
	args := config.DevServerFlags()
	server, err := testsuite.StartDevServer(ctx, testsuite.DevServerOptions{
		ExistingPath:  TemporalCLI(),
		ClientOptions: &client.Options{HostPort: address, Namespace: "default"},
		DBFilename:    dbFile,
		LogLevel:      "error",
		ExtraArgs:     args,
		Stdout:        io.Discard,
		Stderr:        io.Discard,
	})
	if err != nil {
		return nil, fmt.Errorf("start Temporal dev server: %w", err)
	}
	return &Temporal{Address: address, DBFile: dbFile, server: server}, nil
}

// Stop stops the dev server (nothing for an external server).
func (t *Temporal) Stop() error {
	if t.server == nil {
		return nil
	}
	return t.server.Stop()
}

// Restart stops the server and starts it again on the same port and file.
// An external server (TEST_TEMPORAL_ADDRESS) cannot be restarted.
func (t *Temporal) Restart(ctx context.Context) error {
	if t.server == nil {
		return fmt.Errorf("cannot restart the external Temporal server at %s (TEST_TEMPORAL_ADDRESS); call testenv.RequireDevServer first", t.Address)
	}
	if err := t.server.Stop(); err != nil {
		return err
	}
	next, err := StartTemporal(ctx, t.Address, t.DBFile)
	if err != nil {
		return err
	}
	t.server = next.server
	return nil
}

// Client dials the dev server.
func (t *Temporal) Client(tb testing.TB) client.Client {
	tb.Helper()
	c, err := client.Dial(client.Options{HostPort: t.Address, Namespace: "default", Logger: quiet{}})
	if err != nil {
		tb.Fatalf("dial Temporal: %v", err)
	}
	tb.Cleanup(c.Close)
	return c
}

var (
	sharedOnce     sync.Once
	sharedTemporal *Temporal
	sharedErr      error
)

// ExternalTemporalAddress is TEST_TEMPORAL_ADDRESS: a Temporal server that is
// already running (`make test-pg`: the real server on PostgreSQL). When set,
// SharedTemporal uses it instead of starting a dev server.
func ExternalTemporalAddress() string { return os.Getenv("TEST_TEMPORAL_ADDRESS") }

// RequireDevServer skips the test when the tests run against an external
// server: tests that restart their own dev server on a database file need one.
func RequireDevServer(tb testing.TB) {
	tb.Helper()
	if addr := ExternalTemporalAddress(); addr != "" {
		tb.Skipf("needs its own restartable Temporal dev server with a database file; TEST_TEMPORAL_ADDRESS=%s points at an external server", addr)
	}
}

// SharedTemporal is one in-memory dev server per test binary, started on
// first use and stopped by StopShared (call it from TestMain). With
// TEST_TEMPORAL_ADDRESS set it is that server instead, and nothing starts.
func SharedTemporal(tb testing.TB) *Temporal {
	tb.Helper()
	sharedOnce.Do(func() {
		if addr := ExternalTemporalAddress(); addr != "" {
			sharedTemporal = &Temporal{Address: addr}
			return
		}
		sharedTemporal, sharedErr = StartTemporal(context.Background(), "", "")
	})
	if sharedErr != nil {
		tb.Fatal(sharedErr)
	}
	return sharedTemporal
}

// StopShared stops the shared dev server if one was started.
func StopShared() {
	if sharedTemporal != nil {
		_ = sharedTemporal.Stop()
	}
}

var (
	binaryOnce sync.Once
	binaryPath string
	binaryErr  error
)

// Binary builds cmd/fulfillment once per test binary (with the race detector
// when the tests run with it).
func Binary(tb testing.TB) string {
	tb.Helper()
	binaryOnce.Do(func() {
		dir, err := os.MkdirTemp("", "fulfillment-bin-")
		if err != nil {
			binaryErr = err
			return
		}
		binaryPath = filepath.Join(dir, "fulfillment")
		args := []string{"build", "-tags", "faults", "-o", binaryPath}
		if raceEnabled {
			args = append(args, "-race")
		}
		cmd := exec.Command("go", append(args, "./cmd/fulfillment")...)
		cmd.Dir = RepoRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			binaryErr = fmt.Errorf("build fulfillment: %v\n%s", err, out)
		}
	})
	if binaryErr != nil {
		tb.Fatal(binaryErr)
	}
	return binaryPath
}

// freeAddress picks a port below Linux's ephemeral range (32768 and up):
// a port the kernel hands out for 127.0.0.1:0 (httptest servers, outgoing
// connections) would be free now, and could be taken by another listener in
// the moment before the process that was given it binds it: one stack's
// readiness poll once reached another test's webhook receiver that way.
// The Temporal dev server also binds the frontend port + 1000.
func freeAddress() string {
	for range 1000 {
		addr := fmt.Sprintf("127.0.0.1:%d", 10000+mrand.IntN(20000))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		_ = l.Close()
		return addr
	}
	panic("no free port between 10000 and 30000")
}

// FreeAddress reserves nothing but finds a port free right now, outside the
// range the kernel gives to other listeners and outgoing connections.
func FreeAddress() string { return freeAddress() }

// WaitFor polls cond until it holds or the timeout passes.
func WaitFor(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type quiet struct{}

func (quiet) Debug(string, ...any) {}
func (quiet) Info(string, ...any)  {}
func (quiet) Warn(string, ...any)  {}
func (quiet) Error(string, ...any) {}
