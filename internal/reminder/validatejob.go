package reminder

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	netmail "net/mail"
	"strings"
	"time"

	"github.com/kaizen-onboard/kaizen/internal/config"
	"github.com/kaizen-onboard/kaizen/internal/drift"
	"github.com/kaizen-onboard/kaizen/internal/mail"
)

// ValidateDeps are what a validate job needs.
type ValidateDeps struct {
	// Open wires one check (app.App.Validate on the daemon's store); the
	// job closes the Setup after the check. apply asks for repairs.
	Open   func(ctx context.Context, apply bool) (*drift.Setup, error)
	Ledger Ledger
	Mail   Mailer
	// Helpdesk is told, unless the job lists its own addresses in to.
	Helpdesk string
	// Location decides the day of the ledger key; nil: UTC.
	Location *time.Location
}

type validateJob struct {
	name     string
	apply    bool
	helpdesk []netmail.Address
	d        ValidateDeps
}

// NewValidate builds a validate job: each run is an addusers validate (with
// --apply when the job sets apply = true; never in a dry run). When drift
// is found the helpdesk (j.To, else Helpdesk) gets one helpdesk-notify
// mail listing it, repaired or not; a run without drift sends nothing. The
// same drift is mailed at most once a day: the ledger key is
// LedgerKey(job, hash of the drift, date).
func NewValidate(j config.Job, d ValidateDeps) (Job, error) {
	switch {
	case d.Open == nil || d.Ledger == nil || d.Mail == nil:
		return nil, fmt.Errorf("validate job %q: Open, Ledger and Mail are required", j.Name)
	case j.Name == "":
		return nil, errors.New("validate job: a name is required")
	}
	v := &validateJob{name: j.Name, apply: j.Apply, d: d}
	if v.d.Location == nil {
		v.d.Location = time.UTC
	}
	var err error
	if v.helpdesk, err = helpdeskAddresses(j, d.Helpdesk); err != nil {
		return nil, fmt.Errorf("validate job %q: %w", j.Name, err)
	}
	return v, nil
}

func (v *validateJob) Run(ctx context.Context, rc RunContext) (Result, error) {
	setup, err := v.d.Open(ctx, v.apply && !rc.DryRun)
	if err != nil {
		return Result{}, fmt.Errorf("wiring the check: %w", err)
	}
	defer setup.Close()
	opts := setup.Options
	opts.Now = func() time.Time { return rc.Now }
	if rc.Logger != nil {
		opts.Logger = rc.Logger
	}
	rep, err := drift.Check(ctx, setup.Deps, opts)
	if err != nil {
		return Result{}, fmt.Errorf("validate %s: %w", v.name, err)
	}
	res := Result{}
	summary := fmt.Sprintf("%d rows, %d projects, %d users checked", rep.Rows, rep.Projects, rep.Users)
	if len(rep.Drift) == 0 {
		res.Lines = append(res.Lines, "no drift: "+summary)
		return res, nil
	}
	data := mail.HelpdeskNotifyData{
		Summary: fmt.Sprintf("addusers validate found %d difference(s), %d not repaired", len(rep.Drift), rep.Unrepaired()),
		Detail: summary + ". Review with `addusers validate`; `addusers validate --apply` repairs role assignments and quotas. " +
			"A missing project or user is never recreated.",
	}
	var lines []string
	for _, d := range rep.Drift {
		problem := d.Detail
		switch {
		case d.Repaired:
			problem += " (repaired)"
		case d.RepairError != "":
			problem += " (repair failed: " + d.RepairError + ")"
		}
		data.Items = append(data.Items, mail.HelpdeskItem{Project: d.Project, Username: d.User, Problem: fmt.Sprintf("row %d: %s", d.Row, problem)})
		lines = append(lines, fmt.Sprintf("row %d %s %s: %s", d.Row, d.Project, d.Kind, problem))
	}
	res.Lines = append(res.Lines, lines...)
	sum := sha256.Sum256([]byte(strings.Join(lines, "\n")))
	key := LedgerKey(v.name, hex.EncodeToString(sum[:8]), civilDate(rc.Now, v.d.Location).Format(time.DateOnly))
	to := addressList(v.helpdesk)
	if rc.DryRun {
		res.Sent++
		res.Lines = append(res.Lines, "would tell "+to+": "+data.Summary)
		return res, nil
	}
	fresh, err := v.d.Ledger.RecordOnce(ctx, key, rc.Now)
	if err != nil {
		return res, fmt.Errorf("validate %s: %w", v.name, err)
	}
	if !fresh {
		res.Skipped++
		res.Lines = append(res.Lines, "the helpdesk was told of this drift today already")
		return res, nil
	}
	if _, _, err := v.d.Mail.Queue(ctx, key, mail.KindHelpdeskNotify, v.helpdesk, data); err != nil {
		if ferr := v.d.Ledger.Forget(context.WithoutCancel(ctx), key); ferr != nil {
			err = errors.Join(err, ferr)
		}
		return res, fmt.Errorf("validate %s: telling the helpdesk: %w", v.name, err)
	}
	res.Sent++
	res.Lines = append(res.Lines, "told "+to+": "+data.Summary)
	return res, nil
}
