package service

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/partnerhub/fulfillment/config"
	"github.com/partnerhub/fulfillment/portal"
	"github.com/partnerhub/fulfillment/store"
)

// devLinkTTL is how long the sign-in links `fulfillment dev` prints work.
const devLinkTTL = time.Hour

// withDevPortal serves the portal over plain HTTP on the dev address unless
// PORTAL_URL and PORTAL_SECURE_COOKIES say otherwise.
func withDevPortal(cfg config.Config) config.Config {
	if _, set := os.LookupEnv("PORTAL_SECURE_COOKIES"); !set {
		cfg.PortalSecureCookies = false
	}
	if cfg.PortalURL == "" {
		addr := cfg.HTTPAddr
		if strings.HasPrefix(addr, ":") {
			addr = "127.0.0.1" + addr
		}
		cfg.PortalURL = "http://" + addr + "/portal"
	}
	return cfg
}

type demoLink struct{ who, url string }

// demoAddresses sign in as the demo seed's customer contact, admin and sales agent.
var demoAddresses = []string{"ann@woodgrove.example", "alice@fabrikam.example", "bob@fabrikam.example"}

// demoSignInLinks mints a one-time link for each demo address.
func demoSignInLinks(ctx context.Context, d *Deps, logger *slog.Logger) []demoLink {
	var links []demoLink
	for _, address := range demoAddresses {
		ids, err := d.Store.PortalIdentities(ctx, address)
		if err != nil {
			logger.Warn("demo sign-in link", "email", address, "error", err)
			continue
		}
		for _, id := range ids {
			url, err := portal.MintLink(ctx, d.Store, d.Vault, d.Config.PortalURL, id, devLinkTTL)
			if err != nil {
				logger.Warn("demo sign-in link", "email", address, "error", err)
				continue
			}
			links = append(links, demoLink{who: describe(id), url: url})
		}
	}
	return links
}

func describe(id store.PortalIdentity) string {
	if id.IsAgent() {
		return id.Email + " (agent)"
	}
	return id.Email + " (contact)"
}
