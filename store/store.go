// Package store is the PostgreSQL side of the service: catalog, partners,
// customers, the subscription read model, ledger, timeline, outbox and
// idempotency records. SQL lives here and nowhere else.
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed migrations/*.sql
var migrations embed.FS

// ErrNotFound is returned when a row does not exist (or belongs to another tenant).
var ErrNotFound = errors.New("not found")

// ErrConflict is a row that exists under a deterministic key with other
// content: a bug or a tampered database, never overwritten.
var ErrConflict = errors.New("conflicting row under the same key")

// Store wraps the database handle.
type Store struct {
	db *sqlx.DB
}

// Open connects to PostgreSQL.
func Open(ctx context.Context, databaseURL string) (*Store, error) {
	s, err := OpenLazy(databaseURL)
	if err != nil {
		return nil, fmt.Errorf("connect database: %w", err)
	}
	if err := s.Ping(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("connect database: %w", err)
	}
	return s, nil
}

// SetMaxConns caps the pool (DATABASE_MAX_CONNS) and keeps that many open.
func (s *Store) SetMaxConns(n int) {
	if n > 0 {
		s.db.SetMaxOpenConns(n)
		s.db.SetMaxIdleConns(n)
	}
}

// sizePool caps the pool at 20 connections and keeps them open: with
// database/sql's default of 2 idle, every burst above 2 closed its
// connections on release and opened new ones (a PostgreSQL backend fork
// each: 3.3 per purchase flow under load, see BENCHMARKS.md).
func sizePool(db *sqlx.DB) {
	db.SetMaxOpenConns(20)
	db.SetMaxIdleConns(20)
	db.SetConnMaxIdleTime(5 * time.Minute)
}

// OpenLazy prepares the connection pool without connecting: the first query
// connects, so a process can start (and report itself not ready) while
// PostgreSQL is still down. Only a malformed databaseURL is an error.
func OpenLazy(databaseURL string) (*Store, error) {
	cfg, err := pq.NewConfig(databaseURL)
	if err != nil {
		var urlErr *url.Error
		if errors.As(err, &urlErr) {
			err = urlErr.Err // url.Error quotes the URL, password included
		}
		return nil, fmt.Errorf("DATABASE_URL is malformed: %w", err)
	}
	// One round trip per statement with arguments (Parse, Bind, Execute and
	// Sync sent together) instead of two (an unnamed prepare, then its
	// execution), and each such statement prepared once per connection
	// (preparingConnector): BENCHMARKS.md, "Fewer round trips, prepared
	// statements, no gzip". []byte arguments then travel in binary format,
	// right for bytea; JSON goes as text (jsonObject). A DATABASE_URL that
	// names binary_parameters decides.
	if !strings.Contains(databaseURL, "binary_parameters") {
		cfg.BinaryParameters = true
	}
	connector, err := pq.NewConnectorConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("DATABASE_URL: %w", err)
	}
	db := sqlx.NewDb(sql.OpenDB(preparingConnector{connector}), "postgres")
	sizePool(db)
	return &Store{db: db}, nil
}

// DB exposes the handle for tests and health checks.
func (s *Store) DB() *sqlx.DB { return s.db }

// Close closes the pool.
func (s *Store) Close() error { return s.db.Close() }

// Ping checks the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

// Migrate applies every embedded migration not yet applied.
func (s *Store) Migrate(ctx context.Context) error {
	dir, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return err
	}
	provider, err := goose.NewProvider(goose.DialectPostgres, s.db.DB, dir, goose.WithSessionLocker(locker))
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	if _, err := provider.Up(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// CreateDatabase creates the database named in databaseURL if it is missing,
// connecting to the server's postgres database to do so.
func CreateDatabase(ctx context.Context, databaseURL string) error {
	db, name, err := serverConnection(databaseURL)
	if err != nil {
		return err
	}
	defer db.Close()
	var exists bool
	if err := db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		return fmt.Errorf("look up database %s: %w", name, err)
	}
	if exists {
		return nil
	}
	// From template0, which takes no connections: a copy of template1 fails
	// while any session is connected to it (55006), and template1 may hold
	// local additions a new database should not inherit.
	_, err = db.ExecContext(ctx, "CREATE DATABASE "+pq.QuoteIdentifier(name)+" TEMPLATE template0")
	var pqErr *pq.Error
	if errors.As(err, &pqErr) && (pqErr.Code == "42P04" || pqErr.Code == "23505") { // created concurrently (a racing CREATE hits pg_database's unique index)
		return nil
	}
	if err != nil {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	return nil
}

// serverConnection opens the server's postgres database and names the
// database that databaseURL points at.
func serverConnection(databaseURL string) (*sql.DB, string, error) {
	u, err := url.Parse(databaseURL)
	if err != nil {
		return nil, "", fmt.Errorf("parse DATABASE_URL: %w", err)
	}
	name := strings.TrimPrefix(u.Path, "/")
	if name == "" {
		return nil, "", fmt.Errorf("DATABASE_URL names no database")
	}
	admin := *u
	admin.Path = "/postgres"
	db, err := sql.Open("postgres", admin.String())
	return db, name, err
}

// DropDatabase removes the database named in databaseURL (tests only).
func DropDatabase(ctx context.Context, databaseURL string) error {
	db, name, err := serverConnection(databaseURL)
	if err != nil {
		return err
	}
	defer db.Close()
	_, err = db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+pq.QuoteIdentifier(name)+" WITH (FORCE)")
	return err
}

// tx runs fn in a transaction.
func (s *Store) tx(ctx context.Context, fn func(*sqlx.Tx) error) error {
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

func notFound(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	return err
}
