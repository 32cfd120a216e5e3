package store

// The portal's sign-in: one-time links sent by email to customer contacts and
// partner agents, and the sessions they open. Tokens are never stored, only
// their SHA-256; a link works once, until it expires.

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/partnerhub/fulfillment/email"
)

// PortalIdentity is who a link or session names: a customer contact
// (CustomerID, ContactID) or a partner agent (AgentID).
type PortalIdentity struct {
	PartnerID  string  `db:"partner_id"`
	CustomerID *string `db:"customer_id"`
	ContactID  *string `db:"contact_id"`
	AgentID    *string `db:"agent_id"`
	Email      string  `db:"email"`
}

// IsAgent tells an agent from a customer contact.
func (p PortalIdentity) IsAgent() bool { return p.AgentID != nil }

// SignInLink is a link just created; its token derives from ID.
type SignInLink struct {
	ID        string
	Identity  PortalIdentity
	ExpiresAt time.Time
}

// maxOpenLinks bounds the links one address may have asked for within a
// link's lifetime, so the sign-in form cannot flood someone's inbox.
const maxOpenLinks = 5

// TokenHash is how link and session tokens are looked up.
func TokenHash(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// PortalIdentities finds the contacts and agents an email address belongs to.
func (s *Store) PortalIdentities(ctx context.Context, address string) ([]PortalIdentity, error) {
	return portalIdentities(ctx, s.db, address)
}

func portalIdentities(ctx context.Context, q sqlx.QueryerContext, address string) ([]PortalIdentity, error) {
	var out []PortalIdentity
	err := sqlx.SelectContext(ctx, q, &out, `
		SELECT partner_id, customer_id, id AS contact_id, NULL::text AS agent_id, email FROM customer_contacts
		WHERE lower(email) = lower($1) AND removed_at IS NULL
		UNION ALL
		SELECT partner_id, NULL, NULL, id, email FROM agents WHERE lower(email) = lower($1)
		ORDER BY 1, 2, 3, 4`, address)
	return out, wrap(err, "portal identities")
}

// RequestSignIn creates a one-time link for every contact and agent with the
// address and queues an email with each (kind sign_in). It creates none for
// an unknown address, or when the address asked too often lately; the
// caller's answer is the same either way.
func (s *Store) RequestSignIn(ctx context.Context, address string, hashOf func(linkID string) []byte, ttl time.Duration) ([]SignInLink, error) {
	address = strings.TrimSpace(address)
	if _, err := NormalizeEmail(address); err != nil {
		return nil, nil
	}
	var links []SignInLink
	err := s.tx(ctx, func(tx *sqlx.Tx) error {
		var recent int
		if err := tx.GetContext(ctx, &recent, `
			SELECT count(*) FROM portal_sign_in_links WHERE lower(email) = lower($1) AND created_at > now() - make_interval(secs => $2)`,
			address, ttl.Seconds()); err != nil {
			return wrap(err, "count sign-in links")
		}
		if recent >= maxOpenLinks {
			return nil
		}
		ids, err := portalIdentities(ctx, tx, address)
		if err != nil {
			return err
		}
		for _, id := range ids {
			link, err := insertLink(ctx, tx, id, hashOf, ttl)
			if err != nil {
				return err
			}
			if err := queueSignInEmail(ctx, tx, link); err != nil {
				return err
			}
			links = append(links, link)
		}
		return nil
	})
	return links, err
}

func insertLink(ctx context.Context, tx sqlx.QueryerContext, id PortalIdentity, hashOf func(string) []byte, ttl time.Duration) (SignInLink, error) {
	link := SignInLink{ID: "sil_" + uuid.NewString(), Identity: id}
	err := sqlx.GetContext(ctx, tx, &link.ExpiresAt, `
		INSERT INTO portal_sign_in_links (id, token_hash, email, partner_id, customer_id, contact_id, agent_id, expires_at)
		VALUES ($1,$2,$3,$4,$5,$6,$7, now() + make_interval(secs => $8)) RETURNING expires_at`,
		link.ID, hashOf(link.ID), id.Email, id.PartnerID, id.CustomerID, id.ContactID, id.AgentID, ttl.Seconds())
	link.ExpiresAt = link.ExpiresAt.UTC()
	return link, wrap(err, "insert sign-in link")
}

func queueSignInEmail(ctx context.Context, tx *sqlx.Tx, link SignInLink) error {
	id := link.Identity
	d := email.Data{SignInLinkID: link.ID, SignInMinutes: int(time.Until(link.ExpiresAt).Round(time.Minute).Minutes())}
	q := queuedEmail{kind: email.KindSignIn, cause: link.ID, recipient: id.Email, c: CustomerRef{PartnerID: id.PartnerID}}
	if id.CustomerID != nil {
		q.c.CustomerID = *id.CustomerID
		customer, partner, err := names(ctx, tx, q.c)
		if err != nil {
			return err
		}
		d.CustomerName, d.PartnerName = customer, partner
	} else {
		p, err := partner(ctx, tx, id.PartnerID)
		if err != nil {
			return err
		}
		d.PartnerName, d.Agent = p.Name, true
	}
	q.data = d
	return queueEmail(ctx, tx, q)
}

func partner(ctx context.Context, q sqlx.QueryerContext, id string) (Partner, error) {
	var p Partner
	err := sqlx.GetContext(ctx, q, &p, `SELECT id, name FROM partners WHERE id = $1`, id)
	return p, wrap(notFound(err), "partner %s", id)
}

// MintSignInLink creates a link for one identity without emailing it
// (`fulfillment dev` prints links for the demo seed).
func (s *Store) MintSignInLink(ctx context.Context, id PortalIdentity, hashOf func(string) []byte, ttl time.Duration) (SignInLink, error) {
	return insertLink(ctx, s.db, id, hashOf, ttl)
}

// ErrLinkInvalid is a sign-in token that is unknown, used or expired.
var ErrLinkInvalid = errors.New("the sign-in link is unknown, used or expired")

// UseSignInLink spends a link (once) and opens a session under sessionHash,
// valid for sessionTTL. The contact must still be a contact, and the agent
// still have the address.
func (s *Store) UseSignInLink(ctx context.Context, tokenHash, sessionHash []byte, sessionTTL time.Duration) (PortalIdentity, error) {
	var id PortalIdentity
	err := s.tx(ctx, func(tx *sqlx.Tx) error {
		err := tx.GetContext(ctx, &id, `
			UPDATE portal_sign_in_links SET used_at = now()
			WHERE token_hash = $1 AND used_at IS NULL AND expires_at > now()
			RETURNING partner_id, customer_id, contact_id, agent_id, email`, tokenHash)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrLinkInvalid
		}
		if err != nil {
			return wrap(err, "use sign-in link")
		}
		if err := stillValid(ctx, tx, id); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `
			INSERT INTO portal_sessions (id_hash, partner_id, customer_id, contact_id, agent_id, email, expires_at)
			VALUES ($1,$2,$3,$4,$5,$6, now() + make_interval(secs => $7))`,
			sessionHash, id.PartnerID, id.CustomerID, id.ContactID, id.AgentID, id.Email, sessionTTL.Seconds())
		return wrap(err, "open session")
	})
	if errors.Is(err, ErrLinkInvalid) {
		// The link is spent even though no session opened: commit that apart.
		_, _ = s.db.ExecContext(ctx, `UPDATE portal_sign_in_links SET used_at = now() WHERE token_hash = $1 AND used_at IS NULL`, tokenHash)
	}
	return id, err
}

func stillValid(ctx context.Context, q sqlx.QueryerContext, id PortalIdentity) error {
	var ok bool
	var err error
	if id.AgentID != nil {
		err = sqlx.GetContext(ctx, q, &ok, `SELECT EXISTS (SELECT 1 FROM agents WHERE partner_id = $1 AND id = $2 AND lower(email) = lower($3))`,
			id.PartnerID, *id.AgentID, id.Email)
	} else {
		err = sqlx.GetContext(ctx, q, &ok, `SELECT EXISTS (SELECT 1 FROM customer_contacts WHERE id = $1 AND partner_id = $2 AND customer_id = $3 AND removed_at IS NULL)`,
			*id.ContactID, id.PartnerID, *id.CustomerID)
	}
	if err != nil {
		return wrap(err, "check portal identity")
	}
	if !ok {
		return ErrLinkInvalid
	}
	return nil
}

// PortalSession reads the live session under idHash; a removed contact's
// session ends with it (ErrNotFound).
func (s *Store) PortalSession(ctx context.Context, idHash []byte) (PortalIdentity, error) {
	var id PortalIdentity
	err := s.db.GetContext(ctx, &id, `
		SELECT partner_id, customer_id, contact_id, agent_id, email FROM portal_sessions
		WHERE id_hash = $1 AND expires_at > now()`, idHash)
	if err != nil {
		return id, notFound(err)
	}
	if err := stillValid(ctx, s.db, id); errors.Is(err, ErrLinkInvalid) {
		return id, ErrNotFound
	} else if err != nil {
		return id, err
	}
	return id, nil
}

// EndPortalSession signs out (and sweeps expired sessions and links).
func (s *Store) EndPortalSession(ctx context.Context, idHash []byte) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM portal_sessions WHERE id_hash = $1 OR expires_at < now() - interval '1 day'`, idHash)
	if err == nil {
		_, err = s.db.ExecContext(ctx, `DELETE FROM portal_sign_in_links WHERE expires_at < now() - interval '1 day'`)
	}
	return wrap(err, "end session")
}

// SetAgentEmail gives an agent the address it signs in to the portal with.
func (s *Store) SetAgentEmail(ctx context.Context, partnerID, agentID string, address *string) error {
	if address != nil {
		a, err := NormalizeEmail(*address)
		if err != nil {
			return err
		}
		address = &a
	}
	_, err := s.db.ExecContext(ctx, `UPDATE agents SET email = $3 WHERE partner_id = $1 AND id = $2`, partnerID, agentID, address)
	return wrap(err, "set email of agent %s/%s", partnerID, agentID)
}

// ContactByID reads a live contact of a customer.
func (s *Store) ContactByID(ctx context.Context, c CustomerRef, contactID string) (Contact, error) {
	var k Contact
	err := s.db.GetContext(ctx, &k, `SELECT `+contactColumns+` FROM customer_contacts
		WHERE id = $1 AND partner_id = $2 AND customer_id = $3 AND removed_at IS NULL`, contactID, c.PartnerID, c.CustomerID)
	return k, notFound(err)
}
