package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"time"
)

// Claim is the outcome of claiming a message key (Idempotency-Key or webhook-id).
type Claim struct {
	State          ClaimState
	SubscriptionID string // idempotency keys only
	ResponseStatus int
	ResponseBody   []byte
}

// ClaimState says what the caller should do with a message.
type ClaimState int

const (
	// ClaimNew: the caller owns the key and processes the request.
	ClaimNew ClaimState = iota
	// ClaimReplay: the request was answered before; send the stored answer.
	ClaimReplay
	// ClaimInUse: another request with this key is still running.
	ClaimInUse
	// ClaimMismatch: the key was used with a different request body.
	ClaimMismatch
)

// messageTable describes one of the two claim tables.
type messageTable struct {
	table, ownerColumn, keyColumn, extraColumn string
}

var (
	idempotencyKeys   = messageTable{"idempotency_keys", "partner_id", "key", "subscription_id"}
	publisherMessages = messageTable{"publisher_messages", "publisher_id", "webhook_id", ""}
	changeKeys        = messageTable{"change_keys", "partner_id", "key", ""}
)

// ClaimIdempotencyKey claims a partner's Idempotency-Key for a purchase. A
// claim whose owner died (locked longer than stale ago) is taken over with the
// same subscription id, so a retried purchase resumes instead of duplicating.
func (s *Store) ClaimIdempotencyKey(ctx context.Context, partnerID, key string, requestHash []byte, subscriptionID string, stale time.Duration) (Claim, error) {
	return s.claim(ctx, idempotencyKeys, partnerID, key, requestHash, subscriptionID, stale)
}

// CompleteIdempotencyKey stores the answer given to a purchase.
func (s *Store) CompleteIdempotencyKey(ctx context.Context, partnerID, key string, status int, body []byte) error {
	return s.complete(ctx, idempotencyKeys, partnerID, key, status, body)
}

// ReleaseIdempotencyKey forgets a key whose request changed nothing (validation failed).
func (s *Store) ReleaseIdempotencyKey(ctx context.Context, partnerID, key string) error {
	return s.release(ctx, idempotencyKeys, partnerID, key)
}

// ClaimPublisherMessage claims a publisher's webhook-id.
func (s *Store) ClaimPublisherMessage(ctx context.Context, publisherID, webhookID string, requestHash []byte, stale time.Duration) (Claim, error) {
	return s.claim(ctx, publisherMessages, publisherID, webhookID, requestHash, "", stale)
}

// CompletePublisherMessage stores the answer given to a publisher message.
func (s *Store) CompletePublisherMessage(ctx context.Context, publisherID, webhookID string, status int, body []byte) error {
	return s.complete(ctx, publisherMessages, publisherID, webhookID, status, body)
}

// ReleasePublisherMessage forgets a message that could not be processed (service unavailable).
func (s *Store) ReleasePublisherMessage(ctx context.Context, publisherID, webhookID string) error {
	return s.release(ctx, publisherMessages, publisherID, webhookID)
}

func (s *Store) claim(ctx context.Context, t messageTable, owner, key string, requestHash []byte, extra string, stale time.Duration) (Claim, error) {
	ownerColumn := t.ownerColumn
	cols, vals := ownerColumn+", "+t.keyColumn+", request_hash", "$1, $2, $3"
	args := []any{owner, key, requestHash}
	if t.extraColumn != "" {
		cols += ", " + t.extraColumn
		vals += ", $4"
		args = append(args, extra)
	}
	res, err := s.db.ExecContext(ctx, `INSERT INTO `+t.table+` (`+cols+`) VALUES (`+vals+`) ON CONFLICT DO NOTHING`, args...)
	if err != nil {
		return Claim{}, wrap(err, "claim %s %s", t.table, key)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return Claim{State: ClaimNew, SubscriptionID: extra}, nil
	}
	extraSel := "''"
	if t.extraColumn != "" {
		extraSel = t.extraColumn
	}
	var row struct {
		Hash   []byte        `db:"request_hash"`
		Extra  string        `db:"extra"`
		Status sql.NullInt64 `db:"response_status"`
		Body   []byte        `db:"response_body"`
	}
	// Take over a stale claim atomically; otherwise just read it.
	err = s.db.GetContext(ctx, &row, `
		UPDATE `+t.table+` SET locked_at = now()
		WHERE `+ownerColumn+` = $1 AND `+t.keyColumn+` = $2 AND response_status IS NULL
		  AND locked_at < now() - make_interval(secs => $3) AND request_hash = $4
		RETURNING request_hash, `+extraSel+` AS extra, response_status, response_body`,
		owner, key, stale.Seconds(), requestHash)
	if err == nil {
		return Claim{State: ClaimNew, SubscriptionID: row.Extra}, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return Claim{}, wrap(err, "take over %s %s", t.table, key)
	}
	err = s.db.GetContext(ctx, &row, `
		SELECT request_hash, `+extraSel+` AS extra, response_status, response_body FROM `+t.table+`
		WHERE `+ownerColumn+` = $1 AND `+t.keyColumn+` = $2`, owner, key)
	if errors.Is(err, sql.ErrNoRows) { // released in between: try again
		return s.claim(ctx, t, owner, key, requestHash, extra, stale)
	}
	if err != nil {
		return Claim{}, wrap(err, "read %s %s", t.table, key)
	}
	switch {
	case !bytes.Equal(row.Hash, requestHash):
		return Claim{State: ClaimMismatch}, nil
	case !row.Status.Valid:
		return Claim{State: ClaimInUse, SubscriptionID: row.Extra}, nil
	}
	return Claim{State: ClaimReplay, SubscriptionID: row.Extra, ResponseStatus: int(row.Status.Int64), ResponseBody: row.Body}, nil
}

func (s *Store) complete(ctx context.Context, t messageTable, owner, key string, status int, body []byte) error {
	ownerColumn := t.ownerColumn
	_, err := s.db.ExecContext(ctx, `
		UPDATE `+t.table+` SET response_status = $3, response_body = $4
		WHERE `+ownerColumn+` = $1 AND `+t.keyColumn+` = $2 AND response_status IS NULL`, owner, key, status, body)
	return wrap(err, "complete %s %s", t.table, key)
}

func (s *Store) release(ctx context.Context, t messageTable, owner, key string) error {
	ownerColumn := t.ownerColumn
	_, err := s.db.ExecContext(ctx, `
		DELETE FROM `+t.table+` WHERE `+ownerColumn+` = $1 AND `+t.keyColumn+` = $2 AND response_status IS NULL`, owner, key)
	return wrap(err, "release %s %s", t.table, key)
}

// PurgeMessages deletes idempotency, webhook and billing-event records older than keep (at least 24 h).
func (s *Store) PurgeMessages(ctx context.Context, keep time.Duration) error {
	if keep < 24*time.Hour {
		keep = 24 * time.Hour
	}
	for _, table := range []string{idempotencyKeys.table, publisherMessages.table, changeKeys.table, billingEvents.table} {
		if _, err := s.db.ExecContext(ctx, `DELETE FROM `+table+` WHERE created_at < now() - make_interval(secs => $1)`, keep.Seconds()); err != nil {
			return wrap(err, "purge %s", table)
		}
	}
	return nil
}
