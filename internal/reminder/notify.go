package reminder

import (
	"context"
	"fmt"
	"strings"

	"github.com/kaizen-onboard/kaizen/internal/config"
	"github.com/kaizen-onboard/kaizen/internal/mail"
)

// DefaultNotifyColumn is the column helpdesk-notify stamps.
const DefaultNotifyColumn = "Helpdesk Notified"

// helpdeskNotifyPeriod is the period of helpdesk-notify's ledger keys: a row is
// announced once, when it is approved.
const helpdeskNotifyPeriod = "approved"

// helpdeskNotify is the helpdesk-notify job: one notice per run to the
// helpdesk listing the rows approved since the last run.
type helpdeskNotify struct {
	*signupJob
}

// NewHelpdeskNotify builds a helpdesk-notify job. Each run sends j.To
// (default d.Helpdesk; one of them is required) one notice listing every
// newly approved row, and stamps the rows' j.Column (default "Helpdesk
// Notified") with the run's time.
//
// A row is newly approved when it is approved (or sheet.all_approved is
// set), its Status is not "done" (addusers already processed it: the
// notice is about approved requests waiting for onboarding, and this keeps
// a job added to an old sheet from announcing its whole history), its stamp
// cell is empty (a filled one means it was announced before, by this job
// with another store or by hand), and its ledger key LedgerKey(j.Name, row
// identity hash, "approved") is not recorded. The ledger, not the stamp, is
// what makes each row announced once, across runs, restarts and replicas.
func NewHelpdeskNotify(j config.Job, d SheetJobDeps) (Job, error) {
	to := j.To
	if len(to) == 0 && strings.TrimSpace(d.Helpdesk) != "" {
		to = []string{d.Helpdesk}
	}
	if len(to) == 0 {
		return nil, fmt.Errorf("job %q: helpdesk-notify needs \"to\" or mail.helpdesk: the helpdesk's or ticket system's address", j.Name)
	}
	s, err := newSignupJob(j, d, mail.KindHelpdeskNotify, DefaultNotifyColumn, to)
	if err != nil {
		return nil, err
	}
	return &helpdeskNotify{signupJob: s}, nil
}

func (h *helpdeskNotify) Run(ctx context.Context, rc RunContext) (Result, error) {
	log := h.logger(rc)
	var res Result
	rows, stampable, err := h.read(ctx, log)
	if err != nil {
		return res, fmt.Errorf("%s: %w", h.name, err)
	}
	var picks []signupPick
	for _, r := range rows {
		if !r.approved || signupDone(r.status) || r.stamp != "" {
			continue
		}
		picks = append(picks, signupPick{row: r, key: LedgerKey(h.name, signupRowKey(r.id), helpdeskNotifyPeriod)})
	}
	build := func(rows []signupRow) any {
		data := mail.HelpdeskNotifyData{SheetURL: h.deps.SheetURL}
		for _, r := range rows {
			data.Items = append(data.Items, mail.HelpdeskItem{Name: r.name, Email: r.email, Project: r.project})
		}
		if len(rows) == 1 {
			r := rows[0]
			data.Summary = "New approved sign-up: " + r.name
			if r.email != "" {
				data.Summary += " <" + r.email + ">"
			}
			if r.project != "" {
				data.Summary += " (" + r.project + ")"
			}
			data.Detail = "This sign-up request was approved in the sign-up sheet."
		} else {
			data.Summary = fmt.Sprintf("%d new approved sign-ups", len(rows))
			data.Detail = "These sign-up requests were approved in the sign-up sheet."
		}
		return data
	}
	if err := h.deliver(ctx, rc, log, picks, stampable, "notice", "helpdesk notice", build, &res); err != nil {
		return res, fmt.Errorf("%s: %w", h.name, err)
	}
	return res, nil
}
