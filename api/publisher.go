package api

import (
	"context"
	"crypto/sha256"
	"encoding/json"
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
// first delivery is processed and its answer stored; a redelivery (even a
// concurrent one) gets the same answer and changes nothing.
func (s *Server) publisherMessage(h publisherHandler) gin.HandlerFunc {
	return func(c *gin.Context) {
		from := currentCaller(c)
		ctx := c.Request.Context()
		hash := sha256.Sum256(append([]byte(c.FullPath()+"\n"+c.Param("id")+"\n"), from.body...))
		deadline := time.Now().Add(s.UpdateTimeout)
		for {
			claim, err := s.Store.ClaimPublisherMessage(ctx, from.publisher.ID, from.webhookID, hash[:], s.UpdateTimeout+5*time.Second)
			if err != nil {
				writeProblem(c, unavailable(err))
				return
			}
			switch claim.State {
			case store.ClaimMismatch:
				writeProblem(c, problem(CodeIdempotencyKeyReused, "this webhook-id was used for a different message"))
				return
			case store.ClaimReplay:
				c.Header("Idempotent-Replayed", "true")
				contentType := "application/json; charset=utf-8"
				if claim.ResponseStatus >= 400 {
					contentType = "application/problem+json"
				}
				c.Data(claim.ResponseStatus, contentType, claim.ResponseBody)
				return
			case store.ClaimInUse:
				if time.Now().After(deadline) {
					writeProblem(c, problem(CodeIdempotencyKeyInUse, "this webhook-id is still being processed; retry shortly"))
					return
				}
				select { // the first delivery is still running: wait for its answer
				case <-ctx.Done():
					return
				case <-time.After(50 * time.Millisecond):
				}
				continue
			}
			break
		}
		status, answer := h(c, from)
		// The claim is settled even when the publisher hung up meanwhile
		// (its request context is cancelled then): otherwise its retry would
		// find the webhook-id locked until the claim goes stale.
		settle := context.WithoutCancel(ctx)
		if p, ok := answer.(*Problem); ok {
			if p.cause != nil {
				logger(c).Warn("dependency failed", "code", p.Code, "error", p.cause)
			}
			if p.Status >= 500 {
				// Nothing happened; the publisher's retry must be processed afresh.
				_ = s.Store.ReleasePublisherMessage(settle, from.publisher.ID, from.webhookID)
				writeProblem(c, p)
				return
			}
		}
		body, err := json.Marshal(answer)
		if err != nil {
			writeProblem(c, err)
			return
		}
		if err := s.Store.CompletePublisherMessage(settle, from.publisher.ID, from.webhookID, status, body); err != nil {
			logger(c).Warn("store publisher answer", "error", err)
		}
		contentType := "application/json; charset=utf-8"
		if status >= 400 {
			contentType = "application/problem+json"
		}
		c.Data(status, contentType, body)
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
	id, err := s.Store.SubscriptionByCode(ctx, vault.Hash(req.AuthorizationCode), s.Now())
	if errors.Is(err, store.ErrNotFound) {
		return fail(problem(CodeNotFound, "unknown or expired authorization code"))
	} else if err != nil {
		return fail(unavailable(err))
	}
	sub, err := s.publisherSubscription(c, from, id)
	if err != nil {
		if p, ok := err.(*Problem); ok && p.Code == CodeNotFound {
			err = problem(CodeNotFound, "unknown or expired authorization code")
		}
		return fail(err)
	}
	customer, err := s.Store.Customer(ctx, sub.PartnerID, sub.CustomerID)
	if err != nil {
		return fail(unavailable(err))
	}
	partner, err := s.Store.Partner(ctx, sub.PartnerID)
	if err != nil {
		return fail(unavailable(err))
	}
	err = s.Store.AppendEvent(ctx, domain.Event{
		SubscriptionID: sub.ID, Key: "resolved:" + sub.ID + ":" + from.publisher.ID + ":" + from.webhookID,
		At: s.Now().UTC(), Type: domain.EventLinkResolved, Actor: "publisher:" + from.publisher.ID,
	})
	if err != nil {
		return fail(unavailable(err))
	}
	view := wire.NewSubscription(sub, s.Now(), nil)
	s.place(ctx, &view) // the site the customer chose, if any
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
	s.place(c.Request.Context(), &view)
	return http.StatusOK, view
}

func publisherActor(from caller) workflows.Actor {
	return workflows.Actor{Kind: "publisher", ID: from.publisher.ID}
}
