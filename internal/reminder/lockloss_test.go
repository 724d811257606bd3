package reminder

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kaizen-onboard/kaizen/internal/store"
)

// A job whose lock another replica takes mid-run is stopped the way import
// and quotas are: its context is cancelled with store.ErrLockLost naming
// the new owner, the run is an error, and the lock stays the thief's.
func TestRunnerLockLost(t *testing.T) {
	st := openSQLite(t)
	ctx := context.Background()
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	const thief = "replica-2/abc"
	var seen error
	job := jobFunc(func(ctx context.Context, rc RunContext) (Result, error) {
		// The other replica's clock is an hour ahead: the lease lapsed, to it.
		if err := st.AcquireLock(ctx, LockName("links"), thief, now.Add(time.Hour), time.Hour); err != nil {
			return Result{}, err
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Minute):
			return Result{}, errors.New("the job's context was not cancelled")
		}
		seen = context.Cause(ctx)
		return Result{Sent: 1}, ctx.Err()
	})
	// Renewed every 100ms of real time; the clock stands still.
	r := &Runner{Locks: st, Now: func() time.Time { return now }, LockTTL: 300 * time.Millisecond, Logger: testLogger(t)}
	rec := r.Run(ctx, Entry{Name: "links", Job: job}, mustSchedule(t, "@hourly"))
	if !errors.Is(seen, store.ErrLockLost) {
		t.Errorf("the job's context was cancelled with %v, want ErrLockLost", seen)
	}
	if rec.Outcome != OutcomeError || !errors.Is(rec.Err, store.ErrLockLost) || !strings.Contains(rec.Err.Error(), thief) {
		t.Errorf("record %+v, want an error naming the lost lock and %s", rec, thief)
	}
	if owner, _, err := st.LockHolder(ctx, LockName("links")); err != nil || owner != thief {
		t.Errorf("lock held by %q (%v) after the run, want the thief", owner, err)
	}
}
