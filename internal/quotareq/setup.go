package quotareq

import (
	"io"

	"github.com/kaizen-onboard/kaizen/internal/mail"
)

// Setup is a run wired from the settings (by internal/app).
type Setup struct {
	Deps    Deps
	Options Options
	// Outbox delivers the queued mail; nil in a dry run.
	Outbox  *mail.Outbox
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
