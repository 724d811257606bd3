package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/kaizen-onboard/kaizen/internal/app"
	"github.com/kaizen-onboard/kaizen/internal/cli"
	"github.com/kaizen-onboard/kaizen/internal/config"
	"github.com/kaizen-onboard/kaizen/internal/quotareq"
)

const quotasUsage = `Usage: addusers [--config PATH] quotas [--revert-expired] [flags]

quotas reads the quota-request worksheet ([quota_requests]) and applies
every approved request not yet finished: the requester must hold a role on
the project (otherwise the row is refused); the new quotas are set through
the same quota layer as import and recorded in the store; a temporary
request tags the project quota-ends-<last day>; every member of the
project is mailed the old and new values; Status and Processed At are
written back. With [quota_requests.auto_approve] enabled, rows nobody has
approved are decided by Adjutant's rules (a smaller preset always; one
preset up after days_between_autoapprove days without a change).

When instances or networks change and the request does not give ports,
ports become max(current ports, 2 x instances + 3 x networks).

--revert-expired instead returns every project whose temporary quota has
ended (its last day is before today in reminders.timezone) to the quotas it
had before, removes its quota-ends- tag and mails its members.

Flags:
  --sheet PATH       read requests from a CSV file instead of the worksheet
                     (the outcome is written back to the file)
  --revert-expired   revert ended temporary quotas (reads no sheet)
  --dry-run          show what would change; changes nothing anywhere
  --output FORMAT    table (default) or json
  --no-deliver       queue mail without delivering it now (the reminders
                     daemon's outbox job delivers it)

Status cells written: "done[; temporary until D][; auto-approved: ...]",
"refused: ..." and "done: ..." (finished; clear the cell to process the row
again), "pending approval: ..." and "error: ..." (looked at again next run).

Exit status: 0 every selected row is done, refused or pending, 1 some
failed, 2 usage or configuration error.
`

type quotasFlags struct {
	sheet, output          string
	revert, dry, noDeliver bool
}

func parseQuotasFlags(args []string, stdout io.Writer) (quotasFlags, error) {
	var f quotasFlags
	fs := newFlagSet("quotas", quotasUsage, stdout)
	fs.StringVar(&f.sheet, "sheet", "", "")
	fs.StringVar(&f.output, "output", "table", "")
	fs.BoolVar(&f.revert, "revert-expired", false, "")
	fs.BoolVar(&f.dry, "dry-run", false, "")
	fs.BoolVar(&f.noDeliver, "no-deliver", false, "")
	if err := parseFlags(fs, args, "quotas: "); err != nil {
		return f, err
	}
	if err := checkOutput(f.output); err != nil {
		return f, err
	}
	if f.revert && f.sheet != "" {
		return f, cli.Usagef("--revert-expired reads no sheet; drop --sheet")
	}
	return f, nil
}

// quotasReport is what --output json prints.
type quotasReport struct {
	quotareq.Summary
	MailDelivered int    `json:"mail_delivered"`
	MailRetrying  int    `json:"mail_retrying"`
	MailAbandoned int    `json:"mail_abandoned"`
	Error         string `json:"error,omitempty"`
}

func runQuotas(ctx context.Context, a *app.App, f quotasFlags, env cli.Env) error {
	setup, err := a.Quotas(ctx, app.QuotaOptions{CSVPath: f.sheet, NoSheet: f.revert, DryRun: f.dry, NoDeliver: f.noDeliver})
	if errors.Is(err, app.ErrNoQuotaSheet) && !errors.Is(err, config.ErrInvalid) {
		return cli.Usagef("--sheet: %v", err)
	}
	if err != nil {
		return err
	}
	defer setup.Close()
	run := quotareq.Run
	if f.revert {
		run = quotareq.RevertExpired
	}
	sum, runErr := run(ctx, setup.Deps, setup.Options)
	rep := quotasReport{Summary: sum}
	if setup.Deliver && setup.Outbox != nil && !errors.Is(runErr, quotareq.ErrLocked) {
		mr, err := setup.Outbox.Drain(ctx)
		rep.MailDelivered, rep.MailRetrying, rep.MailAbandoned = mr.Sent, mr.Retrying, mr.Abandoned
		if err != nil && runErr == nil {
			runErr = fmt.Errorf("delivering mail: %w", err)
		}
	}
	if runErr != nil {
		rep.Error = runErr.Error()
	}
	if f.output == "json" {
		err = printJSON(env.Stdout, rep)
	} else {
		err = printQuotas(env.Stdout, rep, f.revert)
	}
	if err != nil {
		return err
	}
	if errors.Is(runErr, quotareq.ErrSomeFailed) {
		return fmt.Errorf("%d of %d failed; see the summary above", sum.Counts[string(quotareq.Failed)], len(sum.Rows))
	}
	return runErr
}

func printQuotas(w io.Writer, rep quotasReport, revert bool) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if revert {
		fmt.Fprintln(tw, "PROJECT\tOUTCOME\tENDED\tDETAILS")
	} else {
		fmt.Fprintln(tw, "ROW\tOUTCOME\tEMAIL\tPROJECT\tDETAILS")
	}
	for _, r := range rep.Rows {
		var parts []string
		for _, c := range r.Changes {
			parts = append(parts, fmt.Sprintf("%s %d->%d", c.Resource, c.Old, c.New))
		}
		details := strings.Join(parts, ", ")
		if r.EndsOn != "" && !revert {
			details += " until " + r.EndsOn
		}
		if r.Approval != "" && r.Approval != "sheet" {
			details += " (" + r.Approval + ")"
		}
		if r.Detail != "" {
			details = strings.TrimSpace(details + " " + r.Detail)
		}
		if r.WriteBack != "" {
			details += " [not written back: " + r.WriteBack + "]"
		}
		if revert {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Project, r.Outcome, r.EndsOn, details)
		} else {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", r.Row, r.Outcome, r.Email, r.Project, details)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	c := rep.Counts
	verb := ""
	if rep.DryRun {
		verb = "dry run: "
	}
	if revert {
		fmt.Fprintf(w, "\n%s%d reverted, %d failed\n", verb, c[string(quotareq.Reverted)], c[string(quotareq.Failed)])
	} else {
		fmt.Fprintf(w, "\n%s%d applied, %d unchanged, %d pending, %d refused, %d failed; %d finished earlier, %d waiting for approval\n", verb,
			c[string(quotareq.Applied)], c[string(quotareq.Unchanged)], c[string(quotareq.Pending)], c[string(quotareq.Refused)],
			c[string(quotareq.Failed)], rep.Finished, rep.Waiting)
	}
	if n := c[string(quotareq.NotProcessed)]; n > 0 {
		fmt.Fprintf(w, "%d not processed\n", n)
	}
	if rep.Stopped != "" {
		fmt.Fprintf(w, "STOPPED: %s\n", rep.Stopped)
	}
	if !rep.DryRun {
		fmt.Fprintf(w, "mail: %d queued, %d delivered\n", rep.Mail, rep.MailDelivered)
	}
	return nil
}
