package store

import (
	"context"
	"errors"
	"time"
)

func (s *sqlStore) PutPIN(ctx context.Context, userID string, pinHMAC []byte, now time.Time) error {
	if userID == "" || len(pinHMAC) == 0 {
		return errors.New("storing PIN: user ID and PIN HMAC are required")
	}
	return s.write1(ctx, "storing PIN", func(tx dbtx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO pins (user_id, pin_hmac, updated_at)
			VALUES ($1, $2, $3)
			ON CONFLICT (user_id) DO UPDATE SET
				pin_hmac = excluded.pin_hmac, updated_at = excluded.updated_at`,
			userID, pinHMAC, s.t(now))
		return err
	})
}

func (s *sqlStore) GetPIN(ctx context.Context, userID string) ([]byte, error) {
	var h []byte
	err := s.r.QueryRowContext(ctx, `SELECT pin_hmac FROM pins WHERE user_id = $1`, userID).Scan(&h)
	if err != nil {
		return nil, s.readErr("getting PIN", err)
	}
	return h, nil
}
