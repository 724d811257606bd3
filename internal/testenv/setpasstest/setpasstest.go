// Package setpasstest serves the real setpass handler on an httptest
// server against the real Keystone, for the tests of the packages that
// talk to setpass. It is apart from testenv because setpass's own tests
// use testenv.
package setpasstest

import (
	"context"
	"crypto/rand"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kaizen-onboard/kaizen/internal/cloud"
	"github.com/kaizen-onboard/kaizen/internal/setpass"
	"github.com/kaizen-onboard/kaizen/internal/setpass/client"
	"github.com/kaizen-onboard/kaizen/internal/store"
	"github.com/kaizen-onboard/kaizen/internal/testenv"
	"github.com/kaizen-onboard/kaizen/templates"
)

// Options adjust the handler; the zero value is a handler on its own
// SQLite store with random secret, the wall clock and generous limits.
type Options struct {
	// Store is setpass's store; nil opens a new SQLite one.
	Store store.Store
	// Logger is the handler's (and a new store's) logger; nil logs nothing.
	Logger *slog.Logger
	// Now is the handler's clock; nil is time.Now.
	Now func() time.Time
	// Resetter lets the handler reset passwords (nil: no resets).
	Resetter setpass.Resetter
	// Branding of the pages; a zero CloudName is "Kaizen Test Cloud" with
	// support@example.org.
	Branding setpass.Branding
	// Settings of the handler. Zero fields get: a random SecretKey, the
	// server's URL as BaseURL, a 72h TokenTTL, 5 MaxAttempts, a 12
	// MinPasswordLength and a RateLimit and RateBurst of 1000.
	Settings setpass.Settings
	// Token authenticates Client; nil is the admin token of the Keystone.
	Token func(context.Context) (string, error)
}

// Server is the real setpass handler on an httptest server.
type Server struct {
	// URL is the base URL, ending in "/".
	URL    string
	HTTP   *httptest.Server
	Store  store.Store
	Client *client.Client // an admin client, as addusers has
}

// NewUnstarted binds the server's address, so that its URL is known, and
// stops it when the test ends; Start serves the handler.
func NewUnstarted(t testing.TB) *Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	t.Cleanup(srv.Close)
	return &Server{URL: "http://" + srv.Listener.Addr().String() + "/", HTTP: srv}
}

// New serves the real handler against ks, stopped when the test ends.
func New(t testing.TB, ks *testenv.KeystoneEnv, opts Options) *Server {
	t.Helper()
	s := NewUnstarted(t)
	s.Start(t, ks, opts)
	return s
}

// Start builds the handler and serves it.
func (s *Server) Start(t testing.TB, ks *testenv.KeystoneEnv, opts Options) {
	t.Helper()
	s.Store = opts.Store
	if s.Store == nil {
		st, err := store.Open(t.Context(), "sqlite://"+filepath.Join(t.TempDir(), "setpass.db"), opts.Logger)
		if err != nil {
			t.Fatalf("setpass store: %v", err)
		}
		t.Cleanup(func() { st.Close() })
		s.Store = st
	}
	b := opts.Branding
	if b.CloudName == "" {
		b = setpass.Branding{CloudName: "Kaizen Test Cloud", Support: "support@example.org"}
	}
	pages, err := setpass.LoadPages(templates.FS, "", b)
	if err != nil {
		t.Fatalf("LoadPages: %v", err)
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	h, err := setpass.NewHandler(setpass.Deps{
		Store:    s.Store,
		Keystone: setpass.NewKeystone(cloud.NewKeystone(ks.Identity), ks.Admin.ProjectName, ks.Admin.ProjectDomainName),
		Resetter: opts.Resetter,
		Pages:    pages, Registry: prometheus.NewRegistry(), Logger: opts.Logger, Now: now, Random: rand.Reader,
		Settings: s.settings(opts.Settings),
	})
	if err != nil {
		t.Fatalf("setpass.NewHandler: %v", err)
	}
	s.HTTP.Config.Handler = h
	s.HTTP.Start()
	t.Cleanup(s.HTTP.Close) // before the store's cleanups (idempotent)
	token := opts.Token
	if token == nil {
		token = func(context.Context) (string, error) { return ks.Identity.Token(), nil }
	}
	if s.Client, err = client.New(s.URL, s.HTTP.Client(), token); err != nil {
		t.Fatalf("client.New: %v", err)
	}
}

func (s *Server) settings(c setpass.Settings) setpass.Settings {
	if c.SecretKey == nil {
		c.SecretKey = []byte(rand.Text() + rand.Text())
	}
	if c.BaseURL == "" {
		c.BaseURL = s.URL
	}
	if c.TokenTTL == 0 {
		c.TokenTTL = 72 * time.Hour
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = 5
	}
	if c.MinPasswordLength == 0 {
		c.MinPasswordLength = 12
	}
	if c.RateLimit == 0 {
		c.RateLimit = 1000
	}
	if c.RateBurst == 0 {
		c.RateBurst = 1000
	}
	return c
}
