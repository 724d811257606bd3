package reminder

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/kaizen-onboard/kaizen/internal/config"
	"github.com/kaizen-onboard/kaizen/internal/store"
)

// DefaultLockTTL is how long a job's store lock lasts unless renewed. A
// running job renews it every third of that; a replica that dies mid-run
// leaves the lock to expire, and the first run after that, on any replica,
// completes the work (jobs are idempotent through the ledger).
const DefaultLockTTL = 15 * time.Minute

// DefaultLockAtLeast is the longest a finished run keeps its job's lock (it
// is also never kept past half the time to the job's next run). Another
// replica whose clock lags a little, firing the same scheduled run a moment
// later, finds the lock held and skips instead of running the job twice.
const DefaultLockAtLeast = 30 * time.Second

// ErrBusy marks a run that did not happen because the job's work is held
// by another run (its lock, or the sheet lock of an addusers import). The
// run counts as skipped, not failed. Jobs may wrap it.
var ErrBusy = errors.New("another run holds the job's lock")

// LockName is the store lock that keeps one job to one run at a time
// across replicas.
func LockName(job string) string { return "reminders:job:" + job }

// Entry is a job as the scheduler runs it: its settings' name, kind and
// schedule, and the built job.
type Entry struct {
	Name     string
	Kind     string
	Spec     string
	Schedule cron.Schedule
	Job      Job
}

// Entries pairs each configured, enabled job with its built Job (from
// Build), in the order of the settings. A configured job missing from jobs
// is an error.
func Entries(cfg *config.Config, jobs map[string]Job) ([]Entry, error) {
	var out []Entry
	for _, j := range cfg.Reminders.Jobs {
		if j.Disabled {
			continue
		}
		sched, err := config.ParseSchedule(j.Schedule)
		if err != nil {
			return nil, fmt.Errorf("%w: reminders.job %q: invalid schedule %q: %w", config.ErrInvalid, j.Name, j.Schedule, err)
		}
		job, ok := jobs[j.Name]
		if !ok {
			return nil, fmt.Errorf("reminders: job %q is configured but was not built", j.Name)
		}
		out = append(out, Entry{Name: j.Name, Kind: j.Kind, Spec: j.Schedule, Schedule: sched, Job: job})
	}
	return out, nil
}

// Location returns the time zone of schedules without a CRON_TZ= prefix.
func Location(r config.Reminders) (*time.Location, error) {
	if r.Timezone == "" {
		return time.UTC, nil
	}
	loc, err := time.LoadLocation(r.Timezone)
	if err != nil {
		return nil, fmt.Errorf("%w: reminders.timezone: %w", config.ErrInvalid, err)
	}
	return loc, nil
}

// NextRuns returns the n run times of sched after t, judged in loc (a
// schedule without CRON_TZ= runs in loc) and returned in loc.
func NextRuns(sched cron.Schedule, loc *time.Location, t time.Time, n int) []time.Time {
	var out []time.Time
	t = t.In(loc)
	for range n {
		t = sched.Next(t)
		if t.IsZero() {
			break
		}
		t = t.In(loc)
		out = append(out, t)
	}
	return out
}

// RunRecord is one run as the runner did it.
type RunRecord struct {
	Job      string
	At       time.Time // the run's time (RunContext.Now)
	Outcome  string    // OutcomeOK, OutcomeError or OutcomeSkipped
	Result   Result
	Err      error // the job's error (OutcomeError), or why it was skipped
	Duration time.Duration
}

// JobStatus is what /healthz reports for one job.
type JobStatus struct {
	LastRun     time.Time
	LastOutcome string
	LastSuccess time.Time
	LastError   string
}

// Runner does one run of one job: it takes the job's store lock (renewed
// while the job runs), runs the job, recovers a panic, logs, and records
// metrics and status. The daemon, `reminders run` and the tests' Simulate all run
// jobs through it.
type Runner struct {
	Locks   store.Locks
	Metrics *Metrics // may be nil
	Logger  *slog.Logger
	// Now is the clock: the run's RunContext.Now and the lock's times.
	Now func() time.Time
	// LockTTL defaults to DefaultLockTTL; LockAtLeast to
	// DefaultLockAtLeast (negative: release at once).
	LockTTL     time.Duration
	LockAtLeast time.Duration
	// Owner prefixes lock owners; default host/pid. Each run adds a
	// random part, so two runs in one process are two owners too.
	Owner string
	// DryRun: jobs send and stamp nothing; no lock is taken (a dry run
	// changes nothing, and must not hold off a real run elsewhere).
	DryRun bool

	mu     sync.Mutex
	status map[string]JobStatus
}

func (r *Runner) logger() *slog.Logger {
	if r.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return r.Logger
}

func (r *Runner) now() time.Time {
	if r.Now == nil {
		return time.Now()
	}
	return r.Now()
}

func (r *Runner) lockTTL() time.Duration {
	if r.LockTTL <= 0 {
		return DefaultLockTTL
	}
	return r.LockTTL
}

// DefaultOwner names this process in lock owners: host/pid.
func DefaultOwner() string {
	host, _ := os.Hostname()
	if host == "" {
		host = "localhost"
	}
	return fmt.Sprintf("%s/%d", host, os.Getpid())
}

// Status returns each job's last run and success, by name.
func (r *Runner) Status() map[string]JobStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]JobStatus, len(r.status))
	for k, v := range r.status {
		out[k] = v
	}
	return out
}

// Run runs e's job once at the runner's clock time. sched, when not nil,
// bounds how long the lock is kept after the run (half the time to the
// next run); nil releases it at once (a manual run).
func (r *Runner) Run(ctx context.Context, e Entry, sched cron.Schedule) RunRecord {
	return r.RunAt(ctx, e, r.now(), sched)
}

// RunAt runs e's job once with RunContext.Now = at.
func (r *Runner) RunAt(ctx context.Context, e Entry, at time.Time, sched cron.Schedule) (rec RunRecord) {
	log := r.logger().With("job", e.Name, "kind", e.Kind)
	rec = RunRecord{Job: e.Name, At: at}
	start := time.Now()
	defer func() {
		rec.Duration = time.Since(start)
		r.finish(log, rec)
	}()

	runCtx := ctx
	if !r.DryRun {
		lease, release, err := r.lock(ctx, log, e.Name, at, sched)
		if err != nil {
			if errors.Is(err, ErrBusy) {
				rec.Outcome, rec.Err = OutcomeSkipped, err
			} else {
				rec.Outcome, rec.Err = OutcomeError, err
			}
			return rec
		}
		// Deferred: a panicking job still gives up its lock.
		defer release()
		runCtx = lease.Context()
	}
	res, err := r.call(runCtx, log, e, at)
	rec.Result = res
	switch {
	case err == nil:
		rec.Outcome = OutcomeOK
	case errors.Is(err, ErrBusy):
		rec.Outcome, rec.Err = OutcomeSkipped, err
	default:
		if cause := context.Cause(runCtx); cause != nil && !errors.Is(cause, context.Canceled) {
			err = fmt.Errorf("%w (%w)", err, cause)
		}
		rec.Outcome, rec.Err = OutcomeError, err
	}
	return rec
}

// call runs the job, turning a panic into an error.
func (r *Runner) call(ctx context.Context, log *slog.Logger, e Entry, at time.Time) (res Result, err error) {
	defer func() {
		if p := recover(); p != nil {
			log.Error("job panicked", "panic", p, "stack", string(debug.Stack()))
			err = fmt.Errorf("job panicked: %v", p)
		}
	}()
	return e.Job.Run(ctx, RunContext{Now: at, DryRun: r.DryRun, Logger: log})
}

// lock takes the job's lock as of at for the TTL and renews it while the
// job runs (store.Hold). Losing it, to another owner or because it could
// not be renewed in time, cancels the lease's context, with a
// *store.LockLostError cause, which the job runs on: as for import and
// quotas, no new item starts; the jobs finish the write in flight with
// context.WithoutCancel and their ledger makes the next run converge.
func (r *Runner) lock(ctx context.Context, log *slog.Logger, job string, at time.Time, sched cron.Schedule) (lease *store.Lease, release func(), err error) {
	if r.Locks == nil {
		return nil, nil, errors.New("reminders: the runner has no store for its locks")
	}
	name, ttl := LockName(job), r.lockTTL()
	prefix := r.Owner
	if prefix == "" {
		prefix = DefaultOwner()
	}
	owner := prefix + "/" + rand.Text()[:10]
	h, err := store.Hold(ctx, r.Locks, name, owner, store.LeaseOptions{TTL: ttl, Now: r.now, At: at, Logger: log})
	if err != nil {
		if errors.Is(err, store.ErrConflict) {
			return nil, nil, fmt.Errorf("%w (%s)", ErrBusy, name)
		}
		return nil, nil, fmt.Errorf("taking the job's lock: %w", err)
	}
	return h, func() {
		// Keep the lock until at+hold: a lagging replica's run of the same
		// scheduled time is skipped. The lease is rewritten from at, so it
		// ends then (or at once when that has passed).
		h.ReleaseKeeping(at, r.holdFor(at, sched))
	}, nil
}

// holdFor is how long after at a finished run keeps its lock.
func (r *Runner) holdFor(at time.Time, sched cron.Schedule) time.Duration {
	if sched == nil || r.LockAtLeast < 0 {
		return 0
	}
	hold := r.LockAtLeast
	if hold == 0 {
		hold = DefaultLockAtLeast
	}
	if next := sched.Next(at); !next.IsZero() {
		hold = min(hold, next.Sub(at)/2)
	}
	if !at.Add(hold).After(r.now()) {
		return 0 // the run outlasted it
	}
	return hold
}

// finish logs the run and records its metrics and status.
func (r *Runner) finish(log *slog.Logger, rec RunRecord) {
	attrs := []any{"outcome", rec.Outcome, "sent", rec.Result.Sent, "skipped", rec.Result.Skipped,
		"duration", rec.Duration.Round(time.Millisecond)}
	if r.DryRun {
		attrs = append(attrs, "dry_run", true)
	}
	switch rec.Outcome {
	case OutcomeOK:
		log.Info("job run finished", attrs...)
	case OutcomeSkipped:
		log.Info("job run skipped", append(attrs, "reason", rec.Err)...)
	default:
		log.Error("job run failed; it is retried at its next run", append(attrs, "err", rec.Err)...)
	}
	r.Metrics.record(rec, r.DryRun)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.status == nil {
		r.status = map[string]JobStatus{}
	}
	st := r.status[rec.Job]
	st.LastRun, st.LastOutcome = rec.At, rec.Outcome
	switch rec.Outcome {
	case OutcomeOK:
		st.LastSuccess, st.LastError = rec.At, ""
	case OutcomeError:
		st.LastError = rec.Err.Error()
	}
	r.status[rec.Job] = st
}

// Scheduler runs entries on their schedules with robfig/cron, each run
// through the Runner.
type Scheduler struct {
	runner  *Runner
	entries []Entry
	loc     *time.Location
	logger  *slog.Logger
	cron    *cron.Cron

	ctx    context.Context // jobs' context; cancelled only by Abort
	cancel context.CancelFunc
}

// NewScheduler schedules entries in loc (for specs without CRON_TZ=).
func NewScheduler(runner *Runner, loc *time.Location, entries ...Entry) *Scheduler {
	if loc == nil {
		loc = time.UTC
	}
	logger := runner.logger()
	ctx, cancel := context.WithCancel(context.Background())
	s := &Scheduler{runner: runner, entries: slices.Clone(entries), loc: loc, logger: logger,
		cron: NewCron(loc, logger), ctx: ctx, cancel: cancel}
	for _, e := range s.entries {
		s.cron.Schedule(e.Schedule, cron.FuncJob(func() {
			s.runner.Run(s.ctx, e, e.Schedule)
		}))
	}
	return s
}

// Entries returns the scheduled entries.
func (s *Scheduler) Entries() []Entry { return slices.Clone(s.entries) }

// Runner returns the scheduler's runner.
func (s *Scheduler) Runner() *Runner { return s.runner }

// Location is the time zone of specs without CRON_TZ=.
func (s *Scheduler) Location() *time.Location { return s.loc }

// Start begins running jobs at their times, each in its own goroutine.
func (s *Scheduler) Start() { s.cron.Start() }

// Stop schedules no further runs; the returned context is done when the
// running jobs have finished. Running jobs are not interrupted.
func (s *Scheduler) Stop() context.Context { return s.cron.Stop() }

// Abort cancels the context of running jobs (after Stop, when they take
// too long to finish).
func (s *Scheduler) Abort() { s.cancel() }

// NewCron returns the cron the daemon uses: the settings' parser (5 fields,
// optional seconds, descriptors, CRON_TZ=), loc for specs without CRON_TZ=,
// and every job wrapped so that a panic is recovered and a run still going
// makes the next one skip.
//
// The order matters: NewChain(a, b).Then(j) is a(b(j)), so
// SkipIfStillRunning must wrap Recover. The other way round a panic unwinds
// through SkipIfStillRunning before it can hand its token back, and the job
// never runs again. And cron.New() alone recovers nothing: a panicking job
// would end the process.
func NewCron(loc *time.Location, logger *slog.Logger) *cron.Cron {
	cl := cronLogger{logger}
	return cron.New(
		cron.WithParser(scheduleParser{}),
		cron.WithLocation(loc),
		cron.WithLogger(cl),
		cron.WithChain(cron.SkipIfStillRunning(cl), cron.Recover(cl)),
	)
}

// scheduleParser is config.ParseSchedule as a cron.ScheduleParser.
type scheduleParser struct{}

func (scheduleParser) Parse(spec string) (cron.Schedule, error) { return config.ParseSchedule(spec) }

// cronLogger adapts slog to cron's logger: its chatter (start, wake, run)
// goes to debug; a skipped run to info; errors (recovered panics) to error.
type cronLogger struct{ l *slog.Logger }

func (c cronLogger) Info(msg string, kv ...any) {
	if msg == "skip" {
		c.l.Info("a job's run is skipped: its previous run is still going", kv...)
		return
	}
	c.l.Debug("cron: "+msg, kv...)
}

func (c cronLogger) Error(err error, msg string, kv ...any) {
	c.l.Error("cron: "+msg, append(kv, "err", err)...)
}
