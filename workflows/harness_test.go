package workflows

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/partnerhub/fulfillment/domain"
)

// The fixtures below use an hour-long term so every timer is obvious:
//
//	t0          purchase; activation deadline at t0+30m
//	t0+2m       licenses assigned (testLicensesAt)
//	t0+3m       fulfillment confirmed → active, term [t0+3m, t0+63m), window [t0+3m, t0+13m)
var t0 = time.Date(2030, time.January, 1, 9, 0, 0, 0, time.UTC)

const (
	unitPrice      = int64(1200)
	testQuantity   = 5
	testLicensesAt = 2 * time.Minute
	testActivateAt = 3 * time.Minute
	testTerm       = time.Hour
	testWindow     = 10 * time.Minute
	testActivation = 30 * time.Minute
)

func testPlan() domain.Plan {
	return domain.Plan{
		ID: "std-hourly", OfferID: "contoso-analytics", Name: "Standard hourly",
		Term: "PT1H", UnitPriceMinor: unitPrice, Currency: "USD",
		MinQuantity: 1, MaxQuantity: 10,
		CancellationWindow: "PT10M", ActivationDeadline: "PT30M",
	}
}

// newInput builds the start input of a fresh purchase at t0, as the API
// builds it (NewState: the current code paths carried); options tweak it.
func newInput(id string, opts ...func(*State)) State {
	plan := testPlan()
	in := NewState(domain.Subscription{
		ID: id, PartnerID: "fabrikam", CustomerID: "woodgrove", PublisherID: "contoso",
		OfferID: plan.OfferID, PlanID: plan.ID, Quantity: testQuantity, AutoRenew: true,
		EntitlementNumber:  domain.EntitlementNumber(id),
		Status:             domain.StatusPendingFulfillment,
		ActivationDeadline: domain.MustAdd(t0, plan.ActivationDeadline),
		CreatedAt:          t0, UpdatedAt: t0,
	}, plan, Actor{Kind: "agent", ID: "alice"})
	for _, o := range opts {
		o(&in)
	}
	return in
}

// startedBefore makes the input one written before the carried code paths
// (no SavesDurably, no RenewsInPlace), as every input of a subscription
// started, or continued as new, by earlier code: its runs ask GetVersion.
func startedBefore(in *State) { in.SavesDurably, in.RenewsInPlace = false, false }

func withoutAutoRenew(in *State)  { in.Subscription.AutoRenew = false }
func withNotifications(in *State) { in.NotifyPublisher = true }
func withParent(id string) func(*State) {
	return func(in *State) { in.Subscription.ParentSubscriptionID = &id }
}
func withLinked(ids ...string) func(*State) {
	return func(in *State) { in.Subscription.LinkedSubscriptionIDs = ids }
}

// fakeStore stands in for the SaveSubscription activity. It records
// every Change it receives, in order.
type fakeStore struct {
	mu           sync.Mutex
	changes      []domain.Change // what was saved, in order
	tried        []domain.Change // every attempt, failed ones included
	parentStatus domain.Status   // reported in every SaveResult
	// defaultAccount is the billing account a purchase's write places it on.
	defaultAccount *string
	failFirst      int // number of leading calls that fail (transient)
	// down, while true, fails every call (a database outage).
	down atomic.Bool
	// hold, when set, runs before a change is recorded; it may block the
	// local activity to pin down an interleaving.
	hold func(domain.Change)
}

func (f *fakeStore) Save(_ context.Context, c domain.Change) (domain.SaveResult, error) {
	if f.hold != nil {
		f.hold(c)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tried = append(f.tried, c)
	if len(f.tried) <= f.failFirst || f.down.Load() {
		return domain.SaveResult{}, errors.New("connection reset by peer")
	}
	f.changes = append(f.changes, c)
	res := domain.SaveResult{ParentStatus: f.parentStatus}
	if len(c.Events) > 0 && c.Events[0].Type == domain.EventPurchased {
		res.BillingAccountID = f.defaultAccount
	}
	return res, nil
}

func (f *fakeStore) Changes() []domain.Change {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]domain.Change(nil), f.changes...)
}

func (f *fakeStore) Ledger() []domain.LedgerEntry {
	var out []domain.LedgerEntry
	for _, c := range f.Changes() {
		out = append(out, c.Ledger...)
	}
	return out
}

func (f *fakeStore) Events() []domain.Event {
	var out []domain.Event
	for _, c := range f.Changes() {
		out = append(out, c.Events...)
	}
	return out
}

func (f *fakeStore) EventTypes() []string {
	var out []string
	for _, e := range f.Events() {
		out = append(out, e.Type)
	}
	return out
}

func (f *fakeStore) EventsOfType(typ string) []domain.Event {
	var out []domain.Event
	for _, e := range f.Events() {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

// Event requires exactly one event of type typ and returns it.
func (f *fakeStore) Event(t *testing.T, typ string) domain.Event {
	t.Helper()
	evs := f.EventsOfType(typ)
	require.Len(t, evs, 1, "events of type %s", typ)
	return evs[0]
}

func (f *fakeStore) NotificationTypes() []string {
	var out []string
	for _, c := range f.Changes() {
		for _, n := range c.Notifications {
			out = append(out, n.Type)
		}
	}
	return out
}

// Last is the newest snapshot the read model would hold.
func (f *fakeStore) Last() domain.Subscription {
	cs := f.Changes()
	if len(cs) == 0 {
		return domain.Subscription{}
	}
	return cs[len(cs)-1].Subscription
}

// LedgerOfKind filters ledger rows by kind.
func (f *fakeStore) LedgerOfKind(kind string) []domain.LedgerEntry {
	var out []domain.LedgerEntry
	for _, l := range f.Ledger() {
		if l.Kind == kind {
			out = append(out, l)
		}
	}
	return out
}

// Balance is the plain sum of the ledger.
func (f *fakeStore) Balance() int64 {
	var sum int64
	for _, l := range f.Ledger() {
		sum += l.AmountMinor
	}
	return sum
}

// requireConsistent checks what the database's unique keys and the read
// model's version column rely on: every ledger row, event and notification has
// a unique key, and snapshot versions only grow.
func (f *fakeStore) requireConsistent(t *testing.T) {
	t.Helper()
	ledger, events, notes := map[string]bool{}, map[string]bool{}, map[string]bool{}
	var version int64
	for i, c := range f.Changes() {
		require.Greater(t, c.Subscription.Version, version, "change %d: snapshot version must grow", i)
		version = c.Subscription.Version
		for _, l := range c.Ledger {
			require.False(t, ledger[l.ID], "duplicate ledger key %s", l.ID)
			ledger[l.ID] = true
		}
		for _, e := range c.Events {
			require.False(t, events[e.Key], "duplicate event key %s", e.Key)
			events[e.Key] = true
		}
		for _, n := range c.Notifications {
			require.False(t, notes[n.ID], "duplicate notification id %s", n.ID)
			notes[n.ID] = true
		}
	}
}

// outcome collects what the test environment reported for one update.
type outcome struct {
	mu        sync.Mutex
	name      string
	accepted  bool
	rejected  error
	completed bool
	result    domain.Subscription
	err       error
}

func (o *outcome) Accept() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.accepted = true
}

func (o *outcome) Reject(err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.rejected = err
}

func (o *outcome) Complete(success any, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.completed = true
	o.err = err
	if s, ok := success.(domain.Subscription); ok {
		o.result = s
	}
}

// applied requires the update to have been accepted and to have completed
// without error, and returns the subscription it answered with.
func (o *outcome) applied(t *testing.T) domain.Subscription {
	t.Helper()
	o.mu.Lock()
	defer o.mu.Unlock()
	require.NoError(t, o.rejected, "%s: rejected by its validator", o.name)
	require.True(t, o.accepted, "%s: never accepted", o.name)
	require.True(t, o.completed, "%s: never completed", o.name)
	require.NoError(t, o.err, "%s: handler failed", o.name)
	return o.result
}

// rejectedWith requires the validator to have refused the update with code.
func (o *outcome) rejectedWith(t *testing.T, code string) {
	t.Helper()
	o.mu.Lock()
	defer o.mu.Unlock()
	require.Error(t, o.rejected, "%s: expected a %s rejection (accepted=%v, completed=%v, err=%v)", o.name, code, o.accepted, o.completed, o.err)
	got, _, ok := ProblemCode(o.rejected)
	require.True(t, ok, "%s: rejection %v carries no problem code", o.name, o.rejected)
	require.Equal(t, code, got, "%s: %v", o.name, o.rejected)
	require.False(t, o.accepted, "%s: both accepted and rejected", o.name)
}

// validated reports whether the update got past (or was stopped by) its validator.
func (o *outcome) validated() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.accepted || o.rejected != nil
}

// answered reports whether the environment said anything at all about the update.
func (o *outcome) answered() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.rejected != nil || o.completed
}

// harness runs one workflow run in a time-skipping test environment with the
// fake store and mocks that record cascade signals and status upserts.
type harness struct {
	t     *testing.T
	env   *testsuite.TestWorkflowEnvironment
	store *fakeStore

	mu        sync.Mutex
	signalErr error // what every cascade signal returns
	signals   []sentSignal
	statuses  []string
	memos     []map[string]any
	// asks are the change ids the run passed to workflow.GetVersion, in
	// order; changeVersions the TemporalChangeVersion upserts the SDK made
	// for them. On a real server each first ask of a change id in a run is
	// a MarkerRecorded and an UpsertWorkflowSearchAttributes event.
	asks           []string
	changeVersions int
	// answers are the versions answerVersion set, by change id.
	answers map[string]workflow.Version
}

type sentSignal struct {
	WorkflowID string
	Name       string
	Arg        ParentEnded
}

func newHarness(t *testing.T) *harness { return newHarnessAt(t, t0) }

func newHarnessAt(t *testing.T, start time.Time) *harness {
	var suite testsuite.WorkflowTestSuite
	suite.SetLogger(log.NewStructuredLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))))
	h := &harness{t: t, env: suite.NewTestWorkflowEnvironment(), store: &fakeStore{}}
	h.env.SetStartTime(start)
	h.env.RegisterWorkflow(SubscriptionWorkflow)
	h.env.RegisterActivityWithOptions(h.store.Save, activity.RegisterOptions{Name: ActivitySaveSubscription})
	h.env.OnSignalExternalWorkflow(mock.Anything, mock.Anything, mock.Anything, mock.Anything, mock.Anything).
		Return(func(_, workflowID, _, signalName string, arg any) error {
			pe, _ := arg.(ParentEnded)
			h.mu.Lock()
			defer h.mu.Unlock()
			h.signals = append(h.signals, sentSignal{WorkflowID: workflowID, Name: signalName, Arg: pe})
			return h.signalErr
		})
	// The test environment needs no search attribute registered: an upsert is
	// serialized and merged into the run's info. The mock records the statuses.
	h.env.OnUpsertTypedSearchAttributes(mock.Anything).Return(nil).Run(func(args mock.Arguments) {
		sa := args.Get(0).(temporal.SearchAttributes)
		status, ok := sa.GetKeyword(statusKey)
		h.mu.Lock()
		defer h.mu.Unlock()
		if ok {
			h.statuses = append(h.statuses, status)
		}
	})
	// Every GetVersion is answered as the test environment does by default
	// (the newest version), and recorded; answerVersion answers one change
	// id otherwise. The SDK's TemporalChangeVersion upserts come through the
	// untyped upsert.
	for changeID, newest := range map[string]workflow.Version{
		durableSaveChange: durableSaveVersion, renewInPlaceChange: renewInPlaceVersion,
	} {
		h.env.OnGetVersion(changeID, workflow.DefaultVersion, newest).Return(
			func(string, workflow.Version, workflow.Version) workflow.Version {
				h.mu.Lock()
				defer h.mu.Unlock()
				h.asks = append(h.asks, changeID)
				if v, ok := h.answers[changeID]; ok {
					return v
				}
				return newest
			})
	}
	h.env.OnUpsertSearchAttributes(mock.Anything).Return(nil).Run(func(args mock.Arguments) {
		if _, ok := args.Get(0).(map[string]any)["TemporalChangeVersion"]; ok {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.changeVersions++
		}
	})
	h.env.OnUpsertMemo(mock.Anything).Return(nil).Run(func(args mock.Arguments) {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.memos = append(h.memos, args.Get(0).(map[string]any))
	})
	// A subscription that renews in place never ends its run on its own: a
	// test that forgot to end it fails here instead of renewing for ever.
	h.at(runaway, func() {
		t.Errorf("the run was still going %s after its start: end it (suggestContinueAsNew, an expiry, a cancel)", runaway)
		h.suggestContinueAsNew(0)
	})
	return h
}

// runaway is how long a test's run may last in virtual time, far more than
// any test needs (a hundred terms).
const runaway = 100 * testTerm

// suggestContinueAsNew has Temporal suggest continue-as-new at a virtual
// offset, and wakes the workflow as the server's next workflow task would
// (with an Update no handler takes, which the SDK rejects): the run then
// continues as new without waiting for its next timer.
func (h *harness) suggestContinueAsNew(after time.Duration) {
	h.at(after, func() {
		h.env.SetContinueAsNewSuggested(true)
		h.env.UpdateWorkflow("test-wake", "", &outcome{name: "wake"})
	})
}

// oneTermPerRun drives the run on the renewal path of runs from before
// renewInPlace (its version marker absent, as in a history recorded then):
// it continues as new at each renewal.
// Its input must not carry RenewsInPlace (startedBefore), or the run never asks.
func (h *harness) oneTermPerRun() {
	h.answerVersion(renewInPlaceChange, workflow.DefaultVersion)
}

// answerVersion has GetVersion of changeID answer v, as replaying a history
// recorded with v would (unset, it answers the newest version).
func (h *harness) answerVersion(changeID string, v workflow.Version) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.answers == nil {
		h.answers = map[string]workflow.Version{}
	}
	h.answers[changeID] = v
}

// versionAsks are the change ids the run asked GetVersion, in order.
func (h *harness) versionAsks() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.asks...)
}

func (h *harness) changeVersionUpserts() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.changeVersions
}

// at runs fn at a virtual offset from the start (or from now, when called
// from a callback).
func (h *harness) at(after time.Duration, fn func()) { h.env.RegisterDelayedCallback(fn, after) }

// holdSave blocks the save of the first change that has an event of type
// eventType until release reports true (polled in wall time; it fails after
// two seconds, before the environment's own three-second test timeout).
// While a save runs the test clock stands still unless a timer is due, and
// the environment keeps delivering messages, so this pins down which of two
// same-instant happenings reaches the workflow first.
func (h *harness) holdSave(eventType string, release func() bool) {
	var once sync.Once
	h.store.hold = func(c domain.Change) {
		for _, e := range c.Events {
			if e.Type != eventType {
				continue
			}
			once.Do(func() {
				deadline := time.Now().Add(2 * time.Second)
				for !release() {
					if time.Now().After(deadline) {
						h.t.Errorf("save of %s held for 2s: the release condition never came true", eventType)
						return
					}
					time.Sleep(time.Millisecond)
				}
				time.Sleep(20 * time.Millisecond) // let the main loop run what the release made due
			})
			return
		}
	}
}

// update sends an Update at the given virtual offset from the start. The
// outcome is filled in by the environment's callbacks.
func (h *harness) update(after time.Duration, name, updateID string, args ...any) *outcome {
	o := &outcome{name: fmt.Sprintf("%s %s@%s", name, updateID, after)}
	h.env.RegisterDelayedCallback(func() { h.env.UpdateWorkflow(name, updateID, o, args...) }, after)
	return o
}

// updateNow sends an Update from inside a callback that is already running.
func (h *harness) updateNow(name, updateID string, args ...any) *outcome {
	o := &outcome{name: name + " " + updateID}
	h.env.UpdateWorkflow(name, updateID, o, args...)
	return o
}

func (h *harness) signalParentEnded(after time.Duration, pe ParentEnded) {
	h.env.RegisterDelayedCallback(func() { h.env.SignalWorkflow(SignalParentEnded, pe) }, after)
}

// queryAt records the workflow's state at a virtual offset from the start.
func (h *harness) queryAt(after time.Duration) *domain.Subscription {
	var s domain.Subscription
	h.env.RegisterDelayedCallback(func() {
		v, err := h.env.QueryWorkflow(QueryState)
		require.NoError(h.t, err)
		require.NoError(h.t, v.Get(&s))
	}, after)
	return &s
}

// fulfil sends both publisher callbacks at the standard times.
func (h *harness) fulfil() (licenses, activate *outcome) {
	licenses = h.update(testLicensesAt, UpdateAssignLicenses, "wh-licenses",
		LicensesRequest{MessageID: "wh-licenses", Actor: publisher, Assigned: 3})
	activate = h.update(testActivateAt, UpdateConfirmFulfillment, "wh-activate",
		FulfillmentRequest{MessageID: "wh-activate", Actor: publisher, SiteURL: ptr("https://contoso.example/t/woodgrove")})
	return licenses, activate
}

var (
	publisher = Actor{Kind: "publisher", ID: "contoso"}
	admin     = Actor{Kind: "agent", ID: "alice"}
)

func (h *harness) run(in State) {
	h.t.Helper()
	h.mu.Lock()
	_, durable := h.answers[durableSaveChange]
	_, inPlace := h.answers[renewInPlaceChange]
	h.mu.Unlock()
	// A version answered for a path the input carries would never be asked.
	require.False(h.t, durable && in.SavesDurably, "the input carries SavesDurably: use startedBefore")
	require.False(h.t, inPlace && in.RenewsInPlace, "the input carries RenewsInPlace: use startedBefore")
	h.env.ExecuteWorkflow(SubscriptionWorkflow, in)
	require.True(h.t, h.env.IsWorkflowCompleted(), "workflow did not complete")
}

// result requires the run to have ended without error and returns the final subscription.
func (h *harness) result() domain.Subscription {
	h.t.Helper()
	require.NoError(h.t, h.env.GetWorkflowError())
	var s domain.Subscription
	require.NoError(h.t, h.env.GetWorkflowResult(&s))
	return s
}

// continued requires the run to have continued as new and decodes the carried input.
func (h *harness) continued() State {
	h.t.Helper()
	var can *workflow.ContinueAsNewError
	require.ErrorAs(h.t, h.env.GetWorkflowError(), &can)
	require.Equal(h.t, "SubscriptionWorkflow", can.WorkflowType.Name)
	var next State
	require.NoError(h.t, converter.GetDefaultDataConverter().FromPayloads(can.Input, &next))
	return next
}

// cascadeSignals are the parent_ended signals sent.
func (h *harness) cascadeSignals() []sentSignal {
	var out []sentSignal
	for _, s := range h.sentSignals() {
		if s.Name == SignalParentEnded {
			out = append(out, s)
		}
	}
	return out
}

func (h *harness) sentSignals() []sentSignal {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]sentSignal(nil), h.signals...)
}

func (h *harness) upsertedStatuses() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.statuses...)
}

func ptr[T any](v T) *T { return &v }

func at(d time.Duration) time.Time { return t0.Add(d) }

// jsonOf is v as the store receives it: activity inputs travel as JSON, so
// numbers in an event's detail arrive as float64.
func jsonOf(v map[string]any) map[string]any {
	raw, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		panic(err)
	}
	return out
}

// unchanged requires the validator to have refused the update as a no-op
// (it costs no history) and returns the subscription the refusal carried.
func (o *outcome) unchanged(t *testing.T) domain.Subscription {
	t.Helper()
	o.mu.Lock()
	defer o.mu.Unlock()
	require.Error(t, o.rejected, "%s: expected a no-op refusal (accepted=%v, err=%v)", o.name, o.accepted, o.err)
	s, ok := Unchanged(o.rejected)
	require.True(t, ok, "%s: %v is not a no-op refusal", o.name, o.rejected)
	return s
}

// refusedWith requires the update to have been refused with code: by its
// validator, or, when it was validated while another transition's write was
// still running (the validator sees the saved state), by its handler's
// re-check. The caller gets the same problem either way.
func (o *outcome) refusedWith(t *testing.T, code string) {
	t.Helper()
	o.mu.Lock()
	err := o.rejected
	if err == nil {
		require.True(t, o.completed, "%s: never answered", o.name)
		err = o.err
	}
	o.mu.Unlock()
	require.Error(t, err, "%s: expected a %s refusal", o.name, code)
	got, _, ok := ProblemCode(err)
	require.True(t, ok, "%s: refusal %v carries no problem code", o.name, err)
	require.Equal(t, code, got, "%s: %v", o.name, err)
}
