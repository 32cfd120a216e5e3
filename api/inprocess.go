package api

// In-process calls for the portal (package portal): it signs people in with
// its own sessions, then acts through exactly the paths the HTTP API uses —
// the same handlers, role checks, idempotency, audit and workflow Updates.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/partnerhub/fulfillment/domain"
	"github.com/partnerhub/fulfillment/store"
	"github.com/partnerhub/fulfillment/workflows"
)

type agentContextKey struct{}

// AsAgent serves one partner API request (method, path under /v1, JSON body,
// optional Idempotency-Key) for an agent the caller has authenticated, and
// returns the status and body the HTTP API would answer. Call it after
// Router has built the server.
func (s *Server) AsAgent(ctx context.Context, agent store.Agent, method, path string, body any, idempotencyKey string) (int, []byte) {
	s.inProcessOnce.Do(func() {
		r := gin.New()
		r.Use(s.inProcessContext, s.recover)
		s.partnerRoutes(r.Group("/v1", func(c *gin.Context) {
			a := c.Request.Context().Value(agentContextKey{}).(store.Agent)
			c.Set(agentKey, a)
			c.Set(tenantKey, a.PartnerID)
			if !s.allow(c, s.partnerLimiter, "partner:"+a.PartnerID) {
				return
			}
			c.Next()
		}))
		s.inProcess = r
	})
	h := s.inProcess
	var raw []byte
	if body != nil {
		raw, _ = json.Marshal(body)
	}
	req, err := http.NewRequestWithContext(context.WithValue(ctx, agentContextKey{}, agent), method, path, bytes.NewReader(raw))
	if err != nil {
		return http.StatusInternalServerError, nil
	}
	req.Header.Set("Content-Type", "application/json")
	if idempotencyKey != "" {
		req.Header.Set("Idempotency-Key", idempotencyKey)
	}
	w := &recorder{header: http.Header{}, status: http.StatusOK}
	h.ServeHTTP(w, req)
	return w.status, w.body.Bytes()
}

// inProcessContext stands in for requestContext on AsAgent's engine: the
// portal request that made the call is the one logged and counted in the
// HTTP metrics, so the API route it used is logged at debug level only and
// counted nowhere.
func (s *Server) inProcessContext(c *gin.Context) {
	log := s.Logger.With("via", "portal")
	c.Set(loggerKey, log)
	c.Next()
	log.Debug("in-process request", "method", c.Request.Method, "route", c.FullPath(), "status", c.Writer.Status())
}

// DeactivateAsContact ends a subscription for a customer contact (the
// portal's Deactivate): the same Update as the partner API's deactivate, with
// the contact as its actor, recorded in the audit log.
func (s *Server) DeactivateAsContact(ctx context.Context, actor store.ContactActor, subscriptionID, messageID string) (domain.Subscription, error) {
	msg := workflows.EndRequest{MessageID: "deactivate:contact:" + messageID, Actor: workflows.Actor{Kind: "contact", ID: actor.ContactID}}
	return s.updateAsContact(ctx, actor, "deactivate", subscriptionID, workflows.UpdateDeactivate, msg.MessageID, msg,
		map[string]any{"subscription_id": subscriptionID, "customer_id": actor.CustomerID})
}

// updateAsContact sends a customer contact's Update and audits its outcome.
func (s *Server) updateAsContact(ctx context.Context, actor store.ContactActor, action, subscriptionID, update, updateID string,
	msg any, detail map[string]any) (domain.Subscription, error) {
	sub, err := s.update(ctx, subscriptionID, update, updateID, msg)
	outcome := "ok"
	if err != nil {
		outcome = fmt.Sprint(err)
	}
	s.Logger.Info("audit", "actor", actor.String(), "tenant", actor.PartnerID, "action", action, "outcome", outcome)
	if aerr := s.Store.RecordAudit(context.WithoutCancel(ctx), store.AuditEntry{Actor: actor.String(), Tenant: actor.PartnerID,
		Action: action, Outcome: outcome, Detail: detail}); aerr != nil {
		s.Logger.Warn("record audit", "error", aerr)
	}
	return sub, err
}

// ChooseSiteAsContact records the customer's site a contact chose while
// setting a subscription up (the portal's set-up) through the workflow's
// choose_site Update, audited. Another customer's site is 422 validation_failed.
func (s *Server) ChooseSiteAsContact(ctx context.Context, actor store.ContactActor, subscriptionID, siteID, messageID string) (domain.Subscription, error) {
	site, err := s.Store.Site(ctx, actor.CustomerRef, siteID)
	if errors.Is(err, store.ErrNotFound) {
		return domain.Subscription{}, problem(CodeValidationFailed, "the customer has no site "+strconv.Quote(siteID))
	} else if err != nil {
		return domain.Subscription{}, unavailable(err)
	}
	msg := workflows.ChooseSiteRequest{MessageID: "choose-site:contact:" + messageID, Actor: workflows.Actor{Kind: "contact", ID: actor.ContactID},
		SiteID: site.ID, SiteURL: site.URL}
	return s.updateAsContact(ctx, actor, "choose_site", subscriptionID, workflows.UpdateChooseSite, msg.MessageID, msg,
		map[string]any{"subscription_id": subscriptionID, "site_id": site.ID})
}

type recorder struct {
	header http.Header
	status int
	wrote  bool
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) Write(b []byte) (int, error) {
	r.wrote = true
	return r.body.Write(b)
}
func (r *recorder) WriteHeader(status int) {
	if !r.wrote {
		r.status, r.wrote = status, true
	}
}
