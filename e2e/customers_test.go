package e2e

import (
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/partnerhub/fulfillment/store"
	"github.com/partnerhub/fulfillment/testenv"
)

// mailWorld is a stack whose worker sends customer emails to its own Mailpit.
func mailWorld(t *testing.T) (*world, *testenv.Mailpit) {
	mp := testenv.StartMailpit(t)
	w := newWorld(t, testenv.StackOptions{Env: []string{"SMTP_URL=" + mp.SMTPURL(), "SMTP_FROM=Subscriptions <no-reply@fulfillment.test>"}})
	return w, mp
}

// waitMail waits for a message to to whose subject starts with prefix and reads it.
func waitMail(t *testing.T, mp *testenv.Mailpit, to, prefix string) testenv.Mail {
	t.Helper()
	var found testenv.MailSummary
	mp.WaitMessages(t, 30*time.Second, "an email to "+to+": "+prefix, func(ms []testenv.MailSummary) bool {
		for _, m := range ms {
			if len(m.To) == 1 && m.To[0].Address == to && strings.HasPrefix(m.Subject, prefix) {
				found = m
				return true
			}
		}
		return false
	})
	return mp.Message(t, found.ID)
}

// A purchase naming the customer's contact welcomes that contact and tells
// it of the order, with the set-up link; the subscription shows where it
// stands (action required, billing account, later its site).
func TestPurchaseEmailsTheCustomerContact(t *testing.T) {
	t.Parallel()
	w, mp := mailWorld(t)
	p := w.admin.Purchase(map[string]any{"customer_id": "woodgrove", "offer_id": "analytics", "plan_id": "annual",
		"quantity": 5, "nickname": "Finance", "customer_contact_email": "ann@woodgrove.example"})
	require.Equal(t, http.StatusCreated, p.Status, p.String())
	action, _ := p.Body["action_required"].(map[string]any)
	require.NotNil(t, action, p.String())
	assert.Equal(t, "setup_required", action["code"])
	assert.Contains(t, action, "setup_instructions", "null when the offer has none")
	assert.Nil(t, p.Body["site"])
	assert.NotEmpty(t, p.Body["billing_account_id"], "bought on the customer's default billing account")

	welcome := waitMail(t, mp, "ann@woodgrove.example", "Welcome")
	assert.Contains(t, welcome.Text, "primary contact of Woodgrove Bank")
	order := waitMail(t, mp, "ann@woodgrove.example", "New order for Woodgrove Bank")
	link := p.Body["publisher_link"].(map[string]any)["url"].(string)
	assert.Contains(t, order.Text, "Set it up here: "+link)
	assert.Contains(t, order.HTML, "Set up now")
	assert.Contains(t, order.Text, "Fabrikam has placed an order")
	assert.NotEqual(t, welcome.MessageID, order.MessageID)

	contacts := w.admin.Do(http.MethodGet, "/v1/customers/woodgrove/contacts", nil)
	require.Equal(t, http.StatusOK, contacts.Status, contacts.String())
	items := contacts.Body["items"].([]any)
	require.Len(t, items, 1)
	ann := items[0].(map[string]any)
	assert.Equal(t, "ann@woodgrove.example", ann["email"])
	assert.Equal(t, true, ann["primary"])
	assert.Equal(t, http.StatusNotFound, w.other.Do(http.MethodGet, "/v1/customers/woodgrove/contacts", nil).Status)

	// Another partner-named contact is refused: only the customer's contacts add contacts.
	r := w.admin.Purchase(map[string]any{"customer_id": "woodgrove", "offer_id": "analytics", "plan_id": "annual",
		"quantity": 1, "customer_contact_email": "eve@woodgrove.example"})
	assert.Equal(t, http.StatusUnprocessableEntity, r.Status, r.String())

	done := w.fulfill(t, p, 3)
	assert.Nil(t, done.Body["action_required"])
	got := w.admin.Do(http.MethodGet, "/v1/subscriptions/"+p.Str("id"), nil)
	site, _ := got.Body["site"].(map[string]any)
	require.NotNil(t, site, got.String())
	assert.Equal(t, "https://woodgrove.contoso.example", site["url"])
	assert.Nil(t, got.Body["action_required"])

	// No second welcome or order email, however often the worker polled.
	var toAnn int
	for _, m := range mp.Messages(t) {
		if m.To[0].Address == "ann@woodgrove.example" && !strings.HasPrefix(m.Subject, "Contoso Analytics renews") {
			toAnn++
		}
	}
	assert.Equal(t, 2, toAnn)
}

// Sites and billing accounts are created under an Idempotency-Key and listed
// with cursors; a move to another billing account emails the contacts; a
// deactivation emails them the linked subscriptions that ended with it.
func TestSitesBillingAccountsTransferAndDeactivationEmail(t *testing.T) {
	t.Parallel()
	w, mp := mailWorld(t)
	parent := w.admin.Purchase(map[string]any{"customer_id": "woodgrove", "offer_id": "analytics", "plan_id": "annual",
		"quantity": 2, "customer_contact_email": "ann@woodgrove.example"})
	require.Equal(t, http.StatusCreated, parent.Status, parent.String())
	app := w.admin.Purchase(map[string]any{"customer_id": "woodgrove", "offer_id": "insights-app", "plan_id": "monthly",
		"quantity": 1, "parent_subscription_id": parent.Str("id"), "nickname": "Insights"})
	require.Equal(t, http.StatusCreated, app.Status, app.String())

	// Sites.
	path := "/v1/customers/woodgrove/sites"
	r := w.admin.Do(http.MethodPost, path, map[string]any{"url": "https://hq.woodgrove.example"})
	assert.Equal(t, http.StatusBadRequest, r.Status)
	assert.Equal(t, "idempotency_key_required", r.Str("code"))
	key := uuid.NewString()
	first := w.admin.Do(http.MethodPost, path, map[string]any{"name": "HQ", "url": "https://hq.woodgrove.example"}, "Idempotency-Key", key)
	require.Equal(t, http.StatusCreated, first.Status, first.String())
	again := w.admin.Do(http.MethodPost, path, map[string]any{"name": "HQ", "url": "https://hq.woodgrove.example"}, "Idempotency-Key", key)
	require.Equal(t, http.StatusCreated, again.Status, again.String())
	assert.Equal(t, first.Str("id"), again.Str("id"))
	assert.Equal(t, "true", again.Header.Get("Idempotent-Replayed"))
	r = w.admin.Do(http.MethodPost, path, map[string]any{"name": "Other", "url": "https://x.woodgrove.example"}, "Idempotency-Key", key)
	assert.Equal(t, http.StatusUnprocessableEntity, r.Status)
	assert.Equal(t, "idempotency_key_reused", r.Str("code"))
	r = w.admin.Do(http.MethodPost, path, map[string]any{"url": "https://hq.woodgrove.example"}, "Idempotency-Key", uuid.NewString())
	assert.Equal(t, http.StatusConflict, r.Status)
	second := w.admin.Do(http.MethodPost, path, map[string]any{"url": "https://lab.woodgrove.example"}, "Idempotency-Key", uuid.NewString())
	require.Equal(t, http.StatusCreated, second.Status)
	page := w.admin.Do(http.MethodGet, path+"?limit=1", nil)
	require.Equal(t, http.StatusOK, page.Status)
	require.Len(t, page.Body["items"], 1)
	assert.Equal(t, second.Str("id"), page.Body["items"].([]any)[0].(map[string]any)["id"], "newest first")
	next := page.Body["next_cursor"].(string)
	page = w.admin.Do(http.MethodGet, path+"?limit=1&cursor="+next, nil)
	assert.Equal(t, first.Str("id"), page.Body["items"].([]any)[0].(map[string]any)["id"])
	assert.Nil(t, page.Body["next_cursor"])
	for _, denied := range []testenv.Response{
		w.other.Do(http.MethodGet, path, nil),
		w.other.Do(http.MethodPost, path, map[string]any{"url": "https://x.example"}, "Idempotency-Key", uuid.NewString()),
		w.other.Do(http.MethodGet, "/v1/customers/woodgrove/billing-accounts", nil),
	} {
		assert.Equal(t, http.StatusNotFound, denied.Status, denied.String())
	}

	// Billing accounts and a move.
	accounts := w.admin.Do(http.MethodGet, "/v1/customers/woodgrove/billing-accounts", nil)
	require.Len(t, accounts.Body["items"], 1, "the default account of the first purchase")
	europe := w.admin.Do(http.MethodPost, "/v1/customers/woodgrove/billing-accounts", map[string]any{"name": "Europe"},
		"Idempotency-Key", uuid.NewString())
	require.Equal(t, http.StatusCreated, europe.Status, europe.String())
	assert.Equal(t, false, europe.Body["default"])
	transfer := "/v1/subscriptions/" + parent.Str("id") + "/transfer"
	assert.Equal(t, http.StatusForbidden, w.sales.Do(http.MethodPost, transfer, map[string]any{"billing_account_id": europe.Str("id")}).Status)
	assert.Equal(t, http.StatusNotFound, w.other.Do(http.MethodPost, transfer, map[string]any{"billing_account_id": europe.Str("id")}).Status)
	r = w.admin.Do(http.MethodPost, transfer, map[string]any{"billing_account_id": "ba_nope"})
	assert.Equal(t, http.StatusUnprocessableEntity, r.Status, r.String())
	moved := w.admin.Do(http.MethodPost, transfer, map[string]any{"billing_account_id": europe.Str("id")})
	require.Equal(t, http.StatusOK, moved.Status, moved.String())
	assert.Equal(t, europe.Str("id"), moved.Body["billing_account_id"])
	state := w.workflowState(t, parent.Str("id")) // the move is the workflow's (transfer_billing_account)
	require.NotNil(t, state.BillingAccountID, "the workflow knows the account")
	assert.Equal(t, europe.Str("id"), *state.BillingAccountID)
	same := w.admin.Do(http.MethodPost, transfer, map[string]any{"billing_account_id": europe.Str("id")})
	require.Equal(t, http.StatusOK, same.Status, "moving it to the account it is on changes nothing: %s", same.String())
	assert.Equal(t, moved.Body["version"], same.Body["version"])
	mail := waitMail(t, mp, "ann@woodgrove.example", "Contoso Analytics moved to billing account Europe")
	assert.Contains(t, mail.Text, `from billing account "Default" to "Europe"`)

	// Deactivating the parent: one email, listing the app that ends with it.
	set := w.fulfill(t, parent, 2)
	assert.Equal(t, europe.Str("id"), set.Body["billing_account_id"], "later transitions keep the account the workflow carries")
	d := w.admin.Do(http.MethodPost, "/v1/subscriptions/"+parent.Str("id")+"/deactivate", nil)
	require.Equal(t, http.StatusOK, d.Status, d.String())
	ended := waitMail(t, mp, "ann@woodgrove.example", "Contoso Analytics has been deactivated")
	assert.Contains(t, ended.Text, `Insights (app) "Insights" (`+app.Str("id")+`)`)
	w.waitStatus(t, app.Str("id"), "deactivated", 30*time.Second)
	var endedMails int
	for _, m := range mp.Messages(t) {
		if strings.Contains(m.Subject, "deactivated") {
			endedMails++
		}
	}
	assert.Equal(t, 1, endedMails, "the app's cascade sends no email of its own")
}

// An operator (never a partner) reassigns the primary contact from the
// command line; the change is audited and on the customer's timeline.
func TestOperatorSetsPrimaryContactFromTheCommandLine(t *testing.T) {
	t.Parallel()
	w := newWorld(t, testenvOpts())
	p := w.admin.Purchase(map[string]any{"customer_id": "woodgrove", "offer_id": "analytics", "plan_id": "annual",
		"quantity": 1, "customer_contact_email": "ann@woodgrove.example"})
	require.Equal(t, http.StatusCreated, p.Status, p.String())
	ref := store.CustomerRef{PartnerID: "fabrikam", CustomerID: "woodgrove"}
	list, err := w.Store.Contacts(t.Context(), ref)
	require.NoError(t, err)
	require.Len(t, list, 1)
	_, err = w.Store.AddContact(t.Context(), store.ContactActor{CustomerRef: ref, ContactID: list[0].ID}, "ben@woodgrove.example", []string{"technical"})
	require.NoError(t, err)

	run := func(args ...string) (string, error) {
		cmd := exec.Command(testenv.Binary(t), append([]string{"contacts", "set-primary"}, args...)...)
		cmd.Env = append(os.Environ(), "DATABASE_URL="+w.DBURL, "SECRET_KEY="+testenv.SecretKey())
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := run("--partner", "fabrikam", "--customer", "woodgrove", "--email", "nobody@woodgrove.example", "--operator", "olga")
	assert.Error(t, err, out)
	out, err = run("--partner", "fabrikam", "--customer", "woodgrove", "--email", "ben@woodgrove.example",
		"--operator", "olga", "--reason", "ann left")
	require.NoError(t, err, out)
	assert.Contains(t, out, "ben@woodgrove.example")
	assert.Contains(t, out, `"msg":"audit"`)

	contacts := w.admin.Do(http.MethodGet, "/v1/customers/woodgrove/contacts", nil)
	first := contacts.Body["items"].([]any)[0].(map[string]any)
	assert.Equal(t, "ben@woodgrove.example", first["email"])
	assert.Equal(t, true, first["primary"])
	var audited int
	require.NoError(t, w.Store.DB().Get(&audited, `SELECT count(*) FROM audit_log WHERE actor = 'operator:olga' AND action = 'contacts.set_primary'`))
	assert.Equal(t, 1, audited)
	events, err := w.Store.CustomerEvents(t.Context(), ref)
	require.NoError(t, err)
	last := events[len(events)-1]
	assert.Equal(t, "primary_contact_changed", last.Type)
	assert.Equal(t, "operator:olga", last.Actor)
	assert.Contains(t, w.Logs(), "SMTP_URL not set: emails to customer contacts are queued but not sent")
}
