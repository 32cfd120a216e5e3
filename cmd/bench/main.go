// Command bench is the service's load benchmark (make bench). In one run, on
// one Temporal server build and configuration (a new dev server of it for
// each measured phase, -fresh-engine, so that no phase runs on an engine
// slowed by the ones before), it measures the ceiling (a no-op workflow of
// the purchase's message shape, with regular and with local activities,
// driven in-process) and the service (the real api and worker processes
// driven over HTTP as partner and signing publisher, closed-loop and
// open-loop), then the subscription list over a bulk-loaded read model, and
// prints one table.
package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/lib/pq"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/testsuite"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/partnerhub/fulfillment/config"
	"github.com/partnerhub/fulfillment/store"
	"github.com/partnerhub/fulfillment/testenv"
)

type options struct {
	binary          string
	temporalAddress string
	engine          string
	concurrency     int
	warmup          time.Duration
	ceilingDuration time.Duration
	serviceDuration time.Duration
	openRate        float64
	phases          string
	listRows        int
	listRequests    int
	pprof           bool
	out             string
	serverPID       int
	enginePerf      time.Duration
	busyCPUs        string
	asyncCommit     bool
	scaleN          int
	scaleSample     int
	cacheSize       string
	rounds          int
	dropIndex       string
	logStatements   bool
	devConfig       string
	ceilingPollers  int
	renewal         renewalOptions
	listBaseline    string
	workerEnv       string
	compression     string
	sdkPayloadWalk  bool
	engineCPUs      string
	freshEngine     bool
	pinned          string // what the pinning held, for the header
	engineMetrics   string
	// engineCounts reads the engine's request counters (testenv.EngineCounters).
	engineCounts func() map[string]float64
}

func main() {
	var o options
	flag.StringVar(&o.binary, "binary", "bin/fulfillment", "the service binary (make build)")
	flag.StringVar(&o.temporalAddress, "temporal-address", "", "an already running Temporal server (make bench-pg); empty: start a dev server")
	flag.StringVar(&o.engine, "engine", "", "how the table names the Temporal server (default: dev server, or the address)")
	flag.IntVar(&o.concurrency, "concurrency", 32, "closed-loop flows in flight (ceiling and service)")
	flag.DurationVar(&o.warmup, "warmup", 3*time.Second, "unrecorded load before each phase")
	flag.DurationVar(&o.ceilingDuration, "ceiling-duration", 20*time.Second, "recorded time of each ceiling phase")
	flag.DurationVar(&o.serviceDuration, "service-duration", 30*time.Second, "recorded time of each service phase")
	flag.Float64Var(&o.openRate, "open-rate", 0, "open-loop arrivals per second (0: half the regular-activity ceiling)")
	flag.StringVar(&o.phases, "phases", "ceiling,local,extras,closed,open,list", "phases to run, comma-separated")
	flag.IntVar(&o.listRows, "list-rows", 100000, "subscriptions bulk-loaded for the list phase")
	flag.IntVar(&o.listRequests, "list-requests", 200, "requests per list case")
	flag.BoolVar(&o.pprof, "pprof", false, "CPU-profile api and worker (PPROF_ADDR) for 10 s of the closed-loop phase (renewal: 30 s from 30 s into the wave)")
	flag.StringVar(&o.out, "out", ".tmp/bench", "directory for logs and profiles")
	flag.BoolVar(&o.asyncCommit, "pg-async-commit", false, "experiment: synchronous_commit=off on the service's database (not how it runs in production)")
	flag.IntVar(&o.scaleN, "scale-open", 10000, "scale phase: open subscriptions bought")
	flag.IntVar(&o.scaleSample, "scale-callbacks", 300, "scale phase: subscriptions picked at random to take the three callbacks")
	flag.StringVar(&o.cacheSize, "worker-cache-size", "", "WORKFLOW_CACHE_SIZE of the service's worker (empty: the SDK's default, 10,000)")
	flag.IntVar(&o.rounds, "rounds", 0, "extra rounds of ceiling then service (closed loop) back to back, for the ratio on a noisy machine")
	flag.StringVar(&o.dropIndex, "list-drop-index", "", "list phase: drop this index first (to measure without it)")
	flag.BoolVar(&o.logStatements, "pg-log-statements", false, "diagnosis: log_statement=all on the service's database (into PostgreSQL's server log)")
	flag.StringVar(&o.devConfig, "dev-config", "", "experiment: extra dynamic config for the dev server, KEY=VALUE[,KEY=VALUE]")
	flag.IntVar(&o.ceilingPollers, "ceiling-pollers", 0, "experiment: workflow and activity task pollers of the ceiling's worker (0: SDK default)")
	flag.StringVar(&o.workerEnv, "worker-env", "", "experiment: extra environment of the service's worker, KEY=VALUE[,KEY=VALUE] (e.g. WORKFLOW_TASK_POLLERS=8)")
	flag.StringVar(&o.engineCPUs, "engine-cpus", "", "CPUs of the Temporal server alone, as 0 or 0-1 (a deployment's topology: everything else runs on the other CPUs); empty: all share every CPU")
	flag.BoolVar(&o.freshEngine, "fresh-engine", true, "start a new dev server before each measured phase (ceilings, closed, open, each side of a round, scale, renewal), so no phase runs on an engine slowed by the phases before it; false: one dev server for the whole run")
	flag.BoolVar(&o.sdkPayloadWalk, "sdk-payload-walk", false, "the ceiling's client walks payloads as the SDK does by default (concurrently), not as the service's processes (config.PayloadWalk); for comparing with builds before it")
	flag.StringVar(&o.compression, "grpc-compression", "none", "gRPC compression to Temporal of the ceiling's client and the service (TEMPORAL_GRPC_COMPRESSION): none or gzip")
	flag.StringVar(&o.listBaseline, "list-baseline-binary", "", "list phase: also measure an api process of this (older) binary on the same data, request by request in turn (before/after in one run)")
	flag.IntVar(&o.renewal.n, "renewal-count", 10000, "renewal phase (not by default): active subscriptions whose first terms end together")
	flag.DurationVar(&o.renewal.lead, "renewal-lead", 0, "renewal phase: from the start of the bulk load to the wave (0: 30 s + 20 ms per subscription)")
	flag.IntVar(&o.renewal.sample, "renewal-sample", 50, "renewal phase: subscriptions PATCHed during the wave and checked after it (ledger, history)")
	flag.DurationVar(&o.renewal.timeout, "renewal-timeout", 20*time.Minute, "renewal phase: longest wait for the wave to finish")
	flag.IntVar(&o.renewal.concurrency, "renewal-starts", 32, "renewal phase: workflow starts in flight during the bulk load")
	flag.IntVar(&o.serverPID, "server-pid", 0, "pid of the external Temporal server, for its CPU time per flow")
	flag.DurationVar(&o.enginePerf, "engine-perf", 0, "diagnosis: `perf record` the Temporal server for this long in each ceiling and closed-loop phase (from 2 s after the warmup), into -out/engine-<phase>.perf.data")
	flag.StringVar(&o.busyCPUs, "busy-cpus", "", "experiment: keep these CPUs (e.g. 1) busy with a nice-19 loop during each ceiling and closed-loop phase")
	flag.StringVar(&o.engineMetrics, "engine-metrics", "", "the external Temporal server's Prometheus endpoint (http://host:port/metrics), for its calls per flow; the dev server's is found by itself")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		log.Fatal(err)
	}
}

// firstSide names which side of a round ran first.
func firstSide(serviceFirst bool) string {
	if serviceFirst {
		return "service"
	}
	return "ceiling"
}

func (o options) has(phase string) bool {
	for _, p := range strings.Split(o.phases, ",") {
		if strings.TrimSpace(p) == phase {
			return true
		}
	}
	return false
}

// quiet drops the SDK's logging below warnings.
type quiet struct{}

func (quiet) Debug(string, ...any) {}
func (quiet) Info(string, ...any)  {}
func (quiet) Warn(string, ...any)  {}
func (quiet) Error(string, ...any) {}

var _ sdklog.Logger = quiet{}

func run(ctx context.Context, o options) error {
	began := time.Now()
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	binary, err := filepath.Abs(o.binary)
	if err != nil {
		return err
	}
	if _, err := os.Stat(binary); err != nil {
		return fmt.Errorf("service binary: %w (make build)", err)
	}
	address, engine := o.temporalAddress, o.engine
	var eng *devEngine // nil: an external server
	if address == "" {
		logf("starting a Temporal dev server (in-memory, %s)", testenv.TemporalCLI())
		if eng, err = startEngine(ctx, o.devConfig, o.freshEngine); err != nil {
			return err
		}
		defer eng.stop()
		address, o.serverPID = eng.address, eng.pid
		if engine == "" {
			engine = "dev server (SQLite in memory)"
		}
	} else if engine == "" {
		engine = "server at " + address
	}
	base := procs{{name: "temporal", pid: o.serverPID}, {name: "api"}, {name: "worker"}, {name: "bench", pid: os.Getpid()}, {name: "postgres"}}
	var pin *pinning
	if o.engineCPUs != "" {
		if pin, err = newPinning(o.engineCPUs); err != nil {
			return fmt.Errorf("-engine-cpus: %w", err)
		}
		if o.serverPID == 0 {
			return fmt.Errorf("-engine-cpus: the Temporal server's pid is unknown (-server-pid)")
		}
		pin.keep(ctx, o.serverPID)
		logf("pinned: %s", pin.describe)
		if eng != nil {
			eng.pin = pin
		}
	}
	o.engineCounts = func() map[string]float64 {
		url := o.engineMetrics
		if eng != nil {
			url = eng.metricsURL()
		}
		return testenv.EngineCounters(ctx, url)
	}
	copts := client.Options{HostPort: address, Namespace: "default", Logger: quiet{}}
	if !o.sdkPayloadWalk {
		copts.ExternalStorage = config.PayloadWalk // as the service's processes
	}
	if copts.ConnectionOptions.GrpcCompression, err = config.GrpcCompression(o.compression); err != nil {
		return fmt.Errorf("-grpc-compression: %w", err)
	}
	c, err := client.Dial(copts)
	if err != nil {
		return fmt.Errorf("dial Temporal: %w", err)
	}
	defer c.Close()
	// fresh readies the engine for a measured phase (a new dev server with
	// -fresh-engine) and names it in the CPU accounting.
	var st *stack
	fresh := func() error {
		pid, err := eng.before(ctx, c, st)
		if pid != 0 {
			base[0].pid = pid
		}
		return err
	}

	var results []*result
	var ceiling *result
	for _, p := range []struct {
		phase, name string
		in          ceilingInput
	}{
		{"ceiling", "ceiling: no-op, regular activities", ceilingInput{}},
		{"local", "ceiling: no-op, local activities (old shape)", ceilingInput{Local: true}},
		{"extras", "ceiling + GetVersion, SAs, 2 KB input", ceilingInput{Extras: true, Pad: make([]byte, 2048)}},
		// Each extra alone (not by default: -phases x-sa,x-memo,...).
		{"x-sa", "ceiling + 4 search attributes at start", ceilingInput{SAs: true}},
		{"x-memo", "ceiling + memo at start", ceilingInput{Memo: true}},
		{"x-pad", "ceiling + 2 KB input", ceilingInput{Pad: make([]byte, 2048)}},
		{"x-upsert", "ceiling + status upsert at activation", ceilingInput{Upsert: true}},
		{"x-version", "ceiling + GetVersion", ceilingInput{Version: true}},
		{"x-payloads", "ceiling + service-sized activity inputs and answers", ceilingInput{Payload: 2500}},
	} {
		if !o.has(p.phase) {
			continue
		}
		if err := fresh(); err != nil {
			return err
		}
		r, err := runCeiling(ctx, c, o, p.name, p.in, slices.Clone(base))
		if err != nil {
			return err
		}
		countHistories(ctx, c, r) // now: a fresh engine for the next phase has none of them
		if p.phase == "ceiling" {
			ceiling = r
		}
		results = append(results, r)
	}

	var dbURL string
	var sessions func() (int64, int64)
	var lists, baseLists []*listCase
	var plan string
	if o.has("closed") || o.has("open") || o.has("list") || o.has("scale") || o.has("renewal") {
		dbName := "fulfillment_bench_" + strings.ReplaceAll(uuid.NewString()[:13], "-", "")
		dbURL = fmt.Sprintf("postgres://postgres@127.0.0.1:5432/%s?sslmode=disable", dbName)
		base[4].match = dbName + " "
		defer func() {
			if err := store.DropDatabase(context.Background(), dbURL); err != nil {
				logf("drop database: %v", err)
			}
		}()
		if err := migrate(ctx, dbURL); err != nil {
			return err
		}
		admin, err := sql.Open("postgres", dbURL)
		if err != nil {
			return err
		}
		defer admin.Close()
		admin.SetMaxIdleConns(1)
		sessions = func() (n, x int64) {
			_ = admin.QueryRowContext(ctx, `SELECT pg_stat_clear_snapshot()`).Err()
			_ = admin.QueryRowContext(ctx, `SELECT sessions, xact_commit + xact_rollback FROM pg_stat_database WHERE datname = $1`, dbName).Scan(&n, &x)
			return n, x
		}
		if o.logStatements {
			if err := setDatabase(ctx, dbURL, dbName, "log_statement", "all"); err != nil {
				return err
			}
			logf("PostgreSQL logs every statement on %s", dbName)
		}
		if o.asyncCommit {
			if err := setDatabase(ctx, dbURL, dbName, "synchronous_commit", "off"); err != nil {
				return err
			}
		}
		logf("starting the service: api and worker processes of %s", binary)
		st, err = startStack(ctx, binary, dbURL, address, o.out, o.pprof, o.cacheSize, o.workerEnv, o.compression)
		if err != nil {
			return err
		}
		defer st.stop()
		base[1].pid, base[2].pid = st.api.Process.Pid, st.worker.Process.Pid
		if pin != nil {
			pin.service(base[4].match, st.api.Process.Pid, st.worker.Process.Pid)
		}
	}
	if o.has("closed") {
		if err := fresh(); err != nil {
			return err
		}
		r := newResult("service: HTTP, closed loop", fmt.Sprintf("c=%d", o.concurrency))
		r.procs, r.sessions, r.engine = slices.Clone(base), sessions, o.engineCounts
		logf("%s at %s for %s", r.name, r.load, o.serviceDuration)
		if o.pprof {
			go func() {
				time.Sleep(o.warmup + o.serviceDuration/3)
				for _, p := range []struct{ addr, file string }{{st.apiPprof, "api.cpu.pprof"}, {st.workerPprof, "worker.cpu.pprof"}} {
					go func() {
						if err := profile(ctx, p.addr, 10, filepath.Join(o.out, p.file)); err != nil {
							logf("profile: %v", err)
						}
					}()
				}
			}()
		}
		stop := diagnose(ctx, o, r.name, base[0].pid, o.serviceDuration)
		closedLoop(ctx, r, st.serviceFlow(), o.concurrency, o.warmup, o.serviceDuration)
		stop()
		countHistories(ctx, c, r)
		results = append(results, r)
	}
	if o.has("open") {
		rate := o.openRate
		if rate <= 0 && ceiling != nil {
			rate = ceiling.rate() / 2
		}
		if rate <= 0 {
			rate = 5
		}
		if err := fresh(); err != nil {
			return err
		}
		r := newResult("service: HTTP, open loop", fmt.Sprintf("%.1f/s", rate))
		r.arrivals = rate
		r.procs, r.sessions, r.engine = slices.Clone(base), sessions, o.engineCounts
		logf("%s at %s for %s", r.name, r.load, o.serviceDuration)
		openLoop(ctx, r, st.serviceFlow(), rate, o.warmup, o.serviceDuration, 2000)
		countHistories(ctx, c, r)
		results = append(results, r)
	}
	type round struct {
		ceiling, service float64
		serviceFirst     bool
	}
	var rounds []round
	for i := range o.rounds {
		if st == nil {
			break
		}
		// Rounds alternate which side goes first: with -fresh-engine=false the
		// engine's drift then falls on each side once in a pair of rounds; with
		// fresh engines, whatever else a phase leaves behind (the service's
		// database rows, the processes' heaps) does.
		serviceFirst := i%2 == 1
		logf("round %d of %d: closed loop, %s first", i+1, o.rounds, firstSide(serviceFirst))
		sr := newResult("service", "")
		service := func() error {
			if err := fresh(); err != nil {
				return err
			}
			closedLoop(ctx, sr, st.serviceFlow(), o.concurrency, o.warmup, o.ceilingDuration)
			return nil
		}
		if serviceFirst {
			if err := service(); err != nil {
				return err
			}
		}
		if err := fresh(); err != nil {
			return err
		}
		cr, err := runCeiling(ctx, c, o, "ceiling", ceilingInput{}, nil)
		if err != nil {
			return err
		}
		if !serviceFirst {
			if err := service(); err != nil {
				return err
			}
		}
		rounds = append(rounds, round{cr.rate(), sr.rate(), serviceFirst})
	}
	var scale *scaleResult
	if o.has("scale") {
		if err := fresh(); err != nil {
			return err
		}
		logf("scale: buying %d subscriptions (worker cache %q), then callbacks to %d of them", o.scaleN, o.cacheSize, o.scaleSample)
		scale = runScale(ctx, st, o.scaleN, o.scaleSample, 64, o.cacheSize)
	}
	var renewal *renewalResult
	if o.has("renewal") {
		if err := fresh(); err != nil {
			return err
		}
		logf("renewal: %d active subscriptions whose first terms end together (worker cache %q)", o.renewal.n, o.cacheSize)
		o.renewal.pprof, o.renewal.out = o.pprof, o.out
		if renewal, err = runRenewal(ctx, c, st, dbURL, slices.Clone(base), o.renewal); err != nil {
			return err
		}
	}
	var apiPeak, apiNow, workerPeak, workerNow float64
	if st != nil {
		apiPeak, apiNow = rss(st.api.Process.Pid)
		workerPeak, workerNow = rss(st.worker.Process.Pid)
	}
	if o.has("list") {
		logf("bulk-loading %d subscriptions into the read model", o.listRows)
		t := time.Now()
		if err := loadSubscriptions(ctx, dbURL, o.listRows); err != nil {
			return err
		}
		logf("loaded in %s; measuring GET /v1/subscriptions", time.Since(t).Round(time.Millisecond))
		if o.dropIndex != "" {
			db, err := sql.Open("postgres", dbURL)
			if err != nil {
				return err
			}
			_, err = db.ExecContext(ctx, "DROP INDEX "+pq.QuoteIdentifier(o.dropIndex))
			db.Close()
			if err != nil {
				return fmt.Errorf("drop index %s: %w", o.dropIndex, err)
			}
			logf("dropped index %s", o.dropIndex)
		}
		targets := []*stack{st}
		if o.listBaseline != "" {
			baseline, err := filepath.Abs(o.listBaseline)
			if err != nil {
				return err
			}
			b, err := st.extraAPI(baseline)
			if err != nil {
				return err
			}
			defer b.stopAPI()
			targets = append(targets, b)
			logf("baseline api %s on the same data; requests alternate between the two", baseline)
		}
		cases, err := measureList(ctx, targets, o.listRequests)
		if err != nil {
			return err
		}
		lists = cases[0]
		if len(cases) > 1 {
			baseLists = cases[1]
		}
		for _, q := range []struct {
			name, customer string
			statuses       []string
		}{{"default page", "", nil}, {"customer_id", "bulk-0042", nil}, {"customer_id + tab=upcoming", "bulk-0040", []string{"pending_fulfillment"}}} {
			p, err := explainList(ctx, dbURL, q.customer, q.statuses, 0)
			if err != nil {
				return err
			}
			plan += "  " + q.name + ":\n" + p
		}
	}
	if pin != nil {
		held := []string{"temporal " + affinity(base[0].pid), "bench " + affinity(os.Getpid())}
		if st != nil {
			held = append(held, "api "+affinity(st.api.Process.Pid), "worker "+affinity(st.worker.Process.Pid))
			if pg := findProcesses(base[4].match); len(pg) > 0 {
				held = append(held, "postgres "+affinity(pg[0]))
			}
		}
		o.pinned = pin.describe + "; CPUs allowed at the end: " + strings.Join(held, ", ")
	}
	if eng != nil && eng.fresh {
		engine += fmt.Sprintf(", a new one for each measured phase (%d restarts in this run)", eng.restarts)
	} else if eng != nil {
		engine += ", one for the whole run (-fresh-engine=false: later phases run on an engine slowed by the earlier ones)"
	}
	printTable(os.Stdout, o, engine, results, ceiling, lists, baseLists, plan, apiPeak, apiNow, workerPeak, workerNow, time.Since(began))
	printEngineCalls(os.Stdout, results)
	if len(rounds) > 0 {
		fmt.Printf("\nrounds back to back (ceiling regular and service closed loop, %s each, c=%d; odd rounds run the ceiling first, even the service):\n", o.ceilingDuration, o.concurrency)
		ratios := make([]float64, 0, len(rounds))
		var ceilings, services float64
		for i, r := range rounds {
			ratios = append(ratios, r.service/r.ceiling)
			ceilings, services = ceilings+r.ceiling, services+r.service
			fmt.Printf("  round %d (%s first): ceiling %.1f flows/s, service %.1f flows/s, ratio %.2f\n", i+1, firstSide(r.serviceFirst), r.ceiling, r.service, r.service/r.ceiling)
		}
		fmt.Printf("  all rounds: ceiling %.1f flows/s, service %.1f flows/s, ratio %.2f\n", ceilings/float64(len(rounds)), services/float64(len(rounds)), services/ceilings)
		slices.Sort(ratios)
		median := ratios[len(ratios)/2]
		if len(ratios)%2 == 0 {
			median = (ratios[len(ratios)/2-1] + median) / 2
		}
		fmt.Printf("  median ratio over %d rounds: %.2f\n", len(ratios), median)
	}
	if scale != nil {
		printScale(os.Stdout, scale)
	}
	if renewal != nil {
		printRenewal(os.Stdout, renewal, o.cacheSize)
	}
	return nil
}

// startDevServer starts the dev server with testenv.StartTemporal's flags
// (in memory), plus extra dynamic config for experiments.
func startDevServer(ctx context.Context, address, metricsPort, extra string) (*testsuite.DevServer, error) {
	var overrides []string
	for _, kv := range strings.Split(extra, ",") {
		if kv = strings.TrimSpace(kv); kv != "" {
			overrides = append(overrides, kv)
		}
	}
	args := append(config.DevServerFlags(overrides...), "--metrics-port", metricsPort)
	srv, err := testsuite.StartDevServer(ctx, testsuite.DevServerOptions{
		ExistingPath: testenv.TemporalCLI(), ClientOptions: &client.Options{HostPort: address, Namespace: "default"},
		LogLevel: "error", ExtraArgs: args, Stdout: io.Discard, Stderr: io.Discard,
	})
	return srv, err
}

// setDatabase sets a parameter for new sessions of a database.
func setDatabase(ctx context.Context, dbURL, name, param, value string) error {
	db, err := sql.Open("postgres", dbURL)
	if err != nil {
		return err
	}
	defer db.Close()
	_, err = db.ExecContext(ctx, fmt.Sprintf("ALTER DATABASE %s SET %s = %s", pq.QuoteIdentifier(name), param, pq.QuoteLiteral(value)))
	return err
}

func migrate(ctx context.Context, dbURL string) error {
	if err := store.CreateDatabase(ctx, dbURL); err != nil {
		return err
	}
	s, err := store.Open(ctx, dbURL)
	if err != nil {
		return err
	}
	defer s.Close()
	return s.Migrate(ctx)
}

func runCeiling(ctx context.Context, c client.Client, o options, name string, in ceilingInput, ps procs) (*result, error) {
	tq := "bench-ceiling-" + uuid.NewString()[:8]
	w := sdkworker.New(c, tq, sdkworker.Options{
		MaxConcurrentWorkflowTaskPollers: o.ceilingPollers, MaxConcurrentActivityTaskPollers: o.ceilingPollers,
	})
	w.RegisterWorkflowWithOptions(CeilingWorkflow, workflow.RegisterOptions{Name: ceilingWorkflowType})
	w.RegisterActivityWithOptions(noopActivity, activity.RegisterOptions{Name: noopActivityName})
	w.RegisterActivityWithOptions(paddedActivity, activity.RegisterOptions{Name: paddedActivityName})
	if err := w.Start(); err != nil {
		return nil, fmt.Errorf("ceiling worker: %w", err)
	}
	defer w.Stop()
	r := newResult(name, fmt.Sprintf("c=%d", o.concurrency))
	r.procs, r.engine = ps, o.engineCounts
	logf("%s at %s for %s", name, r.load, o.ceilingDuration)
	var engine int // the engine's pid; rounds pass no procs
	if len(ps) > 0 {
		engine = ps[0].pid
	}
	defer diagnose(ctx, o, name, engine, o.ceilingDuration)()
	closedLoop(ctx, r, ceilingFlow(c, tq, in), o.concurrency, o.warmup, o.ceilingDuration)
	return r, nil
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench %s: %s\n", time.Now().UTC().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func sdkVersion() string {
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, d := range info.Deps {
			if d.Path == "go.temporal.io/sdk" {
				return d.Version
			}
		}
	}
	return "?"
}

func temporalVersion() string {
	out, err := exec.Command(testenv.TemporalCLI(), "--version").Output()
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(out))
}

func loadAverage() string {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(raw))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func printTable(w io.Writer, o options, engine string, results []*result, ceiling *result, lists, baseLists []*listCase, plan string,
	apiPeak, apiNow, workerPeak, workerNow float64, took time.Duration) {
	fmt.Fprintf(w, "\n%s, %d cores, load average %s, %s, SDK %s, %s; took %s\n",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), runtime.NumCPU(), loadAverage(), runtime.Version(), sdkVersion(),
		temporalVersion(), took.Round(time.Second))
	fmt.Fprintf(w, "Temporal: %s; gRPC compression %s (ceiling and service); warmup %s, ceiling %s, service %s per phase\n",
		engine, o.compression, o.warmup, o.ceilingDuration, o.serviceDuration)
	if o.devConfig != "" || o.ceilingPollers != 0 {
		fmt.Fprintf(w, "EXPERIMENT: dev server config %q, ceiling worker pollers %d\n", o.devConfig, o.ceilingPollers)
	}
	if o.pinned != "" {
		fmt.Fprintf(w, "PINNED: %s\n", o.pinned)
	}
	if o.sdkPayloadWalk {
		fmt.Fprintln(w, "the ceiling's client walks payloads as the SDK does by default (-sdk-payload-walk)")
	}
	if o.workerEnv != "" {
		fmt.Fprintf(w, "EXPERIMENT: worker environment %s\n", o.workerEnv)
	}
	if o.asyncCommit {
		fmt.Fprintln(w, "EXPERIMENT: the service's database runs with synchronous_commit=off")
	}
	if o.busyCPUs != "" {
		fmt.Fprintf(w, "EXPERIMENT: CPUs %s kept busy by a nice-19 loop during each ceiling and closed-loop phase\n", o.busyCPUs)
	}
	if o.enginePerf > 0 {
		fmt.Fprintf(w, "DIAGNOSIS: the Temporal server under perf record for %s of each ceiling and closed-loop phase\n", o.enginePerf)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "| %-44s | %-7s | %5s | %7s | %5s | %6s | %6s | %6s | %8s | %8s | %8s | %8s | %6s | %5s | %5s | %5s |\n",
		"phase", "load", "flows", "flows/s", "errs", "p50", "p95", "p99", "p99 buy", "p99 res", "p99 lic", "p99 act", "events", "wft", "wft-n", "acts")
	fmt.Fprintf(w, "|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|\n", dash(46), dash(9), dash(7), dash(9), dash(7),
		dash(8), dash(8), dash(8), dash(10), dash(10), dash(10), dash(10), dash(8), dash(7), dash(7), dash(7))
	for _, r := range results {
		fmt.Fprintf(w, "| %-44s | %-7s | %5d | %7.1f | %5d | %6s | %6s | %6s | %8s | %8s | %8s | %8s | %6.1f | %5.1f | %5.1f | %5.1f |\n",
			r.name, r.load, r.flows, r.rate(), r.errors, ms(r.latency.pct(50)), ms(r.latency.pct(95)), ms(r.latency.pct(99)),
			ms(r.calls["purchase"].pct(99)), ms(r.calls["resolve"].pct(99)), ms(r.calls["licenses"].pct(99)), ms(r.calls["activate"].pct(99)),
			r.events, r.tasks, r.normalTasks, r.activities)
	}
	fmt.Fprintln(w, "\nflows: completed within the recorded window, whenever started (flows/s = flows / window; the flows in flight")
	fmt.Fprintln(w, "when it closes finish unrecorded, as do their CPU and calls); latencies: the flows started within it.")
	fmt.Fprintln(w, "latencies in ms: p50/p95/p99 purchase→active; p99 per call (buy = POST /v1/subscriptions, res = resolve,")
	fmt.Fprintln(w, "lic = licenses, act = activate; the ceiling has no resolve). events / wft / acts: history events, workflow")
	fmt.Fprintln(w, "tasks completed and activities scheduled per flow, from GetWorkflowHistory of sampled flows; wft-n: workflow")
	fmt.Fprintln(w, "tasks scheduled on the task queue itself, not the worker's sticky queue (a run's first task always is).")
	fmt.Fprintln(w, "\nCPU ms per flow (user+system from /proc/<pid>/stat; bench = the load generator and the ceiling's in-process")
	fmt.Fprintln(w, "worker; postgres = the backends serving the service's database, not Temporal's):")
	fmt.Fprintln(w, "pg conns/fl and pg xacts/fl: sessions opened and transactions (each autocommit statement is one) on that")
	fmt.Fprintln(w, "database per flow, from pg_stat_database (approximate: statistics are flushed about once a second).")
	fmt.Fprintf(w, "| %-44s | %8s | %6s | %6s | %6s | %8s | %6s | %11s | %11s |\n|%s|%s|%s|%s|%s|%s|%s|%s|%s|\n", "phase", "temporal", "api", "worker", "bench", "postgres", "total", "pg conns/fl", "pg xacts/fl",
		dash(46), dash(10), dash(8), dash(8), dash(8), dash(10), dash(8), dash(13), dash(13))
	for _, r := range results {
		cell := func(i int) string {
			if r.procs == nil || (r.procs[i].pid == 0 && r.procs[i].match == "") {
				return "-"
			}
			return fmt.Sprintf("%.1f", r.cpuPerFlow(i))
		}
		total := 0.0
		for i := range r.procs {
			total += r.cpuPerFlow(i)
		}
		opens, xacts := "-", "-"
		if r.sessions != nil && r.flows > 0 {
			opens = fmt.Sprintf("%.2f", float64(r.opens)/float64(r.flows))
			xacts = fmt.Sprintf("%.1f", float64(r.xacts)/float64(r.flows))
		}
		fmt.Fprintf(w, "| %-44s | %8s | %6s | %6s | %6s | %8s | %6.1f | %11s | %11s |\n", r.name, cell(0), cell(1), cell(2), cell(3), cell(4), total, opens, xacts)
	}
	fmt.Fprintln(w)
	for _, r := range results {
		if r.ceilingRatio(ceiling) != "" {
			fmt.Fprintf(w, "ratio %s / ceiling (regular, same concurrency): %s\n", r.name, r.ceilingRatio(ceiling))
		}
		// Only on shared CPUs: with the engine on CPUs of its own, its CPU alone bounds both phases.
		if room, ok := roomOf(r, ceiling, 0.8); ok && o.engineCPUs == "" {
			fmt.Fprintf(w, "  CPU room, where both phases keep every CPU busy: %s\n", room)
		}
		if behind := r.behind(); behind != "" {
			fmt.Fprintf(w, "%s\n", behind)
		}
		if e, ok := r.lastErr.Load().(string); ok {
			fmt.Fprintf(w, "last error of %s: %s\n", r.name, e)
		}
	}
	if apiPeak > 0 {
		fmt.Fprintf(w, "RSS MiB: api peak %.0f (now %.0f), worker peak %.0f (now %.0f)\n", apiPeak, apiNow, workerPeak, workerNow)
	}
	if len(lists) > 0 {
		fmt.Fprintf(w, "\nGET /v1/subscriptions, %d subscriptions of one partner in the read model, %d sequential requests per case", o.listRows, o.listRequests)
		if o.dropIndex != "" {
			fmt.Fprintf(w, ", WITHOUT index %s", o.dropIndex)
		}
		fmt.Fprint(w, ":\n\n")
		fmt.Fprintf(w, "| %-28s | %6s | %6s | %6s | %9s |\n|%s|%s|%s|%s|%s|\n", "case", "p50", "p95", "p99", "items/req", dash(30), dash(8), dash(8), dash(8), dash(11))
		for _, l := range lists {
			fmt.Fprintf(w, "| %-28s | %6s | %6s | %6s | %9.1f |\n", l.name, ms(l.latency.pct(50)), ms(l.latency.pct(95)), ms(l.latency.pct(99)),
				float64(l.items)/float64(max(1, l.latency.count())))
		}
		if len(baseLists) > 0 {
			fmt.Fprintf(w, "\nthe same requests, in turn with the above, to the baseline api %s:\n\n", o.listBaseline)
			fmt.Fprintf(w, "| %-28s | %6s | %6s | %6s | %9s |\n|%s|%s|%s|%s|%s|\n", "case", "p50", "p95", "p99", "items/req", dash(30), dash(8), dash(8), dash(8), dash(11))
			for _, l := range baseLists {
				fmt.Fprintf(w, "| %-28s | %6s | %6s | %6s | %9.1f |\n", l.name, ms(l.latency.pct(50)), ms(l.latency.pct(95)), ms(l.latency.pct(99)),
					float64(l.items)/float64(max(1, l.latency.count())))
			}
		}
		fmt.Fprintf(w, "\nplans of the store's list query (EXPLAIN ANALYZE):\n%s", plan)
	}
	printSegments(w, results)
	for _, r := range results {
		if r.eventTypes != nil && strings.HasPrefix(r.name, "service: HTTP") {
			fmt.Fprintf(w, "\none purchase→active history of %s (%d events):\n", r.name, len(r.eventTypes))
			for i, t := range r.eventTypes {
				fmt.Fprintf(w, "  %2d %s\n", i+1, t)
			}
		}
	}
}

// printSegments says where the sampled flows' histories spent their time.
func printSegments(w io.Writer, results []*result) {
	var rows []*result
	for _, r := range results {
		if r.segments[0].count() > 0 {
			rows = append(rows, r)
		}
	}
	if len(rows) == 0 {
		return
	}
	fmt.Fprint(w, "\nwhere a flow's history spends its time, ms summed over its workflow tasks and activities (p50 / p90 of sampled flows):\n\n")
	fmt.Fprintf(w, "| %-44s |", "phase")
	for _, n := range segmentNames {
		fmt.Fprintf(w, " %-19s |", n)
	}
	fmt.Fprintf(w, "\n|%s|", dash(46))
	for range segmentNames {
		fmt.Fprintf(w, "%s|", dash(21))
	}
	fmt.Fprintln(w)
	for _, r := range rows {
		fmt.Fprintf(w, "| %-44s |", r.name)
		for i := range r.segments {
			fmt.Fprintf(w, " %19s |", ms(r.segments[i].pct(50))+" / "+ms(r.segments[i].pct(90)))
		}
		fmt.Fprintln(w)
	}
}

// ceilingRatio is this phase's throughput over the ceiling's, for closed-loop
// service phases at the ceiling's concurrency.
func (r *result) ceilingRatio(ceiling *result) string {
	if ceiling == nil || r == ceiling || r.load != ceiling.load || ceiling.rate() == 0 {
		return ""
	}
	return fmt.Sprintf("%.2f (%.1f / %.1f flows/s)", r.rate()/ceiling.rate(), r.rate(), ceiling.rate())
}

func dash(n int) string { return strings.Repeat("-", n) }

func printScale(w io.Writer, r *scaleResult) {
	cache := r.cacheSize
	if cache == "" {
		cache = "SDK default (10,000)"
	}
	fmt.Fprintf(w, "\nscale, worker sticky cache %s:\n", cache)
	fmt.Fprintf(w, "  %d open subscriptions bought at %.1f/s (%d errors; POST p50 %s ms, p99 %s ms), each waiting on its activation timer\n",
		r.open, r.purchaseRate, r.purchaseErrors, ms(r.purchase.pct(50)), ms(r.purchase.pct(99)))
	fmt.Fprintf(w, "  worker RSS after them: %.0f MiB (peak %.0f)\n", r.rssNow, r.rssPeak)
	fmt.Fprintf(w, "  callbacks (resolve, licenses, activate) to %d picked at random: %d active, %d errors; p50 %s ms, p99 %s ms per subscription\n",
		r.callbacks, r.callbacksCompleted, r.callbackErrors, ms(r.flow.pct(50)), ms(r.flow.pct(99)))
	fmt.Fprintf(w, "  worker RSS after the callbacks: %.0f MiB (peak %.0f)\n", r.rssNow2, r.rssPeak2)
	if r.lastErr != "" {
		fmt.Fprintf(w, "  last error: %s\n", r.lastErr)
	}
}
