package reminder

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/kaizen-onboard/kaizen/internal/config"
	"github.com/kaizen-onboard/kaizen/internal/mail"
	"github.com/kaizen-onboard/kaizen/internal/store"
)

// Drainer delivers the queued mail that is due (mail.Outbox).
type Drainer interface {
	Drain(ctx context.Context) (mail.Report, error)
}

// QueuedMessages lists queued mail, for a dry run (store.Outbox).
type QueuedMessages interface {
	Messages(ctx context.Context, limit int, statuses ...store.MessageStatus) ([]store.Message, error)
}

// MessagePurger deletes finished messages (store.Outbox).
type MessagePurger interface {
	PurgeMessages(ctx context.Context, cutoff time.Time) (int, error)
}

// OutboxDeps are what an outbox job needs.
type OutboxDeps struct {
	// Outbox delivers; its clock must be the scheduler's.
	Outbox Drainer
	// Queue lists what a dry run would deliver.
	Queue QueuedMessages
	// Purge and Retention (mail.retention): each run deletes what is left
	// of messages delivered or abandoned longer than Retention ago (their
	// bodies went at once). Nil or 0: nothing is purged.
	Purge     MessagePurger
	Retention time.Duration
}

type outboxJob struct {
	name string
	d    OutboxDeps
}

// NewOutboxJob returns an outbox job: each run delivers the queued mail that
// is due, so mail queued by addusers --no-deliver, by the other jobs or
// waiting for a retry goes out. Result.Sent counts deliveries. A message
// that fails is retried by a later run after its backoff; only a store
// failure fails the run. Each run also purges the metadata of messages
// finished more than mail.retention ago: it is the one job that does.
func NewOutboxJob(j config.Job, d OutboxDeps) (Job, error) {
	if d.Outbox == nil || d.Queue == nil {
		return nil, fmt.Errorf("reminders job %q: an outbox job needs the mail outbox and the store", j.Name)
	}
	return &outboxJob{name: j.Name, d: d}, nil
}

// dryRunList bounds the messages a dry run lists.
const dryRunList = 1000

func (o *outboxJob) Run(ctx context.Context, rc RunContext) (Result, error) {
	if rc.DryRun {
		return o.dryRun(ctx, rc)
	}
	rep, err := o.d.Outbox.Drain(ctx)
	res := Result{Sent: rep.Sent}
	if rep.Sent > 0 {
		res.Lines = append(res.Lines, fmt.Sprintf("delivered %d message(s)", rep.Sent))
	}
	for _, f := range rep.Failures {
		what := "will retry"
		if f.Abandoned {
			what = "abandoned"
		}
		res.Lines = append(res.Lines, fmt.Sprintf("not delivered (%s): %s to %s: %s", what, f.Key, strings.Join(f.To, ", "), f.Err))
	}
	if rep.Abandoned > 0 && rc.Logger != nil {
		rc.Logger.Warn("mail abandoned", "count", rep.Abandoned)
	}
	if err != nil {
		return res, fmt.Errorf("delivering mail: %w", err)
	}
	if o.d.Purge == nil || o.d.Retention <= 0 {
		return res, nil
	}
	n, err := o.d.Purge.PurgeMessages(ctx, rc.Now.Add(-o.d.Retention))
	if err != nil {
		return res, fmt.Errorf("purging finished mail older than %s: %w", o.d.Retention, err)
	}
	if n > 0 {
		res.Lines = append(res.Lines, fmt.Sprintf("purged %d message(s) delivered or abandoned more than %s ago", n, config.Dur(o.d.Retention)))
	}
	return res, nil
}

// dryRun lists the messages a drain at rc.Now would claim, claiming none.
func (o *outboxJob) dryRun(ctx context.Context, rc RunContext) (Result, error) {
	msgs, err := o.d.Queue.Messages(ctx, 0, store.StatusPending, store.StatusSending)
	if err != nil {
		return Result{}, fmt.Errorf("listing queued mail: %w", err)
	}
	var res Result
	for _, m := range msgs {
		due := m.Status == store.StatusPending && !m.NextAttemptAt.After(rc.Now) ||
			m.Status == store.StatusSending && m.LeaseUntil != nil && !m.LeaseUntil.After(rc.Now)
		if !due {
			res.Skipped++
			continue
		}
		res.Sent++
		if res.Sent <= dryRunList {
			res.Lines = append(res.Lines, fmt.Sprintf("would deliver %s mail %s to %s", m.Kind, m.Key, strings.Join(m.To, ", ")))
		}
	}
	if res.Sent > dryRunList {
		res.Lines = append(res.Lines, fmt.Sprintf("... and %d more", res.Sent-dryRunList))
	}
	return res, nil
}
