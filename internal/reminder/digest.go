package reminder

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/kaizen-onboard/kaizen/internal/config"
	"github.com/kaizen-onboard/kaizen/internal/mail"
)

// Defaults of the approver-digest job.
const (
	DefaultDigestStart    = 24 * time.Hour
	DefaultDigestInterval = 24 * time.Hour
	DefaultDigestColumn   = "Reminder Sent"
)

// approverDigest is the approver-digest job (MOC's
// check-approved-requests): one mail to the approvers listing the sign-ups
// that have waited longer than start for a decision.
type approverDigest struct {
	*signupJob
	start, interval time.Duration
}

// NewApproverDigest builds an approver-digest job. Each run mails j.To
// (required) one digest of the pending rows: rows whose Approved cell is
// blank (no decision yet: a row marked with anything else, such as "no" or
// "rejected", has had its decision and is left out), whose Status is blank
// (not processed), and whose Timestamp is at least j.Start (default 24h)
// old at the run's time. A row whose Timestamp cannot be read is included
// (with a warning): its age is unknown, and a request must not wait
// unseen.
//
// Each row is included at most once per period of j.Interval (default
// 24h): periods are counted from the Unix epoch (for 24h, UTC days), and
// the ledger key is LedgerKey(j.Name, row identity hash, period index), the
// identity being the row's timestamp and email, never its number. As the
// periods do not start when a row was last mailed, a row mailed in the
// previous period is also left out until j.Interval has passed since (less
// a slack of 5% of the interval, at most an hour, for the schedule's
// jitter): a row first mailed late in one period is not mailed again early
// in the next.
//
// The included rows' j.Column (default "Reminder Sent") is stamped with the
// run's time; a sheet without that column is mailed all the same.
//
// With sheet.all_approved every row counts as approved, so nothing ever
// awaits approval: that combination is a configuration error.
func NewApproverDigest(j config.Job, d SheetJobDeps) (Job, error) {
	if d.AllApproved {
		return nil, fmt.Errorf("job %q: an approver-digest job makes no sense with sheet.all_approved = true "+
			"(every row counts as approved, so none waits for approval); remove or disable the job", j.Name)
	}
	if len(j.To) == 0 {
		return nil, fmt.Errorf("job %q: approver-digest needs \"to\": the approvers' addresses", j.Name)
	}
	s, err := newSignupJob(j, d, mail.KindApproverDigest, DefaultDigestColumn, j.To)
	if err != nil {
		return nil, err
	}
	a := &approverDigest{signupJob: s, start: j.Start.D, interval: j.Interval.D}
	if a.start == 0 {
		a.start = DefaultDigestStart
	}
	if a.interval == 0 {
		a.interval = DefaultDigestInterval
	}
	if a.start < 0 || a.interval < 0 {
		return nil, fmt.Errorf("job %q: start and interval must not be negative", j.Name)
	}
	return a, nil
}

// digestPeriod is the index of the interval-long period holding now,
// counted from the Unix epoch.
func digestPeriod(now time.Time, interval time.Duration) int64 {
	n, iv := now.UnixNano(), int64(interval)
	p := n / iv
	if n%iv < 0 {
		p--
	}
	return p
}

// slack is how much early a run may be and still remind a row one interval
// after its last reminder, so that a schedule's jitter (a daily run a few
// milliseconds "early") does not skip a whole period.
func (a *approverDigest) slack() time.Duration { return min(a.interval/20, time.Hour) }

func (a *approverDigest) Run(ctx context.Context, rc RunContext) (Result, error) {
	log := a.logger(rc)
	var res Result
	rows, stampable, err := a.read(ctx, log)
	if err != nil {
		return res, fmt.Errorf("%s: %w", a.name, err)
	}
	period := digestPeriod(rc.Now, a.interval)
	var picks []signupPick
	for _, r := range rows {
		if r.approved || r.approval != "" || r.status != "" {
			continue // decided or processed: not a candidate
		}
		if r.submitted.IsZero() {
			log.Warn("pending sign-up row has an unreadable Timestamp; included in the digest", "row", r.number, "timestamp", r.id.Timestamp)
		} else if rc.Now.Sub(r.submitted) < a.start {
			res.Skipped++ // not yet due
			continue
		}
		// Periods are aligned to the epoch, not to the row: the row's last
		// mail, in the previous period, may be recent.
		rowKey := signupRowKey(r.id)
		last, sent, err := a.deps.Ledger.Recorded(ctx, LedgerKey(a.name, rowKey, strconv.FormatInt(period-1, 10)))
		if err != nil {
			return res, fmt.Errorf("%s: looking up %s in the ledger: %w", a.name, r, err)
		}
		if sent && rc.Now.Sub(last) < a.interval-a.slack() {
			res.Skipped++ // reminded less than an interval ago
			continue
		}
		picks = append(picks, signupPick{row: r, key: LedgerKey(a.name, rowKey, strconv.FormatInt(period, 10))})
	}
	build := func(rows []signupRow) any {
		data := mail.ApproverDigestData{SheetURL: a.deps.SheetURL}
		for _, r := range rows {
			data.Requests = append(data.Requests, mail.PendingRequest{
				Name: r.name, Email: r.email, Project: r.project, Comment: r.comment, SubmittedAt: r.submitted,
			})
		}
		return data
	}
	err = a.deliver(ctx, rc, log, picks, stampable, "digest", "approver digest", build, &res)
	if err != nil {
		return res, fmt.Errorf("%s: %w", a.name, err)
	}
	return res, nil
}
