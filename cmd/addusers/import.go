package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/kaizen-onboard/kaizen/internal/app"
	"github.com/kaizen-onboard/kaizen/internal/cli"
	"github.com/kaizen-onboard/kaizen/internal/config"
	"github.com/kaizen-onboard/kaizen/internal/onboard"
	"github.com/kaizen-onboard/kaizen/internal/store"
)

const importUsage = `Usage: addusers [--config PATH] import|plan [flags]

import applies every approved request not yet done and writes each row's
outcome back to the sheet; plan shows what import would change and changes
nothing anywhere (cloud, sheet, store, mail).

Flags:
  --sheet PATH       read requests from a CSV file instead of the Google Sheet
                     in settings (the outcome is written back to the file)
  --user EMAIL       only the request(s) of this requester
  --project NAME     only the request(s) for this project
  --output FORMAT    table (default) or json
  --workers N        rows applied at once (default: import.workers)
  --no-deliver       queue mail without delivering it now (the reminders
                     daemon's outbox job delivers it)
  --take-over        import a sheet marked as imported with another state
                     store, and mark it with this one (see "One store per
                     sheet" in docs/operations.md)
  --strict           rows still invalid as an earlier run reported them fail
                     the run too (by default only new failures do)

Exit status: 0 every selected approved row is done (or still invalid as
reported before) and its outcome is in the sheet, 1 some failed or some
outcome could not be written back (the summary names each row and why; fix
the row or the cloud and run again), 2 usage or configuration error.
`

type importFlags struct {
	sheet, user, project, output string
	workers                      int
	noDeliver, strict, takeOver  bool
}

func parseImportFlags(args []string, stdout io.Writer) (importFlags, error) {
	var f importFlags
	fs := newFlagSet("import", importUsage, stdout)
	fs.StringVar(&f.sheet, "sheet", "", "")
	fs.StringVar(&f.user, "user", "", "")
	fs.StringVar(&f.project, "project", "", "")
	fs.StringVar(&f.output, "output", "table", "")
	fs.IntVar(&f.workers, "workers", 0, "")
	fs.BoolVar(&f.noDeliver, "no-deliver", false, "")
	fs.BoolVar(&f.strict, "strict", false, "")
	fs.BoolVar(&f.takeOver, "take-over", false, "")
	if err := parseFlags(fs, args, ""); err != nil {
		return f, err
	}
	if err := checkOutput(f.output); err != nil {
		return f, err
	}
	if f.workers < 0 || f.workers > 64 {
		return f, cli.Usagef("--workers must be between 1 and 64")
	}
	return f, nil
}

func importCmd(dry bool) func(ctx context.Context, env cli.Env, args []string) error {
	return command(parseImportFlags, func(ctx context.Context, a *app.App, f importFlags, env cli.Env) error {
		return runImport(ctx, a, f, dry, env)
	})
}

// report is what --output json prints.
type report struct {
	onboard.Summary
	MailDelivered int `json:"mail_delivered"`
	MailRetrying  int `json:"mail_retrying"`
	MailAbandoned int `json:"mail_abandoned"`
	// MailClaimed counts messages an earlier sender claimed and did not
	// finish (it was killed): they go out once its claim lapses.
	MailClaimed int      `json:"mail_claimed_elsewhere"`
	MailErrors  []string `json:"mail_errors,omitempty"`
	Error       string   `json:"error,omitempty"`
}

func runImport(ctx context.Context, a *app.App, f importFlags, dry bool, env cli.Env) error {
	setup, err := a.Import(ctx, app.ImportOptions{CSVPath: f.sheet, DryRun: dry, NoDeliver: f.noDeliver})
	if errors.Is(err, app.ErrNoSheet) && !errors.Is(err, config.ErrInvalid) {
		return cli.Usagef("--sheet: %v", err)
	}
	if err != nil {
		return err
	}
	defer setup.Close()

	opts := setup.Options
	opts.OnlyUser, opts.OnlyProject = f.user, f.project
	opts.Strict, opts.TakeOver = f.strict, f.takeOver
	if f.workers > 0 {
		opts.Workers = f.workers
	}
	progress := newProgress(env.Stderr, f.output == "json")
	opts.Progress = progress.update
	stage := onboard.Apply
	if dry {
		stage = onboard.Plan
	}
	sum, runErr := stage(ctx, setup.Deps, opts)
	progress.finish()

	rep := report{Summary: sum}
	if setup.Deliver && !errors.Is(runErr, onboard.ErrLocked) {
		// Deliver what this run (or an earlier one) queued, even when some
		// rows failed: the mail of the rows that succeeded is due.
		mr, err := setup.Outbox.Drain(ctx)
		rep.MailDelivered, rep.MailRetrying, rep.MailAbandoned = mr.Sent, mr.Retrying, mr.Abandoned
		for _, fl := range mr.Failures {
			rep.MailErrors = append(rep.MailErrors, fmt.Sprintf("%s to %s: %s", fl.Key, strings.Join(fl.To, ", "), fl.Err))
		}
		if err != nil && runErr == nil {
			runErr = fmt.Errorf("delivering mail: %w", err)
		}
	}
	if c, ok := setup.Deps.Store.(interface {
		OutboxCounts(context.Context) (map[store.MessageStatus]int, error)
	}); ok && setup.Deliver {
		if counts, err := c.OutboxCounts(ctx); err == nil {
			rep.MailClaimed = counts[store.StatusSending]
		}
	}
	if runErr != nil {
		rep.Error = runErr.Error()
	}
	if f.output == "json" {
		err = printJSON(env.Stdout, rep)
	} else {
		err = printTable(env.Stdout, rep, dry)
	}
	if err != nil {
		return err
	}
	if errors.Is(runErr, onboard.ErrSomeFailed) {
		n := sum.Counts[string(onboard.Failed)]
		if f.strict {
			n += sum.Counts[string(onboard.StillInvalid)]
		}
		msg := fmt.Sprintf("%d of %d rows failed", n, len(sum.Rows))
		if len(sum.NotWritten) > 0 {
			msg += fmt.Sprintf(", %d outcome(s) not written back to the sheet (the next run writes them first)", len(sum.NotWritten))
		}
		if lost := countLost(sum.Overwritten); lost > 0 {
			msg += fmt.Sprintf(", %d row(s) lost cells to a moved row's outcome (the helpdesk was told)", lost)
		}
		return fmt.Errorf("%s; see the summary above", msg)
	}
	return runErr
}

func printTable(w io.Writer, rep report, dry bool) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ROW\tOUTCOME\tEMAIL\tPROJECT\tDETAILS")
	for _, r := range rep.Rows {
		details := strings.Join(r.Changes, "; ")
		if r.Error != "" {
			details = r.Error
		}
		if r.WriteBack != "" {
			details += " [not written back: " + r.WriteBack + "]"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", r.Row, r.Outcome, r.Email, r.Project, details)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(rep.NotWritten) > 0 {
		fmt.Fprintf(w, "\nNOT WRITTEN BACK to the sheet (recorded; the next run writes them first):\n")
		for _, u := range rep.NotWritten {
			fmt.Fprintf(w, "  row %d  %s: %s\n", u.Row, u.Email, u.Reason)
		}
	}
	if len(rep.Overwritten) > 0 {
		fmt.Fprintf(w, "\nROWS MOVED during the write-back received another row's outcome:\n")
		for _, o := range rep.Overwritten {
			what := "put back"
			if !o.Restored {
				what = "LOST (previous values unknown; the helpdesk was mailed)"
			}
			fmt.Fprintf(w, "  row %d  %s: %s overwritten by the outcome of row %d (%s); %s\n",
				o.Row, o.Email, strings.Join(o.Columns, ", "), o.ByRow, o.ByEmail, what)
		}
	}
	if rep.WrittenBack > 0 {
		fmt.Fprintf(w, "\n%d outcome(s) of earlier runs written back first\n", rep.WrittenBack)
	}
	if rep.Stopped != "" {
		fmt.Fprintf(w, "\nSTOPPED: %s\n", rep.Stopped)
	}
	c := rep.Counts
	verb := ""
	if dry {
		verb = "plan: "
	}
	fmt.Fprintf(w, "\n%s%d created, %d updated, %d unchanged, %d failed", verb,
		c[string(onboard.Created)], c[string(onboard.Updated)], c[string(onboard.Unchanged)], c[string(onboard.Failed)])
	if n := c[string(onboard.StillInvalid)]; n > 0 {
		fmt.Fprintf(w, ", %d still invalid as reported before", n)
	}
	if n := c[string(onboard.NotProcessed)]; n > 0 {
		fmt.Fprintf(w, ", %d not processed", n)
	}
	fmt.Fprintf(w, "; %d not approved", rep.Skipped)
	if rep.Rejected > 0 {
		fmt.Fprintf(w, ", %d rejected", rep.Rejected)
	}
	fmt.Fprintln(w)
	if len(rep.AddedColumns) > 0 {
		what := "added"
		if dry {
			what = "would add"
		}
		fmt.Fprintf(w, "sheet: %s the columns %s to the header row\n", what, quoted(rep.AddedColumns))
	}
	if !dry {
		fmt.Fprintf(w, "mail: %d queued, %d delivered", rep.Mail, rep.MailDelivered)
		if rep.MailRetrying > 0 {
			fmt.Fprintf(w, ", %d waiting to be retried", rep.MailRetrying)
		}
		if rep.MailAbandoned > 0 {
			fmt.Fprintf(w, ", %d abandoned", rep.MailAbandoned)
		}
		if rep.MailClaimed > 0 {
			fmt.Fprintf(w, ", %d held by a sender that stopped (sent once its 5-minute claim lapses)", rep.MailClaimed)
		}
		fmt.Fprintln(w)
		for _, e := range rep.MailErrors {
			fmt.Fprintf(w, "mail error: %s\n", e)
		}
	}
	if line := onboard.RetryLine(rep.Retries); line != "" {
		fmt.Fprintln(w, line)
	}
	return nil
}

func countLost(ows []onboard.Overwrite) int {
	n := 0
	for _, o := range ows {
		if !o.Restored {
			n++
		}
	}
	return n
}

// progress shows a bar on a terminal and a plain line every tenth
// otherwise; nothing with --output json on a non-terminal.
type progress struct {
	w     io.Writer
	tty   bool
	quiet bool
	last  int
	shown bool
}

func newProgress(w io.Writer, quiet bool) *progress {
	p := &progress{w: w, quiet: quiet}
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	return p
}

func (p *progress) update(done, total int) {
	switch {
	case p.tty:
		const width = 30
		n := done * width / max(total, 1)
		fmt.Fprintf(p.w, "\r[%s%s] %d/%d rows", strings.Repeat("=", n), strings.Repeat(" ", width-n), done, total)
		p.shown = true
	case p.quiet:
	default:
		step := max(total/10, 1)
		if done == total || done-p.last >= step {
			fmt.Fprintf(p.w, "progress: %d/%d rows\n", done, total)
			p.last = done
		}
	}
}

func (p *progress) finish() {
	if p.shown {
		fmt.Fprintln(p.w)
	}
}

func quoted(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = strconv.Quote(n)
	}
	return strings.Join(q, ", ")
}
