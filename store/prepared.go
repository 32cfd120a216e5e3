package store

import (
	"container/list"
	"context"
	"database/sql/driver"
	"errors"

	"github.com/lib/pq"
)

// maxPreparedPerConn bounds the statements a connection keeps prepared; the
// store has fewer distinct statements than this, so in practice none is
// evicted (list filters build a few variants each).
const maxPreparedPerConn = 512

// preparingConnector hands out connections that prepare every statement with
// arguments once and reuse it, so PostgreSQL parses, analyses and plans it
// once per connection instead of on every execution: parsing and planning
// were ~40 % of the database's CPU per purchase flow (BENCHMARKS.md, "Fewer
// round trips, prepared statements, no gzip"). Statements without arguments
// keep the simple protocol (it allows several commands in one string, as
// migrations send them).
type preparingConnector struct{ driver.Connector }

func (c preparingConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return newPreparingConn(conn)
}

// preparingConn is one connection with its prepared statements, most recently
// used first. database/sql uses a connection from one goroutine at a time.
type preparingConn struct {
	conn interface {
		driver.Conn
		driver.ConnPrepareContext
		driver.ConnBeginTx
		driver.QueryerContext
		driver.ExecerContext
		driver.Pinger
		driver.SessionResetter
		driver.Validator
		driver.NamedValueChecker
	}
	stmts map[string]*list.Element // query → element of order holding *prepared
	order *list.List
}

type prepared struct {
	query string
	stmt  interface {
		driver.Stmt
		driver.StmtQueryContext
		driver.StmtExecContext
	}
}

func newPreparingConn(c driver.Conn) (*preparingConn, error) {
	full, ok := c.(interface {
		driver.Conn
		driver.ConnPrepareContext
		driver.ConnBeginTx
		driver.QueryerContext
		driver.ExecerContext
		driver.Pinger
		driver.SessionResetter
		driver.Validator
		driver.NamedValueChecker
	})
	if !ok {
		c.Close()
		return nil, errors.New("store: the PostgreSQL driver's connection lacks an interface database/sql needs")
	}
	return &preparingConn{conn: full, stmts: map[string]*list.Element{}, order: list.New()}, nil
}

// statement returns query prepared on this connection, preparing it on first use.
func (c *preparingConn) statement(ctx context.Context, query string) (*prepared, error) {
	if e, ok := c.stmts[query]; ok {
		c.order.MoveToFront(e)
		return e.Value.(*prepared), nil
	}
	s, err := c.conn.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	st, ok := s.(interface {
		driver.Stmt
		driver.StmtQueryContext
		driver.StmtExecContext
	})
	if !ok {
		s.Close()
		return nil, errors.New("store: the PostgreSQL driver's statement lacks context methods")
	}
	p := &prepared{query: query, stmt: st}
	c.stmts[query] = c.order.PushFront(p)
	if c.order.Len() > maxPreparedPerConn {
		oldest := c.order.Back()
		c.forget(oldest.Value.(*prepared))
		_ = oldest.Value.(*prepared).stmt.Close() // best effort: the server drops it with the connection anyway
	}
	return p, nil
}

// forget drops a statement from the cache, so the next use prepares it afresh.
func (c *preparingConn) forget(p *prepared) {
	if e, ok := c.stmts[p.query]; ok && e.Value == p {
		c.order.Remove(e)
		delete(c.stmts, p.query)
	}
}

// stale reports an error after which a prepared statement must be prepared
// again: its cached plan no longer fits the table (0A000, after a column
// change) or the server no longer has it (26000).
func stale(err error) bool {
	var pqErr *pq.Error
	return errors.As(err, &pqErr) && (pqErr.Code == "0A000" || pqErr.Code == "26000")
}

func (c *preparingConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	if len(args) == 0 {
		return c.conn.QueryContext(ctx, query, args)
	}
	p, err := c.statement(ctx, query)
	if err != nil {
		return nil, err
	}
	rows, err := p.stmt.QueryContext(ctx, args)
	if stale(err) {
		c.forget(p)
	}
	return rows, err
}

func (c *preparingConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	if len(args) == 0 {
		return c.conn.ExecContext(ctx, query, args)
	}
	p, err := c.statement(ctx, query)
	if err != nil {
		return nil, err
	}
	res, err := p.stmt.ExecContext(ctx, args)
	if stale(err) {
		c.forget(p)
	}
	return res, err
}

// The rest is the driver's own.

func (c *preparingConn) Prepare(query string) (driver.Stmt, error) { return c.conn.Prepare(query) }
func (c *preparingConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	return c.conn.PrepareContext(ctx, query)
}
func (c *preparingConn) Close() error              { return c.conn.Close() }
func (c *preparingConn) Begin() (driver.Tx, error) { return c.conn.Begin() } //nolint:staticcheck // driver.Conn requires it
func (c *preparingConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	return c.conn.BeginTx(ctx, opts)
}
func (c *preparingConn) Ping(ctx context.Context) error         { return c.conn.Ping(ctx) }
func (c *preparingConn) ResetSession(ctx context.Context) error { return c.conn.ResetSession(ctx) }
func (c *preparingConn) IsValid() bool                          { return c.conn.IsValid() }
func (c *preparingConn) CheckNamedValue(nv *driver.NamedValue) error {
	return c.conn.CheckNamedValue(nv)
}
