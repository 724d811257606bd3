package onboard_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kaizen-onboard/kaizen/internal/onboard"
	"github.com/kaizen-onboard/kaizen/internal/signup"
	"github.com/kaizen-onboard/kaizen/internal/store"
)

// lockWatch is onboard's store, noting when a renewal of the run's lock
// finds it taken by another owner.
type lockWatch struct {
	onboard.Store
	thief string
	once  sync.Once
	lost  chan struct{}
}

func (w *lockWatch) AcquireLock(ctx context.Context, name, owner string, now time.Time, ttl time.Duration) error {
	err := w.Store.AcquireLock(ctx, name, owner, now, ttl)
	if owner != w.thief && errors.Is(err, store.ErrConflict) {
		w.once.Do(func() { close(w.lost) })
	}
	return err
}

// TestLockStolen: another run takes the sheet's lock while this one is
// part-way through; this run starts no row after that, reports each row
// as done or untouched, and fails naming the lock and the new owner. Once
// the other run lets go, a rerun converges: every row done once, one
// welcome mail each.
func TestLockStolen(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	const n = 6
	var emails []string
	var rows []formRow
	for i := range n {
		email := fmt.Sprintf("user%d@example.org", i)
		emails = append(emails, email)
		rows = append(rows, row(email, fmt.Sprintf("project-%d", i),
			cols.Timestamp, fmt.Sprintf("3/%d/2026 09:00:00", 10+i), cols.FirstName, fmt.Sprintf("User%d", i)))
	}
	e.write(rows...)
	sheetRow := func(i int) int { return i + 2 }

	lockName := "addusers:" + e.opts.Source
	const thief = "addusers/the-other-run"
	const ttl = 3 * time.Second // renewed every second
	w := &lockWatch{Store: e.store, thief: thief, lost: make(chan struct{})}
	deps := e.deps()
	deps.Store = w
	opts := e.opts
	opts.Workers = 1 // rows in sheet order, one at a time
	opts.LockTTL = ttl
	opts.Progress = func(done, total int) {
		if done != 2 {
			return
		}
		// The other run's clock is ahead: to it this run's lease has lapsed.
		if err := e.store.AcquireLock(ctx, lockName, thief, time.Now().Add(ttl+time.Minute), time.Hour); err != nil {
			t.Errorf("the thief's AcquireLock: %v", err)
			return
		}
		// Hold the worker until this run's next renewal finds the lock gone.
		select {
		case <-w.lost:
		case <-time.After(time.Minute):
			t.Error("no renewal found the lock taken")
		}
	}
	start := time.Now()
	sum, err := onboard.Run(ctx, deps, opts)
	if _, derr := e.outbox.Drain(ctx); derr != nil {
		t.Fatalf("draining the outbox: %v", derr)
	}

	t.Logf("the run: %v", err)
	if !errors.Is(err, store.ErrLockLost) || errors.Is(err, onboard.ErrSomeFailed) {
		t.Fatalf("Run: %v, want ErrLockLost", err)
	}
	for _, part := range []string{lockName, thief, "not processed"} {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("error %q does not mention %q", err, part)
		}
	}
	if !strings.Contains(sum.Stopped, "lost the lock") || !strings.Contains(sum.Stopped, thief) {
		t.Errorf("Stopped = %q", sum.Stopped)
	}
	byEmail := map[string]string{}
	for _, u := range e.users() {
		byEmail[u.Name] = u.ID
	}
	var untouched []int
	for i, email := range emails {
		res := result(t, sum, sheetRow(i))
		switch res.Outcome {
		case onboard.Created:
			e.wantStatusDone(sheetRow(i), res.UserID, res.ProjectID, start)
			if byEmail[email] != res.UserID {
				t.Errorf("row %d: reported user %s, Keystone has %q", sheetRow(i), res.UserID, byEmail[email])
			}
			e.oneMail(email, subjWelcome)
		case onboard.NotProcessed:
			untouched = append(untouched, sheetRow(i))
			if !strings.Contains(res.Error, "lost the lock") {
				t.Errorf("row %d: error %q", sheetRow(i), res.Error)
			}
			if !strings.Contains(err.Error(), fmt.Sprint(sheetRow(i))) {
				t.Errorf("the error does not name row %d: %v", sheetRow(i), err)
			}
			if id, ok := byEmail[email]; ok {
				t.Errorf("row %d is reported not processed, but its user %s exists", sheetRow(i), id)
			}
			if s := e.cell(sheetRow(i), cols.Status); s != "" {
				t.Errorf("row %d is reported not processed, but its Status is %q", sheetRow(i), s)
			}
			if ms := e.mailsTo(email, ""); len(ms) != 0 {
				t.Errorf("row %d is reported not processed, but mail went to %s: %v", sheetRow(i), email, ms)
			}
		default:
			t.Errorf("row %d: %+v, want created or not processed", sheetRow(i), res)
		}
	}
	if slices.Contains(untouched, sheetRow(0)) || slices.Contains(untouched, sheetRow(1)) {
		t.Errorf("rows %v not processed: the first two rows finished before the lock was lost", untouched)
	}
	if len(untouched) == 0 || untouched[len(untouched)-1] != sheetRow(n-1) {
		t.Errorf("rows not processed: %v; want the rows after the theft", untouched)
	}
	// The other run still holds the lock: this one did not free it.
	if owner, _, err := e.store.LockHolder(ctx, lockName); err != nil || owner != thief {
		t.Errorf("lock held by %q (%v), want the thief", owner, err)
	}

	// The other run ends; a rerun does the rest and nothing twice.
	if err := e.store.ReleaseLock(ctx, lockName, thief); err != nil {
		t.Fatal(err)
	}
	again := e.mustRun()
	for i, email := range emails {
		res := result(t, again, sheetRow(i))
		want := onboard.Unchanged
		if slices.Contains(untouched, sheetRow(i)) {
			want = onboard.Created
		}
		if res.Outcome != want {
			t.Errorf("rerun row %d: %+v, want %s", sheetRow(i), res, want)
		}
		e.oneMail(email, subjWelcome)
		if s := e.cell(sheetRow(i), cols.Status); s != signup.StatusDone {
			t.Errorf("after the rerun row %d Status = %q", sheetRow(i), s)
		}
	}
	if us, ps := e.users(), e.projects(); len(us) != n || len(ps) != n {
		t.Errorf("after the rerun %d users %v and %d projects, want %d each", len(us), names(us), len(ps), n)
	}
	if acts := actions(e.events()); acts["user.create"] != n || acts["project.create"] != n {
		t.Errorf("audit actions %v, want %d user and project creations", acts, n)
	}
}
