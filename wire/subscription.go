// Package wire renders the HTTP contract's JSON objects (API.md), shared by
// the API's answers and the notifications sent to publishers.
package wire

import (
	"net/url"
	"time"

	"github.com/partnerhub/fulfillment/domain"
)

// Subscription is the contract's Subscription object: every field always
// present, null where it does not apply.
type Subscription struct {
	ID                       string         `json:"id"`
	Status                   domain.Status  `json:"status"`
	Tab                      string         `json:"tab"`
	PartnerID                string         `json:"partner_id"`
	CustomerID               string         `json:"customer_id"`
	PublisherID              string         `json:"publisher_id"`
	OfferID                  string         `json:"offer_id"`
	PlanID                   string         `json:"plan_id"`
	Quantity                 int            `json:"quantity"`
	Nickname                 *string        `json:"nickname"`
	AutoRenew                bool           `json:"auto_renew"`
	ResellerPartnerID        *string        `json:"reseller_partner_id"`
	ParentSubscriptionID     *string        `json:"parent_subscription_id"`
	LinkedSubscriptionIDs    []string       `json:"linked_subscription_ids"`
	EntitlementNumber        string         `json:"entitlement_number"`
	SiteURL                  *string        `json:"site_url"`
	LicensesAssigned         int            `json:"licenses_assigned"`
	FulfillmentConfirmed     bool           `json:"fulfillment_confirmed"`
	PublisherLink            *PublisherLink `json:"publisher_link"`
	ActivationDeadline       time.Time      `json:"activation_deadline"`
	BillingStartedAt         *time.Time     `json:"billing_started_at"`
	TermNumber               int            `json:"term_number"`
	TermStart                *time.Time     `json:"term_start"`
	TermEnd                  *time.Time     `json:"term_end"`
	NextBillDate             *time.Time     `json:"next_bill_date"`
	DaysUntilRenewal         *int           `json:"days_until_renewal"`
	CancellationWindowEndsAt *time.Time     `json:"cancellation_window_ends_at"`
	// BillingFrequency is how often the current term is charged (ISO 8601).
	BillingFrequency string `json:"billing_frequency"`
	// PendingBillingFrequency applies from the next term; null when none.
	PendingBillingFrequency *string   `json:"pending_billing_frequency"`
	CreatedAt               time.Time `json:"created_at"`
	UpdatedAt               time.Time `json:"updated_at"`
	Version                 int64     `json:"version"`
	// Site is where the subscription is set up (an app: its parent's site).
	Site *Site `json:"site"`
	// BillingAccountID is the customer's billing account its charges land on.
	BillingAccountID *string `json:"billing_account_id"`
	// ActionRequired says what the subscription waits for, null when nothing.
	ActionRequired *ActionRequired `json:"action_required"`
	// PendingPlanChange is a plan change asked for and not yet in effect, null when none.
	PendingPlanChange *PlanChange `json:"pending_plan_change"`
}

// PlanChange is a pending plan change as the contract shows it.
type PlanChange struct {
	PlanID     string `json:"plan_id"`
	FromPlanID string `json:"from_plan_id"`
	// Kind is upgrade or downgrade (by the term price at the current quantity).
	Kind string `json:"kind"`
	// Effective is now (when the veto window ends) or renewal (a downgrade
	// asked after the cancellation window: at the next renewal).
	Effective string `json:"effective"`
	// Stage is awaiting_publisher (it may still refuse, until VetoEndsAt) or
	// scheduled (not refused; waiting for the renewal).
	Stage       string    `json:"stage"`
	RequestedAt time.Time `json:"requested_at"`
	VetoEndsAt  time.Time `json:"veto_ends_at"`
}

func newPlanChange(pc *domain.PlanChange) *PlanChange {
	if pc == nil {
		return nil
	}
	return &PlanChange{
		PlanID: pc.PlanID, FromPlanID: pc.FromPlanID, Kind: pc.Kind, Effective: pc.Effective, Stage: pc.Stage,
		RequestedAt: pc.RequestedAt.UTC(), VetoEndsAt: pc.VetoEndsAt.UTC(),
	}
}

// PublisherLink takes the customer to the publisher's landing page.
type PublisherLink struct {
	URL               string    `json:"url"`
	AuthorizationCode string    `json:"authorization_code"`
	ExpiresAt         time.Time `json:"expires_at"`
}

// NewPublisherLink appends the code to the landing URL as the token parameter.
func NewPublisherLink(landingURL, code string, expiresAt time.Time) *PublisherLink {
	link := landingURL
	if u, err := url.Parse(landingURL); err == nil {
		q := u.Query()
		q.Set("token", code)
		u.RawQuery = q.Encode()
		link = u.String()
	}
	return &PublisherLink{URL: link, AuthorizationCode: code, ExpiresAt: expiresAt.UTC()}
}

// NewSubscription renders s as seen at now. link is shown only while the
// subscription waits for fulfillment; pass nil for viewers who may not see it.
func NewSubscription(s domain.Subscription, now time.Time, link *PublisherLink) Subscription {
	if s.Status != domain.StatusPendingFulfillment {
		link = nil
	}
	linked := s.LinkedSubscriptionIDs
	if linked == nil {
		linked = []string{}
	}
	return Subscription{
		ID: s.ID, Status: s.Status, Tab: s.Status.Tab(), PartnerID: s.PartnerID, CustomerID: s.CustomerID,
		PublisherID: s.PublisherID, OfferID: s.OfferID, PlanID: s.PlanID, Quantity: s.Quantity,
		Nickname: s.Nickname, AutoRenew: s.AutoRenew, ResellerPartnerID: s.ResellerPartnerID,
		ParentSubscriptionID: s.ParentSubscriptionID, LinkedSubscriptionIDs: linked,
		EntitlementNumber: s.EntitlementNumber, SiteURL: s.SiteURL, LicensesAssigned: s.LicensesAssigned,
		FulfillmentConfirmed: s.FulfillmentConfirmed, PublisherLink: link,
		ActivationDeadline: s.ActivationDeadline.UTC(), BillingStartedAt: utc(s.BillingStartedAt),
		TermNumber: s.TermNumber, TermStart: utc(s.TermStart), TermEnd: utc(s.TermEnd),
		NextBillDate: utc(s.NextBillDate()), DaysUntilRenewal: s.DaysUntilRenewal(now),
		CancellationWindowEndsAt: utc(s.CancellationWindowEndsAt),
		BillingFrequency:         s.BillingFrequency, PendingBillingFrequency: s.PendingBillingFrequency,
		CreatedAt: s.CreatedAt.UTC(), UpdatedAt: s.UpdatedAt.UTC(), Version: s.Version,
		ActionRequired: NewActionRequired(s), PendingPlanChange: newPlanChange(s.PendingPlanChange),
	}
}

func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// Notification is the body POSTed to a publisher's webhook_url.
type Notification struct {
	Type         string       `json:"type"`
	ID           string       `json:"id"`
	OccurredAt   time.Time    `json:"occurred_at"`
	Subscription Subscription `json:"subscription"`
	// Data is what the notification says beside the subscription (a plan
	// change's from_plan_id and plan_id), absent for most types.
	Data map[string]any `json:"data,omitempty"`
}

// Event is one entry of a subscription's timeline as the contract shows it.
type Event struct {
	At     time.Time      `json:"at"`
	Type   string         `json:"type"`
	Actor  string         `json:"actor"`
	Detail map[string]any `json:"detail"`
}

// Events renders a timeline; a missing detail is {}.
func Events(events []domain.Event) []Event {
	out := make([]Event, 0, len(events))
	for _, e := range events {
		detail := e.Detail
		if detail == nil {
			detail = map[string]any{}
		}
		out = append(out, Event{At: e.At, Type: e.Type, Actor: e.Actor, Detail: detail})
	}
	return out
}

// LedgerEntry is one billing line as the contract shows it.
type LedgerEntry struct {
	ID          string    `json:"id"`
	TermNumber  int       `json:"term_number"`
	Kind        string    `json:"kind"`
	AmountMinor int64     `json:"amount_minor"`
	Currency    string    `json:"currency"`
	PeriodStart time.Time `json:"period_start"`
	PeriodEnd   time.Time `json:"period_end"`
	CreatedAt   time.Time `json:"created_at"`
}

// UpcomingCharge is a charge still to come (GET /v1/subscriptions/{id}/billing).
type UpcomingCharge struct {
	TermNumber  int       `json:"term_number"`
	Period      int       `json:"period"`
	PeriodStart time.Time `json:"period_start"`
	PeriodEnd   time.Time `json:"period_end"`
	AmountMinor int64     `json:"amount_minor"`
	Currency    string    `json:"currency"`
}

// UpcomingCharges renders the charges to come, [] when none.
func UpcomingCharges(charges []domain.UpcomingCharge) []UpcomingCharge {
	out := make([]UpcomingCharge, 0, len(charges))
	for _, c := range charges {
		out = append(out, UpcomingCharge(c))
	}
	return out
}

// Ledger renders billing lines.
func Ledger(entries []domain.LedgerEntry) []LedgerEntry {
	out := make([]LedgerEntry, 0, len(entries))
	for _, l := range entries {
		out = append(out, LedgerEntry{ID: l.ID, TermNumber: l.TermNumber, Kind: l.Kind, AmountMinor: l.AmountMinor,
			Currency: l.Currency, PeriodStart: l.PeriodStart, PeriodEnd: l.PeriodEnd, CreatedAt: l.CreatedAt})
	}
	return out
}
