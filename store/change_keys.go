package store

import (
	"context"
	"time"
)

// ClaimChangeKey records which request a partner's Idempotency-Key of a
// change (PATCH, cancel, deactivate) belongs to. It answers ClaimMismatch
// when the key was used for another request; any other state means the same
// request again, which the caller sends on (Temporal replays its answer).
func (s *Store) ClaimChangeKey(ctx context.Context, partnerID, key string, requestHash []byte) (ClaimState, error) {
	// The claim is never completed: staleness does not matter, so any stale
	// value works; a day keeps takeovers (a harmless UPDATE) rare.
	claim, err := s.claim(ctx, changeKeys, partnerID, key, requestHash, "", 24*time.Hour)
	return claim.State, err
}

// ReleaseChangeKey forgets a key whose request changed nothing (refused
// before it reached the subscription), so it may be used again.
func (s *Store) ReleaseChangeKey(ctx context.Context, partnerID, key string) error {
	return s.release(ctx, changeKeys, partnerID, key)
}
