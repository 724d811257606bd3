package account

import (
	"context"
	"log/slog"
	"time"

	"github.com/kaizen-onboard/kaizen/internal/store"
)

// EventLog is where audit records go (store.Audit).
type EventLog interface {
	AppendEvent(ctx context.Context, e store.Event) (int64, error)
}

// Auditor records one change: what the services here need of a [Recorder].
type Auditor interface {
	Record(ctx context.Context, action, target string, details map[string]string)
}

// Recorder writes audit records to the store and the log, for every
// program: a failing store write is logged, not returned, since the change
// it records has already happened.
type Recorder struct {
	events EventLog // nil: the log only (a plan, a command that changes nothing)
	logger *slog.Logger
	actor  string
	source string
	now    func() time.Time
	attrs  []any
}

// NewRecorder records as actor (who ran kaizen) from source (e.g.
// "addusers reset-password"), stamped with now. events nil records to the
// log only; logger nil discards the log lines.
func NewRecorder(events EventLog, logger *slog.Logger, actor, source string, now func() time.Time) *Recorder {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Recorder{events: events, logger: logger, actor: actor, source: source, now: now}
}

// With is r with another source (e.g. one sheet row's) and attrs added to
// its log lines.
func (r *Recorder) With(source string, attrs ...any) *Recorder {
	c := *r
	c.source = source
	c.attrs = append(append([]any(nil), r.attrs...), attrs...)
	return &c
}

// Record records one change to target.
func (r *Recorder) Record(ctx context.Context, action, target string, details map[string]string) {
	args := append([]any{"actor", r.actor, "action", action, "target", target, "source", r.source}, r.attrs...)
	r.logger.Info("audit", append(args, "details", details)...)
	if r.events == nil {
		return
	}
	_, err := r.events.AppendEvent(context.WithoutCancel(ctx), store.Event{
		At: r.now().UTC(), Actor: r.actor, Action: action, Target: target, Source: r.source, Details: details,
	})
	if err != nil {
		r.logger.Error("writing an audit record", "action", action, "target", target, "err", err)
	}
}
