package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/pressly/goose/v3"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// sqliteParams apply to every connection: busy_timeout is how long a writer
// waits for another process's write transaction before SQLITE_BUSY; WAL lets
// readers run alongside the writer; synchronous=NORMAL is safe across
// application crashes in WAL mode (a power loss may lose the last commits
// but never corrupts). secure_delete zeroes what is deleted, so a body
// stored in the clear before bodies were sealed (and deleted by migration
// 00004) leaves no fragment in the file's free pages.
const sqliteParams = "_busy_timeout=10000&_journal_mode=WAL&_foreign_keys=1&_synchronous=NORMAL&_pragma=secure_delete(1)"

type sqliteDialect struct{}

func (sqliteDialect) timeArg(t time.Time) any { return utcMicro(t).UnixMicro() }
func (sqliteDialect) skipLocked() string      { return "" } // writers are serialised anyway
func (sqliteDialect) statementTx() bool       { return true }

func (sqliteDialect) conflict(err error) bool {
	var e *sqlite.Error
	if !errors.As(err, &e) {
		return false
	}
	switch e.Code() {
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		return true
	}
	return false
}

func openSQLite(ctx context.Context, path string, logger *slog.Logger) (Store, error) {
	if path == "" || path == ":memory:" || strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("opening SQLite store %q: want sqlite://relative/path.db or sqlite:///abs/path.db, without parameters", path)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("opening SQLite store: %w", err)
	}
	// The first connection may switch the file to WAL and the migrations
	// create tables: one process at a time.
	unlock, err := lockFile(ctx, path+".migrate.lock")
	if err != nil {
		return nil, fmt.Errorf("opening SQLite store %s: %w", path, err)
	}
	defer unlock()
	if err := createPrivate(path); err != nil {
		return nil, fmt.Errorf("opening SQLite store: %w", err)
	}

	// _txlock=immediate: every transaction takes the write lock when it
	// begins, so concurrent writers queue on busy_timeout instead of failing
	// when a read lock cannot be upgraded.
	w, err := sql.Open("sqlite", sqliteDSN(path, "_txlock=immediate"))
	if err != nil {
		return nil, fmt.Errorf("opening SQLite store %s: %w", path, err)
	}
	// One writer connection: this process's writers queue in database/sql,
	// which is fairer and cheaper than spinning on the file lock.
	w.SetMaxOpenConns(1)
	r, err := sql.Open("sqlite", sqliteDSN(path, "_query_only=1"))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("opening SQLite store %s: %w", path, err)
	}
	readers := max(4, runtime.GOMAXPROCS(0))
	r.SetMaxOpenConns(readers)
	r.SetMaxIdleConns(readers)
	s := &sqlStore{d: sqliteDialect{}, w: w, r: r, close: func() error {
		return errors.Join(r.Close(), w.Close())
	}}
	if err := w.PingContext(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("opening SQLite store %s: %w", path, err)
	}
	if err := migrate(ctx, goose.DialectSQLite3, "sqlite", w, nil, logger); err != nil {
		s.Close()
		return nil, fmt.Errorf("opening SQLite store %s: %w", path, err)
	}
	logger.Debug("store open", "backend", "sqlite", "path", path)
	return s, nil
}

func sqliteDSN(path, extra string) string {
	if strings.HasPrefix(path, "file:") {
		path = "./" + path // a plain name, not a SQLite URI
	}
	return path + "?" + sqliteParams + "&" + extra
}

// createPrivate creates path readable by its owner only, unless it exists:
// the database holds sealed passwords, and SQLite gives its -wal and -shm
// files the database file's mode. O_EXCL matters: closing a descriptor of a
// database this process has open would drop SQLite's POSIX locks on it.
func createPrivate(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return f.Close()
}
