// Package postgres is the bridge's PostgreSQL store: one pgxpool, the embedded migrations
// (applied with tern), and the queries each part of the bridge needs. Every error it
// returns has passed through translate, so callers see domain codes
// (chatrabridge.ENOTFOUND, ECONFLICT, EUNAVAILABLE) rather than driver errors.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/puddle/v2"
	"github.com/jackc/tern/v2/migrate"
	"go.uber.org/fx"

	"github.com/chatrabridge/chatrabridge"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// DB is the store. It is safe for concurrent use.
type DB struct {
	Pool *pgxpool.Pool
}

// Open connects to the database at url and checks the connection. An unreachable server
// or a missing database gives an EUNAVAILABLE error whose message names the fix.
func Open(ctx context.Context, url string) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, chatrabridge.Errorf(chatrabridge.EINVALID, "DATABASE_URL is not a valid PostgreSQL URL: %s", redactParseError(err))
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, connectError(cfg.ConnConfig, err)
	}
	return &DB{Pool: pool}, nil
}

// Close closes every connection of the pool.
func (db *DB) Close() { db.Pool.Close() }

// Ping reports whether the database answers; used by /readyz.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.Pool.Ping(ctx); err != nil {
		return translate(err)
	}
	return nil
}

// EnsureDatabase creates the database named in url when it does not exist, connecting
// to the server's "postgres" database to do so. It is what `chatrabridge dev` runs first.
func EnsureDatabase(ctx context.Context, url string) error {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return chatrabridge.Errorf(chatrabridge.EINVALID, "DATABASE_URL is not a valid PostgreSQL URL: %s", redactParseError(err))
	}
	name := cfg.Database
	if name == "" {
		return chatrabridge.Errorf(chatrabridge.EINVALID, "DATABASE_URL names no database")
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err == nil {
		return conn.Close(ctx)
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "3D000" { // invalid_catalog_name
		return connectError(cfg, err)
	}
	admin := cfg.Copy()
	admin.Database = "postgres"
	conn, err = pgx.ConnectConfig(ctx, admin)
	if err != nil {
		return connectError(admin, err)
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	if err != nil && !isCode(err, "42P04") { // duplicate_database: created meanwhile
		return fmt.Errorf("create database %s: %w", name, err)
	}
	return nil
}

// Migrate applies every migration not yet applied. It holds tern's advisory lock, so
// concurrent callers (several processes starting at once) are safe. A database that a
// newer release migrated already (during a rolling deploy, or after a rollback to this
// release) is left as it is: migrations only add, so this release runs on it.
func (db *DB) Migrate(ctx context.Context) error {
	conn, err := db.Pool.Acquire(ctx)
	if err != nil {
		return translate(err)
	}
	defer conn.Release()
	m, err := migrate.NewMigrator(ctx, conn.Conn(), "schema_version")
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if err := m.LoadMigrations(sub); err != nil {
		return fmt.Errorf("migrate: load: %w", err)
	}
	if v, err := m.GetCurrentVersion(ctx); err == nil && int(v) > len(m.Migrations) {
		return nil // a newer release's schema
	}
	if err := m.Migrate(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// translate maps driver errors to domain errors; it is the only place that knows pgx's.
func translate(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return &chatrabridge.Error{Code: chatrabridge.ENOTFOUND, Message: "not found", Err: err}
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case pgErr.Code == "23505":
			return &chatrabridge.Error{Code: chatrabridge.ECONFLICT, Message: "already exists", Err: err}
		case pgErr.Code == "23503":
			return &chatrabridge.Error{Code: chatrabridge.ENOTFOUND, Message: "refers to something that does not exist", Err: err}
		case strings.HasPrefix(pgErr.Code, "08"), strings.HasPrefix(pgErr.Code, "57P"), pgErr.Code == "53300":
			return &chatrabridge.Error{Code: chatrabridge.EUNAVAILABLE, Message: "database unavailable", Err: err}
		case permanentCode(pgErr.Code):
			// The value itself is refused (a NUL byte, invalid UTF-8, too long, out of
			// range): the same value is refused again by any retry. The server's message
			// may quote the value, so neither the message nor the cause carries it.
			return &chatrabridge.Error{Code: chatrabridge.EINVALID,
				Message: "the database cannot store a value (SQLSTATE " + pgErr.Code + ")",
				Err:     errors.New("SQLSTATE " + pgErr.Code)}
		}
		return err
	}
	var netErr net.Error
	// A closed pool (the process is stopping) is unavailable too: the caller retries
	// elsewhere. So is a connection that broke mid-query (the server crashed or restarted:
	// io.ErrUnexpectedEOF).
	if errors.As(err, &netErr) || errors.Is(err, net.ErrClosed) || errors.Is(err, puddle.ErrClosedPool) || pgconn.SafeToRetry(err) || isConnectError(err) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return &chatrabridge.Error{Code: chatrabridge.EUNAVAILABLE, Message: "database unavailable", Err: err}
	}
	return err
}

// permanentCode reports whether a SQLSTATE says the data itself is refused, which no
// retry can change: class 22 (data exception: invalid byte sequence, value too long,
// out of range), class 54 (program limit exceeded: an index row too large), a NOT NULL
// or CHECK violation.
func permanentCode(code string) bool {
	return strings.HasPrefix(code, "22") || strings.HasPrefix(code, "54") || code == "23502" || code == "23514"
}

func isConnectError(err error) bool {
	var ce *pgconn.ConnectError
	return errors.As(err, &ce)
}

func isCode(err error, code string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == code
}

// connectError turns a failed connection into one line that names the problem and the fix.
func connectError(cfg *pgx.ConnConfig, err error) error {
	where := fmt.Sprintf("%s:%d", cfg.Host, cfg.Port)
	msg := fmt.Sprintf("cannot connect to PostgreSQL at %s (database %q): ", where, cfg.Database)
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &pgErr) && pgErr.Code == "3D000":
		msg += "the database does not exist; run `chatrabridge migrate --create-db` or create it"
	case errors.As(err, &pgErr) && (pgErr.Code == "28P01" || pgErr.Code == "28000"):
		msg += "authentication failed; check the user and password in DATABASE_URL"
	default:
		msg += "is PostgreSQL running? Start it, or set DATABASE_URL (README: Getting PostgreSQL)"
	}
	return &chatrabridge.Error{Code: chatrabridge.EUNAVAILABLE, Message: msg, Err: err}
}

// redactParseError keeps a URL parse error from echoing the URL, which may hold a password.
func redactParseError(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		return msg[i+2:]
	}
	return "cannot parse"
}

// URL is the database URL, a distinct type so fx can provide it.
type URL string

// Module provides *DB, opened (and, with Migrations(true), migrated) at construction and
// closed when the app stops.
var Module = fx.Module("postgres",
	fx.Provide(func(lc fx.Lifecycle, url URL, m AutoMigrate) (*DB, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		db, err := Open(ctx, string(url))
		if err != nil {
			return nil, err
		}
		lc.Append(fx.StopHook(db.Close))
		if m {
			if err := db.Migrate(ctx); err != nil {
				return nil, err
			}
		}
		return db, nil
	}),
)

// AutoMigrate says whether Module applies migrations when it opens the database.
type AutoMigrate bool
