package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
)

// Call kinds of one purchase flow, in order.
var callKinds = []string{"purchase", "resolve", "licenses", "activate"}

// flow runs one purchase → active and reports its workflow id; timed records
// the latency of each call it makes.
type flow func(ctx context.Context, timed func(kind string, d time.Duration)) (workflowID string, err error)

// result is one measured phase.
type result struct {
	name string
	load string
	// flows counts the flows completed within the recorded window, whenever
	// they started: the phase's steady-state throughput is flows / elapsed,
	// and every per-flow figure (CPU, transactions, engine calls) divides by
	// it. Flows still in flight when the window closes finish unrecorded, so
	// a phase's tail (the in-flight flows draining after its end) weighs on
	// neither its rate nor its CPU.
	flows    int64
	started  int64 // flows started within the window: the latency samples
	errors   int64
	from, to time.Time     // the recorded window
	elapsed  time.Duration // its length
	latency  samples       // purchase → active of the flows started in the window (open loop: from the scheduled arrival)
	arrivals float64       // open loop: flows started per second (0: a closed loop)
	calls    map[string]*samples
	ids      []string // a sample of completed flows' workflow ids
	idsMu    sync.Mutex
	lastErr  atomic.Value
	// From GetWorkflowHistory over ids.
	events, tasks, activities float64
	// normalTasks: workflow tasks per flow scheduled on the task queue itself
	// rather than the worker's sticky queue (each hands the worker the whole
	// history to replay, and makes the engine read it)
	normalTasks float64
	eventTypes  []string // one flow's history, in order, each with its time after the first event
	// Per sampled flow, the time its history spent in each segment, summed
	// over its workflow tasks and activities (segmentNames).
	segments [len(segmentNames)]samples
	// CPU time of each process over the recorded part of the phase.
	procs    procs
	cpuStart []time.Duration
	cpu      []time.Duration
	// sessions counts PostgreSQL sessions opened on the service's database
	// (pg_stat_database.sessions); nil for the ceiling.
	sessions             func() (sessions, xacts int64)
	sessionsStart, opens int64
	xactsStart, xacts    int64
	// engine reads the Temporal server's request counters (testenv.EngineCounters);
	// nil when unknown.
	engine                 func() map[string]float64
	engineStart, engineEnd map[string]float64
}

// measuring marks the start of the recorded part; measured its end.
func (r *result) measuring() {
	r.cpuStart = r.procs.snapshot()
	if r.engine != nil {
		r.engineStart = r.engine()
	}
	if r.sessions != nil {
		r.sessionsStart, r.xactsStart = r.sessions()
	}
}

func (r *result) measured() {
	if r.engine != nil && r.engineStart != nil {
		r.engineEnd = r.engine()
	}
	if r.sessions != nil {
		opens, xacts := r.sessions()
		r.opens, r.xacts = opens-r.sessionsStart, xacts-r.xactsStart
	}
	end := r.procs.snapshot()
	r.cpu = make([]time.Duration, len(end))
	for i := range end {
		if r.cpuStart != nil {
			r.cpu[i] = end[i] - r.cpuStart[i]
		}
	}
}

// cpuPerFlow is a process's CPU milliseconds per recorded flow.
func (r *result) cpuPerFlow(i int) float64 {
	if r.flows == 0 || i >= len(r.cpu) {
		return 0
	}
	return float64(r.cpu[i]) / float64(time.Millisecond) / float64(r.flows)
}

func newResult(name, load string) *result {
	r := &result{name: name, load: load, calls: map[string]*samples{}}
	for _, k := range callKinds {
		r.calls[k] = &samples{}
	}
	return r
}

func (r *result) rate() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.flows) / r.elapsed.Seconds()
}

// behind says when an open loop completed fewer flows than arrived (by more
// than 5 %): its rate was beyond the service, so its latencies are mostly
// queueing and say little about the calls themselves.
func (r *result) behind() string {
	if r.arrivals <= 0 || r.rate() >= 0.95*r.arrivals {
		return ""
	}
	return fmt.Sprintf("  %s fell behind: %.1f flows/s completed of %.1f/s arriving — a rate beyond the service here, so its latencies are queueing", r.name, r.rate(), r.arrivals)
}

// window sets the recorded window: warmup from now, then duration.
func (r *result) window(warmup, duration time.Duration) (begin time.Time) {
	begin = time.Now()
	r.from, r.to, r.elapsed = begin.Add(warmup), begin.Add(warmup+duration), duration
	return begin
}

// once runs one flow, counts it when it completes within the window, and
// records its latency (and its error) when record is set.
func (r *result) once(ctx context.Context, f flow, started time.Time, record bool) {
	timed := func(kind string, d time.Duration) {
		if record {
			r.calls[kind].add(d)
		}
	}
	id, err := f(ctx, timed)
	done := time.Now()
	if err == nil && !done.Before(r.from) && done.Before(r.to) {
		atomic.AddInt64(&r.flows, 1)
	}
	if !record {
		return
	}
	if err != nil {
		atomic.AddInt64(&r.errors, 1)
		r.lastErr.Store(err.Error())
		return
	}
	r.latency.add(done.Sub(started))
	if n := atomic.AddInt64(&r.started, 1); n%7 == 0 {
		r.idsMu.Lock()
		if len(r.ids) < 30 {
			r.ids = append(r.ids, id)
		}
		r.idsMu.Unlock()
	}
}

// closedLoop runs concurrency workers back to back: warmup first (not
// recorded), then duration (recorded).
func closedLoop(ctx context.Context, r *result, f flow, concurrency int, warmup, duration time.Duration) {
	var wg sync.WaitGroup
	r.window(warmup, duration)
	measureFrom, end := r.from, r.to
	recorded := r.record(ctx)
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				start := time.Now()
				if !start.Before(end) {
					return
				}
				r.once(ctx, f, start, !start.Before(measureFrom))
			}
		}()
	}
	<-recorded
	// The flows started before the end finish for their latencies.
	wg.Wait()
}

// record takes the window's opening and closing measurements (CPU,
// transactions, engine calls) at its two ends, on a goroutine of its own;
// the channel closes after the closing one.
func (r *result) record(ctx context.Context) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		sleepUntil(ctx, r.from)
		r.measuring()
		sleepUntil(ctx, r.to)
		r.measured()
	}()
	return done
}

// sleepUntil returns at t, or sooner when ctx ends.
func sleepUntil(ctx context.Context, t time.Time) {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-ctx.Done():
	}
}

// openLoop starts flows at a fixed arrival rate whatever the system does;
// latency counts from the scheduled arrival, so queueing is not hidden.
func openLoop(ctx context.Context, r *result, f flow, rate float64, warmup, duration time.Duration, maxInFlight int) {
	var wg sync.WaitGroup
	var inFlight atomic.Int64
	interval := time.Duration(float64(time.Second) / rate)
	begin := r.window(warmup, duration)
	measureFrom, end := r.from, r.to
	recorded := r.record(ctx)
	for i := 0; ; i++ {
		at := begin.Add(time.Duration(i) * interval)
		if !at.Before(end) || ctx.Err() != nil {
			break
		}
		time.Sleep(time.Until(at))
		if inFlight.Load() >= int64(maxInFlight) {
			// The system fell this far behind: count the arrival as failed.
			if !at.Before(measureFrom) {
				atomic.AddInt64(&r.errors, 1)
				r.lastErr.Store("load generator: too many flows in flight")
			}
			continue
		}
		inFlight.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer inFlight.Add(-1)
			r.once(ctx, f, at, !at.Before(measureFrom))
		}()
	}
	<-recorded
	wg.Wait()
}

// The segments of a flow's history, from its events' times.
const (
	segFirstTaskWait    = iota // the first WorkflowTaskScheduled → Started: waiting on the task queue for a poll
	segWorkflowTaskWait        // the others' Scheduled → Started: waiting on the worker's sticky queue
	segWorkflowTaskRun         // Started → Completed: the worker's task and its answer
	segActivityWait            // ActivityTaskScheduled → Started (eager: handed back with the task's completion)
	segActivityRun             // ActivityTaskStarted → Completed: the write and its answer
)

var segmentNames = [...]string{"first task wait", "other tasks' wait", "workflow task run", "activity wait", "activity run"}

// countHistories reads the sampled flows' histories: events, workflow tasks
// and activities per flow, and one flow's event types.
func countHistories(ctx context.Context, c client.Client, r *result) {
	var n, events, tasks, acts, normal int
	for _, id := range r.ids {
		it := c.GetWorkflowHistory(ctx, id, "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		var types []string
		at := map[int64]time.Time{} // event id → time, for the segments
		var spent [len(segmentNames)]time.Duration
		since := func(seg int, from int64, now time.Time) {
			if t, ok := at[from]; ok {
				spent[seg] += now.Sub(t)
			}
		}
		for it.HasNext() {
			e, err := it.Next()
			if err != nil {
				break
			}
			events++
			now := e.GetEventTime().AsTime()
			offset := time.Duration(0)
			if t, ok := at[1]; ok {
				offset = now.Sub(t)
			}
			types = append(types, fmt.Sprintf("%-44s +%s ms", strings.TrimPrefix(e.GetEventType().String(), "EVENT_TYPE_"), ms(offset)))
			at[e.GetEventId()] = now
			switch e.GetEventType() {
			case enums.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED:
				if e.GetWorkflowTaskScheduledEventAttributes().GetTaskQueue().GetKind() != enums.TASK_QUEUE_KIND_STICKY {
					normal++
				}
			case enums.EVENT_TYPE_WORKFLOW_TASK_STARTED:
				seg := segWorkflowTaskWait
				if scheduled := e.GetWorkflowTaskStartedEventAttributes().GetScheduledEventId(); scheduled == 2 {
					seg = segFirstTaskWait // the run's first task: on the task queue itself, not a worker's sticky queue
				}
				since(seg, e.GetWorkflowTaskStartedEventAttributes().GetScheduledEventId(), now)
			case enums.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
				tasks++
				since(segWorkflowTaskRun, e.GetWorkflowTaskCompletedEventAttributes().GetStartedEventId(), now)
			case enums.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
				acts++
			case enums.EVENT_TYPE_ACTIVITY_TASK_STARTED:
				since(segActivityWait, e.GetActivityTaskStartedEventAttributes().GetScheduledEventId(), now)
			case enums.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
				since(segActivityRun, e.GetActivityTaskCompletedEventAttributes().GetStartedEventId(), now)
			}
		}
		if r.eventTypes == nil {
			r.eventTypes = types
		}
		for i, d := range spent {
			r.segments[i].add(d)
		}
		n++
	}
	if n > 0 {
		r.events, r.tasks, r.activities = float64(events)/float64(n), float64(tasks)/float64(n), float64(acts)/float64(n)
		r.normalTasks = float64(normal) / float64(n)
	}
}
