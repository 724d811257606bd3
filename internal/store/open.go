package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"strings"
	"time"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed migrations
var migrations embed.FS

// Open connects to the store at url, applies pending schema migrations, and
// returns it. The URL selects the backend:
//
//	sqlite://relative/path.db        SQLite file, relative to the working directory
//	sqlite:///abs/path.db            SQLite file, absolute path
//	postgres://user:pw@host:5432/db  PostgreSQL (also postgresql://); any URL
//	                                 pgx accepts, e.g. ?host=/run/postgresql for a
//	                                 unix socket, ?sslmode=verify-full
//
// SQLite is for a single host: the file must be on a local disk (not NFS),
// and every process using it must run on that host. Its parent directory is
// created if missing. Use PostgreSQL to run setpass or reminders on several
// hosts.
//
// Migrations are safe when several processes start at once: PostgreSQL
// serialises them with an advisory lock, SQLite with an flock on
// <file>.migrate.lock. Errors never include the URL (it may hold a password).
// logger may be nil.
func Open(ctx context.Context, url string, logger *slog.Logger) (Store, error) {
	return openURL(ctx, url, logger, openSQLite, openPostgres)
}

// openURL picks the backend by url's scheme: sqlite gets the path after
// "sqlite://", postgres the whole URL.
func openURL(ctx context.Context, url string, logger *slog.Logger,
	sqlite, postgres func(ctx context.Context, s string, logger *slog.Logger) (Store, error)) (Store, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("component", "store")
	scheme, rest, ok := strings.Cut(url, "://")
	switch {
	case !ok:
		return nil, errors.New("opening store: the URL has no scheme; want sqlite://PATH or postgres://…")
	case scheme == "sqlite":
		return sqlite(ctx, rest, logger)
	case scheme == "postgres" || scheme == "postgresql":
		return postgres(ctx, url, logger)
	}
	return nil, fmt.Errorf("opening store: unsupported URL scheme %q; want sqlite or postgres", scheme)
}

// migrate applies the dialect's embedded migrations to db, under locker
// when there is one.
func migrate(ctx context.Context, d goose.Dialect, dir string, db *sql.DB, locker lock.SessionLocker, logger *slog.Logger) error {
	sub, err := fs.Sub(migrations, "migrations/"+dir)
	if err != nil {
		return fmt.Errorf("migrating schema: %w", err)
	}
	opts := []goose.ProviderOption{
		goose.WithDisableGlobalRegistry(true), // SQL migrations only; ignore goose's globals
	}
	if locker != nil {
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	p, err := goose.NewProvider(d, db, sub, opts...)
	if err != nil {
		return fmt.Errorf("migrating schema: %w", err)
	}
	start := time.Now()
	results, err := p.Up(ctx)
	if err != nil {
		return fmt.Errorf("migrating schema: %w", err)
	}
	if len(results) > 0 {
		version, _ := p.GetDBVersion(ctx)
		logger.Info("schema migrated", "applied", len(results), "version", version,
			"duration", time.Since(start).Round(time.Millisecond))
	}
	return nil
}
