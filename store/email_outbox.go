package store

// The email outbox: emails to customer contacts are queued by the same
// transaction as the change that causes them (a workflow transition, a
// contact change, a billing-account move) and sent by the worker's email
// dispatcher. Row ids derive from the cause and the recipient, inserted with
// ON CONFLICT DO NOTHING, so a retried transition queues nothing twice; the
// Message-ID derives from the row id, so a retried send is the same message.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/partnerhub/fulfillment/domain"
	"github.com/partnerhub/fulfillment/email"
)

// emailID derives an outbox id from what caused the email and its recipient.
func emailID(kind, cause, recipient string) string {
	sum := sha256.Sum256([]byte(kind + "\x00" + cause + "\x00" + recipient))
	return "eml_" + hex.EncodeToString(sum[:16])
}

type queuedEmail struct {
	kind           string
	cause          string
	c              CustomerRef
	subscriptionID *string
	recipient      string
	data           email.Data
	sendAfter      time.Time
}

func queueEmail(ctx context.Context, tx sqlx.ExecerContext, q queuedEmail) error {
	q.data.Recipient = q.recipient
	data, err := json.Marshal(q.data)
	if err != nil {
		return err
	}
	if q.sendAfter.IsZero() {
		q.sendAfter = time.Now()
	}
	_, err = tx.ExecContext(ctx, `
		INSERT INTO email_outbox (id, kind, partner_id, customer_id, subscription_id, recipient, data, send_after, next_attempt_at)
		VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$8) ON CONFLICT (id) DO NOTHING`,
		emailID(q.kind, q.cause, q.recipient), q.kind, q.c.PartnerID, q.c.CustomerID, q.subscriptionID, q.recipient, string(data), q.sendAfter) // JSON as text: see jsonObject
	return wrap(err, "queue %s email", q.kind)
}

// names reads the customer's and partner's display names.
func names(ctx context.Context, q sqlx.QueryerContext, c CustomerRef) (customer, partner string, err error) {
	var row struct {
		Customer string `db:"customer"`
		Partner  string `db:"partner"`
	}
	err = sqlx.GetContext(ctx, q, &row, `
		SELECT c.name AS customer, p.name AS partner FROM customers c JOIN partners p ON p.id = c.partner_id
		WHERE c.partner_id = $1 AND c.id = $2`, c.PartnerID, c.CustomerID)
	return row.Customer, row.Partner, wrap(notFound(err), "names of customer %s", c.CustomerID)
}

func enqueueWelcome(ctx context.Context, tx *sqlx.Tx, k Contact) error {
	c := CustomerRef{PartnerID: k.PartnerID, CustomerID: k.CustomerID}
	customer, partner, err := names(ctx, tx, c)
	if err != nil {
		return err
	}
	return queueEmail(ctx, tx, queuedEmail{
		kind: email.KindWelcome, cause: "contact:" + k.ID, c: c, recipient: k.Email,
		data: email.Data{CustomerName: customer, PartnerName: partner, Primary: k.Primary, Roles: k.Roles},
	})
}

// subscriptionData describes a subscription for a template.
func subscriptionData(ctx context.Context, q sqlx.QueryerContext, sub domain.Subscription) (email.Data, error) {
	c := CustomerRef{PartnerID: sub.PartnerID, CustomerID: sub.CustomerID}
	customer, partner, err := names(ctx, q, c)
	if err != nil {
		return email.Data{}, err
	}
	// The catalog names the offer and plan; their ids stand in should a row be
	// missing, so an email never holds a transition up.
	row := struct {
		Offer string `db:"offer"`
		Plan  string `db:"plan"`
	}{sub.OfferID, sub.PlanID}
	if err := sqlx.GetContext(ctx, q, &row, `
		SELECT o.name AS offer, p.name AS plan FROM offers o JOIN plans p ON p.offer_id = o.id
		WHERE o.id = $1 AND p.id = $2`, sub.OfferID, sub.PlanID); err != nil && !errors.Is(notFound(err), ErrNotFound) {
		return email.Data{}, wrap(err, "offer %s plan %s", sub.OfferID, sub.PlanID)
	}
	d := email.Data{
		CustomerName: customer, PartnerName: partner, SubscriptionID: sub.ID, OfferName: row.Offer, PlanName: row.Plan,
		Quantity: sub.Quantity, EntitlementNumber: sub.EntitlementNumber, Status: string(sub.Status),
		TermNumber: sub.TermNumber, TermEnd: sub.TermEnd, AutoRenew: sub.AutoRenew,
	}
	if sub.Nickname != nil {
		d.Nickname = *sub.Nickname
	}
	return d, nil
}

// recipients are the customer's live contacts, all or those with role.
func recipients(ctx context.Context, q sqlx.QueryerContext, c CustomerRef, role string) ([]string, error) {
	list, err := contacts(ctx, q, c)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, k := range list {
		if role == "" || slices.Contains(k.Roles, role) {
			out = append(out, k.Email)
		}
	}
	return out, nil
}

// applyCustomerSide is SaveChange's one call into the customer side, inside
// its transaction: it places a new subscription on the customer's default
// billing account, records the site a confirmed fulfillment names, and queues
// the emails the change's events cause. Every write is keyed, so a retried
// transition restates nothing twice. placedOn is the billing account a
// purchase was placed on now ("" for any other change, or a retried one).
func applyCustomerSide(ctx context.Context, tx *sqlx.Tx, c domain.Change) (placedOn string, err error) {
	sub := c.Subscription
	ref := CustomerRef{PartnerID: sub.PartnerID, CustomerID: sub.CustomerID}
	for _, e := range c.Events {
		switch e.Type {
		case domain.EventPurchased:
			if placedOn, err = placeOnDefaultAccount(ctx, tx, ref, sub.ID); err != nil {
				return "", err
			}
		case domain.EventFulfillmentConfirmed:
			if sub.SiteURL != nil {
				if err := placeOnSite(ctx, tx, ref, sub.ID, *sub.SiteURL); err != nil {
					return "", err
				}
			}
		case domain.EventBillingAccountChanged:
			if err := customerSideEvent(ctx, tx, ref, "subscription_transferred", e); err != nil {
				return "", err
			}
		case domain.EventSiteChosen:
			if err := customerSideEvent(ctx, tx, ref, domain.EventSiteChosen, e); err != nil {
				return "", err
			}
		}
	}
	return placedOn, enqueueEmails(ctx, tx, c)
}

// enqueueEmails derives the customer emails from a transition's events.
func enqueueEmails(ctx context.Context, tx *sqlx.Tx, c domain.Change) error {
	sub := c.Subscription
	ref := CustomerRef{PartnerID: sub.PartnerID, CustomerID: sub.CustomerID}
	for _, e := range c.Events {
		var (
			kind, role string
			sendAfter  time.Time
		)
		switch {
		case e.Type == domain.EventPurchased:
			kind = email.KindOrderPlaced
		case (e.Type == domain.EventBillingStarted || e.Type == domain.EventRenewed) && sub.TermEnd != nil && sub.TermStart != nil:
			kind, role = email.KindRenewalReminder, RoleTechnical
		case e.Type == EventBillingAccountChanged:
			kind = email.KindBillingAccountChanged
		case e.Type == domain.EventSuspended:
			kind = email.KindPaymentFailed
		case e.Type == string(domain.StatusDeactivated) || e.Type == string(domain.StatusExpired) || e.Type == string(domain.StatusUnsubscribed):
			if e.Detail["reason"] == "parent_ended" && sub.ParentSubscriptionID != nil {
				var parent string
				if err := tx.GetContext(ctx, &parent, `SELECT status FROM subscriptions WHERE id = $1`, *sub.ParentSubscriptionID); err != nil {
					return wrap(notFound(err), "parent of %s", sub.ID)
				}
				if parent == string(domain.StatusDeactivated) || parent == string(domain.StatusExpired) {
					continue // the parent's own email lists it
				}
			}
			kind = email.KindSubscriptionEnded
		default:
			continue
		}
		to, err := recipients(ctx, tx, ref, role)
		if err != nil {
			return err
		}
		if len(to) == 0 {
			continue
		}
		if kind == email.KindRenewalReminder {
			if sendAfter, err = reminderTime(ctx, tx, sub); err != nil {
				return err
			}
		}
		d, err := subscriptionData(ctx, tx, sub)
		if err != nil {
			return err
		}
		switch kind {
		case email.KindOrderPlaced:
			d.NeedsSetup = sub.Status == domain.StatusPendingFulfillment && !sub.FulfillmentConfirmed
		case email.KindBillingAccountChanged:
			if d.FromAccount, d.ToAccount, err = accountNames(ctx, tx, e.Detail); err != nil {
				return err
			}
		case email.KindSubscriptionEnded:
			if d.Linked, err = endingWith(ctx, tx, sub); err != nil {
				return err
			}
		}
		for _, r := range to {
			if err := queueEmail(ctx, tx, queuedEmail{
				kind: kind, cause: e.Key, c: ref, subscriptionID: &sub.ID, recipient: r, data: d, sendAfter: sendAfter,
			}); err != nil {
				return err
			}
		}
	}
	return nil
}

// reminderTime is when a term's renewal reminder is due: term end minus the
// plan's lead time (P7D when the plan is missing), never before the term started.
func reminderTime(ctx context.Context, tx *sqlx.Tx, sub domain.Subscription) (time.Time, error) {
	lead := "P7D"
	err := tx.GetContext(ctx, &lead, `SELECT renewal_reminder_lead FROM plans WHERE offer_id = $1 AND id = $2`, sub.OfferID, sub.PlanID)
	if err != nil && !errors.Is(notFound(err), ErrNotFound) {
		return time.Time{}, wrap(err, "plan lead time")
	}
	p, err := domain.ParsePeriod(lead)
	if err != nil {
		return time.Time{}, fmt.Errorf("plan %s/%s renewal_reminder_lead: %w", sub.OfferID, sub.PlanID, err)
	}
	at := sub.TermEnd.Add(-p.AddTo(*sub.TermStart).Sub(*sub.TermStart))
	if at.Before(*sub.TermStart) {
		at = *sub.TermStart
	}
	return at, nil
}

// EventBillingAccountChanged is the timeline event of a move to another
// billing account, detail {from_billing_account_id, to_billing_account_id}.
const EventBillingAccountChanged = domain.EventBillingAccountChanged

// accountNames reads the names of a move's billing accounts.
func accountNames(ctx context.Context, tx *sqlx.Tx, detail map[string]any) (from, to string, err error) {
	name := func(key string) (string, error) {
		id, _ := detail[key].(string)
		if id == "" {
			return "", nil
		}
		var n string
		err := tx.GetContext(ctx, &n, `SELECT name FROM billing_accounts WHERE id = $1`, id)
		return n, wrap(notFound(err), "billing account %s", id)
	}
	if from, err = name("from_billing_account_id"); err != nil {
		return "", "", err
	}
	to, err = name("to_billing_account_id")
	return from, to, err
}

// endingWith lists the linked subscriptions (recursively) that are not
// terminal yet: the cascade of sub's end is about to end them.
func endingWith(ctx context.Context, tx *sqlx.Tx, sub domain.Subscription) ([]email.LinkedSubscription, error) {
	var rows []struct {
		ID       string  `db:"id"`
		Offer    string  `db:"offer"`
		Nickname *string `db:"nickname"`
	}
	err := tx.SelectContext(ctx, &rows, `
		WITH RECURSIVE tree(id) AS (
			SELECT unnest($1::text[])
			UNION
			SELECT unnest(s.linked_subscription_ids) FROM subscriptions s JOIN tree ON s.id = tree.id
		)
		SELECT s.id, o.name AS offer, s.nickname FROM tree JOIN subscriptions s ON s.id = tree.id
		JOIN offers o ON o.id = s.offer_id
		WHERE s.status IN ('pending_fulfillment', 'active') ORDER BY s.seq`,
		append(pq.StringArray{}, sub.LinkedSubscriptionIDs...))
	if err != nil {
		return nil, wrap(err, "linked subscriptions of %s", sub.ID)
	}
	out := make([]email.LinkedSubscription, 0, len(rows))
	for _, r := range rows {
		l := email.LinkedSubscription{ID: r.ID, OfferName: r.Offer}
		if r.Nickname != nil {
			l.Nickname = *r.Nickname
		}
		out = append(out, l)
	}
	return out, nil
}

// PendingEmail is a queued email due for sending.
type PendingEmail struct {
	ID             string  `db:"id"`
	Kind           string  `db:"kind"`
	PartnerID      string  `db:"partner_id"`
	CustomerID     string  `db:"customer_id"`
	SubscriptionID *string `db:"subscription_id"`
	Recipient      string  `db:"recipient"`
	Attempts       int     `db:"attempts"`
	DataJSON       []byte  `db:"data"`
}

// Data decodes what the template shows.
func (p PendingEmail) Data() (email.Data, error) {
	var d email.Data
	err := json.Unmarshal(p.DataJSON, &d)
	return d, wrap(err, "email %s data", p.ID)
}

// ClaimDueEmails leases up to limit due emails for lease, so several
// dispatchers never send the same one at the same time.
func (s *Store) ClaimDueEmails(ctx context.Context, limit int, lease time.Duration) ([]PendingEmail, error) {
	var due []PendingEmail
	err := s.tx(ctx, func(tx *sqlx.Tx) error {
		if err := tx.SelectContext(ctx, &due, `
			SELECT id, kind, partner_id, customer_id, subscription_id, recipient, attempts, data FROM email_outbox
			WHERE sent_at IS NULL AND skipped_at IS NULL AND next_attempt_at <= now()
			ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED`, limit); err != nil {
			return err
		}
		for _, e := range due {
			if _, err := tx.ExecContext(ctx, `
				UPDATE email_outbox SET next_attempt_at = now() + make_interval(secs => $2) WHERE id = $1`, e.ID, lease.Seconds()); err != nil {
				return err
			}
		}
		return nil
	})
	return due, wrap(err, "claim due emails")
}

// MarkEmailSent records a successful hand-over to the SMTP server.
func (s *Store) MarkEmailSent(ctx context.Context, id string) error {
	_, err := s.db.ExecContext(ctx, `
		UPDATE email_outbox SET sent_at = now(), attempts = attempts + 1, last_error = NULL WHERE id = $1`, id)
	return wrap(err, "mark email %s sent", id)
}

// MarkEmailSkipped records an email that no longer applies (e.g. a renewal
// reminder for a subscription that will not renew).
func (s *Store) MarkEmailSkipped(ctx context.Context, id, reason string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE email_outbox SET skipped_at = now(), last_error = $2 WHERE id = $1`, id, reason)
	return wrap(err, "mark email %s skipped", id)
}

// MarkEmailFailed schedules the next attempt.
func (s *Store) MarkEmailFailed(ctx context.Context, id string, next time.Time, reason string) error {
	_, err := s.db.ExecContext(ctx, `
		UPDATE email_outbox SET attempts = attempts + 1, next_attempt_at = $2, last_error = $3 WHERE id = $1`, id, next, reason)
	return wrap(err, "mark email %s failed", id)
}

// OutboxEmail is a queued or sent email, for tests and operators.
type OutboxEmail struct {
	ID        string     `db:"id"`
	Kind      string     `db:"kind"`
	Recipient string     `db:"recipient"`
	SendAfter time.Time  `db:"send_after"`
	SentAt    *time.Time `db:"sent_at"`
	SkippedAt *time.Time `db:"skipped_at"`
	Attempts  int        `db:"attempts"`
}

// CustomerEmails lists a customer's emails, oldest first.
func (s *Store) CustomerEmails(ctx context.Context, c CustomerRef) ([]OutboxEmail, error) {
	out := []OutboxEmail{}
	err := s.db.SelectContext(ctx, &out, `
		SELECT id, kind, recipient, send_after, sent_at, skipped_at, attempts FROM email_outbox
		WHERE partner_id = $1 AND customer_id = $2 ORDER BY created_at, id`, c.PartnerID, c.CustomerID)
	return out, wrap(err, "emails of %s", c.CustomerID)
}

// RenewalStillDue tells whether a renewal reminder queued for term still
// applies: the subscription is active, renews automatically, and is still
// in that term.
func (s *Store) RenewalStillDue(ctx context.Context, subscriptionID string, term int) (bool, error) {
	sub, err := s.Subscription(ctx, subscriptionID)
	if err != nil {
		return false, fmt.Errorf("renewal check: %w", err)
	}
	return sub.Status == domain.StatusActive && sub.AutoRenew && sub.TermNumber == term, nil
}
