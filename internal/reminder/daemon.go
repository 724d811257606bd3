package reminder

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// DefaultShutdownGrace is how long a stopping daemon waits for running
// jobs before it cancels them. deploy/systemd/reminders.service allows
// more (TimeoutStopSec) so that a job can finish within it.
const DefaultShutdownGrace = 10 * time.Minute

// Pinger checks the store (store.Store).
type Pinger interface {
	Ping(ctx context.Context) error
}

// Daemon is the reminders service: the scheduler plus /healthz and
// /metrics.
type Daemon struct {
	Scheduler *Scheduler
	Store     Pinger
	Gatherer  prometheus.Gatherer // nil: no /metrics
	Logger    *slog.Logger
	// ShutdownGrace bounds the wait for running jobs on shutdown; then
	// their context is cancelled (default DefaultShutdownGrace).
	ShutdownGrace time.Duration
}

func (d *Daemon) logger() *slog.Logger {
	if d.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return d.Logger
}

// Handler serves GET /healthz and GET /metrics.
func (d *Daemon) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", d.healthz)
	if d.Gatherer != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(d.Gatherer, promhttp.HandlerOpts{
			ErrorLog: slog.NewLogLogger(d.logger().Handler(), slog.LevelWarn),
		}))
	}
	return mux
}

// jobHealth is one job in /healthz.
type jobHealth struct {
	Name        string     `json:"name"`
	Kind        string     `json:"kind"`
	Schedule    string     `json:"schedule"`
	Next        *time.Time `json:"next_run,omitempty"`
	LastRun     *time.Time `json:"last_run,omitempty"`
	LastOutcome string     `json:"last_outcome,omitempty"`
	LastSuccess *time.Time `json:"last_success,omitempty"`
	LastError   string     `json:"last_error,omitempty"`
}

// healthz answers 200 when the store answers (503 otherwise), with each
// job's last run and success. A failing job does not make the daemon
// unhealthy: restarting it would not help, and the job is retried at its
// next run; alert on kaizen_reminders_last_success_timestamp_seconds.
func (d *Daemon) healthz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	status, checks := http.StatusOK, map[string]string{"store": "ok"}
	if d.Store != nil {
		if err := d.Store.Ping(ctx); err != nil {
			d.logger().Warn("health check: store", "err", err)
			checks["store"], status = "fail", http.StatusServiceUnavailable
		}
	}
	jobs := []jobHealth{}
	if s := d.Scheduler; s != nil {
		st := s.runner.Status()
		now := s.runner.now()
		for _, e := range s.entries {
			jh := jobHealth{Name: e.Name, Kind: e.Kind, Schedule: e.Spec}
			if next := NextRuns(e.Schedule, s.loc, now, 1); len(next) == 1 {
				jh.Next = &next[0]
			}
			if js, ok := st[e.Name]; ok {
				jh.LastOutcome, jh.LastError = js.LastOutcome, js.LastError
				jh.LastRun = timePtr(js.LastRun)
				jh.LastSuccess = timePtr(js.LastSuccess)
			}
			jobs = append(jobs, jh)
		}
	}
	overall := "ok"
	if status != http.StatusOK {
		overall = "unavailable"
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(map[string]any{"status": overall, "checks": checks, "jobs": jobs})
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// Run serves the handler on ln and runs the scheduler until ctx is
// cancelled (SIGTERM). Then it schedules no further runs, waits for the
// running jobs (at most ShutdownGrace, after which their context is
// cancelled and they are waited for again), and closes the server last, so
// /healthz and /metrics answer while jobs finish.
func (d *Daemon) Run(ctx context.Context, ln net.Listener) error {
	log := d.logger()
	srv := &http.Server{
		Handler:           d.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	if d.Scheduler != nil {
		d.Scheduler.Start()
	}

	var serveErr error
	select {
	case err := <-errc:
		serveErr = fmt.Errorf("serving on %s: %w", ln.Addr(), err)
		errc <- nil // Shutdown below must not wait for it again
	case <-ctx.Done():
		log.Info("stopping: waiting for running jobs")
	}

	if d.Scheduler != nil {
		d.waitJobs(log)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && serveErr == nil {
		serveErr = fmt.Errorf("shutting down the HTTP server: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) && serveErr == nil {
		serveErr = fmt.Errorf("serving on %s: %w", ln.Addr(), err)
	}
	return serveErr
}

// waitJobs stops the scheduler and waits for its running jobs.
func (d *Daemon) waitJobs(log *slog.Logger) {
	grace := d.ShutdownGrace
	if grace <= 0 {
		grace = DefaultShutdownGrace
	}
	done := d.Scheduler.Stop()
	select {
	case <-done.Done():
		return
	case <-time.After(grace):
	}
	log.Warn("running jobs did not finish in time; cancelling them", "grace", grace)
	d.Scheduler.Abort()
	select {
	case <-done.Done():
	case <-time.After(30 * time.Second):
		log.Error("running jobs did not stop after cancellation; exiting anyway")
	}
}
