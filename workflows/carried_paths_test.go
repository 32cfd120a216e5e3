package workflows

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"

	"github.com/partnerhub/fulfillment/domain"
)

// writes counts the run's SaveSubscription calls by kind: regular
// activities (the durable write path) and local activities (the path of
// runs from before durableSave).
type writes struct{ regular, local atomic.Int32 }

func (h *harness) countWrites() *writes {
	w := &writes{}
	h.env.SetOnActivityStartedListener(func(*activity.Info, context.Context, converter.EncodedValues) { w.regular.Add(1) })
	h.env.SetOnLocalActivityStartedListener(func(*activity.Info, context.Context, []any) { w.local.Add(1) })
	return w
}

// twoRenewalsInPlace drives a run through purchase, fulfilment, a patch in
// term 2 and two renewals, then has Temporal suggest continue-as-new in
// term 3.
func twoRenewalsInPlace(h *harness) (patch *outcome) {
	h.fulfil()
	patch = h.update(termEnd+time.Minute, UpdateChange, "p2", ChangeRequest{MessageID: "p2", Actor: admin, Nickname: ptr("term 2")})
	h.suggestContinueAsNew(termEnd + testTerm + time.Minute)
	return patch
}

// A subscription started by the current code (NewState) asks no version:
// no GetVersion, so on a server no MarkerRecorded and no
// TemporalChangeVersion upsert, in its first run nor at its renewals. It
// writes durably and renews in place, and carries both paths on.
func TestCarriedPathsAskNoVersion(t *testing.T) {
	h := newHarness(t)
	w := h.countWrites()
	patch := twoRenewalsInPlace(h)
	in := newInput("sub-carried", withNotifications)
	require.True(t, in.SavesDurably && in.RenewsInPlace, "NewState carries the current paths")
	h.run(in)

	next := h.continued()
	assert.Empty(t, h.versionAsks(), "no GetVersion")
	assert.Zero(t, h.changeVersionUpserts(), "no TemporalChangeVersion upsert")
	assert.Equal(t, 3, next.Subscription.TermNumber, "both renewals in place, in this run")
	assert.Equal(t, 2, patch.applied(t).TermNumber)
	assert.Len(t, h.store.LedgerOfKind(domain.LedgerCharge), 3)
	assert.Equal(t, int32(len(h.store.Changes())), w.regular.Load(), "every write a regular activity")
	assert.Zero(t, w.local.Load(), "no local-activity write")
	assert.True(t, next.SavesDurably)
	assert.True(t, next.RenewsInPlace)
	h.store.requireConsistent(t)
}

// The same run from an input written before the carried paths asks
// GetVersion exactly where it did (durable-save at the start, renew-in-place
// at the first renewal only), and otherwise does the very same: the same
// writes, the same statuses, the same state carried on, which now holds both
// answers.
func TestInputWithoutPathsAsksAsBeforeAndCarriesTheAnswers(t *testing.T) {
	carried := newHarness(t)
	twoRenewalsInPlace(carried)
	carried.run(newInput("sub-same", withNotifications))

	old := newHarness(t)
	w := old.countWrites()
	twoRenewalsInPlace(old)
	in := newInput("sub-same", withNotifications, startedBefore)
	old.run(in)

	next := old.continued()
	assert.Equal(t, []string{durableSaveChange, renewInPlaceChange}, old.versionAsks(), "asked at the start and at the first of two renewals")
	assert.Equal(t, 2, old.changeVersionUpserts())
	assert.Zero(t, w.local.Load(), "the durable path")
	assert.True(t, next.SavesDurably, "the answer is carried to the next run")
	assert.True(t, next.RenewsInPlace, "the answer is carried to the next run")
	assert.Equal(t, carried.store.Changes(), old.store.Changes(), "the same writes")
	assert.Equal(t, carried.upsertedStatuses(), old.upsertedStatuses())
	assert.Equal(t, carried.continued(), next, "the same state carried on")

	// The next run asks nothing, and renews in place.
	h := newHarnessAt(t, old.env.Now())
	h.suggestContinueAsNew(next.Subscription.TermEnd.Sub(old.env.Now()) + time.Minute)
	h.run(next)
	after := h.continued()
	assert.Empty(t, h.versionAsks())
	assert.Zero(t, h.changeVersionUpserts())
	assert.Equal(t, 4, after.Subscription.TermNumber)
	assert.True(t, after.SavesDurably && after.RenewsInPlace)
}

// A run from an old input that continues as new before any renewal carries
// the write path only: the next run still asks renew-in-place at its first
// renewal (nothing answered it yet), and carries that answer on.
func TestRenewalAskedByTheFirstRunThatRenews(t *testing.T) {
	first := newHarness(t)
	first.fulfil()
	first.suggestContinueAsNew(testActivateAt + time.Minute)
	first.run(newInput("sub-later", startedBefore))
	next := first.continued()
	assert.Equal(t, []string{durableSaveChange}, first.versionAsks())
	assert.True(t, next.SavesDurably)
	assert.False(t, next.RenewsInPlace, "not asked yet")

	h := newHarnessAt(t, first.env.Now())
	w := h.countWrites()
	h.suggestContinueAsNew(termEnd - (testActivateAt + time.Minute) + time.Minute)
	h.run(next)
	after := h.continued()
	assert.Equal(t, []string{renewInPlaceChange}, h.versionAsks(), "the write path came with the input")
	assert.Equal(t, 1, h.changeVersionUpserts())
	assert.Zero(t, w.local.Load())
	assert.Equal(t, 2, after.Subscription.TermNumber)
	assert.Equal(t, at(termEnd+time.Minute), h.env.Now().UTC(), "renewed in place, then asked to continue as new")
	assert.True(t, after.SavesDurably && after.RenewsInPlace)
}

// Runs answered DefaultVersion (replaying histories recorded before either
// change) take the old paths as before: local-activity writes, one term per
// run. Nothing is carried: their next run asks again, as it always did.
func TestOldPathsUnderDefaultVersion(t *testing.T) {
	h := newHarness(t)
	w := h.countWrites()
	h.answerVersion(durableSaveChange, 0)
	h.oneTermPerRun()
	h.fulfil()
	h.run(newInput("sub-v0", withNotifications, startedBefore))

	next := h.continued()
	assert.Equal(t, []string{durableSaveChange, renewInPlaceChange}, h.versionAsks())
	assert.Equal(t, at(termEnd), h.env.Now().UTC(), "continued as new at the renewal")
	assert.Equal(t, 2, next.Subscription.TermNumber)
	assert.Equal(t, int32(len(h.store.Changes())), w.local.Load(), "every write a local activity")
	assert.Zero(t, w.regular.Load())
	assert.False(t, next.SavesDurably, "the old write path is not carried")
	assert.False(t, next.RenewsInPlace, "the old renewal is not carried")
	h.store.requireConsistent(t)
}
