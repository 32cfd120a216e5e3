// Package domain holds the subscription fulfillment vocabulary shared by the
// workflow, the activities, the store and the API.
package domain

import (
	"crypto/sha256"
	"database/sql/driver"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/sosodev/duration"
)

// Status is a subscription's lifecycle status.
type Status string

const (
	StatusPendingFulfillment Status = "pending_fulfillment"
	StatusActive             Status = "active"
	StatusCancelled          Status = "cancelled"
	StatusDeactivated        Status = "deactivated"
	StatusExpired            Status = "expired"
	StatusFulfillmentExpired Status = "fulfillment_expired"
	// StatusSuspended: a payment failed; nothing renews until it is paid.
	StatusSuspended Status = "suspended"
	// StatusUnsubscribed: suspended past the payment grace period (terminal).
	StatusUnsubscribed Status = "unsubscribed"
)

// Terminal reports whether no further transition can leave s.
func (s Status) Terminal() bool {
	switch s {
	case StatusCancelled, StatusDeactivated, StatusExpired, StatusFulfillmentExpired, StatusUnsubscribed:
		return true
	}
	return false
}

// Tab is the list tab a status belongs to.
func (s Status) Tab() string {
	switch s {
	case StatusPendingFulfillment:
		return TabUpcoming
	case StatusActive, StatusSuspended:
		return TabActive
	}
	return TabInactive
}

// List tabs of GET /v1/subscriptions.
const (
	TabUpcoming = "upcoming"
	TabActive   = "active"
	TabInactive = "inactive"
)

// TabStatuses lists the statuses shown under a tab.
func TabStatuses(tab string) []Status {
	switch tab {
	case TabUpcoming:
		return []Status{StatusPendingFulfillment}
	case TabActive:
		return []Status{StatusActive, StatusSuspended}
	case TabInactive:
		return []Status{StatusCancelled, StatusDeactivated, StatusExpired, StatusFulfillmentExpired, StatusUnsubscribed}
	}
	return nil
}

// Role of a partner agent.
type Role string

const (
	RoleAdminAgent Role = "admin_agent"
	RoleSalesAgent Role = "sales_agent"
)

// Offer kinds.
const (
	OfferKindSaaS = "saas"
	OfferKindApp  = "app"
)

// Plan is the commercial terms a subscription is bought on. Durations are ISO 8601.
type Plan struct {
	ID                 string `json:"id" db:"id"`
	OfferID            string `json:"offer_id" db:"offer_id"`
	Name               string `json:"name" db:"name"`
	Term               string `json:"term" db:"term"`
	UnitPriceMinor     int64  `json:"unit_price_minor" db:"unit_price_minor"`
	Currency           string `json:"currency" db:"currency"`
	MinQuantity        int    `json:"min_quantity" db:"min_quantity"`
	MaxQuantity        int    `json:"max_quantity" db:"max_quantity"`
	CancellationWindow string `json:"cancellation_window" db:"cancellation_window"`
	ActivationDeadline string `json:"activation_deadline" db:"activation_deadline"`
	// PaymentGracePeriod is how long a subscription suspended for non-payment
	// waits for the payment (default P30D).
	PaymentGracePeriod string `json:"payment_grace_period,omitempty" db:"payment_grace_period"`
	// BillingFrequency is how often a term is charged, an ISO 8601 period the
	// term is a whole number of (see PeriodsPerTerm); empty: once per term.
	BillingFrequency string `json:"billing_frequency,omitempty" db:"billing_frequency"`
	// BillingFrequencies are the frequencies a purchase may choose besides
	// BillingFrequency (empty: only that one).
	BillingFrequencies []string `json:"billing_frequencies,omitempty" db:"-"`
	// PlanChangeVetoWindow is how long the publisher may refuse a plan change
	// away from this plan (default PT1H).
	PlanChangeVetoWindow string `json:"plan_change_veto_window,omitempty" db:"plan_change_veto_window"`
}

// DefaultPlanChangeVetoWindow applies when a plan names none.
const DefaultPlanChangeVetoWindow = "PT1H"

// VetoWindow is the plan's plan-change veto window, or the default.
func (p Plan) VetoWindow() string {
	if p.PlanChangeVetoWindow == "" {
		return DefaultPlanChangeVetoWindow
	}
	return p.PlanChangeVetoWindow
}

// TermPriceMinor is what one term of the plan costs at a quantity.
func (p Plan) TermPriceMinor(quantity int) int64 { return p.UnitPriceMinor * int64(quantity) }

// DefaultPaymentGracePeriod applies when a plan names none.
const DefaultPaymentGracePeriod = "P30D"

// GracePeriod is the plan's payment grace period, or the default.
func (p Plan) GracePeriod() string {
	if p.PaymentGracePeriod == "" {
		return DefaultPaymentGracePeriod
	}
	return p.PaymentGracePeriod
}

// Validate checks the plan's bounds and durations.
func (p Plan) Validate() error {
	if p.MinQuantity < 1 || p.MaxQuantity < p.MinQuantity {
		return fmt.Errorf("plan %s: quantity bounds %d..%d", p.ID, p.MinQuantity, p.MaxQuantity)
	}
	if p.UnitPriceMinor < 0 || len(p.Currency) != 3 {
		return fmt.Errorf("plan %s: price %d %q", p.ID, p.UnitPriceMinor, p.Currency)
	}
	for _, d := range []string{p.Term, p.CancellationWindow, p.ActivationDeadline, p.GracePeriod(), p.VetoWindow()} {
		if _, err := ParsePeriod(d); err != nil {
			return fmt.Errorf("plan %s: %w", p.ID, err)
		}
	}
	return p.validateFrequencies()
}

// Period is a parsed ISO 8601 duration, added to times calendar-wise (P1M from
// Jan 31 follows time.AddDate).
type Period struct{ d *duration.Duration }

// ParsePeriod parses an ISO 8601 duration such as P1Y, P7D or PT30S.
func ParsePeriod(s string) (Period, error) {
	d, err := duration.Parse(s)
	if err != nil {
		return Period{}, fmt.Errorf("duration %q: %w", s, err)
	}
	if d.Negative {
		return Period{}, fmt.Errorf("duration %q: negative", s)
	}
	p := Period{d: d}
	if !p.AddTo(time.Unix(0, 0)).After(time.Unix(0, 0)) {
		return Period{}, fmt.Errorf("duration %q: must be positive", s)
	}
	return p, nil
}

// AddTo returns t shifted by the period.
func (p Period) AddTo(t time.Time) time.Time {
	d := p.d
	t = t.AddDate(int(d.Years), int(d.Months), int(d.Weeks*7+d.Days))
	secs := d.Hours*3600 + d.Minutes*60 + d.Seconds
	return t.Add(time.Duration(secs * float64(time.Second)))
}

// MustAdd adds an ISO 8601 duration that was validated when the plan was stored.
func MustAdd(t time.Time, iso string) time.Time {
	p, err := ParsePeriod(iso)
	if err != nil {
		panic(err)
	}
	return p.AddTo(t)
}

// Subscription is the public state of one subscription: the workflow owns it,
// the read model mirrors it. It never holds a secret.
type Subscription struct {
	ID                       string     `json:"id" db:"id"`
	PartnerID                string     `json:"partner_id" db:"partner_id"`
	CustomerID               string     `json:"customer_id" db:"customer_id"`
	PublisherID              string     `json:"publisher_id" db:"publisher_id"`
	OfferID                  string     `json:"offer_id" db:"offer_id"`
	PlanID                   string     `json:"plan_id" db:"plan_id"`
	Quantity                 int        `json:"quantity" db:"quantity"`
	Nickname                 *string    `json:"nickname" db:"nickname"`
	AutoRenew                bool       `json:"auto_renew" db:"auto_renew"`
	ResellerPartnerID        *string    `json:"reseller_partner_id" db:"reseller_partner_id"`
	ParentSubscriptionID     *string    `json:"parent_subscription_id" db:"parent_subscription_id"`
	LinkedSubscriptionIDs    []string   `json:"linked_subscription_ids" db:"-"`
	EntitlementNumber        string     `json:"entitlement_number" db:"entitlement_number"`
	SiteURL                  *string    `json:"site_url" db:"site_url"`
	LicensesAssigned         int        `json:"licenses_assigned" db:"licenses_assigned"`
	FulfillmentConfirmed     bool       `json:"fulfillment_confirmed" db:"fulfillment_confirmed"`
	Status                   Status     `json:"status" db:"status"`
	TermNumber               int        `json:"term_number" db:"term_number"`
	ActivationDeadline       time.Time  `json:"activation_deadline" db:"activation_deadline"`
	BillingStartedAt         *time.Time `json:"billing_started_at" db:"billing_started_at"`
	TermStart                *time.Time `json:"term_start" db:"term_start"`
	TermEnd                  *time.Time `json:"term_end" db:"term_end"`
	CancellationWindowEndsAt *time.Time `json:"cancellation_window_ends_at" db:"cancellation_window_ends_at"`
	// BillingFrequency is how often the current term is charged (ISO 8601;
	// empty in subscriptions bought before billing periods: once per term).
	BillingFrequency string `json:"billing_frequency,omitempty" db:"billing_frequency"`
	// PendingBillingFrequency takes effect at the next renewal.
	PendingBillingFrequency *string `json:"pending_billing_frequency,omitempty" db:"pending_billing_frequency"`
	// PeriodsBilled counts the current term's periods charged so far (see BilledPeriods).
	PeriodsBilled int       `json:"periods_billed,omitempty" db:"periods_billed"`
	CreatedAt     time.Time `json:"created_at" db:"created_at"`
	UpdatedAt     time.Time `json:"updated_at" db:"updated_at"`
	// Version grows with every saved change; the read model keeps the highest.
	Version int64 `json:"version" db:"version"`
	// BillingAccountID is the customer's billing account later charges land
	// on; SiteID the customer's site chosen for set-up. Nil in a workflow that
	// has not learned them (the read model keeps what it has).
	BillingAccountID *string `json:"billing_account_id,omitempty" db:"billing_account_id"`
	SiteID           *string `json:"site_id,omitempty" db:"site_id"`
	// PendingPlanChange is a plan change requested and not yet in effect.
	PendingPlanChange *PlanChange `json:"pending_plan_change" db:"pending_plan_change"`
	// UnitPriceMinor and Currency are the price of the plan the workflow
	// carries (State.Plan: taken at purchase, replaced only by a plan change
	// that took effect), which is what it charges. The workflow sets them on
	// every snapshot it saves; nil in rows saved before they existed, where
	// the catalog's plan stands in (see PricedPlan).
	UnitPriceMinor *int64  `json:"unit_price_minor,omitempty" db:"unit_price_minor"`
	Currency       *string `json:"currency,omitempty" db:"currency"`
	// PlanTerm is the term (ISO 8601) of the plan the workflow carries, which
	// its terms and billing periods follow; set and nil like the price.
	PlanTerm *string `json:"plan_term,omitempty" db:"plan_term"`
	// MinQuantity and MaxQuantity are the quantity bounds of the plan the
	// workflow carries, which a quantity change must stay within; set and nil
	// like the price.
	MinQuantity *int `json:"min_quantity,omitempty" db:"min_quantity"`
	MaxQuantity *int `json:"max_quantity,omitempty" db:"max_quantity"`
}

// PricedPlan is the catalog's plan of the subscription with the price and
// term the subscription is charged at and the quantity bounds it keeps to:
// the ones its workflow carries when the read model knows them, else the
// catalog's own (a row saved before they were recorded). The catalog's plan
// may have changed since purchase; the workflow keeps charging what, and
// over the term, it was bought at, and refuses quantities outside the bounds
// it carries.
func (s Subscription) PricedPlan(catalog Plan) Plan {
	if s.UnitPriceMinor != nil && s.Currency != nil {
		catalog.UnitPriceMinor, catalog.Currency = *s.UnitPriceMinor, *s.Currency
	}
	if s.PlanTerm != nil {
		catalog.Term = *s.PlanTerm
	}
	if s.MinQuantity != nil && s.MaxQuantity != nil {
		catalog.MinQuantity, catalog.MaxQuantity = *s.MinQuantity, *s.MaxQuantity
	}
	return catalog
}

// Plan change kinds and when a change takes effect.
const (
	PlanChangeUpgrade   = "upgrade"
	PlanChangeDowngrade = "downgrade"

	PlanChangeNow     = "now"
	PlanChangeRenewal = "renewal"

	// PlanChangeAwaitingPublisher: the publisher may still refuse it (until
	// VetoEndsAt); PlanChangeScheduled: not refused, waiting for the renewal.
	PlanChangeAwaitingPublisher = "awaiting_publisher"
	PlanChangeScheduled         = "scheduled"
)

// PlanChange is a change of plan within the offer, pending while the
// publisher may refuse it and, for a downgrade at renewal, until the renewal.
type PlanChange struct {
	PlanID      string    `json:"plan_id"`
	FromPlanID  string    `json:"from_plan_id"`
	Kind        string    `json:"kind"`
	Effective   string    `json:"effective"`
	Stage       string    `json:"stage"`
	RequestedAt time.Time `json:"requested_at"`
	VetoEndsAt  time.Time `json:"veto_ends_at"`
	// UnitPriceMinor is the target plan's price as the workflow carries it
	// (what the term after the change is charged); nil in changes recorded
	// before it was kept. Not part of the contract's view of the change.
	UnitPriceMinor *int64 `json:"unit_price_minor,omitempty"`
}

// Value stores a plan change as JSON text (a nil *PlanChange is NULL). Text,
// not []byte: the store's connection sends []byte parameters in binary
// format, which jsonb would read as its own binary encoding.
func (p PlanChange) Value() (driver.Value, error) {
	raw, err := json.Marshal(p)
	return string(raw), err
}

// Scan reads a plan change stored as JSON.
func (p *PlanChange) Scan(src any) error {
	switch v := src.(type) {
	case []byte:
		return json.Unmarshal(v, p)
	case string:
		return json.Unmarshal([]byte(v), p)
	}
	return fmt.Errorf("plan change: cannot scan %T", src)
}

// InCancellationWindow reports whether a cancel or quantity decrease at now is
// still allowed: always before billing starts, and strictly before the window
// end once it has (a cancel in the very instant the window closes is refused).
func (s Subscription) InCancellationWindow(now time.Time) bool {
	if s.CancellationWindowEndsAt == nil {
		return true
	}
	return now.Before(*s.CancellationWindowEndsAt)
}

// NextBillDate is the date of the next charge of an active subscription:
// the start of the current term's next billing period, else its renewal.
func (s Subscription) NextBillDate() *time.Time {
	if s.Status != StatusActive {
		return nil
	}
	if next, ok := s.nextPeriodStart(); ok {
		return &next
	}
	return s.renewalDate()
}

// renewalDate is the term end, if the subscription renews.
func (s Subscription) renewalDate() *time.Time {
	if s.Status != StatusActive || !s.AutoRenew || s.TermEnd == nil {
		return nil
	}
	return s.TermEnd
}

// DaysUntilRenewal counts whole days, rounded up, until the renewal.
func (s Subscription) DaysUntilRenewal(now time.Time) *int {
	next := s.renewalDate()
	if next == nil {
		return nil
	}
	left := next.Sub(now)
	if left < 0 {
		left = 0
	}
	days := int((left + 24*time.Hour - 1) / (24 * time.Hour))
	return &days
}

// EntitlementNumber is the stable, human-quotable number of a subscription.
func EntitlementNumber(subscriptionID string) string {
	sum := sha256.Sum256([]byte("entitlement:" + subscriptionID))
	return "ENT-" + strings.ToUpper(hex.EncodeToString(sum[:6]))
}

// Event is one entry of a subscription's timeline.
type Event struct {
	ID             int64          `json:"-" db:"id"`
	SubscriptionID string         `json:"subscription_id" db:"subscription_id"`
	Key            string         `json:"key" db:"dedup_key"`
	At             time.Time      `json:"at" db:"at"`
	Type           string         `json:"type" db:"type"`
	Actor          string         `json:"actor" db:"actor"`
	Detail         map[string]any `json:"detail" db:"-"`
}

// Timeline event types. A terminal transition's event type is its status
// (cancelled, deactivated, expired, fulfillment_expired).
const (
	EventPurchased            = "purchased"
	EventLinkIssued           = "link_issued"
	EventLinkResolved         = "link_resolved"
	EventLicensesAssigned     = "licenses_assigned"
	EventFulfillmentConfirmed = "fulfillment_confirmed"
	EventBillingStarted       = "billing_started"
	EventQuantityChanged      = "quantity_changed"
	EventNicknameChanged      = "nickname_changed"
	EventAutoRenewChanged     = "auto_renew_changed"
	EventResellerChanged      = "reseller_changed"
	EventRenewed              = "renewed"
	EventSubscriptionLinked   = "subscription_linked"
	EventSuspended            = "suspended"
	EventReinstated           = "reinstated"
	EventPlanChangeRequested  = "plan_change_requested"
	EventPlanChangeRefused    = "plan_change_refused"
	EventPlanChangeScheduled  = "plan_change_scheduled"
	EventPlanChangeWithdrawn  = "plan_change_withdrawn"
	EventPlanChanged          = "plan_changed"
	// EventBillingAccountChanged: moved to another billing account of its
	// customer, detail {from_billing_account_id, to_billing_account_id}.
	EventBillingAccountChanged = "billing_account_changed"
	// EventSiteChosen: a contact chose the site to set it up on, detail {site_id, url}.
	EventSiteChosen = "site_chosen"
	// EventPeriodCharged: a billing period after the first of a term was charged.
	EventPeriodCharged = "period_charged"
	// EventBillingFrequencyChanged: a PATCH changed the billing frequency (or
	// the one pending for the next term).
	EventBillingFrequencyChanged = "billing_frequency_changed"
)

// Ledger entry kinds.
const (
	LedgerCharge    = "charge"
	LedgerRefund    = "refund"
	LedgerProration = "proration"
)

// LedgerEntry is one billing line. Refunds carry a negative amount, so the
// balance is the plain sum.
type LedgerEntry struct {
	ID             string    `json:"id" db:"id"`
	SubscriptionID string    `json:"subscription_id" db:"subscription_id"`
	TermNumber     int       `json:"term_number" db:"term_number"`
	Kind           string    `json:"kind" db:"kind"`
	AmountMinor    int64     `json:"amount_minor" db:"amount_minor"`
	Currency       string    `json:"currency" db:"currency"`
	PeriodStart    time.Time `json:"period_start" db:"period_start"`
	PeriodEnd      time.Time `json:"period_end" db:"period_end"`
	CreatedAt      time.Time `json:"created_at" db:"created_at"`
}

// Notification types sent to publishers.
const (
	NotifyPurchased          = "subscription.purchased"
	NotifyActivated          = "subscription.activated"
	NotifyQuantityChanged    = "subscription.quantity_changed"
	NotifyRenewed            = "subscription.renewed"
	NotifyCancelled          = "subscription.cancelled"
	NotifyDeactivated        = "subscription.deactivated"
	NotifyExpired            = "subscription.expired"
	NotifyFulfillmentExpired = "subscription.fulfillment_expired"
	NotifySuspended          = "subscription.suspended"
	NotifyReinstated         = "subscription.reinstated"
	NotifyUnsubscribed       = "subscription.unsubscribed"
	// NotifyPlanChangeRequested asks the publisher to refuse within the veto
	// window if it must; NotifyPlanChanged tells it the new plan is in effect.
	NotifyPlanChangeRequested = "subscription.plan_change_requested"
	NotifyPlanChanged         = "subscription.plan_changed"
	// NotifyPlanChangeWithdrawn: the partner withdrew the change it asked for.
	NotifyPlanChangeWithdrawn = "subscription.plan_change_withdrawn"
)

// Notification is an event queued for the publisher; ID is its stable webhook-id.
type Notification struct {
	ID         string    `json:"id"`
	Type       string    `json:"type"`
	OccurredAt time.Time `json:"occurred_at"`
	// Data is what the notification says beside the subscription's snapshot
	// (a plan change's from and to plans), nil for most types.
	Data map[string]any `json:"data,omitempty"`
}

// Change is one transition, persisted atomically and idempotently by an
// activity: the new snapshot plus whatever it adds to timeline, ledger and
// publisher outbox. Every added row carries a deterministic key.
type Change struct {
	Subscription  Subscription   `json:"subscription"`
	Events        []Event        `json:"events,omitempty"`
	Ledger        []LedgerEntry  `json:"ledger,omitempty"`
	Notifications []Notification `json:"notifications,omitempty"`
	// IssueLinkUntil, when set, stores the authorization code's hash valid until then.
	IssueLinkUntil *time.Time `json:"issue_link_until,omitempty"`
}

// SaveResult reports what the store saw while saving a change.
type SaveResult struct {
	// ParentStatus is the parent's status in the read model, if there is a parent.
	ParentStatus Status `json:"parent_status,omitempty"`
	// BillingAccountID is the account a purchase was placed on (the
	// customer's default), for the workflow to carry.
	BillingAccountID *string `json:"billing_account_id,omitempty"`
}
