package store

// Sites and billing accounts of a customer, and where each subscription
// lives and is billed. These columns sit beside the workflow's snapshot in
// the read model; NOTES-customers.md says what the workflow must carry.

import (
	"context"
	"database/sql"
	"errors"
	neturl "net/url"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/partnerhub/fulfillment/domain"
)

// Site is a place (URL) where a customer uses its subscriptions.
type Site struct {
	ID         string    `db:"id" json:"id"`
	PartnerID  string    `db:"partner_id" json:"-"`
	CustomerID string    `db:"customer_id" json:"customer_id"`
	Name       string    `db:"name" json:"name"`
	URL        string    `db:"url" json:"url"`
	CreatedAt  time.Time `db:"created_at" json:"created_at"`
	Seq        int64     `db:"seq" json:"-"`
}

// BillingAccount groups a customer's billing transactions.
type BillingAccount struct {
	ID         string    `db:"id" json:"id"`
	PartnerID  string    `db:"partner_id" json:"-"`
	CustomerID string    `db:"customer_id" json:"customer_id"`
	Name       string    `db:"name" json:"name"`
	Default    bool      `db:"is_default" json:"default"`
	CreatedAt  time.Time `db:"created_at" json:"created_at"`
	Seq        int64     `db:"seq" json:"-"`
}

// ErrSiteExists is returned when the customer has a site with that URL already.
var ErrSiteExists = errors.New("the customer has a site with this URL already")

// Page selects a page of a list, newest first.
type Page struct {
	Limit     int
	BeforeSeq int64 // 0: first page
}

func (p Page) limit() int {
	if p.Limit <= 0 {
		return 50
	}
	return p.Limit
}

// CreateSite adds a site to a customer under an Idempotency-Key: the same
// key and request again answer the first site (replayed true).
func (s *Store) CreateSite(ctx context.Context, c CustomerRef, name, url, actor string, k CreationKey) (Site, bool, error) {
	var site Site
	replayed := false
	err := s.tx(ctx, func(tx *sqlx.Tx) error {
		id, existing, err := claimCreation(ctx, tx, c.PartnerID, "site", "site_"+uuid.NewString(), k)
		if err != nil {
			return err
		}
		if existing {
			replayed = true
			return tx.GetContext(ctx, &site, `SELECT id, partner_id, customer_id, name, url, created_at, seq FROM customer_sites WHERE id = $1`, id)
		}
		err = tx.GetContext(ctx, &site, `
			INSERT INTO customer_sites (id, partner_id, customer_id, name, url) VALUES ($1,$2,$3,$4,$5)
			RETURNING id, partner_id, customer_id, name, url, created_at, seq`,
			id, c.PartnerID, c.CustomerID, name, url)
		var pqErr *pq.Error
		if errors.As(err, &pqErr) && pqErr.Code == "23505" {
			return ErrSiteExists
		} else if errors.As(err, &pqErr) && pqErr.Code == "23503" {
			return ErrNotFound
		} else if err != nil {
			return wrap(err, "create site")
		}
		return customerEvent(ctx, tx, c, "site_added", actor, map[string]any{"site_id": site.ID, "name": name, "url": url})
	})
	site.CreatedAt = site.CreatedAt.UTC()
	return site, replayed, err
}

// CreationKey is the Idempotency-Key of a POST that creates, with the hash of its request.
type CreationKey struct {
	Key  string
	Hash []byte
}

// ErrIdempotencyKeyReused is returned when a key comes back with another request.
var ErrIdempotencyKeyReused = errors.New("the Idempotency-Key was used with a different request")

// claimCreation records key for a new resource id, or returns the id the
// key created before (existing true). A concurrent request with the same key
// waits on the row's unique index until the first commits.
func claimCreation(ctx context.Context, tx *sqlx.Tx, partnerID, kind, newID string, k CreationKey) (string, bool, error) {
	var id string
	err := tx.GetContext(ctx, &id, `
		INSERT INTO creation_keys (partner_id, kind, key, request_hash, resource_id) VALUES ($1,$2,$3,$4,$5)
		ON CONFLICT (partner_id, kind, key) DO NOTHING RETURNING resource_id`, partnerID, kind, k.Key, k.Hash, newID)
	if err == nil {
		return id, false, nil
	}
	if !errors.Is(notFound(err), ErrNotFound) {
		return "", false, wrap(err, "claim idempotency key")
	}
	var prior struct {
		Hash []byte `db:"request_hash"`
		ID   string `db:"resource_id"`
	}
	if err := tx.GetContext(ctx, &prior, `
		SELECT request_hash, resource_id FROM creation_keys WHERE partner_id = $1 AND kind = $2 AND key = $3`,
		partnerID, kind, k.Key); err != nil {
		return "", false, wrap(err, "read idempotency key")
	}
	if string(prior.Hash) != string(k.Hash) {
		return "", false, ErrIdempotencyKeyReused
	}
	return prior.ID, true, nil
}

// Sites lists a customer's sites, newest first.
func (s *Store) Sites(ctx context.Context, c CustomerRef, p Page) ([]Site, int64, error) {
	var rows []Site
	err := s.db.SelectContext(ctx, &rows, `
		SELECT id, partner_id, customer_id, name, url, created_at, seq FROM customer_sites
		WHERE partner_id = $1 AND customer_id = $2 AND ($3::bigint = 0 OR seq < $3)
		ORDER BY seq DESC LIMIT $4`, c.PartnerID, c.CustomerID, p.BeforeSeq, p.limit()+1)
	if err != nil {
		return nil, 0, wrap(err, "list sites")
	}
	var next int64
	if len(rows) > p.limit() {
		rows = rows[:p.limit()]
		next = rows[len(rows)-1].Seq
	}
	for i := range rows {
		rows[i].CreatedAt = rows[i].CreatedAt.UTC()
	}
	if rows == nil {
		rows = []Site{}
	}
	return rows, next, nil
}

// CreateBillingAccount adds a billing account to a customer under an
// Idempotency-Key; a customer's first account is its default.
func (s *Store) CreateBillingAccount(ctx context.Context, c CustomerRef, name, actor string, k CreationKey) (BillingAccount, bool, error) {
	var a BillingAccount
	replayed := false
	err := s.tx(ctx, func(tx *sqlx.Tx) error {
		id, existing, err := claimCreation(ctx, tx, c.PartnerID, "billing_account", "ba_"+uuid.NewString(), k)
		if err != nil {
			return err
		}
		if existing {
			replayed = true
			return tx.GetContext(ctx, &a, `
				SELECT id, partner_id, customer_id, name, is_default, created_at, seq FROM billing_accounts WHERE id = $1`, id)
		}
		if a, err = insertBillingAccount(ctx, tx, c, id, name); err != nil {
			return err
		}
		return customerEvent(ctx, tx, c, "billing_account_added", actor, map[string]any{"billing_account_id": a.ID, "name": name})
	})
	a.CreatedAt = a.CreatedAt.UTC()
	return a, replayed, err
}

func insertBillingAccount(ctx context.Context, tx *sqlx.Tx, c CustomerRef, id, name string) (BillingAccount, error) {
	var a BillingAccount
	var one int
	if err := tx.GetContext(ctx, &one, `SELECT 1 FROM customers WHERE partner_id = $1 AND id = $2 FOR NO KEY UPDATE`,
		c.PartnerID, c.CustomerID); err != nil {
		return a, notFound(err)
	}
	err := tx.GetContext(ctx, &a, `
		INSERT INTO billing_accounts (id, partner_id, customer_id, name, is_default)
		VALUES ($1,$2,$3,$4, NOT EXISTS (SELECT 1 FROM billing_accounts WHERE partner_id = $2 AND customer_id = $3))
		RETURNING id, partner_id, customer_id, name, is_default, created_at, seq`,
		id, c.PartnerID, c.CustomerID, name)
	a.CreatedAt = a.CreatedAt.UTC()
	return a, wrap(err, "create billing account")
}

// BillingAccounts lists a customer's billing accounts, newest first.
func (s *Store) BillingAccounts(ctx context.Context, c CustomerRef, p Page) ([]BillingAccount, int64, error) {
	var rows []BillingAccount
	err := s.db.SelectContext(ctx, &rows, `
		SELECT id, partner_id, customer_id, name, is_default, created_at, seq FROM billing_accounts
		WHERE partner_id = $1 AND customer_id = $2 AND ($3::bigint = 0 OR seq < $3)
		ORDER BY seq DESC LIMIT $4`, c.PartnerID, c.CustomerID, p.BeforeSeq, p.limit()+1)
	if err != nil {
		return nil, 0, wrap(err, "list billing accounts")
	}
	var next int64
	if len(rows) > p.limit() {
		rows = rows[:p.limit()]
		next = rows[len(rows)-1].Seq
	}
	for i := range rows {
		rows[i].CreatedAt = rows[i].CreatedAt.UTC()
	}
	if rows == nil {
		rows = []BillingAccount{}
	}
	return rows, next, nil
}

// placeOnDefaultAccount puts a new subscription on its customer's default
// billing account, creating one ("Default") for a customer that has none.
// It returns the account, or "" when the subscription was placed before (a
// retried transition).
func placeOnDefaultAccount(ctx context.Context, tx *sqlx.Tx, c CustomerRef, subscriptionID string) (string, error) {
	// One round trip in the common case: the customer has a default account.
	var placed []sql.NullString
	err := tx.SelectContext(ctx, &placed, `
		UPDATE subscriptions SET billing_account_id = (
			SELECT id FROM billing_accounts WHERE partner_id = $2 AND customer_id = $3 AND is_default)
		WHERE id = $1 AND billing_account_id IS NULL RETURNING billing_account_id`,
		subscriptionID, c.PartnerID, c.CustomerID)
	if err != nil {
		return "", wrap(err, "place %s on billing account", subscriptionID)
	}
	if len(placed) == 0 {
		return "", nil // placed before (a retried transition)
	}
	if placed[0].Valid {
		return placed[0].String, nil
	}
	// The customer has no account yet: create its default under the
	// customer's lock (a concurrent first purchase may have just made it).
	var one int
	if err := tx.GetContext(ctx, &one, `SELECT 1 FROM customers WHERE partner_id = $1 AND id = $2 FOR NO KEY UPDATE`,
		c.PartnerID, c.CustomerID); err != nil {
		return "", wrap(notFound(err), "customer of %s", subscriptionID)
	}
	var id string
	err = tx.GetContext(ctx, &id, `SELECT id FROM billing_accounts WHERE partner_id = $1 AND customer_id = $2 AND is_default`,
		c.PartnerID, c.CustomerID)
	if errors.Is(notFound(err), ErrNotFound) {
		a, err := insertBillingAccount(ctx, tx, c, "ba_"+uuid.NewString(), "Default")
		if err != nil {
			return "", err
		}
		id = a.ID
	} else if err != nil {
		return "", wrap(err, "default billing account")
	}
	_, err = tx.ExecContext(ctx, `UPDATE subscriptions SET billing_account_id = $2 WHERE id = $1`, subscriptionID, id)
	return id, wrap(err, "place %s on billing account", subscriptionID)
}

// placeOnSite records the site a confirmed fulfillment names, adding it to
// the customer's sites when it is new. A site chosen before stays.
func placeOnSite(ctx context.Context, tx *sqlx.Tx, c CustomerRef, subscriptionID, siteURL string) error {
	name := siteURL
	if u, err := neturl.Parse(siteURL); err == nil && u.Host != "" {
		name = u.Host
	}
	_, err := tx.ExecContext(ctx, `
		WITH site AS (
			INSERT INTO customer_sites (id, partner_id, customer_id, name, url) VALUES ($1,$2,$3,$4,$5)
			ON CONFLICT (partner_id, customer_id, url) DO UPDATE SET url = EXCLUDED.url
			RETURNING id)
		UPDATE subscriptions SET site_id = (SELECT id FROM site) WHERE id = $6 AND site_id IS NULL`,
		"site_"+uuid.NewString(), c.PartnerID, c.CustomerID, name, siteURL, subscriptionID)
	return wrap(err, "place %s on site", subscriptionID)
}

// Site reads one of a customer's sites (ErrNotFound for another customer's).
// Choosing it for a subscription is the workflow's choose_site Update.
func (s *Store) Site(ctx context.Context, c CustomerRef, id string) (Site, error) {
	var site Site
	err := s.db.GetContext(ctx, &site, `
		SELECT id, partner_id, customer_id, name, url, created_at, seq FROM customer_sites
		WHERE id = $1 AND partner_id = $2 AND customer_id = $3`, id, c.PartnerID, c.CustomerID)
	site.CreatedAt = site.CreatedAt.UTC()
	return site, notFound(err)
}

// Placement is where a subscription lives and is billed.
type Placement struct {
	SubscriptionID   string  `db:"id"`
	BillingAccountID *string `db:"billing_account_id"`
	SiteID           *string `db:"site_id"`
	SiteName         *string `db:"site_name"`
	SiteURL          *string `db:"site_url"`
	// SetupInstructions are the offer's, for the partner's "action required".
	SetupInstructions *string `db:"setup_instructions"`
}

// Placements reads the site (an app's is its parent's), billing account and
// offer's set-up instructions of subscriptions.
func (s *Store) Placements(ctx context.Context, ids []string) (map[string]Placement, error) {
	var rows []Placement
	err := s.db.SelectContext(ctx, &rows, `
		SELECT s.id, s.billing_account_id, cs.id AS site_id, cs.name AS site_name, cs.url AS site_url,
			o.setup_instructions
		FROM subscriptions s
		JOIN offers o ON o.id = s.offer_id
		LEFT JOIN subscriptions parent ON parent.id = s.parent_subscription_id
		LEFT JOIN customer_sites cs ON cs.id = COALESCE(s.site_id, parent.site_id)
		WHERE s.id = ANY($1)`, pq.StringArray(ids))
	out := make(map[string]Placement, len(rows))
	for _, r := range rows {
		out[r.SubscriptionID] = r
	}
	return out, wrap(err, "placements")
}

// BillingAccount reads one of a customer's billing accounts (ErrNotFound for
// another customer's). Moving a subscription there is the workflow's
// transfer_billing_account Update; its transition records the move, stamps
// later charges and queues the email (applyCustomerSide).
func (s *Store) BillingAccount(ctx context.Context, c CustomerRef, id string) (BillingAccount, error) {
	var a BillingAccount
	err := s.db.GetContext(ctx, &a, `
		SELECT id, partner_id, customer_id, name, is_default, created_at, seq FROM billing_accounts
		WHERE id = $1 AND partner_id = $2 AND customer_id = $3`, id, c.PartnerID, c.CustomerID)
	a.CreatedAt = a.CreatedAt.UTC()
	return a, notFound(err)
}

// customerSideEvent mirrors a subscription's move or site choice on its
// customer's timeline, once per subscription event (a retried transition
// finds the event key and adds nothing).
func customerSideEvent(ctx context.Context, tx *sqlx.Tx, c CustomerRef, typ string, e domain.Event) error {
	detail := map[string]any{"subscription_id": e.SubscriptionID, "event_key": e.Key}
	for k, v := range e.Detail {
		detail[k] = v
	}
	d, err := jsonObject(detail)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `
		INSERT INTO customer_events (partner_id, customer_id, type, actor, detail)
		SELECT $1, $2, $3, $4, $5 WHERE NOT EXISTS (
			SELECT 1 FROM customer_events WHERE partner_id = $1 AND customer_id = $2 AND type = $3 AND detail->>'event_key' = $6)`,
		c.PartnerID, c.CustomerID, typ, e.Actor, d, e.Key)
	return wrap(err, "record customer event %s", typ)
}
