// Package portal is the web face of the service for people: customer
// contacts and partner agents sign in with a one-time link sent by email and
// manage subscriptions on server-rendered pages under /portal/. It reads the
// read model like the API does and changes subscriptions only through the
// API's own paths (api.Server.AsAgent, DeactivateAsContact): it never writes
// a subscription's status.
package portal

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/partnerhub/fulfillment/api"
	"github.com/partnerhub/fulfillment/email"
	"github.com/partnerhub/fulfillment/store"
	"github.com/partnerhub/fulfillment/vault"
)

// Portal holds the pages' dependencies.
type Portal struct {
	Store  *store.Store
	API    *api.Server
	Vault  *vault.Vault
	Logger *slog.Logger
	// SecureCookies marks the session cookie Secure (everywhere but local
	// development over plain HTTP).
	SecureCookies bool
	LinkTTL       time.Duration // how long a sign-in link works (default 15 minutes)
	SessionTTL    time.Duration // how long a session lasts (default 8 hours)
	// SignInLimit throttles sign-in requests per client address (each may
	// send email); the store also caps links per email address. Nil: none.
	SignInLimit *api.AddressLimiter
	Now         func() time.Time

	pages map[string]*template.Template
}

const (
	// signInCookie ties the sign-in button to the browser that opened the
	// link, so another site cannot post someone's link (login CSRF).
	signInCookie  = "portal_sign_in"
	sessionCookie = "portal_session"
	sessionKey    = "portal_session"
	identityKey   = "portal_identity"
)

//go:embed templates/*.html static/*
var files embed.FS

// Mount registers the pages on r under /portal/.
func (p *Portal) Mount(r *gin.Engine) {
	if p.LinkTTL == 0 {
		p.LinkTTL = 15 * time.Minute
	}
	if p.SessionTTL == 0 {
		p.SessionTTL = 8 * time.Hour
	}
	if p.Now == nil {
		p.Now = time.Now
	}
	if p.Logger == nil {
		p.Logger = slog.Default()
	}
	p.pages = parsePages()
	static, _ := fs.Sub(files, "static")

	g := r.Group("/portal", p.headers)
	g.StaticFS("/static", http.FS(static))
	g.GET("/", p.session(false), p.home)
	g.GET("/sign-in", p.signInForm)
	g.POST("/sign-in", p.requestLink)
	g.GET("/sign-in/:token", p.confirmLink)
	g.POST("/sign-in/:token", p.useLink)
	g.POST("/sign-out", p.session(true), p.signOut)

	c := g.Group("", p.session(true), p.contactsOnly)
	c.GET("/subscriptions", p.customerSubscriptions)
	c.GET("/subscriptions/:id", p.customerSubscription)
	c.GET("/subscriptions/:id/set-up", p.setUpForm)
	c.POST("/subscriptions/:id/set-up", p.setUp)
	c.GET("/subscriptions/:id/deactivate", p.customerDeactivateForm)
	c.POST("/subscriptions/:id/deactivate", p.customerDeactivate)
	c.GET("/contacts", p.keyContacts)
	c.GET("/contacts/manage", p.manageContacts)
	c.POST("/contacts", p.addContact)
	c.POST("/contacts/:contact/roles", p.setRoles)
	c.POST("/contacts/:contact/primary", p.handOver)
	c.POST("/contacts/:contact/remove", p.removeContact)
	c.GET("/apps", p.installedApps)

	a := g.Group("/partner", p.session(true), p.agentsOnly)
	a.GET("/customers", p.agentCustomers)
	a.GET("/customers/:customer", p.agentCustomer)
	a.GET("/buy", p.buyForm)
	a.POST("/buy", p.buy)
	a.GET("/subscriptions/:id", p.agentSubscription)
	a.POST("/subscriptions/:id/change", p.change)
	a.POST("/subscriptions/:id/transfer", p.transfer)
	a.GET("/subscriptions/:id/cancel", p.cancelForm)
	a.POST("/subscriptions/:id/cancel", p.cancel)
	a.GET("/subscriptions/:id/deactivate", p.agentDeactivateForm)
	a.POST("/subscriptions/:id/deactivate", p.agentDeactivate)
}

// headers keep the pages out of frames and caches and allow nothing but
// the portal's own stylesheet.
func (p *Portal) headers(c *gin.Context) {
	h := c.Writer.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer") // sign-in tokens live in URLs
	h.Set("Cache-Control", "no-store")
	c.Next()
}

// session resolves the cookie to a signed-in identity; required sends the
// visitor to the sign-in page without one. Every POST must carry the
// session's CSRF token.
func (p *Portal) session(required bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		token, err := c.Cookie(sessionCookie)
		var id store.PortalIdentity
		if err == nil && token != "" {
			id, err = p.Store.PortalSession(c.Request.Context(), store.TokenHash(token))
		}
		switch {
		case err == nil && token != "":
			c.Set(sessionKey, token)
			c.Set(identityKey, id)
		case err != nil && !errors.Is(err, store.ErrNotFound) && !errors.Is(err, http.ErrNoCookie):
			p.fail(c, http.StatusServiceUnavailable, "The service is unavailable. Please try again shortly.")
			return
		case required:
			if c.Request.Method == http.MethodGet {
				c.Redirect(http.StatusSeeOther, "/portal/sign-in")
			} else {
				p.fail(c, http.StatusForbidden, "Your session has ended. Please sign in again.")
			}
			c.Abort()
			return
		}
		if c.Request.Method == http.MethodPost {
			want := p.csrf(c)
			if want == "" || subtle.ConstantTimeCompare([]byte(c.PostForm("csrf")), []byte(want)) != 1 {
				p.fail(c, http.StatusForbidden, "This form has expired. Go back, reload the page and try again.")
				return
			}
		}
		c.Next()
	}
}

// csrf is the session's form token: derived from the session token, so it
// needs no storage and changes with every sign-in.
func (p *Portal) csrf(c *gin.Context) string {
	if v, ok := c.Get(sessionKey); ok {
		return p.Vault.Token("portal-csrf", v.(string))
	}
	return ""
}

func identity(c *gin.Context) store.PortalIdentity {
	return c.MustGet(identityKey).(store.PortalIdentity)
}

func (p *Portal) contactsOnly(c *gin.Context) {
	if identity(c).IsAgent() {
		p.notFound(c)
		return
	}
	c.Next()
}

func (p *Portal) agentsOnly(c *gin.Context) {
	if !identity(c).IsAgent() {
		p.notFound(c)
		return
	}
	c.Next()
}

func (p *Portal) home(c *gin.Context) {
	v, ok := c.Get(identityKey)
	switch {
	case !ok:
		c.Redirect(http.StatusSeeOther, "/portal/sign-in")
	case v.(store.PortalIdentity).IsAgent():
		c.Redirect(http.StatusSeeOther, "/portal/partner/customers")
	default:
		c.Redirect(http.StatusSeeOther, "/portal/subscriptions")
	}
}

func (p *Portal) signInForm(c *gin.Context) {
	p.render(c, http.StatusOK, "sign_in", gin.H{"Title": "Sign in"})
}

// requestLink emails a one-time link when the address belongs to a contact
// or an agent; the answer is the same page either way.
func (p *Portal) requestLink(c *gin.Context) {
	if ok, wait := p.SignInLimit.Allow(c.ClientIP()); !ok {
		seconds := max(1, int(math.Ceil(wait.Seconds())))
		c.Header("Retry-After", strconv.Itoa(seconds))
		p.Logger.Info("audit", "actor", "portal", "action", "portal.sign_in_requested", "outcome", "rate_limited")
		p.render(c, http.StatusTooManyRequests, "sign_in", gin.H{"Title": "Sign in",
			"Error": fmt.Sprintf("Too many sign-in requests from your network. Please try again in %d seconds.", seconds)})
		return
	}
	address := c.PostForm("email")
	if len(address) > 254 {
		address = ""
	}
	links, err := p.Store.RequestSignIn(c.Request.Context(), address, p.linkHash, p.LinkTTL)
	if err != nil {
		p.Logger.Warn("portal sign-in request", "error", err)
	}
	p.Logger.Info("audit", "actor", "portal", "action", "portal.sign_in_requested", "outcome", "answered", "links", len(links))
	p.render(c, http.StatusOK, "sign_in_sent", gin.H{"Title": "Check your email", "Minutes": int(p.LinkTTL.Minutes())})
}

func (p *Portal) linkHash(linkID string) []byte {
	return store.TokenHash(p.Vault.SignInToken(linkID))
}

// confirmLink shows a button that signs in: opening the link signs nobody
// in, so mail scanners that fetch links do not spend it.
func (p *Portal) confirmLink(c *gin.Context) {
	pre := newToken()
	http.SetCookie(c.Writer, &http.Cookie{Name: signInCookie, Value: pre, Path: "/portal/sign-in", MaxAge: int(p.LinkTTL.Seconds()),
		HttpOnly: true, Secure: p.SecureCookies, SameSite: http.SameSiteStrictMode})
	p.render(c, http.StatusOK, "sign_in_confirm", gin.H{"Title": "Sign in", "Token": c.Param("token"),
		"SignInCSRF": p.Vault.Token("portal-sign-in-form", pre)})
}

func (p *Portal) useLink(c *gin.Context) {
	pre, err := c.Cookie(signInCookie)
	if err != nil || pre == "" || subtle.ConstantTimeCompare([]byte(c.PostForm("csrf")), []byte(p.Vault.Token("portal-sign-in-form", pre))) != 1 {
		p.render(c, http.StatusForbidden, "sign_in", gin.H{"Title": "Sign in",
			"Error": "Open the sign-in link from your email again, then press Sign in."})
		return
	}
	http.SetCookie(c.Writer, &http.Cookie{Name: signInCookie, Value: "", Path: "/portal/sign-in", MaxAge: -1,
		HttpOnly: true, Secure: p.SecureCookies, SameSite: http.SameSiteStrictMode})
	session := newToken()
	id, err := p.Store.UseSignInLink(c.Request.Context(), store.TokenHash(c.Param("token")), store.TokenHash(session), p.SessionTTL)
	if errors.Is(err, store.ErrLinkInvalid) {
		p.render(c, http.StatusGone, "sign_in", gin.H{"Title": "Sign in",
			"Error": "This sign-in link has expired or was used already. Ask for a new one below."})
		return
	}
	if err != nil {
		p.Logger.Warn("portal sign-in", "error", err)
		p.fail(c, http.StatusServiceUnavailable, "The service is unavailable. Please try again shortly.")
		return
	}
	p.Logger.Info("audit", "actor", actorOf(id), "tenant", id.PartnerID, "action", "portal.sign_in", "outcome", "ok")
	http.SetCookie(c.Writer, &http.Cookie{
		Name: sessionCookie, Value: session, Path: "/portal", MaxAge: int(p.SessionTTL.Seconds()),
		HttpOnly: true, Secure: p.SecureCookies, SameSite: http.SameSiteLaxMode,
	})
	c.Redirect(http.StatusSeeOther, "/portal/")
}

func (p *Portal) signOut(c *gin.Context) {
	if err := p.Store.EndPortalSession(c.Request.Context(), store.TokenHash(c.MustGet(sessionKey).(string))); err != nil {
		p.Logger.Warn("portal sign-out", "error", err)
	}
	http.SetCookie(c.Writer, &http.Cookie{Name: sessionCookie, Value: "", Path: "/portal", MaxAge: -1,
		HttpOnly: true, Secure: p.SecureCookies, SameSite: http.SameSiteLaxMode})
	c.Redirect(http.StatusSeeOther, "/portal/sign-in")
}

func actorOf(id store.PortalIdentity) string {
	if id.IsAgent() {
		return "agent:" + id.PartnerID + "/" + *id.AgentID
	}
	return "contact:" + *id.ContactID
}

func newToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// MintLink creates a sign-in link for an identity without emailing it and
// returns its URL under portalURL (`fulfillment dev` prints links for the
// demo seed).
func MintLink(ctx context.Context, st *store.Store, v *vault.Vault, portalURL string, id store.PortalIdentity, ttl time.Duration) (string, error) {
	link, err := st.MintSignInLink(ctx, id, func(linkID string) []byte { return store.TokenHash(v.SignInToken(linkID)) }, ttl)
	if err != nil {
		return "", err
	}
	return email.SignInURL(portalURL, v.SignInToken(link.ID)), nil
}
