package reminder

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// TestRetryMetrics: the OpenStack retries a job's run reports are counted
// by job and service.
func TestRetryMetrics(t *testing.T) {
	st := openSQLite(t)
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	job := jobFunc(func(context.Context, RunContext) (Result, error) {
		return Result{Retries: map[string]int{"identity": 3, "compute": 1}}, nil
	})
	r := &Runner{Locks: st, Metrics: m, Now: func() time.Time { return now }}
	for range 2 {
		if rec := r.Run(context.Background(), Entry{Name: "import", Job: job}, nil); rec.Outcome != OutcomeOK {
			t.Fatalf("run: %+v", rec)
		}
	}
	for svc, want := range map[string]float64{"identity": 6, "compute": 2, "network": 0} {
		if got := metricValue(t, m.retries, "import", svc); got != want {
			t.Errorf("openstack_retries_total{job=import,service=%s} = %v, want %v", svc, got, want)
		}
	}
}
