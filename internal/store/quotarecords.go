package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

func (s *sqlStore) PutQuotaRecord(ctx context.Context, r QuotaRecord) error {
	if r.ProjectID == "" || r.Quotas == nil {
		return errors.New("storing a quota record: project ID and quotas are required")
	}
	if (r.EndsOn == nil) != (r.Previous == nil) {
		return fmt.Errorf("storing the quota record of %s: a temporary record needs both its end and the previous quotas", r.ProjectID)
	}
	quotas, err := json.Marshal(r.Quotas)
	if err != nil {
		return fmt.Errorf("storing the quota record of %s: %w", r.ProjectID, err)
	}
	previous, err := jsonOrNull(r.Previous)
	if err != nil {
		return fmt.Errorf("storing the quota record of %s: %w", r.ProjectID, err)
	}
	before, err := jsonOrNull(r.Before)
	if err != nil {
		return fmt.Errorf("storing the quota record of %s: %w", r.ProjectID, err)
	}
	return s.write1(ctx, "storing the quota record of "+r.ProjectID, func(tx dbtx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO quota_records
			(project_id, quotas, preset, ends_on, previous, changed_at, change_key, before_quotas)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
			ON CONFLICT (project_id) DO UPDATE SET
				quotas = excluded.quotas, preset = excluded.preset, ends_on = excluded.ends_on,
				previous = excluded.previous, changed_at = excluded.changed_at,
				change_key = excluded.change_key, before_quotas = excluded.before_quotas`,
			r.ProjectID, string(quotas), r.Preset, s.nt(r.EndsOn), previous, s.t(r.ChangedAt), r.Change, before)
		return err
	})
}

// jsonOrNull encodes m, or binds NULL for a nil map.
func jsonOrNull(m map[string]int64) (any, error) {
	if m == nil {
		return nil, nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return string(b), nil
}

const quotaRecordColumns = `project_id, quotas, preset, ends_on, previous, changed_at, change_key, before_quotas`

func scanQuotaRecord(row scanner) (QuotaRecord, error) {
	var (
		r                QuotaRecord
		quotas           string
		previous, before sql.NullString
	)
	if err := row.Scan(&r.ProjectID, &quotas, &r.Preset, dbNullTime{&r.EndsOn}, &previous,
		dbTime{&r.ChangedAt}, &r.Change, &before); err != nil {
		return QuotaRecord{}, err
	}
	if err := json.Unmarshal([]byte(quotas), &r.Quotas); err != nil {
		return QuotaRecord{}, fmt.Errorf("decoding the quotas of %s: %w", r.ProjectID, err)
	}
	for _, f := range []struct {
		s  sql.NullString
		to *map[string]int64
	}{{previous, &r.Previous}, {before, &r.Before}} {
		if f.s.Valid {
			if err := json.Unmarshal([]byte(f.s.String), f.to); err != nil {
				return QuotaRecord{}, fmt.Errorf("decoding the quota record of %s: %w", r.ProjectID, err)
			}
		}
	}
	return r, nil
}

func (s *sqlStore) GetQuotaRecord(ctx context.Context, projectID string) (QuotaRecord, error) {
	r, err := scanQuotaRecord(s.r.QueryRowContext(ctx,
		`SELECT `+quotaRecordColumns+` FROM quota_records WHERE project_id = $1`, projectID))
	if err != nil {
		return QuotaRecord{}, s.readErr("reading the quota record of "+projectID, err)
	}
	return r, nil
}

func (s *sqlStore) DeleteQuotaRecord(ctx context.Context, projectID string) error {
	return s.write1(ctx, "deleting the quota record of "+projectID, func(tx dbtx) error {
		return change(ctx, tx, always(ErrNotFound), `DELETE FROM quota_records WHERE project_id = $1`, projectID)
	})
}

func (s *sqlStore) EndedQuotaRecords(ctx context.Context, day time.Time) ([]QuotaRecord, error) {
	out, err := queryAll(ctx, s.r, scanQuotaRecord, `SELECT `+quotaRecordColumns+`
		FROM quota_records WHERE ends_on IS NOT NULL AND ends_on < $1 ORDER BY ends_on, project_id`, s.t(day))
	if err != nil {
		return nil, s.readErr("listing ended temporary quotas", err)
	}
	return out, nil
}
