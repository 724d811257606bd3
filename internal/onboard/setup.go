package onboard

import (
	"io"

	"github.com/kaizen-onboard/kaizen/internal/mail"
)

// Setup is a run wired from the settings (by internal/app): what addusers
// import and the reminders daemon's import job both use.
type Setup struct {
	Deps    Deps
	Options Options
	// Outbox delivers the queued mail; nil in a dry run.
	Outbox *mail.Outbox
	// Deliver is false when the outbox was built without a transport.
	Deliver bool
	// Closer, when set, releases what was opened for this run alone (the
	// mail transport).
	Closer io.Closer
}

// Close releases what was opened for the run.
func (s *Setup) Close() error {
	if s.Closer == nil {
		return nil
	}
	return s.Closer.Close()
}
