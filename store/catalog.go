package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/partnerhub/fulfillment/domain"
)

// Publisher is an ISV publisher.
type Publisher struct {
	ID         string  `db:"id" json:"id"`
	Name       string  `db:"name" json:"name"`
	LandingURL string  `db:"landing_url" json:"landing_url"`
	WebhookURL *string `db:"webhook_url" json:"webhook_url"`
}

// Offer is a publisher's SaaS offer or app.
type Offer struct {
	ID             string         `db:"id"`
	PublisherID    string         `db:"publisher_id"`
	Name           string         `db:"name"`
	Kind           string         `db:"kind"`
	ParentOfferIDs pq.StringArray `db:"parent_offer_ids"`
	// SetupInstructions tells the customer what to do after the purchase (optional).
	SetupInstructions *string `db:"setup_instructions"`
}

// Agent is the caller behind a partner API key.
type Agent struct {
	PartnerID string      `db:"partner_id"`
	ID        string      `db:"agent_id"`
	Role      domain.Role `db:"role"`
}

// Partner is a cloud-solution reseller.
type Partner struct {
	ID   string `db:"id" json:"id"`
	Name string `db:"name" json:"name"`
}

// Customer is a partner's customer.
type Customer struct {
	PartnerID string    `db:"partner_id" json:"partner_id"`
	ID        string    `db:"id" json:"id"`
	Name      string    `db:"name" json:"name"`
	Domain    *string   `db:"domain" json:"domain"`
	CreatedAt time.Time `db:"created_at" json:"created_at"`
}

// UpsertPublisher creates or updates a publisher.
func (s *Store) UpsertPublisher(ctx context.Context, p Publisher) error {
	_, err := s.db.ExecContext(ctx, `
		INSERT INTO publishers (id, name, landing_url, webhook_url) VALUES ($1,$2,$3,$4)
		ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, landing_url = EXCLUDED.landing_url, webhook_url = EXCLUDED.webhook_url`,
		p.ID, p.Name, p.LandingURL, p.WebhookURL)
	return wrap(err, "upsert publisher %s", p.ID)
}

// AddPublisherSecret stores an encrypted signing secret; fingerprint identifies
// it without revealing it. Adding the same secret again changes nothing.
func (s *Store) AddPublisherSecret(ctx context.Context, publisherID, fingerprint string, ciphertext []byte) error {
	_, err := s.db.ExecContext(ctx, `
		INSERT INTO publisher_secrets (publisher_id, fingerprint, ciphertext) VALUES ($1,$2,$3)
		ON CONFLICT (publisher_id, fingerprint) DO NOTHING`, publisherID, fingerprint, ciphertext)
	return wrap(err, "add secret of publisher %s", publisherID)
}

// ExpirePublisherSecrets ends every secret of a publisher except keep, after grace.
func (s *Store) ExpirePublisherSecrets(ctx context.Context, publisherID, keep string, at time.Time) error {
	_, err := s.db.ExecContext(ctx, `
		UPDATE publisher_secrets SET expires_at = $3
		WHERE publisher_id = $1 AND fingerprint <> $2 AND (expires_at IS NULL OR expires_at > $3)`, publisherID, keep, at)
	return wrap(err, "expire secrets of publisher %s", publisherID)
}

// PublisherSecrets returns the encrypted secrets of a publisher active at now.
func (s *Store) PublisherSecrets(ctx context.Context, publisherID string, now time.Time) ([][]byte, error) {
	var secrets [][]byte
	err := s.db.SelectContext(ctx, &secrets, `
		SELECT ciphertext FROM publisher_secrets
		WHERE publisher_id = $1 AND (expires_at IS NULL OR expires_at > $2) ORDER BY created_at DESC`, publisherID, now)
	return secrets, wrap(err, "secrets of publisher %s", publisherID)
}

// PublisherWithSecrets reads a publisher and its encrypted secrets active at
// now (newest first) in one statement: what verifying a publisher's message
// needs, read on every callback.
func (s *Store) PublisherWithSecrets(ctx context.Context, id string, now time.Time) (Publisher, [][]byte, error) {
	var row struct {
		Publisher
		Secrets pq.ByteaArray `db:"secrets"`
	}
	err := s.db.GetContext(ctx, &row, `
		SELECT p.id, p.name, p.landing_url, p.webhook_url,
			COALESCE(array_agg(k.ciphertext ORDER BY k.created_at DESC) FILTER (WHERE k.ciphertext IS NOT NULL), '{}') AS secrets
		FROM publishers p
		LEFT JOIN publisher_secrets k ON k.publisher_id = p.id AND (k.expires_at IS NULL OR k.expires_at > $2)
		WHERE p.id = $1
		GROUP BY p.id`, id, now)
	if err != nil {
		return Publisher{}, nil, notFound(err)
	}
	return row.Publisher, [][]byte(row.Secrets), nil
}

// Publisher reads one publisher.
func (s *Store) Publisher(ctx context.Context, id string) (Publisher, error) {
	var p Publisher
	err := s.db.GetContext(ctx, &p, `SELECT id, name, landing_url, webhook_url FROM publishers WHERE id = $1`, id)
	return p, notFound(err)
}

// UpsertOffer creates or updates an offer.
func (s *Store) UpsertOffer(ctx context.Context, o Offer) error {
	if o.ParentOfferIDs == nil {
		o.ParentOfferIDs = pq.StringArray{}
	}
	_, err := s.db.ExecContext(ctx, `
		INSERT INTO offers (id, publisher_id, name, kind, parent_offer_ids, setup_instructions) VALUES ($1,$2,$3,$4,$5,$6)
		ON CONFLICT (id) DO UPDATE SET publisher_id = EXCLUDED.publisher_id, name = EXCLUDED.name,
			kind = EXCLUDED.kind, parent_offer_ids = EXCLUDED.parent_offer_ids,
			setup_instructions = EXCLUDED.setup_instructions`,
		o.ID, o.PublisherID, o.Name, o.Kind, o.ParentOfferIDs, o.SetupInstructions)
	return wrap(err, "upsert offer %s", o.ID)
}

// Offer reads one offer.
func (s *Store) Offer(ctx context.Context, id string) (Offer, error) {
	var o Offer
	err := s.db.GetContext(ctx, &o, `SELECT id, publisher_id, name, kind, parent_offer_ids, setup_instructions FROM offers WHERE id = $1`, id)
	return o, notFound(err)
}

// OfferForPurchase is what a purchase checks against the catalog first,
// read in one statement: the offer, its publisher, and whether the customer
// is the partner's.
type OfferForPurchase struct {
	Offer
	Publisher     Publisher `db:"publisher"`
	CustomerKnown bool      `db:"customer_known"`
}

// OfferForPurchase reads an offer with its publisher, and whether the
// partner has the customer (ErrNotFound: no such offer).
func (s *Store) OfferForPurchase(ctx context.Context, partnerID, customerID, offerID string) (OfferForPurchase, error) {
	var o OfferForPurchase
	err := s.db.GetContext(ctx, &o, `
		SELECT EXISTS (SELECT 1 FROM customers WHERE partner_id = $2 AND id = $3) AS customer_known,
			o.id, o.publisher_id, o.name, o.kind, o.parent_offer_ids, o.setup_instructions,
			p.id AS "publisher.id", p.name AS "publisher.name", p.landing_url AS "publisher.landing_url",
			p.webhook_url AS "publisher.webhook_url"
		FROM offers o JOIN publishers p ON p.id = o.publisher_id
		WHERE o.id = $1`, offerID, partnerID, customerID)
	return o, notFound(err)
}

// UpsertPlan creates or updates a plan.
func (s *Store) UpsertPlan(ctx context.Context, p domain.Plan) error {
	_, err := s.db.ExecContext(ctx, `
		INSERT INTO plans (offer_id, id, name, term, unit_price_minor, currency, min_quantity, max_quantity,
			cancellation_window, activation_deadline, payment_grace_period, plan_change_veto_window,
			billing_frequency, billing_frequencies)
		VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14)
		ON CONFLICT (offer_id, id) DO UPDATE SET name = EXCLUDED.name, term = EXCLUDED.term,
			unit_price_minor = EXCLUDED.unit_price_minor, currency = EXCLUDED.currency,
			min_quantity = EXCLUDED.min_quantity, max_quantity = EXCLUDED.max_quantity,
			cancellation_window = EXCLUDED.cancellation_window, activation_deadline = EXCLUDED.activation_deadline,
			payment_grace_period = EXCLUDED.payment_grace_period,
			plan_change_veto_window = EXCLUDED.plan_change_veto_window, billing_frequency = EXCLUDED.billing_frequency,
			billing_frequencies = EXCLUDED.billing_frequencies`,
		p.OfferID, p.ID, p.Name, p.Term, p.UnitPriceMinor, p.Currency, p.MinQuantity, p.MaxQuantity,
		p.CancellationWindow, p.ActivationDeadline, p.GracePeriod(), p.VetoWindow(),
		p.BillingFrequency, append(pq.StringArray{}, p.BillingFrequencies...))
	return wrap(err, "upsert plan %s/%s", p.OfferID, p.ID)
}

// Plan reads one plan of an offer.
func (s *Store) Plan(ctx context.Context, offerID, planID string) (domain.Plan, error) {
	var p planRow
	err := s.db.GetContext(ctx, &p, `SELECT `+planColumns+` FROM plans WHERE offer_id = $1 AND id = $2`, offerID, planID)
	return p.plan(), notFound(err)
}

const planColumns = `offer_id, id, name, term, unit_price_minor, currency, min_quantity, max_quantity,
	cancellation_window, activation_deadline, payment_grace_period, plan_change_veto_window,
	billing_frequency, billing_frequencies`

// planRow reads the plan's array column.
type planRow struct {
	domain.Plan
	Frequencies pq.StringArray `db:"billing_frequencies"`
}

func (r planRow) plan() domain.Plan {
	p := r.Plan
	if len(r.Frequencies) > 0 {
		p.BillingFrequencies = []string(r.Frequencies)
	}
	return p
}

// UpsertPartner creates or updates a partner.
func (s *Store) UpsertPartner(ctx context.Context, p Partner) error {
	_, err := s.db.ExecContext(ctx, `
		INSERT INTO partners (id, name) VALUES ($1,$2) ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name`, p.ID, p.Name)
	return wrap(err, "upsert partner %s", p.ID)
}

// Partner reads one partner.
func (s *Store) Partner(ctx context.Context, id string) (Partner, error) {
	var p Partner
	err := s.db.GetContext(ctx, &p, `SELECT id, name FROM partners WHERE id = $1`, id)
	return p, notFound(err)
}

// UpsertAgent creates or updates an agent and registers the hash of its API key.
func (s *Store) UpsertAgent(ctx context.Context, a Agent, keyHash []byte) error {
	return s.tx(ctx, func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, `
			INSERT INTO agents (partner_id, id, role) VALUES ($1,$2,$3)
			ON CONFLICT (partner_id, id) DO UPDATE SET role = EXCLUDED.role`, a.PartnerID, a.ID, a.Role); err != nil {
			return wrap(err, "upsert agent %s/%s", a.PartnerID, a.ID)
		}
		_, err := tx.ExecContext(ctx, `
			INSERT INTO api_keys (key_hash, partner_id, agent_id) VALUES ($1,$2,$3)
			ON CONFLICT (key_hash) DO NOTHING`, keyHash, a.PartnerID, a.ID)
		return wrap(err, "register key of agent %s/%s", a.PartnerID, a.ID)
	})
}

// AgentByKey finds the agent an API key hash belongs to. A key whose
// revocation is scheduled (rotation overlap) works until then.
func (s *Store) AgentByKey(ctx context.Context, keyHash []byte) (Agent, error) {
	var a Agent
	err := s.db.GetContext(ctx, &a, `
		SELECT k.partner_id, k.agent_id, a.role FROM api_keys k
		JOIN agents a ON a.partner_id = k.partner_id AND a.id = k.agent_id
		WHERE k.key_hash = $1 AND (k.revoked_at IS NULL OR k.revoked_at > now())`, keyHash)
	return a, notFound(err)
}

// CreateCustomer inserts a customer; it reports false when the id is taken.
func (s *Store) CreateCustomer(ctx context.Context, c Customer) (Customer, bool, error) {
	err := s.db.GetContext(ctx, &c, `
		INSERT INTO customers (partner_id, id, name, domain) VALUES ($1,$2,$3,$4)
		ON CONFLICT (partner_id, id) DO NOTHING RETURNING partner_id, id, name, domain, created_at`,
		c.PartnerID, c.ID, c.Name, c.Domain)
	if err := notFound(err); err == ErrNotFound {
		return c, false, nil
	} else if err != nil {
		return c, false, wrap(err, "create customer %s", c.ID)
	}
	c.CreatedAt = c.CreatedAt.UTC()
	return c, true, nil
}

// UpsertCustomer creates or renames a customer (seed).
func (s *Store) UpsertCustomer(ctx context.Context, c Customer) error {
	_, err := s.db.ExecContext(ctx, `
		INSERT INTO customers (partner_id, id, name, domain) VALUES ($1,$2,$3,$4)
		ON CONFLICT (partner_id, id) DO UPDATE SET name = EXCLUDED.name, domain = EXCLUDED.domain`,
		c.PartnerID, c.ID, c.Name, c.Domain)
	return wrap(err, "upsert customer %s", c.ID)
}

// Customer reads one of a partner's customers.
func (s *Store) Customer(ctx context.Context, partnerID, id string) (Customer, error) {
	var c Customer
	err := s.db.GetContext(ctx, &c, `
		SELECT partner_id, id, name, domain, created_at FROM customers WHERE partner_id = $1 AND id = $2`, partnerID, id)
	c.CreatedAt = c.CreatedAt.UTC()
	return c, notFound(err)
}

// Customers lists a partner's customers, newest first.
func (s *Store) Customers(ctx context.Context, partnerID string) ([]Customer, error) {
	customers := []Customer{}
	err := s.db.SelectContext(ctx, &customers, `
		SELECT partner_id, id, name, domain, created_at FROM customers WHERE partner_id = $1 ORDER BY seq DESC`, partnerID)
	for i := range customers {
		customers[i].CreatedAt = customers[i].CreatedAt.UTC()
	}
	return customers, wrap(err, "list customers of %s", partnerID)
}

func wrap(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf(format+": %w", append(args, err)...)
}
