package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

const tokenCols = `hash, user_id, pin_hmac, sealed_password, purpose, created_at, expires_at,
	attempts, locked_at, used_at`

// tokenLive is the condition for a token that may still be used at $now.
func tokenLive(now string) string {
	return `used_at IS NULL AND locked_at IS NULL AND expires_at > ` + now
}

func scanToken(row scanner) (Token, error) {
	var t Token
	err := row.Scan(&t.Hash, &t.UserID, &t.PINHMAC, &t.SealedPassword, &t.Purpose,
		dbTime{&t.CreatedAt}, dbTime{&t.ExpiresAt}, &t.Attempts,
		dbNullTime{&t.LockedAt}, dbNullTime{&t.UsedAt})
	return t, err
}

func (s *sqlStore) PutToken(ctx context.Context, t Token) error {
	if len(t.Hash) == 0 || t.UserID == "" {
		return errors.New("storing token: hash and user ID are required")
	}
	// An upsert on user_id replaces the user's token in one statement, so
	// two concurrent re-issues cannot both insert.
	return s.write1(ctx, "storing token", func(tx dbtx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO tokens (`+tokenCols+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
			ON CONFLICT (user_id) DO UPDATE SET
				hash = excluded.hash, pin_hmac = excluded.pin_hmac,
				sealed_password = excluded.sealed_password, purpose = excluded.purpose,
				created_at = excluded.created_at, expires_at = excluded.expires_at,
				attempts = excluded.attempts, locked_at = excluded.locked_at,
				used_at = excluded.used_at`,
			t.Hash, t.UserID, bytesArg(t.PINHMAC), bytesArg(t.SealedPassword), t.Purpose,
			s.t(t.CreatedAt), s.t(t.ExpiresAt), t.Attempts, s.nt(t.LockedAt), s.nt(t.UsedAt))
		return err
	})
}

func (s *sqlStore) GetToken(ctx context.Context, hash []byte) (Token, error) {
	t, err := scanToken(s.r.QueryRowContext(ctx,
		`SELECT `+tokenCols+` FROM tokens WHERE hash = $1`, hash))
	if err != nil {
		return Token{}, s.readErr("getting token", err)
	}
	return t, nil
}

func (s *sqlStore) GetTokenByUser(ctx context.Context, userID string) (Token, error) {
	t, err := scanToken(s.r.QueryRowContext(ctx,
		`SELECT `+tokenCols+` FROM tokens WHERE user_id = $1`, userID))
	if err != nil {
		return Token{}, s.readErr("getting token by user", err)
	}
	return t, nil
}

const tokenExists = `SELECT 1 FROM tokens WHERE hash = $1`

func (s *sqlStore) RecordAttempt(ctx context.Context, hash []byte, now time.Time, max int) (attempts int, last bool, err error) {
	if max < 1 {
		return 0, false, fmt.Errorf("recording PIN attempt: max attempts %d is not positive", max)
	}
	err = s.write1(ctx, "recording PIN attempt", func(tx dbtx) error {
		// One conditional UPDATE: the count cannot be raced past max.
		err := tx.QueryRowContext(ctx, `UPDATE tokens SET attempts = attempts + 1
			WHERE hash = $1 AND attempts < $2 AND `+tokenLive("$3")+`
			RETURNING attempts`,
			hash, max, s.t(now)).Scan(&attempts)
		if errors.Is(err, sql.ErrNoRows) {
			return missingOr(ctx, tx, ErrConflict, tokenExists, hash)()
		}
		return err
	})
	if err != nil {
		return 0, false, err
	}
	return attempts, attempts >= max, nil
}

func (s *sqlStore) ReleaseToken(ctx context.Context, hash []byte, usedAt time.Time) error {
	return s.write1(ctx, "releasing token", func(tx dbtx) error {
		return change(ctx, tx, missingOr(ctx, tx, ErrConflict, tokenExists, hash),
			`UPDATE tokens SET used_at = NULL, attempts = 0 WHERE hash = $1 AND used_at = $2`,
			hash, s.t(usedAt))
	})
}

func (s *sqlStore) LockToken(ctx context.Context, hash []byte, now time.Time) error {
	return s.write1(ctx, "locking token", func(tx dbtx) error {
		return change(ctx, tx, missingOr(ctx, tx, nil, tokenExists, hash),
			`UPDATE tokens SET locked_at = $2 WHERE hash = $1 AND locked_at IS NULL`, hash, s.t(now))
	})
}

func (s *sqlStore) ResetAttempts(ctx context.Context, hash []byte) error {
	return s.write1(ctx, "resetting PIN attempts", func(tx dbtx) error {
		return change(ctx, tx, always(ErrNotFound),
			`UPDATE tokens SET attempts = 0 WHERE hash = $1`, hash)
	})
}

func (s *sqlStore) ConsumeToken(ctx context.Context, hash []byte, now time.Time) error {
	return s.write1(ctx, "consuming token", func(tx dbtx) error {
		return change(ctx, tx, missingOr(ctx, tx, ErrConflict, tokenExists, hash),
			`UPDATE tokens SET used_at = $2, attempts = 0 WHERE hash = $1 AND `+tokenLive("$2"),
			hash, s.t(now))
	})
}

func (s *sqlStore) PurgeTokens(ctx context.Context, cutoff time.Time) (int, error) {
	var n int
	err := s.write1(ctx, "purging tokens", func(tx dbtx) error {
		res, err := tx.ExecContext(ctx,
			`DELETE FROM tokens WHERE expires_at < $1 OR used_at < $1`, s.t(cutoff))
		if err != nil {
			return err
		}
		rows, err := res.RowsAffected()
		n = int(rows)
		return err
	})
	return n, err
}

func (s *sqlStore) PendingTokens(ctx context.Context, createdBefore time.Time, limit int) ([]Token, error) {
	query, args := limitClause(`SELECT `+tokenCols+` FROM tokens
		WHERE used_at IS NULL AND locked_at IS NULL AND created_at < $1
		ORDER BY created_at, hash`, []any{s.t(createdBefore)}, limit)
	out, err := queryAll(ctx, s.r, scanToken, query, args...)
	if err != nil {
		return nil, s.readErr("listing pending tokens", err)
	}
	return out, nil
}
