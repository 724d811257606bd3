package store

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// HoldLock takes lock name for owner until now()+ttl and renews it every
// ttl/3 until release is called, which frees it; a run that is killed
// loses the lock within ttl. The error is AcquireLock's (ErrConflict when
// another owner holds it). A failed renewal or release is logged, not
// returned: the work the lock guards goes on.
func HoldLock(ctx context.Context, l Locks, name, owner string, now func() time.Time, ttl time.Duration, logger *slog.Logger) (release func(), err error) {
	if err := l.AcquireLock(ctx, name, owner, now(), ttl); err != nil {
		return nil, err
	}
	// Renewals and the release outlive a cancelled ctx: the lock must not
	// lapse under work that is still finishing, nor stay held after it.
	bg := context.WithoutCancel(ctx)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(ttl / 3)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if err := l.AcquireLock(bg, name, owner, now(), ttl); err != nil {
					logger.Error("renewing a store lock", "lock", name, "err", err)
				}
			}
		}
	})
	return func() {
		close(stop)
		wg.Wait()
		if err := l.ReleaseLock(bg, name, owner); err != nil {
			logger.Warn("releasing a store lock", "lock", name, "err", err)
		}
	}, nil
}
