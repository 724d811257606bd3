package reminder

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Run outcomes, as the runs_total metric's result label and RunRecord's
// Outcome name them.
const (
	OutcomeOK      = "ok"
	OutcomeError   = "error"
	OutcomeSkipped = "skipped" // the job's lock was held elsewhere
)

// Metrics are the daemon's per-job series. Labels are job names (from the
// settings) and fixed words only.
type Metrics struct {
	runs        *prometheus.CounterVec
	lastSuccess *prometheus.GaugeVec
	messages    *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	retries     *prometheus.CounterVec
}

// NewMetrics registers the series with reg (the program's own registry, not
// the global default, so tests can build many schedulers).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "kaizen", Subsystem: "reminders", Name: "runs_total",
			Help: "Job runs by result: ok, error, or skipped (the job's lock was held by another run).",
		}, []string{"job", "result"}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "kaizen", Subsystem: "reminders", Name: "last_success_timestamp_seconds",
			Help: "When the job last finished a run without error (Unix time; 0 before the first).",
		}, []string{"job"}),
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "kaizen", Subsystem: "reminders", Name: "messages_total",
			Help: "Messages the job queued or delivered (dry runs not counted).",
		}, []string{"job"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "kaizen", Subsystem: "reminders", Name: "run_duration_seconds",
			Help:    "How long job runs took (skipped runs not observed).",
			Buckets: []float64{0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 1800},
		}, []string{"job"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "kaizen", Subsystem: "reminders", Name: "openstack_retries_total",
			Help: "OpenStack requests the job repeated after a transient fault (timeout, 429, 5xx), by service.",
		}, []string{"job", "service"}),
	}
	for _, c := range []prometheus.Collector{m.runs, m.lastSuccess, m.messages, m.duration, m.retries} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering reminders metrics: %w", err)
		}
	}
	return m, nil
}

// Init creates every series of the named jobs at zero, so a job that never
// ran (or never failed) shows up as 0 rather than as absent.
func (m *Metrics) Init(jobs ...string) {
	if m == nil {
		return
	}
	for _, j := range jobs {
		for _, r := range []string{OutcomeOK, OutcomeError, OutcomeSkipped} {
			m.runs.WithLabelValues(j, r)
		}
		m.lastSuccess.WithLabelValues(j)
		m.messages.WithLabelValues(j)
		m.duration.WithLabelValues(j)
	}
}

// record counts one finished run.
func (m *Metrics) record(rec RunRecord, dryRun bool) {
	if m == nil {
		return
	}
	m.runs.WithLabelValues(rec.Job, rec.Outcome).Inc()
	if rec.Outcome == OutcomeSkipped {
		return
	}
	m.duration.WithLabelValues(rec.Job).Observe(rec.Duration.Seconds())
	for svc, n := range rec.Result.Retries {
		m.retries.WithLabelValues(rec.Job, svc).Add(float64(n))
	}
	if !dryRun && rec.Result.Sent > 0 {
		m.messages.WithLabelValues(rec.Job).Add(float64(rec.Result.Sent))
	}
	if rec.Outcome == OutcomeOK {
		m.lastSuccess.WithLabelValues(rec.Job).Set(float64(rec.At.UnixNano()) / float64(time.Second))
	}
}
