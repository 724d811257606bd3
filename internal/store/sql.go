package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// dialect is what differs between the backends; the SQL itself is shared
// ($N placeholders work in both: modernc binds $N to the N-th argument).
type dialect interface {
	// timeArg converts t for binding: SQLite stores microseconds since the
	// epoch, PostgreSQL a timestamptz. Both keep microseconds.
	timeArg(t time.Time) any
	// skipLocked is appended to Claim's row selection.
	skipLocked() string
	// conflict reports whether err is a uniqueness or serialization failure.
	conflict(err error) bool
	// statementTx reports whether a single-statement write needs an explicit
	// transaction: SQLite does (BEGIN IMMEDIATE takes the write lock up
	// front); in PostgreSQL one statement is atomic by itself, and BEGIN and
	// COMMIT would cost two more round trips.
	statementTx() bool
}

// sqlStore implements Store on database/sql. Writes go through w (write, or
// write1 for a single statement, which PostgreSQL runs without a
// transaction); plain reads through r. For PostgreSQL both are one pool; for
// SQLite w is a single connection (writers queue in Go, not on the file lock)
// and r a read-only pool.
type sqlStore struct {
	d     dialect
	w, r  *sql.DB
	close func() error
}

var _ Store = (*sqlStore)(nil)

func (s *sqlStore) Ping(ctx context.Context) error {
	var one int
	if err := s.r.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("pinging the store: %w", err)
	}
	return nil
}

func (s *sqlStore) Close() error { return s.close() }

// write runs fn in a write transaction (BEGIN IMMEDIATE in SQLite, so a
// writer waits for the file lock up front instead of failing to upgrade a
// read lock). Errors are wrapped with what and mapped onto the sentinels.
func (s *sqlStore) write(ctx context.Context, what string, fn func(tx *sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("%s: beginning transaction: %w", what, err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback() // the error from fn is the one that matters
		return fmt.Errorf("%s: %w", what, s.mapErr(err))
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("%s: committing: %w", what, s.mapErr(err))
	}
	return nil
}

// dbtx is what a write runs its statements on: a transaction, or the pool
// itself for a single statement in autocommit.
type dbtx interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// write1 runs a write made of one statement (its no-row lookup, which only
// tells ErrNotFound from ErrConflict, may follow outside it). Where the
// dialect allows, it runs without BEGIN and COMMIT.
func (s *sqlStore) write1(ctx context.Context, what string, fn func(q dbtx) error) error {
	if s.d.statementTx() {
		return s.write(ctx, what, func(tx *sql.Tx) error { return fn(tx) })
	}
	if err := fn(s.w); err != nil {
		return fmt.Errorf("%s: %w", what, s.mapErr(err))
	}
	return nil
}

// mapErr adds ErrConflict or ErrNotFound to driver errors that mean them,
// keeping the driver's error in the chain.
func (s *sqlStore) mapErr(err error) error {
	switch {
	case errors.Is(err, ErrConflict), errors.Is(err, ErrNotFound):
		return err
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	case s.d.conflict(err):
		return fmt.Errorf("%w: %w", ErrConflict, err)
	}
	return err
}

// readErr wraps an error from a read with what, mapping sql.ErrNoRows.
func (s *sqlStore) readErr(what string, err error) error {
	return fmt.Errorf("%s: %w", what, s.mapErr(err))
}

// t binds a time; nt a nullable one.
func (s *sqlStore) t(v time.Time) any { return s.d.timeArg(v) }

func (s *sqlStore) nt(v *time.Time) any {
	if v == nil {
		return nil
	}
	return s.d.timeArg(*v)
}

// change runs an UPDATE or DELETE in tx; when it changes no row the result
// is none()'s: ErrNotFound, ErrConflict, or a lookup telling them apart.
func change(ctx context.Context, tx dbtx, none func() error, query string, args ...any) error {
	res, err := tx.ExecContext(ctx, query, args...)
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return none()
	}
	return nil
}

// always is a none for change that needs no lookup.
func always(err error) func() error { return func() error { return err } }

// missingOr is a none for change: ErrNotFound when query (SELECT 1 … WHERE …)
// finds no row, else otherwise (the row exists but was not in a state to
// change).
func missingOr(ctx context.Context, tx dbtx, otherwise error, query string, args ...any) func() error {
	return func() error {
		var one int
		err := tx.QueryRowContext(ctx, query, args...).Scan(&one)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return ErrNotFound
		case err != nil:
			return err
		}
		return otherwise
	}
}

type scanner interface{ Scan(dest ...any) error }

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// queryAll runs query and scans every row with scan.
func queryAll[T any](ctx context.Context, q querier, scan func(scanner) (T, error), query string, args ...any) ([]T, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// limitClause appends " LIMIT $n" for limit > 0 (0 means no limit).
func limitClause(query string, args []any, limit int) (string, []any) {
	if limit <= 0 {
		return query, args
	}
	args = append(args, limit)
	return query + " LIMIT $" + strconv.Itoa(len(args)), args
}

// placeholders returns "$from, $from+1, …" for n arguments.
func placeholders(from, n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("$" + strconv.Itoa(from+i))
	}
	return b.String()
}

// dbTime scans a time stored by either backend and returns it in UTC.
type dbTime struct{ t *time.Time }

func (d dbTime) Scan(src any) error {
	switch v := src.(type) {
	case int64:
		*d.t = time.UnixMicro(v).UTC()
	case time.Time:
		*d.t = v.UTC()
	default:
		return fmt.Errorf("scanning a time: unexpected %T", src)
	}
	return nil
}

// dbNullTime scans a nullable time into a *time.Time.
type dbNullTime struct{ t **time.Time }

func (d dbNullTime) Scan(src any) error {
	if src == nil {
		*d.t = nil
		return nil
	}
	var t time.Time
	if err := (dbTime{&t}).Scan(src); err != nil {
		return err
	}
	*d.t = &t
	return nil
}

// bytesArg keeps an empty byte slice from being bound as NULL.
func bytesArg(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// utcMicro is how a time comes back from the store.
func utcMicro(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }
