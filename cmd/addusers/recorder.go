package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/kaizen-onboard/kaizen/internal/store"
)

// recorder is what the helpdesk commands (domain-manager, reset-password)
// tell the operator and what they write to the audit log.
type recorder struct {
	store  store.Store // nil for domain-manager list, which changes nothing
	logger *slog.Logger
	out    io.Writer
	actor  string
	source string // the audit records' source, e.g. "addusers reset-password"
}

func (r *recorder) say(format string, args ...any) {
	fmt.Fprintf(r.out, format+"\n", args...)
}

// audit records one change in the store and the log, like onboard: a
// failing audit write is logged, not fatal, since the change happened.
func (r *recorder) audit(ctx context.Context, action, target string, details map[string]string) {
	r.logger.Info("audit", "actor", r.actor, "action", action, "target", target, "source", r.source, "details", details)
	_, err := r.store.AppendEvent(context.WithoutCancel(ctx), store.Event{
		At: time.Now().UTC(), Actor: r.actor, Action: action, Target: target, Source: r.source, Details: details,
	})
	if err != nil {
		r.logger.Error("writing an audit record", "action", action, "target", target, "err", err)
	}
}
