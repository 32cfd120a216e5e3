package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/partnerhub/fulfillment/domain"
	"github.com/partnerhub/fulfillment/testenv"
	"github.com/partnerhub/fulfillment/workflows"
)

// TestChaosNoPurchaseLostNoDoubleCharge drives 200 purchases end to end over
// HTTP while worker processes are SIGKILLed at random points (one of them
// also exits by itself between committing a charge and reporting the
// transition done), all workers stay down for a moment while callbacks wait,
// and the Temporal dev server restarts once on its database file. The driver
// behaves like real partners and publishers: it retries timeouts, 503, 429
// and 409 idempotency_key_in_use with the same Idempotency-Key or webhook-id.
// Afterwards SQL (not the API) must show every purchase, one charge for each
// fulfilled subscription, none for the pending ones, and no term charged twice.
//
// The one e2e test that does not run in parallel: it is the heaviest (16
// flows at once, a server restart on its own database file), and it runs
// first, before the parallel tests start, so its timing is its own.
func TestChaosNoPurchaseLostNoDoubleCharge(t *testing.T) {
	began := time.Now()
	const (
		purchases   = 200
		parallelism = 16
		sigkills    = 12 // at least 10 required
		faultExits  = 2  // workers that exit right after committing a charge
	)
	temporal, err := testenv.StartTemporal(context.Background(), "", filepath.Join(t.TempDir(), "temporal.db"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = temporal.Stop() })
	w := newWorld(t, testenv.StackOptions{Temporal: temporal})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the processes' last words:\n%s", chaosTail(w.Logs(), 8000))
		}
	})

	cl := newChaosClient()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	// The plan: most purchases are fulfilled, some only get licenses, some
	// get no callback at all (they stay pending).
	flows := make([]*chaosFlow, purchases)
	for i := range flows {
		f := &chaosFlow{i: i, key: "chaos-" + uuid.NewString(), quantity: 1 + i%7, kind: chaosFull}
		switch i % 10 {
		case 3:
			f.kind = chaosPending
		case 7:
			f.kind = chaosLicensesOnly
		}
		f.licenses = 1 + (i % f.quantity)
		f.activateFirst = i%4 == 1
		f.customer = []string{"woodgrove", "contoso-pharma"}[i%2]
		flows[i] = f
	}

	// The monkey acts at random points of the driver's progress (successful
	// answers); it owns every worker start and stop.
	monkey := &chaosMonkey{t: t, w: w, cl: cl, faultBudget: faultExits}
	monkey.plan(sigkills, 650)
	driverDone := make(chan struct{})
	monkeyDone := make(chan struct{})
	go func() { defer close(monkeyDone); monkey.run(ctx, driverDone) }()

	work := make(chan *chaosFlow)
	var wg sync.WaitGroup
	for range parallelism {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for f := range work {
				if err := cl.drive(ctx, w, f); err != nil {
					t.Errorf("purchase %d (%s, key %s, subscription %q): %v", f.i, f.kind, f.key, f.id, err)
				}
			}
		}()
	}
	for _, f := range flows {
		work <- f
	}
	close(work)
	wg.Wait()
	close(driverDone)
	<-monkeyDone
	driven := time.Since(began)
	bought := 0
	for _, f := range flows {
		if f.id != "" {
			bought++
		}
	}

	t.Logf("chaos: %d purchases driven to a 201 (%d fulfilled, %d licenses only, %d pending), %d SIGKILLs, %d fault exits after a charge, "+
		"%d worker starts, %d Temporal restart(s), %d retried requests, %d requests answered, %s",
		bought, chaosCount(flows, chaosFull), chaosCount(flows, chaosLicensesOnly), chaosCount(flows, chaosPending),
		monkey.kills, monkey.faults, monkey.starts, monkey.restarts, cl.retries.Load(), cl.answered.Load(), driven.Round(time.Second))
	t.Logf("chaos: retried because of %v; slowest request %s (%s)", cl.causes, cl.slowest.Round(time.Millisecond), cl.slowWhat)
	require.False(t, t.Failed(), "the driver failed; see above")
	assert.GreaterOrEqual(t, monkey.kills, 10, "SIGKILLs")
	assert.Equal(t, 1, monkey.restarts, "Temporal restarts")
	assert.GreaterOrEqual(t, monkey.faults, 1, "a worker exited between committing a charge and completing the transition")
	assert.GreaterOrEqual(t, monkey.heldCallbacks, int64(1), "callbacks waited while no worker ran")
	assert.Zero(t, cl.serverErrors.Load(), "no 500 answers")

	// Every flow — every key the driver tried — is one purchase in the database.
	db := w.Store.DB()
	var keys []struct {
		Key            string `db:"key"`
		SubscriptionID string `db:"subscription_id"`
		Status         *int   `db:"response_status"`
	}
	require.NoError(t, db.Select(&keys, `SELECT key, subscription_id, response_status FROM idempotency_keys WHERE partner_id = 'fabrikam'`))
	byKey := map[string]string{}
	for _, k := range keys {
		byKey[k.Key] = k.SubscriptionID
		if assert.NotNil(t, k.Status, "key %s never completed", k.Key) {
			assert.Equal(t, http.StatusCreated, *k.Status, "key %s", k.Key)
		}
	}
	type row struct {
		ID        string `db:"id"`
		Status    string `db:"status"`
		Quantity  int    `db:"quantity"`
		Licenses  int    `db:"licenses_assigned"`
		Confirmed bool   `db:"fulfillment_confirmed"`
		Version   int64  `db:"version"`
		Charges   int    `db:"charges"`
		Ledger    int    `db:"ledger_rows"`
		Billed    int64  `db:"billed"`
	}
	var rows []row
	require.NoError(t, db.Select(&rows, `
		SELECT s.id, s.status, s.quantity, s.licenses_assigned, s.fulfillment_confirmed, s.version,
		       count(l.id) FILTER (WHERE l.kind = 'charge') AS charges, count(l.id) AS ledger_rows,
		       coalesce(sum(l.amount_minor), 0) AS billed
		FROM subscriptions s LEFT JOIN ledger l ON l.subscription_id = s.id
		GROUP BY s.id`))
	subs := map[string]row{}
	for _, r := range rows {
		subs[r.ID] = r
	}
	assert.Len(t, subs, purchases, "one subscription per purchase, no more, no less")
	for _, f := range flows {
		id, ok := byKey[f.key]
		if !assert.True(t, ok, "purchase %d: no idempotency record for key %s", f.i, f.key) {
			continue
		}
		assert.Equal(t, f.id, id, "purchase %d: the 201 answered the recorded subscription", f.i)
		s, ok := subs[id]
		if !assert.True(t, ok, "purchase %d: subscription %s missing", f.i, id) {
			continue
		}
		assert.Equal(t, f.quantity, s.Quantity, "purchase %d quantity", f.i)
		switch f.kind {
		case chaosFull:
			assert.Equal(t, "active", s.Status, "purchase %d (%s) fulfilled", f.i, id)
			assert.Equal(t, 1, s.Charges, "purchase %d (%s): exactly one charge", f.i, id)
			assert.Equal(t, 1, s.Ledger, "purchase %d (%s): nothing but the charge", f.i, id)
			assert.EqualValues(t, 1200*f.quantity, s.Billed, "purchase %d (%s): unit price × quantity", f.i, id)
			assert.Equal(t, f.licenses, s.Licenses, "purchase %d (%s) licenses", f.i, id)
			assert.True(t, s.Confirmed, "purchase %d (%s) confirmed", f.i, id)
			assert.Equal(t, "active", f.last.Str("status"), "purchase %d (%s): the last callback's answer shows active", f.i, id)
		case chaosLicensesOnly:
			assert.Equal(t, "pending_fulfillment", s.Status, "purchase %d (%s) waits for confirmation", f.i, id)
			assert.Zero(t, s.Ledger, "purchase %d (%s): no charge before fulfillment", f.i, id)
			assert.Equal(t, f.licenses, s.Licenses, "purchase %d (%s) licenses", f.i, id)
			assert.False(t, s.Confirmed, "purchase %d (%s) not confirmed", f.i, id)
		case chaosPending:
			assert.Equal(t, "pending_fulfillment", s.Status, "purchase %d (%s) pending", f.i, id)
			assert.Zero(t, s.Ledger, "purchase %d (%s): no charge while pending", f.i, id)
			assert.Zero(t, s.Licenses, "purchase %d (%s): no licenses", f.i, id)
		}
	}

	// The ledger overall: one charge per (subscription, term), and the
	// timeline: one purchase and at most one billing start per subscription.
	var doubles []string
	require.NoError(t, db.Select(&doubles, `
		SELECT subscription_id || ' term ' || term_number || ': ' || count(*) FROM ledger WHERE kind = 'charge'
		GROUP BY subscription_id, term_number HAVING count(*) > 1`))
	assert.Empty(t, doubles, "terms charged more than once")
	var charges int
	require.NoError(t, db.Get(&charges, `SELECT count(*) FROM ledger`))
	assert.Equal(t, chaosCount(flows, chaosFull), charges, "ledger rows overall")
	for _, typ := range []string{"purchased", "billing_started"} {
		var repeated []string
		require.NoError(t, db.Select(&repeated, `
			SELECT subscription_id FROM events WHERE type = $1 GROUP BY subscription_id HAVING count(*) > 1`, typ))
		assert.Empty(t, repeated, "subscriptions with more than one %s event", typ)
	}

	// The fault point fired between the charge's commit and the transition's
	// completion; the retried transition did not charge again.
	faulted := regexp.MustCompile(`FAULT_EXIT_AFTER_CHARGE: exiting after committing charge:(\S+):1`).FindAllStringSubmatch(w.Logs(), -1)
	// At least the exits the monkey saw; one more when a fault exit raced a
	// SIGKILL of the same worker (it then counted as a kill).
	require.NotEmpty(t, faulted, "the fault point fired")
	assert.GreaterOrEqual(t, len(faulted), monkey.faults, "a fault line per fault exit")
	flowByID := map[string]*chaosFlow{}
	for _, f := range flows {
		flowByID[f.id] = f
	}
	for _, m := range faulted {
		id := m[1]
		s := subs[id]
		assert.Equal(t, "active", s.Status, "faulted %s", id)
		assert.Equal(t, 1, s.Charges, "faulted %s: charged once though the charging transition ran twice", id)
		if f := flowByID[id]; assert.NotNil(t, f, "faulted %s is one of the driver's", id) {
			assert.Equal(t, chaosFull, f.kind)
			assert.Equal(t, "active", f.last.Str("status"), "faulted %s: the publisher got its answer after the retry", id)
		}
	}

	// The read model agrees with each workflow's own state.
	tc := w.Temporal.Client(t)
	for _, f := range flows {
		st, err := chaosQueryState(ctx, tc, f.id)
		if !assert.NoError(t, err, "query %s", f.id) {
			continue
		}
		s := subs[f.id]
		assert.Equal(t, s.Status, string(st.Status), "%s: status in workflow and read model", f.id)
		assert.Equal(t, s.Version, st.Version, "%s: version in workflow and read model", f.id)
		assert.Equal(t, s.Licenses, st.LicensesAssigned, "%s: licenses in workflow and read model", f.id)
		assert.Equal(t, s.Confirmed, st.FulfillmentConfirmed, "%s: confirmation in workflow and read model", f.id)
		if f.kind == chaosFull && assert.NotNil(t, st.BillingStartedAt, f.id) {
			// A transition retried after a crash restates its rows with the
			// recorded attempt's clock: read model and ledger match the workflow.
			var started, periodStart time.Time
			require.NoError(t, db.Get(&started, `SELECT billing_started_at FROM subscriptions WHERE id = $1`, f.id))
			require.NoError(t, db.Get(&periodStart, `SELECT period_start FROM ledger WHERE subscription_id = $1 AND kind = 'charge'`, f.id))
			assert.True(t, st.BillingStartedAt.Equal(started), "%s: billing_started_at %v in the workflow, %v in the read model", f.id, st.BillingStartedAt, started.UTC())
			assert.True(t, st.BillingStartedAt.Equal(periodStart), "%s: billing_started_at %v in the workflow, charge period from %v", f.id, st.BillingStartedAt, periodStart.UTC())
		}
	}
	t.Logf("chaos: wall time %s", time.Since(began).Round(time.Second))
}

// chaosQueryState asks a workflow for its state. A query replays an uncached
// workflow; on a starved machine (-race, two cores) the SDK's 1 s deadlock
// detector may fail that replay, so a few attempts are allowed, as an
// operator would retry.
func chaosQueryState(ctx context.Context, tc client.Client, id string) (domain.Subscription, error) {
	var st domain.Subscription
	var err error
	for attempt := range 5 {
		if attempt > 0 {
			time.Sleep(time.Duration(attempt) * 500 * time.Millisecond) // let the machine breathe
		}
		qctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		var v converter.EncodedValue
		v, err = tc.QueryWorkflow(qctx, workflows.WorkflowID(id), "", workflows.QueryState)
		cancel()
		if err == nil {
			return st, v.Get(&st)
		}
	}
	return st, err
}

type chaosFlowKind string

const (
	chaosFull         chaosFlowKind = "full"
	chaosLicensesOnly chaosFlowKind = "licenses_only"
	chaosPending      chaosFlowKind = "pending"
)

// chaosFlow is one purchase and its callbacks, as the driver saw them.
type chaosFlow struct {
	i             int
	kind          chaosFlowKind
	key           string
	customer      string
	quantity      int
	licenses      int
	activateFirst bool

	id   string
	last chaosAnswer // answer to the last callback
}

func chaosCount(flows []*chaosFlow, kind chaosFlowKind) int {
	n := 0
	for _, f := range flows {
		if f.kind == kind {
			n++
		}
	}
	return n
}

// drive runs one flow to its end: purchase, resolve, then the callbacks of its kind.
func (cl *chaosClient) drive(ctx context.Context, w *world, f *chaosFlow) error {
	body := fmt.Appendf(nil, `{"customer_id":%q,"offer_id":"analytics","plan_id":"annual","quantity":%d,"nickname":"chaos %d"}`,
		f.customer, f.quantity, f.i)
	r, err := cl.send(ctx, false, func() (*http.Request, error) { return chaosPartnerRequest(w.BaseURL, AdminKey, f.key, body) })
	if err != nil {
		return fmt.Errorf("purchase: %w", err)
	}
	if r.status != http.StatusCreated {
		return fmt.Errorf("purchase: %s", r)
	}
	f.id = r.str("id")
	link, _ := r.body["publisher_link"].(map[string]any)
	code, _ := link["authorization_code"].(string)
	if f.id == "" || code == "" {
		return fmt.Errorf("purchase answer without id or code: %s", r)
	}
	if f.kind == chaosPending && f.i%2 == 0 {
		return nil // the publisher never even looked
	}
	r, err = cl.publisher(ctx, w.BaseURL, "/v1/publisher/resolve", map[string]any{"authorization_code": code}, false)
	if err != nil || r.status != http.StatusOK {
		return fmt.Errorf("resolve: %s %v", r, err)
	}
	if f.kind == chaosPending {
		return nil
	}
	calls := []struct {
		path string
		body map[string]any
	}{
		{"/v1/publisher/subscriptions/" + f.id + "/licenses", map[string]any{"assigned": f.licenses}},
		{"/v1/publisher/subscriptions/" + f.id + "/activate", map[string]any{"site_url": fmt.Sprintf("https://%d.contoso.example", f.i)}},
	}
	switch {
	case f.kind == chaosLicensesOnly:
		calls = calls[:1]
	case f.activateFirst:
		calls[0], calls[1] = calls[1], calls[0]
	}
	for _, c := range calls {
		r, err := cl.publisher(ctx, w.BaseURL, c.path, c.body, true)
		if err != nil || r.status != http.StatusOK {
			return fmt.Errorf("%s: %s %v", c.path, r, err)
		}
		f.last = r
	}
	return nil
}

// chaosClient is a partner's or publisher's integration: it retries what may
// succeed later with the same Idempotency-Key or webhook-id, within a deadline.
type chaosClient struct {
	hc                *http.Client
	retries           atomic.Int64 // requests sent again
	answered          atomic.Int64 // final answers received
	serverErrors      atomic.Int64 // 500s (never expected)
	callbacksInFlight atomic.Int64 // publisher callbacks not yet answered

	mu       sync.Mutex
	causes   map[string]int // why requests were sent again
	slowest  time.Duration  // longest first attempt → final answer
	slowWhat string
}

// noteRetry counts why a request is sent again.
func (cl *chaosClient) noteRetry(a chaosAnswer, err error) {
	cause := fmt.Sprint(a.status, " ", a.str("code"))
	if err != nil {
		cause = "transport error"
		if errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "Client.Timeout") {
			cause = "client timeout"
		}
	}
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if cl.causes == nil {
		cl.causes = map[string]int{}
	}
	cl.causes[cause]++
}

func (cl *chaosClient) noteAnswered(what string, took time.Duration) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if took > cl.slowest {
		cl.slowest, cl.slowWhat = took, what
	}
}

func newChaosClient() *chaosClient {
	return &chaosClient{hc: &http.Client{
		// Shorter than the api's own 30 s wait for a workflow, as many
		// clients are: a request stuck behind an outage times out here and
		// is sent again, while the first may still be running.
		Timeout:   10 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 64, MaxConnsPerHost: 64},
	}}
}

// chaosAnswer is one HTTP answer.
type chaosAnswer struct {
	status int
	header http.Header
	raw    []byte
	body   map[string]any
}

func (a chaosAnswer) String() string { return fmt.Sprintf("%d %s", a.status, a.raw) }

func (a chaosAnswer) str(field string) string {
	v, _ := a.body[field].(string)
	return v
}

// Str matches testenv.Response for shared assertions.
func (a chaosAnswer) Str(field string) string { return a.str(field) }

// retryable tells what a careful client retries.
func chaosRetryable(a chaosAnswer, err error) bool {
	if err != nil {
		return true // connection refused, reset, timeout
	}
	switch a.status {
	case http.StatusServiceUnavailable, http.StatusTooManyRequests, http.StatusBadGateway, http.StatusGatewayTimeout:
		return true
	case http.StatusConflict:
		return a.str("code") == "idempotency_key_in_use"
	}
	return false
}

// send sends the request build makes (again, fresh, on every attempt) until
// the answer is final or two minutes pass.
func (cl *chaosClient) send(ctx context.Context, callback bool, build func() (*http.Request, error)) (chaosAnswer, error) {
	if callback {
		cl.callbacksInFlight.Add(1)
		defer cl.callbacksInFlight.Add(-1)
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	backoff := 100 * time.Millisecond
	began := time.Now()
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			cl.retries.Add(1)
		}
		req, err := build()
		if err != nil {
			return chaosAnswer{}, err
		}
		a, err := cl.do(req.WithContext(ctx))
		if !chaosRetryable(a, err) {
			cl.answered.Add(1)
			cl.noteAnswered(req.URL.Path, time.Since(began))
			if a.status == http.StatusInternalServerError {
				cl.serverErrors.Add(1)
			}
			return a, nil
		}
		cl.noteRetry(a, err)
		wait := backoff/2 + rand.N(backoff/2+1)
		if s, perr := strconv.Atoi(a.header.Get("Retry-After")); perr == nil {
			wait = time.Duration(s) * time.Second
		}
		backoff = min(2*backoff, 2*time.Second)
		select {
		case <-ctx.Done():
			return a, fmt.Errorf("gave up after %d attempts (last: %v %v): %w", attempt+1, a, err, ctx.Err())
		case <-time.After(wait): // a client's retry backoff: nothing to wait for but time
		}
	}
}

func (cl *chaosClient) do(req *http.Request) (chaosAnswer, error) {
	resp, err := cl.hc.Do(req)
	if err != nil {
		return chaosAnswer{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return chaosAnswer{}, err
	}
	a := chaosAnswer{status: resp.StatusCode, header: resp.Header, raw: raw}
	_ = json.Unmarshal(raw, &a.body)
	return a, nil
}

// publisher sends a signed contoso message with one webhook-id, retried with
// a fresh timestamp and signature as Standard Webhooks senders do.
func (cl *chaosClient) publisher(ctx context.Context, base, path string, body any, callback bool) (chaosAnswer, error) {
	raw, err := json.Marshal(body)
	if err != nil {
		return chaosAnswer{}, err
	}
	webhookID := "msg_" + uuid.NewString()
	return cl.send(ctx, callback, func() (*http.Request, error) {
		return chaosSignedRequest(base, "contoso", ContosoSecret, webhookID, path, raw)
	})
}

// partnerRequest builds a purchase with an Idempotency-Key.
func chaosPartnerRequest(base, apiKey, key string, body []byte) (*http.Request, error) {
	req, err := http.NewRequest(http.MethodPost, base+"/v1/subscriptions", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+apiKey)
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	return req, nil
}

// signedRequest builds a publisher message signed now.
func chaosSignedRequest(base, publisherID, secret, webhookID, path string, raw []byte) (*http.Request, error) {
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	sig, err := wh.Sign(webhookID, now, raw)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequest(http.MethodPost, base+path, bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Publisher-Id", publisherID)
	req.Header.Set(standardwebhooks.HeaderWebhookID, webhookID)
	req.Header.Set(standardwebhooks.HeaderWebhookTimestamp, strconv.FormatInt(now.Unix(), 10))
	req.Header.Set(standardwebhooks.HeaderWebhookSignature, sig)
	return req, nil
}

// chaosMonkey kills and restarts workers, and restarts Temporal once, at
// planned points of the driver's progress.
type chaosMonkey struct {
	t           *testing.T
	w           *world
	cl          *chaosClient
	faultBudget int
	actions     []chaosAction

	faulty        *exec.Cmd // the worker carrying the fault point, if any
	kills         int
	faults        int
	starts        int
	restarts      int
	heldCallbacks int64 // callbacks in flight while no worker ran
}

type chaosAction struct {
	at   int64 // answered requests
	what string
}

// plan spreads the SIGKILLs over the first until answers; one of them takes
// every worker down for a while, and the Temporal restart comes midway.
func (m *chaosMonkey) plan(sigkills int, until int64) {
	for range sigkills {
		m.actions = append(m.actions, chaosAction{at: 10 + rand.Int64N(until-10), what: "kill"})
	}
	m.actions = append(m.actions, chaosAction{at: until/3 + rand.Int64N(until/6), what: "all-down"})
	m.actions = append(m.actions, chaosAction{at: until/2 + rand.Int64N(until/6), what: "restart-temporal"})
	slices.SortFunc(m.actions, func(a, b chaosAction) int { return int(a.at - b.at) })
}

func (m *chaosMonkey) run(ctx context.Context, driverDone <-chan struct{}) {
	m.faulty = m.startWorker(true)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	next := 0
	for {
		select {
		case <-driverDone:
			return
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		m.replaceExited()
		if next < len(m.actions) && m.cl.answered.Load() >= m.actions[next].at {
			m.act(ctx, m.actions[next].what)
			next++
		}
	}
}

// replaceExited replaces workers that ended by themselves: the faulty one by
// its fault point (status 137), any other would be a crash.
func (m *chaosMonkey) replaceExited() {
	for _, cmd := range m.w.Workers() {
		select {
		case <-m.w.Exited(cmd): // nil for the stack's first worker: never ready
		default:
			continue
		}
		code := cmd.ProcessState.ExitCode()
		m.w.KillWorker(cmd) // forget it
		if cmd == m.faulty && code == 137 {
			m.faults++
		} else {
			m.t.Errorf("a worker exited by itself with status %d:\n%s", code, chaosTail(m.w.Logs(), 3000))
		}
		m.replace(cmd == m.faulty)
	}
}

// replace starts a worker in place of one that ended; the faulty kind while
// the fault budget lasts.
func (m *chaosMonkey) replace(wasFaulty bool) {
	if wasFaulty {
		m.faulty = nil
		if m.faults < m.faultBudget {
			m.faulty = m.startWorker(true)
			return
		}
	}
	m.startWorker(false)
}

func (m *chaosMonkey) startWorker(faulty bool) *exec.Cmd {
	m.starts++
	if faulty {
		return m.w.StartWorkerWithEnv("FAULT_EXIT_AFTER_CHARGE=1")
	}
	return m.w.StartWorkerWithEnv()
}

// kill SIGKILLs one worker; it reports whether the victim was the faulty one.
func (m *chaosMonkey) kill(victim *exec.Cmd) bool {
	m.replaceExited() // one that already ended is not killed
	if !slices.Contains(m.w.Workers(), victim) {
		return false
	}
	m.w.KillWorker(victim)
	m.kills++
	return victim == m.faulty
}

func (m *chaosMonkey) act(ctx context.Context, what string) {
	switch what {
	case "kill":
		workers := m.w.Workers()
		victim := workers[rand.N(len(workers))]
		if wasFaulty, alive := m.kill(victim), slices.Contains(m.w.Workers(), victim); !alive {
			m.replace(wasFaulty)
		}
	case "all-down":
		down := 0
		faultyDown := false
		for _, victim := range m.w.Workers() {
			faultyDown = m.kill(victim) || faultyDown
			down++
		}
		// Nothing runs workflow tasks now: wait until callbacks pile up
		// behind the outage, then bring the workers back.
		deadline := time.Now().Add(10 * time.Second)
		for m.cl.callbacksInFlight.Load() < 4 && time.Now().Before(deadline) && ctx.Err() == nil {
			time.Sleep(20 * time.Millisecond)
		}
		m.heldCallbacks = m.cl.callbacksInFlight.Load()
		m.t.Logf("chaos: all %d workers down with %d callbacks waiting", down, m.heldCallbacks)
		for i := range down {
			m.replace(i == 0 && faultyDown)
		}
	case "restart-temporal":
		began := time.Now()
		if err := m.w.Temporal.Restart(ctx); err != nil {
			m.t.Errorf("restart Temporal: %v", err)
			return
		}
		m.restarts++
		m.t.Logf("chaos: Temporal dev server restarted on its database file in %s", time.Since(began).Round(time.Millisecond))
	}
}

func chaosTail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
