package reminder

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Simulated time for the tests (simulation_test.go, scheduler_test.go):
// the package itself runs jobs when cron says, on the clock it is given.

// SimClock is a settable clock for simulated time. Its Now is what the
// Runner, the jobs and the mail outbox read in a simulation.
type SimClock struct {
	mu sync.Mutex
	t  time.Time
}

// NewSimClock starts the clock at t.
func NewSimClock(t time.Time) *SimClock { return &SimClock{t: t} }

// Now returns the clock's time.
func (c *SimClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Set moves the clock to t.
func (c *SimClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// Simulate drives the scheduler's entries (or the given ones) through
// simulated time instead of cron: from one due time to the next
// (cron.Schedule.Next) in (from, to], it sets clock to that time and runs
// every entry due then, in order, through the same Runner path as the
// daemon (lock, RunContext{Now: t}, panic recovery, metrics). It returns
// the log of runs, in order. The runner's Now must read clock.
//
// To simulate a restart, stop at some time mid and continue with a new
// Scheduler (a new Runner) over the same store from mid: Next is strictly
// after its argument, so (from, mid] and (mid, to] neither skip nor repeat a
// due time. A cancelled ctx stops the simulation with its error.
func (s *Scheduler) Simulate(ctx context.Context, clock *SimClock, from, to time.Time, entries ...Entry) ([]RunRecord, error) {
	if clock == nil {
		return nil, errors.New("reminders: Simulate needs a clock")
	}
	if len(entries) == 0 {
		entries = s.entries
	}
	next := make([]time.Time, len(entries))
	for i, e := range entries {
		next[i] = e.Schedule.Next(from.In(s.loc))
	}
	var log []RunRecord
	for {
		var t time.Time
		for _, n := range next {
			if !n.IsZero() && (t.IsZero() || n.Before(t)) {
				t = n
			}
		}
		if t.IsZero() || t.After(to) {
			return log, nil
		}
		if err := ctx.Err(); err != nil {
			return log, err
		}
		clock.Set(t)
		for i, e := range entries {
			if next[i].IsZero() || next[i].After(t) {
				continue
			}
			log = append(log, s.runner.RunAt(ctx, e, t, e.Schedule))
			next[i] = e.Schedule.Next(t.In(s.loc))
		}
	}
}
