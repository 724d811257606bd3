package main

import (
	"fmt"
	"io"

	"github.com/kaizen-onboard/kaizen/internal/account"
	"github.com/kaizen-onboard/kaizen/internal/app"
	"github.com/kaizen-onboard/kaizen/internal/store"
)

// recorder is what the helpdesk commands (domain-manager, reset-password)
// tell the operator.
type recorder struct {
	out io.Writer
}

func (r *recorder) say(format string, args ...any) {
	fmt.Fprintf(r.out, format+"\n", args...)
}

// auditRecorder is the audit recorder of a helpdesk command: source is
// the records' source, e.g. "addusers reset-password"; st nil records to
// the log only.
func auditRecorder(a *app.App, st store.Store, source string) *account.Recorder {
	var events account.EventLog
	if st != nil {
		events = st
	}
	return account.NewRecorder(events, a.Logger, a.Actor(), source, a.Now)
}
