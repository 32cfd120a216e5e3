package store_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A statement with arguments is prepared once per connection and reused; one
// without arguments keeps the simple protocol (several commands in a string).
func TestStatementsArePreparedOncePerConnection(t *testing.T) {
	f := newFixture(t)
	conn, err := f.db.Connx(f.ctx)
	require.NoError(t, err)
	defer conn.Close()

	const q = `SELECT $1::int + 1`
	prepared := func(statement string) int {
		t.Helper()
		var n int
		require.NoError(t, conn.GetContext(f.ctx, &n, `SELECT count(*) FROM pg_prepared_statements WHERE statement = $1`, statement))
		return n
	}
	assert.Zero(t, prepared(q))
	for i := range 3 {
		var got int
		require.NoError(t, conn.GetContext(f.ctx, &got, q, i))
		assert.Equal(t, i+1, got, "the prepared statement answers with this execution's argument")
	}
	assert.Equal(t, 1, prepared(q), "three executions, one prepared statement")

	_, err = conn.ExecContext(f.ctx, `CREATE TEMP TABLE a (x int); CREATE TEMP TABLE b (x int)`)
	require.NoError(t, err, "several commands without arguments")
	var none int
	require.NoError(t, conn.GetContext(f.ctx, &none, `SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE 'CREATE TEMP%'`))
	assert.Zero(t, none, "a statement without arguments is not prepared")

	// Inside a transaction the connection's statements serve too.
	tx, err := f.db.BeginTxx(f.ctx, nil)
	require.NoError(t, err)
	var got int
	require.NoError(t, tx.GetContext(f.ctx, &got, q, 41))
	assert.Equal(t, 42, got)
	require.NoError(t, tx.Rollback())
}

// A prepared statement whose result no longer fits its table (a column added)
// fails once with PostgreSQL's "cached plan must not change result type" and
// is prepared afresh on the next use; it never stays broken.
func TestPreparedStatementOfAChangedTableIsPreparedAgain(t *testing.T) {
	f := newFixture(t)
	conn, err := f.db.Connx(f.ctx)
	require.NoError(t, err)
	defer conn.Close()
	_, err = conn.ExecContext(f.ctx, `CREATE TEMP TABLE shapes (id int PRIMARY KEY, name text); INSERT INTO shapes VALUES (1, 'one')`)
	require.NoError(t, err)

	read := func() (map[string]any, error) {
		row := map[string]any{}
		err := conn.QueryRowxContext(f.ctx, `SELECT * FROM shapes WHERE id = $1`, 1).MapScan(row)
		return row, err
	}
	row, err := read()
	require.NoError(t, err)
	assert.Len(t, row, 2)

	_, err = conn.ExecContext(f.ctx, `ALTER TABLE shapes ADD COLUMN size int`)
	require.NoError(t, err)
	_, err = read()
	require.ErrorContains(t, err, "cached plan must not change result type", "PostgreSQL refuses the old plan once")
	row, err = read()
	require.NoError(t, err, "the statement was prepared again")
	assert.Len(t, row, 3, "with the new column")
}

// A connection keeps a bounded number of prepared statements: the least
// recently used one is closed on the server when the bound is passed.
func TestPreparedStatementsPerConnectionAreBounded(t *testing.T) {
	f := newFixture(t)
	conn, err := f.db.Connx(f.ctx)
	require.NoError(t, err)
	defer conn.Close()
	for i := range 600 {
		var got int
		require.NoError(t, conn.GetContext(f.ctx, &got, fmt.Sprintf(`SELECT $1::int + %d`, i), 1))
		require.Equal(t, i+1, got)
	}
	var n int
	require.NoError(t, conn.GetContext(f.ctx, &n, `SELECT count(*) FROM pg_prepared_statements`))
	assert.LessOrEqual(t, n, 512, "at most 512 statements stay prepared")
	assert.Greater(t, n, 400, "the recent ones stay")
}
