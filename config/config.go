// Package config reads the service's settings from the environment.
package config

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	sdklog "go.temporal.io/sdk/log"

	"github.com/partnerhub/fulfillment/workflows"
)

// Config is every setting, each from an environment variable with a default.
type Config struct {
	DatabaseURL string
	// DatabaseMaxConns caps each process's PostgreSQL connections.
	DatabaseMaxConns  int
	TemporalAddress   string
	TemporalNamespace string
	TaskQueue         string
	TemporalTLSCert   string
	TemporalTLSKey    string
	TemporalAPIKey    string
	// TemporalCompression (TEMPORAL_GRPC_COMPRESSION: none, the default, or
	// gzip) compresses the gRPC messages to and from Temporal. Ours are a few
	// KB; gzip spends CPU on both ends of every call for bytes a LAN does not
	// miss (BENCHMARKS.md, "Fewer round trips, prepared statements, no
	// gzip"). gzip is for slow links.
	TemporalCompression string
	HTTPAddr            string
	SecretKey           string
	LogLevel            string
	PartnerRPS          float64
	PartnerBurst        int
	PublisherRPS        float64
	PublisherBurst      int
	FailedAuthRPS       float64
	FailedAuthBurst     int
	WorkerMetricsAddr   string
	ShutdownTimeout     time.Duration
	UpdateTimeout       time.Duration
	MessageRetention    time.Duration
	// WebhookAllowPrivate lets publisher webhooks target loopback, private and
	// link-local addresses: development and test stacks only.
	WebhookAllowPrivate bool
	// TrustedProxies (TRUSTED_PROXIES: comma-separated IPs or CIDRs) may name
	// the client in X-Forwarded-For; none by default.
	TrustedProxies []string
	// SMTPURL is the mail server for customer emails (empty: none are sent).
	SMTPURL   string
	SMTPFrom  string
	PortalURL string
	// PortalSecureCookies marks the portal's session cookie Secure
	// (PORTAL_SECURE_COOKIES, default true; `fulfillment dev` false: plain HTTP).
	PortalSecureCookies bool
	// PortalSignInRPS and PortalSignInBurst (PORTAL_SIGN_IN_RPS, default 0.2;
	// PORTAL_SIGN_IN_BURST, default 10) throttle sign-in requests per client
	// address; a rate of 0 turns the limit off.
	PortalSignInRPS   float64
	PortalSignInBurst int
	// ReconcileEvery (RECONCILE_EVERY, default 24h) is the interval of the
	// reconciliation schedule; ReconcilePendingAfter
	// (RECONCILE_PENDING_THRESHOLD, default 24h) is how long a subscription may
	// wait on its publisher before a reconciliation lists it.
	ReconcileEvery        time.Duration
	ReconcilePendingAfter time.Duration
	// OpsAPIKey (OPS_API_KEY) is the bearer key of the ops endpoints
	// (/v1/ops/...); unset, they refuse everyone.
	OpsAPIKey string
	// Dev mode only.
	TemporalCLI     string
	TemporalUIPort  int
	DataDir         string
	Mailpit         string
	MailpitSMTPPort int
	MailpitUIPort   int
}

// DevSecretKey is the SECRET_KEY `fulfillment dev` uses when none is set.
// Never use it outside a laptop.
const DevSecretKey = "ZGV2LW9ubHktc2VjcmV0LWtleS0zMi1ieXRlcy0hISE="

// FromEnv reads the configuration.
func FromEnv() (Config, error) {
	c := Config{
		DatabaseURL:         env("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/fulfillment?sslmode=disable"),
		TemporalAddress:     env("TEMPORAL_ADDRESS", "127.0.0.1:7233"),
		TemporalNamespace:   env("TEMPORAL_NAMESPACE", "default"),
		TaskQueue:           env("TEMPORAL_TASK_QUEUE", workflows.TaskQueue),
		TemporalTLSCert:     os.Getenv("TEMPORAL_TLS_CERT"),
		TemporalTLSKey:      os.Getenv("TEMPORAL_TLS_KEY"),
		TemporalAPIKey:      os.Getenv("TEMPORAL_API_KEY"),
		TemporalCompression: env("TEMPORAL_GRPC_COMPRESSION", "none"),
		HTTPAddr:            env("HTTP_ADDR", ":8080"),
		SecretKey:           os.Getenv("SECRET_KEY"),
		LogLevel:            env("LOG_LEVEL", "info"),
		WorkerMetricsAddr:   env("WORKER_METRICS_ADDR", ""),
		OpsAPIKey:           os.Getenv("OPS_API_KEY"),
		TemporalCLI:         env("TEMPORAL_CLI", "bin/temporal"),
		DataDir:             env("DATA_DIR", "data"),
		Mailpit:             env("MAILPIT", "bin/mailpit"),
		SMTPURL:             os.Getenv("SMTP_URL"),
		SMTPFrom:            env("SMTP_FROM", "Subscriptions <no-reply@fulfillment.localhost>"),
		PortalURL:           os.Getenv("PORTAL_URL"),
	}
	var err error
	parse := func(name, def string, into func(string) error) {
		if err == nil {
			if perr := into(env(name, def)); perr != nil {
				err = fmt.Errorf("%s: %w", name, perr)
			}
		}
	}
	parse("RATE_LIMIT_PARTNER_RPS", "20", floatInto(&c.PartnerRPS))
	parse("RATE_LIMIT_PARTNER_BURST", "40", intInto(&c.PartnerBurst))
	parse("DATABASE_MAX_CONNS", "20", intInto(&c.DatabaseMaxConns))
	parse("RATE_LIMIT_PUBLISHER_RPS", "20", floatInto(&c.PublisherRPS))
	parse("RATE_LIMIT_PUBLISHER_BURST", "40", intInto(&c.PublisherBurst))
	parse("RATE_LIMIT_FAILED_AUTH_RPS", "1", floatInto(&c.FailedAuthRPS))
	parse("RATE_LIMIT_FAILED_AUTH_BURST", "20", intInto(&c.FailedAuthBurst))
	parse("TEMPORAL_UI_PORT", "8233", intInto(&c.TemporalUIPort))
	parse("MAILPIT_SMTP_PORT", "1025", intInto(&c.MailpitSMTPPort))
	parse("MAILPIT_UI_PORT", "8025", intInto(&c.MailpitUIPort))
	parse("SHUTDOWN_TIMEOUT", "20s", func(s string) (e error) { c.ShutdownTimeout, e = time.ParseDuration(s); return })
	parse("UPDATE_TIMEOUT", "30s", func(s string) (e error) { c.UpdateTimeout, e = time.ParseDuration(s); return })
	parse("MESSAGE_RETENTION", "48h", func(s string) (e error) { c.MessageRetention, e = time.ParseDuration(s); return })
	parse("PORTAL_SIGN_IN_RPS", "0.2", floatInto(&c.PortalSignInRPS))
	parse("PORTAL_SIGN_IN_BURST", "10", intInto(&c.PortalSignInBurst))
	parse("PORTAL_SECURE_COOKIES", "true", func(s string) (e error) { c.PortalSecureCookies, e = strconv.ParseBool(s); return })
	parse("RECONCILE_EVERY", "24h", positiveDuration(&c.ReconcileEvery))
	parse("RECONCILE_PENDING_THRESHOLD", "24h", positiveDuration(&c.ReconcilePendingAfter))
	parse("WEBHOOK_ALLOW_PRIVATE", "false", func(s string) (e error) { c.WebhookAllowPrivate, e = strconv.ParseBool(s); return })
	if err == nil {
		c.TrustedProxies, err = parseProxies(os.Getenv("TRUSTED_PROXIES"))
	}
	if (c.TemporalTLSCert == "") != (c.TemporalTLSKey == "") {
		return c, fmt.Errorf("TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY go together")
	}
	return c, err
}

// parseProxies reads a comma-separated list of IP addresses and CIDRs.
func parseProxies(list string) ([]string, error) {
	var proxies []string
	for _, p := range strings.Split(list, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if _, err := netip.ParsePrefix(p); err != nil {
			if _, err := netip.ParseAddr(p); err != nil {
				return nil, fmt.Errorf("TRUSTED_PROXIES: %q is neither an IP address nor a CIDR", p)
			}
		}
		proxies = append(proxies, p)
	}
	return proxies, nil
}

func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	return def
}

func positiveDuration(p *time.Duration) func(string) error {
	return func(s string) error {
		d, err := time.ParseDuration(s)
		if err == nil && d <= 0 {
			err = fmt.Errorf("must be positive")
		}
		*p = d
		return err
	}
}

func floatInto(p *float64) func(string) error {
	return func(s string) (err error) { *p, err = strconv.ParseFloat(s, 64); return }
}

func intInto(p *int) func(string) error {
	return func(s string) (err error) { *p, err = strconv.Atoi(s); return }
}

// Masked lists the settings for the start-up log, secrets masked.
func (c Config) Masked() []any {
	mask := func(s string) string {
		if s == "" {
			return ""
		}
		return "***"
	}
	db := c.DatabaseURL
	if i := strings.Index(db, "://"); i >= 0 {
		if at := strings.Index(db[i+3:], "@"); at >= 0 {
			userinfo := db[i+3 : i+3+at]
			if u, _, hasPassword := strings.Cut(userinfo, ":"); hasPassword {
				db = db[:i+3] + u + ":***" + db[i+3+at:]
			}
		}
	}
	return []any{
		"database_url", db, "temporal_address", c.TemporalAddress, "temporal_namespace", c.TemporalNamespace, "task_queue", c.TaskQueue,
		"temporal_tls", c.TemporalTLSCert != "", "temporal_grpc_compression", c.TemporalCompression, "temporal_api_key", mask(c.TemporalAPIKey), "http_addr", c.HTTPAddr,
		"secret_key", mask(c.SecretKey), "log_level", c.LogLevel,
		"rate_limit_partner", fmt.Sprintf("%g/s burst %d", c.PartnerRPS, c.PartnerBurst),
		"rate_limit_publisher", fmt.Sprintf("%g/s burst %d", c.PublisherRPS, c.PublisherBurst),
		"trusted_proxies", strings.Join(c.TrustedProxies, ","),
		"worker_metrics_addr", c.WorkerMetricsAddr, "shutdown_timeout", c.ShutdownTimeout.String(),
		"webhook_allow_private", c.WebhookAllowPrivate,
		"smtp_url", maskURLPassword(c.SMTPURL), "smtp_from", c.SMTPFrom,
		"reconcile_every", c.ReconcileEvery.String(), "reconcile_pending_threshold", c.ReconcilePendingAfter.String(),
		"ops_api_key", mask(c.OpsAPIKey),
	}
}

// Logger builds the JSON logger at the configured level.
func (c Config) Logger() *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.LogLevel)); err != nil {
		level = slog.LevelInfo
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

// TemporalOptions builds the client options, with mTLS or an API key for
// Temporal Cloud when configured. The SDK logs through slog.
func (c Config) TemporalOptions(logger *slog.Logger) (client.Options, error) {
	opts := client.Options{
		HostPort:  c.TemporalAddress,
		Namespace: c.TemporalNamespace,
		Logger:    sdklog.NewStructuredLogger(logger.With("component", "temporal-sdk")),
	}
	var err error
	if opts.ConnectionOptions.GrpcCompression, err = GrpcCompression(c.TemporalCompression); err != nil {
		return opts, fmt.Errorf("TEMPORAL_GRPC_COMPRESSION: %w", err)
	}
	opts.ExternalStorage = PayloadWalk
	if c.TemporalTLSCert != "" {
		cert, err := tls.LoadX509KeyPair(c.TemporalTLSCert, c.TemporalTLSKey)
		if err != nil {
			return opts, fmt.Errorf("load Temporal TLS key pair: %w", err)
		}
		opts.ConnectionOptions.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	if c.TemporalAPIKey != "" {
		opts.Credentials = client.NewAPIKeyStaticCredentials(c.TemporalAPIKey)
		if opts.ConnectionOptions.TLS == nil {
			opts.ConnectionOptions.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
		}
	}
	return opts, nil
}

// PayloadWalk configures no external payload storage (no driver) and visits
// one payload site of a message at a time. The SDK walks every payload of
// every message it sends or receives for external storage even when none is
// configured; by default it visits map-valued payloads (memo, headers, search
// attributes) on goroutines of their own, up to 8 per message, and each new
// goroutine grows its stack for the walk's large frames: 165 → 130 µs per
// walk of a purchase→active history (BenchmarkPayloadWalk; BENCHMARKS.md, "A
// slower host, the engine's drift, Temporal on a CPU of its own").
var PayloadWalk = converter.ExternalStorage{Concurrency: converter.ExternalStorageConcurrency{MaxOperationsPerMessage: 1}}

// GrpcCompression is the SDK's setting for a compression name: none (or
// empty) or gzip.
func GrpcCompression(name string) (client.GrpcCompression, error) {
	switch name {
	case "", "none":
		return &client.GrpcCompressionNone{}, nil
	case "gzip":
		return &client.GrpcCompressionGzip{}, nil
	}
	return nil, fmt.Errorf("must be none or gzip, not %q", name)
}

// maskURLPassword hides the password of a URL's userinfo.
func maskURLPassword(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "***")
		return strings.Replace(u.String(), "%2A%2A%2A", "***", 1)
	}
	return raw
}
