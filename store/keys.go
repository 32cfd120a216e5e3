// Credential management for `fulfillment keys`: partner API keys (stored as
// keyed hashes, with a legacy bare SHA-256 fallback upgraded on first use)
// and publisher signing secrets (sealed; several may be active for rotation).
package store

import (
	"context"
	"time"

	"github.com/partnerhub/fulfillment/domain"
)

// UpgradeKeyHash replaces a key stored under its legacy hash with its keyed
// hash and returns the key's agent. It answers ErrNotFound when no active
// key has the legacy hash (e.g. a concurrent request upgraded it first).
func (s *Store) UpgradeKeyHash(ctx context.Context, legacyHash, keyHash []byte) (Agent, error) {
	var a Agent
	err := s.db.GetContext(ctx, &a, `
		WITH up AS (
			UPDATE api_keys SET key_hash = $2
			WHERE key_hash = $1 AND (revoked_at IS NULL OR revoked_at > now())
			  AND NOT EXISTS (SELECT 1 FROM api_keys WHERE key_hash = $2)
			RETURNING partner_id, agent_id)
		SELECT up.partner_id, up.agent_id, a.role FROM up
		JOIN agents a ON a.partner_id = up.partner_id AND a.id = up.agent_id`, legacyHash, keyHash)
	return a, notFound(err)
}

// Agent reads one agent of a partner.
func (s *Store) Agent(ctx context.Context, partnerID, agentID string) (Agent, error) {
	var a Agent
	err := s.db.GetContext(ctx, &a, `
		SELECT partner_id, id AS agent_id, role FROM agents WHERE partner_id = $1 AND id = $2`, partnerID, agentID)
	return a, notFound(err)
}

// CreateAgentKey registers a new key (its keyed hash) for an agent, creating
// the agent with role if it does not exist yet; an existing agent keeps its
// role unless role is set.
func (s *Store) CreateAgentKey(ctx context.Context, partnerID, agentID string, role domain.Role, keyHash []byte) (Agent, error) {
	var a Agent
	err := s.db.GetContext(ctx, &a, `
		WITH agent AS (
			INSERT INTO agents (partner_id, id, role) VALUES ($1, $2, COALESCE(NULLIF($3, ''), 'sales_agent'))
			ON CONFLICT (partner_id, id) DO UPDATE SET role = COALESCE(NULLIF($3, ''), agents.role)
			RETURNING partner_id, id, role),
		key AS (
			INSERT INTO api_keys (key_hash, partner_id, agent_id) SELECT $4, partner_id, id FROM agent)
		SELECT partner_id, id AS agent_id, role FROM agent`, partnerID, agentID, string(role), keyHash)
	return a, wrap(err, "create key of agent %s/%s", partnerID, agentID)
}

// RevokeAgentKeys ends every key of an agent except keep (nil: all of them)
// after overlap (0: at once, by the database's clock). It returns how many
// keys it ended.
func (s *Store) RevokeAgentKeys(ctx context.Context, partnerID, agentID string, keep []byte, overlap time.Duration) (int64, error) {
	res, err := s.db.ExecContext(ctx, `
		UPDATE api_keys SET revoked_at = now() + make_interval(secs => $4)
		WHERE partner_id = $1 AND agent_id = $2 AND ($3::bytea IS NULL OR key_hash <> $3)
		  AND (revoked_at IS NULL OR revoked_at > now() + make_interval(secs => $4))`,
		partnerID, agentID, keep, overlap.Seconds())
	if err != nil {
		return 0, wrap(err, "revoke keys of agent %s/%s", partnerID, agentID)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

// SecretInfo describes a publisher's signing secret without revealing it.
type SecretInfo struct {
	Fingerprint string     `db:"fingerprint"`
	CreatedAt   time.Time  `db:"created_at"`
	ExpiresAt   *time.Time `db:"expires_at"`
}

// PublisherSecretInfos lists every secret of a publisher, newest first.
func (s *Store) PublisherSecretInfos(ctx context.Context, publisherID string) ([]SecretInfo, error) {
	infos := []SecretInfo{}
	err := s.db.SelectContext(ctx, &infos, `
		SELECT fingerprint, created_at, expires_at FROM publisher_secrets
		WHERE publisher_id = $1 ORDER BY created_at DESC, fingerprint`, publisherID)
	return infos, wrap(err, "list secrets of publisher %s", publisherID)
}

// RevokePublisherSecret ends one secret now; it reports false when the
// publisher has no active secret with that fingerprint.
func (s *Store) RevokePublisherSecret(ctx context.Context, publisherID, fingerprint string, now time.Time) (bool, error) {
	res, err := s.db.ExecContext(ctx, `
		UPDATE publisher_secrets SET expires_at = $3
		WHERE publisher_id = $1 AND fingerprint = $2 AND (expires_at IS NULL OR expires_at > $3)`, publisherID, fingerprint, now)
	if err != nil {
		return false, wrap(err, "revoke secret %s of publisher %s", fingerprint, publisherID)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}
