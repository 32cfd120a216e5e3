package wire

import "github.com/partnerhub/fulfillment/domain"

// Site is a customer's site as the Subscription object shows it.
type Site struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	URL  string `json:"url"`
}

// ActionRequired is the reason a subscription waits, with a stable code.
type ActionRequired struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	// SetupInstructions are the offer's set-up instructions (null when it has none).
	SetupInstructions *string `json:"setup_instructions"`
}

// Codes of action_required.
const (
	ActionSetupRequired       = "setup_required"
	ActionLicensesNotAssigned = "licenses_not_assigned"
)

// NewActionRequired tells what a subscription waiting for fulfillment still
// needs: set-up on a site by the customer and publisher (confirmation
// pending), or the publisher's license assignment. Nil when nothing.
func NewActionRequired(s domain.Subscription) *ActionRequired {
	if s.Status != domain.StatusPendingFulfillment {
		return nil
	}
	if !s.FulfillmentConfirmed {
		return &ActionRequired{Code: ActionSetupRequired,
			Message: "Set up needed: the customer chooses or adds a site on the publisher's set-up page, and the publisher confirms it."}
	}
	if s.LicensesAssigned == 0 {
		return &ActionRequired{Code: ActionLicensesNotAssigned, Message: "Waiting for the publisher to assign licenses."}
	}
	return nil
}
