// POST /v1/billing/events: the partner's billing system reports payment
// events (issue 13, item 4), signed like publisher messages with the
// partner's billing secret; each event is taken once, by its event_id.

package api

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/partnerhub/fulfillment/store"
	"github.com/partnerhub/fulfillment/workflows"
)

// Billing event types and the Update each one sends.
var billingEventUpdates = map[string]string{
	"payment_failed":   workflows.UpdatePaymentFailed,
	"payment_received": workflows.UpdatePaymentReceived,
}

// BillingEventBody is the body of POST /v1/billing/events.
type BillingEventBody struct {
	EventID        string     `json:"event_id"`
	Type           string     `json:"type"`
	SubscriptionID string     `json:"subscription_id"`
	Reason         *string    `json:"reason,omitempty"`
	OccurredAt     *time.Time `json:"occurred_at,omitempty"`
}

// Bounds of a billing event's text fields.
const (
	maxBillingEventID = 255
	maxBillingReason  = 500
)

// DecodeBillingEvent decodes and shape-checks a billing event.
func DecodeBillingEvent(body []byte) (BillingEventBody, error) {
	var req BillingEventBody
	if err := DecodeStrict(body, &req); err != nil {
		return req, err
	}
	for _, f := range []struct{ name, value string }{
		{"event_id", req.EventID}, {"type", req.Type}, {"subscription_id", req.SubscriptionID},
	} {
		if strings.TrimSpace(f.value) == "" {
			return req, problem(CodeInvalidRequest, fmt.Sprintf("field %q is required", f.name))
		}
	}
	if billingEventUpdates[req.Type] == "" {
		return req, problem(CodeInvalidRequest, `field "type" must be "payment_failed" or "payment_received"`)
	}
	if err := checkText("event_id", &req.EventID, maxBillingEventID); err != nil {
		return req, err
	}
	if err := checkText("reason", req.Reason, maxBillingReason); err != nil {
		return req, err
	}
	if req.OccurredAt != nil {
		t := req.OccurredAt.UTC().Truncate(time.Microsecond)
		req.OccurredAt = &t
	}
	return req, nil
}

const billingSystemKey = "billing_system"

// billingSystem is a partner's billing system whose signature verified.
type billingSystem struct {
	partner store.Partner
	body    []byte
}

func (b billingSystem) actor() workflows.Actor {
	return workflows.Actor{Kind: "billing", ID: b.partner.ID}
}

// authenticateBillingSystem checks the Standard Webhooks signature against
// every active billing secret of the partner named by X-Partner-Id. A
// rejected message consumes nothing (as for publishers).
func (s *Server) authenticateBillingSystem(c *gin.Context) {
	// Verified events spend a bucket of their own: the partner's agents keep theirs.
	partner, body, ok := authenticateSigned(s, c, signedSender[store.Partner]{
		header: "X-Partner-Id", kind: "billing", unknown: "unknown partner", ownerKey: "partner_id",
		limiter: s.partnerLimiter,
		lookup:  s.Store.Partner,
		id:      func(p store.Partner) string { return p.ID },
		tenant:  func(p store.Partner) string { return p.ID },
		secrets: func(ctx context.Context, p store.Partner) ([][]byte, error) {
			return s.Store.BillingSecrets(ctx, p.ID, s.Now())
		},
	})
	if !ok {
		return
	}
	c.Set(billingSystemKey, billingSystem{partner: partner, body: body})
	c.Next()
}

// billingEvent takes one payment event: the first delivery of an event_id is
// sent to the subscription's workflow and its answer stored (refusals
// included); the same event again gets that answer, another event under the
// same id is 422. An unavailable answer frees the id for the retry.
func (s *Server) billingEvent(c *gin.Context) {
	from := c.MustGet(billingSystemKey).(billingSystem)
	req, err := DecodeBillingEvent(from.body)
	if err != nil {
		writeProblem(c, err)
		return
	}
	c.Set(subscriptionIDKey, req.SubscriptionID)
	canonical, _ := json.Marshal(req)
	hash := sha256.Sum256(canonical)
	partner := from.partner.ID
	events := once{
		claim: func(ctx context.Context) (store.Claim, error) {
			return s.Store.ClaimBillingEvent(ctx, partner, req.EventID, hash[:], s.UpdateTimeout+5*time.Second)
		},
		complete: func(ctx context.Context, status int, body []byte) error {
			return s.Store.CompleteBillingEvent(ctx, partner, req.EventID, status, body)
		},
		release:     func(ctx context.Context) error { return s.Store.ReleaseBillingEvent(ctx, partner, req.EventID) },
		reused:      problem(CodeIdempotencyKeyReused, "this event_id was used for a different event"),
		running:     problem(CodeIdempotencyKeyInUse, "this event is still being processed; retry shortly"),
		waitRunning: s.UpdateTimeout,
		frees:       func(status int) bool { return status >= 500 },
	}
	answerOnce(c, events, "billing event", func() (int, any) { return s.applyBillingEvent(c, from, req) })
}

// applyBillingEvent sends the event to the workflow of one of the partner's
// own subscriptions (another partner's is 404) and audits the outcome.
func (s *Server) applyBillingEvent(c *gin.Context, from billingSystem, req BillingEventBody) (int, any) {
	ctx := c.Request.Context()
	notFound := problem(CodeNotFound, "no subscription "+strconv.Quote(req.SubscriptionID))
	if !lookupable(req.SubscriptionID) {
		return fail(notFound)
	}
	sub, err := s.Store.Subscription(ctx, req.SubscriptionID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && sub.PartnerID != from.partner.ID) {
		return fail(notFound)
	} else if err != nil {
		return fail(unavailable(err))
	}
	update := billingEventUpdates[req.Type]
	msg := workflows.PaymentRequest{
		MessageID: "billing-event:" + from.partner.ID + ":" + req.EventID, Actor: from.actor(), OccurredAt: req.OccurredAt,
	}
	if req.Reason != nil {
		msg.Reason = *req.Reason
	}
	updated, err := s.update(ctx, sub.ID, update, msg.MessageID, msg)
	outcome := "ok"
	if err != nil {
		outcome = fmt.Sprint(err)
	}
	s.audit(c, from.actor().String(), from.partner.ID, "billing."+update, outcome,
		map[string]any{"subscription_id": sub.ID, "event_id": req.EventID, "reason": msg.Reason})
	if err != nil {
		return fail(err)
	}
	view, err := s.partnerView(ctx, updated)
	if err != nil {
		return fail(err) // applied, not answered: the retry gets the answer
	}
	return http.StatusOK, view
}
