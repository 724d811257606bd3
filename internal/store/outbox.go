package store

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
)

// messageSelect reads whole messages; bodies live in outbox_body, and a
// sent or abandoned message has none (migration 00004's trigger deletes it).
const messageSelect = `SELECT o.id, o.msg_key, o.kind, o.sender, o.recipients, b.body, o.status,
	o.attempts, o.next_attempt_at, o.lease_until, o.claim, o.last_error, o.created_at, o.sent_at
	FROM outbox o LEFT JOIN outbox_body b ON b.id = o.id`

// messageDue is Claim's condition, used twice: once to pick rows, once again
// in the UPDATE, where PostgreSQL re-checks it against the row as committed
// by a concurrent claimer (READ COMMITTED).
const messageDue = `((status = 'pending' AND next_attempt_at <= $1)
	OR (status = 'sending' AND lease_until <= $1))`

const messageExists = `SELECT 1 FROM outbox WHERE id = $1`

func scanID(row scanner) (int64, error) {
	var id int64
	err := row.Scan(&id)
	return id, err
}

func scanMessage(row scanner) (Message, error) {
	var m Message
	var to string
	err := row.Scan(&m.ID, &m.Key, &m.Kind, &m.From, &to, &m.Body, &m.Status, &m.Attempts,
		dbTime{&m.NextAttemptAt}, dbNullTime{&m.LeaseUntil}, &m.Claim, &m.LastError,
		dbTime{&m.CreatedAt}, dbNullTime{&m.SentAt})
	if err != nil {
		return Message{}, err
	}
	if err := json.Unmarshal([]byte(to), &m.To); err != nil {
		return Message{}, fmt.Errorf("decoding recipients of message %d: %w", m.ID, err)
	}
	return m, nil
}

func (s *sqlStore) Enqueue(ctx context.Context, m Message) (id int64, created bool, err error) {
	if m.Key == "" || m.Kind == "" || len(m.To) == 0 || m.CreatedAt.IsZero() {
		return 0, false, errors.New("enqueueing message: key, kind, recipients and creation time are required")
	}
	to, err := json.Marshal(m.To)
	if err != nil {
		return 0, false, fmt.Errorf("enqueueing message %q: encoding recipients: %w", m.Key, err)
	}
	next := m.NextAttemptAt
	if next.IsZero() {
		next = m.CreatedAt
	}
	err = s.write(ctx, "enqueueing message "+m.Key, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `INSERT INTO outbox
			(msg_key, kind, sender, recipients, status, next_attempt_at, created_at, updated_at)
			VALUES ($1, $2, $3, $4, 'pending', $5, $6, $6)
			ON CONFLICT (msg_key) DO NOTHING
			RETURNING id`,
			m.Key, m.Kind, m.From, string(to), s.t(next), s.t(m.CreatedAt)).Scan(&id)
		if err == nil {
			created = true
			_, err = tx.ExecContext(ctx, `INSERT INTO outbox_body (id, body) VALUES ($1, $2)`, id, bytesArg(m.Body))
			return err
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		// Already queued. In PostgreSQL a concurrent insert of the same key
		// has committed by now (ON CONFLICT waited for it), and this new
		// statement sees it.
		return tx.QueryRowContext(ctx, `SELECT id FROM outbox WHERE msg_key = $1`, m.Key).Scan(&id)
	})
	if err != nil {
		return 0, false, err
	}
	return id, created, nil
}

func (s *sqlStore) Claim(ctx context.Context, now time.Time, lease time.Duration, claim string, limit int) ([]Message, error) {
	if limit < 1 || lease <= 0 || claim == "" {
		return nil, fmt.Errorf("claiming messages: need a positive limit (%d) and lease (%s) and a claim", limit, lease)
	}
	// A read first: most runs of a scheduled sender find nothing due, and
	// a read costs no write lock, no commit and no fsync.
	var due int
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM (SELECT 1 FROM outbox WHERE `+messageDue+` LIMIT 1) AS d`, s.t(now)).Scan(&due); err != nil {
		return nil, s.readErr("looking for due messages", err)
	}
	if due == 0 {
		return nil, nil
	}
	var out []Message
	err := s.write(ctx, "claiming messages", func(tx *sql.Tx) error {
		// MATERIALIZED: pick (and in PostgreSQL lock) the rows once; an IN
		// subquery may be re-run by the planner and exceed the limit.
		ids, err := queryAll(ctx, tx, scanID, `WITH due AS MATERIALIZED (
				SELECT id FROM outbox WHERE `+messageDue+`
				ORDER BY next_attempt_at, id LIMIT $4`+s.d.skipLocked()+`
			)
			UPDATE outbox SET status = 'sending', attempts = attempts + 1,
				lease_until = $2, claim = $3, updated_at = $1
			WHERE id IN (SELECT id FROM due) AND `+messageDue+`
			RETURNING id`,
			s.t(now), s.t(now.Add(lease)), claim, limit)
		if err != nil || len(ids) == 0 {
			return err
		}
		args := make([]any, len(ids))
		for i, id := range ids {
			args[i] = id
		}
		out, err = queryAll(ctx, tx, scanMessage, messageSelect+` WHERE o.id IN (`+placeholders(1, len(ids))+`)`, args...)
		return err
	})
	if err != nil {
		return nil, err
	}
	// RETURNING has no defined order.
	slices.SortFunc(out, func(a, b Message) int {
		if c := a.NextAttemptAt.Compare(b.NextAttemptAt); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return out, nil
}

func (s *sqlStore) MarkSent(ctx context.Context, claim string, now time.Time, ids ...int64) (lost []int64, err error) {
	if len(ids) == 0 {
		return nil, nil
	}
	// $1 claim, $2 now, then one placeholder per ID.
	args := []any{claim, s.t(now)}
	for _, id := range ids {
		args = append(args, id)
	}
	var marked []int64
	err = s.write1(ctx, fmt.Sprintf("marking %d message(s) sent", len(ids)), func(tx dbtx) error {
		var err error
		marked, err = queryAll(ctx, tx, scanID, `UPDATE outbox SET status = 'sent', sent_at = $2, updated_at = $2, lease_until = NULL
			WHERE claim = $1 AND status = 'sending' AND id IN (`+placeholders(3, len(ids))+`)
			RETURNING id`, args...)
		return err
	})
	if err != nil {
		return nil, err
	}
	done := make(map[int64]bool, len(marked))
	for _, id := range marked {
		done[id] = true
	}
	for _, id := range ids {
		if !done[id] {
			lost = append(lost, id)
		}
	}
	return lost, nil
}

func (s *sqlStore) MarkFailed(ctx context.Context, id int64, claim string, now time.Time, lastError string, next time.Time, abandon bool) error {
	status := StatusPending
	if abandon {
		status = StatusAbandoned
	}
	return s.write1(ctx, fmt.Sprintf("marking message %d failed", id), func(tx dbtx) error {
		return change(ctx, tx, missingOr(ctx, tx, ErrConflict, messageExists, id),
			`UPDATE outbox SET status = $3, last_error = $4, next_attempt_at = $5,
				updated_at = $6, lease_until = NULL
			WHERE id = $1 AND claim = $2 AND status = 'sending'`,
			id, claim, string(status), lastError, s.t(next), s.t(now))
	})
}

func (s *sqlStore) GetMessage(ctx context.Context, id int64) (Message, error) {
	m, err := scanMessage(s.r.QueryRowContext(ctx, messageSelect+` WHERE o.id = $1`, id))
	if err != nil {
		return Message{}, s.readErr(fmt.Sprintf("getting message %d", id), err)
	}
	return m, nil
}

func (s *sqlStore) MessageByKey(ctx context.Context, key string) (Message, error) {
	m, err := scanMessage(s.r.QueryRowContext(ctx, messageSelect+` WHERE o.msg_key = $1`, key))
	if err != nil {
		return Message{}, s.readErr(fmt.Sprintf("getting message %q", key), err)
	}
	return m, nil
}

func (s *sqlStore) Messages(ctx context.Context, limit int, statuses ...MessageStatus) ([]Message, error) {
	query := messageSelect
	var args []any
	if len(statuses) > 0 {
		query += ` WHERE o.status IN (` + placeholders(1, len(statuses)) + `)`
		for _, st := range statuses {
			args = append(args, string(st))
		}
	}
	query, args = limitClause(query+` ORDER BY o.created_at, o.id`, args, limit)
	out, err := queryAll(ctx, s.r, scanMessage, query, args...)
	if err != nil {
		return nil, s.readErr("listing messages", err)
	}
	return out, nil
}

func (s *sqlStore) OutboxCounts(ctx context.Context) (map[MessageStatus]int, error) {
	counts := map[MessageStatus]int{
		StatusPending: 0, StatusSending: 0, StatusSent: 0, StatusAbandoned: 0,
	}
	rows, err := s.r.QueryContext(ctx, `SELECT status, count(*) FROM outbox GROUP BY status`)
	if err != nil {
		return nil, s.readErr("counting messages", err)
	}
	defer rows.Close()
	for rows.Next() {
		var st MessageStatus
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			return nil, s.readErr("counting messages", err)
		}
		counts[st] = n
	}
	if err := rows.Err(); err != nil {
		return nil, s.readErr("counting messages", err)
	}
	return counts, nil
}

func (s *sqlStore) PurgeMessages(ctx context.Context, cutoff time.Time) (int, error) {
	var n int64
	err := s.write1(ctx, "purging finished messages", func(tx dbtx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM outbox
			WHERE status IN ('sent', 'abandoned') AND updated_at < $1`, s.t(cutoff))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return int(n), err
}
