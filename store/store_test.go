package store_test

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/partnerhub/fulfillment/store"
)

// scratchURL names a database no one has created yet, dropped after the test.
func (f *fixture) scratchURL(t *testing.T) (url, name string) {
	t.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name = "fulfillment_test_scratch_" + hex.EncodeToString(b)
	url = "postgres://postgres@127.0.0.1:5432/" + name + "?sslmode=disable"
	t.Cleanup(func() { _ = store.DropDatabase(f.ctx, url) })
	return url, name
}

func (f *fixture) databaseExists(t *testing.T, name string) bool {
	t.Helper()
	return f.count(t, "pg_database WHERE datname = $1", name) == 1
}

func TestCreateDatabaseIsIdempotent(t *testing.T) {
	f := newFixture(t)
	require.NoError(t, f.st.UpsertPartner(f.ctx, store.Partner{ID: "fabrikam", Name: "Fabrikam"}))
	require.NoError(t, store.CreateDatabase(f.ctx, f.url), "an existing database is fine")
	require.NoError(t, store.CreateDatabase(f.ctx, f.url))
	assert.Equal(t, 1, f.count(t, "partners"), "and left as it was")

	url, name := f.scratchURL(t)
	require.NoError(t, store.CreateDatabase(f.ctx, url))
	require.NoError(t, store.CreateDatabase(f.ctx, url))
	assert.True(t, f.databaseExists(t, name))
	require.NoError(t, store.DropDatabase(f.ctx, url))
	assert.False(t, f.databaseExists(t, name))
	require.NoError(t, store.DropDatabase(f.ctx, url), "dropping a missing database is fine")

	assert.ErrorContains(t, store.CreateDatabase(f.ctx, "postgres://postgres@127.0.0.1:5432/?sslmode=disable"), "names no database")
}

func TestCreateDatabaseConcurrently(t *testing.T) {
	f := newFixture(t)
	url, name := f.scratchURL(t)
	var wg sync.WaitGroup
	for range 6 { // api and worker starting together
		wg.Go(func() { assert.NoError(t, store.CreateDatabase(f.ctx, url)) })
	}
	wg.Wait()
	assert.True(t, f.databaseExists(t, name))
}

func TestMigrateTwiceIsANoOp(t *testing.T) {
	f := newFixture(t)
	require.NoError(t, f.st.UpsertPartner(f.ctx, store.Partner{ID: "fabrikam", Name: "Fabrikam"}))
	versions := func() (n, latest int64) {
		require.NoError(t, f.db.QueryRowxContext(f.ctx, `SELECT count(*), max(version_id) FROM goose_db_version`).Scan(&n, &latest))
		return n, latest
	}
	n, latest := versions()
	require.GreaterOrEqual(t, latest, int64(1))

	require.NoError(t, f.st.Migrate(f.ctx))
	var wg sync.WaitGroup
	for range 3 { // several processes migrating at start-up
		wg.Go(func() { assert.NoError(t, f.st.Migrate(f.ctx)) })
	}
	wg.Wait()

	n2, latest2 := versions()
	assert.Equal(t, n, n2, "no migration recorded twice")
	assert.Equal(t, latest, latest2)
	assert.Equal(t, 1, f.count(t, "partners"), "data survives")
}

func TestOpenPingClose(t *testing.T) {
	f := newFixture(t)
	require.NoError(t, f.st.Ping(f.ctx))

	st, err := store.Open(f.ctx, f.url)
	require.NoError(t, err)
	require.NoError(t, st.Close())
	assert.Error(t, st.Ping(f.ctx), "a closed store does not answer")

	missing, _ := f.scratchURL(t)
	_, err = store.Open(f.ctx, missing)
	assert.Error(t, err, "a missing database is reported at Open")
}

// A session connected to template1 (a psql left open by an operator, a
// monitoring probe) must not stop a database from being created.
func TestCreateDatabaseWhileSomeoneIsConnectedToTemplate1(t *testing.T) {
	f := newFixture(t)
	admin, err := sql.Open("postgres", "postgres://postgres@127.0.0.1:5432/template1?sslmode=disable")
	require.NoError(t, err)
	defer admin.Close()
	conn, err := admin.Conn(f.ctx)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.PingContext(f.ctx))

	url, name := f.scratchURL(t)
	require.NoError(t, store.CreateDatabase(f.ctx, url))
	var encoding, server string
	require.NoError(t, f.db.Get(&encoding, `SELECT pg_encoding_to_char(encoding) FROM pg_database WHERE datname = $1`, name))
	require.NoError(t, f.db.Get(&server, `SELECT pg_encoding_to_char(encoding) FROM pg_database WHERE datname = 'template1'`))
	assert.Equal(t, server, encoding, "the server's encoding, as a copy of template1 would have")
}
