package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/kaizen-onboard/kaizen/internal/cli"
	"github.com/kaizen-onboard/kaizen/internal/cloud"
	"github.com/kaizen-onboard/kaizen/internal/config"
	"github.com/kaizen-onboard/kaizen/internal/mail"
	"github.com/kaizen-onboard/kaizen/internal/setpass"
	"github.com/kaizen-onboard/kaizen/internal/store"
	"github.com/kaizen-onboard/kaizen/templates"
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
	// The [secrets] keys sign PINs and seal the mail setpass queues; they
	// must be those of addusers and reminders on the same store.
	keys, err := mail.KeysFromConfig(cfg)
	if err != nil {
		return err
	}
	logger := cli.NewLogger(cfg.Log, env.Stderr).With("program", "setpass")
	proxies, err := setpass.ParseTrustedProxies(sp.TrustedProxies)
	if err != nil {
		return fmt.Errorf("%w: setpass.trusted_proxies: %w", config.ErrInvalid, err)
	}
	pages, err := setpass.LoadPages(templates.FS, cfg.Mail.TemplatesDir, setpass.Branding{
		CloudName: cfg.Mail.CloudName, Support: cfg.Mail.Support, LoginURL: cfg.Mail.LoginURL,
	})
	if err != nil {
		return err
	}
	st, err := store.Open(ctx, cfg.Store.URL.Reveal(), logger)
	if err != nil {
		return err
	}
	defer st.Close()
	clients, err := cloud.Connect(ctx, cfg.OpenStack)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics, err := setpass.NewMetrics(reg)
	if err != nil {
		return err
	}
	resetter, err := resetCredential(ctx, cfg)
	if err != nil {
		return err
	}
	// The /reset page queues mail (the link, or a helpdesk notice); with
	// it off, setpass sends none and needs no transport.
	var outbox *mail.Outbox
	if sp.ResetMode != setpass.ResetOff {
		var closeMail io.Closer
		if outbox, closeMail, err = mail.FromConfig(cfg, st, true, nil, logger); err != nil {
			return err
		}
		if closeMail != nil {
			defer closeMail.Close()
		}
	}
	var mailer setpass.Mailer
	if outbox != nil {
		mailer = outbox // a nil *mail.Outbox must not become a non-nil Mailer
	}
	wake := make(chan struct{}, 1)
	var background sync.WaitGroup // the work behind /reset answers
	keystone := setpass.NewKeystone(clients.Identity, cfg.OpenStack.AdminProject, cfg.OpenStack.AdminProjectDomain).
		SetAdminCacheTTL(sp.AdminCacheTTL.D)
	deps := setpass.Deps{
		Store:     st,
		Keystone:  keystone,
		Directory: keystone,
		Resetter:  resetter,
		Mail:      mailer,
		MailQueued: func() {
			select {
			case wake <- struct{}{}:
			default:
			}
		},
		Go:       background.Go,
		Pages:    pages,
		Registry: reg,
		Metrics:  metrics,
		Logger:   logger,
		Now:      time.Now,
		Random:   rand.Reader,
		Settings: setpass.Settings{
			Keys:              keys,
			BaseURL:           sp.URL,
			TokenTTL:          sp.TokenTTL.D,
			MaxAttempts:       sp.MaxAttempts,
			MinPasswordLength: sp.MinPasswordLength,
			TrustedProxies:    proxies,
			RateLimit:         sp.RateLimit,
			RateBurst:         sp.RateBurst,
			PINGuard:          setpass.PINGuardSettings{PerUser: sp.PINFailuresPerUser, Window: sp.PINFailureWindow.D},
			Reset: setpass.ResetSettings{
				Mode:           sp.ResetMode,
				TokenTTL:       sp.ResetTokenTTL.D,
				MinTime:        sp.ResetMinTime.D,
				ProtectedRoles: sp.ResetProtectedRoles,
				RevokeTokens:   sp.ResetRevokeTokens,
				AccountLimit:   sp.ResetAccountLimit,
				Helpdesk:       cfg.Mail.Helpdesk,
			},
		},
	}
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
		setpass.Purger{Store: st, Now: time.Now, Interval: sp.PurgeInterval.D, Logger: logger, Metrics: metrics}.Run(purgeCtx)
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
