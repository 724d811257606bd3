package quotareq_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kaizen-onboard/kaizen/internal/quotareq"
	"github.com/kaizen-onboard/kaizen/internal/store"
)

// stealingStore hands the quotas lock to a thief when the run records its
// first quota change, and holds that write until the run's next renewal
// finds the lock taken.
type stealingStore struct {
	quotareq.Store
	t     *testing.T
	at    func() time.Time
	ttl   time.Duration
	thief string
	steal sync.Once
	once  sync.Once
	lost  chan struct{}
}

func (s *stealingStore) PutQuotaRecord(ctx context.Context, r store.QuotaRecord) error {
	s.steal.Do(func() {
		// The thief's clock is ahead: to it the run's lease has lapsed.
		if err := s.Store.AcquireLock(ctx, "addusers:quotas", s.thief, s.at().Add(s.ttl+time.Minute), time.Hour); err != nil {
			s.t.Errorf("the thief's AcquireLock: %v", err)
			return
		}
		select {
		case <-s.lost:
		case <-time.After(time.Minute):
			s.t.Error("no renewal found the lock taken")
		}
	})
	return s.Store.PutQuotaRecord(ctx, r)
}

func (s *stealingStore) AcquireLock(ctx context.Context, name, owner string, now time.Time, ttl time.Duration) error {
	err := s.Store.AcquireLock(ctx, name, owner, now, ttl)
	if owner != s.thief && errors.Is(err, store.ErrConflict) {
		s.once.Do(func() { close(s.lost) })
	}
	return err
}

// TestLockStolen: the quotas lock is taken by another run while the first
// row is applied; that row finishes, no other starts, each is reported,
// and a rerun once the other run is done applies the rest.
func TestLockStolen(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		e := newEnv(t, b)
		ctx := t.Context()
		const n = 3
		var asks []ask
		var ids []string
		for i := range n {
			p := e.project(fmt.Sprintf("engines-%d", i), presets["small"])
			email := fmt.Sprintf("user%d@example.org", i)
			u := e.user(email, fmt.Sprintf("User %d", i))
			e.member(u.ID, p.ID)
			ids = append(ids, p.ID)
			asks = append(asks, request(fmt.Sprintf("5/%d/2026 10:00:00", 20+i), email, p.Name, "Instances", "20"))
		}
		e.write(asks...)

		const thief = "addusers/the-other-run"
		const ttl = 3 * time.Second // renewed every second
		st := &stealingStore{Store: e.store, t: t, at: e.clock, ttl: ttl, thief: thief, lost: make(chan struct{})}
		deps := e.deps()
		deps.Store = st
		opts := e.opts
		opts.LockTTL = ttl
		sum, err := quotareq.Run(ctx, deps, opts)
		e.drain()
		t.Logf("the run: %v", err)

		if !errors.Is(err, store.ErrLockLost) || !strings.Contains(err.Error(), thief) || !strings.Contains(err.Error(), "addusers:quotas") {
			t.Fatalf("Run: %v, want ErrLockLost naming the lock and the thief", err)
		}
		if !strings.Contains(sum.Stopped, "lost the lock") {
			t.Errorf("Stopped = %q", sum.Stopped)
		}
		var untouched []int
		for i := range n {
			row := i + 2
			res := result(t, sum, row)
			switch res.Outcome {
			case quotareq.Applied:
				if got := e.cell(row, cols.Status); got != "done" {
					t.Errorf("row %d applied, Status %q", row, got)
				}
				if got := e.quotaSet(ids[i])["instances"]; got != 20 {
					t.Errorf("row %d applied, instances %d", row, got)
				}
			case quotareq.NotProcessed:
				untouched = append(untouched, row)
				if !strings.Contains(err.Error(), fmt.Sprintf("row %d", row)) {
					t.Errorf("the error does not name row %d", row)
				}
				if got := e.cell(row, cols.Status); got != "" {
					t.Errorf("row %d not processed, Status %q", row, got)
				}
				if got := e.quotaSet(ids[i]); !maps.Equal(got, presets["small"]) {
					t.Errorf("row %d not processed, quotas %v", row, got)
				}
				if ms := e.mailsTo(fmt.Sprintf("user%d@example.org", i)); len(ms) != 0 {
					t.Errorf("row %d not processed, mail %v", row, ms)
				}
			default:
				t.Errorf("row %d: %+v, want applied or not processed", row, res)
			}
		}
		if res := result(t, sum, 2); res.Outcome != quotareq.Applied {
			t.Errorf("the row in flight when the lock was lost: %+v, want applied", res)
		}
		if len(untouched) == 0 || untouched[len(untouched)-1] != n+1 {
			t.Errorf("rows not processed: %v, want those after the theft", untouched)
		}

		if err := e.store.ReleaseLock(ctx, "addusers:quotas", thief); err != nil {
			t.Fatal(err)
		}
		again, err := e.run()
		if err != nil {
			t.Fatalf("rerun: %v %+v", err, again.Rows)
		}
		if again.Finished != n-len(untouched) || len(again.Rows) != len(untouched) {
			t.Errorf("rerun: %d finished earlier, rows %+v; want %v applied", again.Finished, again.Rows, untouched)
		}
		for i := range n {
			if got := e.quotaSet(ids[i])["instances"]; got != 20 {
				t.Errorf("after the rerun project %d has %d instances", i, got)
			}
			if got := e.cell(i+2, cols.Status); got != "done" {
				t.Errorf("after the rerun row %d Status %q", i+2, got)
			}
			if ms := e.mailsTo(fmt.Sprintf("user%d@example.org", i)); len(ms) != 1 {
				t.Errorf("after the rerun user %d has %d mails, want 1", i, len(ms))
			}
		}
	})
}
