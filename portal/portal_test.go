package portal_test

// Handler tests of sign-in, sessions, CSRF and tenancy against a real
// PostgreSQL (no Temporal: nothing here changes a subscription).

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/partnerhub/fulfillment/api"
	"github.com/partnerhub/fulfillment/domain"
	"github.com/partnerhub/fulfillment/e2e"
	"github.com/partnerhub/fulfillment/portal"
	"github.com/partnerhub/fulfillment/seed"
	"github.com/partnerhub/fulfillment/store"
	"github.com/partnerhub/fulfillment/testenv"
	"github.com/partnerhub/fulfillment/vault"
)

type site struct {
	t  *testing.T
	st *store.Store
	v  *vault.Vault
	h  http.Handler
}

// newSite serves the portal over a seeded database; configure adjusts the
// portal before it is mounted.
func newSite(t *testing.T, configure ...func(*portal.Portal)) *site {
	t.Parallel()
	st, _ := testenv.Database(t)
	v, err := vault.Parse(testenv.SecretKey())
	require.NoError(t, err)
	f, err := seed.Parse([]byte(strings.Replace(e2e.Seed, "WEBHOOK_URL", "null", 1)))
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, seed.Load(ctx, st, v, f))
	for customer, address := range map[string]string{"woodgrove": "ann@woodgrove.test"} {
		_, _, err := st.AssignFirstContact(ctx, store.CustomerRef{PartnerID: "fabrikam", CustomerID: customer}, address, "test")
		require.NoError(t, err)
	}
	_, _, err = st.AssignFirstContact(ctx, store.CustomerRef{PartnerID: "northwind", CustomerID: "tailspin"}, "tom@tailspin.test", "test")
	require.NoError(t, err)
	srv := &api.Server{Store: st, Vault: v}
	r := srv.Router()
	p := &portal.Portal{Store: st, API: srv, Vault: v, SecureCookies: true}
	for _, f := range configure {
		f(p)
	}
	p.Mount(r)
	return &site{t: t, st: st, v: v, h: r}
}

// browser keeps cookies like a browser would for one person.
type browser struct {
	s         *site
	cookie    *http.Cookie // the session
	preSignIn *http.Cookie // the sign-in page's
}

func (s *site) browser() *browser { return &browser{s: s} }

func (b *browser) do(method, path string, form url.Values) *httptest.ResponseRecorder {
	b.s.t.Helper()
	var body *strings.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	} else {
		body = strings.NewReader("")
	}
	req := httptest.NewRequest(method, path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if b.cookie != nil {
		req.AddCookie(b.cookie)
	}
	if b.preSignIn != nil && strings.HasPrefix(path, "/portal/sign-in") {
		req.AddCookie(b.preSignIn)
	}
	w := httptest.NewRecorder()
	b.s.h.ServeHTTP(w, req)
	for _, c := range w.Result().Cookies() {
		if c.Name == "portal_sign_in" {
			b.preSignIn = c
		}
		if c.Name == "portal_session" {
			if c.MaxAge < 0 {
				b.cookie = nil
			} else {
				b.cookie = c
			}
		}
	}
	return w
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func csrfOf(t *testing.T, page string) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(page)
	require.NotNil(t, m, "the page carries a CSRF token")
	return m[1]
}

// link mints a link for the identity with address, valid for ttl, and returns its token.
func (s *site) link(address string, ttl time.Duration) string {
	s.t.Helper()
	ids, err := s.st.PortalIdentities(context.Background(), address)
	require.NoError(s.t, err)
	require.Len(s.t, ids, 1)
	u, err := portal.MintLink(context.Background(), s.st, s.v, "http://portal.test/portal", ids[0], ttl)
	require.NoError(s.t, err)
	return u[strings.LastIndex(u, "/")+1:]
}

// use opens a sign-in link and presses Sign in.
func (b *browser) use(token string) *httptest.ResponseRecorder {
	b.s.t.Helper()
	page := b.do(http.MethodGet, "/portal/sign-in/"+token, nil)
	require.Equal(b.s.t, http.StatusOK, page.Code)
	return b.do(http.MethodPost, "/portal/sign-in/"+token, url.Values{"csrf": {csrfOf(b.s.t, page.Body.String())}})
}

// signIn signs b in with a fresh link of address.
func (b *browser) signIn(address string) {
	b.s.t.Helper()
	w := b.use(b.s.link(address, time.Minute))
	require.Equal(b.s.t, http.StatusSeeOther, w.Code, w.Body.String())
	require.NotNil(b.s.t, b.cookie)
}

func TestSignInRequestRevealsNothingAndQueuesOneEmail(t *testing.T) {
	s := newSite(t)
	known := s.browser().do(http.MethodPost, "/portal/sign-in", url.Values{"email": {"ann@woodgrove.test"}})
	unknown := s.browser().do(http.MethodPost, "/portal/sign-in", url.Values{"email": {"nobody@woodgrove.test"}})
	agent := s.browser().do(http.MethodPost, "/portal/sign-in", url.Values{"email": {"Alice@Fabrikam.test"}})
	for _, w := range []*httptest.ResponseRecorder{known, unknown, agent} {
		assert.Equal(t, http.StatusOK, w.Code)
	}
	assert.Equal(t, known.Body.String(), unknown.Body.String(), "the answer never tells whether the address exists")
	var rows []struct {
		Kind      string `db:"kind"`
		Recipient string `db:"recipient"`
		Data      string `db:"data"`
	}
	require.NoError(t, s.st.DB().Select(&rows, `SELECT kind, recipient, data::text AS data FROM email_outbox WHERE kind = 'sign_in' ORDER BY recipient`))
	require.Len(t, rows, 2, "one link for the contact, one for the agent (matched without case)")
	assert.Equal(t, "alice@fabrikam.test", rows[0].Recipient)
	assert.Equal(t, "ann@woodgrove.test", rows[1].Recipient)
	for _, r := range rows {
		assert.NotContains(t, r.Data, "sign-in/", "the outbox keeps the link's id, never its token")
	}
	var hashes int
	require.NoError(t, s.st.DB().Get(&hashes, `SELECT count(*) FROM portal_sign_in_links WHERE length(token_hash) = 32`))
	assert.Equal(t, 2, hashes, "links are stored as SHA-256 hashes")

	for range 10 { // an address cannot flood its inbox
		s.browser().do(http.MethodPost, "/portal/sign-in", url.Values{"email": {"ann@woodgrove.test"}})
	}
	var links int
	require.NoError(t, s.st.DB().Get(&links, `SELECT count(*) FROM portal_sign_in_links WHERE email = 'ann@woodgrove.test'`))
	assert.Equal(t, 5, links)
}

func TestSignInRequestsAreThrottledPerClientAddress(t *testing.T) {
	s := newSite(t, func(p *portal.Portal) { p.SignInLimit = api.NewAddressLimiter(0.01, 3) })
	request := func(from, address string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, "/portal/sign-in", strings.NewReader(url.Values{"email": {address}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.RemoteAddr = from + ":40000"
		w := httptest.NewRecorder()
		s.h.ServeHTTP(w, req)
		return w
	}
	for i := range 3 { // different addresses, so the per-email cap is not what stops them
		assert.Equal(t, http.StatusOK, request("192.0.2.7", fmt.Sprintf("nobody%d@woodgrove.test", i)).Code)
	}
	refused := request("192.0.2.7", "ann@woodgrove.test")
	assert.Equal(t, http.StatusTooManyRequests, refused.Code)
	assert.NotEmpty(t, refused.Header().Get("Retry-After"))
	assert.Contains(t, refused.Body.String(), "Too many sign-in requests")
	var links int
	require.NoError(t, s.st.DB().Get(&links, `SELECT count(*) FROM portal_sign_in_links WHERE email = 'ann@woodgrove.test'`))
	assert.Zero(t, links, "a refused request creates no link and sends no email")

	assert.Equal(t, http.StatusOK, request("198.51.100.9", "ann@woodgrove.test").Code, "another client is not throttled")
	require.NoError(t, s.st.DB().Get(&links, `SELECT count(*) FROM portal_sign_in_links WHERE email = 'ann@woodgrove.test'`))
	assert.Equal(t, 1, links)
}

func TestLinkWorksOnceAndOpensAStrictSession(t *testing.T) {
	s := newSite(t)
	token := s.link("ann@woodgrove.test", time.Minute)
	b := s.browser()
	confirm := b.do(http.MethodGet, "/portal/sign-in/"+token, nil)
	assert.Equal(t, http.StatusOK, confirm.Code)
	assert.Nil(t, b.cookie, "opening the link signs nobody in (mail scanners fetch links)")

	forged := b.do(http.MethodPost, "/portal/sign-in/"+token, url.Values{"csrf": {"forged"}})
	assert.Equal(t, http.StatusForbidden, forged.Code, "the button works only in the browser that opened the link (no login CSRF)")
	assert.Nil(t, b.cookie)
	w := b.do(http.MethodPost, "/portal/sign-in/"+token, url.Values{"csrf": {csrfOf(t, confirm.Body.String())}})
	require.Equal(t, http.StatusSeeOther, w.Code, w.Body.String())
	require.NotNil(t, b.cookie)
	assert.True(t, b.cookie.HttpOnly)
	assert.True(t, b.cookie.Secure)
	assert.Equal(t, http.SameSiteLaxMode, b.cookie.SameSite)
	assert.Equal(t, "/portal", b.cookie.Path)
	var stored int
	require.NoError(t, s.st.DB().Get(&stored, `SELECT count(*) FROM portal_sessions WHERE id_hash = $1`, store.TokenHash(b.cookie.Value)))
	assert.Equal(t, 1, stored, "the session is kept server-side, under the hash of its token")

	page := b.do(http.MethodGet, "/portal/subscriptions", nil)
	assert.Equal(t, http.StatusOK, page.Code)
	assert.Contains(t, page.Body.String(), "Subscriptions of Woodgrove Bank")

	again := s.browser()
	reused := again.use(token)
	assert.Equal(t, http.StatusGone, reused.Code, "a link works once")
	assert.Nil(t, again.cookie)

	expired := s.link("ann@woodgrove.test", -time.Second)
	late := s.browser()
	assert.Equal(t, http.StatusGone, late.use(expired).Code, "an expired link does not work")
	assert.Nil(t, late.cookie)
	assert.Equal(t, http.StatusGone, s.browser().use("not-a-token").Code)
}

func TestSignOutEndsTheSession(t *testing.T) {
	s := newSite(t)
	b := s.browser()
	b.signIn("ann@woodgrove.test")
	old := b.cookie
	page := b.do(http.MethodGet, "/portal/subscriptions", nil)
	w := b.do(http.MethodPost, "/portal/sign-out", url.Values{"csrf": {csrfOf(t, page.Body.String())}})
	assert.Equal(t, http.StatusSeeOther, w.Code)
	b.cookie = old // a copied cookie is worthless after sign-out
	after := b.do(http.MethodGet, "/portal/subscriptions", nil)
	assert.Equal(t, http.StatusSeeOther, after.Code)
	assert.Equal(t, "/portal/sign-in", after.Header().Get("Location"))
}

func TestEveryFormNeedsTheSessionsCSRFToken(t *testing.T) {
	s := newSite(t)
	b := s.browser()
	b.signIn("ann@woodgrove.test")
	other := s.browser()
	other.signIn("tom@tailspin.test")
	otherToken := csrfOf(t, other.do(http.MethodGet, "/portal/subscriptions", nil).Body.String())

	add := url.Values{"email": {"bea@woodgrove.test"}, "roles": {"technical"}}
	assert.Equal(t, http.StatusForbidden, b.do(http.MethodPost, "/portal/contacts", add).Code, "no token")
	add.Set("csrf", "forged")
	assert.Equal(t, http.StatusForbidden, b.do(http.MethodPost, "/portal/contacts", add).Code, "a wrong token")
	add.Set("csrf", otherToken)
	assert.Equal(t, http.StatusForbidden, b.do(http.MethodPost, "/portal/contacts", add).Code, "another session's token")
	contacts, err := s.st.Contacts(context.Background(), store.CustomerRef{PartnerID: "fabrikam", CustomerID: "woodgrove"})
	require.NoError(t, err)
	assert.Len(t, contacts, 1, "nothing changed")

	add.Set("csrf", csrfOf(t, b.do(http.MethodGet, "/portal/contacts/manage", nil).Body.String()))
	w := b.do(http.MethodPost, "/portal/contacts", add)
	assert.Equal(t, http.StatusSeeOther, w.Code, w.Body.String())
	contacts, err = s.st.Contacts(context.Background(), store.CustomerRef{PartnerID: "fabrikam", CustomerID: "woodgrove"})
	require.NoError(t, err)
	assert.Len(t, contacts, 2)
}

// pending saves a subscription waiting for fulfillment straight into the read model.
func pending(t *testing.T, st *store.Store, partner, customer, id string) {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Microsecond)
	sub := domain.Subscription{ID: id, PartnerID: partner, CustomerID: customer, PublisherID: "contoso", OfferID: "analytics",
		PlanID: "annual", Quantity: 3, AutoRenew: true, LinkedSubscriptionIDs: []string{}, EntitlementNumber: domain.EntitlementNumber(id),
		Status: domain.StatusPendingFulfillment, ActivationDeadline: now.Add(time.Hour), CreatedAt: now, UpdatedAt: now, Version: 1}
	_, err := st.SaveChange(context.Background(), domain.Change{Subscription: sub}, nil)
	require.NoError(t, err)
}

func TestEachSeesOnlyItsOwnTenant(t *testing.T) {
	s := newSite(t)
	pending(t, s.st, "fabrikam", "woodgrove", "sub-woodgrove")
	pending(t, s.st, "fabrikam", "contoso-pharma", "sub-pharma")
	pending(t, s.st, "northwind", "tailspin", "sub-tailspin")

	ann := s.browser()
	ann.signIn("ann@woodgrove.test")
	for _, path := range []string{"/portal/subscriptions/sub-woodgrove", "/portal/subscriptions/sub-woodgrove/set-up",
		"/portal/subscriptions/sub-woodgrove/deactivate", "/portal/apps", "/portal/contacts", "/portal/contacts/manage"} {
		assert.Equal(t, http.StatusOK, ann.do(http.MethodGet, path, nil).Code, path)
	}
	list := ann.do(http.MethodGet, "/portal/subscriptions?tab=upcoming", nil).Body.String()
	assert.Contains(t, list, "sub-woodgrove")
	assert.NotContains(t, list, "sub-pharma")
	for _, path := range []string{"/portal/subscriptions/sub-pharma", "/portal/subscriptions/sub-tailspin",
		"/portal/subscriptions/sub-tailspin/deactivate", "/portal/subscriptions/nope", "/portal/partner/customers"} {
		assert.Equal(t, http.StatusNotFound, ann.do(http.MethodGet, path, nil).Code, path)
	}

	nina := s.browser()
	nina.signIn("nina@northwind.test")
	assert.Equal(t, http.StatusOK, nina.do(http.MethodGet, "/portal/partner/subscriptions/sub-tailspin", nil).Code)
	for _, path := range []string{"/portal/partner/subscriptions/sub-woodgrove", "/portal/partner/customers/woodgrove",
		"/portal/partner/subscriptions/sub-woodgrove/cancel", "/portal/subscriptions"} {
		assert.Equal(t, http.StatusNotFound, nina.do(http.MethodGet, path, nil).Code, path)
	}
	token := csrfOf(t, nina.do(http.MethodGet, "/portal/partner/customers", nil).Body.String())
	forged := nina.do(http.MethodPost, "/portal/partner/subscriptions/sub-woodgrove/deactivate", url.Values{"csrf": {token}})
	assert.Equal(t, http.StatusNotFound, forged.Code, "another partner's subscription is unknown, also to a valid form")

	alice := s.browser()
	alice.signIn("alice@fabrikam.test")
	for _, path := range []string{"/portal/partner/customers/woodgrove?tab=upcoming", "/portal/partner/buy?customer=woodgrove",
		"/portal/partner/subscriptions/sub-woodgrove/deactivate", "/portal/partner/subscriptions/sub-woodgrove/cancel"} {
		assert.Equal(t, http.StatusOK, alice.do(http.MethodGet, path, nil).Code, path)
	}
	bob := s.browser()
	bob.signIn("bob@fabrikam.test")
	assert.Equal(t, http.StatusConflict, bob.do(http.MethodGet, "/portal/partner/subscriptions/sub-woodgrove/cancel", nil).Code,
		"a sales agent is told it may not cancel")
	customers := alice.do(http.MethodGet, "/portal/partner/customers", nil).Body.String()
	assert.Contains(t, customers, "Woodgrove Bank")
	assert.NotContains(t, customers, "Tailspin")
	detail := alice.do(http.MethodGet, "/portal/partner/subscriptions/sub-woodgrove", nil).Body.String()
	assert.Contains(t, detail, "token=ac_", "the agent sees the publisher link with its authorization code")
}

func TestARemovedContactsSessionEnds(t *testing.T) {
	s := newSite(t)
	ctx := context.Background()
	ann := s.browser()
	ann.signIn("ann@woodgrove.test")
	ref := store.CustomerRef{PartnerID: "fabrikam", CustomerID: "woodgrove"}
	contacts, err := s.st.Contacts(ctx, ref)
	require.NoError(t, err)
	bea, err := s.st.AddContact(ctx, store.ContactActor{CustomerRef: ref, ContactID: contacts[0].ID}, "bea@woodgrove.test", []string{"billing"})
	require.NoError(t, err)
	b := s.browser()
	b.signIn("bea@woodgrove.test")
	assert.Equal(t, http.StatusOK, b.do(http.MethodGet, "/portal/contacts", nil).Code)
	require.NoError(t, s.st.RemoveContact(ctx, store.ContactActor{CustomerRef: ref, ContactID: contacts[0].ID}, bea.ID))
	assert.Equal(t, http.StatusSeeOther, b.do(http.MethodGet, "/portal/contacts", nil).Code, "sent back to sign in")
}

func TestListsPageThroughEverySubscription(t *testing.T) {
	s := newSite(t)
	const total = 57 // more than a page of 50
	for i := range total {
		pending(t, s.st, "fabrikam", "woodgrove", fmt.Sprintf("sub-page-%02d", i))
	}
	ids := regexp.MustCompile(`/subscriptions/(sub-page-\d\d)"`)
	next := regexp.MustCompile(`href="\?tab=upcoming&amp;before=(\d+)" id="next-page"`)
	for _, who := range []struct{ address, path string }{
		{"ann@woodgrove.test", "/portal/subscriptions?tab=upcoming"},
		{"alice@fabrikam.test", "/portal/partner/customers/woodgrove?tab=upcoming"},
	} {
		b := s.browser()
		b.signIn(who.address)
		seen := map[string]bool{}
		path, pages := who.path, 0
		for path != "" {
			w := b.do(http.MethodGet, path, nil)
			require.Equal(t, http.StatusOK, w.Code)
			body := w.Body.String()
			pages++
			for _, m := range ids.FindAllStringSubmatch(body, -1) {
				assert.False(t, seen[m[1]], "%s appears on one page only", m[1])
				seen[m[1]] = true
			}
			if pages > 1 {
				assert.Contains(t, body, `id="first-page"`, "a later page links back to the newest")
			}
			path = ""
			if m := next.FindStringSubmatch(body); m != nil {
				path = who.path + "&before=" + m[1]
			}
		}
		assert.Equal(t, 2, pages, who.address)
		assert.Len(t, seen, total, "%s sees every subscription once across the pages", who.address)
	}
	w := s.browser()
	w.signIn("ann@woodgrove.test")
	assert.Equal(t, http.StatusOK, w.do(http.MethodGet, "/portal/subscriptions?tab=upcoming&before=nonsense", nil).Code,
		"a broken page link shows the newest page")
}

func TestSubscriptionPagesShowAPendingPlanChangeAndTheBillingFrequency(t *testing.T) {
	s := newSite(t)
	now := time.Now().UTC().Truncate(time.Microsecond)
	start, end, window := now.Add(-time.Hour), now.Add(24*time.Hour), now.Add(-time.Minute)
	monthly := "P1M"
	sub := domain.Subscription{ID: "sub-changing", PartnerID: "fabrikam", CustomerID: "woodgrove", PublisherID: "contoso",
		OfferID: "analytics", PlanID: "annual", Quantity: 3, AutoRenew: true, LinkedSubscriptionIDs: []string{},
		EntitlementNumber: domain.EntitlementNumber("sub-changing"), Status: domain.StatusActive, TermNumber: 1,
		TermStart: &start, TermEnd: &end, CancellationWindowEndsAt: &window, BillingStartedAt: &start,
		BillingFrequency: "P1Y", PendingBillingFrequency: &monthly,
		PendingPlanChange: &domain.PlanChange{PlanID: "premium", FromPlanID: "annual", Kind: domain.PlanChangeUpgrade,
			Effective: domain.PlanChangeNow, Stage: domain.PlanChangeAwaitingPublisher, RequestedAt: now, VetoEndsAt: now.Add(time.Hour)},
		ActivationDeadline: now.Add(time.Hour), CreatedAt: now, UpdatedAt: now, Version: 1}
	_, err := s.st.SaveChange(context.Background(), domain.Change{Subscription: sub}, nil)
	require.NoError(t, err)
	for _, who := range []struct{ address, path string }{
		{"ann@woodgrove.test", "/portal/subscriptions/sub-changing"},
		{"alice@fabrikam.test", "/portal/partner/subscriptions/sub-changing"},
	} {
		b := s.browser()
		b.signIn(who.address)
		page := b.do(http.MethodGet, who.path, nil).Body.String()
		assert.Contains(t, page, "upgrade to plan premium, the publisher may refuse it until", who.address)
		assert.Contains(t, page, "P1Y (every P1M from the next term)", who.address)
	}
}

// The subscription page offers the quantity range the workflow enforces (the
// bounds of the plan it carries, in the snapshot), not the catalog's plan row,
// which an operator may have narrowed since the purchase.
func TestSubscriptionPageOffersTheCarriedQuantityBounds(t *testing.T) {
	s := newSite(t)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Microsecond)
	start, end := now.Add(-time.Hour), now.Add(24*time.Hour)
	lo, hi := 1, 100
	sub := domain.Subscription{ID: "sub-bounds", PartnerID: "fabrikam", CustomerID: "woodgrove", PublisherID: "contoso",
		OfferID: "analytics", PlanID: "annual", Quantity: 3, AutoRenew: true, LinkedSubscriptionIDs: []string{},
		EntitlementNumber: domain.EntitlementNumber("sub-bounds"), Status: domain.StatusActive, TermNumber: 1,
		TermStart: &start, TermEnd: &end, CancellationWindowEndsAt: &end, BillingStartedAt: &start, BillingFrequency: "P1Y",
		MinQuantity: &lo, MaxQuantity: &hi, ActivationDeadline: now.Add(time.Hour), CreatedAt: now, UpdatedAt: now, Version: 1}
	_, err := s.st.SaveChange(ctx, domain.Change{Subscription: sub}, nil)
	require.NoError(t, err)
	plan, err := s.st.Plan(ctx, "analytics", "annual")
	require.NoError(t, err)
	plan.MinQuantity, plan.MaxQuantity = 5, 10 // the operator narrows the catalog's plan after the purchase
	require.NoError(t, s.st.UpsertPlan(ctx, plan))

	b := s.browser()
	b.signIn("alice@fabrikam.test")
	page := b.do(http.MethodGet, "/portal/partner/subscriptions/sub-bounds", nil).Body.String()
	assert.Contains(t, page, "Users (1–100)")
	assert.Contains(t, page, `min="1" max="100"`)
	assert.NotContains(t, page, "Users (5–10)")
}
