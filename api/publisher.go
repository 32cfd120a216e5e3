package api

import (
	"context"
	"crypto/sha256"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/partnerhub/fulfillment/domain"
	"github.com/partnerhub/fulfillment/store"
	"github.com/partnerhub/fulfillment/vault"
	"github.com/partnerhub/fulfillment/wire"
	"github.com/partnerhub/fulfillment/workflows"
)

// publisherHandler answers one verified publisher message with a status and body.
type publisherHandler func(c *gin.Context, from caller) (int, any)

// publisherMessage makes a publisher endpoint idempotent by webhook-id: the
// first delivery is processed and its answer stored (refusals included); a
// redelivery, even a concurrent one (it waits for the first), gets the same
// answer and changes nothing. An answer that says the service was unavailable
// frees the webhook-id, so the publisher's retry is processed afresh.
func (s *Server) publisherMessage(h publisherHandler) gin.HandlerFunc {
	return func(c *gin.Context) {
		from := currentCaller(c)
		hash := sha256.Sum256(append([]byte(c.FullPath()+"\n"+c.Param("id")+"\n"), from.body...))
		pub, id := from.publisher.ID, from.webhookID
		messages := once{
			claim: func(ctx context.Context) (store.Claim, error) {
				return s.Store.ClaimPublisherMessage(ctx, pub, id, hash[:], s.UpdateTimeout+5*time.Second)
			},
			complete: func(ctx context.Context, status int, body []byte) error {
				return s.Store.CompletePublisherMessage(ctx, pub, id, status, body)
			},
			release:     func(ctx context.Context) error { return s.Store.ReleasePublisherMessage(ctx, pub, id) },
			reused:      problem(CodeIdempotencyKeyReused, "this webhook-id was used for a different message"),
			running:     problem(CodeIdempotencyKeyInUse, "this webhook-id is still being processed; retry shortly"),
			waitRunning: s.UpdateTimeout,
			frees:       func(status int) bool { return status >= 500 },
		}
		answerOnce(c, messages, "webhook-id", func() (int, any) { return h(c, from) })
	}
}

func fail(err error) (int, any) {
	var p *Problem
	if !errors.As(err, &p) {
		p = unavailable(err)
	}
	return p.Status, p
}

// publisherSubscription loads a subscription of one of the publisher's offers.
func (s *Server) publisherSubscription(c *gin.Context, from caller, id string) (domain.Subscription, error) {
	if !lookupable(id) {
		return domain.Subscription{}, problem(CodeNotFound, "no subscription "+strconv.Quote(id))
	}
	sub, err := s.Store.Subscription(c.Request.Context(), id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && sub.PublisherID != from.publisher.ID) {
		return sub, problem(CodeNotFound, "no subscription "+strconv.Quote(id))
	}
	if err != nil {
		return sub, unavailable(err)
	}
	c.Set(subscriptionIDKey, sub.ID)
	return sub, nil
}

// ResolveBody is the body of POST /v1/publisher/resolve.
type ResolveBody struct {
	AuthorizationCode string `json:"authorization_code"`
}

func (s *Server) resolve(c *gin.Context, from caller) (int, any) {
	var req ResolveBody
	if err := DecodeStrict(from.body, &req); err != nil {
		return fail(err)
	}
	if req.AuthorizationCode == "" || len(req.AuthorizationCode) > 256 {
		return fail(problem(CodeInvalidRequest, `field "authorization_code" is required`))
	}
	ctx := c.Request.Context()
	// One read: the code's subscription, its customer, partner and placement.
	r, err := s.Store.ResolveCode(ctx, vault.Hash(req.AuthorizationCode), s.Now())
	if errors.Is(err, store.ErrNotFound) || (err == nil && r.Subscription.PublisherID != from.publisher.ID) {
		return fail(problem(CodeNotFound, "unknown or expired authorization code"))
	} else if err != nil {
		return fail(unavailable(err))
	}
	sub, customer, partner := r.Subscription, r.Customer, r.Partner
	c.Set(subscriptionIDKey, sub.ID)
	err = s.Store.AppendEvent(ctx, domain.Event{
		SubscriptionID: sub.ID, Key: "resolved:" + sub.ID + ":" + from.publisher.ID + ":" + from.webhookID,
		At: s.Now().UTC(), Type: domain.EventLinkResolved, Actor: "publisher:" + from.publisher.ID,
	})
	if err != nil {
		return fail(unavailable(err))
	}
	view := wire.NewSubscription(sub, s.Now(), nil)
	placeOn(&view, r.Placement) // the site the customer chose, if any
	return http.StatusOK, gin.H{
		"subscription": view,
		"customer":     gin.H{"id": customer.ID, "name": customer.Name, "domain": customer.Domain},
		"partner":      gin.H{"id": partner.ID, "name": partner.Name},
	}
}

// LicensesBody is the body of POST /v1/publisher/subscriptions/{id}/licenses.
type LicensesBody struct {
	Assigned *int `json:"assigned"`
}

func (s *Server) assignLicenses(c *gin.Context, from caller) (int, any) {
	var req LicensesBody
	if err := DecodeStrict(from.body, &req); err != nil {
		return fail(err)
	}
	if req.Assigned == nil {
		return fail(problem(CodeInvalidRequest, `field "assigned" is required`))
	}
	return s.publisherUpdate(c, from, workflows.UpdateAssignLicenses, func(id string) any {
		return workflows.LicensesRequest{MessageID: id, Actor: publisherActor(from), Assigned: *req.Assigned}
	})
}

// ActivateBody is the body of POST /v1/publisher/subscriptions/{id}/activate.
type ActivateBody struct {
	SiteURL *string `json:"site_url"`
}

func (s *Server) confirmFulfillment(c *gin.Context, from caller) (int, any) {
	var req ActivateBody
	if len(from.body) > 0 {
		if err := DecodeStrict(from.body, &req); err != nil {
			return fail(err)
		}
	}
	if err := checkText("site_url", req.SiteURL, 2048); err != nil {
		return fail(err)
	}
	return s.publisherUpdate(c, from, workflows.UpdateConfirmFulfillment, func(id string) any {
		return workflows.FulfillmentRequest{MessageID: id, Actor: publisherActor(from), SiteURL: req.SiteURL}
	})
}

// publisherUpdate sends a publisher callback to the subscription's workflow;
// the webhook-id becomes the Update id, so Temporal deduplicates it too.
func (s *Server) publisherUpdate(c *gin.Context, from caller, update string, msg func(messageID string) any) (int, any) {
	sub, err := s.publisherSubscription(c, from, c.Param("id"))
	if err != nil {
		return fail(err)
	}
	id := "publisher:" + from.publisher.ID + ":" + from.webhookID
	updated, err := s.update(c.Request.Context(), sub.ID, update, id, msg(id))
	var p *Problem
	if errors.As(err, &p) && p.Status < 500 {
		// A refused callback (late, out of bounds) stays visible in the timeline.
		rerr := s.Store.AppendEvent(c.Request.Context(), domain.Event{
			SubscriptionID: sub.ID, Key: "refused:" + id, At: s.Now().UTC(), Type: "callback_refused",
			Actor: publisherActor(from).String(), Detail: map[string]any{"callback": update, "code": p.Code, "detail": p.Detail},
		})
		if rerr != nil {
			logger(c).Warn("record refused callback", "error", rerr)
		}
	}
	if err != nil {
		return fail(err)
	}
	view := wire.NewSubscription(updated, s.Now(), nil)
	if err := s.place(c.Request.Context(), &view); err != nil {
		return fail(err) // applied, not answered: the redelivery gets the answer
	}
	return http.StatusOK, view
}

func publisherActor(from caller) workflows.Actor {
	return workflows.Actor{Kind: "publisher", ID: from.publisher.ID}
}
