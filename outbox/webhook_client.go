package outbox

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
)

// Publisher webhook URLs come from the catalog, so the dispatcher must not be
// turned into a way to reach the service's own network (SSRF): the HTTP
// client follows no redirects and connects only to public unicast addresses.
// The address is checked when the socket connects, after DNS resolution, so
// a hostname that resolves (or re-resolves: DNS rebinding) to a private
// address is refused too.

// ErrWebhookTargetRefused is the error of a delivery to a refused address.
var ErrWebhookTargetRefused = errors.New("webhook target address refused")

// WebhookClientOptions tune NewWebhookClient.
type WebhookClientOptions struct {
	// AllowPrivate lets webhooks reach loopback, private, link-local and
	// other non-public addresses (WEBHOOK_ALLOW_PRIVATE; development only).
	AllowPrivate bool
	// Timeout bounds one delivery attempt, answer included (default 10 s).
	Timeout time.Duration
}

// NewWebhookClient is the HTTP client publisher notifications go out with.
// A 3xx answer is returned as is (a failed delivery, retried later), never
// followed. Environment proxies are ignored: the address check must see the
// publisher's address, not a proxy's.
func NewWebhookClient(opts WebhookClientOptions) *http.Client {
	if opts.Timeout == 0 {
		opts.Timeout = 10 * time.Second
	}
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	if !opts.AllowPrivate {
		dialer.Control = func(network, address string, _ syscall.RawConn) error {
			return CheckWebhookAddress(address)
		}
	}
	transport := &http.Transport{
		Proxy:                 nil,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: opts.Timeout,
		ExpectContinueTimeout: time.Second,
	}
	return &http.Client{
		Transport: transport,
		Timeout:   opts.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// blockedPrefixes are ranges that are not public unicast beyond what netip's
// predicates cover: "this network", carrier-grade NAT, IETF protocol
// assignments, documentation, benchmarking, reserved and broadcast, and the
// IPv6 translation/tunnel prefixes that embed an IPv4 address.
var blockedPrefixes = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("192.0.2.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("64:ff9b::/96"),
	netip.MustParsePrefix("64:ff9b:1::/48"),
	netip.MustParsePrefix("100::/64"),
	netip.MustParsePrefix("2001::/32"),
	netip.MustParsePrefix("2001:db8::/32"),
	netip.MustParsePrefix("2002::/16"),
}

// CheckWebhookAddress refuses a resolved "ip:port" that is not a public
// unicast address: loopback, private, link-local, unspecified, multicast and
// the ranges above. IPv4-mapped IPv6 addresses are judged as IPv4.
func CheckWebhookAddress(address string) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: %q is not an IP address", ErrWebhookTargetRefused, address)
	}
	ip := ap.Addr().Unmap()
	switch {
	case ip.IsLoopback(), ip.IsPrivate(), ip.IsLinkLocalUnicast(), ip.IsLinkLocalMulticast(),
		ip.IsInterfaceLocalMulticast(), ip.IsMulticast(), ip.IsUnspecified():
		return fmt.Errorf("%w: %s is not a public address (set WEBHOOK_ALLOW_PRIVATE=true for development)", ErrWebhookTargetRefused, ip)
	}
	for _, p := range blockedPrefixes {
		if p.Contains(ip) {
			return fmt.Errorf("%w: %s is in the reserved range %s", ErrWebhookTargetRefused, ip, p)
		}
	}
	return nil
}
