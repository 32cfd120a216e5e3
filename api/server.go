// Package api is the HTTP face of the service (API.md): it authenticates,
// decodes strictly, validates shape, and talks to the subscription workflows.
// It never writes a subscription's status itself.
package api

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"go.temporal.io/sdk/client"

	"github.com/partnerhub/fulfillment/store"
	"github.com/partnerhub/fulfillment/vault"
	"github.com/partnerhub/fulfillment/workflows"
)

// Server holds the API's dependencies.
type Server struct {
	Store    *store.Store
	Temporal client.Client
	Vault    *vault.Vault
	Logger   *slog.Logger
	Limits   RateLimits
	// TaskQueue receives new subscription workflows (default workflows.TaskQueue).
	TaskQueue string
	// UpdateTimeout bounds how long a request waits for a workflow's answer.
	UpdateTimeout time.Duration
	// RequestTimeout bounds a whole request (default 2×UpdateTimeout + 10 s,
	// inside the HTTP server's write timeout): a database that hands out no
	// connection, or any other wait, ends in a 503, never in a request left
	// hanging.
	RequestTimeout time.Duration
	// Metrics, when set, instruments every request and serves /metrics.
	Metrics Metrics
	// Now is the clock (tests may set it).
	Now func() time.Time
	// TrustedProxies are the addresses or CIDRs whose X-Forwarded-For names
	// the client (for the failed-authentication budget); none by default.
	TrustedProxies []string
	// OpsKey (OPS_API_KEY) admits ops to /v1/ops/...; empty admits no one.
	OpsKey string

	partnerLimiter   *limiter
	publisherLimiter *limiter
	failureLimiter   *limiter
	inProcess        http.Handler // AsAgent's engine, built once
	inProcessOnce    sync.Once
}

// Metrics is what the API needs from the metrics registry.
type Metrics interface {
	ObserveRequest(route, method string, status int, elapsed time.Duration)
	Handler() http.Handler
}

// RateLimits configures the token buckets per partner and per publisher.
type RateLimits struct {
	PartnerRPS     float64
	PartnerBurst   int
	PublisherRPS   float64
	PublisherBurst int
	// FailedAuthRPS/Burst budget failed authentications per client address.
	FailedAuthRPS   float64
	FailedAuthBurst int
}

// Handler builds the router.
func (s *Server) Handler() http.Handler { return s.Router() }

// Router builds the Gin engine (tests enumerate its routes).
func (s *Server) Router() *gin.Engine {
	if s.Now == nil {
		s.Now = time.Now
	}
	if s.Logger == nil {
		s.Logger = slog.Default()
	}
	if s.TaskQueue == "" {
		s.TaskQueue = workflows.TaskQueue
	}
	if s.UpdateTimeout == 0 {
		s.UpdateTimeout = 30 * time.Second
	}
	if s.RequestTimeout == 0 {
		s.RequestTimeout = 2*s.UpdateTimeout + 10*time.Second
	}
	s.partnerLimiter = newLimiter(s.Limits.PartnerRPS, s.Limits.PartnerBurst)
	s.publisherLimiter = newLimiter(s.Limits.PublisherRPS, s.Limits.PublisherBurst)
	s.failureLimiter = newLimiter(s.Limits.FailedAuthRPS, s.Limits.FailedAuthBurst)

	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.HandleMethodNotAllowed = true
	// Client addresses (failed-authentication budget) come from the connection:
	// X-Forwarded-For is trusted from no one unless a deployment says so.
	if err := r.SetTrustedProxies(s.TrustedProxies); err != nil {
		// config.FromEnv validates TRUSTED_PROXIES; a bad list trusts no one.
		s.Logger.Error("trusted proxies refused; trusting none", "error", err)
		_ = r.SetTrustedProxies(nil)
	}
	r.Use(s.requestContext, s.recover, s.requireUTF8)
	r.NoRoute(func(c *gin.Context) { writeProblem(c, problem(CodeNotFound, "no such route")) })
	r.NoMethod(func(c *gin.Context) {
		// Gin has set the Allow header with the methods the path takes.
		writeProblem(c, problem(CodeMethodNotAllowed, c.Request.Method+" is not allowed here; see the Allow header"))
	})

	r.GET("/healthz", s.healthz)
	r.GET("/readyz", s.readyz)
	r.GET("/openapi.json", s.openAPI)
	if s.Metrics != nil {
		r.GET("/metrics", gin.WrapH(s.Metrics.Handler()))
	}

	s.partnerRoutes(r.Group("/v1", s.authenticatePartner))
	// The partner's billing system signs its events like a publisher (its own secret).
	r.POST("/v1/billing/events", s.authenticateBillingSystem, s.billingEvent)

	ops := r.Group("/v1/ops", s.authenticateOps)
	ops.GET("/reconciliation/latest", s.latestReconciliation)

	publisher := r.Group("/v1/publisher", s.authenticatePublisher)
	publisher.POST("/resolve", s.publisherMessage(s.resolve))
	publisher.POST("/subscriptions/:id/licenses", s.publisherMessage(s.assignLicenses))
	publisher.POST("/subscriptions/:id/activate", s.publisherMessage(s.confirmFulfillment))
	publisher.POST("/subscriptions/:id/plan-change/refuse", s.publisherMessage(s.refusePlanChange))
	publisher.POST("/subscriptions/:id/plan-change/accept", s.publisherMessage(s.acceptPlanChange))
	// Reads are signed messages too: a GET signs its method and request target (signedPayload).
	publisher.GET("/subscriptions", s.publisherMessage(s.listPublisherSubscriptions))
	publisher.GET("/subscriptions/:id", s.publisherMessage(s.getPublisherSubscription))
	return r
}

// partnerRoutes registers the partner API on an authenticated group (over
// HTTP with an API key, or in-process for the portal: AsAgent).
func (s *Server) partnerRoutes(partner *gin.RouterGroup) {
	partner.POST("/customers", s.createCustomer)
	partner.GET("/customers", s.listCustomers)
	partner.GET("/customers/:id", s.getCustomer)
	partner.GET("/customers/:id/contacts", s.listContacts)
	partner.GET("/customers/:id/sites", s.listSites)
	partner.POST("/customers/:id/sites", s.createSite)
	partner.GET("/customers/:id/billing-accounts", s.listBillingAccounts)
	partner.POST("/customers/:id/billing-accounts", s.createBillingAccount)
	partner.POST("/subscriptions", s.purchase)
	partner.GET("/subscriptions", s.listSubscriptions)
	partner.GET("/subscriptions/:id", s.getSubscription)
	partner.PATCH("/subscriptions/:id", s.changeSubscription)
	partner.POST("/subscriptions/:id/cancel", s.requireAdmin("cancel"), s.cancelSubscription)
	partner.POST("/subscriptions/:id/deactivate", s.requireAdmin("deactivate"), s.deactivateSubscription)
	partner.POST("/subscriptions/:id/plan-change", s.requireAdmin("change the plan of"), s.changePlan)
	partner.DELETE("/subscriptions/:id/plan-change", s.requireAdmin("withdraw the plan change of"), s.withdrawPlanChange)
	partner.GET("/subscriptions/:id/events", s.subscriptionEvents)
	partner.GET("/subscriptions/:id/billing", s.subscriptionBilling)
	partner.GET("/offers", s.listOffers)
	partner.GET("/offers/:id", s.getOffer)
	partner.POST("/subscriptions/:id/transfer", s.requireAdmin("transfer"), s.transferSubscription)
	partner.GET("/billing/statements", s.getStatement)
}

// requestContext gives every request an id, a logger carrying it, and
// records the request in the log and metrics once answered.
func (s *Server) requestContext(c *gin.Context) {
	start := time.Now()
	id := c.GetHeader("X-Request-Id")
	if id == "" || len(id) > 128 || !utf8.ValidString(id) {
		id = uuid.NewString()
	}
	c.Header("X-Request-Id", id)
	log := s.Logger.With("request_id", id)
	c.Set(loggerKey, log)
	ctx, cancel := context.WithTimeout(c.Request.Context(), s.RequestTimeout)
	defer cancel()
	c.Request = c.Request.WithContext(ctx)
	c.Next()
	route := c.FullPath()
	if route == "" {
		route = "unmatched"
	}
	elapsed := time.Since(start)
	method := MethodLabel(c.Request.Method)
	attrs := []any{"method", method, "route", route, "status", c.Writer.Status(), "duration_ms", elapsed.Milliseconds()}
	// One subscription_id: the one a handler resolved (purchase, resolve by
	// code, publisher callbacks), else the one in the path (partner and
	// publisher routes alike, also when the answer is 404).
	if v, ok := c.Get(subscriptionIDKey); ok {
		attrs = append(attrs, "subscription_id", v)
	} else if id := c.Param("id"); id != "" && strings.Contains(route, "/subscriptions/:id") {
		attrs = append(attrs, "subscription_id", id)
	}
	if v, ok := c.Get(tenantKey); ok {
		attrs = append(attrs, "tenant", v)
	}
	log.Info("request", attrs...)
	if s.Metrics != nil {
		s.Metrics.ObserveRequest(route, method, c.Writer.Status(), elapsed)
	}
}

// knownMethods are the methods that keep their name in metrics and logs.
var knownMethods = map[string]bool{
	http.MethodGet: true, http.MethodHead: true, http.MethodPost: true, http.MethodPut: true, http.MethodPatch: true,
	http.MethodDelete: true, http.MethodOptions: true, http.MethodConnect: true, http.MethodTrace: true,
}

// MethodLabel bounds the method label: a caller may send any token as its
// method, and each distinct label is a new metric series.
func MethodLabel(method string) string {
	if knownMethods[method] {
		return method
	}
	return "other"
}

// requireUTF8 refuses a request with invalid UTF-8 (or NUL, which
// PostgreSQL's text cannot hold either) in any header value, query name or
// query value: the client's mistake is a 400, not a failed query (503).
func (s *Server) requireUTF8(c *gin.Context) {
	for name, values := range c.Request.Header {
		for _, v := range values {
			if !utf8.ValidString(v) {
				writeProblem(c, problem(CodeInvalidRequest, "header "+strconv.Quote(strings.ToValidUTF8(name, "?"))+" is not valid UTF-8"))
				return
			}
		}
	}
	for name, values := range c.Request.URL.Query() {
		for _, v := range append([]string{name}, values...) {
			if !utf8.ValidString(v) || strings.ContainsRune(v, 0) {
				writeProblem(c, problem(CodeInvalidRequest, "query parameter "+strconv.Quote(strings.ToValidUTF8(name, "?"))+" is not valid UTF-8 text"))
				return
			}
		}
	}
	c.Next()
}

func (s *Server) recover(c *gin.Context) {
	defer func() {
		if r := recover(); r != nil {
			logger(c).Error("panic", "panic", r)
			writeProblem(c, problem(CodeInternal, "an unexpected error occurred; it has been logged"))
		}
	}()
	c.Next()
}

func logger(c *gin.Context) *slog.Logger {
	if v, ok := c.Get(loggerKey); ok {
		return v.(*slog.Logger)
	}
	return slog.Default()
}

func (s *Server) healthz(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
}

func (s *Server) readyz(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), 2*time.Second)
	defer cancel()
	checks := gin.H{"postgres": "ok", "temporal": "ok"}
	ready := true
	if err := s.Store.Ping(ctx); err != nil {
		checks["postgres"], ready = "unreachable", false
	}
	if _, err := s.Temporal.CheckHealth(ctx, &client.CheckHealthRequest{}); err != nil {
		checks["temporal"], ready = "unreachable", false
	}
	if !ready {
		c.Header("Content-Type", "application/problem+json")
		p := problem(CodeUnavailable, "a dependency is unreachable")
		c.JSON(p.Status, gin.H{"type": p.Type, "title": p.Title, "status": p.Status, "detail": p.Detail, "code": p.Code, "checks": checks})
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "ready", "checks": checks})
}

// Keys of what middleware and handlers leave on a request's gin.Context for
// the request log.
const (
	tenantKey         = "tenant"          // the partner id, or publisher:<id>
	subscriptionIDKey = "subscription_id" // the subscription the request concerns
	loggerKey         = "logger"          // the request's *slog.Logger
)
