package store

// The partner's billing system: its signing secrets (sealed, several active
// while it rotates) and the billing events it sent, by event_id.

import (
	"context"
	"time"
)

var billingEvents = messageTable{"billing_events", "partner_id", "event_id", ""}

// AddBillingSecret stores a sealed signing secret of a partner's billing
// system; adding the same secret again changes nothing.
func (s *Store) AddBillingSecret(ctx context.Context, partnerID, fingerprint string, ciphertext []byte) error {
	_, err := s.db.ExecContext(ctx, `
		INSERT INTO partner_billing_secrets (partner_id, fingerprint, ciphertext) VALUES ($1,$2,$3)
		ON CONFLICT (partner_id, fingerprint) DO NOTHING`, partnerID, fingerprint, ciphertext)
	return wrap(err, "add billing secret of partner %s", partnerID)
}

// ExpireBillingSecrets ends every billing secret of a partner except keep at at.
func (s *Store) ExpireBillingSecrets(ctx context.Context, partnerID, keep string, at time.Time) error {
	_, err := s.db.ExecContext(ctx, `
		UPDATE partner_billing_secrets SET expires_at = $3
		WHERE partner_id = $1 AND fingerprint <> $2 AND (expires_at IS NULL OR expires_at > $3)`, partnerID, keep, at)
	return wrap(err, "expire billing secrets of partner %s", partnerID)
}

// BillingSecrets returns the sealed billing secrets of a partner active at now.
func (s *Store) BillingSecrets(ctx context.Context, partnerID string, now time.Time) ([][]byte, error) {
	var secrets [][]byte
	err := s.db.SelectContext(ctx, &secrets, `
		SELECT ciphertext FROM partner_billing_secrets
		WHERE partner_id = $1 AND (expires_at IS NULL OR expires_at > $2) ORDER BY created_at DESC`, partnerID, now)
	return secrets, wrap(err, "billing secrets of partner %s", partnerID)
}

// BillingSecretInfos lists every billing secret of a partner, newest first.
func (s *Store) BillingSecretInfos(ctx context.Context, partnerID string) ([]SecretInfo, error) {
	infos := []SecretInfo{}
	err := s.db.SelectContext(ctx, &infos, `
		SELECT fingerprint, created_at, expires_at FROM partner_billing_secrets
		WHERE partner_id = $1 ORDER BY created_at DESC, fingerprint`, partnerID)
	return infos, wrap(err, "list billing secrets of partner %s", partnerID)
}

// RevokeBillingSecret ends one billing secret now; it reports false when the
// partner has no active secret with that fingerprint.
func (s *Store) RevokeBillingSecret(ctx context.Context, partnerID, fingerprint string, now time.Time) (bool, error) {
	res, err := s.db.ExecContext(ctx, `
		UPDATE partner_billing_secrets SET expires_at = $3
		WHERE partner_id = $1 AND fingerprint = $2 AND (expires_at IS NULL OR expires_at > $3)`, partnerID, fingerprint, now)
	if err != nil {
		return false, wrap(err, "revoke billing secret %s of partner %s", fingerprint, partnerID)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// ClaimBillingEvent claims a partner's billing event id.
func (s *Store) ClaimBillingEvent(ctx context.Context, partnerID, eventID string, requestHash []byte, stale time.Duration) (Claim, error) {
	return s.claim(ctx, billingEvents, partnerID, eventID, requestHash, "", stale)
}

// CompleteBillingEvent stores the answer given to a billing event.
func (s *Store) CompleteBillingEvent(ctx context.Context, partnerID, eventID string, status int, body []byte) error {
	return s.complete(ctx, billingEvents, partnerID, eventID, status, body)
}

// ReleaseBillingEvent forgets a billing event that could not be processed (service unavailable).
func (s *Store) ReleaseBillingEvent(ctx context.Context, partnerID, eventID string) error {
	return s.release(ctx, billingEvents, partnerID, eventID)
}
