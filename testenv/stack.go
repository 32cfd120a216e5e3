package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/partnerhub/fulfillment/store"
)

// Stack is the real binary running as separate api and worker processes
// against a dev server and a fresh database, with a seed loaded.
type Stack struct {
	t        testing.TB
	Temporal *Temporal
	Store    *store.Store
	DBURL    string
	BaseURL  string
	Env      []string
	// PostgresProxy and TemporalProxy stand between the processes and their
	// dependencies when StackOptions.Proxied is set: Cut makes one unreachable.
	PostgresProxy *Proxy
	TemporalProxy *Proxy
	binary        string
	logs          *SyncBuffer
	mu            sync.Mutex
	api           *exec.Cmd
	workers       []*exec.Cmd
	exited        map[*exec.Cmd]chan struct{} // StartWorkerWithEnv's processes: closed once reaped
}

// StackOptions tune a stack.
type StackOptions struct {
	Seed     []byte    // seed file contents (required)
	Temporal *Temporal // default: the shared dev server
	Env      []string  // extra environment, e.g. rate limits
	Workers  int       // worker processes (default 1)
	Proxied  bool      // route PostgreSQL and Temporal through cuttable proxies
	// Idle migrates and seeds but starts no process: the test starts them
	// (StartWorker, LaunchAPI), e.g. while a proxy is cut.
	Idle bool
}

// StartStack migrates, seeds, and starts one api and the workers.
func StartStack(t testing.TB, opts StackOptions) *Stack {
	t.Helper()
	if opts.Temporal == nil {
		opts.Temporal = SharedTemporal(t)
	}
	if opts.Workers == 0 {
		opts.Workers = 1
	}
	st, dbURL := Database(t)
	addr := FreeAddress()
	s := &Stack{
		t: t, Temporal: opts.Temporal, Store: st, DBURL: dbURL, BaseURL: "http://" + addr,
		binary: Binary(t), logs: &SyncBuffer{}, exited: map[*exec.Cmd]chan struct{}{},
	}
	processDBURL, temporalAddress := dbURL, opts.Temporal.Address
	if opts.Proxied {
		s.PostgresProxy = StartProxy(t, "127.0.0.1:5432")
		s.TemporalProxy = StartProxy(t, opts.Temporal.Address)
		processDBURL = strings.Replace(dbURL, "127.0.0.1:5432", s.PostgresProxy.Addr, 1)
		temporalAddress = s.TemporalProxy.Addr
	}
	s.Env = append(os.Environ(),
		"DATABASE_URL="+processDBURL, "TEMPORAL_ADDRESS="+temporalAddress, "TEMPORAL_NAMESPACE=default",
		"HTTP_ADDR="+addr, "SECRET_KEY="+SecretKey(),
		// Stacks may share a server: each polls its own task queue, so no
		// stack's worker runs another's workflows against its database.
		"TEMPORAL_TASK_QUEUE=fulfillment-"+randomHex(6), "LOG_LEVEL=info", "SHUTDOWN_TIMEOUT=10s",
		"RATE_LIMIT_PARTNER_RPS=1000", "RATE_LIMIT_PARTNER_BURST=2000",
		"RATE_LIMIT_PUBLISHER_RPS=1000", "RATE_LIMIT_PUBLISHER_BURST=2000",
		"RATE_LIMIT_FAILED_AUTH_RPS=1000", "RATE_LIMIT_FAILED_AUTH_BURST=2000",
		"PORTAL_SIGN_IN_RPS=1000", "PORTAL_SIGN_IN_BURST=2000",
		// Many stacks share one PostgreSQL (100 connections) while tests run.
		"DATABASE_MAX_CONNS=6",
		// Test publishers listen on loopback (httptest), which production refuses.
		"WEBHOOK_ALLOW_PRIVATE=true",
	)
	s.Env = append(s.Env, opts.Env...)
	seedFile := filepath.Join(t.TempDir(), "seed.json")
	if err := os.WriteFile(seedFile, opts.Seed, 0o600); err != nil {
		t.Fatal(err)
	}
	s.runOnce("seed", seedFile)
	t.Cleanup(s.Stop)
	// Runs before Stop (cleanups run last first): a failed test shows what
	// its api and worker said, the only account of a failure seen once.
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the stack's last log lines:\n%s", lastLines(s.Logs(), 150))
		}
	})
	if opts.Idle {
		return s
	}
	for range opts.Workers {
		s.StartWorker()
	}
	s.StartAPI()
	return s
}

func (s *Stack) runOnce(args ...string) {
	s.t.Helper()
	cmd := exec.Command(s.binary, args...)
	cmd.Env = s.Env
	cmd.Stdout, cmd.Stderr = s.logs, s.logs
	if err := cmd.Run(); err != nil {
		s.t.Fatalf("fulfillment %v: %v\n%s", args, err, s.logs.String())
	}
}

func (s *Stack) start(command string, env ...string) *exec.Cmd {
	s.t.Helper()
	cmd := exec.Command(s.binary, command)
	cmd.Env = append(append([]string(nil), s.Env...), env...)
	cmd.Stdout, cmd.Stderr = s.logs, s.logs
	// A test binary that dies (timeout, Ctrl-C) takes its processes with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start %s: %v", command, err)
	}
	return cmd
}

// Exited is closed once a worker started by StartWorkerWithEnv has ended
// (killed, or exited on its own); cmd.ProcessState is set then. It is nil
// for other processes, which callers may Wait for themselves.
func (s *Stack) Exited(cmd *exec.Cmd) <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.exited[cmd]
}

// wait reaps a process, through its reaper when it has one.
func (s *Stack) wait(cmd *exec.Cmd) {
	if done := s.Exited(cmd); done != nil {
		<-done
		return
	}
	_ = cmd.Wait()
}

// StartAPI starts the api process and waits until it is ready.
func (s *Stack) StartAPI() {
	s.t.Helper()
	s.mu.Lock()
	s.api = s.start("api")
	s.mu.Unlock()
	WaitFor(s.t, 30*time.Second, "api ready", func() bool {
		resp, err := http.Get(s.BaseURL + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// LaunchAPI starts the api process without waiting for it to be ready. The
// stack reaps it, so its exit on its own shows on Exited; do not Wait for it.
func (s *Stack) LaunchAPI() *exec.Cmd {
	s.t.Helper()
	cmd := s.start("api")
	done := make(chan struct{})
	s.mu.Lock()
	s.api = cmd
	s.exited[cmd] = done
	s.mu.Unlock()
	go func() { _ = cmd.Wait(); close(done) }()
	return cmd
}

// StartWorker starts one more worker process.
func (s *Stack) StartWorker() *exec.Cmd {
	s.t.Helper()
	cmd := s.start("worker")
	s.mu.Lock()
	s.workers = append(s.workers, cmd)
	s.mu.Unlock()
	return cmd
}

// StartWorkerWithEnv starts one more worker process with extra environment
// (e.g. a test-only fault point such as FAULT_EXIT_AFTER_CHARGE=1). The stack
// reaps it, so its exit on its own shows on Exited; do not Wait for it.
func (s *Stack) StartWorkerWithEnv(env ...string) *exec.Cmd {
	s.t.Helper()
	cmd := s.start("worker", env...)
	done := make(chan struct{})
	s.mu.Lock()
	s.workers = append(s.workers, cmd)
	s.exited[cmd] = done
	s.mu.Unlock()
	go func() { _ = cmd.Wait(); close(done) }()
	return cmd
}

// Workers lists the worker processes started so far.
func (s *Stack) Workers() []*exec.Cmd {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*exec.Cmd(nil), s.workers...)
}

// KillWorker SIGKILLs a worker process (if it still runs), waits until it
// is reaped, and forgets it.
func (s *Stack) KillWorker(cmd *exec.Cmd) {
	_ = cmd.Process.Kill()
	s.wait(cmd)
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, w := range s.workers {
		if w == cmd {
			s.workers = append(s.workers[:i], s.workers[i+1:]...)
			break
		}
	}
}

// API is the api process.
func (s *Stack) API() *exec.Cmd {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.api
}

// Logs is everything the processes printed so far.
func (s *Stack) Logs() string { return s.logs.String() }

// Stop terminates every process gracefully (SIGTERM), then kills stragglers.
func (s *Stack) Stop() {
	s.mu.Lock()
	cmds := append([]*exec.Cmd{s.api}, s.workers...)
	s.api, s.workers = nil, nil
	s.mu.Unlock()
	for _, cmd := range cmds {
		if cmd == nil || cmd.Process == nil {
			continue
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { s.wait(cmd); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}
}

// Response is an HTTP answer with its decoded JSON body.
type Response struct {
	Status int
	Header http.Header
	Raw    []byte
	Body   map[string]any
}

// Str reads a top-level string field.
func (r Response) Str(field string) string {
	v, _ := r.Body[field].(string)
	return v
}

func (r Response) String() string { return fmt.Sprintf("%d %s", r.Status, r.Raw) }

// Do sends a request with the given headers (key/value pairs) and JSON body.
func (s *Stack) Do(method, path string, body any, headers ...string) Response {
	s.t.Helper()
	var raw []byte
	switch b := body.(type) {
	case nil:
	case []byte:
		raw = b
	case string:
		raw = []byte(b)
	default:
		var err error
		if raw, err = json.Marshal(b); err != nil {
			s.t.Fatal(err)
		}
	}
	req, err := http.NewRequestWithContext(context.Background(), method, s.BaseURL+path, bytes.NewReader(raw))
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return send(s.t, req)
}

// httpClient gives up on an answer after 3 minutes: longer than any request
// the API may take (its own deadline is 2×UPDATE_TIMEOUT + 10 s), so a
// request left hanging fails its test instead of the whole run's timeout.
var httpClient = &http.Client{Timeout: 3 * time.Minute}

func send(t testing.TB, req *http.Request) Response {
	t.Helper()
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := Response{Status: resp.StatusCode, Header: resp.Header, Raw: raw}
	_ = json.Unmarshal(raw, &r.Body)
	return r
}

// Partner acts as one partner agent.
type Partner struct {
	s   *Stack
	Key string
}

// Partner returns a client holding an API key.
func (s *Stack) Partner(key string) Partner { return Partner{s: s, Key: key} }

// Do sends an authenticated partner request.
func (p Partner) Do(method, path string, body any, headers ...string) Response {
	p.s.t.Helper()
	return p.s.Do(method, path, body, append([]string{"Authorization", "Bearer " + p.Key}, headers...)...)
}

// Purchase buys with a fresh Idempotency-Key.
func (p Partner) Purchase(body any) Response {
	p.s.t.Helper()
	return p.Do(http.MethodPost, "/v1/subscriptions", body, "Idempotency-Key", uuid.NewString())
}

// Publisher acts as a publisher signing with its secret.
type Publisher struct {
	s      *Stack
	ID     string
	Secret string
	// Skew shifts the signed timestamp (tests of the ±5 minute tolerance).
	Skew time.Duration
}

// Publisher returns a signing client.
func (s *Stack) Publisher(id, secret string) Publisher {
	return Publisher{s: s, ID: id, Secret: secret}
}

// Send signs and POSTs body to path with a fresh webhook-id.
func (p Publisher) Send(path string, body any) Response {
	p.s.t.Helper()
	return p.SendAs("msg_"+uuid.NewString(), path, body)
}

// SendAs signs and POSTs body with the given webhook-id.
func (p Publisher) SendAs(webhookID, path string, body any) Response {
	p.s.t.Helper()
	raw, err := json.Marshal(body)
	if err != nil {
		p.s.t.Fatal(err)
	}
	req := p.SignedRequest(webhookID, path, raw)
	return send(p.s.t, req)
}

// SignedRequest builds a signed request without sending it.
func (p Publisher) SignedRequest(webhookID, path string, raw []byte) *http.Request {
	p.s.t.Helper()
	wh, err := standardwebhooks.NewWebhook(p.Secret)
	if err != nil {
		p.s.t.Fatal(err)
	}
	ts := time.Now().Add(p.Skew)
	sig, err := wh.Sign(webhookID, ts, raw)
	if err != nil {
		p.s.t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, p.s.BaseURL+path, bytes.NewReader(raw))
	if err != nil {
		p.s.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Publisher-Id", p.ID)
	req.Header.Set(standardwebhooks.HeaderWebhookID, webhookID)
	req.Header.Set(standardwebhooks.HeaderWebhookTimestamp, fmt.Sprint(ts.Unix()))
	req.Header.Set(standardwebhooks.HeaderWebhookSignature, sig)
	return req
}

// Send sends a prepared request.
func (s *Stack) Send(req *http.Request) Response {
	s.t.Helper()
	return send(s.t, req)
}

// SyncBuffer is an io.Writer safe for the concurrent output of processes.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Lines counts log lines containing s.
func (s *Stack) Lines(substr string) int {
	return strings.Count(s.Logs(), substr)
}

// lastLines is the end of text, at most n lines.
func lastLines(text string, n int) string {
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
