package main

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
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/google/uuid"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/partnerhub/fulfillment/e2e"
	"github.com/partnerhub/fulfillment/testenv"
	"github.com/partnerhub/fulfillment/workflows"
)

// stack is the real binary as separate api and worker processes.
type stack struct {
	baseURL        string
	taskQueue      string
	env            []string
	api, worker    *exec.Cmd
	apiPprof       string
	workerPprof    string
	logFile        *os.File
	pendingStopped bool
}

// startStack seeds the database and starts one worker and one api, with the
// rate limits out of the way.
func startStack(ctx context.Context, binary, dbURL, temporalAddr, dir string, pprof bool, cacheSize, extraWorkerEnv, compression string) (*stack, error) {
	logFile, err := os.Create(filepath.Join(dir, "service.log"))
	if err != nil {
		return nil, err
	}
	addr := testenv.FreeAddress()
	s := &stack{baseURL: "http://" + addr, logFile: logFile, taskQueue: "bench-fulfillment-" + uuid.NewString()[:8]}
	s.env = append(os.Environ(),
		"DATABASE_URL="+dbURL, "TEMPORAL_ADDRESS="+temporalAddr, "TEMPORAL_NAMESPACE=default",
		"HTTP_ADDR="+addr, "SECRET_KEY="+testenv.SecretKey(),
		"TEMPORAL_TASK_QUEUE="+s.taskQueue, "LOG_LEVEL=warn", "TEMPORAL_GRPC_COMPRESSION="+compression,
		"RATE_LIMIT_PARTNER_RPS=100000", "RATE_LIMIT_PARTNER_BURST=100000",
		"RATE_LIMIT_PUBLISHER_RPS=100000", "RATE_LIMIT_PUBLISHER_BURST=100000",
		"RATE_LIMIT_FAILED_AUTH_RPS=100000", "RATE_LIMIT_FAILED_AUTH_BURST=100000",
	)
	seedFile := filepath.Join(dir, "seed.json")
	if err := os.WriteFile(seedFile, []byte(strings.Replace(e2e.Seed, "WEBHOOK_URL", "null", 1)), 0o600); err != nil {
		return nil, err
	}
	seed := exec.CommandContext(ctx, binary, "seed", seedFile)
	seed.Env, seed.Stdout, seed.Stderr = s.env, logFile, logFile
	if err := seed.Run(); err != nil {
		return nil, fmt.Errorf("seed: %w (see %s)", err, logFile.Name())
	}
	start := func(command string, env ...string) (*exec.Cmd, error) {
		cmd := exec.Command(binary, command)
		cmd.Env = append(append([]string(nil), s.env...), env...)
		cmd.Stdout, cmd.Stderr = logFile, logFile
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		return cmd, cmd.Start()
	}
	var workerEnv, apiEnv []string
	if pprof {
		s.apiPprof, s.workerPprof = testenv.FreeAddress(), testenv.FreeAddress()
		apiEnv, workerEnv = []string{"PPROF_ADDR=" + s.apiPprof}, []string{"PPROF_ADDR=" + s.workerPprof}
	}
	if cacheSize != "" {
		workerEnv = append(workerEnv, "WORKFLOW_CACHE_SIZE="+cacheSize)
	}
	for _, kv := range strings.Split(extraWorkerEnv, ",") {
		if kv = strings.TrimSpace(kv); kv != "" {
			workerEnv = append(workerEnv, kv)
		}
	}
	if s.worker, err = start("worker", workerEnv...); err != nil {
		return nil, err
	}
	if s.api, err = start("api", apiEnv...); err != nil {
		s.stop()
		return nil, err
	}
	if !waitUntil(ctx, 60*time.Second, s.apiReady) {
		s.stop()
		return nil, fmt.Errorf("api not ready after 60s (see %s)", logFile.Name())
	}
	return s, nil
}

// apiReady tells whether the api answers /readyz 200 (PostgreSQL and Temporal reachable).
func (s *stack) apiReady() bool {
	resp, err := http.Get(s.baseURL + "/readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// waitUntil polls cond every 200 ms until it holds (true), timeout passes or
// ctx ends (false).
func waitUntil(ctx context.Context, timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(200 * time.Millisecond):
		}
	}
	return true
}

// extraAPI starts one more api process of binary (e.g. an older build, for a
// before/after in one run) on the same database and Temporal; the returned
// stack shares the worker and sends its requests to the new process.
func (s *stack) extraAPI(binary string) (*stack, error) {
	addr := testenv.FreeAddress()
	cmd := exec.Command(binary, "api")
	cmd.Env = append(append([]string(nil), s.env...), "HTTP_ADDR="+addr)
	cmd.Stdout, cmd.Stderr = s.logFile, s.logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	x := *s
	x.baseURL, x.api = "http://"+addr, cmd
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		resp, err := http.Get(x.baseURL + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return &x, nil
			}
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			return nil, fmt.Errorf("api of %s not ready after 60s", binary)
		}
	}
}

// stopAPI stops an api started by extraAPI.
func (s *stack) stopAPI() {
	_ = s.api.Process.Signal(syscall.SIGTERM)
	_ = s.api.Wait()
}

func (s *stack) stop() {
	for _, cmd := range []*exec.Cmd{s.api, s.worker} {
		if cmd == nil || cmd.Process == nil {
			continue
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}
	s.logFile.Close()
}

// rss reads a process's peak (VmHWM) and current (VmRSS) resident set, in MiB.
func rss(pid int) (peak, now float64) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "VmHWM:":
			peak = kb / 1024
		case "VmRSS:":
			now = kb / 1024
		}
	}
	return peak, now
}

// httpClient keeps enough idle connections for the load's concurrency.
var httpClient = &http.Client{
	Timeout:   60 * time.Second,
	Transport: &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024, IdleConnTimeout: 90 * time.Second},
}

type answer struct {
	status int
	body   map[string]any
}

func (s *stack) do(ctx context.Context, req *http.Request) (answer, error) {
	resp, err := httpClient.Do(req.WithContext(ctx))
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return answer{}, err
	}
	a := answer{status: resp.StatusCode}
	_ = json.Unmarshal(raw, &a.body)
	if resp.StatusCode >= 300 {
		return a, fmt.Errorf("%s %s: %d %s", req.Method, req.URL.Path, resp.StatusCode, bytes.TrimSpace(raw))
	}
	return a, nil
}

func (s *stack) partner(method, path, key string, body any) *http.Request {
	raw, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, s.baseURL+path, bytes.NewReader(raw))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	return req
}

var contoso = func() *standardwebhooks.Webhook {
	wh, err := standardwebhooks.NewWebhook(e2e.ContosoSecret)
	if err != nil {
		panic(err)
	}
	return wh
}()

// publisher is a request signed by Contoso, with a fresh webhook-id.
func (s *stack) publisher(path string, body any) *http.Request {
	raw, _ := json.Marshal(body)
	id, ts := "msg_"+uuid.NewString(), time.Now()
	sig, err := contoso.Sign(id, ts, raw)
	if err != nil {
		panic(err)
	}
	req, _ := http.NewRequest(http.MethodPost, s.baseURL+path, bytes.NewReader(raw))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Publisher-Id", "contoso")
	req.Header.Set(standardwebhooks.HeaderWebhookID, id)
	req.Header.Set(standardwebhooks.HeaderWebhookTimestamp, strconv.FormatInt(ts.Unix(), 10))
	req.Header.Set(standardwebhooks.HeaderWebhookSignature, sig)
	return req
}

// serviceFlow plays partner (purchase) and publisher (resolve, licenses,
// activate) until the subscription answers active.
func (s *stack) serviceFlow() flow {
	return func(ctx context.Context, timed func(string, time.Duration)) (string, error) {
		call := func(kind string, req *http.Request) (answer, error) {
			t := time.Now()
			a, err := s.do(ctx, req)
			if err == nil {
				timed(kind, time.Since(t))
			}
			return a, err
		}
		req := s.partner(http.MethodPost, "/v1/subscriptions", e2e.AdminKey, map[string]any{
			"customer_id": "woodgrove", "offer_id": "analytics", "plan_id": "annual", "quantity": 5,
		})
		req.Header.Set("Idempotency-Key", uuid.NewString())
		a, err := call("purchase", req)
		if err != nil {
			return "", err
		}
		id, _ := a.body["id"].(string)
		link, _ := a.body["publisher_link"].(map[string]any)
		code, _ := link["authorization_code"].(string)
		if id == "" || code == "" {
			return "", fmt.Errorf("purchase answered without id or code: %v", a.body)
		}
		wfID := workflows.WorkflowID(id)
		if _, err := call("resolve", s.publisher("/v1/publisher/resolve", map[string]any{"authorization_code": code})); err != nil {
			return wfID, err
		}
		if _, err := call("licenses", s.publisher("/v1/publisher/subscriptions/"+id+"/licenses", map[string]any{"assigned": 3})); err != nil {
			return wfID, err
		}
		a, err = call("activate", s.publisher("/v1/publisher/subscriptions/"+id+"/activate", map[string]any{"site_url": "https://woodgrove.contoso.example"}))
		if err != nil {
			return wfID, err
		}
		if st, _ := a.body["status"].(string); st != "active" {
			return wfID, fmt.Errorf("activate answered status %q", st)
		}
		return wfID, nil
	}
}

// profile fetches a CPU profile of seconds from a pprof address into file.
func profile(ctx context.Context, addr string, seconds int, file string) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, seconds), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("pprof %s: %s", addr, resp.Status)
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(f, resp.Body)
	return err
}
