package main

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/lib/pq"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	taskqueuepb "go.temporal.io/api/taskqueue/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/partnerhub/fulfillment/domain"
	"github.com/partnerhub/fulfillment/e2e"
	"github.com/partnerhub/fulfillment/workflows"
)

// The renewal phase's plan: a term of one hour, so each subscription's first
// term (set by the loader) ends at the wave and its second term ends long
// after the phase.
const (
	wavePlanID   = "bench-wave"
	wavePlanTerm = "PT1H"
	waveQuantity = 5
	wavePrice    = 1000
)

// renewalOptions are the renewal phase's flags.
type renewalOptions struct {
	n           int
	lead        time.Duration // from the start of the load to the wave (0: automatic)
	sample      int           // subscriptions checked (ledger, history) and PATCHed during the wave
	timeout     time.Duration // longest wait for the wave to finish
	concurrency int           // workflow starts in flight
	pprof       bool          // CPU-profile worker and api during the wave
	out         string        // where the profiles go
}

// waveSample is one point of the wave's timeline.
type waveSample struct {
	at                 time.Duration // since the wave (the term end)
	renewed            int
	wfBacklog, wfAge   int64 // workflow task queue: approximate backlog, its age in ms
	actBacklog, actAge int64
	wfAdd, wfDispatch  float32 // tasks per second added / dispatched (workflow queue)
	rss                float64 // worker VmRSS MiB
	workerCPU          time.Duration
}

type renewalResult struct {
	n, started, startErrors int
	startRate               float64
	loadTook                time.Duration
	lead                    time.Duration
	loadEndedBeforeWave     bool
	waveAt                  time.Time
	timeline                []waveSample
	allRenewedAfter         time.Duration // from the wave to the last renewal seen in the read model
	renewed                 int
	drainedAfter            time.Duration // from the wave until both backlogs read 0 after the last renewal (-1: never within the watch)
	rssBefore, rssPeak      float64
	cpu                     []time.Duration // per process (base procs) over the wave
	cpuNames                []string
	logErrors, logWarns     int
	lastLogError            string
	// PATCH nickname during the wave.
	patches, patchErrors int
	failedPatchApplied   int // PATCHes answered with an error whose nickname is in the read model after the wave
	patch                samples
	lastPatchErr         string
	// history of the renewing run of sampled subscriptions. rearmed: the run
	// renewed in place and started its term-2 timer; continued: it continued
	// as new after the renewal (the renewal path before renewInPlace, or
	// Temporal's suggestion), continuedRuns of them.
	timerLag, written, rearmed, continued, wftStart samples
	continuedRuns                                   int
	historyErrors                                   int
	activityRetries                                 int
	wftTimeouts, wftTimeoutRuns                     int // WorkflowTaskTimedOut events (a sticky task not picked up in time moves to the normal queue)
	// ledger and read model of sampled subscriptions.
	checked, ledgerOK, readModelOK, nicknameOK, patchedChecked int
	ledgerProblems                                             []string
	// after the wave.
	running        int64 // running workflows of the phase (visibility count)
	describeOK     int   // sampled: the renewing run itself, no pending workflow task or activity, waiting on the term-2 timer
	describeNewRun int   // sampled: the current run is another one (the renewing run continued as new)
	describeChecks int
}

// runRenewal loads n active subscriptions whose first term ends together,
// then measures the renewal wave.
func runRenewal(ctx context.Context, c client.Client, s *stack, dbURL string, ps procs, o renewalOptions) (*renewalResult, error) {
	r := &renewalResult{n: o.n}
	db, err := sql.Open("postgres", dbURL)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	db.SetMaxOpenConns(4)
	if _, err := db.ExecContext(ctx, `
		INSERT INTO plans (offer_id, id, name, term, unit_price_minor, currency, min_quantity, max_quantity,
			cancellation_window, activation_deadline)
		VALUES ('analytics', $1, 'Bench renewal wave', $2, $3, 'USD', 1, 100, 'PT1M', 'P30D')
		ON CONFLICT DO NOTHING`, wavePlanID, wavePlanTerm, wavePrice); err != nil {
		return nil, fmt.Errorf("wave plan: %w", err)
	}
	plan := domain.Plan{
		ID: wavePlanID, OfferID: "analytics", Name: "Bench renewal wave", Term: wavePlanTerm, UnitPriceMinor: wavePrice,
		Currency: "USD", MinQuantity: 1, MaxQuantity: 100, CancellationWindow: "PT1M", ActivationDeadline: "P30D",
		PaymentGracePeriod: domain.DefaultPaymentGracePeriod,
	}
	r.lead = o.lead
	if r.lead <= 0 {
		r.lead = 30*time.Second + time.Duration(o.n)*20*time.Millisecond
	}
	loadStart := time.Now()
	r.waveAt = loadStart.Add(r.lead).UTC().Truncate(time.Second)
	termEnd := r.waveAt
	termStart := termEnd.Add(-time.Hour)
	if !domain.MustAdd(termStart, wavePlanTerm).Equal(termEnd) {
		return nil, fmt.Errorf("wave plan term %s is not one hour", wavePlanTerm)
	}
	created := termStart.Add(-time.Minute)
	window := domain.MustAdd(termStart, plan.CancellationWindow)
	ids := make([]string, o.n)
	subs := make([]domain.Subscription, o.n)
	for i := range o.n {
		id := fmt.Sprintf("wave-%06d", i)
		ids[i] = id
		site := "https://woodgrove.contoso.example"
		subs[i] = domain.Subscription{
			ID: id, PartnerID: "fabrikam", CustomerID: "woodgrove", PublisherID: "contoso", OfferID: "analytics",
			PlanID: wavePlanID, Quantity: waveQuantity, AutoRenew: true, LinkedSubscriptionIDs: []string{},
			EntitlementNumber: domain.EntitlementNumber(id), SiteURL: &site, LicensesAssigned: 3, FulfillmentConfirmed: true,
			Status: domain.StatusActive, TermNumber: 1, ActivationDeadline: domain.MustAdd(created, plan.ActivationDeadline),
			BillingStartedAt: &termStart, TermStart: &termStart, TermEnd: &termEnd, CancellationWindowEndsAt: &window,
			CreatedAt: created, UpdatedAt: termStart, Version: 3,
		}
	}
	if err := copyWave(ctx, db, subs, plan); err != nil {
		return nil, err
	}
	logf("renewal: %d read-model rows and term-1 charges COPYed in %s; starting their workflows (wave at %s)",
		o.n, time.Since(loadStart).Round(time.Millisecond), r.waveAt.Format("15:04:05"))

	// The workflows, started directly with the state an activated
	// subscription has: recorded, active, term 1 billed.
	runIDs := make([]string, o.n)
	var next, startErrs atomic.Int64
	var lastStartErr atomic.Value
	var wg sync.WaitGroup
	t0 := time.Now()
	for range o.concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= o.n {
					return
				}
				sub := subs[i]
				in := workflows.NewState(sub, plan, workflows.Actor{Kind: "agent", ID: "fabrikam/alice"})
				in.Recorded, in.TermBilledMinor, in.EventSeq = true, wavePrice*waveQuantity, 4
				run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
					ID: workflows.WorkflowID(sub.ID), TaskQueue: s.taskQueue,
					WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
					TypedSearchAttributes: workflows.SearchAttributes(sub),
					Memo:                  workflows.Memo(sub, plan),
				}, workflows.SubscriptionWorkflow, in)
				if err != nil {
					startErrs.Add(1)
					lastStartErr.Store(err.Error())
					continue
				}
				runIDs[i] = run.GetRunID()
			}
		}()
	}
	wg.Wait()
	r.loadTook = time.Since(loadStart)
	r.startErrors = int(startErrs.Load())
	r.started = o.n - r.startErrors
	r.startRate = float64(r.started) / time.Since(t0).Seconds()
	r.loadEndedBeforeWave = time.Now().Before(r.waveAt)
	if e, ok := lastStartErr.Load().(string); ok {
		logf("renewal: last start error: %s", e)
	}
	logf("renewal: %d workflows started at %.1f/s (%d errors); load took %s; the wave is at %s",
		r.started, r.startRate, r.startErrors, r.loadTook.Round(time.Second), r.waveAt.Format("15:04:05"))
	if !r.loadEndedBeforeWave {
		logf("renewal: WARNING the load ended %s after the wave began (raise -renewal-lead)", time.Since(r.waveAt).Round(time.Second))
	}

	// Wait for the wave.
	if d := time.Until(r.waveAt.Add(-2 * time.Second)); d > 0 {
		select {
		case <-ctx.Done():
			return r, ctx.Err()
		case <-time.After(d):
		}
	}
	if o.pprof && s.workerPprof != "" {
		// A CPU profile of worker and api 30 s into the wave, for 30 s.
		go func() {
			time.Sleep(time.Until(r.waveAt.Add(30 * time.Second)))
			for _, p := range []struct{ addr, file string }{{s.apiPprof, "api.renewal.cpu.pprof"}, {s.workerPprof, "worker.renewal.cpu.pprof"}} {
				go func() {
					if err := profile(ctx, p.addr, 30, filepath.Join(o.out, p.file)); err != nil {
						logf("profile: %v", err)
					}
				}()
			}
		}()
	}
	logSize := fileSize(s.logFile.Name())
	cpuStart := ps.snapshot()
	for _, p := range ps {
		r.cpuNames = append(r.cpuNames, p.name)
	}

	// PATCH nickname to a sample while the wave runs.
	picks := rand.Perm(o.n)[:min(o.sample, o.n)]
	nicknames := map[string]string{} // answered 200
	sent := map[string]string{}      // every PATCH sent
	var patchMu sync.Mutex
	var patchWG sync.WaitGroup
	patchNext := atomic.Int64{}
	for range 4 {
		patchWG.Add(1)
		go func() {
			defer patchWG.Done()
			if d := time.Until(r.waveAt); d > 0 {
				time.Sleep(d)
			}
			for ctx.Err() == nil {
				i := int(patchNext.Add(1)) - 1
				if i >= len(picks) {
					return
				}
				id := ids[picks[i]]
				if runIDs[picks[i]] == "" {
					continue
				}
				nick := "wave " + uuid.NewString()[:8]
				req := s.partner(http.MethodPatch, "/v1/subscriptions/"+id, e2e.AdminKey, map[string]any{"nickname": nick})
				req.Header.Set("Idempotency-Key", uuid.NewString())
				t := time.Now()
				a, err := s.do(ctx, req)
				patchMu.Lock()
				r.patches++
				sent[id] = nick
				if err == nil {
					if got, _ := a.body["nickname"].(string); got != nick {
						err = fmt.Errorf("PATCH %s answered nickname %q, sent %q", id, got, nick)
					}
				}
				if err != nil {
					r.patchErrors++
					r.lastPatchErr = err.Error()
				} else {
					r.patch.add(time.Since(t))
					nicknames[id] = nick
				}
				patchMu.Unlock()
			}
		}()
	}

	// Sample the wave once a second until every started subscription is
	// renewed (or the timeout), then watch the backlog drain.
	wfTQ, actTQ := s.taskQueue, s.taskQueue
	describe := func(tq string, typ enumspb.TaskQueueType) (backlog, ageMs int64, add, dispatch float32) {
		dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		resp, err := c.WorkflowService().DescribeTaskQueue(dctx, &workflowservice.DescribeTaskQueueRequest{
			Namespace: "default", TaskQueue: &taskqueuepb.TaskQueue{Name: tq, Kind: enumspb.TASK_QUEUE_KIND_NORMAL}, TaskQueueType: typ, ReportStats: true,
		})
		if err != nil || resp.GetStats() == nil {
			return -1, -1, 0, 0
		}
		st := resp.GetStats()
		return st.GetApproximateBacklogCount(), st.GetApproximateBacklogAge().AsDuration().Milliseconds(), st.GetTasksAddRate(), st.GetTasksDispatchRate()
	}
	renewedCount := func() int {
		var n int
		_ = db.QueryRowContext(ctx, `SELECT count(*) FROM subscriptions WHERE plan_id = $1 AND term_number >= 2`, wavePlanID).Scan(&n)
		return n
	}
	deadline := r.waveAt.Add(o.timeout)
	var lastRenewalSeen time.Time
	drainedAt := time.Time{}
	watchAfter := 30 * time.Second
	prev := -1
	for ctx.Err() == nil {
		now := time.Now()
		smp := waveSample{at: now.Sub(r.waveAt), renewed: renewedCount()}
		smp.wfBacklog, smp.wfAge, smp.wfAdd, smp.wfDispatch = describe(wfTQ, enumspb.TASK_QUEUE_TYPE_WORKFLOW)
		smp.actBacklog, smp.actAge, _, _ = describe(actTQ, enumspb.TASK_QUEUE_TYPE_ACTIVITY)
		_, smp.rss = rss(s.worker.Process.Pid)
		smp.workerCPU = cpuTime(s.worker.Process.Pid)
		r.rssPeak = max(r.rssPeak, smp.rss)
		if len(r.timeline) == 0 {
			r.rssBefore = smp.rss // 2 s before the wave
		}
		r.timeline = append(r.timeline, smp)
		if smp.renewed != prev {
			if smp.renewed > prev && prev >= 0 {
				lastRenewalSeen = now
			}
			prev = smp.renewed
		}
		if len(r.timeline)%5 == 1 {
			logf("renewal: t=%s renewed %d/%d, wf backlog %d (age %d ms), activity backlog %d, worker RSS %.0f MiB",
				smp.at.Round(time.Second), smp.renewed, r.started, smp.wfBacklog, smp.wfAge, smp.actBacklog, smp.rss)
		}
		if smp.renewed >= r.started {
			if r.allRenewedAfter == 0 {
				r.allRenewedAfter = lastRenewalSeen.Sub(r.waveAt)
				r.cpu = diff(ps.snapshot(), cpuStart)
			}
			if drainedAt.IsZero() && smp.wfBacklog == 0 && smp.actBacklog == 0 {
				drainedAt = now
			}
			// Watch the backlog drain (the renewals' last workflow tasks,
			// which start the term-2 timers), at least watchAfter past the
			// last renewal.
			if now.Sub(lastRenewalSeen) > watchAfter && !drainedAt.IsZero() && now.Sub(drainedAt) > 10*time.Second {
				break
			}
		}
		if now.After(deadline) {
			logf("renewal: timeout: %d of %d renewed after %s", smp.renewed, r.started, o.timeout)
			r.cpu = diff(ps.snapshot(), cpuStart)
			break
		}
		time.Sleep(time.Until(now.Add(time.Second)))
	}
	r.renewed = prev
	if !drainedAt.IsZero() {
		r.drainedAfter = drainedAt.Sub(r.waveAt)
	} else {
		r.drainedAfter = -1
	}
	patchWG.Wait()
	r.logErrors, r.logWarns, r.lastLogError = countLogLevels(s.logFile.Name(), logSize)

	// History of the renewing run (the first run) of sampled subscriptions.
	for _, i := range picks {
		if runIDs[i] == "" {
			continue
		}
		if err := r.readHistory(ctx, c, workflows.WorkflowID(ids[i]), runIDs[i]); err != nil {
			r.historyErrors++
		}
	}
	// Ledger and read model of the same sample.
	for _, i := range picks {
		if runIDs[i] == "" {
			continue
		}
		r.checkLedger(ctx, db, subs[i], plan, nicknames)
	}
	// A PATCH answered 503 "may still take effect": did it?
	for id, nick := range sent {
		if _, ok := nicknames[id]; ok {
			continue
		}
		var got sql.NullString
		if err := db.QueryRowContext(ctx, `SELECT nickname FROM subscriptions WHERE id = $1`, id).Scan(&got); err == nil && got.String == nick {
			r.failedPatchApplied++
		}
	}
	// Anything left behind: running workflows of the phase and, for the
	// sample, the current run's pending work.
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	if resp, err := c.CountWorkflow(cctx, &workflowservice.CountWorkflowExecutionsRequest{
		Namespace: "default",
		Query:     fmt.Sprintf("TaskQueue = %q AND ExecutionStatus = 'Running' AND WorkflowId STARTS_WITH 'subscription/wave-'", s.taskQueue),
	}); err == nil {
		r.running = resp.GetCount()
	} else {
		r.running = -1
		logf("renewal: count workflows: %v", err)
	}
	cancel()
	for _, i := range picks {
		if runIDs[i] == "" {
			continue
		}
		r.describeChecks++
		d, err := c.DescribeWorkflowExecution(ctx, workflows.WorkflowID(ids[i]), "")
		if err != nil {
			continue
		}
		info := d.GetWorkflowExecutionInfo()
		if info.GetExecution().GetRunId() != runIDs[i] {
			r.describeNewRun++
			continue
		}
		// Renewed in place: the run that renewed waits for term 2's end.
		if d.GetPendingWorkflowTask() == nil && len(d.GetPendingActivities()) == 0 &&
			info.GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
			r.describeOK++
		}
	}
	return r, nil
}

// copyWave writes the read-model rows and their term-1 charges with COPY.
func copyWave(ctx context.Context, db *sql.DB, subs []domain.Subscription, plan domain.Plan) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	stmt, err := tx.PrepareContext(ctx, pq.CopyIn("subscriptions",
		"id", "partner_id", "customer_id", "publisher_id", "offer_id", "plan_id", "quantity", "auto_renew",
		"entitlement_number", "site_url", "licenses_assigned", "fulfillment_confirmed", "status", "term_number",
		"activation_deadline", "billing_started_at", "term_start", "term_end", "cancellation_window_ends_at",
		"created_at", "updated_at", "version"))
	if err != nil {
		return fmt.Errorf("copy wave subscriptions: %w", err)
	}
	for _, s := range subs {
		if _, err := stmt.ExecContext(ctx, s.ID, s.PartnerID, s.CustomerID, s.PublisherID, s.OfferID, s.PlanID, s.Quantity,
			s.AutoRenew, s.EntitlementNumber, *s.SiteURL, s.LicensesAssigned, s.FulfillmentConfirmed, string(s.Status),
			s.TermNumber, s.ActivationDeadline, *s.BillingStartedAt, *s.TermStart, *s.TermEnd, *s.CancellationWindowEndsAt,
			s.CreatedAt, s.UpdatedAt, s.Version); err != nil {
			return fmt.Errorf("copy %s: %w", s.ID, err)
		}
	}
	if _, err := stmt.ExecContext(ctx); err != nil {
		return err
	}
	if err := stmt.Close(); err != nil {
		return err
	}
	stmt, err = tx.PrepareContext(ctx, pq.CopyIn("ledger",
		"id", "subscription_id", "term_number", "kind", "amount_minor", "currency", "period_start", "period_end", "created_at"))
	if err != nil {
		return fmt.Errorf("copy wave ledger: %w", err)
	}
	for _, s := range subs {
		if _, err := stmt.ExecContext(ctx, fmt.Sprintf("charge:%s:1", s.ID), s.ID, 1, domain.LedgerCharge,
			plan.UnitPriceMinor*int64(s.Quantity), plan.Currency, *s.TermStart, *s.TermEnd, *s.TermStart); err != nil {
			return err
		}
	}
	if _, err := stmt.ExecContext(ctx); err != nil {
		return err
	}
	if err := stmt.Close(); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	_, err = db.ExecContext(ctx, `ANALYZE subscriptions; ANALYZE ledger`)
	return err
}

// readHistory reads the first run's history: when the term-end timer fired
// after the wave, when the renewal write completed, when the run started its
// term-2 timer (renewed in place) or continued as new, and the workflow
// tasks' schedule-to-start latency.
func (r *renewalResult) readHistory(ctx context.Context, c client.Client, id, runID string) error {
	it := c.GetWorkflowHistory(ctx, id, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	var events []*historypb.HistoryEvent
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			return err
		}
		events = append(events, e)
	}
	var fired time.Time
	rearmed := false
	scheduled := map[int64]time.Time{}
	timeouts := 0
	defer func() {
		r.wftTimeouts += timeouts
		if timeouts > 0 {
			r.wftTimeoutRuns++
		}
	}()
	for _, e := range events {
		at := e.GetEventTime().AsTime()
		switch e.GetEventType() {
		case enumspb.EVENT_TYPE_TIMER_FIRED:
			if fired.IsZero() {
				fired = at
				r.timerLag.add(max(at.Sub(r.waveAt), time.Microsecond))
			}
		case enumspb.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT:
			if !fired.IsZero() {
				timeouts++
			}
		case enumspb.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED:
			scheduled[e.GetEventId()] = at
		case enumspb.EVENT_TYPE_WORKFLOW_TASK_STARTED:
			if s, ok := scheduled[e.GetWorkflowTaskStartedEventAttributes().GetScheduledEventId()]; ok && !fired.IsZero() {
				r.wftStart.add(max(at.Sub(s), time.Microsecond))
			}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED:
			if a := e.GetActivityTaskStartedEventAttributes().GetAttempt(); a > 1 {
				r.activityRetries += int(a - 1)
			}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
			if !fired.IsZero() {
				r.written.add(max(at.Sub(fired), time.Microsecond))
			}
		case enumspb.EVENT_TYPE_TIMER_STARTED:
			if !fired.IsZero() && !rearmed {
				rearmed = true
				r.rearmed.add(max(at.Sub(fired), time.Microsecond))
			}
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
			if !fired.IsZero() {
				r.continuedRuns++
				r.continued.add(max(at.Sub(fired), time.Microsecond))
			}
		}
	}
	if fired.IsZero() {
		return fmt.Errorf("%s: no timer fired", id)
	}
	return nil
}

// checkLedger compares a renewed subscription's ledger and read-model row
// with what the loader wrote plus what the renewal must have added.
func (r *renewalResult) checkLedger(ctx context.Context, db *sql.DB, s domain.Subscription, plan domain.Plan, nicknames map[string]string) {
	r.checked++
	type line struct {
		id         string
		term       int
		kind       string
		amount     int64
		currency   string
		start, end time.Time
	}
	amount := plan.UnitPriceMinor * int64(s.Quantity)
	term2End := domain.MustAdd(*s.TermEnd, plan.Term)
	want := []line{
		{fmt.Sprintf("charge:%s:1", s.ID), 1, domain.LedgerCharge, amount, plan.Currency, s.TermStart.UTC(), s.TermEnd.UTC()},
		{fmt.Sprintf("charge:%s:2", s.ID), 2, domain.LedgerCharge, amount, plan.Currency, s.TermEnd.UTC(), term2End.UTC()},
	}
	rows, err := db.QueryContext(ctx, `SELECT id, term_number, kind, amount_minor, currency, period_start, period_end
		FROM ledger WHERE subscription_id = $1 ORDER BY term_number, id`, s.ID)
	if err != nil {
		r.ledgerProblems = append(r.ledgerProblems, s.ID+": "+err.Error())
		return
	}
	var got []line
	for rows.Next() {
		var l line
		if err := rows.Scan(&l.id, &l.term, &l.kind, &l.amount, &l.currency, &l.start, &l.end); err == nil {
			l.start, l.end = l.start.UTC(), l.end.UTC()
			got = append(got, l)
		}
	}
	rows.Close()
	equal := slices.EqualFunc(got, want, func(a, b line) bool {
		return a.id == b.id && a.term == b.term && a.kind == b.kind && a.amount == b.amount && a.currency == b.currency &&
			a.start.Equal(b.start) && a.end.Equal(b.end)
	})
	if equal {
		r.ledgerOK++
	} else if len(r.ledgerProblems) < 5 {
		r.ledgerProblems = append(r.ledgerProblems, fmt.Sprintf("%s: ledger %+v, want %+v", s.ID, got, want))
	}
	var term int
	var status string
	var termStart, termEnd time.Time
	var nickname sql.NullString
	if err := db.QueryRowContext(ctx, `SELECT term_number, status, term_start, term_end, nickname FROM subscriptions WHERE id = $1`, s.ID).
		Scan(&term, &status, &termStart, &termEnd, &nickname); err != nil {
		return
	}
	if term == 2 && status == string(domain.StatusActive) && termStart.Equal(*s.TermEnd) && termEnd.Equal(term2End) {
		r.readModelOK++
	} else if len(r.ledgerProblems) < 5 {
		r.ledgerProblems = append(r.ledgerProblems, fmt.Sprintf("%s: read model term %d %s %s–%s", s.ID, term, status, termStart, termEnd))
	}
	if nick, ok := nicknames[s.ID]; ok {
		r.patchedChecked++
		if nickname.Valid && nickname.String == nick {
			r.nicknameOK++
		}
	}
}

func diff(a, b []time.Duration) []time.Duration {
	out := make([]time.Duration, len(a))
	for i := range a {
		out[i] = a[i] - b[i]
	}
	return out
}

func fileSize(name string) int64 {
	fi, err := os.Stat(name)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// countLogLevels counts the service's JSON log lines at ERROR and WARN
// written after offset.
func countLogLevels(name string, offset int64) (errs, warns int, last string) {
	f, err := os.Open(name)
	if err != nil {
		return 0, 0, ""
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return 0, 0, ""
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.Contains(line, `"level":"ERROR"`):
			errs++
			last = line
		case strings.Contains(line, `"level":"WARN"`):
			warns++
			if last == "" {
				last = line
			}
		}
	}
	if len(last) > 400 {
		last = last[:400] + "…"
	}
	return errs, warns, last
}

func printRenewal(w io.Writer, r *renewalResult, cacheSize string) {
	if cacheSize == "" {
		cacheSize = "SDK default (10,000)"
	}
	fmt.Fprintf(w, "\nrenewal wave: %d active subscriptions (plan term %s, %d seats × %d), every first term ending at %s; worker sticky cache %s\n",
		r.n, wavePlanTerm, waveQuantity, wavePrice, r.waveAt.Format("15:04:05"), cacheSize)
	fmt.Fprintf(w, "  load: read model + term-1 charges COPYed, %d workflows started directly at %.1f/s (%d errors); took %s (lead %s; ended before the wave: %v)\n",
		r.started, r.startRate, r.startErrors, r.loadTook.Round(time.Second), r.lead, r.loadEndedBeforeWave)
	fmt.Fprintf(w, "  renewed (term_number 2 in the read model): %d of %d; the last %s after the term end\n",
		r.renewed, r.started, r.allRenewedAfter.Round(100*time.Millisecond))
	if r.drainedAfter >= 0 {
		fmt.Fprintf(w, "  task queue backlog (workflow + activity, normal queue) read 0 at %s after the term end (%s after the last renewal)\n",
			r.drainedAfter.Round(time.Second), (r.drainedAfter - r.allRenewedAfter).Round(time.Second))
	} else {
		fmt.Fprintln(w, "  task queue backlog never read 0 during the watch (-renewal-timeout)")
	}
	fmt.Fprintf(w, "  worker RSS: %.0f MiB 2 s before the wave, peak %.0f MiB during it\n", r.rssBefore, r.rssPeak)
	if len(r.cpu) > 0 && r.renewed > 0 {
		fmt.Fprint(w, "  CPU over the wave (s; ms per renewal):")
		for i, d := range r.cpu {
			fmt.Fprintf(w, " %s %.1f (%.1f)", r.cpuNames[i], d.Seconds(), float64(d.Milliseconds())/float64(r.renewed))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "  service log during the wave: %d ERROR, %d WARN lines\n", r.logErrors, r.logWarns)
	if r.lastLogError != "" {
		fmt.Fprintf(w, "    last: %s\n", r.lastLogError)
	}
	fmt.Fprintf(w, "  PATCH nickname during the wave: %d sent, %d errors (%d of them applied after all); answered: p50 %s ms, p99 %s ms, max %s ms\n",
		r.patches, r.patchErrors, r.failedPatchApplied, ms(r.patch.pct(50)), ms(r.patch.pct(99)), ms(r.patch.pct(100)))
	if r.lastPatchErr != "" {
		fmt.Fprintf(w, "    last error: %s\n", r.lastPatchErr)
	}
	fmt.Fprintf(w, "  histories of %d sampled renewing runs (%d unreadable; %d activity retries; %d workflow task timeouts in %d runs; renewed in place: %d, continued as new after the term end: %d): ms p50 / p99 / max\n",
		r.timerLag.count(), r.historyErrors, r.activityRetries, r.wftTimeouts, r.wftTimeoutRuns, r.rearmed.count(), r.continuedRuns)
	for _, x := range []struct {
		name string
		s    *samples
	}{{"term end → TimerFired", &r.timerLag}, {"TimerFired → renewal written (ActivityTaskCompleted)", &r.written},
		{"TimerFired → term-2 TimerStarted (same run)", &r.rearmed}, {"TimerFired → ContinuedAsNew", &r.continued},
		{"workflow task schedule-to-start after the timer", &r.wftStart}} {
		fmt.Fprintf(w, "    %-52s %8s %8s %8s\n", x.name, ms(x.s.pct(50)), ms(x.s.pct(99)), ms(x.s.pct(100)))
	}
	fmt.Fprintf(w, "  sample check: ledger exactly charge:<id>:1 (loaded) + charge:<id>:2 (renewal) %d/%d; read model term 2 with the right dates %d/%d; PATCHed nickname kept %d/%d\n",
		r.ledgerOK, r.checked, r.readModelOK, r.checked, r.nicknameOK, r.patchedChecked)
	for _, p := range r.ledgerProblems {
		fmt.Fprintf(w, "    %s\n", p)
	}
	fmt.Fprintf(w, "  after the wave: %d wave workflows running (visibility); sampled renewing runs idle on the term-2 timer (same run, no pending task or activity): %d/%d; sampled that moved to a new run: %d\n",
		r.running, r.describeOK, r.describeChecks, r.describeNewRun)
	fmt.Fprintln(w, "  timeline (t from the term end; backlog = approximate count of the normal task queue; age ms; rates tasks/s):")
	fmt.Fprintf(w, "    %7s %8s %9s %7s %8s %7s %7s %7s %8s %9s\n", "t s", "renewed", "wf backlog", "wf age", "act backl", "act age", "wf add", "wf disp", "RSS MiB", "worker s")
	var cpu0 time.Duration
	if len(r.timeline) > 0 {
		cpu0 = r.timeline[0].workerCPU
	}
	step := max(5, len(r.timeline)/40)
	for i, p := range r.timeline {
		if i%step != 0 && i != len(r.timeline)-1 && !(i > 0 && r.timeline[i-1].renewed < r.started && p.renewed >= r.started) {
			continue
		}
		fmt.Fprintf(w, "    %7.0f %8d %9d %7d %8d %7d %7.1f %7.1f %8.0f %9.1f\n", p.at.Seconds(), p.renewed, p.wfBacklog, p.wfAge,
			p.actBacklog, p.actAge, p.wfAdd, p.wfDispatch, p.rss, (p.workerCPU - cpu0).Seconds())
	}
}
