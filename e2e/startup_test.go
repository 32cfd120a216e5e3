package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/partnerhub/fulfillment/testenv"
)

// readiness is one /readyz answer: its status and which checks failed.
type readiness struct {
	Status int
	Checks map[string]string
}

func readyz(url string) readiness {
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(url + "/readyz")
	if err != nil {
		return readiness{}
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var body struct {
		Checks map[string]string `json:"checks"`
	}
	_ = json.Unmarshal(raw, &body)
	return readiness{Status: resp.StatusCode, Checks: body.Checks}
}

// startWhileDown cuts one dependency, then starts a worker (with its health
// server) and an api. Both come up and answer /readyz 503 naming the missing
// dependency, and keep retrying without exiting.
func startWhileDown(t *testing.T, w *world, cut *testenv.Proxy, check string) (worker, api *exec.Cmd, workerURL string) {
	t.Helper()
	cut.Cut()
	workerURL = "http://" + testenv.FreeAddress()
	worker = w.StartWorkerWithEnv("WORKER_METRICS_ADDR=" + strings.TrimPrefix(workerURL, "http://"))
	api = w.LaunchAPI()
	for name, url := range map[string]string{"api": w.BaseURL, "worker": workerURL} {
		var r readiness
		testenv.WaitFor(t, 30*time.Second, name+" to answer /readyz", func() bool {
			r = readyz(url)
			return r.Status != 0
		})
		assert.Equal(t, http.StatusServiceUnavailable, r.Status, "%s is not ready while %s is down", name, check)
		assert.Equal(t, "unreachable", r.Checks[check], "%s names what it waits for: %v", name, r.Checks)
	}
	// Both keep retrying (each logs its first failures, then with backoff).
	waiting := `"msg":"waiting for ` + map[string]string{"temporal": "Temporal", "postgres": "PostgreSQL"}[check]
	testenv.WaitFor(t, 30*time.Second, "two retries logged by each process", func() bool { return w.Lines(waiting) >= 4 })
	for name, cmd := range map[string]*exec.Cmd{"worker": worker, "api": api} {
		select {
		case <-w.Exited(cmd):
			t.Fatalf("the %s exited while %s was down: %v", name, check, cmd.ProcessState)
		default:
		}
	}
	return worker, api, workerURL
}

// serves waits until both processes are ready once the dependency is back,
// then buys and fulfills a subscription through them.
func serves(t *testing.T, w *world, worker, api *exec.Cmd, workerURL string) {
	t.Helper()
	for name, url := range map[string]string{"api": w.BaseURL, "worker": workerURL} {
		testenv.WaitFor(t, 60*time.Second, name+" /readyz 200", func() bool { return readyz(url).Status == http.StatusOK })
	}
	p := w.buy(t, "analytics", "annual", 2)
	r := w.fulfill(t, p, 2)
	assert.Equal(t, "active", r.Str("status"))
	assert.Equal(t, 1, w.ledgerRows(t, p.Str("id"), "charge"))
	for name, cmd := range map[string]*exec.Cmd{"worker": worker, "api": api} {
		select {
		case <-w.Exited(cmd):
			t.Fatalf("the %s exited: %v", name, cmd.ProcessState)
		default:
		}
	}
	assert.NotContains(t, w.Logs(), "fulfillment failed")
}

// A worker and an api started while Temporal is unreachable wait for it,
// answer /readyz 503, and serve once it is reachable.
func TestStartWhileTemporalIsDown(t *testing.T) {
	t.Parallel()
	w := newWorld(t, testenv.StackOptions{Proxied: true, Idle: true})
	keepLogsOnFailure(t, w)
	worker, api, workerURL := startWhileDown(t, w, w.TemporalProxy, "temporal")
	w.TemporalProxy.Restore()
	serves(t, w, worker, api, workerURL)
}

// The same while PostgreSQL is unreachable.
func TestStartWhilePostgresIsDown(t *testing.T) {
	t.Parallel()
	w := newWorld(t, testenv.StackOptions{Proxied: true, Idle: true})
	keepLogsOnFailure(t, w)
	worker, api, workerURL := startWhileDown(t, w, w.PostgresProxy, "postgres")
	w.PostgresProxy.Restore()
	serves(t, w, worker, api, workerURL)
}

// SIGTERM while a process waits for a dependency ends it at once, cleanly.
func TestStopWhileWaitingForDependencies(t *testing.T) {
	t.Parallel()
	w := newWorld(t, testenv.StackOptions{Proxied: true, Idle: true})
	keepLogsOnFailure(t, w)
	w.TemporalProxy.Cut()
	worker, api, _ := startWhileDown(t, w, w.PostgresProxy, "postgres")
	for name, cmd := range map[string]*exec.Cmd{"worker": worker, "api": api} {
		require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
		select {
		case <-w.Exited(cmd):
			assert.Equal(t, 0, cmd.ProcessState.ExitCode(), "the %s exits 0", name)
		case <-time.After(10 * time.Second):
			t.Fatalf("the %s did not stop within 10 s of SIGTERM while waiting", name)
		}
	}
	assert.NotContains(t, w.Logs(), "fulfillment failed")
}
