package quotareq

import "github.com/kaizen-onboard/kaizen/internal/mail"

// Setup is a run wired from the settings (by internal/app). Close it
// after the run.
type Setup struct {
	Deps    Deps
	Options Options
	mail.Delivery
}
