package onboard

import "github.com/kaizen-onboard/kaizen/internal/mail"

// Setup is a run wired from the settings (by internal/app): what addusers
// import and the reminders daemon's import job both use. Close it after
// the run.
type Setup struct {
	Deps    Deps
	Options Options
	mail.Delivery
}
