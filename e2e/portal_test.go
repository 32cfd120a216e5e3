package e2e

// The portal driven in a real headless Chromium (Debian's chromium, through
// chromedp) against the real binary, its worker and a Mailpit: people sign in
// from the link they were emailed and click through the pages. Each flow
// saves screenshots under .tmp/screenshots/<test>/ (git-ignored).

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/partnerhub/fulfillment/testenv"
)

const chromiumPath = "/usr/bin/chromium"

// portalWorld is a stack whose emails (sign-in links among them) go to its own Mailpit.
func portalWorld(t *testing.T) (*world, *testenv.Mailpit) {
	mp := testenv.StartMailpit(t)
	s := testenv.StartStack(t, testenv.StackOptions{Seed: seed(""), Idle: true, Env: []string{
		"SMTP_URL=" + mp.SMTPURL(), "SMTP_FROM=Subscriptions <no-reply@fulfillment.test>", "PORTAL_SECURE_COOKIES=false"}})
	s.Env = append(s.Env, "PORTAL_URL="+s.BaseURL+"/portal")
	s.StartWorker()
	s.StartAPI()
	return &world{
		Stack: s, admin: s.Partner(AdminKey), sales: s.Partner(SalesKey), other: s.Partner(OtherAdminKey),
		contoso: s.Publisher("contoso", ContosoSecret), litware: s.Publisher("litware", LitwareSecret),
	}, mp
}

// tab is one headless Chromium with a fresh profile, closed when the test ends.
type tab struct {
	t    *testing.T
	ctx  context.Context
	base string
	shot int
	dir  string
}

func newTab(t *testing.T, base string) *tab {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("chromium missing at %s (make test installs it: apt-get install -y chromium): %v", chromiumPath, err)
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromiumPath), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-default-browser-check", true), chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1100, 900))
	ctx, cancelCtx := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancelCtx(); cancelAlloc() })
	// The first run starts the browser: no timeout on it (it would stop the browser).
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate("about:blank")))
	dir := filepath.Join(testenv.RepoRoot(), ".tmp", "screenshots", t.Name())
	require.NoError(t, os.MkdirAll(dir, 0o755))
	return &tab{t: t, ctx: ctx, base: base, dir: dir}
}

// do runs steps, each wait bounded.
func (b *tab) do(steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 45*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.screenshot("failure")
		b.t.Fatalf("browser: %v (at %s)", err, b.location())
	}
}

func (b *tab) location() string {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	return loc
}

func run[T any](b *tab, a chromedp.Action[T]) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 45*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		b.t.Fatalf("browser: %v (at %s)", err, b.location())
	}
	return v
}

func (b *tab) text(id string) string {
	b.t.Helper()
	return run(b, chromedp.Text(chromedp.ID(id)))
}

func (b *tab) screenshot(name string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return
	}
	b.shot++
	path := filepath.Join(b.dir, fmt.Sprintf("%02d-%s.png", b.shot, name))
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
	}
}

// shows waits until the element with id shows text (a page reached by a
// redirect may carry an element of the same id as the page before it).
func shows(id, text string) chromedp.Action[chromedp.Void] {
	return chromedp.WaitVisible(chromedp.Search(fmt.Sprintf(`//*[@id='%s'][contains(., '%s')]`, id, text)))
}

var signInLink = regexp.MustCompile(`https?://\S+/portal/sign-in/[A-Za-z0-9_-]+`)

// signIn asks for a link on the sign-in page, reads it from the email in
// Mailpit, opens it and signs in.
func (b *tab) signIn(mp *testenv.Mailpit, address, subject string) {
	b.t.Helper()
	b.do(chromedp.Navigate(b.base+"/portal/sign-in"), chromedp.WaitVisible(chromedp.ID("email")),
		chromedp.SendKeys(chromedp.ID("email"), address), chromedp.Click(chromedp.ID("send-link")),
		chromedp.WaitVisible(chromedp.ID("sent")))
	mail := waitMail(b.t, mp, address, subject)
	link := signInLink.FindString(mail.Text)
	require.NotEmpty(b.t, link, mail.Text)
	b.do(chromedp.Navigate(link), chromedp.WaitVisible(chromedp.ID("confirm-sign-in")),
		chromedp.Click(chromedp.ID("confirm-sign-in")), chromedp.WaitVisible(chromedp.ID("sign-out")))
}

func buyFor(t *testing.T, w *world, body map[string]any) testenv.Response {
	t.Helper()
	body["customer_id"] = "woodgrove"
	r := w.admin.Purchase(body)
	require.Equal(t, http.StatusCreated, r.Status, r.String())
	return r
}

// A customer contact signs in from the emailed link, sets a subscription up
// on a new site, adds a contact, hands the primary role over, and deactivates
// a parent with two linked apps.
func TestPortalCustomerContactFlow(t *testing.T) {
	t.Parallel()
	w, mp := portalWorld(t)
	parent := buyFor(t, w, map[string]any{"offer_id": "analytics", "plan_id": "annual", "quantity": 5,
		"nickname": "Finance analytics", "customer_contact_email": "ann@woodgrove.test"})
	pid := parent.Str("id")
	for _, name := range []string{"Insights for finance", "Insights for audit"} {
		buyFor(t, w, map[string]any{"offer_id": "insights-app", "plan_id": "monthly", "quantity": 2, "nickname": name,
			"parent_subscription_id": pid})
	}
	b := newTab(t, w.BaseURL)

	b.signIn(mp, "ann@woodgrove.test", "Your sign-in link")
	b.do(chromedp.WaitVisible(chromedp.ID("tab-upcoming")))
	b.screenshot("signed-in")
	b.do(chromedp.Click(chromedp.ID("tab-upcoming")), chromedp.WaitVisible(chromedp.CSS(`a[href="/portal/subscriptions/`+pid+`"]`)))
	list := b.text("subscriptions")
	assert.Contains(t, list, "Finance analytics")
	assert.Contains(t, list, "Insights for finance", "the row shows its linked subscriptions")
	assert.Contains(t, list, "Fabrikam", "and the partner")
	b.screenshot("subscriptions-upcoming")

	// Set-up on a new site, then on to the publisher with the authorization code.
	b.do(chromedp.Click(chromedp.CSS(`a[href="/portal/subscriptions/`+pid+`"]`)), chromedp.WaitVisible(chromedp.ID("begin-setup")))
	assert.Contains(t, b.text("facts"), parent.Str("entitlement_number"))
	b.screenshot("details-setup-needed")
	b.do(chromedp.Click(chromedp.ID("begin-setup")), chromedp.WaitVisible(chromedp.ID("choose-site")),
		chromedp.Click(chromedp.ID("site-new")), chromedp.SendKeys(chromedp.ID("new-url"), "https://finance.woodgrove.test"),
		chromedp.SendKeys(chromedp.ID("new-name"), "Finance"))
	b.screenshot("choose-site")
	b.do(chromedp.Click(chromedp.ID("choose-site")), chromedp.WaitVisible(chromedp.ID("publisher-link")))
	href := run(b, chromedp.AttributeValue(chromedp.ID("publisher-link"), "href")).Value
	assert.Equal(t, parent.Body["publisher_link"].(map[string]any)["url"], href, "the publisher link as the API gives it")
	assert.Contains(t, b.text("site-url"), "https://finance.woodgrove.test")
	b.screenshot("site-chosen")
	sub := w.admin.Do(http.MethodGet, "/v1/subscriptions/"+pid, nil)
	require.NotNil(t, sub.Body["site"], sub.String())
	assert.Equal(t, "https://finance.woodgrove.test", sub.Body["site"].(map[string]any)["url"])
	state := w.workflowState(t, pid) // the choice is the workflow's (choose_site), not a write behind its back
	require.NotNil(t, state.SiteID, "the workflow knows the chosen site")
	assert.Equal(t, sub.Body["site"].(map[string]any)["id"], *state.SiteID)
	assert.Contains(t, trustEvents(t, w.admin, pid), "site_chosen")

	// Key contacts: add one, then hand the primary role to it.
	b.do(chromedp.Navigate(w.BaseURL+"/portal/contacts"), chromedp.WaitVisible(chromedp.ID("manage")))
	assert.Contains(t, b.text("billing-partner"), "Fabrikam")
	b.screenshot("key-contacts")
	b.do(chromedp.Click(chromedp.ID("manage")), chromedp.WaitVisible(chromedp.ID("add-email")),
		chromedp.SendKeys(chromedp.ID("add-email"), "bea@woodgrove.test"), chromedp.Click(chromedp.ID("add-billing")),
		chromedp.Click(chromedp.ID("add")), shows("notice", "added"))
	waitMail(t, mp, "bea@woodgrove.test", "Welcome")
	b.screenshot("contact-added")
	b.do(chromedp.Click(chromedp.CSS(`button[data-handover="bea@woodgrove.test"]`)), shows("notice", "handed over"))
	b.screenshot("primary-handed-over")
	contacts := w.admin.Do(http.MethodGet, "/v1/customers/woodgrove/contacts", nil)
	require.Equal(t, http.StatusOK, contacts.Status, contacts.String())
	primary := contacts.Body["items"].([]any)[0].(map[string]any)
	assert.Equal(t, "bea@woodgrove.test", primary["email"])
	assert.Equal(t, true, primary["primary"])

	// Deactivate the parent: the confirmation names both apps.
	b.do(chromedp.Navigate(w.BaseURL+"/portal/subscriptions/"+pid), chromedp.WaitVisible(chromedp.ID("deactivate")),
		chromedp.Click(chromedp.ID("deactivate")), chromedp.WaitVisible(chromedp.ID("confirm-deactivate")))
	ending := b.text("ending")
	assert.Contains(t, ending, "Insights for finance")
	assert.Contains(t, ending, "Insights for audit")
	assert.Contains(t, run(b, chromedp.Text(chromedp.CSS("main"))), "cannot be undone")
	b.screenshot("deactivate-confirm")
	b.do(chromedp.Click(chromedp.ID("confirm-deactivate")), shows("notice", "deactivated"))
	assert.Contains(t, b.text("status"), "deactivated")
	b.screenshot("deactivated")
	apps := w.waitStatus(t, pid, "deactivated", 30*time.Second).Body["linked_subscription_ids"].([]any)
	require.Len(t, apps, 2)
	for _, id := range apps {
		w.waitStatus(t, id.(string), "deactivated", 30*time.Second)
	}
	events := w.admin.Do(http.MethodGet, "/v1/subscriptions/"+pid+"/events", nil).Raw
	assert.Contains(t, string(events), `"actor":"contact:`, "the timeline names the contact who deactivated")

	// On a phone the list stacks each row into labelled lines.
	b.do(chromedp.EmulateViewport(390, 844), chromedp.Navigate(w.BaseURL+"/portal/subscriptions?tab=inactive"),
		chromedp.WaitVisible(chromedp.CSS(`a[href="/portal/subscriptions/`+pid+`"]`)))
	b.screenshot("phone-inactive")
}

// A sales agent buys from the portal and is refused a quantity change: the
// button is disabled with its reason, and a forged POST is refused too.
func TestPortalSalesAgentBuysButCannotChangeQuantity(t *testing.T) {
	t.Parallel()
	w, mp := portalWorld(t)
	b := newTab(t, w.BaseURL)
	b.signIn(mp, "bob@fabrikam.test", "Your sign-in link")
	b.do(chromedp.WaitVisible(chromedp.ID("customers")))
	b.screenshot("customers")

	b.do(chromedp.Navigate(w.BaseURL+"/portal/partner/buy?customer=woodgrove"), chromedp.WaitVisible(chromedp.ID("place-order")),
		chromedp.SetValue(chromedp.ID("plan"), "analytics/annual"), chromedp.SetValue(chromedp.ID("quantity"), "4"),
		chromedp.SendKeys(chromedp.ID("nickname"), "Bob's order"), chromedp.SendKeys(chromedp.ID("reseller"), "R-42"),
		chromedp.SendKeys(chromedp.ID("contact"), "carl@woodgrove.test"))
	b.screenshot("buy-form")
	b.do(chromedp.Click(chromedp.ID("place-order")), shows("notice", "bought"))
	assert.Contains(t, b.text("action-required"), "Set up needed")
	assert.Contains(t, run(b, chromedp.AttributeValue(chromedp.ID("publisher-link"), "href")).Value, "token=ac_")
	id := b.location()[strings.LastIndex(b.location(), "/")+1:]
	id, _, _ = strings.Cut(id, "?")
	sub := w.admin.Do(http.MethodGet, "/v1/subscriptions/"+id, nil)
	require.Equal(t, http.StatusOK, sub.Status, sub.String())
	assert.Equal(t, float64(4), sub.Body["quantity"])
	assert.Equal(t, "Bob's order", sub.Body["nickname"])
	assert.Equal(t, "R-42", sub.Body["reseller_partner_id"])
	waitMail(t, mp, "carl@woodgrove.test", "Welcome")

	disabled := run(b, chromedp.AttributeValue(chromedp.ID("change-quantity"), "disabled"))
	assert.True(t, disabled.Exists, "the quantity button is disabled for a sales agent")
	assert.Contains(t, b.text("quantity-reason"), "Sales agents may not")
	assert.True(t, run(b, chromedp.AttributeValue(chromedp.ID("cancel"), "disabled")).Exists)
	assert.True(t, run(b, chromedp.AttributeValue(chromedp.ID("deactivate"), "disabled")).Exists)
	assert.True(t, run(b, chromedp.AttributeValue(chromedp.ID("transfer"), "disabled")).Exists, "moving billing accounts is for admins")
	b.screenshot("quantity-disabled")

	// The nickname is the sales agent's to change.
	b.do(chromedp.SetValue(chromedp.ID("nickname"), "Bob's renamed order"), chromedp.Click(chromedp.ID("change-nickname")),
		shows("notice", "changed"))

	// A forged POST (the disabled form re-enabled and sent) is refused by the API's role rule.
	_, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](`(() => {
		const q = document.getElementById('quantity'); q.disabled = false; q.value = '9';
		document.getElementById('quantity-form').submit(); return true })()`))
	require.NoError(t, err)
	b.do(shows("error", "may not change quantity"))
	b.screenshot("forged-post-refused")
	sub = w.admin.Do(http.MethodGet, "/v1/subscriptions/"+id, nil)
	assert.Equal(t, float64(4), sub.Body["quantity"], "nothing changed")
	assert.Equal(t, "Bob's renamed order", sub.Body["nickname"])
	events := w.admin.Do(http.MethodGet, "/v1/subscriptions/"+id+"/events", nil).Raw
	assert.Contains(t, string(events), "action_refused", "the refusal is on the timeline")
}

// An admin agent cancels inside the window, seeing the refund before confirming.
func TestPortalAdminCancelsInsideTheWindow(t *testing.T) {
	t.Parallel()
	w, mp := portalWorld(t)
	p := buyFor(t, w, map[string]any{"offer_id": "analytics", "plan_id": "annual", "quantity": 3, "nickname": "Trial team",
		"customer_contact_email": "ann@woodgrove.test"})
	id := p.Str("id")
	w.fulfill(t, p, 3)
	w.waitStatus(t, id, "active", 30*time.Second)

	b := newTab(t, w.BaseURL)
	b.signIn(mp, "alice@fabrikam.test", "Your sign-in link")
	b.do(chromedp.Navigate(w.BaseURL+"/portal/partner/customers/woodgrove"), chromedp.WaitVisible(chromedp.CSS(`a[href="/portal/partner/subscriptions/`+id+`"]`)))
	b.screenshot("customer-active")
	b.do(chromedp.Click(chromedp.CSS(`a[href="/portal/partner/subscriptions/`+id+`"]`)), chromedp.WaitVisible(chromedp.ID("timeline")))
	assert.Contains(t, b.text("billing"), "USD 36.00")
	assert.Contains(t, b.text("timeline"), "billing started")
	b.screenshot("details-active")

	// Moving the subscription to another billing account: later charges go there, contacts are told.
	europe := w.admin.Do(http.MethodPost, "/v1/customers/woodgrove/billing-accounts", map[string]any{"name": "Europe"},
		"Idempotency-Key", uuid.NewString())
	require.Equal(t, http.StatusCreated, europe.Status, europe.String())
	b.do(chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("billing-account")),
		chromedp.SetValue(chromedp.ID("billing-account"), europe.Str("id")))
	b.screenshot("billing-account")
	b.do(chromedp.Click(chromedp.ID("transfer")), shows("notice", "moved to the billing account"))
	moved := w.admin.Do(http.MethodGet, "/v1/subscriptions/"+id, nil)
	assert.Equal(t, europe.Str("id"), moved.Body["billing_account_id"], moved.String())
	waitMail(t, mp, "ann@woodgrove.test", "Contoso Analytics moved to billing account Europe")
	assert.Contains(t, b.text("timeline"), "billing account changed")
	b.do(chromedp.Click(chromedp.ID("cancel")), chromedp.WaitVisible(chromedp.ID("refund")))
	assert.Contains(t, b.text("refund"), "USD 36.00", "the refund is shown before confirming")
	b.screenshot("cancel-confirm")
	b.do(chromedp.Click(chromedp.ID("confirm-cancel")), shows("notice", "cancelled"))
	assert.Contains(t, b.text("status"), "cancelled")
	assert.Contains(t, b.text("billing"), "refund")
	b.screenshot("cancelled")
	w.waitStatus(t, id, "cancelled", 30*time.Second)
	assert.Equal(t, 1, w.ledgerRows(t, id, "refund"))
}
