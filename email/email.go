// Package email renders the emails sent to customer contacts (one template
// per kind, plain text and HTML) and sends them over SMTP.
package email

import (
	"bytes"
	"embed"
	"fmt"
	htmltemplate "html/template"
	"strings"
	texttemplate "text/template"
	"time"
)

// Kinds of email, one template set each under templates/<kind>.{subject,txt,html}.
const (
	KindWelcome               = "welcome"
	KindOrderPlaced           = "order_placed"
	KindBillingAccountChanged = "billing_account_changed"
	KindRenewalReminder       = "renewal_reminder"
	KindSubscriptionEnded     = "subscription_ended"
	KindPaymentFailed         = "payment_failed"
	// KindSignIn carries a one-time link into the portal.
	KindSignIn = "sign_in"
)

// Kinds lists every kind.
var Kinds = []string{KindWelcome, KindOrderPlaced, KindBillingAccountChanged, KindRenewalReminder, KindSubscriptionEnded,
	KindPaymentFailed, KindSignIn}

// Data is what a template may show. It is stored with the outbox row when
// the email is queued, so a retry describes the moment that caused it;
// SetupURL and PortalURL are filled at send time (the set-up link carries an
// authorization code, which is never stored).
type Data struct {
	Recipient         string               `json:"recipient"`
	CustomerName      string               `json:"customer_name"`
	PartnerName       string               `json:"partner_name"`
	Primary           bool                 `json:"primary,omitempty"`
	Roles             []string             `json:"roles,omitempty"`
	SubscriptionID    string               `json:"subscription_id,omitempty"`
	OfferName         string               `json:"offer_name,omitempty"`
	PlanName          string               `json:"plan_name,omitempty"`
	Nickname          string               `json:"nickname,omitempty"`
	Quantity          int                  `json:"quantity,omitempty"`
	EntitlementNumber string               `json:"entitlement_number,omitempty"`
	Status            string               `json:"status,omitempty"`
	NeedsSetup        bool                 `json:"needs_setup,omitempty"`
	TermNumber        int                  `json:"term_number,omitempty"`
	TermEnd           *time.Time           `json:"term_end,omitempty"`
	AutoRenew         bool                 `json:"auto_renew,omitempty"`
	FromAccount       string               `json:"from_account,omitempty"`
	ToAccount         string               `json:"to_account,omitempty"`
	Linked            []LinkedSubscription `json:"linked,omitempty"`
	// SignInLinkID names a portal sign-in link; its token (in SignInURL) is
	// derived at send time and never stored.
	SignInLinkID  string `json:"sign_in_link_id,omitempty"`
	SignInMinutes int    `json:"sign_in_minutes,omitempty"`
	Agent         bool   `json:"agent,omitempty"` // the recipient is a partner agent
	SignInURL     string `json:"-"`
	SetupURL      string `json:"-"`
	PortalURL     string `json:"-"`
}

// LinkedSubscription is a subscription that ended with its parent.
type LinkedSubscription struct {
	ID        string `json:"id"`
	OfferName string `json:"offer_name"`
	Nickname  string `json:"nickname,omitempty"`
}

// Message is a rendered email.
type Message struct {
	// ID is the outbox id; the Message-ID header is derived from it.
	ID      string
	To      string
	Subject string
	Text    string
	HTML    string
}

//go:embed templates/*
var files embed.FS

var funcs = map[string]any{
	"date": func(t *time.Time) string {
		if t == nil {
			return ""
		}
		return t.UTC().Format("2 January 2006, 15:04 MST")
	},
	"join": strings.Join,
}

var (
	subjects = texttemplate.Must(texttemplate.New("").Funcs(funcs).ParseFS(files, "templates/*.subject"))
	texts    = texttemplate.Must(texttemplate.New("").Funcs(funcs).ParseFS(files, "templates/*.txt"))
	htmls    = htmltemplate.Must(htmltemplate.New("").Funcs(funcs).ParseFS(files, "templates/*.html"))
)

// Render builds the message of one kind for d.
func Render(kind, id string, d Data) (Message, error) {
	m := Message{ID: id, To: d.Recipient}
	var b bytes.Buffer
	if err := subjects.ExecuteTemplate(&b, kind+".subject", d); err != nil {
		return m, fmt.Errorf("render %s subject: %w", kind, err)
	}
	m.Subject = strings.TrimSpace(b.String())
	b.Reset()
	if err := texts.ExecuteTemplate(&b, kind+".txt", d); err != nil {
		return m, fmt.Errorf("render %s text: %w", kind, err)
	}
	m.Text = b.String()
	b.Reset()
	if err := htmls.ExecuteTemplate(&b, kind+".html", d); err != nil {
		return m, fmt.Errorf("render %s html: %w", kind, err)
	}
	m.HTML = b.String()
	return m, nil
}

// SignInURL is the portal page a one-time sign-in link opens (PORTAL_URL is
// the portal's root, e.g. https://subscriptions.example.com/portal).
func SignInURL(portalURL, token string) string {
	return strings.TrimSuffix(portalURL, "/") + "/sign-in/" + token
}
