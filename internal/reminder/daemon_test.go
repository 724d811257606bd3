package reminder

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type pingFunc func(context.Context) error

func (f pingFunc) Ping(ctx context.Context) error { return f(ctx) }

// SIGTERM (ctx cancelled) while a job runs: the daemon starts no new run,
// waits for the running one, and only then returns.
func TestDaemonGracefulShutdown(t *testing.T) {
	t.Parallel()
	st := openSQLite(t)
	started := make(chan struct{}, 10)
	var runs, finished atomic.Int32
	job := jobFunc(func(ctx context.Context, rc RunContext) (Result, error) {
		runs.Add(1)
		started <- struct{}{}
		select {
		case <-time.After(1500 * time.Millisecond):
		case <-ctx.Done():
			return Result{}, ctx.Err()
		}
		finished.Add(1)
		return Result{}, nil
	})
	reg := prometheus.NewRegistry()
	m, _ := NewMetrics(reg)
	r := &Runner{Locks: st, Metrics: m, Logger: testLogger(t)}
	s := NewScheduler(r, time.UTC, Entry{Name: "slow", Schedule: mustSchedule(t, everySecond), Job: job})
	d := &Daemon{Scheduler: s, Store: st, Gatherer: reg, Logger: testLogger(t)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, ln) }()

	select {
	case <-started:
	case <-time.After(3 * time.Second):
		t.Fatal("the job never started")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the daemon did not stop")
	}
	if runs.Load() != 1 || finished.Load() != 1 {
		t.Fatalf("%d run(s) started, %d finished; want the running one finished and no other", runs.Load(), finished.Load())
	}
	if rec := r.Status()["slow"]; rec.LastOutcome != OutcomeOK {
		t.Errorf("status %+v", rec)
	}
}

// A job that outlasts the grace period is cancelled.
func TestDaemonShutdownGraceCancels(t *testing.T) {
	t.Parallel()
	st := openSQLite(t)
	started := make(chan struct{}, 10)
	var cancelled atomic.Bool
	job := jobFunc(func(ctx context.Context, rc RunContext) (Result, error) {
		started <- struct{}{}
		<-ctx.Done()
		cancelled.Store(true)
		return Result{}, ctx.Err()
	})
	r := &Runner{Locks: st, Logger: testLogger(t)}
	s := NewScheduler(r, time.UTC, Entry{Name: "stuck", Schedule: mustSchedule(t, everySecond), Job: job})
	d := &Daemon{Scheduler: s, Store: st, Logger: testLogger(t), ShutdownGrace: 200 * time.Millisecond}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, ln) }()
	<-started
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the daemon did not stop")
	}
	if !cancelled.Load() {
		t.Error("the stuck job's context was not cancelled")
	}
}

func TestHealthz(t *testing.T) {
	st := openSQLite(t)
	at := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	clock := NewSimClock(at)
	r := &Runner{Locks: st, Now: clock.Now}
	var c counter
	s := NewScheduler(r, time.UTC,
		Entry{Name: "ok", Kind: "outbox", Spec: "@hourly", Schedule: mustSchedule(t, "@hourly"), Job: c.job(0)},
		Entry{Name: "bad", Kind: "import", Spec: "@hourly", Schedule: mustSchedule(t, "@hourly"),
			Job: jobFunc(func(context.Context, RunContext) (Result, error) { return Result{}, errors.New("keystone down") })})
	if _, err := s.Simulate(context.Background(), clock, at.Add(-time.Minute), at); err != nil {
		t.Fatal(err)
	}
	clock.Set(at.Add(10 * time.Minute))

	var pingErr error
	d := &Daemon{Scheduler: s, Store: pingFunc(func(context.Context) error { return pingErr })}
	get := func() (int, map[string]any) {
		rec := httptest.NewRecorder()
		d.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
		var body map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatalf("%v: %s", err, rec.Body)
		}
		return rec.Code, body
	}
	code, body := get()
	if code != http.StatusOK || body["status"] != "ok" {
		t.Fatalf("%d %v", code, body)
	}
	jobs := body["jobs"].([]any)
	okJob, badJob := jobs[0].(map[string]any), jobs[1].(map[string]any)
	if okJob["last_success"] != "2026-03-02T09:00:00Z" || okJob["next_run"] != "2026-03-02T10:00:00Z" || okJob["last_outcome"] != "ok" {
		t.Errorf("ok job: %v", okJob)
	}
	if _, has := badJob["last_success"]; has || !strings.Contains(badJob["last_error"].(string), "keystone down") {
		t.Errorf("bad job: %v", badJob)
	}
	pingErr = errors.New("database is down")
	if code, body := get(); code != http.StatusServiceUnavailable || body["status"] != "unavailable" {
		t.Errorf("store down: %d %v", code, body)
	}
}
