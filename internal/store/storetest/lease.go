package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/kaizen-onboard/kaizen/internal/store"
)

func testLockHolder(t *testing.T, s store.Store) {
	c := ctx(t)
	now := base()
	_, _, err := s.LockHolder(c, "import")
	isErr(t, "LockHolder of a free lock", err, store.ErrNotFound)
	ok(t, "AcquireLock", s.AcquireLock(c, "import", "a", now, time.Minute))
	wantHolder(t, s, "a", now.Add(time.Minute))
	// An expired lease still names its owner until someone takes it.
	ok(t, "AcquireLock after expiry", s.AcquireLock(c, "import", "b", now.Add(2*time.Minute), time.Hour))
	wantHolder(t, s, "b", now.Add(2*time.Minute+time.Hour))
	ok(t, "ReleaseLock", s.ReleaseLock(c, "import", "b"))
	_, _, err = s.LockHolder(c, "import")
	isErr(t, "LockHolder after release", err, store.ErrNotFound)
}

type holder struct {
	owner string
	until time.Time
}

func lockHolder(c context.Context, s store.Store, name string) (holder, error) {
	owner, until, err := s.LockHolder(c, name)
	return holder{owner, until}, err
}

// leaseTest holds lock "import" for "me" from base() for an hour, renewed
// only when the test sends a time on tick.
type leaseTest struct {
	t    *testing.T
	l    *store.Lease
	tick chan time.Time
}

func hold(t *testing.T, l store.Locks) *leaseTest {
	t.Helper()
	tick := make(chan time.Time)
	h, err := store.Hold(ctx(t), l, "import", "me", store.LeaseOptions{
		TTL: time.Hour, Every: 20 * time.Minute, At: base(), Tick: tick,
		Now: func() time.Time { t.Error("a renewal read the clock instead of its tick"); return base() },
	})
	if err != nil {
		t.Fatalf("Hold: %v", err)
	}
	t.Cleanup(h.Release)
	return &leaseTest{t: t, l: h, tick: tick}
}

// renewAt has the lease renewed as of at; false when the lease stopped
// renewing (it was lost) instead. Sends are unbuffered: once one is taken,
// every renewal before it is done.
func (lt *leaseTest) renewAt(at time.Time) bool {
	lt.t.Helper()
	select {
	case lt.tick <- at:
		return true
	case <-lt.l.Context().Done():
		return false
	case <-time.After(time.Minute):
		lt.t.Fatal("the lease neither renewed nor stopped")
		return false
	}
}

// lost waits for the lease's context and returns its *LockLostError cause.
func (lt *leaseTest) lost() *store.LockLostError {
	lt.t.Helper()
	select {
	case <-lt.l.Context().Done():
	case <-time.After(time.Minute):
		lt.t.Fatal("the lease's context is not done")
	}
	cause := context.Cause(lt.l.Context())
	if !errors.Is(cause, store.ErrLockLost) {
		lt.t.Fatalf("cause %v, want ErrLockLost", cause)
	}
	var lle *store.LockLostError
	if !errors.As(cause, &lle) {
		lt.t.Fatalf("cause %T, want *LockLostError", cause)
	}
	if !errors.Is(lt.l.Lost(), store.ErrLockLost) {
		lt.t.Errorf("Lost() = %v, want the cause", lt.l.Lost())
	}
	return lle
}

func wantHolder(t *testing.T, s store.Store, owner string, until time.Time) {
	t.Helper()
	h := must(lockHolder(ctx(t), s, "import"))(t, "LockHolder")
	if h.owner != owner {
		t.Errorf("lock held by %q, want %q", h.owner, owner)
	}
	checkTime(t, "lease end", h.until, until)
}

func testLeaseRenewed(t *testing.T, s store.Store) {
	lt := hold(t, s)
	wantHolder(t, s, "me", base().Add(time.Hour))
	at := base().Add(50 * time.Minute)
	// Twice: the second send is taken only once the first renewal is done.
	for range 2 {
		if !lt.renewAt(at) {
			t.Fatalf("lost: %v", context.Cause(lt.l.Context()))
		}
	}
	wantHolder(t, s, "me", at.Add(time.Hour))
	isErr(t, "another owner within the renewed lease", s.AcquireLock(ctx(t), "import", "thief", base().Add(90*time.Minute), time.Hour), store.ErrConflict)
	if err := lt.l.Context().Err(); err != nil || lt.l.Lost() != nil {
		t.Errorf("context %v, Lost %v while held", err, lt.l.Lost())
	}
	lt.l.Release()
	_, _, err := s.LockHolder(ctx(t), "import")
	isErr(t, "LockHolder after Release", err, store.ErrNotFound)
	if !errors.Is(context.Cause(lt.l.Context()), context.Canceled) {
		t.Errorf("after Release the context's cause is %v, want context.Canceled", context.Cause(lt.l.Context()))
	}
}

func testLeaseStolen(t *testing.T, s store.Store) {
	lt := hold(t, s)
	// The thief's clock runs two hours ahead: to it the lease has lapsed.
	thiefAt := base().Add(2 * time.Hour)
	ok(t, "thief's AcquireLock", s.AcquireLock(ctx(t), "import", "thief", thiefAt, time.Hour))
	lt.renewAt(base().Add(20 * time.Minute))
	lle := lt.lost()
	if lle.Lock != "import" || lle.Owner != "thief" || lle.Err != nil {
		t.Errorf("lost %+v, want import to thief", lle)
	}
	if msg := lle.Error(); msg != "lost the lock import to thief" {
		t.Errorf("message %q", msg)
	}
	if lt.renewAt(base().Add(40 * time.Minute)) {
		t.Error("a lost lease still renews")
	}
	lt.l.Release()
	wantHolder(t, s, "thief", thiefAt.Add(time.Hour))
}

func testLeaseLapsed(t *testing.T, s store.Store) {
	lt := hold(t, s)
	// The renewal comes late (the process stalled): the lease ran out.
	lt.renewAt(base().Add(time.Hour))
	lle := lt.lost()
	if lle.Owner != "" || lle.Err == nil {
		t.Errorf("lost %+v, want no new owner and a reason", lle)
	}
	lt.l.Release()
	// Not renewed, not released: it is left to whoever takes it next.
	wantHolder(t, s, "me", base().Add(time.Hour))
}

// failingLocks fails every AcquireLock after the first.
type failingLocks struct {
	store.Locks
	calls int
}

var errDown = errors.New("store down")

func (f *failingLocks) AcquireLock(ctx context.Context, name, owner string, now time.Time, ttl time.Duration) error {
	f.calls++
	if f.calls > 1 {
		return errDown
	}
	return f.Locks.AcquireLock(ctx, name, owner, now, ttl)
}

func testLeaseRenewalsFail(t *testing.T, s store.Store) {
	lt := hold(t, &failingLocks{Locks: s})
	// Renewed every 20 minutes for an hour: failures at :20 and :30 leave
	// time for another try; the one at :40 does not (the next would be at
	// the lease's end).
	for _, m := range []time.Duration{20, 30, 40} {
		if !lt.renewAt(base().Add(m * time.Minute)) {
			t.Fatalf("lost before the renewal at :%d: %v", m, context.Cause(lt.l.Context()))
		}
	}
	lle := lt.lost()
	if lle.Owner != "" || !errors.Is(lle, errDown) {
		t.Errorf("lost %+v, want the renewal's error", lle)
	}
}

func testLeaseParentCancelled(t *testing.T, s store.Store) {
	parent, cancel := context.WithCancel(ctx(t))
	h, err := store.Hold(parent, s, "import", "me", store.LeaseOptions{TTL: time.Hour, At: base(), Tick: make(chan time.Time)})
	ok(t, "Hold", err)
	cancel()
	<-h.Context().Done()
	if errors.Is(context.Cause(h.Context()), store.ErrLockLost) || h.Lost() != nil {
		t.Errorf("a cancelled parent reads as a lost lock: %v", context.Cause(h.Context()))
	}
	// The release outlives the cancelled parent.
	h.Release()
	_, _, err = s.LockHolder(ctx(t), "import")
	isErr(t, "LockHolder after Release", err, store.ErrNotFound)
}

func testLeaseHeldElsewhere(t *testing.T, s store.Store) {
	ok(t, "AcquireLock", s.AcquireLock(ctx(t), "import", "other", base(), time.Hour))
	_, err := store.Hold(ctx(t), s, "import", "me", store.LeaseOptions{TTL: time.Hour, At: base().Add(time.Minute)})
	isErr(t, "Hold of a held lock", err, store.ErrConflict)
}

func testLeaseKeeping(t *testing.T, s store.Store) {
	lt := hold(t, s)
	lt.l.ReleaseKeeping(base(), 10*time.Minute)
	wantHolder(t, s, "me", base().Add(10*time.Minute))
	if lt.l.Context().Err() == nil {
		t.Error("context not done after ReleaseKeeping")
	}
}
