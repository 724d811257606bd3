package mail

import (
	"context"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// slowProxy is a loopback TCP proxy in front of a mail server that holds
// every chunk the server writes (one reply, or one TLS record of it) for
// delay before passing it on: a slow mail server, seen from the sender. It
// sees only bytes, so it works through STARTTLS.
type slowProxy struct {
	ln       net.Listener
	upstream string
	delay    time.Duration

	mu      sync.Mutex
	hook    func()        // called, under mu, for each server chunk before it is held
	open    int           // sessions whose server side has not closed yet
	changed chan struct{} // closed and replaced when open changes
	conns   map[net.Conn]struct{}
	wg      sync.WaitGroup
}

func newSlowProxy(t *testing.T, upstream string, delay time.Duration) *slowProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("slow proxy: %v", err)
	}
	p := &slowProxy{ln: ln, upstream: upstream, delay: delay, changed: make(chan struct{}), conns: map[net.Conn]struct{}{}}
	p.wg.Go(p.accept)
	t.Cleanup(p.close)
	return p
}

// Port is the port senders connect to.
func (p *slowProxy) Port() int { return p.ln.Addr().(*net.TCPAddr).Port }

// setHook installs f (nil removes it); the proxy calls it for every chunk
// the server writes, before holding the chunk, one call at a time.
func (p *slowProxy) setHook(f func()) {
	p.mu.Lock()
	p.hook = f
	p.mu.Unlock()
}

// waitClosed blocks until the server has closed every session, so it has
// acted on everything the senders wrote before they went away.
func (p *slowProxy) waitClosed(ctx context.Context) error {
	for {
		p.mu.Lock()
		open, changed := p.open, p.changed
		p.mu.Unlock()
		if open == 0 {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
}

func (p *slowProxy) accept() {
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", p.upstream)
		if err != nil {
			client.Close()
			continue
		}
		p.mu.Lock()
		p.open++
		p.conns[client], p.conns[server] = struct{}{}, struct{}{}
		p.mu.Unlock()
		p.wg.Go(func() { p.serve(client, server) })
	}
}

// serve copies the sender's bytes to the server at once and the server's
// to the sender after delay. When the sender goes away (killed), the
// server is told (end of input) and its remaining output read and dropped
// until it closes the session.
func (p *slowProxy) serve(client, server net.Conn) {
	p.wg.Go(func() {
		_, _ = io.Copy(server, client)
		_ = server.(*net.TCPConn).CloseWrite()
	})
	buf := make([]byte, 64<<10)
	senderGone := false
	for {
		n, err := server.Read(buf)
		if n > 0 && !senderGone {
			p.mu.Lock()
			if p.hook != nil {
				p.hook()
			}
			p.mu.Unlock()
			time.Sleep(p.delay)
			if _, werr := client.Write(buf[:n]); werr != nil {
				senderGone = true
				_ = client.Close() // ends the copy towards the server too
			}
		}
		if err != nil {
			break
		}
	}
	client.Close()
	server.Close()
	p.mu.Lock()
	p.open--
	delete(p.conns, client)
	delete(p.conns, server)
	close(p.changed)
	p.changed = make(chan struct{})
	p.mu.Unlock()
}

func (p *slowProxy) close() {
	_ = p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}
