package api

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/gin-gonic/gin"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/partnerhub/fulfillment/domain"
	"github.com/partnerhub/fulfillment/store"
	"github.com/partnerhub/fulfillment/vault"
	"github.com/partnerhub/fulfillment/workflows"
)

const agentKey = "agent"

// authenticatePartner resolves the Bearer API key to its agent. A valid key
// is served even from an address whose failed-authentication budget is
// spent: only failures are throttled (see failedAuthentication).
func (s *Server) authenticatePartner(c *gin.Context) {
	key, ok := strings.CutPrefix(c.GetHeader("Authorization"), "Bearer ")
	key = strings.TrimSpace(key)
	if !ok || key == "" {
		s.failedAuthentication(c, "anonymous", "", "authenticate", "missing bearer key",
			problem(CodeUnauthenticated, "send your API key as Authorization: Bearer <key>"))
		return
	}
	agent, err := s.agentByKey(c.Request.Context(), key)
	if errors.Is(err, store.ErrNotFound) {
		s.failedAuthentication(c, "anonymous", "", "authenticate", "unknown key", problem(CodeUnauthenticated, "unknown API key"))
		return
	}
	if err != nil {
		writeProblem(c, unavailable(err))
		return
	}
	c.Set(agentKey, agent)
	c.Set(tenantKey, agent.PartnerID)
	if !s.allow(c, s.partnerLimiter, "partner:"+agent.PartnerID) {
		return
	}
	c.Next()
}

// agentByKey looks a key up by its keyed hash, then by its legacy bare
// SHA-256 hash, upgrading such a row to the keyed hash on first use.
func (s *Server) agentByKey(ctx context.Context, key string) (store.Agent, error) {
	keyed := s.Vault.KeyHash(key)
	agent, err := s.Store.AgentByKey(ctx, keyed)
	if !errors.Is(err, store.ErrNotFound) {
		return agent, err
	}
	agent, err = s.Store.UpgradeKeyHash(ctx, vault.Hash(key), keyed)
	if !errors.Is(err, store.ErrNotFound) {
		return agent, err
	}
	// A concurrent request may have upgraded the row in between.
	return s.Store.AgentByKey(ctx, keyed)
}

func currentAgent(c *gin.Context) store.Agent {
	return c.MustGet(agentKey).(store.Agent)
}

func agentActor(a store.Agent) workflows.Actor {
	return workflows.Actor{Kind: "agent", ID: a.PartnerID + "/" + a.ID}
}

// requireAdmin refuses sales agents, recording the attempt. Another
// partner's or an unknown id is 404 whatever the role (never 403 for it).
func (s *Server) requireAdmin(action string) gin.HandlerFunc {
	return func(c *gin.Context) {
		if agent := currentAgent(c); agent.Role != domain.RoleAdminAgent {
			if _, err := s.ownSubscription(c); err != nil {
				writeProblem(c, err)
				return
			}
			s.refuseRole(c, action, c.Param("id"))
			return
		}
		c.Next()
	}
}

// refuseRole answers 403 and records the attempt in the audit log and, for a
// subscription the partner owns, in its timeline.
func (s *Server) refuseRole(c *gin.Context, action, subscriptionID string) {
	agent := currentAgent(c)
	ctx := c.Request.Context()
	s.audit(c, agentActor(agent).String(), agent.PartnerID, action, "forbidden_role", map[string]any{"subscription_id": subscriptionID})
	if sub, err := s.Store.Subscription(ctx, subscriptionID); err == nil && sub.PartnerID == agent.PartnerID {
		err := s.Store.AppendEvent(ctx, domain.Event{
			SubscriptionID: sub.ID, Key: "refused:" + sub.ID + ":" + requestID(c), At: s.Now().UTC(),
			Type: "action_refused", Actor: agentActor(agent).String(),
			Detail: map[string]any{"action": action, "reason": CodeForbiddenRole, "role": agent.Role},
		})
		if err != nil {
			logger(c).Warn("record refused attempt", "error", err)
		}
	}
	writeProblem(c, problem(CodeForbiddenRole, fmt.Sprintf("a %s may not %s a subscription; ask an admin agent", agent.Role, action)))
}

func requestID(c *gin.Context) string { return c.Writer.Header().Get("X-Request-Id") }

const publisherKey = "publisher"

// caller is a publisher whose signature verified.
type caller struct {
	publisher store.Publisher
	webhookID string
	body      []byte
}

// authenticatePublisher checks the Standard Webhooks signature against every
// active secret of the publisher named by X-Publisher-Id. A rejected message
// consumes nothing.
func (s *Server) authenticatePublisher(c *gin.Context) {
	var sealed [][]byte // read with the publisher: one round trip per callback
	pub, body, ok := authenticateSigned(s, c, signedSender[store.Publisher]{
		header: "X-Publisher-Id", kind: "publisher", unknown: "unknown publisher", ownerKey: "publisher_id",
		limiter: s.publisherLimiter,
		lookup: func(ctx context.Context, id string) (p store.Publisher, err error) {
			p, sealed, err = s.Store.PublisherWithSecrets(ctx, id, s.Now())
			return p, err
		},
		id:      func(p store.Publisher) string { return p.ID },
		tenant:  func(p store.Publisher) string { return "publisher:" + p.ID },
		secrets: func(context.Context, store.Publisher) ([][]byte, error) { return sealed, nil },
	})
	if !ok {
		return
	}
	c.Set(publisherKey, caller{publisher: pub, webhookID: c.GetHeader(standardwebhooks.HeaderWebhookID), body: body})
	c.Next()
}

// signedSender describes a caller that signs its messages (a publisher, a
// partner's billing system): the header naming it, how to load it and its
// secrets, and what it is called in tenants, audit and rate limits.
type signedSender[T any] struct {
	header   string // e.g. X-Publisher-Id
	kind     string // e.g. publisher: prefix of the audit actor and the rate-limit bucket
	unknown  string // the refusal of an id that names no one, e.g. "unknown publisher"
	ownerKey string // the owner's id in the log of a secret that cannot be opened
	limiter  *limiter
	lookup   func(ctx context.Context, id string) (T, error)
	id       func(T) string
	tenant   func(T) string
	secrets  func(ctx context.Context, sender T) ([][]byte, error)
}

// authenticateSigned verifies a signed message and spends the sender's
// tokens; on false it has answered (401, 429 or 503). Only a verified message
// spends tokens: a forged one must not lock the sender out.
func authenticateSigned[T any](s *Server, c *gin.Context, spec signedSender[T]) (T, []byte, bool) {
	var sender T
	ctx := c.Request.Context()
	id := c.GetHeader(spec.header)
	deny := func(reason string) (T, []byte, bool) {
		// The claimed id is the sender's text: keep it storable.
		who := strings.ToValidUTF8(strings.ReplaceAll(truncate(id, 64), "\x00", ""), "\uFFFD")
		s.failedAuthentication(c, spec.kind+":"+who, who, "verify_signature", reason,
			problem(CodeUnauthenticated, "the message's signature could not be verified: "+reason))
		return sender, nil, false
	}
	if id == "" {
		return deny("missing " + spec.header)
	}
	err := store.ErrNotFound
	if lookupable(id) {
		sender, err = spec.lookup(ctx, id)
	}
	if errors.Is(err, store.ErrNotFound) {
		return deny(spec.unknown)
	} else if err != nil {
		writeProblem(c, unavailable(err))
		return sender, nil, false
	}
	c.Set(tenantKey, spec.tenant(sender))
	body, err := signedPayload(c)
	if err != nil {
		writeProblem(c, err)
		return sender, nil, false
	}
	reason, err := s.verifyWith(c, body, spec.ownerKey, spec.id(sender), func() ([][]byte, error) {
		return spec.secrets(ctx, sender)
	})
	if err != nil {
		writeProblem(c, unavailable(err))
		return sender, nil, false
	}
	if reason != "" {
		return deny(reason)
	}
	if !s.allow(c, spec.limiter, spec.kind+":"+spec.id(sender)) {
		return sender, nil, false
	}
	return sender, body, true
}

func currentCaller(c *gin.Context) caller { return c.MustGet(publisherKey).(caller) }
