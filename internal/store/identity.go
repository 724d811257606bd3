package store

import (
	"context"
	"database/sql"
	"fmt"
)

// Identity names a store apart from its connection string, which may hold
// a password and differs between hosts reaching one database.
type Identity interface {
	// StoreID returns the store's ID, first recording newID as it when the
	// store has none yet. Concurrent first callers all get the one ID that
	// won; newID must not be empty.
	StoreID(ctx context.Context, newID string) (string, error)
}

func (s *sqlStore) StoreID(ctx context.Context, newID string) (string, error) {
	if newID == "" {
		return "", fmt.Errorf("recording the store ID: empty ID")
	}
	var id string
	err := s.write(ctx, "recording the store ID", func(tx *sql.Tx) error {
		// The primary key decides between concurrent first callers.
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO store_meta (name, value) VALUES ('store_id', $1) ON CONFLICT (name) DO NOTHING`, newID); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, `SELECT value FROM store_meta WHERE name = 'store_id'`).Scan(&id)
	})
	if err != nil {
		return "", err
	}
	return id, nil
}
