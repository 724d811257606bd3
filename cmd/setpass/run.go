package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/kaizen-onboard/kaizen/internal/app"
	"github.com/kaizen-onboard/kaizen/internal/cli"
	"github.com/kaizen-onboard/kaizen/internal/config"
	"github.com/kaizen-onboard/kaizen/internal/setpass"
)

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	app := cli.App{
		Program: "setpass",
		Version: version,
		About:   "setpass is the web service behind the set-password link mailed to new users.",
		Default: "serve",
		Commands: []cli.Command{
			{Name: "serve", Summary: "serve the set-password pages and the PUT /token API until stopped\n(SIGTERM or Ctrl-C shuts down gracefully)", Run: serve},
		},
	}
	return app.Run(ctx, args, getenv, stdout, stderr)
}

func serve(ctx context.Context, env cli.Env, args []string) error {
	if len(args) > 0 {
		return cli.Usagef("serve takes no arguments")
	}
	cfg, err := env.Global.LoadConfig(env.Getenv)
	if err != nil {
		return err
	}
	return serveConfig(ctx, cfg, env, listeners{})
}

// listeners are the sockets serveConfig serves; a nil one is opened on
// its setpass.listen / setpass.admin_listen address (tests pass their own).
type listeners struct {
	public, admin net.Listener
}

// serveConfig runs the service on setpass.listen and, when set,
// setpass.admin_listen.
func serveConfig(ctx context.Context, cfg *config.Config, env cli.Env, lns listeners) error {
	sp := cfg.Setpass
	logger := cli.NewLogger(cfg.Log, env.Stderr).With("program", "setpass")
	a := app.New(cfg, logger, app.Options{})
	defer a.Close()
	svc, err := a.SetpassService(ctx)
	if err != nil {
		return err
	}
	reg := a.Registry()
	metrics, err := setpass.NewMetrics(reg)
	if err != nil {
		return err
	}
	st, outbox, resetter := svc.Deps.Store, svc.Outbox, svc.Deps.Resetter
	wake := make(chan struct{}, 1)
	var background sync.WaitGroup // the work behind /reset answers
	deps := svc.Deps
	deps.MailQueued = func() {
		select {
		case wake <- struct{}{}:
		default:
		}
	}
	deps.Go, deps.Registry, deps.Metrics = background.Go, reg, metrics
	var serve []setpass.Listener
	if sp.AdminListen == "" {
		h, err := setpass.NewHandler(deps)
		if err != nil {
			return err
		}
		serve = []setpass.Listener{{Listener: lns.public, Handler: h}}
	} else {
		hs, err := setpass.NewHandlers(deps)
		if err != nil {
			return err
		}
		serve = []setpass.Listener{{Listener: lns.public, Handler: hs.Public}, {Listener: lns.admin, Handler: hs.Admin}}
	}
	for i, addr := range []string{sp.Listen, sp.AdminListen}[:len(serve)] {
		if serve[i].Listener != nil {
			continue
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			for _, l := range serve[:i] {
				l.Listener.Close()
			}
			return fmt.Errorf("listening on %s: %w", addr, err)
		}
		serve[i].Listener = ln
	}
	purgeCtx, stopPurge := context.WithCancel(ctx)
	purged := make(chan struct{})
	go func() {
		defer close(purged)
		setpass.Purger{Store: st, Now: a.Now, Interval: sp.PurgeInterval.D, Logger: logger, Metrics: metrics}.Run(purgeCtx)
	}()
	defer func() { stopPurge(); <-purged }()
	// Mail is delivered until the end, after the requests in flight (and
	// the work behind /reset answers) have queued theirs.
	defer background.Wait()
	if outbox != nil {
		mailCtx, stopMail := context.WithCancel(context.WithoutCancel(ctx))
		mailed := make(chan struct{})
		go func() {
			defer close(mailed)
			setpass.MailSender{Outbox: outbox, Interval: mailInterval, Wake: wake, Logger: logger}.Run(mailCtx)
		}()
		defer func() {
			background.Wait()
			stopMail()
			<-mailed
			final, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			setpass.MailSender{Outbox: outbox, Logger: logger}.Once(final)
		}()
	}

	adminAddr := "" // "": the admin API is on addr
	if len(serve) > 1 {
		adminAddr = serve[1].Listener.Addr().String()
	}
	logger.Info("serving", "addr", serve[0].Listener.Addr().String(), "admin_addr", adminAddr,
		"tls", sp.TLSCertFile != "", "url", sp.URL, "reset_credential", resetter != nil, "reset_mode", sp.ResetMode,
		"admin_cache_ttl", sp.AdminCacheTTL.D)
	err = setpass.ServeAll(ctx, setpass.ServeOptions{CertFile: sp.TLSCertFile, KeyFile: sp.TLSKeyFile, Logger: logger}, serve...)
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	logger.Info("stopped")
	return nil
}
