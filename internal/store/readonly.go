package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
)

// ErrNoStore: OpenReadOnly found no SQLite file at the URL (nothing has
// been recorded yet).
var ErrNoStore = errors.New("no state store yet")

// ErrSchemaBehind: the store's schema is older than this program's; the
// next Open migrates it. OpenReadOnly does not.
var ErrSchemaBehind = errors.New("the store's schema is older than this program's")

// OpenReadOnly connects to an existing store at url for reading only: it
// creates no file or directory, takes no migration lock, applies no
// migration and writes nothing (SQLite: mode=ro and query_only;
// PostgreSQL: every transaction read-only). Writes fail. What plan and
// dry runs use, since they change nothing anywhere. A SQLite file that
// does not exist is ErrNoStore; a schema older than this program's is
// ErrSchemaBehind.
func OpenReadOnly(ctx context.Context, url string, logger *slog.Logger) (Store, error) {
	return openURL(ctx, url, logger, openSQLiteReadOnly, openPostgresReadOnly)
}

func openSQLiteReadOnly(ctx context.Context, path string, logger *slog.Logger) (Store, error) {
	if path == "" || path == ":memory:" || strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("opening SQLite store %q: want sqlite://relative/path.db or sqlite:///abs/path.db, without parameters", path)
	}
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("opening SQLite store %s: %w", path, ErrNoStore)
	} else if err != nil {
		return nil, fmt.Errorf("opening SQLite store: %w", err)
	}
	// No journal-mode parameter: switching to WAL is a write. A WAL
	// database opened read-only creates its -wal and -shm files when no
	// other connection has them; without them no process has the store
	// open, so it is read as immutable (no lock, no file) instead. A
	// writer starting meanwhile is not seen: fine for a plan.
	params := "mode=ro&_query_only=1&_busy_timeout=10000"
	if _, err := os.Stat(path + "-wal"); errors.Is(err, fs.ErrNotExist) {
		params = "immutable=1&_query_only=1"
	}
	db, err := sql.Open("sqlite", "file:"+path+"?"+params)
	if err != nil {
		return nil, fmt.Errorf("opening SQLite store %s: %w", path, err)
	}
	db.SetMaxOpenConns(4)
	s := &sqlStore{d: sqliteDialect{}, w: db, r: db, close: db.Close}
	if err := checkSchema(ctx, goose.DialectSQLite3, "sqlite", db); err != nil {
		s.Close()
		return nil, fmt.Errorf("opening SQLite store %s: %w", path, err)
	}
	logger.Debug("store open read-only", "backend", "sqlite", "path", path)
	return s, nil
}

func openPostgresReadOnly(ctx context.Context, url string, logger *slog.Logger) (Store, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, errors.New("opening PostgreSQL store: cannot parse the URL (not shown: it may hold a password)")
	}
	where := fmt.Sprintf("database %q on %s", cfg.Database, cfg.Host)
	// The server refuses every write of these sessions.
	cfg.RuntimeParams["default_transaction_read_only"] = "on"
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(4)
	s := &sqlStore{d: postgresDialect{}, w: db, r: db, close: db.Close}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("opening PostgreSQL store (%s): %w", where, err)
	}
	if err := checkSchema(ctx, goose.DialectPostgres, "postgres", db); err != nil {
		db.Close()
		return nil, fmt.Errorf("opening PostgreSQL store (%s): %w", where, err)
	}
	logger.Debug("store open read-only", "backend", "postgres", "host", cfg.Host, "database", cfg.Database)
	return s, nil
}

// checkSchema fails with ErrSchemaBehind unless db holds every embedded
// migration; it reads goose's version table and changes nothing.
func checkSchema(ctx context.Context, d goose.Dialect, dir string, db *sql.DB) error {
	sub, err := fs.Sub(migrations, "migrations/"+dir)
	if err != nil {
		return fmt.Errorf("checking the schema: %w", err)
	}
	p, err := goose.NewProvider(d, db, sub, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return fmt.Errorf("checking the schema: %w", err)
	}
	current, target, err := p.GetVersions(ctx)
	if err != nil {
		// No version table: a store never migrated.
		return fmt.Errorf("%w (no schema version: %v)", ErrSchemaBehind, err)
	}
	if current < target {
		return fmt.Errorf("%w (version %d, want %d)", ErrSchemaBehind, current, target)
	}
	return nil
}
