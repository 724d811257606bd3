package reminder

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/kaizen-onboard/kaizen/internal/config"
	"github.com/kaizen-onboard/kaizen/internal/onboard"
)

// ImportDeps are what an import job needs.
type ImportDeps struct {
	// Open wires one run (app.App.Import on the daemon's store); the
	// job closes the Setup after the run. It is called at each run, so a
	// cloud or sheet that is down fails that run only.
	Open func(ctx context.Context, dryRun bool) (*onboard.Setup, error)
	// Now is the clock (default time.Now).
	Now func() time.Time
}

type importJob struct {
	name string
	d    ImportDeps
}

// NewImport returns an import job: each run is an addusers import of the
// configured sheet (approved rows not yet done are applied and their
// outcomes written back; the mail is queued, and delivered at once unless
// an outbox job does that). It is off unless a job of this kind is
// configured. A failed row fails the run (it is retried at the next one);
// an addusers run holding the sheet's lock makes the run skipped.
func NewImport(j config.Job, d ImportDeps) (Job, error) {
	if d.Open == nil {
		return nil, fmt.Errorf("reminders job %q: an import job needs a way to wire its run", j.Name)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	return &importJob{name: j.Name, d: d}, nil
}

func (j *importJob) Run(ctx context.Context, rc RunContext) (Result, error) {
	setup, err := j.d.Open(ctx, rc.DryRun)
	if err != nil {
		return Result{}, fmt.Errorf("wiring the import: %w", err)
	}
	defer setup.Close()
	opts := setup.Options
	opts.Now = j.d.Now
	if rc.Logger != nil {
		opts.Logger = rc.Logger
	}
	sum, runErr := onboard.Run(ctx, setup.Deps, opts)

	res := Result{Sent: sum.Mail, Skipped: sum.Counts[string(onboard.Unchanged)], Retries: sum.Retries}
	verb := ""
	if rc.DryRun {
		verb = "would be "
	}
	for _, r := range sum.Rows {
		if r.Outcome == onboard.Unchanged || r.Outcome == onboard.StillInvalid {
			continue
		}
		what := strings.Join(r.Changes, "; ")
		if r.Error != "" {
			what = r.Error
		}
		if r.WriteBack != "" {
			what += " [not written back: " + r.WriteBack + "]"
		}
		res.Lines = append(res.Lines, fmt.Sprintf("row %d %s%s: %s %s: %s", r.Row, verb, r.Outcome, r.Email, r.Project, what))
	}
	c := sum.Counts
	res.Lines = append(res.Lines, fmt.Sprintf("%d created, %d updated, %d unchanged, %d failed; %d not approved; %d mail(s) queued",
		c[string(onboard.Created)], c[string(onboard.Updated)], c[string(onboard.Unchanged)], c[string(onboard.Failed)], sum.Skipped, sum.Mail))
	if len(sum.AddedColumns) > 0 {
		what := "added"
		if rc.DryRun {
			what = "would add"
		}
		res.Lines = append(res.Lines, fmt.Sprintf("sheet: %s the columns %s to the header row", what, strings.Join(sum.AddedColumns, ", ")))
	}
	if line := onboard.RetryLine(sum.Retries); line != "" {
		res.Lines = append(res.Lines, line)
	}

	if errors.Is(runErr, onboard.ErrLocked) {
		return res, fmt.Errorf("%w: %w", ErrBusy, runErr)
	}
	if setup.Deliver && setup.Outbox != nil && !rc.DryRun {
		// Deliver what the run queued even when some rows failed.
		mr, err := setup.Outbox.Drain(ctx)
		if mr.Sent > 0 || mr.Retrying > 0 || mr.Abandoned > 0 {
			res.Lines = append(res.Lines, fmt.Sprintf("mail: %d delivered, %d waiting to be retried, %d abandoned", mr.Sent, mr.Retrying, mr.Abandoned))
		}
		if err != nil && runErr == nil {
			runErr = fmt.Errorf("delivering mail: %w", err)
		}
	}
	if errors.Is(runErr, onboard.ErrSomeFailed) {
		return res, fmt.Errorf("%d of %d rows failed (retried at the next run)", c[string(onboard.Failed)], len(sum.Rows))
	}
	return res, runErr
}
