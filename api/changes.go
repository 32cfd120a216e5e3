package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/partnerhub/fulfillment/domain"
	"github.com/partnerhub/fulfillment/store"
	"github.com/partnerhub/fulfillment/workflows"
)

// optional tells an absent JSON field from an explicit null.
type optional[T any] struct {
	Set   bool
	Null  bool
	Value T
}

func (o *optional[T]) UnmarshalJSON(b []byte) error {
	*o = optional[T]{Set: true} // a repeated key replaces the earlier one wholly
	if string(b) == "null" {
		o.Null = true
		return nil
	}
	return json.Unmarshal(b, &o.Value)
}

// PatchBody is the body of PATCH /v1/subscriptions/{id}.
type PatchBody struct {
	Nickname          optional[string] `json:"nickname"`
	Quantity          optional[int]    `json:"quantity"`
	AutoRenew         optional[bool]   `json:"auto_renew"`
	ResellerPartnerID optional[string] `json:"reseller_partner_id"`
	BillingFrequency  optional[string] `json:"billing_frequency"`
}

// DecodePatch decodes and shape-checks a PATCH body.
func DecodePatch(body []byte) (PatchBody, error) {
	var req PatchBody
	if err := DecodeStrict(body, &req); err != nil {
		return req, err
	}
	if !req.Nickname.Set && !req.Quantity.Set && !req.AutoRenew.Set && !req.ResellerPartnerID.Set && !req.BillingFrequency.Set {
		return req, problem(CodeInvalidRequest, "send at least one of nickname, quantity, auto_renew, reseller_partner_id, billing_frequency")
	}
	if req.Quantity.Null || req.AutoRenew.Null || req.BillingFrequency.Null {
		return req, problem(CodeInvalidRequest, "quantity, auto_renew and billing_frequency cannot be null")
	}
	if err := checkText("billing_frequency", &req.BillingFrequency.Value, maxFrequency); err != nil {
		return req, err
	}
	if err := checkText("nickname", &req.Nickname.Value, maxNickname); err != nil {
		return req, err
	}
	if err := checkText("reseller_partner_id", &req.ResellerPartnerID.Value, maxResellerID); err != nil {
		return req, err
	}
	return req, nil
}

// changeRequest maps the PATCH to the workflow's change message.
func (p PatchBody) changeRequest(messageID string, actor workflows.Actor) workflows.ChangeRequest {
	req := workflows.ChangeRequest{MessageID: messageID, Actor: actor}
	if p.Nickname.Set {
		req.Nickname, req.ClearNickname = ptrUnlessNull(p.Nickname), p.Nickname.Null
	}
	if p.ResellerPartnerID.Set {
		req.ResellerPartnerID, req.ClearReseller = ptrUnlessNull(p.ResellerPartnerID), p.ResellerPartnerID.Null
	}
	if p.Quantity.Set {
		req.Quantity = &p.Quantity.Value
	}
	if p.AutoRenew.Set {
		req.AutoRenew = &p.AutoRenew.Value
	}
	if p.BillingFrequency.Set {
		req.BillingFrequency = &p.BillingFrequency.Value
	}
	return req
}

func ptrUnlessNull[T any](o optional[T]) *T {
	if o.Null {
		return nil
	}
	return &o.Value
}

// messageID names a partner's message to a workflow: its Idempotency-Key when
// sent (so a retry is deduplicated), otherwise a fresh id.
func messageID(c *gin.Context, kind string) string {
	if key := c.GetHeader("Idempotency-Key"); key != "" && len(key) <= maxIdempotencyKey {
		return kind + ":" + currentAgent(c).PartnerID + ":" + key
	}
	return kind + ":" + uuid.NewString()
}

func (s *Server) changeSubscription(c *gin.Context) {
	req, ok := decodeBody(c, DecodePatch)
	if !ok {
		return
	}
	sub, err := s.ownSubscription(c)
	if err != nil {
		writeProblem(c, err)
		return
	}
	agent := currentAgent(c)
	if (req.Quantity.Set || req.AutoRenew.Set || req.BillingFrequency.Set) && agent.Role != domain.RoleAdminAgent {
		action := "change quantity or auto_renew of"
		if !req.Quantity.Set && !req.AutoRenew.Set {
			action = "change billing_frequency of"
		}
		s.refuseRole(c, action, sub.ID)
		return
	}
	canonical, _ := json.Marshal(req.changeRequest("", workflows.Actor{}))
	if !s.claimChangeKey(c, "patch", sub.ID, canonical) {
		return
	}
	msg := req.changeRequest(messageID(c, "patch"), agentActor(agent))
	s.send(c, sub.ID, "change", workflows.UpdateChange, msg.MessageID, msg)
}

// claimChangeKey ties the request's Idempotency-Key (if any) to this request:
// action, subscription and body. The same key for another request answers
// 422 idempotency_key_reused; the same request again goes on, and Temporal
// answers it from the first (the key is in the Update id). On false it has
// answered.
func (s *Server) claimChangeKey(c *gin.Context, action, subscriptionID string, canonicalBody []byte) bool {
	key := c.GetHeader("Idempotency-Key")
	if key == "" || len(key) > maxIdempotencyKey { // a key too long is ignored, as messageID does
		return true
	}
	h := sha256.New()
	for _, part := range [][]byte{[]byte(action), []byte(subscriptionID), canonicalBody} {
		h.Write([]byte(strconv.Itoa(len(part)) + ":"))
		h.Write(part)
	}
	state, err := s.Store.ClaimChangeKey(c.Request.Context(), currentAgent(c).PartnerID, key, h.Sum(nil))
	if err != nil {
		writeProblem(c, unavailable(err))
		return false
	}
	if state == store.ClaimMismatch {
		writeProblem(c, problem(CodeIdempotencyKeyReused, "this Idempotency-Key was used with a different request"))
		return false
	}
	c.Set(changeKeyClaimed, key)
	return true
}

const changeKeyClaimed = "change_key"

// releaseChangeKey frees the key of a change the subscription refused
// before recording it (4xx): like a purchase that bought nothing, it may be
// used again.
func (s *Server) releaseChangeKey(c *gin.Context, err error) {
	var p *Problem
	key, claimed := c.Get(changeKeyClaimed)
	if !claimed || !errors.As(err, &p) || p.Status >= 500 {
		return
	}
	if rerr := s.Store.ReleaseChangeKey(context.WithoutCancel(c.Request.Context()), currentAgent(c).PartnerID, key.(string)); rerr != nil {
		logger(c).Warn("release idempotency key", "error", rerr)
	}
}

func (s *Server) cancelSubscription(c *gin.Context) {
	s.end(c, "cancel", workflows.UpdateCancel)
}

func (s *Server) deactivateSubscription(c *gin.Context) {
	s.end(c, "deactivate", workflows.UpdateDeactivate)
}

// EndRequestBody is the optional body of cancel and deactivate: empty or {}.
type EndRequestBody struct{}

func decodeEnd(body []byte) (EndRequestBody, error) {
	var req EndRequestBody
	if len(bytes.TrimSpace(body)) == 0 {
		return req, nil
	}
	return req, DecodeStrict(body, &req)
}

func (s *Server) end(c *gin.Context, action, update string) {
	if _, ok := decodeBody(c, decodeEnd); !ok {
		return
	}
	sub, err := s.ownSubscription(c)
	if err != nil {
		writeProblem(c, err)
		return
	}
	if !s.claimChangeKey(c, action, sub.ID, nil) { // the body is empty or {}
		return
	}
	agent := currentAgent(c)
	msg := workflows.EndRequest{MessageID: messageID(c, action), Actor: agentActor(agent)}
	s.send(c, sub.ID, action, update, msg.MessageID, msg)
}

// send delivers a partner's admin message and answers with the subscription after it.
func (s *Server) send(c *gin.Context, subscriptionID, action, update, updateID string, msg any) {
	s.sendAnswering(c, http.StatusOK, subscriptionID, action, update, updateID, msg)
}

// sendAnswering is send answering with status when the message is taken.
func (s *Server) sendAnswering(c *gin.Context, status int, subscriptionID, action, update, updateID string, msg any) {
	agent := currentAgent(c)
	ctx := c.Request.Context()
	sub, err := s.update(ctx, subscriptionID, update, updateID, msg)
	outcome := "ok"
	if err != nil {
		outcome = fmt.Sprint(err)
	}
	s.audit(c, agentActor(agent).String(), agent.PartnerID, action, outcome, map[string]any{"subscription_id": subscriptionID})
	if err != nil {
		s.releaseChangeKey(c, err)
		writeProblem(c, err)
		return
	}
	view, err := s.partnerView(ctx, sub)
	if err != nil {
		writeProblem(c, err)
		return
	}
	c.JSON(status, view)
}
