package workflows

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/partnerhub/fulfillment/domain"
)

var billing = Actor{Kind: "operator", ID: "billing"}

func withGrace(period string) func(*State) {
	return func(st *State) { st.Plan.PaymentGracePeriod = period }
}

// A failed payment suspends an active subscription; the payment within the
// grace period reinstates it with the same term and no new charge.
func TestPaymentReceivedWithinGraceReinstates(t *testing.T) {
	h := newHarness(t)
	h.fulfil()
	failed := h.update(20*time.Minute, UpdatePaymentFailed, "pf", PaymentRequest{MessageID: "pf", Actor: billing, Reason: "card declined"})
	suspended := h.queryAt(25 * time.Minute)
	paid := h.update(30*time.Minute, UpdatePaymentReceived, "pr", PaymentRequest{MessageID: "pr", Actor: billing})
	h.run(newInput("sub-sus", withNotifications, withoutAutoRenew, withGrace("PT20M")))

	s := failed.applied(t)
	assert.Equal(t, domain.StatusSuspended, s.Status)
	assert.Equal(t, domain.StatusSuspended, suspended.Status)
	back := paid.applied(t)
	assert.Equal(t, domain.StatusActive, back.Status)
	assert.Equal(t, at(testActivateAt), *back.TermStart, "the same term dates")
	assert.Equal(t, at(termEnd), *back.TermEnd)
	assert.Equal(t, domain.StatusExpired, h.result().Status, "the term ends as it would have")
	require.Len(t, h.store.LedgerOfKind(domain.LedgerCharge), 1)
	ev := h.store.Event(t, domain.EventSuspended)
	assert.Equal(t, "operator:billing", ev.Actor)
	assert.Equal(t, "card declined", ev.Detail["reason"])
	assert.Contains(t, h.store.NotificationTypes(), domain.NotifySuspended)
	assert.Contains(t, h.store.NotificationTypes(), domain.NotifyReinstated)
	assert.Equal(t, []string{"active", "suspended", "active", "expired"}, h.upsertedStatuses())
}

// Past the grace period the subscription ends (unsubscribed), cascades like a
// deactivation, and refunds nothing.
func TestGracePeriodEndsTheSubscription(t *testing.T) {
	h := newHarness(t)
	h.fulfil()
	h.update(20*time.Minute, UpdatePaymentFailed, "pf", PaymentRequest{MessageID: "pf", Actor: billing})
	h.run(newInput("sub-gone", withGrace("PT15M"), withLinked("app-1")))

	s := h.result()
	assert.Equal(t, domain.StatusUnsubscribed, s.Status)
	ev := h.store.Event(t, string(domain.StatusUnsubscribed))
	assert.Equal(t, at(35*time.Minute), ev.At, "at the end of the grace period")
	assert.Empty(t, h.store.LedgerOfKind(domain.LedgerRefund))
	assert.ElementsMatch(t, cascade("sub-gone", domain.StatusUnsubscribed, "app-1"), h.cascadeSignals())
}

// While suspended nothing renews: the term end passes; once paid, the
// subscription renews at once, charging the new term once.
func TestNothingRenewsWhileSuspended(t *testing.T) {
	h := newHarness(t)
	h.fulfil()
	h.update(termEnd-5*time.Minute, UpdatePaymentFailed, "pf", PaymentRequest{MessageID: "pf", Actor: billing})
	atTermEnd := h.queryAt(termEnd + time.Minute)
	paid := h.update(termEnd+10*time.Minute, UpdatePaymentReceived, "pr", PaymentRequest{MessageID: "pr", Actor: billing})
	h.suggestContinueAsNew(termEnd + 11*time.Minute)
	h.run(newInput("sub-nr", withGrace("P1D")))

	assert.Equal(t, domain.StatusSuspended, atTermEnd.Status)
	assert.Equal(t, 1, atTermEnd.TermNumber, "no renewal while suspended")
	paid.applied(t)
	next := h.continued()
	assert.Equal(t, 2, next.Subscription.TermNumber)
	assert.Equal(t, at(termEnd), *next.Subscription.TermStart, "the new term starts where the old one ended")
	charges := h.store.LedgerOfKind(domain.LedgerCharge)
	require.Len(t, charges, 2)
	assert.Equal(t, at(termEnd+10*time.Minute), charges[1].CreatedAt, "renewed at once when paid")
	assert.Equal(t, at(termEnd+11*time.Minute), h.env.Now().UTC(), "the run went on in term 2 until it was asked to continue as new")
}

// Only an active subscription is suspended, only a suspended one reinstated;
// a suspended subscription can still be cancelled inside its window (refunded)
// or deactivated.
func TestPaymentMessagesFollowTheStatus(t *testing.T) {
	h := newHarness(t)
	early := h.update(time.Minute, UpdatePaymentFailed, "pf0", PaymentRequest{MessageID: "pf0", Actor: billing})
	h.fulfil()
	notSuspended := h.update(5*time.Minute, UpdatePaymentReceived, "pr0", PaymentRequest{MessageID: "pr0", Actor: billing})
	h.update(6*time.Minute, UpdatePaymentFailed, "pf1", PaymentRequest{MessageID: "pf1", Actor: billing})
	again := h.update(7*time.Minute, UpdatePaymentFailed, "pf2", PaymentRequest{MessageID: "pf2", Actor: billing})
	cancel := h.update(8*time.Minute, UpdateCancel, "c", EndRequest{MessageID: "c", Actor: admin})
	h.run(newInput("sub-pm"))

	early.rejectedWith(t, ErrInvalidState)
	notSuspended.rejectedWith(t, ErrInvalidState)
	again.rejectedWith(t, ErrInvalidState)
	assert.Equal(t, domain.StatusCancelled, cancel.applied(t).Status)
	assert.Zero(t, h.store.Balance(), "a suspended subscription cancelled inside its window is refunded")
}
