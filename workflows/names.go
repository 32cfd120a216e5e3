package workflows

import (
	"time"

	"github.com/partnerhub/fulfillment/domain"
)

// TaskQueue is the default task queue subscription workflows and activities
// run on (TEMPORAL_TASK_QUEUE overrides it, e.g. to isolate test stacks that
// share one server).
const TaskQueue = "subscription-fulfillment"

// Message names of the subscription workflow.
const (
	UpdatePurchase           = "purchase"
	UpdateAssignLicenses     = "assign_licenses"
	UpdateConfirmFulfillment = "confirm_fulfillment"
	UpdateChange             = "change"
	UpdateCancel             = "cancel"
	UpdateDeactivate         = "deactivate"
	UpdateLink               = "link"
	UpdatePaymentFailed      = "payment_failed"
	UpdatePaymentReceived    = "payment_received"
	UpdateChangePlan         = "change_plan"
	UpdateRefusePlanChange   = "refuse_plan_change"
	UpdateAcceptPlanChange   = "accept_plan_change"
	UpdateWithdrawPlanChange = "withdraw_plan_change"
	UpdateTransferBilling    = "transfer_billing_account"
	UpdateChooseSite         = "choose_site"
	SignalParentEnded        = "parent_ended"
	SignalParentActivated    = "parent_activated"
	QueryState               = "state"
)

// Search attributes ops filter on in the Temporal UI (all Keyword).
const (
	SearchPartnerID          = "PartnerId"
	SearchCustomerID         = "CustomerId"
	SearchOfferID            = "OfferId"
	SearchSubscriptionStatus = "SubscriptionStatus"
)

// SearchAttributeNames lists the search attributes the server must know.
var SearchAttributeNames = []string{SearchPartnerID, SearchCustomerID, SearchOfferID, SearchSubscriptionStatus}

// Problem codes carried as ApplicationError types out of validators and handlers.
const (
	ErrInvalidState             = "invalid_state"
	ErrCancellationWindowClosed = "cancellation_window_closed"
	ErrValidationFailed         = "validation_failed"
)

// WorkflowID is the id of the workflow that owns a subscription.
func WorkflowID(subscriptionID string) string { return "subscription/" + subscriptionID }

// Actor names who sent a message, as it appears in the timeline.
type Actor struct {
	Kind string `json:"kind"` // "agent", "publisher", "system"
	ID   string `json:"id"`
}

func (a Actor) String() string {
	if a.ID == "" {
		return a.Kind
	}
	return a.Kind + ":" + a.ID
}

// SystemActor is the workflow itself (timers, cascades).
var SystemActor = Actor{Kind: "system"}

// LicensesRequest is the publisher's licenses callback.
type LicensesRequest struct {
	MessageID string `json:"message_id"`
	Actor     Actor  `json:"actor"`
	Assigned  int    `json:"assigned"`
}

// FulfillmentRequest is the publisher's activate callback.
type FulfillmentRequest struct {
	MessageID string  `json:"message_id"`
	Actor     Actor   `json:"actor"`
	SiteURL   *string `json:"site_url"`
}

// ChangeRequest is a PATCH. A nil field is left alone; ClearReseller removes the reseller id.
type ChangeRequest struct {
	MessageID         string  `json:"message_id"`
	Actor             Actor   `json:"actor"`
	Nickname          *string `json:"nickname,omitempty"`
	Quantity          *int    `json:"quantity,omitempty"`
	AutoRenew         *bool   `json:"auto_renew,omitempty"`
	ResellerPartnerID *string `json:"reseller_partner_id,omitempty"`
	ClearReseller     bool    `json:"clear_reseller,omitempty"`
	ClearNickname     bool    `json:"clear_nickname,omitempty"`
	// BillingFrequency changes the billing frequency from the next term.
	BillingFrequency *string `json:"billing_frequency,omitempty"`
}

// EndRequest is a cancel or deactivate.
type EndRequest struct {
	MessageID string `json:"message_id"`
	Actor     Actor  `json:"actor"`
}

// ParentActivated tells a linked subscription its parent started billing.
type ParentActivated struct {
	ParentID string `json:"parent_id"`
}

// PaymentRequest reports a failed or a received payment (from the partner's
// billing system, signed, or through an operator).
type PaymentRequest struct {
	MessageID string `json:"message_id"`
	Actor     Actor  `json:"actor"`
	Reason    string `json:"reason,omitempty"`
	// OccurredAt is when the billing system saw the payment fail or arrive.
	OccurredAt *time.Time `json:"occurred_at,omitempty"`
}

// TransferRequest moves a subscription to another billing account of its
// customer (the API checked the account is the customer's). From is the
// account the read model shows, for a workflow that has not learned its own.
type TransferRequest struct {
	MessageID        string  `json:"message_id"`
	Actor            Actor   `json:"actor"`
	BillingAccountID string  `json:"billing_account_id"`
	From             *string `json:"from,omitempty"`
}

// ChooseSiteRequest records the customer's site chosen for set-up (the
// caller checked the site is the customer's).
type ChooseSiteRequest struct {
	MessageID string `json:"message_id"`
	Actor     Actor  `json:"actor"`
	SiteID    string `json:"site_id"`
	SiteURL   string `json:"site_url"`
}

// PlanChangeRequest asks for a change to another plan of the same offer; the
// API reads Plan from the catalog.
type PlanChangeRequest struct {
	MessageID string      `json:"message_id"`
	Actor     Actor       `json:"actor"`
	Plan      domain.Plan `json:"plan"`
}

// PlanChangeAnswer is the publisher's refusal (with its reason) or early
// acceptance of the pending plan change, or the partner's withdrawal of it.
type PlanChangeAnswer struct {
	MessageID string `json:"message_id"`
	Actor     Actor  `json:"actor"`
	Reason    string `json:"reason,omitempty"`
}

// LinkRequest asks a parent to accept a linked subscription.
type LinkRequest struct {
	SubscriptionID string `json:"subscription_id"`
	CustomerID     string `json:"customer_id"`
	PartnerID      string `json:"partner_id"`
}

// ParentEnded is the cascade signal a terminal parent sends its linked subscriptions.
type ParentEnded struct {
	ParentID string        `json:"parent_id"`
	Status   domain.Status `json:"status"`
	// Refund is set when the parent never started billing or was cancelled
	// inside its window: the customer could not use the linked app, so its
	// current term is refunded.
	Refund bool `json:"refund,omitempty"`
}

// WorkflowType is the registered name of the subscription workflow.
const WorkflowType = "SubscriptionWorkflow"

// Problem codes of refusals that are not the caller's fault: ErrNoChange
// carries the unchanged subscription as details (the API answers 200 with
// it); ErrContinuingAsNew asks the caller to send the message again shortly,
// to the run that continues this one.
const (
	ErrNoChange        = "no_change"
	ErrContinuingAsNew = "continuing_as_new"
)

// PurchaseUpdateID is the id of the purchase's Update-with-Start: a retried
// purchase joins the first one.
func PurchaseUpdateID(subscriptionID string) string { return "purchase:" + subscriptionID }

// LinkUpdateID is the id of the Update that links a subscription to its parent.
func LinkUpdateID(subscriptionID string) string { return "link:" + subscriptionID }
