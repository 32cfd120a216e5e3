package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/partnerhub/fulfillment/store"
	"github.com/partnerhub/fulfillment/workflows"
)

// PlanChangeBody is the body of POST /v1/subscriptions/{id}/plan-change.
type PlanChangeBody struct {
	PlanID string `json:"plan_id"`
}

// DecodePlanChange decodes and shape-checks a plan change.
func DecodePlanChange(body []byte) (PlanChangeBody, error) {
	var req PlanChangeBody
	if err := DecodeStrict(body, &req); err != nil {
		return req, err
	}
	if req.PlanID == "" {
		return req, problem(CodeInvalidRequest, `field "plan_id" is required`)
	}
	if err := checkText("plan_id", &req.PlanID, maxID); err != nil {
		return req, err
	}
	return req, nil
}

// changePlan asks the subscription's workflow to move to another plan of its
// offer (admin agents only: requireAdmin). The plan is read from the catalog
// here and carried in the Update; the workflow decides the rest (status, one
// pending change at a time, same term and currency, quantity bounds). 202:
// the change is pending until the publisher's veto window ends.
func (s *Server) changePlan(c *gin.Context) {
	req, ok := decodeBody(c, DecodePlanChange)
	if !ok {
		return
	}
	sub, err := s.ownSubscription(c)
	if err != nil {
		writeProblem(c, err)
		return
	}
	canonical, _ := json.Marshal(req)
	if !s.claimChangeKey(c, "plan-change", sub.ID, canonical) {
		return
	}
	plan, err := s.Store.Plan(c.Request.Context(), sub.OfferID, req.PlanID)
	if errors.Is(err, store.ErrNotFound) {
		err = problem(CodeValidationFailed, fmt.Sprintf("offer %q has no plan %q", sub.OfferID, req.PlanID))
	} else if err != nil {
		err = unavailable(err)
	}
	if err != nil {
		s.releaseChangeKey(c, err)
		writeProblem(c, err)
		return
	}
	msg := workflows.PlanChangeRequest{MessageID: messageID(c, "plan-change"), Actor: agentActor(currentAgent(c)), Plan: plan}
	s.sendAnswering(c, http.StatusAccepted, sub.ID, "plan-change", workflows.UpdateChangePlan, msg.MessageID, msg)
}

// withdrawPlanChange drops the pending plan change, in either stage (admin
// agents only); the publisher is told. Nothing pending → 409 invalid_state.
func (s *Server) withdrawPlanChange(c *gin.Context) {
	if _, ok := decodeBody(c, decodeEnd); !ok { // no body, or {}
		return
	}
	sub, err := s.ownSubscription(c)
	if err != nil {
		writeProblem(c, err)
		return
	}
	if !s.claimChangeKey(c, "withdraw-plan-change", sub.ID, nil) {
		return
	}
	msg := workflows.PlanChangeAnswer{MessageID: messageID(c, "withdraw-plan-change"), Actor: agentActor(currentAgent(c))}
	s.send(c, sub.ID, "withdraw-plan-change", workflows.UpdateWithdrawPlanChange, msg.MessageID, msg)
}

// RefusePlanChangeBody is the body of the publisher's refusal.
type RefusePlanChangeBody struct {
	Reason string `json:"reason"`
}

// maxReason bounds a refusal's reason.
const maxReason = 1000

func (s *Server) refusePlanChange(c *gin.Context, from caller) (int, any) {
	var req RefusePlanChangeBody
	if err := DecodeStrict(from.body, &req); err != nil {
		return fail(err)
	}
	if req.Reason == "" {
		return fail(problem(CodeInvalidRequest, `field "reason" is required`))
	}
	if err := checkText("reason", &req.Reason, maxReason); err != nil {
		return fail(err)
	}
	return s.publisherUpdate(c, from, workflows.UpdateRefusePlanChange, func(id string) any {
		return workflows.PlanChangeAnswer{MessageID: id, Actor: publisherActor(from), Reason: req.Reason}
	})
}

func (s *Server) acceptPlanChange(c *gin.Context, from caller) (int, any) {
	if len(bytes.TrimSpace(from.body)) > 0 {
		var req struct{}
		if err := DecodeStrict(from.body, &req); err != nil {
			return fail(err)
		}
	}
	return s.publisherUpdate(c, from, workflows.UpdateAcceptPlanChange, func(id string) any {
		return workflows.PlanChangeAnswer{MessageID: id, Actor: publisherActor(from)}
	})
}
