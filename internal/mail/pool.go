package mail

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// idleLimit is how long an idle connection is kept. Servers drop idle
// sessions after a few minutes (RFC 5321 suggests 5); a connection idle
// longer may be half-open and would cost a full timeout to find out.
const idleLimit = time.Minute

var errClosed = errors.New("mail: SMTP transport is closed")

// pool bounds the connections in use by a semaphore and keeps the idle
// ones. A sender dials only when none is idle, so open connections never
// exceed the number of slots.
type pool struct {
	slots chan struct{}
	now   func() time.Time

	mu     sync.Mutex
	idle   []*smtpConn // most recently used last
	closed bool
}

func newPool(size int, now func() time.Time) pool {
	return pool{slots: make(chan struct{}, size), now: now}
}

// acquire waits for a slot; release gives it back.
func (p *pool) acquire(ctx context.Context) (release func(), err error) {
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("mail: waiting for an SMTP connection: %w", context.Cause(ctx))
	}
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if closed {
		<-p.slots
		return nil, errClosed
	}
	return func() { <-p.slots }, nil
}

// take returns the most recently used idle connection, or nil; stale ones
// are closed on the way.
func (p *pool) take() *smtpConn {
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.idle) > 0 {
		c := p.idle[len(p.idle)-1]
		p.idle = p.idle[:len(p.idle)-1]
		if p.now().Sub(c.idleSince) < idleLimit {
			return c
		}
		c.close() // no QUIT: it could wait on a dead peer
	}
	return nil
}

// put keeps c for reuse unless err says it is broken or the pool closed.
func (p *pool) put(c *smtpConn, err error) {
	c.disarm()
	if err != nil && isBroken(err) {
		c.close()
		return
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		c.quit()
		return
	}
	c.dirty = err != nil
	c.idleSince = p.now()
	p.idle = append(p.idle, c)
	p.mu.Unlock()
}

// close refuses further sends and hands back the idle connections.
func (p *pool) close() []*smtpConn {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	idle := p.idle
	p.idle = nil
	return idle
}
