// Command reminders is Kaizen's scheduled daemon: it runs the
// [[reminders.job]] tables of the settings (approver digests, helpdesk
// notices, link reminders, quota-expiry warnings, mail delivery, scheduled
// imports and validation) on their cron schedules.
//
// Usage:
//
//	reminders [--config PATH] [serve [--dry-run]]
//	reminders [--config PATH] list
//	reminders [--config PATH] run JOB [--dry-run]
//	reminders [--config PATH] config check
//
// serve (the default command) runs the jobs on their schedules and serves
// /healthz and /metrics on reminders.listen until SIGTERM, which waits for
// running jobs. list prints each job with its next run times; run runs one
// job now (exit 1 when it fails). --dry-run sends and stamps nothing.
//
// Exit status: 0 success, 1 a job failed, 2 usage or configuration error.
// See docs/reminders.md and docs/operations.md.
package main
