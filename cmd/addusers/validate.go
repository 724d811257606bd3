package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/kaizen-onboard/kaizen/internal/app"
	"github.com/kaizen-onboard/kaizen/internal/cli"
	"github.com/kaizen-onboard/kaizen/internal/drift"
)

const validateUsage = `Usage: addusers [--config PATH] validate [--apply] [flags]

validate checks every processed row (Status done) of the sign-up sheet
against the cloud: the domain, the project and the users exist, the users
hold import.roles on the project (direct assignments), and the project's
quotas equal what kaizen set (its store record: preset + overrides +
approved quota changes; for a project imported before records were kept,
the row's preset and overrides). It prints the drift it finds.

--apply repairs it: missing role assignments are made again and drifted
quotas set again, each repair recorded in the audit log (repair.role.assign,
repair.quota.set). A missing domain, project or user is reported, never
recreated: it may have been deleted on purpose, and recreating it would not
bring back what it held (clear the row's Status to import it afresh).

Flags:
  --apply            repair role assignments and quotas
  --sheet PATH       read the sign-up rows from a CSV file instead of the
                     Google Sheet (nothing is written to it)
  --output FORMAT    table (default) or json (for monitoring)

Exit status: 0 no drift, or all of it repaired; 1 drift found and not
repaired (or the check failed); 2 usage or configuration error.
`

// errDrift: validate found drift it did not repair.
var errDrift = errors.New("drift found")

type validateFlags struct {
	sheet, output string
	apply         bool
}

func parseValidateFlags(args []string, stdout io.Writer) (validateFlags, error) {
	var f validateFlags
	fs := newFlagSet("validate", validateUsage, stdout)
	fs.StringVar(&f.sheet, "sheet", "", "")
	fs.StringVar(&f.output, "output", "table", "")
	fs.BoolVar(&f.apply, "apply", false, "")
	if err := parseFlags(fs, args, "validate: "); err != nil {
		return f, err
	}
	if err := checkOutput(f.output); err != nil {
		return f, err
	}
	return f, nil
}

func runValidate(ctx context.Context, a *app.App, f validateFlags, env cli.Env) error {
	setup, err := a.Validate(ctx, app.ValidateOptions{CSVPath: f.sheet, Apply: f.apply})
	if errors.Is(err, app.ErrNoSheet) && f.sheet != "" {
		return cli.Usagef("--sheet: %v", err)
	}
	if err != nil {
		return err
	}
	defer setup.Close()
	rep, err := drift.Check(ctx, setup.Deps, setup.Options)
	if err != nil {
		return err
	}
	if f.output == "json" {
		err = printJSON(env.Stdout, rep)
	} else {
		err = printDrift(env.Stdout, rep)
	}
	if err != nil {
		return err
	}
	if n := rep.Unrepaired(); n > 0 {
		if f.apply {
			return fmt.Errorf("%w: %d of %d difference(s) not repaired", errDrift, n, len(rep.Drift))
		}
		return fmt.Errorf("%w: %d difference(s); addusers validate --apply repairs role assignments and quotas", errDrift, n)
	}
	return nil
}

func printDrift(w io.Writer, rep drift.Report) error {
	if len(rep.Drift) > 0 {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ROW\tPROJECT\tKIND\tDETAIL\tREPAIR")
		for _, d := range rep.Drift {
			repair := "report only"
			switch {
			case d.Repaired:
				repair = "repaired"
			case d.RepairError != "":
				repair = "failed: " + d.RepairError
			case d.Repairable:
				repair = "--apply repairs"
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", d.Row, d.Project, d.Kind, d.Detail, repair)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "%d rows, %d projects, %d users checked; %d difference(s), %d not repaired", rep.Rows, rep.Projects, rep.Users,
		len(rep.Drift), rep.Unrepaired())
	if rep.Unreadable > 0 {
		fmt.Fprintf(w, "; %d processed row(s) no longer parse and were not checked", rep.Unreadable)
	}
	_, err := fmt.Fprintln(w)
	return err
}
