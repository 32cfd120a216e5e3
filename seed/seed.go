// Package seed loads the seed file of API.md (publishers, offers with plans,
// partners with agents and API keys, customers) as an idempotent upsert.
package seed

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/partnerhub/fulfillment/domain"
	"github.com/partnerhub/fulfillment/store"
	"github.com/partnerhub/fulfillment/vault"
)

// File is the seed file's shape.
type File struct {
	Publishers []Publisher `json:"publishers"`
	Offers     []Offer     `json:"offers"`
	Partners   []Partner   `json:"partners"`
	Customers  []Customer  `json:"customers"`
}

// Publisher of the seed; SigningSecrets adds further active secrets (rotation).
type Publisher struct {
	ID             string   `json:"id"`
	Name           string   `json:"name"`
	LandingURL     string   `json:"landing_url"`
	WebhookURL     *string  `json:"webhook_url"`
	SigningSecret  string   `json:"signing_secret"`
	SigningSecrets []string `json:"signing_secrets,omitempty"`
}

// Offer of the seed.
type Offer struct {
	ID             string        `json:"id"`
	PublisherID    string        `json:"publisher_id"`
	Name           string        `json:"name"`
	Kind           string        `json:"kind"`
	ParentOfferIDs []string      `json:"parent_offer_ids"`
	Plans          []domain.Plan `json:"plans"`
	// Bundle lists the apps (and their plans) a collection buys.
	Bundle []store.CollectionItem `json:"bundle,omitempty"`
	// SetupInstructions tell a customer how to set a subscription up.
	SetupInstructions *string `json:"setup_instructions,omitempty"`
}

// Partner of the seed. BillingSigningSecret (optional, whsec_…) is what the
// partner's billing system signs POST /v1/billing/events with.
type Partner struct {
	ID                   string  `json:"id"`
	Name                 string  `json:"name"`
	Agents               []Agent `json:"agents"`
	BillingSigningSecret string  `json:"billing_signing_secret,omitempty"`
}

// Agent of the seed; the API key is stored only as its hash.
type Agent struct {
	ID     string      `json:"id"`
	Role   domain.Role `json:"role"`
	APIKey string      `json:"api_key"`
	// Email is the address the agent signs in to the portal with (optional).
	Email *string `json:"email,omitempty"`
}

// Customer of the seed.
type Customer struct {
	ID        string  `json:"id"`
	PartnerID string  `json:"partner_id"`
	Name      string  `json:"name"`
	Domain    *string `json:"domain"`
	// ContactEmail becomes the customer's first (primary) contact (optional).
	ContactEmail *string `json:"contact_email,omitempty"`
}

// Read parses a seed file strictly.
func Read(path string) (File, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return File{}, err
	}
	return Parse(raw)
}

// Parse decodes seed JSON, rejecting unknown fields.
func Parse(raw []byte) (File, error) {
	var f File
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return f, fmt.Errorf("seed: %w", err)
	}
	return f, f.validate()
}

func (f File) validate() error {
	for _, p := range f.Publishers {
		for _, secret := range p.secrets() {
			if !strings.HasPrefix(secret, "whsec_") {
				return fmt.Errorf("seed: publisher %s: signing secrets start with whsec_", p.ID)
			}
		}
	}
	for _, o := range f.Offers {
		if o.Kind != domain.OfferKindSaaS && o.Kind != domain.OfferKindApp && o.Kind != domain.OfferKindCollection {
			return fmt.Errorf("seed: offer %s: kind must be saas, app or collection", o.ID)
		}
		if (o.Kind == domain.OfferKindCollection) != (len(o.Bundle) > 0) {
			return fmt.Errorf("seed: offer %s: a collection, and only a collection, has a bundle", o.ID)
		}
		for _, p := range o.Plans {
			if err := p.Validate(); err != nil {
				return fmt.Errorf("seed: offer %s: %w", o.ID, err)
			}
		}
	}
	for _, p := range f.Partners {
		if p.BillingSigningSecret != "" && !strings.HasPrefix(p.BillingSigningSecret, "whsec_") {
			return fmt.Errorf("seed: partner %s: billing signing secrets start with whsec_", p.ID)
		}
		for _, a := range p.Agents {
			if a.Role != domain.RoleAdminAgent && a.Role != domain.RoleSalesAgent {
				return fmt.Errorf("seed: agent %s/%s: role must be admin_agent or sales_agent", p.ID, a.ID)
			}
			if len(a.APIKey) < 16 {
				return fmt.Errorf("seed: agent %s/%s: api_key must have at least 16 characters", p.ID, a.ID)
			}
		}
	}
	return nil
}

func (p Publisher) secrets() []string {
	var all []string
	if p.SigningSecret != "" {
		all = append(all, p.SigningSecret)
	}
	return append(all, p.SigningSecrets...)
}

// Load upserts the seed. Secrets are sealed with v; API keys are stored as v.KeyHash.
func Load(ctx context.Context, st *store.Store, v *vault.Vault, f File) error {
	for _, p := range f.Publishers {
		if err := st.UpsertPublisher(ctx, store.Publisher{ID: p.ID, Name: p.Name, LandingURL: p.LandingURL, WebhookURL: p.WebhookURL}); err != nil {
			return err
		}
		for _, secret := range p.secrets() {
			sealed, err := v.Seal([]byte(secret))
			if err != nil {
				return err
			}
			if err := st.AddPublisherSecret(ctx, p.ID, vault.Fingerprint(secret), sealed); err != nil {
				return err
			}
		}
	}
	for _, o := range f.Offers {
		if err := st.UpsertOffer(ctx, store.Offer{ID: o.ID, PublisherID: o.PublisherID, Name: o.Name, Kind: o.Kind, ParentOfferIDs: o.ParentOfferIDs,
			SetupInstructions: o.SetupInstructions}); err != nil {
			return err
		}
		for _, plan := range o.Plans {
			plan.OfferID = o.ID
			if err := st.UpsertPlan(ctx, plan); err != nil {
				return err
			}
		}
	}
	for _, o := range f.Offers { // after every offer exists: a bundle names other offers
		if err := st.SetSetupInstructions(ctx, o.ID, o.SetupInstructions); err != nil {
			return err
		}
		if o.Kind == domain.OfferKindCollection {
			if err := st.SetCollectionItems(ctx, o.ID, o.Bundle); err != nil {
				return err
			}
		}
	}
	for _, p := range f.Partners {
		if err := st.UpsertPartner(ctx, store.Partner{ID: p.ID, Name: p.Name}); err != nil {
			return err
		}
		if secret := p.BillingSigningSecret; secret != "" {
			sealed, err := v.Seal([]byte(secret))
			if err != nil {
				return err
			}
			if err := st.AddBillingSecret(ctx, p.ID, vault.Fingerprint(secret), sealed); err != nil {
				return err
			}
		}
		for _, a := range p.Agents {
			if err := st.UpsertAgent(ctx, store.Agent{PartnerID: p.ID, ID: a.ID, Role: a.Role}, v.KeyHash(a.APIKey)); err != nil {
				return err
			}
			if err := st.SetAgentEmail(ctx, p.ID, a.ID, a.Email); err != nil {
				return fmt.Errorf("seed: agent %s/%s: %w", p.ID, a.ID, err)
			}
		}
	}
	for _, c := range f.Customers {
		if err := st.UpsertCustomer(ctx, store.Customer{PartnerID: c.PartnerID, ID: c.ID, Name: c.Name, Domain: c.Domain}); err != nil {
			return err
		}
		if c.ContactEmail != nil {
			ref := store.CustomerRef{PartnerID: c.PartnerID, CustomerID: c.ID}
			if _, _, err := st.AssignFirstContact(ctx, ref, *c.ContactEmail, "seed"); err != nil && !errors.Is(err, store.ErrCustomerHasOther) {
				return fmt.Errorf("seed: customer %s: contact: %w", c.ID, err)
			}
		}
	}
	return nil
}
