package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	updatepb "go.temporal.io/api/update/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/partnerhub/fulfillment/domain"
	"github.com/partnerhub/fulfillment/testenv"
	"github.com/partnerhub/fulfillment/workflows"
)

// TestOpsGracefulShutdown: SIGTERM stops the worker cleanly (exit 0), and the
// api, on SIGTERM, stops taking connections but answers the request it is
// in the middle of — here a publisher's activate callback whose Update waits
// for a worker that only starts after the signal — then exits 0.
func TestOpsGracefulShutdown(t *testing.T) {
	t.Parallel()
	w := newWorld(t, testenvOpts())
	tc := w.Temporal.Client(t)
	p := w.buy(t, "analytics", "annual", 2)
	id := p.Str("id")
	link := p.Body["publisher_link"].(map[string]any)
	r := w.contoso.Send("/v1/publisher/resolve", map[string]any{"authorization_code": link["authorization_code"]})
	require.Equal(t, http.StatusOK, r.Status, r.String())
	r = w.contoso.Send("/v1/publisher/subscriptions/"+id+"/licenses", map[string]any{"assigned": 2})
	require.Equal(t, http.StatusOK, r.Status, r.String())

	// The worker: SIGTERM → worker.Stop → exit 0.
	worker := w.Workers()[0]
	began := time.Now()
	require.NoError(t, worker.Process.Signal(syscall.SIGTERM))
	require.NoError(t, opsWaitExit(t, opsExited(worker), 15*time.Second, "worker"), "the worker exits 0 on SIGTERM")
	t.Logf("worker exited 0 %s after SIGTERM", time.Since(began).Round(time.Millisecond))

	// A callback while no worker runs: its Update reaches the workflow and waits.
	webhookID := "msg_" + uuid.NewString()
	raw := []byte(`{"site_url":"https://woodgrove.contoso.example"}`)
	inflight := make(chan opsAnswer, 1)
	go func() {
		req := w.contoso.SignedRequest(webhookID, "/v1/publisher/subscriptions/"+id+"/activate", raw)
		inflight <- opsCall(req)
	}()
	testenv.WaitFor(t, 15*time.Second, "the activate Update to be admitted by the workflow", func() bool {
		return opsUpdateAdmitted(tc, workflows.WorkflowID(id), "publisher:contoso:"+webhookID)
	})
	select {
	case a := <-inflight:
		t.Fatalf("answered without a worker: %+v", a)
	default:
	}

	// SIGTERM the api while that request is in flight.
	api := w.API()
	signalled := time.Now()
	require.NoError(t, api.Process.Signal(syscall.SIGTERM))
	apiExit := opsExited(api)
	testenv.WaitFor(t, 10*time.Second, "the api to stop accepting connections", func() bool {
		resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Get(w.BaseURL + "/healthz")
		if err != nil {
			return true
		}
		resp.Body.Close()
		return false
	})
	select {
	case a := <-inflight:
		t.Fatalf("in-flight request answered before a worker ran: %+v", a)
	case err := <-apiExit:
		t.Fatalf("the api exited (%v) before answering its in-flight request", err)
	default:
	}

	// A worker comes back; the draining api still delivers the answer.
	w.StartWorker()
	var a opsAnswer
	select {
	case a = <-inflight:
	case <-time.After(30 * time.Second):
		t.Fatal("the in-flight request got no answer")
	}
	require.NoError(t, a.err)
	require.Equal(t, http.StatusOK, a.status, string(a.raw))
	assert.Equal(t, "active", a.body["status"], "the answer is the workflow's: billing started")
	answered := time.Since(signalled)
	require.NoError(t, opsWaitExit(t, apiExit, 15*time.Second, "api"), "the api exits 0 after draining")
	t.Logf("in-flight request answered 200 %s after SIGTERM; api exited 0 after %s",
		answered.Round(time.Millisecond), time.Since(signalled).Round(time.Millisecond))

	assert.Equal(t, 1, w.ledgerRows(t, id, "charge"), "billing started exactly once")
	logs := w.Logs()
	assert.Contains(t, logs, `"msg":"api draining in-flight requests"`)
	assert.Contains(t, logs, `"msg":"api stopped"`)
	assert.Contains(t, logs, `"msg":"worker stopped"`)
}

// TestOpsWorkerScaling: two worker processes share the task queue. Twelve
// purchases are made (each workflow is then cached on the worker that ran
// it); while the publishers' callbacks run, the worker holding most of those
// workflows is SIGKILLed. Every purchase still reaches active, billed once,
// and the histories show the survivor taking over the victim's workflows.
// Callers retry a 5xx the way the contract tells them to (same
// Idempotency-Key, same webhook-id), so nothing happens twice.
func TestOpsWorkerScaling(t *testing.T) {
	t.Parallel()
	w := newWorld(t, testenv.StackOptions{Workers: 2})
	tc := w.Temporal.Client(t)
	const flows, killAfter = 12, 4
	started := time.Now()
	results := make([]opsFlow, flows)
	opsParallel(flows, func(i int) { results[i] = opsPurchaseAndResolve(w, i) })
	for i, f := range results {
		require.NoError(t, f.err, "purchase %d", i)
	}
	purchased := time.Since(started)

	// The victim: the worker that ran the most of these workflows.
	workers := w.Workers()
	require.Len(t, workers, 2)
	ran := map[int][]string{}
	for _, f := range results {
		pid := opsWorkerPID(t, opsTaskIdentities(t, tc, f.id)[0])
		ran[pid] = append(ran[pid], f.id)
	}
	victim, survivor := workers[0], workers[1]
	if len(ran[survivor.Process.Pid]) > len(ran[victim.Process.Pid]) {
		victim, survivor = survivor, victim
	}
	require.NotEmpty(t, ran[victim.Process.Pid])

	// The callbacks, with the victim SIGKILLed once a few have been answered.
	var answered atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		opsParallel(flows, func(i int) { results[i].fulfil(w, &answered) })
	}()
	testenv.WaitFor(t, 60*time.Second, "the first callbacks to be answered", func() bool { return answered.Load() >= killAfter })
	atKill := answered.Load()
	w.KillWorker(victim)
	killedAt := time.Since(started)
	select {
	case <-done:
	case <-time.After(120 * time.Second):
		t.Fatal("the purchases did not all complete")
	}

	retries := 0
	for i, f := range results {
		require.NoError(t, f.err, "flow %d", i)
		retries += f.retries
	}
	assert.Less(t, atKill, int64(2*flows), "the kill came mid-run")
	takenOver := 0
	for _, f := range results {
		got := w.admin.Do(http.MethodGet, "/v1/subscriptions/"+f.id, nil)
		assert.Equal(t, "active", got.Str("status"), f.id)
		assert.Equal(t, 1, w.ledgerRows(t, f.id, "charge"), "one charge for %s", f.id)
		ids := opsTaskIdentities(t, tc, f.id)
		if opsWorkerPID(t, ids[0]) == victim.Process.Pid && opsWorkerPID(t, ids[len(ids)-1]) == survivor.Process.Pid {
			takenOver++
		}
	}
	assert.Positive(t, takenOver, "the survivor finished workflows the victim had started")
	t.Logf("%d purchases in %s (victim ran %d, survivor %d); victim SIGKILLed at %s after %d of %d callbacks; "+
		"all active at %s; %d workflows taken over; %d retried calls",
		flows, purchased.Round(time.Millisecond), len(ran[victim.Process.Pid]), len(ran[survivor.Process.Pid]),
		killedAt.Round(time.Millisecond), atKill, 2*flows, time.Since(started).Round(time.Millisecond), takenOver, retries)
}

// TestOpsTemporalVisibility: what ops filter on in the Temporal UI works —
// search attributes per partner and status, the memo, the state query.
func TestOpsTemporalVisibility(t *testing.T) {
	t.Parallel()
	// A server of its own, so the lists hold only this test's workflows.
	temporal, err := testenv.StartTemporal(context.Background(), "", "")
	require.NoError(t, err)
	t.Cleanup(func() { _ = temporal.Stop() })
	w := newWorld(t, testenv.StackOptions{Temporal: temporal})
	tc := temporal.Client(t)
	northwind := w.other

	buy := func(agent testenv.Partner, customer, nickname string) testenv.Response {
		r := agent.Purchase(map[string]any{"customer_id": customer, "offer_id": "analytics", "plan_id": "annual",
			"quantity": 2, "nickname": nickname})
		require.Equal(t, http.StatusCreated, r.Status, r.String())
		return r
	}
	fulfill := func(p testenv.Response) {
		id := p.Str("id")
		r := w.contoso.Send("/v1/publisher/subscriptions/"+id+"/licenses", map[string]any{"assigned": 2})
		require.Equal(t, http.StatusOK, r.Status, r.String())
		r = w.contoso.Send("/v1/publisher/subscriptions/"+id+"/activate", map[string]any{})
		require.Equal(t, http.StatusOK, r.Status, r.String())
		require.Equal(t, "active", r.Str("status"))
	}
	cancel := func(agent testenv.Partner, p testenv.Response) {
		r := agent.Do(http.MethodPost, "/v1/subscriptions/"+p.Str("id")+"/cancel", nil)
		require.Equal(t, http.StatusOK, r.Status, r.String())
	}

	fabPending := buy(w.admin, "woodgrove", "fab pending")
	fabPending2 := buy(w.admin, "contoso-pharma", "fab pending 2")
	fabActive := buy(w.admin, "woodgrove", "fab active")
	fulfill(fabActive)
	fabCancelled := buy(w.admin, "woodgrove", "fab cancelled")
	cancel(w.admin, fabCancelled)
	nwPending := buy(northwind, "tailspin", "nw pending")
	nwActive := buy(northwind, "tailspin", "nw active")
	fulfill(nwActive)
	nwCancelled := buy(northwind, "tailspin", "nw cancelled")
	fulfill(nwCancelled)
	cancel(northwind, nwCancelled) // inside the window: refunded, cancelled

	wf := func(rs ...testenv.Response) []string {
		var ids []string
		for _, r := range rs {
			ids = append(ids, workflows.WorkflowID(r.Str("id")))
		}
		slices.Sort(ids)
		return ids
	}
	for query, want := range map[string][]string{
		`SubscriptionStatus="pending_fulfillment" AND PartnerId="fabrikam"`:          wf(fabPending, fabPending2),
		`SubscriptionStatus="active" AND PartnerId="fabrikam"`:                       wf(fabActive),
		`SubscriptionStatus="cancelled" AND PartnerId="fabrikam"`:                    wf(fabCancelled),
		`SubscriptionStatus="pending_fulfillment" AND PartnerId="northwind"`:         wf(nwPending),
		`SubscriptionStatus="active" AND PartnerId="northwind"`:                      wf(nwActive),
		`SubscriptionStatus="cancelled"`:                                             wf(fabCancelled, nwCancelled),
		`PartnerId="northwind"`:                                                      wf(nwPending, nwActive, nwCancelled),
		`CustomerId="contoso-pharma"`:                                                wf(fabPending2),
		`OfferId="analytics" AND ExecutionStatus="Running" AND PartnerId="fabrikam"`: wf(fabPending, fabPending2, fabActive),
		`SubscriptionStatus="cancelled" AND ExecutionStatus="Completed"`:             wf(fabCancelled, nwCancelled),
	} {
		var got []string
		testenv.WaitFor(t, 20*time.Second, "visibility: "+query, func() bool {
			got = opsListWorkflowIDs(t, tc, query)
			return slices.Equal(got, want)
		})
	}

	// The memo shows nickname, offer and plan — and follows a renaming.
	memo := opsMemo(t, tc, fabActive.Str("id"))
	assert.Equal(t, map[string]string{"nickname": "fab active", "offer": "analytics", "plan": "Annual"}, memo)
	r := w.admin.Do(http.MethodPatch, "/v1/subscriptions/"+fabActive.Str("id"), map[string]any{"nickname": "renamed"})
	require.Equal(t, http.StatusOK, r.Status, r.String())
	testenv.WaitFor(t, 10*time.Second, "the memo to show the new nickname", func() bool {
		return opsMemo(t, tc, fabActive.Str("id"))["nickname"] == "renamed"
	})

	// The state query answers the live subscription, also once the workflow closed.
	for _, c := range []struct {
		sub    testenv.Response
		status domain.Status
	}{{fabPending, domain.StatusPendingFulfillment}, {fabActive, domain.StatusActive}, {nwCancelled, domain.StatusCancelled}} {
		got := opsQueryState(t, tc, c.sub.Str("id"))
		assert.Equal(t, c.sub.Str("id"), got.ID)
		assert.Equal(t, c.status, got.Status, c.sub.Str("id"))
		assert.Equal(t, c.sub.Str("partner_id"), got.PartnerID)
		assert.Equal(t, 2, got.Quantity)
	}
	live := opsQueryState(t, tc, fabActive.Str("id"))
	require.NotNil(t, live.Nickname)
	assert.Equal(t, "renamed", *live.Nickname)
	assert.Equal(t, 2, live.LicensesAssigned)
	assert.NotNil(t, live.BillingStartedAt)
}

// TestOpsMetricsAndLogs: /metrics on the api has the request metrics and the
// SDK's; the worker's (WORKER_METRICS_ADDR) has the business counters and the
// SDK worker metrics. The JSON request log carries request_id and
// subscription_id, the SDK logs through slog, and no secret is ever logged.
func TestOpsMetricsAndLogs(t *testing.T) {
	t.Parallel()
	workerMetrics := testenv.FreeAddress()
	w := newWorld(t, testenv.StackOptions{Env: []string{"WORKER_METRICS_ADDR=" + workerMetrics}})
	p := w.buy(t, "analytics", "annual", 3)
	id := p.Str("id")
	code := p.Body["publisher_link"].(map[string]any)["authorization_code"].(string)
	active := w.fulfill(t, p, 3)
	require.Equal(t, "active", active.Str("status"))
	cancel := w.admin.Do(http.MethodPost, "/v1/subscriptions/"+id+"/cancel", nil)
	require.Equal(t, http.StatusOK, cancel.Status, cancel.String())
	unknown := w.admin.Do(http.MethodGet, "/v1/subscriptions/sub_does_not_exist", nil)
	require.Equal(t, http.StatusNotFound, unknown.Status)

	var apiMetrics string
	testenv.WaitFor(t, 15*time.Second, "api /metrics with request and SDK metrics", func() bool {
		apiMetrics = opsScrape(w.BaseURL + "/metrics")
		return strings.Contains(apiMetrics, "\ntemporal_request_total{")
	})
	for _, line := range []string{
		`fulfillment_http_requests_total{method="POST",route="/v1/subscriptions",status="201"} 1`,
		`fulfillment_http_requests_total{method="POST",route="/v1/publisher/subscriptions/:id/activate",status="200"} 1`,
		`fulfillment_http_requests_total{method="POST",route="/v1/subscriptions/:id/cancel",status="200"} 1`,
		`fulfillment_http_requests_total{method="GET",route="/v1/subscriptions/:id",status="404"} 1`,
		`fulfillment_http_request_duration_seconds_count{method="POST",route="/v1/publisher/resolve"} 1`,
	} {
		assert.Contains(t, apiMetrics, line)
	}

	var worker string
	testenv.WaitFor(t, 15*time.Second, "worker /metrics with business counters and SDK worker metrics", func() bool {
		worker = opsScrape("http://" + workerMetrics + "/metrics")
		return opsValue(worker, `fulfillment_subscription_events_total{type="billing_started"}`) >= 1 &&
			strings.Contains(worker, "\ntemporal_workflow_task_execution_latency_seconds_count{")
	})
	for _, typ := range []string{"purchased", "link_issued", "licenses_assigned", "fulfillment_confirmed", "billing_started", "cancelled"} {
		assert.GreaterOrEqual(t, opsValue(worker, `fulfillment_subscription_events_total{type="`+typ+`"}`), 1.0, typ)
	}
	assert.Contains(t, worker, "\ntemporal_worker_start_total{")
	assert.Contains(t, worker, "\ntemporal_workflow_completed_total{")
	assert.NotContains(t, worker, "fulfillment_http_requests_total{", "the worker answers no API requests")
	health, err := http.Get("http://" + workerMetrics + "/healthz")
	require.NoError(t, err)
	health.Body.Close()
	assert.Equal(t, http.StatusOK, health.StatusCode)

	// Logs: every request line has request_id; those about a subscription name it.
	logs := w.Logs()
	lines := opsRequestLines(logs)
	require.NotEmpty(t, lines)
	byRoute := map[string][]map[string]any{}
	for _, l := range lines {
		assert.NotEmpty(t, l["request_id"], "%v", l)
		byRoute[fmt.Sprint(l["method"], " ", l["route"])] = append(byRoute[fmt.Sprint(l["method"], " ", l["route"])], l)
	}
	for _, route := range []string{
		"POST /v1/subscriptions", "POST /v1/publisher/resolve", "POST /v1/publisher/subscriptions/:id/licenses",
		"POST /v1/publisher/subscriptions/:id/activate", "POST /v1/subscriptions/:id/cancel",
	} {
		require.NotEmpty(t, byRoute[route], route)
		for _, l := range byRoute[route] {
			assert.Equal(t, id, l["subscription_id"], "%s: %v", route, l)
		}
	}
	require.NotEmpty(t, byRoute["GET /v1/subscriptions/:id"])
	assert.Equal(t, "sub_does_not_exist", byRoute["GET /v1/subscriptions/:id"][0]["subscription_id"])
	assert.Equal(t, "fabrikam", byRoute["POST /v1/subscriptions"][0]["tenant"])
	assert.Equal(t, "publisher:contoso", byRoute["POST /v1/publisher/resolve"][0]["tenant"])

	sdkLines := 0
	for line := range strings.Lines(logs) {
		if strings.Contains(line, `"component":"temporal-sdk"`) {
			var v map[string]any
			require.NoError(t, json.Unmarshal([]byte(line), &v), "SDK log lines are JSON: %s", line)
			sdkLines++
		}
	}
	assert.Positive(t, sdkLines, "the Temporal SDK logs through slog")

	for name, secret := range map[string]string{
		"API key": AdminKey, "signing secret": strings.TrimPrefix(ContosoSecret, "whsec_"),
		"authorization code": code, "Authorization header": "Bearer ",
	} {
		assert.NotContains(t, logs, secret, "the logs must never carry the %s", name)
	}
	assert.NotContains(t, logs, "temporal SDK metric not exported")
}

// --- helpers (safe off the test goroutine unless they take t) ---

type opsAnswer struct {
	status int
	raw    []byte
	body   map[string]any
	err    error
}

// opsCall sends a request and decodes the answer; it never touches t.
func opsCall(req *http.Request) opsAnswer {
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return opsAnswer{err: err}
	}
	defer resp.Body.Close()
	a := opsAnswer{status: resp.StatusCode}
	a.raw, a.err = io.ReadAll(resp.Body)
	_ = json.Unmarshal(a.raw, &a.body)
	return a
}

// opsExited reports the process's exit (nil for status 0).
func opsExited(cmd *exec.Cmd) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- cmd.Wait() }()
	return ch
}

func opsWaitExit(t *testing.T, exited <-chan error, timeout time.Duration, what string) error {
	t.Helper()
	select {
	case err := <-exited:
		return err
	case <-time.After(timeout):
		t.Fatalf("%s did not exit within %s", what, timeout)
		return nil
	}
}

// opsUpdateAdmitted tells whether the server holds the Update (admitted,
// waiting for a worker) — i.e. the api's request is in flight.
func opsUpdateAdmitted(c client.Client, workflowID, updateID string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err := c.WorkflowService().PollWorkflowExecutionUpdate(ctx, &workflowservice.PollWorkflowExecutionUpdateRequest{
		Namespace: "default",
		UpdateRef: &updatepb.UpdateRef{
			WorkflowExecution: &commonpb.WorkflowExecution{WorkflowId: workflowID},
			UpdateId:          updateID,
		},
		WaitPolicy: &updatepb.WaitPolicy{LifecycleStage: enumspb.UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_ADMITTED},
	})
	return err == nil
}

type opsFlow struct {
	id, code string
	retries  int
	err      error
}

// opsRetry sends what build makes until it gets an answer below 500; a 5xx
// or a broken connection is retried (same key or webhook-id, fresh signature).
func (f *opsFlow) retry(what string, build func() *http.Request) opsAnswer {
	deadline := time.Now().Add(90 * time.Second)
	for {
		a := opsCall(build())
		if a.err == nil && a.status < 500 {
			return a
		}
		if time.Now().After(deadline) {
			return opsAnswer{err: fmt.Errorf("%s: still failing at the deadline: %v %s", what, a.err, a.raw)}
		}
		f.retries++
		time.Sleep(200 * time.Millisecond) // a client's backoff between retries
	}
}

// opsPurchaseAndResolve buys as the partner and resolves the code as the publisher.
func opsPurchaseAndResolve(w *world, n int) (f opsFlow) {
	key := uuid.NewString()
	body, _ := json.Marshal(map[string]any{"customer_id": "woodgrove", "offer_id": "analytics", "plan_id": "annual",
		"quantity": 1 + n%5, "nickname": fmt.Sprintf("scale %d", n)})
	a := f.retry("purchase", func() *http.Request {
		req, _ := http.NewRequest(http.MethodPost, w.BaseURL+"/v1/subscriptions", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+AdminKey)
		req.Header.Set("Idempotency-Key", key)
		return req
	})
	if a.err != nil || a.status != http.StatusCreated {
		f.err = fmt.Errorf("purchase: %v %d %s", a.err, a.status, a.raw)
		return f
	}
	f.id, _ = a.body["id"].(string)
	link, _ := a.body["publisher_link"].(map[string]any)
	f.code, _ = link["authorization_code"].(string)
	f.publisher(w, "/v1/publisher/resolve", fmt.Sprintf(`{"authorization_code":%q}`, f.code), nil)
	return f
}

// fulfil assigns licenses and confirms fulfillment; the last answer must be active.
func (f *opsFlow) fulfil(w *world, answered *atomic.Int64) {
	f.publisher(w, "/v1/publisher/subscriptions/"+f.id+"/licenses", `{"assigned":1}`, answered)
	if last := f.publisher(w, "/v1/publisher/subscriptions/"+f.id+"/activate", `{}`, answered); f.err == nil && last.body["status"] != "active" {
		f.err = fmt.Errorf("%s: the last callback answered %s", f.id, last.raw)
	}
}

func (f *opsFlow) publisher(w *world, path, body string, answered *atomic.Int64) opsAnswer {
	if f.err != nil {
		return opsAnswer{}
	}
	webhookID := "msg_" + uuid.NewString()
	a := f.retry(path, func() *http.Request { return w.contoso.SignedRequest(webhookID, path, []byte(body)) })
	if a.err != nil || a.status != http.StatusOK {
		f.err = fmt.Errorf("%s: %v %d %s", path, a.err, a.status, a.raw)
	}
	if answered != nil {
		answered.Add(1)
	}
	return a
}

// opsParallel runs fn(0..n-1) concurrently and waits.
func opsParallel(n int, fn func(i int)) {
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() { defer wg.Done(); fn(i) }()
	}
	wg.Wait()
}

// opsTaskIdentities lists, in order, the identity of the worker that started
// each workflow task of the subscription's workflow.
func opsTaskIdentities(t *testing.T, c client.Client, subscriptionID string) []string {
	t.Helper()
	var ids []string
	it := c.GetWorkflowHistory(context.Background(), workflows.WorkflowID(subscriptionID), "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		e, err := it.Next()
		require.NoError(t, err)
		if a := e.GetWorkflowTaskStartedEventAttributes(); a != nil {
			ids = append(ids, a.GetIdentity())
		}
	}
	require.NotEmpty(t, ids, subscriptionID)
	return ids
}

// opsWorkerPID reads the process id out of an SDK identity ("<pid>@<host>@…").
func opsWorkerPID(t *testing.T, identity string) int {
	t.Helper()
	pid, err := strconv.Atoi(strings.SplitN(identity, "@", 2)[0])
	require.NoError(t, err, identity)
	return pid
}

func opsListWorkflowIDs(t *testing.T, c client.Client, query string) []string {
	t.Helper()
	var ids []string
	var token []byte
	for {
		resp, err := c.ListWorkflow(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{
			Namespace: "default", Query: query, NextPageToken: token,
		})
		require.NoError(t, err, query)
		for _, e := range resp.GetExecutions() {
			ids = append(ids, e.GetExecution().GetWorkflowId())
		}
		if token = resp.GetNextPageToken(); len(token) == 0 {
			break
		}
	}
	slices.Sort(ids)
	return ids
}

func opsMemo(t *testing.T, c client.Client, subscriptionID string) map[string]string {
	t.Helper()
	resp, err := c.DescribeWorkflowExecution(context.Background(), workflows.WorkflowID(subscriptionID), "")
	require.NoError(t, err)
	memo := map[string]string{}
	for k, p := range resp.GetWorkflowExecutionInfo().GetMemo().GetFields() {
		var v string
		require.NoError(t, converter.GetDefaultDataConverter().FromPayload(p, &v), k)
		memo[k] = v
	}
	return memo
}

func opsQueryState(t *testing.T, c client.Client, subscriptionID string) domain.Subscription {
	t.Helper()
	v, err := c.QueryWorkflow(context.Background(), workflows.WorkflowID(subscriptionID), "", workflows.QueryState)
	require.NoError(t, err)
	var s domain.Subscription
	require.NoError(t, v.Get(&s))
	return s
}

func opsScrape(url string) string {
	resp, err := http.Get(url)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// opsValue reads the value of one series (exact name and labels); -1 if absent.
func opsValue(exposition, series string) float64 {
	for line := range strings.Lines(exposition) {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			var v float64
			if _, err := fmt.Sscan(rest, &v); err == nil {
				return v
			}
		}
	}
	return -1
}

// opsRequestLines are the api's JSON "request" log lines.
func opsRequestLines(logs string) []map[string]any {
	var out []map[string]any
	for line := range strings.Lines(logs) {
		if !strings.Contains(line, `"msg":"request"`) {
			continue
		}
		var v map[string]any
		if json.Unmarshal([]byte(line), &v) == nil {
			out = append(out, v)
		}
	}
	return out
}
