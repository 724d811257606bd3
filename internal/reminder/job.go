// Package reminder runs Kaizen's scheduled jobs: approval digests, helpdesk
// notices, scheduled imports, reminders for unused set-password links,
// quota-expiry warnings, drift checks (addusers validate) and mail delivery.
//
// A job is a plain value with a Run method; the scheduler (cron/v3 in the
// daemon, or a simulated clock in tests) decides when. Every message a job
// sends has a ledger key (job, subject, period) recorded in the store under
// a unique constraint before the mail is queued, so a restart, a manual
// `reminders run`, overlapping schedules or a second replica never send the
// same reminder twice.
package reminder

import (
	"context"
	"log/slog"
	"time"
)

// Job is one configured job of some kind.
type Job interface {
	// Run does one run at rc.Now. It returns what it did; an error means
	// the run failed (it is logged, counted and retried at the next run)
	// and may come with partial results.
	Run(ctx context.Context, rc RunContext) (Result, error)
}

// RunContext is what the scheduler passes to each run.
type RunContext struct {
	// Now is the run's time from the injected clock; jobs never call
	// time.Now themselves.
	Now time.Time
	// DryRun: report what would be sent, send and stamp nothing, record no
	// ledger key.
	DryRun bool
	Logger *slog.Logger
}

// Result is what one run did.
type Result struct {
	Sent    int      // messages queued (or, in a dry run, that would be)
	Skipped int      // candidates already reminded (ledger) or not yet due
	Lines   []string // one line per message or action, for `run` and --dry-run
	// Retries are the OpenStack requests the run repeated after transient
	// faults, by service (import jobs).
	Retries map[string]int
}

// LedgerKey joins a reminder's job, subject and period into the key the
// store records once: e.g. LedgerKey("link-reminder", userID, "first").
func LedgerKey(job, subject, period string) string {
	return "reminder:" + job + ":" + subject + ":" + period
}
