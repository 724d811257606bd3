package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kaizen-onboard/kaizen/internal/app"
	"github.com/kaizen-onboard/kaizen/internal/cli"
	"github.com/kaizen-onboard/kaizen/internal/config"
	"github.com/kaizen-onboard/kaizen/internal/reminder"
)

// now is the clock of list and run (tests set it).
var now = time.Now

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	app := cli.App{
		Program: "reminders",
		Version: version,
		About:   "reminders runs Kaizen's scheduled jobs: digests, notices, link reminders, expiry warnings.",
		Default: "serve",
		Commands: []cli.Command{
			{Name: "serve", Summary: "run the jobs on their schedules and serve /healthz and /metrics until\nstopped (SIGTERM waits for running jobs); --dry-run sends and stamps nothing", Run: serve},
			{Name: "list", Summary: "list the configured jobs with their next run times", Run: list},
			{Name: "run", Summary: "run one job now: reminders run JOB [--dry-run]\n(exit 1 when the job fails)", Run: runJob},
		},
	}
	return app.Run(ctx, args, getenv, stdout, stderr)
}

const serveUsage = `Usage: reminders [--config PATH] serve [--dry-run]

Runs every enabled [[reminders.job]] on its schedule until SIGTERM, and
serves GET /healthz and GET /metrics on reminders.listen. On SIGTERM no new
run starts and running jobs are waited for.

Flags:
  --dry-run   run on schedule but send, stamp and record nothing; each run
              logs what it would have done
`

const runUsage = `Usage: reminders [--config PATH] run JOB [--dry-run]

Runs the job named JOB once now (also a disabled one) and prints what it
did, one line per message or action. Another run of the job holding its
lock (another replica, the daemon) makes this run skip.

Flags:
  --dry-run   print what would be sent; send, stamp and record nothing

Exit status: 0 done (or skipped), 1 the job failed, 2 usage or
configuration error.
`

// parseFlags reads --dry-run and --help anywhere among args and returns the
// other arguments.
func parseFlags(args []string, usage string, stdout io.Writer) (rest []string, dry bool, err error) {
	for _, a := range args {
		switch a {
		case "--dry-run", "-dry-run":
			dry = true
		case "-h", "-help", "--help":
			fmt.Fprint(stdout, usage)
			return nil, false, flag.ErrHelp
		default:
			if strings.HasPrefix(a, "-") {
				return nil, false, cli.Usagef("unknown flag %s", a)
			}
			rest = append(rest, a)
		}
	}
	return rest, dry, nil
}

func serve(ctx context.Context, env cli.Env, args []string) error {
	rest, dry, err := parseFlags(args, serveUsage, env.Stdout)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return cli.Usagef("serve takes no arguments")
	}
	cfg, err := env.Global.LoadConfig(env.Getenv)
	if err != nil {
		return err
	}
	return serveConfig(ctx, cfg, env, nil, dry)
}

// serveConfig runs the daemon; with ln nil it listens on reminders.listen
// (tests pass their own listener).
func serveConfig(ctx context.Context, cfg *config.Config, env cli.Env, ln net.Listener, dry bool) error {
	logger := cli.NewLogger(cfg.Log, env.Stderr).With("program", "reminders")
	loc, err := reminder.Location(cfg.Reminders)
	if err != nil {
		return err
	}
	var enabled []config.Job
	for _, j := range cfg.Reminders.Jobs {
		if !j.Disabled {
			enabled = append(enabled, j)
		}
	}
	a := app.New(cfg, logger, app.Options{})
	defer a.Close()
	deps, err := a.Reminders(ctx, enabled...)
	if err != nil {
		return err
	}
	jobs, err := reminder.Build(ctx, cfg, deps)
	if err != nil {
		return err
	}
	entries, err := reminder.Entries(cfg, jobs)
	if err != nil {
		return err
	}

	reg := a.Registry()
	metrics, err := reminder.NewMetrics(reg)
	if err != nil {
		return err
	}
	for _, e := range entries {
		metrics.Init(e.Name)
	}
	runner := &reminder.Runner{Locks: deps.Store, Metrics: metrics, Logger: logger, Now: a.Now, DryRun: dry}
	sched := reminder.NewScheduler(runner, loc, entries...)

	if ln == nil {
		if ln, err = net.Listen("tcp", cfg.Reminders.Listen); err != nil {
			return fmt.Errorf("listening on %s: %w", cfg.Reminders.Listen, err)
		}
	}
	if len(entries) == 0 {
		logger.Warn("no enabled job: add [[reminders.job]] tables to the settings")
	}
	for _, e := range entries {
		var next string
		if n := reminder.NextRuns(e.Schedule, loc, a.Now(), 1); len(n) == 1 {
			next = n[0].Format(time.RFC3339)
		}
		logger.Info("scheduled", "job", e.Name, "kind", e.Kind, "schedule", e.Spec, "next_run", next)
	}
	if dry {
		logger.Warn("dry run: jobs run on schedule but send, stamp and record nothing")
	}
	logger.Info("serving", "addr", ln.Addr().String(), "jobs", len(entries), "timezone", loc.String())
	d := &reminder.Daemon{Scheduler: sched, Store: deps.Store, Gatherer: reg, Logger: logger}
	if err := d.Run(ctx, ln); err != nil {
		return err
	}
	logger.Info("stopped")
	return nil
}

func list(ctx context.Context, env cli.Env, args []string) error {
	if len(args) > 0 {
		if slices.ContainsFunc(args, func(a string) bool { return a == "-h" || a == "--help" || a == "-help" }) {
			fmt.Fprintln(env.Stdout, "Usage: reminders [--config PATH] list\n\nLists every configured job with its kind, schedule and next three run\ntimes in reminders.timezone; disabled jobs are marked.")
			return flag.ErrHelp
		}
		return cli.Usagef("list takes no arguments")
	}
	cfg, err := env.Global.LoadConfig(env.Getenv)
	if err != nil {
		return err
	}
	loc, err := reminder.Location(cfg.Reminders)
	if err != nil {
		return err
	}
	if len(cfg.Reminders.Jobs) == 0 {
		_, err := fmt.Fprintln(env.Stdout, "no jobs configured (declare them as [[reminders.job]] tables in the settings)")
		return err
	}
	t := now()
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "JOB\tKIND\tSCHEDULE\tNEXT RUNS (%s)\n", loc)
	for _, j := range cfg.Reminders.Jobs {
		next := "disabled"
		if !j.Disabled {
			sched, err := config.ParseSchedule(j.Schedule)
			if err != nil {
				return fmt.Errorf("%w: reminders.job %q: %w", config.ErrInvalid, j.Name, err)
			}
			var times []string
			for _, n := range reminder.NextRuns(sched, loc, t, 3) {
				times = append(times, n.Format("2006-01-02 15:04:05 MST"))
			}
			next = strings.Join(times, ", ")
			if next == "" {
				next = "never"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", j.Name, j.Kind, j.Schedule, next)
	}
	return tw.Flush()
}

func runJob(ctx context.Context, env cli.Env, args []string) error {
	rest, dry, err := parseFlags(args, runUsage, env.Stdout)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return cli.Usagef("usage: reminders run JOB [--dry-run]")
	}
	name := rest[0]
	cfg, err := env.Global.LoadConfig(env.Getenv)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(cfg.Reminders.Jobs, func(j config.Job) bool { return j.Name == name })
	if i < 0 {
		var names []string
		for _, j := range cfg.Reminders.Jobs {
			names = append(names, j.Name)
		}
		known := "none is configured"
		if len(names) > 0 {
			known = "configured: " + strings.Join(names, ", ")
		}
		return cli.Usagef("unknown job %q (%s)", name, known)
	}
	jc := cfg.Reminders.Jobs[i]
	logger := cli.NewLogger(cfg.Log, env.Stderr).With("program", "reminders")
	a := app.New(cfg, logger, app.Options{Now: now})
	defer a.Close()
	deps, err := a.Reminders(ctx, jc)
	if err != nil {
		return err
	}
	job, err := reminder.BuildJob(ctx, cfg, jc, deps)
	if err != nil {
		return err
	}
	if jc.Disabled {
		logger.Info("the job is disabled; running it anyway as asked", "job", jc.Name)
	}
	runner := &reminder.Runner{Locks: deps.Store, Logger: logger, Now: now, DryRun: dry}
	rec := runner.Run(ctx, reminder.Entry{Name: jc.Name, Kind: jc.Kind, Spec: jc.Schedule, Job: job}, nil)
	for _, l := range rec.Result.Lines {
		fmt.Fprintln(env.Stdout, l)
	}
	verb := "sent"
	if dry {
		verb = "would send"
	}
	switch rec.Outcome {
	case reminder.OutcomeSkipped:
		fmt.Fprintf(env.Stdout, "%s: skipped: %v\n", jc.Name, rec.Err)
		return nil
	case reminder.OutcomeError:
		fmt.Fprintf(env.Stdout, "%s: failed after %s %d, skipped %d\n", jc.Name, verb, rec.Result.Sent, rec.Result.Skipped)
		if errors.Is(rec.Err, config.ErrInvalid) {
			return rec.Err
		}
		return fmt.Errorf("job %s failed: %w", jc.Name, rec.Err)
	}
	_, err = fmt.Fprintf(env.Stdout, "%s: %s %d, skipped %d\n", jc.Name, verb, rec.Result.Sent, rec.Result.Skipped)
	return err
}
