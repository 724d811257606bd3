package setpass

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// ServeOptions say how Serve runs the handler.
type ServeOptions struct {
	// CertFile and KeyFile serve HTTPS; both empty serve plain HTTP (behind
	// a TLS-terminating proxy).
	CertFile, KeyFile string
	Logger            *slog.Logger
}

// shutdownTimeout bounds the graceful shutdown. It outlasts keystoneTimeout,
// so a password change in flight ends with a known outcome.
const shutdownTimeout = keystoneTimeout + 10*time.Second

// Serve runs h on ln until ctx is cancelled, then shuts down gracefully:
// requests in flight (a password change among them) are let finish.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, o ServeOptions) error {
	return ServeAll(ctx, o, Listener{Listener: ln, Handler: h})
}

// Listener is one of the addresses ServeAll serves, with its handler.
type Listener struct {
	Listener net.Listener
	Handler  http.Handler
}

// ServeAll runs each handler on its listener (the public and the admin
// one) until ctx is cancelled or one of them fails, then shuts them all
// down gracefully at once: requests in flight on either are let finish.
func ServeAll(ctx context.Context, o ServeOptions, ls ...Listener) error {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	servers := make([]*http.Server, len(ls))
	errc := make(chan error, len(ls))
	for i, l := range ls {
		srv := &http.Server{
			Handler:           l.Handler,
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      60 * time.Second,
			IdleTimeout:       120 * time.Second,
			MaxHeaderBytes:    32 << 10,
			ErrorLog:          slog.NewLogLogger(o.Logger.Handler(), slog.LevelWarn),
			TLSConfig:         &tls.Config{MinVersion: tls.VersionTLS12},
		}
		servers[i] = srv
		go func() {
			var err error
			if o.CertFile != "" {
				err = srv.ServeTLS(l.Listener, o.CertFile, o.KeyFile)
			} else {
				err = srv.Serve(l.Listener)
			}
			if errors.Is(err, http.ErrServerClosed) {
				err = nil
			} else if err != nil {
				err = fmt.Errorf("serving on %s: %w", l.Listener.Addr(), err)
			}
			errc <- err
		}()
	}
	var errs []error
	running := len(ls)
	select {
	case err := <-errc:
		running--
		errs = append(errs, err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	var wg sync.WaitGroup
	shutdownErrs := make([]error, len(servers))
	for i, srv := range servers {
		wg.Go(func() {
			if err := srv.Shutdown(sctx); err != nil {
				shutdownErrs[i] = fmt.Errorf("shutting down: %w", err)
			}
		})
	}
	wg.Wait()
	for ; running > 0; running-- {
		errs = append(errs, <-errc)
	}
	return errors.Join(append(errs, shutdownErrs...)...)
}

// PurgeGrace is how long a used or expired token is kept, so that a re-issue
// soon after can still carry its PIN over.
const PurgeGrace = 7 * 24 * time.Hour

// Purger deletes spent tokens every interval until ctx is cancelled.
type Purger struct {
	Store    Store
	Now      func() time.Time
	Interval time.Duration
	Logger   *slog.Logger
	Metrics  *Metrics // may be nil
	// Tick, if set, replaces the ticker (tests).
	Tick <-chan time.Time
}

// Run purges once at once and then on every tick.
func (p Purger) Run(ctx context.Context) {
	tick := p.Tick
	if tick == nil {
		t := time.NewTicker(p.Interval)
		defer t.Stop()
		tick = t.C
	}
	for {
		p.Once(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick:
		}
	}
}

// Once purges tokens that ended more than PurgeGrace before now.
func (p Purger) Once(ctx context.Context) {
	n, err := p.Store.PurgeTokens(ctx, p.Now().Add(-PurgeGrace))
	switch {
	case err != nil && ctx.Err() == nil:
		p.Logger.Error("purging tokens", "err", err)
	case n > 0:
		p.Logger.Info("purged tokens", "count", n)
		if p.Metrics != nil {
			p.Metrics.purged.Add(float64(n))
		}
	}
}
