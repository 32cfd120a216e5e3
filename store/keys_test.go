package store_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/partnerhub/fulfillment/domain"
	"github.com/partnerhub/fulfillment/store"
)

func TestUpgradeKeyHash(t *testing.T) {
	f := newFixture(t)
	require.NoError(t, f.st.UpsertPartner(f.ctx, store.Partner{ID: "fabrikam", Name: "Fabrikam"}))
	bob := store.Agent{PartnerID: "fabrikam", ID: "bob", Role: domain.RoleSalesAgent}
	require.NoError(t, f.st.UpsertAgent(f.ctx, bob, hash("legacy")))

	got, err := f.st.UpgradeKeyHash(f.ctx, hash("legacy"), hash("keyed"))
	require.NoError(t, err)
	assert.Equal(t, bob, got)
	_, err = f.st.AgentByKey(f.ctx, hash("legacy"))
	assert.ErrorIs(t, err, store.ErrNotFound, "the legacy hash is gone")
	got, err = f.st.AgentByKey(f.ctx, hash("keyed"))
	require.NoError(t, err)
	assert.Equal(t, bob, got, "the row answers to the keyed hash")
	assert.Equal(t, 1, f.count(t, "api_keys"))

	_, err = f.st.UpgradeKeyHash(f.ctx, hash("legacy"), hash("keyed"))
	assert.ErrorIs(t, err, store.ErrNotFound, "upgraded once; a racing second upgrade finds nothing")

	require.NoError(t, f.st.UpsertAgent(f.ctx, bob, hash("revoked-legacy")))
	f.exec(t, `UPDATE api_keys SET revoked_at = now() WHERE key_hash = $1`, hash("revoked-legacy"))
	_, err = f.st.UpgradeKeyHash(f.ctx, hash("revoked-legacy"), hash("revoked-keyed"))
	assert.ErrorIs(t, err, store.ErrNotFound, "a revoked key is not revived")

	// Both hashes present (seeded once before and once after keyed hashing):
	// the keyed row is used and the legacy one is left alone.
	require.NoError(t, f.st.UpsertAgent(f.ctx, bob, hash("both-legacy")))
	require.NoError(t, f.st.UpsertAgent(f.ctx, bob, hash("both-keyed")))
	_, err = f.st.UpgradeKeyHash(f.ctx, hash("both-legacy"), hash("both-keyed"))
	assert.ErrorIs(t, err, store.ErrNotFound)
}

func TestCreateAndRevokeAgentKeys(t *testing.T) {
	f := newFixture(t)
	require.NoError(t, f.st.UpsertPartner(f.ctx, store.Partner{ID: "fabrikam", Name: "Fabrikam"}))

	carol, err := f.st.CreateAgentKey(f.ctx, "fabrikam", "carol", "", hash("k1"))
	require.NoError(t, err)
	assert.Equal(t, store.Agent{PartnerID: "fabrikam", ID: "carol", Role: domain.RoleSalesAgent}, carol, "a new agent is a sales agent by default")
	admin, err := f.st.CreateAgentKey(f.ctx, "fabrikam", "carol", domain.RoleAdminAgent, hash("k2"))
	require.NoError(t, err)
	assert.Equal(t, domain.RoleAdminAgent, admin.Role, "an explicit role changes it")
	kept, err := f.st.CreateAgentKey(f.ctx, "fabrikam", "carol", "", hash("k3"))
	require.NoError(t, err)
	assert.Equal(t, domain.RoleAdminAgent, kept.Role, "no role keeps the agent's")
	got, err := f.st.Agent(f.ctx, "fabrikam", "carol")
	require.NoError(t, err)
	assert.Equal(t, kept, got)
	_, err = f.st.Agent(f.ctx, "fabrikam", "nobody")
	assert.ErrorIs(t, err, store.ErrNotFound)
	_, err = f.st.CreateAgentKey(f.ctx, "nobody", "carol", "", hash("k4"))
	assert.Error(t, err, "the partner must exist")

	// Rotation with an overlap: k1 and k2 work for the hour, k3 forever.
	n, err := f.st.RevokeAgentKeys(f.ctx, "fabrikam", "carol", hash("k3"), time.Hour)
	require.NoError(t, err)
	assert.EqualValues(t, 2, n)
	for _, k := range []string{"k1", "k2", "k3"} {
		_, err := f.st.AgentByKey(f.ctx, hash(k))
		assert.NoError(t, err, "%s inside the overlap", k)
	}
	// A later rotation with a longer overlap does not extend it.
	n, err = f.st.RevokeAgentKeys(f.ctx, "fabrikam", "carol", hash("k3"), 5*time.Hour)
	require.NoError(t, err)
	assert.Zero(t, n)
	f.exec(t, `UPDATE api_keys SET revoked_at = now() - interval '1 second' WHERE key_hash = $1`, hash("k1"))
	_, err = f.st.AgentByKey(f.ctx, hash("k1"))
	assert.ErrorIs(t, err, store.ErrNotFound, "past the overlap")

	// Revocation: every key at once, scheduled ones brought forward.
	require.NoError(t, f.st.UpsertAgent(f.ctx, store.Agent{PartnerID: "fabrikam", ID: "dave", Role: domain.RoleSalesAgent}, hash("dave")))
	n, err = f.st.RevokeAgentKeys(f.ctx, "fabrikam", "carol", nil, 0)
	require.NoError(t, err)
	assert.EqualValues(t, 2, n, "k2 (scheduled) and k3")
	for _, k := range []string{"k2", "k3"} {
		_, err := f.st.AgentByKey(f.ctx, hash(k))
		assert.ErrorIs(t, err, store.ErrNotFound, "%s revoked", k)
	}
	_, err = f.st.AgentByKey(f.ctx, hash("dave"))
	assert.NoError(t, err, "another agent's key is untouched")
}

func TestRevokePublisherSecret(t *testing.T) {
	f := newFixture(t)
	require.NoError(t, f.st.UpsertPublisher(f.ctx, store.Publisher{ID: "contoso", Name: "Contoso", LandingURL: "https://contoso.example"}))
	require.NoError(t, f.st.AddPublisherSecret(f.ctx, "contoso", "fp-a", []byte("a")))
	require.NoError(t, f.st.AddPublisherSecret(f.ctx, "contoso", "fp-b", []byte("b")))
	now := time.Now()

	ok, err := f.st.RevokePublisherSecret(f.ctx, "contoso", "fp-a", now)
	require.NoError(t, err)
	assert.True(t, ok)
	secrets, err := f.st.PublisherSecrets(f.ctx, "contoso", now)
	require.NoError(t, err)
	assert.Equal(t, [][]byte{[]byte("b")}, secrets, "revoked at once")
	ok, err = f.st.RevokePublisherSecret(f.ctx, "contoso", "fp-a", now)
	require.NoError(t, err)
	assert.False(t, ok, "already revoked")
	ok, err = f.st.RevokePublisherSecret(f.ctx, "contoso", "fp-unknown", now)
	require.NoError(t, err)
	assert.False(t, ok)

	infos, err := f.st.PublisherSecretInfos(f.ctx, "contoso")
	require.NoError(t, err)
	require.Len(t, infos, 2)
	byFP := map[string]store.SecretInfo{}
	for _, i := range infos {
		byFP[i.Fingerprint] = i
	}
	require.NotNil(t, byFP["fp-a"].ExpiresAt)
	assert.WithinDuration(t, now, *byFP["fp-a"].ExpiresAt, time.Millisecond)
	assert.Nil(t, byFP["fp-b"].ExpiresAt)
}

func TestChangeKeys(t *testing.T) {
	f := newFixture(t)
	claim := func(partner, key string, h []byte) store.ClaimState {
		t.Helper()
		s, err := f.st.ClaimChangeKey(f.ctx, partner, key, h)
		require.NoError(t, err)
		return s
	}
	assert.Equal(t, store.ClaimNew, claim("fabrikam", "k", hash("patch a")))
	assert.NotEqual(t, store.ClaimMismatch, claim("fabrikam", "k", hash("patch a")), "the same request again")
	assert.Equal(t, store.ClaimMismatch, claim("fabrikam", "k", hash("patch b")), "another request under the key")
	assert.Equal(t, store.ClaimNew, claim("tailspin", "k", hash("patch b")), "keys are scoped per partner")
	// Purchase keys are another table: the same key for a purchase is no reuse.
	c, err := f.st.ClaimIdempotencyKey(f.ctx, "fabrikam", "k", hash("purchase"), "sub-1", notStale)
	require.NoError(t, err)
	assert.Equal(t, store.ClaimNew, c.State)

	require.NoError(t, f.st.ReleaseChangeKey(f.ctx, "fabrikam", "k"))
	assert.Equal(t, store.ClaimNew, claim("fabrikam", "k", hash("patch b")), "a released key is free again")

	f.exec(t, `UPDATE change_keys SET created_at = now() - interval '25 hours'`)
	require.NoError(t, f.st.PurgeMessages(f.ctx, 24*time.Hour))
	assert.Zero(t, f.count(t, "change_keys"), "purged with the other message records")
}
