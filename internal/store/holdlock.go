package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// ErrLockLost is the cause (context.Cause) of a Lease's context once the
// lock is lost: another owner took it, or it could not be renewed before
// its lease ran out. Errors that wrap it are *LockLostError.
var ErrLockLost = errors.New("store: lock lost")

// LockLostError says which lock was lost, and to whom when known.
type LockLostError struct {
	Lock string
	// Owner holds the lock now; "" when nobody does or it is not known.
	Owner string
	// Err is why the lease could not be kept when no other owner took it
	// (renewals failing, or the lease running out before its renewal).
	Err error
}

func (e *LockLostError) Error() string {
	msg := "lost the lock " + e.Lock
	if e.Owner != "" {
		msg += " to " + e.Owner
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *LockLostError) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrLockLost}
	}
	return []error{ErrLockLost, e.Err}
}

// LeaseOptions shape Hold.
type LeaseOptions struct {
	// TTL is how long the lock lasts unless renewed (required).
	TTL time.Duration
	// Every is how often it is renewed (default TTL/3): a renewal that
	// fails is tried again then, and the lock counts as lost as soon as
	// the next try would come too late.
	Every time.Duration
	// Now is the clock of the lease's times (default time.Now).
	Now func() time.Time
	// At is the time the lock is taken as of (default Now()): the
	// reminders runner takes a job's lock as of the run's scheduled time.
	At time.Time
	// Tick, when set, replaces the ticker and the clock of renewals: each
	// time received is one renewal as of that time (a test drives both).
	Tick <-chan time.Time
	// Logger receives renewal failures and the loss (default: discard).
	Logger *slog.Logger
}

// Lease is a store lock held by Hold: renewed in the background until
// released, its Context cancelled with a *LockLostError (ErrLockLost) the
// moment the lock is lost.
//
// Losing a lock means one thing everywhere: the work it guards stops
// starting anything new. What is in flight may finish its current step
// (the steps are idempotent; the other run converges with them), then the
// caller reports what it did not do.
type Lease struct {
	l           Locks
	name, owner string
	o           LeaseOptions
	log         *slog.Logger

	ctx    context.Context
	cancel context.CancelCauseFunc
	bg     context.Context // renewals and the release outlive a cancelled ctx
	stop   chan struct{}
	wg     sync.WaitGroup
	once   sync.Once

	until time.Time // the lease's end as last written (renewal goroutine only, until stopped)
	mu    sync.Mutex
	lost  error
}

// Hold takes lock name for owner and renews it until Release. The error is
// AcquireLock's (ErrConflict when another owner holds it).
func Hold(ctx context.Context, l Locks, name, owner string, o LeaseOptions) (*Lease, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Every <= 0 {
		o.Every = o.TTL / 3
	}
	at := o.At
	if at.IsZero() {
		at = o.Now()
	}
	if err := l.AcquireLock(ctx, name, owner, at, o.TTL); err != nil {
		return nil, err
	}
	h := &Lease{l: l, name: name, owner: owner, o: o, log: o.Logger, until: at.Add(o.TTL),
		bg: context.WithoutCancel(ctx), stop: make(chan struct{})}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	h.ctx, h.cancel = context.WithCancelCause(ctx)
	tick := o.Tick
	var ticker *time.Ticker
	if tick == nil {
		ticker = time.NewTicker(o.Every)
		tick = ticker.C
	}
	h.wg.Go(func() {
		if ticker != nil {
			defer ticker.Stop()
		}
		for {
			select {
			case <-h.stop:
				return
			case t := <-tick:
				if ticker != nil {
					t = o.Now()
				}
				if !h.renew(t) {
					return
				}
			}
		}
	})
	return h, nil
}

// HoldLock is Hold with the default renewal: held is ctx, cancelled with a
// *LockLostError cause (errors.Is ErrLockLost) when the lock is lost;
// release stops the renewals and frees the lock.
func HoldLock(ctx context.Context, l Locks, name, owner string, now func() time.Time, ttl time.Duration, logger *slog.Logger) (held context.Context, release func(), err error) {
	h, err := Hold(ctx, l, name, owner, LeaseOptions{TTL: ttl, Now: now, Logger: logger})
	if err != nil {
		return nil, nil, err
	}
	return h.Context(), h.Release, nil
}

// Context is done when the lock is lost (its cause a *LockLostError), when
// the parent is done, or after Release.
func (h *Lease) Context() context.Context { return h.ctx }

// Lost is the *LockLostError once the lock is lost, else nil.
func (h *Lease) Lost() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.lost
}

// renew extends the lease by TTL from now; false once the lock is lost.
func (h *Lease) renew(now time.Time) bool {
	if !now.Before(h.until) {
		// Late (a stalled process, a jumped clock): another run may have
		// taken the lock and even released it since, so a renewal that
		// succeeds now would prove nothing.
		h.lose("", fmt.Errorf("its lease ran out at %s before it was renewed", h.until.UTC().Format(time.RFC3339)))
		return false
	}
	// A renewal slower than the renewal interval is as good as failed.
	ctx, cancel := context.WithTimeout(h.bg, h.o.Every)
	err := h.l.AcquireLock(ctx, h.name, h.owner, now, h.o.TTL)
	cancel()
	switch {
	case err == nil:
		h.until = now.Add(h.o.TTL)
		return true
	case errors.Is(err, ErrConflict):
		owner, _, herr := h.l.LockHolder(h.bg, h.name)
		if herr != nil {
			owner = ""
		}
		h.lose(owner, nil)
		return false
	case !now.Add(h.o.Every).Before(h.until):
		h.lose("", fmt.Errorf("could not renew it before its lease ran out at %s: %w", h.until.UTC().Format(time.RFC3339), err))
		return false
	default:
		h.log.Warn("renewing a store lock failed; trying again", "lock", h.name, "until", h.until, "err", err)
		return true
	}
}

func (h *Lease) lose(owner string, why error) {
	err := &LockLostError{Lock: h.name, Owner: owner, Err: why}
	h.mu.Lock()
	h.lost = err
	h.mu.Unlock()
	h.log.Error("lost a store lock; the work it guards stops", "lock", h.name, "new_owner", owner, "err", err)
	h.cancel(err)
}

// Release stops the renewals and frees the lock if it is still ours.
func (h *Lease) Release() { h.ReleaseKeeping(time.Time{}, 0) }

// ReleaseKeeping stops the renewals and, when keep > 0, leaves the lock
// held until from+keep (it lapses then; the reminders runner keeps a job's
// lock a while after a run so a lagging replica skips the same run);
// otherwise, or if that fails, it frees the lock. A lost lock is left
// alone. Only the first call of Release or ReleaseKeeping counts.
func (h *Lease) ReleaseKeeping(from time.Time, keep time.Duration) {
	h.once.Do(func() {
		close(h.stop)
		h.wg.Wait()
		defer h.cancel(nil)
		if h.Lost() != nil {
			return
		}
		if keep > 0 {
			err := h.l.AcquireLock(h.bg, h.name, h.owner, from, keep)
			if err == nil {
				return
			}
			if !errors.Is(err, ErrConflict) {
				h.log.Warn("keeping a store lock after the work", "lock", h.name, "err", err)
			}
		}
		if err := h.l.ReleaseLock(h.bg, h.name, h.owner); err != nil {
			h.log.Warn("releasing a store lock", "lock", h.name, "err", err)
		}
	})
}
