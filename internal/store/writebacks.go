package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// PendingWriteBack is a row's outcome that a run recorded but could not
// write to the sheet yet. Cells hold what the sheet shows (Status, IDs, a
// PIN redaction), never a secret.
type PendingWriteBack struct {
	Source    string // the sheet, e.g. "sheet:<id>/<worksheet>"
	Timestamp string // the row's identity: its timestamp
	Email     string // and its email (matched ignoring case)
	Row       int    // the row number last seen
	Cells     map[string]string
	Reason    string // why it is not written yet
	CreatedAt time.Time
}

// WriteBacks keeps pending write-backs, one per sheet and row identity.
type WriteBacks interface {
	// PutWriteBacks stores each record, replacing one with the same source
	// and identity, in one transaction.
	PutWriteBacks(ctx context.Context, ps []PendingWriteBack) error
	// PendingWriteBacks lists a sheet's records, oldest first.
	PendingWriteBacks(ctx context.Context, source string) ([]PendingWriteBack, error)
	// DeleteWriteBack removes a record; no error when there is none.
	DeleteWriteBack(ctx context.Context, source, timestamp, email string) error
}

func (s *sqlStore) PutWriteBacks(ctx context.Context, ps []PendingWriteBack) error {
	if len(ps) == 0 {
		return nil
	}
	for _, p := range ps {
		if p.Source == "" || (p.Timestamp == "" && p.Email == "") || len(p.Cells) == 0 {
			return errors.New("storing a pending write-back: source, identity and cells are required")
		}
	}
	return s.write(ctx, fmt.Sprintf("storing %d pending write-back(s)", len(ps)), func(tx *sql.Tx) error {
		for _, p := range ps {
			cells, err := json.Marshal(p.Cells)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO pending_writebacks
				(source, row_ts, row_email, row_number, email, cells, reason, created_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
				ON CONFLICT (source, row_ts, row_email) DO UPDATE SET
					row_number = excluded.row_number, email = excluded.email, cells = excluded.cells,
					reason = excluded.reason`,
				p.Source, strings.TrimSpace(p.Timestamp), emailKey(p.Email), p.Row, p.Email, string(cells), p.Reason, s.t(p.CreatedAt)); err != nil {
				return err
			}
		}
		return nil
	})
}

func (s *sqlStore) PendingWriteBacks(ctx context.Context, source string) ([]PendingWriteBack, error) {
	out, err := queryAll(ctx, s.r, func(row scanner) (PendingWriteBack, error) {
		var (
			p     PendingWriteBack
			cells string
		)
		if err := row.Scan(&p.Source, &p.Timestamp, &p.Row, &p.Email, &cells, &p.Reason, dbTime{&p.CreatedAt}); err != nil {
			return p, err
		}
		if err := json.Unmarshal([]byte(cells), &p.Cells); err != nil {
			return p, fmt.Errorf("decoding the pending write-back of %s: %w", p.Email, err)
		}
		return p, nil
	}, `SELECT source, row_ts, row_number, email, cells, reason, created_at
		FROM pending_writebacks WHERE source = $1 ORDER BY created_at, row_number`, source)
	if err != nil {
		return nil, s.readErr("listing pending write-backs of "+source, err)
	}
	return out, nil
}

func (s *sqlStore) DeleteWriteBack(ctx context.Context, source, timestamp, email string) error {
	return s.write1(ctx, "deleting a pending write-back", func(tx dbtx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM pending_writebacks WHERE source = $1 AND row_ts = $2 AND row_email = $3`,
			source, strings.TrimSpace(timestamp), emailKey(email))
		return err
	})
}

func emailKey(e string) string { return strings.ToLower(strings.TrimSpace(e)) }
