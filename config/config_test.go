package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
)

func TestDefaults(t *testing.T) {
	for _, name := range []string{"DATABASE_URL", "TEMPORAL_ADDRESS", "HTTP_ADDR", "TEMPORAL_TASK_QUEUE", "UPDATE_TIMEOUT", "MESSAGE_RETENTION"} {
		t.Setenv(name, "")
	}
	c, err := FromEnv()
	require.NoError(t, err)
	assert.Equal(t, "postgres://postgres@127.0.0.1:5432/fulfillment?sslmode=disable", c.DatabaseURL)
	assert.Equal(t, "127.0.0.1:7233", c.TemporalAddress)
	assert.Equal(t, "default", c.TemporalNamespace)
	assert.Equal(t, ":8080", c.HTTPAddr)
	assert.Equal(t, "subscription-fulfillment", c.TaskQueue)
	assert.Equal(t, 30*time.Second, c.UpdateTimeout)
	assert.Equal(t, 48*time.Hour, c.MessageRetention)
}

func TestBadValuesAreRefused(t *testing.T) {
	t.Setenv("RATE_LIMIT_PARTNER_RPS", "fast")
	_, err := FromEnv()
	require.ErrorContains(t, err, "RATE_LIMIT_PARTNER_RPS")

	t.Setenv("RATE_LIMIT_PARTNER_RPS", "")
	t.Setenv("TEMPORAL_TLS_CERT", "/some/cert.pem")
	_, err = FromEnv()
	require.ErrorContains(t, err, "go together")
}

// Temporal Cloud: an API key implies TLS; an mTLS pair is loaded as the client certificate.
func TestTemporalCloudOptions(t *testing.T) {
	t.Setenv("TEMPORAL_API_KEY", "cloud-api-key-123")
	c, err := FromEnv()
	require.NoError(t, err)
	opts, err := c.TemporalOptions(slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	require.NotNil(t, opts.Credentials)
	require.NotNil(t, opts.ConnectionOptions.TLS, "an API key travels over TLS only")
	assert.NotContains(t, fmt.Sprint(c.Masked()...), "cloud-api-key-123", "masked in the start-up log")

	t.Setenv("TEMPORAL_API_KEY", "")
	certFile, keyFile := selfSigned(t)
	t.Setenv("TEMPORAL_TLS_CERT", certFile)
	t.Setenv("TEMPORAL_TLS_KEY", keyFile)
	c, err = FromEnv()
	require.NoError(t, err)
	opts, err = c.TemporalOptions(slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	require.NotNil(t, opts.ConnectionOptions.TLS)
	assert.Len(t, opts.ConnectionOptions.TLS.Certificates, 1)
	assert.Nil(t, opts.Credentials)

	t.Setenv("TEMPORAL_TLS_KEY", certFile) // not a key
	c, err = FromEnv()
	require.NoError(t, err)
	_, err = c.TemporalOptions(slog.New(slog.DiscardHandler))
	require.Error(t, err)
}

// gRPC compression to Temporal: off unless asked for; a misspelt value is refused.
func TestTemporalCompression(t *testing.T) {
	c, err := FromEnv()
	require.NoError(t, err)
	opts, err := c.TemporalOptions(slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	assert.IsType(t, &client.GrpcCompressionNone{}, opts.ConnectionOptions.GrpcCompression)

	t.Setenv("TEMPORAL_GRPC_COMPRESSION", "gzip")
	c, err = FromEnv()
	require.NoError(t, err)
	opts, err = c.TemporalOptions(slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	assert.IsType(t, &client.GrpcCompressionGzip{}, opts.ConnectionOptions.GrpcCompression)

	t.Setenv("TEMPORAL_GRPC_COMPRESSION", "zstd")
	c, err = FromEnv()
	require.NoError(t, err)
	_, err = c.TemporalOptions(slog.New(slog.DiscardHandler))
	require.ErrorContains(t, err, "TEMPORAL_GRPC_COMPRESSION")
}

func TestMaskedHidesSecrets(t *testing.T) {
	c := Config{DatabaseURL: "postgres://app:s3cret@db:5432/fulfillment", SecretKey: "c2VjcmV0", TemporalAPIKey: "k"}
	out := fmt.Sprint(c.Masked()...)
	for _, secret := range []string{"s3cret", "c2VjcmV0"} {
		assert.False(t, strings.Contains(out, secret), "%q leaked in %s", secret, out)
	}
	assert.Contains(t, out, "postgres://app:***@db:5432/fulfillment")
}

func selfSigned(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "fulfillment-worker"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	keyDER, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "client.pem"), filepath.Join(dir, "client.key")
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600))
	return certFile, keyFile
}

// Publisher webhooks to private addresses are off unless a development stack turns them on.
func TestWebhookAllowPrivate(t *testing.T) {
	t.Setenv("WEBHOOK_ALLOW_PRIVATE", "")
	c, err := FromEnv()
	require.NoError(t, err)
	assert.False(t, c.WebhookAllowPrivate, "off by default")

	t.Setenv("WEBHOOK_ALLOW_PRIVATE", "true")
	c, err = FromEnv()
	require.NoError(t, err)
	assert.True(t, c.WebhookAllowPrivate)

	t.Setenv("WEBHOOK_ALLOW_PRIVATE", "sometimes")
	_, err = FromEnv()
	require.ErrorContains(t, err, "WEBHOOK_ALLOW_PRIVATE")
}

func TestTrustedProxies(t *testing.T) {
	t.Setenv("TRUSTED_PROXIES", "")
	c, err := FromEnv()
	require.NoError(t, err)
	assert.Empty(t, c.TrustedProxies, "no proxy is trusted by default")

	t.Setenv("TRUSTED_PROXIES", " 10.0.0.0/8, 192.0.2.10 ,fd00::/8,")
	c, err = FromEnv()
	require.NoError(t, err)
	assert.Equal(t, []string{"10.0.0.0/8", "192.0.2.10", "fd00::/8"}, c.TrustedProxies)

	for _, bad := range []string{"10.0.0.0/33", "proxy.example", "10.0.0"} {
		t.Setenv("TRUSTED_PROXIES", bad)
		_, err = FromEnv()
		assert.ErrorContains(t, err, "TRUSTED_PROXIES", bad)
	}
}

func TestSMTPURLPasswordIsMasked(t *testing.T) {
	t.Setenv("SMTP_URL", "smtps://mailer:p4ss@mail.example:465")
	c, err := FromEnv()
	require.NoError(t, err)
	assert.Equal(t, "smtps://mailer:p4ss@mail.example:465", c.SMTPURL)
	out := fmt.Sprint(c.Masked()...)
	assert.NotContains(t, out, "p4ss")
	assert.Contains(t, out, "smtps://mailer:***@mail.example:465")
	t.Setenv("SMTP_URL", "")
	c, err = FromEnv()
	require.NoError(t, err)
	assert.Empty(t, c.SMTPURL, "unset: nothing is sent")
	assert.Equal(t, 1025, c.MailpitSMTPPort)
	assert.Equal(t, 8025, c.MailpitUIPort)
}
