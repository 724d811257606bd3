package reminder

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/robfig/cron/v3"

	"github.com/kaizen-onboard/kaizen/internal/config"
	"github.com/kaizen-onboard/kaizen/internal/store"
	"github.com/kaizen-onboard/kaizen/internal/testenv"
)

// everySecond is a seconds-field spec: the scheduler's parser takes an
// optional leading seconds field.
const everySecond = "* * * * * *"

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func openSQLite(t testing.TB) store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), "sqlite://"+filepath.Join(t.TempDir(), "kaizen.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func mustSchedule(t testing.TB, spec string) cron.Schedule {
	t.Helper()
	s, err := config.ParseSchedule(spec)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// jobFunc is a Job from a function.
type jobFunc func(ctx context.Context, rc RunContext) (Result, error)

func (f jobFunc) Run(ctx context.Context, rc RunContext) (Result, error) { return f(ctx, rc) }

// counter counts runs by their time.
type counter struct {
	mu   sync.Mutex
	runs map[time.Time]int
	all  []time.Time
}

func (c *counter) job(d time.Duration) Job {
	return jobFunc(func(ctx context.Context, rc RunContext) (Result, error) {
		c.mu.Lock()
		if c.runs == nil {
			c.runs = map[time.Time]int{}
		}
		c.runs[rc.Now.UTC()]++
		c.all = append(c.all, rc.Now.UTC())
		c.mu.Unlock()
		time.Sleep(d)
		return Result{Sent: 1}, nil
	})
}

func (c *counter) times() []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Time(nil), c.all...)
}

// The cron pitfalls, with the real cron package and a job that panics at
// every run.
func TestCronChainOrder(t *testing.T) {
	panicky := func(n *atomic.Int32) func() {
		return func() {
			n.Add(1)
			panic("job failed badly")
		}
	}
	runFor := func(c *cron.Cron) {
		c.Start()
		time.Sleep(2600 * time.Millisecond)
		<-c.Stop().Done()
	}

	t.Run("skip wraps recover (NewCron)", func(t *testing.T) {
		t.Parallel()
		var n atomic.Int32
		c := NewCron(time.UTC, testLogger(t))
		if _, err := c.AddFunc(everySecond, panicky(&n)); err != nil {
			t.Fatal(err)
		}
		runFor(c)
		if got := n.Load(); got < 2 {
			t.Fatalf("the panicking job ran %d time(s) in 2.6 s; want it recovered and run again at its next time (>= 2)", got)
		}
	})

	t.Run("recover wraps skip (the pitfall)", func(t *testing.T) {
		t.Parallel()
		var n atomic.Int32
		l := cronLogger{testLogger(t)}
		c := cron.New(cron.WithParser(scheduleParser{}),
			cron.WithChain(cron.Recover(l), cron.SkipIfStillRunning(l)))
		if _, err := c.AddFunc(everySecond, panicky(&n)); err != nil {
			t.Fatal(err)
		}
		runFor(c)
		if got := n.Load(); got != 1 {
			t.Fatalf("with Recover outside SkipIfStillRunning the job ran %d time(s); the pitfall is that it runs once and never again", got)
		}
	})

	t.Run("cron.New without Recover ends the process", func(t *testing.T) {
		t.Parallel()
		if os.Getenv("KAIZEN_CRON_CRASH_HELPER") == "1" {
			c := cron.New(cron.WithParser(scheduleParser{}))
			c.AddFunc(everySecond, func() { panic("unrecovered job panic") })
			c.Start()
			time.Sleep(2500 * time.Millisecond)
			os.Exit(0) // not reached: the panic kills the process first
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestCronChainOrder$/^cron.New_without_Recover_ends_the_process$", "-test.count=1")
		cmd.Env = append(os.Environ(), "KAIZEN_CRON_CRASH_HELPER=1")
		out, err := cmd.CombinedOutput()
		if err == nil || !bytes.Contains(out, []byte("unrecovered job panic")) {
			t.Fatalf("a panic in a job of cron.New() should end the process; err=%v output:\n%s", err, out)
		}
	})

	t.Run("scheduler: a panicking job runs again", func(t *testing.T) {
		t.Parallel()
		var n atomic.Int32
		reg := prometheus.NewRegistry()
		m, err := NewMetrics(reg)
		if err != nil {
			t.Fatal(err)
		}
		r := &Runner{Locks: openSQLite(t), Metrics: m, Logger: testLogger(t)}
		s := NewScheduler(r, time.UTC, Entry{Name: "boom", Kind: "outbox", Spec: everySecond, Schedule: mustSchedule(t, everySecond),
			Job: jobFunc(func(context.Context, RunContext) (Result, error) { n.Add(1); panic("boom") })})
		s.Start()
		time.Sleep(2600 * time.Millisecond)
		<-s.Stop().Done()
		if got := n.Load(); got < 2 {
			t.Fatalf("ran %d time(s); want >= 2", got)
		}
		if got := metricValue(t, m.runs, "boom", OutcomeError); got != float64(n.Load()) {
			t.Errorf("runs_total{result=error} = %v, want %d", got, n.Load())
		}
		if st := r.Status()["boom"]; !strings.Contains(st.LastError, "panicked") {
			t.Errorf("status = %+v, want the panic as last error", st)
		}
	})
}

func TestRunnerSkipsWhenLockHeld(t *testing.T) {
	st := openSQLite(t)
	ctx := context.Background()
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	if err := st.AcquireLock(ctx, LockName("digest"), "other-replica", now, time.Hour); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	m, _ := NewMetrics(reg)
	m.Init("digest")
	var c counter
	r := &Runner{Locks: st, Metrics: m, Now: func() time.Time { return now }}
	rec := r.Run(ctx, Entry{Name: "digest", Job: c.job(0)}, nil)
	if rec.Outcome != OutcomeSkipped || !errors.Is(rec.Err, ErrBusy) {
		t.Fatalf("record = %+v, want skipped (ErrBusy)", rec)
	}
	if len(c.times()) != 0 {
		t.Fatal("the job ran although another replica held its lock")
	}
	if got := metricValue(t, m.runs, "digest", OutcomeSkipped); got != 1 {
		t.Errorf("skipped = %v", got)
	}
	if got := metricValue(t, m.runs, "digest", OutcomeError); got != 0 {
		t.Errorf("error = %v; a skip is not a failure", got)
	}
	// A dry run takes no lock, so it runs.
	r.DryRun = true
	if rec := r.Run(ctx, Entry{Name: "digest", Job: c.job(0)}, nil); rec.Outcome != OutcomeOK {
		t.Fatalf("dry run = %+v", rec)
	}
}

func TestRunnerLockReleasedAndHeld(t *testing.T) {
	st := openSQLite(t)
	ctx := context.Background()
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	clock := NewSimClock(now)
	var c counter
	e := Entry{Name: "j", Schedule: mustSchedule(t, "@hourly"), Job: c.job(0)}
	r := &Runner{Locks: st, Now: clock.Now}

	// A manual run (no schedule) releases the lock at once.
	if rec := r.Run(ctx, e, nil); rec.Outcome != OutcomeOK {
		t.Fatal(rec)
	}
	if err := st.AcquireLock(ctx, LockName("j"), "probe", now, time.Minute); err != nil {
		t.Fatalf("lock not released after a manual run: %v", err)
	}
	st.ReleaseLock(ctx, LockName("j"), "probe")

	// A scheduled run keeps it a little, so a lagging replica skips.
	if rec := r.Run(ctx, e, e.Schedule); rec.Outcome != OutcomeOK {
		t.Fatal(rec)
	}
	if err := st.AcquireLock(ctx, LockName("j"), "probe", now.Add(time.Second), time.Minute); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("lock free just after a scheduled run: %v", err)
	}
	if err := st.AcquireLock(ctx, LockName("j"), "probe", now.Add(DefaultLockAtLeast), time.Minute); err != nil {
		t.Fatalf("lock still held %s after the run: %v", DefaultLockAtLeast, err)
	}
}

func TestJobErrorStopsNoOtherJob(t *testing.T) {
	st := openSQLite(t)
	reg := prometheus.NewRegistry()
	m, _ := NewMetrics(reg)
	from := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	clock := NewSimClock(from)
	var good counter
	bad := jobFunc(func(context.Context, RunContext) (Result, error) {
		return Result{}, errors.New("sheet unreachable")
	})
	r := &Runner{Locks: st, Metrics: m, Now: clock.Now, Logger: testLogger(t)}
	s := NewScheduler(r, time.UTC,
		Entry{Name: "bad", Schedule: mustSchedule(t, "@every 10m"), Job: bad},
		Entry{Name: "good", Schedule: mustSchedule(t, "@every 10m"), Job: good.job(0)})
	log, err := s.Simulate(context.Background(), clock, from, from.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(log) != 12 || len(good.times()) != 6 {
		t.Fatalf("%d runs, good ran %d times; want 12 and 6", len(log), len(good.times()))
	}
	for _, rec := range log {
		want := OutcomeOK
		if rec.Job == "bad" {
			want = OutcomeError
		}
		if rec.Outcome != want {
			t.Errorf("%s at %s: %s (%v), want %s", rec.Job, rec.At, rec.Outcome, rec.Err, want)
		}
	}
	if got := metricValue(t, m.runs, "bad", OutcomeError); got != 6 {
		t.Errorf("bad errors = %v", got)
	}
	if got := metricValue(t, m.messages, "good"); got != 6 {
		t.Errorf("good messages = %v", got)
	}
	if got := metricValue(t, m.lastSuccess, "good"); got != float64(from.Add(time.Hour).Unix()) {
		t.Errorf("good last success = %v", got)
	}
}

func TestSimulateSchedulesAndRestart(t *testing.T) {
	st := openSQLite(t)
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err) // time/tzdata is embedded (internal/config)
	}
	from := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC) // a Monday
	to := from.AddDate(0, 0, 7)
	mid := from.AddDate(0, 0, 3).Add(12 * time.Hour)
	var daily, weekday counter
	entries := func() []Entry {
		return []Entry{
			// 09:00 in the configured zone (Europe/Paris below).
			{Name: "daily", Schedule: mustSchedule(t, "0 9 * * *"), Job: daily.job(0)},
			// CRON_TZ wins over the configured zone.
			{Name: "weekday", Schedule: mustSchedule(t, "CRON_TZ=America/New_York 30 8 * * 1-5"), Job: weekday.job(0)},
		}
	}
	paris, _ := time.LoadLocation("Europe/Paris")
	clock := NewSimClock(from)
	s1 := NewScheduler(&Runner{Locks: st, Now: clock.Now, Owner: "replica-1"}, paris, entries()...)
	log1, err := s1.Simulate(context.Background(), clock, from, mid)
	if err != nil {
		t.Fatal(err)
	}
	// Restart: a new scheduler over the same store continues from mid.
	s2 := NewScheduler(&Runner{Locks: st, Now: clock.Now, Owner: "replica-1-restarted"}, paris, entries()...)
	log2, err := s2.Simulate(context.Background(), clock, mid, to)
	if err != nil {
		t.Fatal(err)
	}
	if len(log1)+len(log2) != 12 {
		t.Fatalf("%d + %d runs, want 7 daily + 5 weekday", len(log1), len(log2))
	}
	for _, rec := range append(log1, log2...) {
		if rec.Outcome != OutcomeOK {
			t.Errorf("%+v", rec)
		}
	}
	for i, at := range daily.times() {
		want := time.Date(2026, 3, 2+i, 9, 0, 0, 0, paris)
		if !at.Equal(want) {
			t.Errorf("daily run %d at %s, want %s", i, at, want)
		}
	}
	for i, at := range weekday.times() {
		want := time.Date(2026, 3, 2+i, 8, 30, 0, 0, ny)
		if !at.Equal(want) {
			t.Errorf("weekday run %d at %s, want %s", i, at, want)
		}
	}
	for _, c := range []*counter{&daily, &weekday} {
		for at, n := range c.runs {
			if n != 1 {
				t.Errorf("run at %s happened %d times", at, n)
			}
		}
	}
	if got := clock.Now(); !got.Equal(daily.times()[6]) {
		t.Errorf("clock left at %s, want the last run's time", got)
	}
}

// A replica that dies mid-run leaves its lock; runs are skipped until it
// expires, and the first run after that does the work.
func TestDeadReplicaLockExpires(t *testing.T) {
	st := openSQLite(t)
	ctx := context.Background()
	from := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	// The dead replica took the lock at 10:00 for DefaultLockTTL and never
	// released it.
	if err := st.AcquireLock(ctx, LockName("links"), "dead-host/123/x", from, DefaultLockTTL); err != nil {
		t.Fatal(err)
	}
	var c counter
	clock := NewSimClock(from)
	s := NewScheduler(&Runner{Locks: st, Now: clock.Now}, time.UTC,
		Entry{Name: "links", Schedule: mustSchedule(t, "*/5 * * * *"), Job: c.job(0)})
	log, err := s.Simulate(ctx, clock, from, from.Add(30*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, rec := range log {
		got = append(got, rec.At.Format("15:04")+" "+rec.Outcome)
	}
	want := "10:05 skipped,10:10 skipped,10:15 ok,10:20 ok,10:25 ok,10:30 ok"
	if strings.Join(got, ",") != want {
		t.Fatalf("runs:\n got %s\nwant %s", strings.Join(got, ","), want)
	}
}

// Two schedulers (two replicas) on one store run the same job at the same
// simulated times: each time, the job's body runs once.
func TestTwoSchedulersOneStore(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			var url string
			if backend == "postgres" {
				url = testenv.Postgres(t)
			} else {
				url = "sqlite://" + filepath.Join(t.TempDir(), "kaizen.db")
			}
			ctx := context.Background()
			from := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
			to := from.Add(2 * time.Hour)
			var c counter
			type replica struct {
				s     *Scheduler
				clock *SimClock
				log   []RunRecord
				err   error
			}
			var replicas []*replica
			for i := range 2 {
				// Each replica has its own store connection and clock.
				st, err := store.Open(ctx, url, nil)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { st.Close() })
				clock := NewSimClock(from)
				s := NewScheduler(&Runner{Locks: st, Now: clock.Now, Owner: fmt.Sprintf("replica-%d", i)}, time.UTC,
					Entry{Name: "digest", Schedule: mustSchedule(t, "*/10 * * * *"), Job: c.job(5 * time.Millisecond)})
				replicas = append(replicas, &replica{s: s, clock: clock})
			}
			// The replicas' clocks advance together, as real clocks do; at
			// each due time both fire at once.
			for step := from; step.Before(to); step = step.Add(10 * time.Minute) {
				var wg sync.WaitGroup
				for _, r := range replicas {
					wg.Go(func() {
						log, err := r.s.Simulate(ctx, r.clock, step, step.Add(10*time.Minute))
						r.log = append(r.log, log...)
						r.err = errors.Join(r.err, err)
					})
				}
				wg.Wait()
			}
			var logs [][]RunRecord
			for _, r := range replicas {
				if r.err != nil {
					t.Fatal(r.err)
				}
				logs = append(logs, r.log)
			}
			if len(c.runs) != 12 {
				t.Errorf("the job ran at %d distinct times, want 12", len(c.runs))
			}
			for at, n := range c.runs {
				if n != 1 {
					t.Errorf("the job body ran %d times at %s", n, at.Format("15:04"))
				}
			}
			ok, skipped := 0, 0
			for _, l := range logs {
				for _, rec := range l {
					switch rec.Outcome {
					case OutcomeOK:
						ok++
					case OutcomeSkipped:
						skipped++
					default:
						t.Errorf("%+v", rec)
					}
				}
			}
			if ok != 12 || skipped != 12 {
				t.Errorf("%d ok and %d skipped runs, want 12 and 12", ok, skipped)
			}
		})
	}
}

func TestNextRunsAndEntries(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err) // time/tzdata is embedded (internal/config)
	}
	now := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC) // 13:00 in Paris
	got := NextRuns(mustSchedule(t, "0 9 * * *"), paris, now, 3)
	want := []string{"2026-03-03 09:00 CET", "2026-03-04 09:00 CET", "2026-03-05 09:00 CET"}
	for i := range want {
		if got[i].Format("2006-01-02 15:04 MST") != want[i] {
			t.Errorf("next[%d] = %s, want %s", i, got[i].Format("2006-01-02 15:04 MST"), want[i])
		}
	}
	got = NextRuns(mustSchedule(t, "CRON_TZ=UTC 0 9 * * *"), paris, now, 1)
	if s := got[0].Format("2006-01-02 15:04 MST"); s != "2026-03-03 10:00 CET" {
		t.Errorf("CRON_TZ=UTC 09:00 shown in Paris = %s", s)
	}

	cfg := config.Defaults()
	cfg.Reminders.Jobs = []config.Job{
		{Name: "a", Kind: "outbox", Schedule: "@every 1m"},
		{Name: "b", Kind: "outbox", Schedule: "@daily", Disabled: true},
		{Name: "c", Kind: "outbox", Schedule: "0 9 * * *"},
	}
	es, err := Entries(&cfg, map[string]Job{"a": jobFunc(nil), "c": jobFunc(nil)})
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 2 || es[0].Name != "a" || es[1].Name != "c" {
		t.Fatalf("entries = %+v", es)
	}
	if _, err := Entries(&cfg, map[string]Job{"a": jobFunc(nil)}); err == nil {
		t.Error("a configured job that was not built should be an error")
	}
}

// metricValue reads one series of a vector.
func metricValue(t testing.TB, c prometheus.Collector, labels ...string) float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(c); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
	metrics:
		for _, m := range mf.GetMetric() {
			for i, lp := range m.GetLabel() {
				if i >= len(labels) || lp.GetValue() != labels[i] {
					continue metrics
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return 0
}
