package wire

// Offer is an offer of the catalog as partners see it (GET /v1/offers):
// every field always present, null where it does not apply.
type Offer struct {
	ID            string `json:"id"`
	Name          string `json:"name"`
	Kind          string `json:"kind"` // saas or app
	PublisherID   string `json:"publisher_id"`
	PublisherName string `json:"publisher_name"`
	// ParentOfferIDs are the offers an app can be installed on; [] for a SaaS offer.
	ParentOfferIDs []string `json:"parent_offer_ids"`
	// LandingURL is the publisher's page the customer is sent to after the
	// purchase (the publisher link adds the authorization code as token).
	LandingURL string `json:"landing_url"`
	// SetupInstructions tell the customer what to do after the purchase.
	SetupInstructions *string `json:"setup_instructions"`
	Plans             []Plan  `json:"plans"`
}

// Plan is the commercial terms an offer is sold on. Durations are ISO 8601.
type Plan struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// UnitPriceMinor is the price of one unit (seat) for one term, in minor units of Currency.
	UnitPriceMinor int64  `json:"unit_price_minor"`
	Currency       string `json:"currency"`
	Term           string `json:"term"`
	// BillingFrequency is how often a charge is made by default: Term when
	// the plan bills once per term, else a period the term is a whole number of.
	BillingFrequency string `json:"billing_frequency"`
	// BillingFrequencies are the frequencies a purchase may choose, the default first.
	BillingFrequencies []string `json:"billing_frequencies"`
	MinQuantity        int      `json:"min_quantity"`
	MaxQuantity        int      `json:"max_quantity"`
	CancellationWindow string   `json:"cancellation_window"`
	ActivationDeadline string   `json:"activation_deadline"`
	// PlanChangeVetoWindow is how long the publisher may refuse a change away
	// from this plan; PaymentGracePeriod how long a subscription suspended for
	// non-payment waits for the payment.
	PlanChangeVetoWindow string `json:"plan_change_veto_window"`
	PaymentGracePeriod   string `json:"payment_grace_period"`
}
