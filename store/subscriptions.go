package store

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/partnerhub/fulfillment/domain"
)

const subscriptionColumns = `id, partner_id, customer_id, publisher_id, offer_id, plan_id, quantity, nickname,
	auto_renew, reseller_partner_id, parent_subscription_id, linked_subscription_ids, entitlement_number,
	site_url, licenses_assigned, fulfillment_confirmed, status, term_number, activation_deadline,
	billing_started_at, term_start, term_end, cancellation_window_ends_at, created_at, updated_at, version,
	billing_account_id, site_id, pending_plan_change, billing_frequency, pending_billing_frequency, periods_billed,
	unit_price_minor, currency, plan_term, min_quantity, max_quantity`

// subscriptionValues names each of subscriptionColumns as a named parameter
// (:id, :partner_id, …) of subscriptionRow.
var subscriptionValues = func() string {
	cols := strings.Split(subscriptionColumns, ",")
	for i, c := range cols {
		cols[i] = ":" + strings.TrimSpace(c)
	}
	return strings.Join(cols, ", ")
}()

// subscriptionColumnsOf is subscriptionColumns qualified by a table alias,
// for statements that join other tables.
func subscriptionColumnsOf(alias string) string {
	cols := strings.Split(subscriptionColumns, ",")
	for i, c := range cols {
		cols[i] = alias + "." + strings.TrimSpace(c)
	}
	return strings.Join(cols, ", ")
}

// subscriptionRow adds what the read model keeps beside domain.Subscription.
type subscriptionRow struct {
	domain.Subscription
	Linked pq.StringArray `db:"linked_subscription_ids"`
	Seq    int64          `db:"seq"`
}

func (r subscriptionRow) subscription() domain.Subscription {
	s := r.Subscription
	s.LinkedSubscriptionIDs = []string(r.Linked)
	if s.LinkedSubscriptionIDs == nil {
		s.LinkedSubscriptionIDs = []string{}
	}
	s.ActivationDeadline = s.ActivationDeadline.UTC()
	s.CreatedAt, s.UpdatedAt = s.CreatedAt.UTC(), s.UpdatedAt.UTC()
	for _, t := range []**time.Time{&s.BillingStartedAt, &s.TermStart, &s.TermEnd, &s.CancellationWindowEndsAt} {
		if *t != nil {
			u := (**t).UTC()
			*t = &u
		}
	}
	if pc := s.PendingPlanChange; pc != nil {
		pc.RequestedAt, pc.VetoEndsAt = pc.RequestedAt.UTC(), pc.VetoEndsAt.UTC()
	}
	return s
}

// SaveChange writes one workflow transition atomically. A transition has
// deterministic keys (snapshot version, charge:<id>:<term>, event and outbox
// sequence numbers) and is written only once Temporal recorded the decision
// to make it, so a retried write finds its own rows and adds nothing. A row
// that exists under a key with other content is never overwritten: the write
// fails (and its activity keeps retrying, visible to ops) rather than change
// money silently. An older version never overwrites a newer snapshot.
func (s *Store) SaveChange(ctx context.Context, c domain.Change, codeHash []byte) (domain.SaveResult, error) {
	var res domain.SaveResult
	sub := c.Subscription
	err := s.tx(ctx, func(tx *sqlx.Tx) error {
		if sub.BillingFrequency == "" {
			// A run started before billing periods carries no frequency: the
			// row's, else the plan's term (it bills once per term).
			if err := tx.GetContext(ctx, &sub.BillingFrequency, `
				SELECT COALESCE((SELECT NULLIF(billing_frequency, '') FROM subscriptions WHERE id = $1),
					(SELECT term FROM plans WHERE offer_id = $2 AND id = $3), '')`, sub.ID, sub.OfferID, sub.PlanID); err != nil {
				return fmt.Errorf("read billing frequency: %w", err)
			}
		}
		snapshot, err := json.Marshal(sub)
		if err != nil {
			return fmt.Errorf("encode snapshot of %s: %w", sub.ID, err)
		}
		row := subscriptionRow{Subscription: sub, Linked: append(pq.StringArray{}, sub.LinkedSubscriptionIDs...)} // nil would be NULL
		if _, err := sqlx.NamedExecContext(ctx, tx, `
			INSERT INTO subscriptions (`+subscriptionColumns+`) VALUES (`+subscriptionValues+`)
			ON CONFLICT (id) DO UPDATE SET
				plan_id = EXCLUDED.plan_id, pending_plan_change = EXCLUDED.pending_plan_change,
				quantity = EXCLUDED.quantity, nickname = EXCLUDED.nickname, auto_renew = EXCLUDED.auto_renew,
				reseller_partner_id = EXCLUDED.reseller_partner_id,
				linked_subscription_ids = EXCLUDED.linked_subscription_ids, site_url = EXCLUDED.site_url,
				licenses_assigned = EXCLUDED.licenses_assigned, fulfillment_confirmed = EXCLUDED.fulfillment_confirmed,
				status = EXCLUDED.status, term_number = EXCLUDED.term_number,
				billing_started_at = EXCLUDED.billing_started_at, term_start = EXCLUDED.term_start,
				term_end = EXCLUDED.term_end, cancellation_window_ends_at = EXCLUDED.cancellation_window_ends_at,
				updated_at = EXCLUDED.updated_at, version = EXCLUDED.version,
				billing_frequency = EXCLUDED.billing_frequency,
				pending_billing_frequency = EXCLUDED.pending_billing_frequency, periods_billed = EXCLUDED.periods_billed,
				-- The price of the plan the workflow carries, not COALESCEd (no colon in
				-- this statement, it takes named parameters). A snapshot without it (a
				-- worker older than the column) may follow a plan change, so the row
				-- falls back to the catalog rather than keep another plan's price.
				unit_price_minor = EXCLUDED.unit_price_minor, currency = EXCLUDED.currency, plan_term = EXCLUDED.plan_term,
				min_quantity = EXCLUDED.min_quantity, max_quantity = EXCLUDED.max_quantity,
				-- Nil in a workflow that has not learned them, so the row keeps its own.
				billing_account_id = COALESCE(EXCLUDED.billing_account_id, subscriptions.billing_account_id),
				site_id = COALESCE(EXCLUDED.site_id, subscriptions.site_id)
			WHERE subscriptions.version <= EXCLUDED.version`, row); err != nil {
			return fmt.Errorf("upsert subscription: %w", err)
		}
		if err := insertEvents(ctx, tx, c.Events); err != nil {
			return err
		}
		restamp := false // a ledger line written before, perhaps without its account
		for _, l := range c.Ledger {
			inserted, err := insertLedger(ctx, tx, sub.ID, l)
			if err != nil {
				return err
			}
			restamp = restamp || !inserted
		}
		for _, n := range c.Notifications {
			var data any // NULL unless the notification carries data
			if n.Data != nil {
				raw, err := json.Marshal(n.Data)
				if err != nil {
					return fmt.Errorf("encode data of %s: %w", n.ID, err)
				}
				data = string(raw) // text: see jsonObject
			}
			if _, err := tx.ExecContext(ctx, `
				INSERT INTO outbox (id, publisher_id, subscription_id, type, occurred_at, next_attempt_at, subscription, data)
				VALUES ($1,$2,$3,$4,$5,now(),$6,$7)
				ON CONFLICT (id) DO NOTHING`,
				n.ID, sub.PublisherID, sub.ID, n.Type, n.OccurredAt, string(snapshot), data); err != nil {
				return fmt.Errorf("queue notification %s: %w", n.ID, err)
			}
		}
		placedOn, err := applyCustomerSide(ctx, tx, c)
		if err != nil {
			return err
		}
		if restamp || (placedOn != "" && len(c.Ledger) > 0) {
			if err := stampLedger(ctx, tx, sub.ID, c.Ledger); err != nil {
				return err
			}
		}
		if placedOn != "" {
			res.BillingAccountID = &placedOn
		} else if purchased(c) { // a retried purchase: placed the first time
			if err := tx.GetContext(ctx, &res.BillingAccountID, `SELECT billing_account_id FROM subscriptions WHERE id = $1`, sub.ID); err != nil {
				return fmt.Errorf("read billing account: %w", err)
			}
		}
		if c.IssueLinkUntil != nil && codeHash != nil {
			if _, err := tx.ExecContext(ctx, `
				INSERT INTO authorization_codes (code_hash, subscription_id, expires_at)
				VALUES ($1,$2,$3) ON CONFLICT (code_hash) DO NOTHING`, codeHash, sub.ID, *c.IssueLinkUntil); err != nil {
				return fmt.Errorf("store authorization code: %w", err)
			}
		}
		if sub.ParentSubscriptionID != nil {
			err := tx.GetContext(ctx, &res.ParentStatus, `SELECT status FROM subscriptions WHERE id = $1`, *sub.ParentSubscriptionID)
			if err != nil {
				return fmt.Errorf("read parent status: %w", notFound(err))
			}
		}
		return nil
	})
	if err != nil {
		return res, fmt.Errorf("save change of %s: %w", sub.ID, err)
	}
	return res, nil
}

func purchased(c domain.Change) bool {
	for _, e := range c.Events {
		if e.Type == domain.EventPurchased {
			return true
		}
	}
	return false
}

// insertEvents adds a transition's timeline entries in one statement (in
// order, so their ids follow it), strictly as insertEvent does: an entry
// whose key exists must be the same entry, else the write fails.
func insertEvents(ctx context.Context, tx sqlx.ExtContext, events []domain.Event) error {
	if len(events) <= 1 {
		for _, e := range events {
			if err := insertEvent(ctx, tx, e, true); err != nil {
				return err
			}
		}
		return nil
	}
	var values strings.Builder
	args := make([]any, 0, 6*len(events))
	for i, e := range events {
		detail, err := jsonObject(e.Detail)
		if err != nil {
			return err
		}
		if i > 0 {
			values.WriteString(",")
		}
		n := len(args)
		fmt.Fprintf(&values, "($%d,$%d,$%d,$%d,$%d,$%d)", n+1, n+2, n+3, n+4, n+5, n+6)
		args = append(args, e.SubscriptionID, e.Key, e.At, e.Type, e.Actor, detail)
	}
	var inserted []string
	if err := sqlx.SelectContext(ctx, tx, &inserted, `
		INSERT INTO events (subscription_id, dedup_key, at, type, actor, detail)
		VALUES `+values.String()+` ON CONFLICT (dedup_key) DO NOTHING RETURNING dedup_key`, args...); err != nil {
		return fmt.Errorf("insert events %s…: %w", events[0].Key, err)
	}
	for _, e := range events {
		if slices.Contains(inserted, e.Key) {
			continue
		}
		if err := requireSameEvent(ctx, tx, e); err != nil {
			return err
		}
	}
	return nil
}

// insertEvent adds a timeline entry. strict (a workflow transition): an entry
// under the same key must be the same entry, else the write fails; otherwise
// (entries written outside the workflow) the first one stands.
func insertEvent(ctx context.Context, tx sqlx.ExtContext, e domain.Event, strict bool) error {
	detail, err := jsonObject(e.Detail)
	if err != nil {
		return err
	}
	res, err := tx.ExecContext(ctx, `
		INSERT INTO events (subscription_id, dedup_key, at, type, actor, detail)
		VALUES ($1,$2,$3,$4,$5,$6) ON CONFLICT (dedup_key) DO NOTHING`,
		e.SubscriptionID, e.Key, e.At, e.Type, e.Actor, detail)
	if err != nil {
		return fmt.Errorf("insert event %s: %w", e.Key, err)
	}
	if n, _ := res.RowsAffected(); n == 1 || !strict {
		return nil
	}
	return requireSameEvent(ctx, tx, e)
}

// requireSameEvent: the entry already under e's key must be e (same type and
// actor), else the write is a conflict.
func requireSameEvent(ctx context.Context, tx sqlx.ExtContext, e domain.Event) error {
	var same bool
	if err := sqlx.GetContext(ctx, tx, &same, `
		SELECT type = $2 AND actor = $3 FROM events WHERE dedup_key = $1`,
		e.Key, e.Type, e.Actor); err != nil {
		return fmt.Errorf("read event %s: %w", e.Key, err)
	}
	if !same {
		return fmt.Errorf("event %s: %w", e.Key, ErrConflict)
	}
	return nil
}

// insertLedger adds a ledger line stamped with the subscription's billing
// account as the row has it (the change's snapshot is already written); a
// line whose id exists must be the same line, else the write fails. It
// reports whether the line is new.
func insertLedger(ctx context.Context, tx sqlx.ExtContext, subscriptionID string, l domain.LedgerEntry) (bool, error) {
	res, err := tx.ExecContext(ctx, `
		INSERT INTO ledger (id, subscription_id, term_number, kind, amount_minor, currency, period_start, period_end, created_at,
			billing_account_id)
		VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9, (SELECT billing_account_id FROM subscriptions WHERE id = $2))
		ON CONFLICT (id) DO NOTHING`,
		l.ID, subscriptionID, l.TermNumber, l.Kind, l.AmountMinor, l.Currency, l.PeriodStart, l.PeriodEnd, l.CreatedAt)
	if err != nil {
		return false, fmt.Errorf("insert ledger %s: %w", l.ID, err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return true, nil
	}
	var same bool
	if err := sqlx.GetContext(ctx, tx, &same, `
		SELECT subscription_id = $2 AND term_number = $3 AND kind = $4 AND amount_minor = $5 AND currency = $6
		       AND period_start = $7 AND period_end = $8
		FROM ledger WHERE id = $1`,
		l.ID, subscriptionID, l.TermNumber, l.Kind, l.AmountMinor, l.Currency, l.PeriodStart, l.PeriodEnd); err != nil {
		return false, fmt.Errorf("read ledger %s: %w", l.ID, err)
	}
	if !same {
		return false, fmt.Errorf("ledger %s exists with another amount, kind or period: %w", l.ID, ErrConflict)
	}
	return false, nil
}

// stampLedger gives a change's ledger lines that have no billing account the
// subscription's: lines written before (by a build without the column, or
// before the purchase placed the subscription in the same change).
func stampLedger(ctx context.Context, tx sqlx.ExtContext, subscriptionID string, ledger []domain.LedgerEntry) error {
	ids := make(pq.StringArray, 0, len(ledger))
	for _, l := range ledger {
		ids = append(ids, l.ID)
	}
	_, err := tx.ExecContext(ctx, `
		UPDATE ledger SET billing_account_id = (SELECT billing_account_id FROM subscriptions WHERE id = $1)
		WHERE id = ANY($2) AND billing_account_id IS NULL`, subscriptionID, ids)
	return wrap(err, "stamp ledger billing account")
}

// AppendEvent adds a timeline entry written outside the workflow (link
// resolution, refused attempts). Key makes it idempotent.
func (s *Store) AppendEvent(ctx context.Context, e domain.Event) error {
	return insertEvent(ctx, s.db, e, false)
}

// Subscription reads one subscription from the read model.
func (s *Store) Subscription(ctx context.Context, id string) (domain.Subscription, error) {
	var row subscriptionRow
	err := s.db.GetContext(ctx, &row, `SELECT seq, `+subscriptionColumns+` FROM subscriptions WHERE id = $1`, id)
	if err != nil {
		return domain.Subscription{}, notFound(err)
	}
	return row.subscription(), nil
}

// SubscriptionFilter selects a page of a partner's subscriptions.
type SubscriptionFilter struct {
	PartnerID  string
	CustomerID string
	Statuses   []domain.Status
	Limit      int
	// BeforeSeq continues after the last item of the previous page (0: first page).
	BeforeSeq int64
}

// statusArray is a status filter as a PostgreSQL text array (empty: any).
func statusArray(statuses []domain.Status) pq.StringArray {
	out := make(pq.StringArray, 0, len(statuses))
	for _, st := range statuses {
		out = append(out, string(st))
	}
	return out
}

// pageOf cuts rows fetched with limit+1 into a page and the next cursor.
func pageOf(rows []subscriptionRow, limit int) SubscriptionPage {
	page := SubscriptionPage{Items: make([]domain.Subscription, 0, len(rows))}
	if len(rows) > limit {
		rows = rows[:limit]
		page.NextSeq = rows[len(rows)-1].Seq
	}
	for _, r := range rows {
		page.Items = append(page.Items, r.subscription())
	}
	return page
}

// SubscriptionPage is one page of a list, newest first.
type SubscriptionPage struct {
	Items   []domain.Subscription
	NextSeq int64 // 0 when there is no further page
}

// ListSubscriptions pages by the insertion sequence, so rows inserted while a
// client pages appear before its cursor and never shift later pages.
func (s *Store) ListSubscriptions(ctx context.Context, f SubscriptionFilter) (SubscriptionPage, error) {
	if f.Limit <= 0 {
		f.Limit = 50
	}
	statuses := statusArray(f.Statuses)
	var rows []subscriptionRow
	err := s.db.SelectContext(ctx, &rows, `
		SELECT seq, `+subscriptionColumns+` FROM subscriptions
		WHERE partner_id = $1
		  AND ($2 = '' OR customer_id = $2)
		  AND (cardinality($3::text[]) = 0 OR status = ANY($3))
		  AND ($4::bigint = 0 OR seq < $4) -- seq is bigserial; untyped, $4 would be int4
		ORDER BY seq DESC LIMIT $5`, f.PartnerID, f.CustomerID, statuses, f.BeforeSeq, f.Limit+1)
	if err != nil {
		return SubscriptionPage{}, fmt.Errorf("list subscriptions: %w", err)
	}
	return pageOf(rows, f.Limit), nil
}

// ResolvedCode is what an unexpired authorization code leads to: its
// subscription, the subscription's customer and partner, and where it is
// placed — all a publisher's resolve answers.
type ResolvedCode struct {
	Subscription domain.Subscription
	Customer     Customer
	Partner      Partner
	Placement    Placement
}

// ResolveCode reads, in one statement, the subscription an unexpired
// authorization code was issued for, with its customer, partner and
// placement (as Placements reads it).
func (s *Store) ResolveCode(ctx context.Context, codeHash []byte, now time.Time) (ResolvedCode, error) {
	var row struct {
		subscriptionRow
		CustomerName      string    `db:"customer_name"`
		CustomerDomain    *string   `db:"customer_domain"`
		CustomerCreatedAt time.Time `db:"customer_created_at"`
		PartnerName       string    `db:"partner_name"`
		SiteID            *string   `db:"placed_site_id"`
		SiteName          *string   `db:"placed_site_name"`
		SiteURL           *string   `db:"placed_site_url"`
		SetupInstructions *string   `db:"setup_instructions"`
	}
	err := s.db.GetContext(ctx, &row, `
		SELECT s.seq, `+subscriptionColumnsOf("s")+`,
			c.name AS customer_name, c.domain AS customer_domain, c.created_at AS customer_created_at,
			pa.name AS partner_name, cs.id AS placed_site_id, cs.name AS placed_site_name, cs.url AS placed_site_url,
			o.setup_instructions
		FROM authorization_codes a
		JOIN subscriptions s ON s.id = a.subscription_id
		JOIN customers c ON c.partner_id = s.partner_id AND c.id = s.customer_id
		JOIN partners pa ON pa.id = s.partner_id
		JOIN offers o ON o.id = s.offer_id
		LEFT JOIN subscriptions parent ON parent.id = s.parent_subscription_id
		LEFT JOIN customer_sites cs ON cs.id = COALESCE(s.site_id, parent.site_id)
		WHERE a.code_hash = $1 AND a.expires_at > $2`, codeHash, now)
	if err != nil {
		return ResolvedCode{}, notFound(err)
	}
	sub := row.subscription()
	return ResolvedCode{
		Subscription: sub,
		Customer: Customer{PartnerID: sub.PartnerID, ID: sub.CustomerID, Name: row.CustomerName,
			Domain: row.CustomerDomain, CreatedAt: row.CustomerCreatedAt.UTC()},
		Partner: Partner{ID: sub.PartnerID, Name: row.PartnerName},
		Placement: Placement{SubscriptionID: sub.ID, BillingAccountID: sub.BillingAccountID, SiteID: row.SiteID,
			SiteName: row.SiteName, SiteURL: row.SiteURL, SetupInstructions: row.SetupInstructions},
	}, nil
}

// Events lists a subscription's timeline, oldest first.
func (s *Store) Events(ctx context.Context, subscriptionID string) ([]domain.Event, error) {
	var rows []struct {
		domain.Event
		DetailJSON []byte `db:"detail"`
	}
	if err := s.db.SelectContext(ctx, &rows, `
		SELECT id, subscription_id, dedup_key, at, type, actor, detail FROM events
		WHERE subscription_id = $1 ORDER BY id`, subscriptionID); err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	events := make([]domain.Event, 0, len(rows))
	for _, r := range rows {
		e := r.Event
		e.At = e.At.UTC()
		if err := json.Unmarshal(r.DetailJSON, &e.Detail); err != nil {
			return nil, fmt.Errorf("event %d detail: %w", e.ID, err)
		}
		events = append(events, e)
	}
	return events, nil
}

// Ledger lists a subscription's billing lines and their balance.
func (s *Store) Ledger(ctx context.Context, subscriptionID string) ([]domain.LedgerEntry, int64, error) {
	return ledgerOf(ctx, s.db, subscriptionID)
}

func ledgerOf(ctx context.Context, q sqlx.QueryerContext, subscriptionID string) ([]domain.LedgerEntry, int64, error) {
	entries := []domain.LedgerEntry{}
	if err := sqlx.SelectContext(ctx, q, &entries, `
		SELECT id, subscription_id, term_number, kind, amount_minor, currency, period_start, period_end, created_at
		FROM ledger WHERE subscription_id = $1 ORDER BY created_at, id`, subscriptionID); err != nil {
		return nil, 0, fmt.Errorf("list ledger: %w", err)
	}
	var balance int64
	for i := range entries {
		e := &entries[i]
		e.PeriodStart, e.PeriodEnd, e.CreatedAt = e.PeriodStart.UTC(), e.PeriodEnd.UTC(), e.CreatedAt.UTC()
		balance += e.AmountMinor
	}
	return entries, balance, nil
}

// jsonObject encodes a detail map, {} when empty. JSON goes to PostgreSQL as
// text: the connection sends []byte parameters in binary format (see
// Open), which jsonb reads as its own binary encoding.
func jsonObject(m map[string]any) (string, error) {
	if len(m) == 0 {
		return "{}", nil
	}
	raw, err := json.Marshal(m)
	return string(raw), err
}
