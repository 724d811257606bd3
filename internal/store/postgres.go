package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

// pgMigrationLockID keys the advisory lock held while migrating (advisory
// locks are per database): crc32("kaizen-store").
const pgMigrationLockID = 0x4b5a5354

type postgresDialect struct{}

func (postgresDialect) timeArg(t time.Time) any { return utcMicro(t) }
func (postgresDialect) skipLocked() string      { return " FOR UPDATE SKIP LOCKED" }
func (postgresDialect) statementTx() bool       { return false }

func (postgresDialect) conflict(err error) bool {
	var e *pgconn.PgError
	if !errors.As(err, &e) {
		return false
	}
	switch e.Code {
	case "23505", // unique_violation
		"40001", // serialization_failure
		"40P01": // deadlock_detected
		return true
	}
	return false
}

func openPostgres(ctx context.Context, url string, logger *slog.Logger) (Store, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		// pgx's message quotes the URL with the password redacted only on a
		// best-effort basis; say nothing of it.
		return nil, errors.New("opening PostgreSQL store: cannot parse the URL (not shown: it may hold a password)")
	}
	where := fmt.Sprintf("database %q on %s", cfg.Database, cfg.Host)
	db := stdlib.OpenDB(*cfg)
	// Enough for a setpass or reminders process; several processes share
	// the server's max_connections.
	db.SetMaxOpenConns(10)
	db.SetMaxIdleConns(10)
	db.SetConnMaxIdleTime(5 * time.Minute)
	s := &sqlStore{d: postgresDialect{}, w: db, r: db, close: db.Close}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("opening PostgreSQL store (%s): %w", where, err)
	}
	locker, err := lock.NewPostgresSessionLocker(
		lock.WithLockID(pgMigrationLockID),
		lock.WithLockTimeout(1, 300), // poll each second for up to 5 minutes
	)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("opening PostgreSQL store (%s): %w", where, err)
	}
	if err := migrate(ctx, goose.DialectPostgres, "postgres", db, locker, logger); err != nil {
		db.Close()
		return nil, fmt.Errorf("opening PostgreSQL store (%s): %w", where, err)
	}
	logger.Debug("store open", "backend", "postgres", "host", cfg.Host, "database", cfg.Database)
	return s, nil
}
