package store

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// A user's pin_guards row is what concurrent writers for that user queue
// on: each write first upserts it, which in PostgreSQL takes the row's
// lock until commit (SQLite serialises all writers anyway). Under READ
// COMMITTED every later statement of the transaction sees what the
// previous holder committed, so counts cannot be raced.
const guardRow = `INSERT INTO pin_guards (user_id) VALUES ($1)
	ON CONFLICT (user_id) DO UPDATE SET user_id = excluded.user_id`

func (s *sqlStore) RecordPINFailure(ctx context.Context, userID string, now time.Time, window time.Duration) (int, error) {
	if userID == "" || window <= 0 {
		return 0, errors.New("recording a wrong PIN: user ID and a positive window are required")
	}
	cutoff := s.t(now.Add(-window))
	var n int
	err := s.write(ctx, "recording a wrong PIN", func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, guardRow, userID); err != nil {
			return err
		}
		// Failures out of the window are never counted again.
		if _, err := tx.ExecContext(ctx, `DELETE FROM pin_failures WHERE user_id = $1 AND at <= $2`, userID, cutoff); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO pin_failures (user_id, at) VALUES ($1, $2)`, userID, s.t(now)); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM pin_failures WHERE user_id = $1 AND at > $2`,
			userID, cutoff).Scan(&n)
	})
	return n, err
}

func (s *sqlStore) LockPIN(ctx context.Context, userID string, now time.Time) (time.Time, bool, error) {
	if userID == "" {
		return time.Time{}, false, errors.New("locking a PIN: user ID is required")
	}
	var at time.Time
	var locked bool
	err := s.write(ctx, "locking a PIN", func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, guardRow, userID); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `UPDATE pin_guards SET locked_at = $2 WHERE user_id = $1 AND locked_at IS NULL`,
			userID, s.t(now))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 1 {
			locked = n == 1
			return err
		}
		return tx.QueryRowContext(ctx, `SELECT locked_at FROM pin_guards WHERE user_id = $1`, userID).Scan(dbTime{&at})
	})
	if err != nil {
		return time.Time{}, false, err
	}
	if locked {
		at = utcMicro(now)
	}
	return at, locked, nil
}

func (s *sqlStore) PINLock(ctx context.Context, userID string) (time.Time, bool, error) {
	var at *time.Time
	err := s.r.QueryRowContext(ctx, `SELECT locked_at FROM pin_guards WHERE user_id = $1`, userID).Scan(dbNullTime{&at})
	if errors.Is(err, sql.ErrNoRows) || err == nil && at == nil {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, s.readErr("reading a PIN lock", err)
	}
	return *at, true, nil
}

func (s *sqlStore) ResetPIN(ctx context.Context, userID string, pinHMAC []byte, now time.Time) error {
	if userID == "" || len(pinHMAC) == 0 {
		return errors.New("resetting a PIN: user ID and PIN HMAC are required")
	}
	return s.write(ctx, "resetting a PIN", func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, guardRow, userID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO pins (user_id, pin_hmac, updated_at) VALUES ($1, $2, $3)
			ON CONFLICT (user_id) DO UPDATE SET pin_hmac = excluded.pin_hmac, updated_at = excluded.updated_at`,
			userID, pinHMAC, s.t(now)); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE pin_guards SET locked_at = NULL WHERE user_id = $1`, userID); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM pin_failures WHERE user_id = $1`, userID)
		return err
	})
}
