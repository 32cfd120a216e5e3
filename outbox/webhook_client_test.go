package outbox_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/partnerhub/fulfillment/outbox"
)

func TestCheckWebhookAddress(t *testing.T) {
	refused := []string{
		"127.0.0.1:443", "127.8.9.10:80", "[::1]:443", // loopback
		"10.1.2.3:443", "172.16.0.1:443", "172.31.255.254:443", "192.168.1.1:443", "[fd00::1]:443", // private
		"169.254.169.254:80", "[fe80::1]:443", "[fe80::1%eth0]:443", // link-local (cloud metadata)
		"0.0.0.0:443", "[::]:443", // unspecified
		"224.0.0.1:443", "239.1.2.3:443", "[ff02::1]:443", // multicast
		"100.64.0.1:443", "255.255.255.255:443", "0.1.2.3:443", // carrier NAT, broadcast, "this network"
		"[::ffff:127.0.0.1]:443", "[::ffff:10.0.0.1]:443", // IPv4-mapped
		"[64:ff9b::a00:1]:443", "[2002:a00:1::1]:443", // IPv4 embedded by NAT64 and 6to4
		"example.com:443", // never a name: the check runs on the resolved address
	}
	for _, addr := range refused {
		assert.ErrorIs(t, outbox.CheckWebhookAddress(addr), outbox.ErrWebhookTargetRefused, addr)
	}
	for _, addr := range []string{"93.184.216.34:443", "8.8.8.8:80", "172.32.0.1:443", "[2606:4700:4700::1111]:443", "[::ffff:8.8.8.8]:443"} {
		assert.NoError(t, outbox.CheckWebhookAddress(addr), addr)
	}
}

// countingServer counts the requests that reached it.
func countingServer(t *testing.T, status int) (*httptest.Server, *atomic.Int32) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

// The address is checked when the connection is made, after resolution: an
// IP literal and a hostname that resolves to loopback are both refused, and
// nothing reaches the server. The development switch lets them through.
func TestWebhookClientRefusesPrivateTargets(t *testing.T) {
	srv, hits := countingServer(t, http.StatusNoContent)
	byName := strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)

	guarded := outbox.NewWebhookClient(outbox.WebhookClientOptions{})
	for _, url := range []string{srv.URL, byName} {
		resp, err := guarded.Post(url, "application/json", strings.NewReader(`{}`))
		if resp != nil {
			resp.Body.Close()
		}
		require.ErrorIs(t, err, outbox.ErrWebhookTargetRefused, url)
	}
	assert.Zero(t, hits.Load(), "no request reached the loopback server")

	dev := outbox.NewWebhookClient(outbox.WebhookClientOptions{AllowPrivate: true})
	for _, url := range []string{srv.URL, byName} {
		resp, err := dev.Post(url, "application/json", strings.NewReader(`{}`))
		require.NoError(t, err, url)
		resp.Body.Close()
		assert.Equal(t, http.StatusNoContent, resp.StatusCode)
	}
	assert.EqualValues(t, 2, hits.Load())
}

// A 3xx answer is the answer: the client does not follow it.
func TestWebhookClientFollowsNoRedirect(t *testing.T) {
	target, hits := countingServer(t, http.StatusOK)
	for _, status := range []int{http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		redirector := httptest.NewServer(http.RedirectHandler(target.URL, status))
		t.Cleanup(redirector.Close)
		resp, err := outbox.NewWebhookClient(outbox.WebhookClientOptions{AllowPrivate: true}).
			Post(redirector.URL, "application/json", strings.NewReader(`{}`))
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, status, resp.StatusCode)
	}
	assert.Zero(t, hits.Load(), "the redirect target was never called")
}
