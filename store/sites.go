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
	"github.com/partnerhub/fulfillment/email"
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
func placeOnDefaultAccount(ctx context.Context, tx *sqlx.Tx, c CustomerRef, subscriptionID string) error {
	// One round trip in the common case: the customer has a default account.
	var placed []sql.NullString
	err := tx.SelectContext(ctx, &placed, `
		UPDATE subscriptions SET billing_account_id = (
			SELECT id FROM billing_accounts WHERE partner_id = $2 AND customer_id = $3 AND is_default)
		WHERE id = $1 AND billing_account_id IS NULL RETURNING billing_account_id`,
		subscriptionID, c.PartnerID, c.CustomerID)
	if err != nil {
		return wrap(err, "place %s on billing account", subscriptionID)
	}
	if len(placed) == 0 || placed[0].Valid {
		return nil // placed before (a retried transition), or placed now
	}
	// The customer has no account yet: create its default under the
	// customer's lock (a concurrent first purchase may have just made it).
	var one int
	if err := tx.GetContext(ctx, &one, `SELECT 1 FROM customers WHERE partner_id = $1 AND id = $2 FOR NO KEY UPDATE`,
		c.PartnerID, c.CustomerID); err != nil {
		return wrap(notFound(err), "customer of %s", subscriptionID)
	}
	var id string
	err = tx.GetContext(ctx, &id, `SELECT id FROM billing_accounts WHERE partner_id = $1 AND customer_id = $2 AND is_default`,
		c.PartnerID, c.CustomerID)
	if errors.Is(notFound(err), ErrNotFound) {
		a, err := insertBillingAccount(ctx, tx, c, "ba_"+uuid.NewString(), "Default")
		if err != nil {
			return err
		}
		id = a.ID
	} else if err != nil {
		return wrap(err, "default billing account")
	}
	_, err = tx.ExecContext(ctx, `UPDATE subscriptions SET billing_account_id = $2 WHERE id = $1`, subscriptionID, id)
	return wrap(err, "place %s on billing account", subscriptionID)
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

// ChooseSite records the site a contact chose while setting a subscription
// up (the portal's "Begin set up"); the subscription must still wait for
// fulfillment and the site belong to its customer (ErrNotFound otherwise).
func (s *Store) ChooseSite(ctx context.Context, c CustomerRef, subscriptionID, siteID, actor string) error {
	return s.tx(ctx, func(tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, `
			UPDATE subscriptions SET site_id = $4 WHERE id = $3 AND partner_id = $1 AND customer_id = $2
			AND status = 'pending_fulfillment' AND NOT fulfillment_confirmed
			AND EXISTS (SELECT 1 FROM customer_sites WHERE id = $4 AND partner_id = $1 AND customer_id = $2)`,
			c.PartnerID, c.CustomerID, subscriptionID, siteID)
		if err != nil {
			return wrap(err, "choose site")
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		return customerEvent(ctx, tx, c, "site_chosen", actor, map[string]any{"subscription_id": subscriptionID, "site_id": siteID})
	})
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

// Transfer is a move of a subscription to another billing account.
type Transfer struct {
	Customer         CustomerRef
	SubscriptionID   string
	BillingAccountID string
	Actor            string
	// Key makes a retried move a no-op (the caller's Idempotency-Key or request id).
	Key string
}

// ErrSameBillingAccount is returned by a move to the account the subscription is on.
var ErrSameBillingAccount = errors.New("the subscription is on that billing account already")

// TransferSubscription moves a subscription to another billing account of
// its customer: later charges land there. It records the move on the
// subscription's and the customer's timelines and emails the customer's
// contacts (billing contacts first of all, but every contact is told).
func (s *Store) TransferSubscription(ctx context.Context, t Transfer) error {
	return s.tx(ctx, func(tx *sqlx.Tx) error {
		var cur struct {
			Account *string `db:"billing_account_id"`
			Name    *string `db:"name"`
		}
		if err := tx.GetContext(ctx, &cur, `
			SELECT s.billing_account_id, b.name FROM subscriptions s LEFT JOIN billing_accounts b ON b.id = s.billing_account_id
			WHERE s.id = $1 AND s.partner_id = $2 AND s.customer_id = $3 FOR NO KEY UPDATE OF s`,
			t.SubscriptionID, t.Customer.PartnerID, t.Customer.CustomerID); err != nil {
			return notFound(err)
		}
		var to BillingAccount
		if err := tx.GetContext(ctx, &to, `
			SELECT id, partner_id, customer_id, name, is_default, created_at, seq FROM billing_accounts
			WHERE id = $1 AND partner_id = $2 AND customer_id = $3`, t.BillingAccountID, t.Customer.PartnerID, t.Customer.CustomerID); err != nil {
			return notFound(err)
		}
		if cur.Account != nil && *cur.Account == to.ID {
			return ErrSameBillingAccount
		}
		if _, err := tx.ExecContext(ctx, `UPDATE subscriptions SET billing_account_id = $2 WHERE id = $1`, t.SubscriptionID, to.ID); err != nil {
			return wrap(err, "move %s", t.SubscriptionID)
		}
		from := ""
		if cur.Name != nil {
			from = *cur.Name
		}
		detail := map[string]any{"from_billing_account_id": cur.Account, "to_billing_account_id": to.ID}
		if err := insertEvent(ctx, tx, eventOf(t, detail), false); err != nil {
			return err
		}
		detail["subscription_id"] = t.SubscriptionID
		if err := customerEvent(ctx, tx, t.Customer, "subscription_transferred", t.Actor, detail); err != nil {
			return err
		}
		sub, err := subscriptionIn(ctx, tx, t.SubscriptionID)
		if err != nil {
			return err
		}
		d, err := subscriptionData(ctx, tx, sub)
		if err != nil {
			return err
		}
		d.FromAccount, d.ToAccount = from, to.Name
		to2, err := recipients(ctx, tx, t.Customer, "")
		if err != nil {
			return err
		}
		for _, r := range to2 {
			if err := queueEmail(ctx, tx, queuedEmail{
				kind: email.KindBillingAccountChanged, cause: "transfer:" + t.SubscriptionID + ":" + t.Key,
				c: t.Customer, subscriptionID: &t.SubscriptionID, recipient: r, data: d,
			}); err != nil {
				return err
			}
		}
		return nil
	})
}

func eventOf(t Transfer, detail map[string]any) domain.Event {
	return domain.Event{
		SubscriptionID: t.SubscriptionID, Key: "transfer:" + t.SubscriptionID + ":" + t.Key,
		At: time.Now().UTC(), Type: EventBillingAccountChanged, Actor: t.Actor, Detail: detail,
	}
}

func subscriptionIn(ctx context.Context, tx *sqlx.Tx, id string) (domain.Subscription, error) {
	var row subscriptionRow
	err := tx.GetContext(ctx, &row, `SELECT seq, `+subscriptionColumns+` FROM subscriptions WHERE id = $1`, id)
	if err != nil {
		return domain.Subscription{}, notFound(err)
	}
	return row.subscription(), nil
}
