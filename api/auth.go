package api

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"golang.org/x/time/rate"

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
	ctx := c.Request.Context()
	id := c.GetHeader("X-Publisher-Id")
	deny := func(reason string) {
		// The claimed id is the sender's text: keep it storable.
		who := strings.ToValidUTF8(strings.ReplaceAll(truncate(id, 64), "\x00", ""), "\uFFFD")
		s.failedAuthentication(c, "publisher:"+who, who, "verify_signature", reason,
			problem(CodeUnauthenticated, "the message's signature could not be verified: "+reason))
	}
	if id == "" {
		deny("missing X-Publisher-Id")
		return
	}
	var pub store.Publisher
	err := store.ErrNotFound
	if lookupable(id) {
		pub, err = s.Store.Publisher(ctx, id)
	}
	if errors.Is(err, store.ErrNotFound) {
		deny("unknown publisher")
		return
	} else if err != nil {
		writeProblem(c, unavailable(err))
		return
	}
	c.Set(tenantKey, "publisher:"+pub.ID)
	body, err := signedPayload(c)
	if err != nil {
		writeProblem(c, err)
		return
	}
	reason, err := s.verifySignature(ctx, pub.ID, body, c)
	if err != nil {
		writeProblem(c, unavailable(err))
		return
	}
	if reason != "" {
		deny(reason)
		return
	}
	// Only a verified message spends the publisher's tokens: a forged one
	// must not lock the publisher out (it consumes nothing).
	if !s.allow(c, s.publisherLimiter, "publisher:"+pub.ID) {
		return
	}
	c.Set(publisherKey, caller{publisher: pub, webhookID: c.GetHeader(standardwebhooks.HeaderWebhookID), body: body})
	c.Next()
}

// verifySignature returns why the message is rejected, or "" when a signature
// made with one of the publisher's active secrets matches. An error means the
// secrets could not be read: nothing can be decided (503, never 401).
func (s *Server) verifySignature(ctx context.Context, publisherID string, body []byte, c *gin.Context) (string, error) {
	if _, err := ParseSignatureHeader(c.GetHeader(standardwebhooks.HeaderWebhookSignature)); err != nil {
		var p *Problem
		if errors.As(err, &p) {
			return p.Detail, nil
		}
		return err.Error(), nil
	}
	if len(c.GetHeader(standardwebhooks.HeaderWebhookID)) > 255 {
		return "webhook-id longer than 255 characters", nil
	}
	sealed, err := s.Store.PublisherSecrets(ctx, publisherID, s.Now())
	if err != nil {
		return "", err
	}
	reason := "no matching signature"
	for _, sec := range sealed {
		secret, err := s.Vault.Open(sec)
		if err != nil {
			logger(c).Error("open publisher secret", "publisher_id", publisherID, "error", err)
			continue
		}
		wh, err := standardwebhooks.NewWebhook(string(secret))
		if err != nil {
			continue
		}
		err = wh.Verify(body, c.Request.Header)
		switch {
		case err == nil:
			return "", nil
		case errors.Is(err, standardwebhooks.ErrMessageTooOld), errors.Is(err, standardwebhooks.ErrMessageTooNew):
			return "timestamp more than 5 minutes off", nil
		case errors.Is(err, standardwebhooks.ErrRequiredHeaders):
			return "missing webhook-id, webhook-timestamp or webhook-signature", nil
		case errors.Is(err, standardwebhooks.ErrInvalidHeaders):
			return "malformed webhook-timestamp", nil
		}
	}
	return reason, nil
}

// Signature is one entry of a webhook-signature header.
type Signature struct {
	Version string
	Value   string
}

// ParseSignatureHeader splits a webhook-signature header ("v1,<b64> v1,<b64>")
// into its well-formed entries; it rejects an empty or oversized header and
// one with no well-formed entry with an unauthenticated *Problem.
func ParseSignatureHeader(header string) ([]Signature, error) {
	if strings.TrimSpace(header) == "" {
		return nil, problem(CodeUnauthenticated, "missing webhook-signature")
	}
	if len(header) > 4096 {
		return nil, problem(CodeUnauthenticated, "webhook-signature header too long")
	}
	var sigs []Signature
	for _, part := range strings.Fields(header) {
		version, value, ok := strings.Cut(part, ",")
		if ok && version != "" && value != "" {
			sigs = append(sigs, Signature{Version: version, Value: value})
		}
	}
	if len(sigs) == 0 {
		return nil, problem(CodeUnauthenticated, "malformed webhook-signature")
	}
	return sigs, nil
}

func currentCaller(c *gin.Context) caller { return c.MustGet(publisherKey).(caller) }

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// audit records a security-relevant action; failures to record are logged.
func (s *Server) audit(c *gin.Context, actor, tenant, action, outcome string, detail map[string]any) {
	logger(c).Info("audit", "actor", actor, "tenant", tenant, "action", action, "outcome", outcome)
	err := s.Store.RecordAudit(c.Request.Context(), store.AuditEntry{Actor: actor, Tenant: tenant, Action: action, Outcome: outcome, Detail: detail})
	if err != nil {
		logger(c).Warn("record audit", "error", err)
	}
}

// limiter keeps one token bucket per key (tenant or client address). Entries
// idle longer than ttl are evicted, so callers cannot grow the map without
// bound; ttl is at least the time a bucket takes to refill, so an evicted
// entry was full and forgetting it grants nothing a kept one would not.
type limiter struct {
	rps       rate.Limit
	burst     int
	ttl       time.Duration
	now       func() time.Time
	mu        sync.Mutex
	byKey     map[string]*limiterEntry
	lastSweep time.Time
}

type limiterEntry struct {
	lim      *rate.Limiter
	lastSeen time.Time
}

// minLimiterTTL keeps entries of fast-refilling buckets a little while anyway.
const minLimiterTTL = time.Minute

func newLimiter(rps float64, burst int) *limiter {
	if rps <= 0 {
		return nil
	}
	burst = max(burst, 1)
	refill := time.Duration(float64(burst) / rps * float64(time.Second))
	return &limiter{rps: rate.Limit(rps), burst: burst, ttl: max(refill+time.Second, minLimiterTTL), now: time.Now,
		byKey: map[string]*limiterEntry{}}
}

// get returns key's bucket, creating it, and evicts idle entries at most
// once per ttl/2 (amortised: one sweep per half ttl, whatever the traffic).
func (l *limiter) get(key string, now time.Time) *rate.Limiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.lastSweep) >= l.ttl/2 {
		for k, e := range l.byKey {
			if now.Sub(e.lastSeen) > l.ttl {
				delete(l.byKey, k)
			}
		}
		l.lastSweep = now
	}
	e, ok := l.byKey[key]
	if !ok {
		e = &limiterEntry{lim: rate.NewLimiter(l.rps, l.burst)}
		l.byKey[key] = e
	}
	e.lastSeen = now
	return e.lim
}

// size is the number of tracked keys (tests).
func (l *limiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.byKey)
}

func (l *limiter) reserve(key string) (bool, time.Duration) {
	now := l.now()
	r := l.get(key, now).ReserveN(now, 1)
	if delay := r.DelayFrom(now); delay > 0 {
		r.CancelAt(now)
		return false, delay
	}
	return true, 0
}

// failedAuthentication answers a failed authentication. Each failure spends
// the client address's budget; while the address has budget left the failure
// is audited and answered with deny (401), once it is spent the answer is 429
// with Retry-After and nothing is written, so a flood of bad keys or forged
// signatures costs no audit rows. Valid credentials never reach here: a
// partner whose key is good is served from a throttled address too. (Guessing
// keys is hopeless anyway: generated keys carry 256 bits, seeded ones at
// least 16 characters, and the stored hash is keyed.)
func (s *Server) failedAuthentication(c *gin.Context, actor, tenant, action, reason string, deny *Problem) {
	if s.failureLimiter != nil {
		l := s.failureLimiter
		now := l.now()
		lim := l.get("address:"+c.ClientIP(), now)
		if !lim.AllowN(now, 1) {
			wait := time.Duration((1 - lim.TokensAt(now)) / float64(lim.Limit()) * float64(time.Second))
			c.Header("Retry-After", strconv.Itoa(max(1, int(math.Ceil(wait.Seconds())))))
			writeProblem(c, problem(CodeRateLimited, "too many failed authentications from this address; retry later"))
			return
		}
	}
	s.audit(c, actor, tenant, action, "denied", map[string]any{"reason": reason})
	writeProblem(c, deny)
}

// allow spends a token of the tenant's bucket or answers 429 with Retry-After.
func (s *Server) allow(c *gin.Context, l *limiter, key string) bool {
	if l == nil {
		return true
	}
	ok, wait := l.reserve(key)
	if ok {
		return true
	}
	c.Header("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
	writeProblem(c, problem(CodeRateLimited, fmt.Sprintf("rate limit of %s exceeded; retry after %s", key, wait.Round(time.Millisecond))))
	return false
}
