package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Ledger

func (s *sqlStore) RecordOnce(ctx context.Context, key string, now time.Time) (bool, error) {
	first := true
	err := s.write1(ctx, "recording "+key, func(tx dbtx) error {
		// The primary key decides between concurrent callers.
		return change(ctx, tx, func() error { first = false; return nil },
			`INSERT INTO ledger (name, recorded_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`,
			key, s.t(now))
	})
	if err != nil {
		return false, err
	}
	return first, nil
}

func (s *sqlStore) Recorded(ctx context.Context, key string) (time.Time, bool, error) {
	var at time.Time
	err := s.r.QueryRowContext(ctx, `SELECT recorded_at FROM ledger WHERE name = $1`, key).Scan(dbTime{&at})
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return time.Time{}, false, nil
	case err != nil:
		return time.Time{}, false, s.readErr("looking up "+key, err)
	}
	return at, true, nil
}

func (s *sqlStore) Forget(ctx context.Context, key string) error {
	return s.write1(ctx, "forgetting "+key, func(tx dbtx) error {
		return change(ctx, tx, always(ErrNotFound), `DELETE FROM ledger WHERE name = $1`, key)
	})
}

// Audit

func (s *sqlStore) AppendEvent(ctx context.Context, e Event) (int64, error) {
	details, err := json.Marshal(e.Details)
	if err != nil {
		return 0, fmt.Errorf("appending audit event %s: encoding details: %w", e.Action, err)
	}
	if e.Details == nil {
		details = []byte("{}")
	}
	var id int64
	err = s.write1(ctx, "appending audit event "+e.Action, func(tx dbtx) error {
		return tx.QueryRowContext(ctx, `INSERT INTO audit_events
			(occurred_at, actor, action, target, source, details)
			VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`,
			s.t(e.At), e.Actor, e.Action, e.Target, e.Source, string(details)).Scan(&id)
	})
	return id, err
}

func scanEvent(row scanner) (Event, error) {
	var e Event
	var details string
	err := row.Scan(&e.ID, dbTime{&e.At}, &e.Actor, &e.Action, &e.Target, &e.Source, &details)
	if err != nil {
		return Event{}, err
	}
	if err := json.Unmarshal([]byte(details), &e.Details); err != nil {
		return Event{}, fmt.Errorf("decoding details of audit event %d: %w", e.ID, err)
	}
	if len(e.Details) == 0 {
		e.Details = nil
	}
	return e, nil
}

func (s *sqlStore) Events(ctx context.Context, since time.Time, target string, limit int) ([]Event, error) {
	query := `SELECT id, occurred_at, actor, action, target, source, details
		FROM audit_events WHERE occurred_at >= $1`
	args := []any{s.t(since)}
	if target != "" {
		query += ` AND target = $2`
		args = append(args, target)
	}
	query, args = limitClause(query+` ORDER BY occurred_at, id`, args, limit)
	out, err := queryAll(ctx, s.r, scanEvent, query, args...)
	if err != nil {
		return nil, s.readErr("listing audit events", err)
	}
	return out, nil
}

// Locks

func (s *sqlStore) AcquireLock(ctx context.Context, name, owner string, now time.Time, ttl time.Duration) error {
	if name == "" || owner == "" || ttl <= 0 {
		return fmt.Errorf("acquiring lock %q: need a name, an owner and a positive TTL", name)
	}
	return s.write1(ctx, "acquiring lock "+name, func(tx dbtx) error {
		// Insert, or take over a row that is ours or expired; a row held by
		// someone else is left alone and nothing changes.
		return change(ctx, tx, always(ErrConflict), `INSERT INTO locks (name, owner, expires_at)
			VALUES ($1, $2, $3)
			ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
			WHERE locks.owner = excluded.owner OR locks.expires_at <= $4`,
			name, owner, s.t(now.Add(ttl)), s.t(now))
	})
}

func (s *sqlStore) ReleaseLock(ctx context.Context, name, owner string) error {
	return s.write1(ctx, "releasing lock "+name, func(tx dbtx) error {
		return change(ctx, tx, always(ErrConflict),
			`DELETE FROM locks WHERE name = $1 AND owner = $2`, name, owner)
	})
}

func (s *sqlStore) LockHolder(ctx context.Context, name string) (owner string, until time.Time, err error) {
	err = s.r.QueryRowContext(ctx, `SELECT owner, expires_at FROM locks WHERE name = $1`, name).Scan(&owner, dbTime{&until})
	if err != nil {
		return "", time.Time{}, s.readErr("reading lock "+name, err)
	}
	return owner, until, nil
}
