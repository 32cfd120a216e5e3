package store

// Customer contacts: the people at a customer who own its subscriptions.
// Every rule about them is enforced here, in one place, under a lock on the
// customer row: exactly one primary contact; the primary cannot leave or lose
// the role before handing it over; the last contact cannot be removed; every
// change lands on the customer's timeline with its actor. Contacts are
// changed by the customer's own contacts (portal) and, for the primary role,
// by an operator; a partner only assigns the first contact.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/mail"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// Contact roles.
const (
	RoleTechnical = "technical"
	RoleBilling   = "billing"
)

// Rule violations of contact changes; callers map them to their answers.
var (
	ErrInvalidEmail     = errors.New("not a valid email address")
	ErrInvalidRoles     = errors.New("roles must be one or both of technical and billing")
	ErrContactExists    = errors.New("a contact with this email already exists")
	ErrPrimaryContact   = errors.New("the primary contact must hand the primary role to another contact first")
	ErrLastContact      = errors.New("the last contact of a customer cannot be removed")
	ErrNotPrimary       = errors.New("only the primary contact may hand over the primary role")
	ErrCustomerHasOther = errors.New("the customer already has contacts; only they may add more")
)

// Contact is one person at a customer.
type Contact struct {
	ID         string         `db:"id" json:"id"`
	PartnerID  string         `db:"partner_id" json:"-"`
	CustomerID string         `db:"customer_id" json:"customer_id"`
	Email      string         `db:"email" json:"email"`
	Roles      pq.StringArray `db:"roles" json:"roles"`
	Primary    bool           `db:"is_primary" json:"primary"`
	CreatedAt  time.Time      `db:"created_at" json:"created_at"`
}

// CustomerRef names a customer within its partner.
type CustomerRef struct {
	PartnerID  string
	CustomerID string
}

// CustomerEvent is one entry of a customer's timeline.
type CustomerEvent struct {
	At     time.Time      `json:"at"`
	Type   string         `json:"type"`
	Actor  string         `json:"actor"`
	Detail map[string]any `json:"detail"`
}

const contactColumns = `id, partner_id, customer_id, email, roles, is_primary, created_at`

// NormalizeEmail checks an address and returns its canonical form (the bare
// address, domain lower-cased).
func NormalizeEmail(s string) (string, error) {
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != strings.TrimSpace(s) || len(s) > 254 {
		return "", ErrInvalidEmail
	}
	local, domain, _ := strings.Cut(a.Address, "@")
	return local + "@" + strings.ToLower(domain), nil
}

func checkRoles(roles []string) (pq.StringArray, error) {
	out := pq.StringArray{}
	for _, r := range roles {
		if r != RoleTechnical && r != RoleBilling {
			return nil, ErrInvalidRoles
		}
		if !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	if len(out) == 0 {
		return nil, ErrInvalidRoles
	}
	slices.Sort(out)
	return out, nil
}

// Contacts lists a customer's contacts, primary first, then oldest first.
func (s *Store) Contacts(ctx context.Context, c CustomerRef) ([]Contact, error) {
	return contacts(ctx, s.db, c)
}

func contacts(ctx context.Context, q sqlx.QueryerContext, c CustomerRef) ([]Contact, error) {
	list := []Contact{}
	err := sqlx.SelectContext(ctx, q, &list, `
		SELECT `+contactColumns+` FROM customer_contacts
		WHERE partner_id = $1 AND customer_id = $2 AND removed_at IS NULL
		ORDER BY is_primary DESC, seq`, c.PartnerID, c.CustomerID)
	for i := range list {
		list[i].CreatedAt = list[i].CreatedAt.UTC()
	}
	return list, wrap(err, "list contacts of %s", c.CustomerID)
}

// contactChange runs fn under a lock on the customer row, so concurrent
// changes to one customer's contacts see each other.
func (s *Store) contactChange(ctx context.Context, c CustomerRef, fn func(tx *sqlx.Tx) error) error {
	return s.tx(ctx, func(tx *sqlx.Tx) error {
		var one int
		if err := tx.GetContext(ctx, &one, `SELECT 1 FROM customers WHERE partner_id = $1 AND id = $2 FOR NO KEY UPDATE`,
			c.PartnerID, c.CustomerID); err != nil {
			return notFound(err)
		}
		return fn(tx)
	})
}

func liveContact(ctx context.Context, tx *sqlx.Tx, c CustomerRef, id string) (Contact, error) {
	var k Contact
	err := tx.GetContext(ctx, &k, `
		SELECT `+contactColumns+` FROM customer_contacts
		WHERE partner_id = $1 AND customer_id = $2 AND id = $3 AND removed_at IS NULL`, c.PartnerID, c.CustomerID, id)
	return k, notFound(err)
}

func insertContact(ctx context.Context, tx *sqlx.Tx, c CustomerRef, email string, roles pq.StringArray, primary bool) (Contact, error) {
	var k Contact
	err := tx.GetContext(ctx, &k, `
		INSERT INTO customer_contacts (id, partner_id, customer_id, email, roles, is_primary)
		VALUES ($1,$2,$3,$4,$5,$6) RETURNING `+contactColumns,
		"con_"+uuid.NewString(), c.PartnerID, c.CustomerID, email, roles, primary)
	var pqErr *pq.Error
	if errors.As(err, &pqErr) && pqErr.Code == "23505" {
		return k, ErrContactExists
	}
	k.CreatedAt = k.CreatedAt.UTC()
	return k, wrap(err, "insert contact")
}

func customerEvent(ctx context.Context, tx sqlx.ExecerContext, c CustomerRef, typ, actor string, detail map[string]any) error {
	d, err := jsonObject(detail)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `
		INSERT INTO customer_events (partner_id, customer_id, type, actor, detail) VALUES ($1,$2,$3,$4,$5)`,
		c.PartnerID, c.CustomerID, typ, actor, d)
	return wrap(err, "record customer event %s", typ)
}

// AssignFirstContact makes email the customer's first contact, primary, with
// both roles, and queues its welcome email. It is what a partner may do (on a
// purchase's customer_contact_email): when the customer has contacts already,
// naming one of them is a no-op and naming anyone else is ErrCustomerHasOther.
func (s *Store) AssignFirstContact(ctx context.Context, c CustomerRef, email, actor string) (Contact, bool, error) {
	email, err := NormalizeEmail(email)
	if err != nil {
		return Contact{}, false, err
	}
	var out Contact
	created := false
	err = s.contactChange(ctx, c, func(tx *sqlx.Tx) error {
		existing, err := contacts(ctx, tx, c)
		if err != nil {
			return err
		}
		for _, k := range existing {
			if strings.EqualFold(k.Email, email) {
				out = k
				return nil
			}
		}
		if len(existing) > 0 {
			return ErrCustomerHasOther
		}
		if out, err = insertContact(ctx, tx, c, email, pq.StringArray{RoleBilling, RoleTechnical}, true); err != nil {
			return err
		}
		created = true
		if err := customerEvent(ctx, tx, c, "contact_added", actor, map[string]any{
			"contact_id": out.ID, "email": out.Email, "roles": []string(out.Roles), "primary": true,
		}); err != nil {
			return err
		}
		return enqueueWelcome(ctx, tx, out)
	})
	return out, created, err
}

// ContactActor is a signed-in contact acting on its own customer's contacts.
type ContactActor struct {
	CustomerRef
	ContactID string
}

func (a ContactActor) String() string { return "contact:" + a.ContactID }

// asActor checks the actor is a live contact of the customer it claims.
func asActor(ctx context.Context, tx *sqlx.Tx, a ContactActor) (Contact, error) {
	return liveContact(ctx, tx, a.CustomerRef, a.ContactID)
}

// AddContact is a contact adding another contact to its customer; the new
// contact is welcomed by email.
func (s *Store) AddContact(ctx context.Context, a ContactActor, email string, roles []string) (Contact, error) {
	email, err := NormalizeEmail(email)
	if err != nil {
		return Contact{}, err
	}
	r, err := checkRoles(roles)
	if err != nil {
		return Contact{}, err
	}
	var out Contact
	err = s.contactChange(ctx, a.CustomerRef, func(tx *sqlx.Tx) error {
		if _, err := asActor(ctx, tx, a); err != nil {
			return err
		}
		if out, err = insertContact(ctx, tx, a.CustomerRef, email, r, false); err != nil {
			return err
		}
		if err := customerEvent(ctx, tx, a.CustomerRef, "contact_added", a.String(), map[string]any{
			"contact_id": out.ID, "email": out.Email, "roles": []string(out.Roles), "primary": false,
		}); err != nil {
			return err
		}
		return enqueueWelcome(ctx, tx, out)
	})
	return out, err
}

// SetContactRoles replaces a contact's roles.
func (s *Store) SetContactRoles(ctx context.Context, a ContactActor, contactID string, roles []string) (Contact, error) {
	r, err := checkRoles(roles)
	if err != nil {
		return Contact{}, err
	}
	var out Contact
	err = s.contactChange(ctx, a.CustomerRef, func(tx *sqlx.Tx) error {
		if _, err := asActor(ctx, tx, a); err != nil {
			return err
		}
		before, err := liveContact(ctx, tx, a.CustomerRef, contactID)
		if err != nil {
			return err
		}
		if err := tx.GetContext(ctx, &out, `
			UPDATE customer_contacts SET roles = $2 WHERE id = $1 RETURNING `+contactColumns, contactID, r); err != nil {
			return wrap(err, "set roles of %s", contactID)
		}
		return customerEvent(ctx, tx, a.CustomerRef, "contact_roles_changed", a.String(), map[string]any{
			"contact_id": contactID, "from": []string(before.Roles), "to": []string(out.Roles),
		})
	})
	out.CreatedAt = out.CreatedAt.UTC()
	return out, err
}

// HandOverPrimary moves the primary role from the acting primary contact to another contact.
func (s *Store) HandOverPrimary(ctx context.Context, a ContactActor, toContactID string) error {
	return s.contactChange(ctx, a.CustomerRef, func(tx *sqlx.Tx) error {
		me, err := asActor(ctx, tx, a)
		if err != nil {
			return err
		}
		if !me.Primary {
			return ErrNotPrimary
		}
		return movePrimary(ctx, tx, a.CustomerRef, me.ID, toContactID, a.String())
	})
}

func movePrimary(ctx context.Context, tx *sqlx.Tx, c CustomerRef, fromID, toID, actor string) error {
	to, err := liveContact(ctx, tx, c, toID)
	if err != nil {
		return err
	}
	if to.Primary {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `
		UPDATE customer_contacts SET is_primary = false
		WHERE partner_id = $1 AND customer_id = $2 AND is_primary AND removed_at IS NULL`, c.PartnerID, c.CustomerID); err != nil {
		return wrap(err, "clear primary")
	}
	if _, err := tx.ExecContext(ctx, `UPDATE customer_contacts SET is_primary = true WHERE id = $1`, toID); err != nil {
		return wrap(err, "set primary")
	}
	return customerEvent(ctx, tx, c, "primary_contact_changed", actor, map[string]any{
		"from_contact_id": fromID, "to_contact_id": toID, "email": to.Email,
	})
}

// RemoveContact takes a contact off its customer (a contact may remove
// itself); neither the primary nor the last contact can be removed.
func (s *Store) RemoveContact(ctx context.Context, a ContactActor, contactID string) error {
	return s.contactChange(ctx, a.CustomerRef, func(tx *sqlx.Tx) error {
		if _, err := asActor(ctx, tx, a); err != nil {
			return err
		}
		k, err := liveContact(ctx, tx, a.CustomerRef, contactID)
		if err != nil {
			return err
		}
		var live int
		if err := tx.GetContext(ctx, &live, `
			SELECT count(*) FROM customer_contacts WHERE partner_id = $1 AND customer_id = $2 AND removed_at IS NULL`,
			a.PartnerID, a.CustomerID); err != nil {
			return err
		}
		switch {
		case live <= 1:
			return ErrLastContact
		case k.Primary:
			return ErrPrimaryContact
		}
		if _, err := tx.ExecContext(ctx, `UPDATE customer_contacts SET removed_at = now() WHERE id = $1`, contactID); err != nil {
			return wrap(err, "remove contact %s", contactID)
		}
		return customerEvent(ctx, tx, a.CustomerRef, "contact_removed", a.String(), map[string]any{
			"contact_id": contactID, "email": k.Email,
		})
	})
}

// SetPrimaryByOperator reassigns the primary role to the contact with email
// (when the primary contact has left the company). It is the operator's
// command-line path, recorded on the timeline and in the audit log.
func (s *Store) SetPrimaryByOperator(ctx context.Context, c CustomerRef, email, operator, reason string) (Contact, error) {
	email, err := NormalizeEmail(email)
	if err != nil {
		return Contact{}, err
	}
	var to Contact
	actor := "operator:" + operator
	err = s.contactChange(ctx, c, func(tx *sqlx.Tx) error {
		if err := tx.GetContext(ctx, &to, `
			SELECT `+contactColumns+` FROM customer_contacts
			WHERE partner_id = $1 AND customer_id = $2 AND lower(email) = lower($3) AND removed_at IS NULL`,
			c.PartnerID, c.CustomerID, email); err != nil {
			return notFound(err)
		}
		var from string
		_ = tx.GetContext(ctx, &from, `
			SELECT id FROM customer_contacts WHERE partner_id = $1 AND customer_id = $2 AND is_primary AND removed_at IS NULL`,
			c.PartnerID, c.CustomerID)
		if err := movePrimary(ctx, tx, c, from, to.ID, actor); err != nil {
			return err
		}
		d, _ := jsonObject(map[string]any{"partner_id": c.PartnerID, "customer_id": c.CustomerID,
			"from_contact_id": from, "to_contact_id": to.ID, "reason": reason})
		_, err := tx.ExecContext(ctx, `
			INSERT INTO audit_log (actor, tenant, action, outcome, detail) VALUES ($1,$2,$3,$4,$5)`,
			actor, c.PartnerID, "contacts.set_primary", "ok", d)
		return wrap(err, "audit set-primary")
	})
	to.Primary = err == nil
	to.CreatedAt = to.CreatedAt.UTC()
	return to, err
}

// CustomerEvents lists a customer's timeline, oldest first.
func (s *Store) CustomerEvents(ctx context.Context, c CustomerRef) ([]CustomerEvent, error) {
	var rows []struct {
		At     time.Time `db:"at"`
		Type   string    `db:"type"`
		Actor  string    `db:"actor"`
		Detail []byte    `db:"detail"`
	}
	if err := s.db.SelectContext(ctx, &rows, `
		SELECT at, type, actor, detail FROM customer_events WHERE partner_id = $1 AND customer_id = $2 ORDER BY id`,
		c.PartnerID, c.CustomerID); err != nil {
		return nil, fmt.Errorf("list customer events: %w", err)
	}
	out := make([]CustomerEvent, 0, len(rows))
	for _, r := range rows {
		e := CustomerEvent{At: r.At.UTC(), Type: r.Type, Actor: r.Actor}
		if err := json.Unmarshal(r.Detail, &e.Detail); err != nil {
			return nil, fmt.Errorf("customer event detail: %w", err)
		}
		out = append(out, e)
	}
	return out, nil
}
