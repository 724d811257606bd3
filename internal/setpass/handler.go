// Package setpass is the web service behind the set-password link: an admin
// API that issues links (PUT /token/<user_id>), and the page where a new
// user enters their PIN and chooses a password, which setpass then sets in
// Keystone as the user. It faces the internet; see the package README for
// the threat model and the design decisions.
package setpass

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/kaizen-onboard/kaizen/internal/keyring"
	"github.com/kaizen-onboard/kaizen/internal/store"
)

// Store is the part of the state store setpass uses.
type Store interface {
	store.Tokens
	store.PINs
	AppendEvent(ctx context.Context, e store.Event) (int64, error)
	Ping(ctx context.Context) error
}

// Settings are the service's tunables, from [setpass].
type Settings struct {
	// Keys sign PIN HMACs (the first) and verify them (every one): the
	// operator's [secrets] keys. When nil, SecretKey is the only key.
	Keys              *keyring.Keyring
	SecretKey         []byte // the single PIN HMAC key when Keys is nil; at least 32 bytes
	BaseURL           string // public URL the links point at, e.g. https://setpass.example.org/
	TokenTTL          time.Duration
	MaxAttempts       int
	MinPasswordLength int
	TrustedProxies    []netip.Prefix
	RateLimit         int // form POSTs per minute per client
	RateBurst         int
	Reset             ResetSettings
	PINGuard          PINGuardSettings // wrong PINs per user, across links (pinguard.go)
}

// ResetSettings tune password resets (the setpass.reset_* keys). Zero
// values take the defaults noted.
type ResetSettings struct {
	// Mode of the self-service /reset page: ResetLink (mail a PIN-gated
	// link; the default), ResetHelpdesk (only tell the helpdesk) or ResetOff
	// (no page). Without a Resetter, ResetLink works as ResetHelpdesk.
	Mode string
	// TokenTTL is how long a reset link lasts (Settings.TokenTTL).
	TokenTTL time.Duration
	// MinTime is the floor of every answer of POST /reset (3s), so that
	// it takes as long whether or not the account exists.
	MinTime time.Duration
	// ProtectedRoles: accounts holding one of them (anywhere, compared
	// ignoring case) cannot be reset through /reset. "admin" always is.
	ProtectedRoles []string
	// RevokeTokens disables and re-enables the user after a reset link sets
	// its password (see README.md for what that revokes).
	RevokeTokens bool
	// AccountLimit is how many /reset requests one address may make per
	// hour (3); the rest get the same answer and no mail.
	AccountLimit int
	// Helpdesk is where ResetHelpdesk requests (and link requests for an
	// account with no PIN on file) are reported: mail.helpdesk.
	Helpdesk string
}

// Self-service reset modes.
const (
	ResetLink     = "link"
	ResetHelpdesk = "helpdesk"
	ResetOff      = "off"
)

const (
	defaultResetMinTime      = 3 * time.Second
	defaultResetAccountLimit = 3
)

// maxLimiterClients bounds the rate limiter table (see README.md).
const maxLimiterClients = 10000

// Deps is everything the handler needs, passed in.
type Deps struct {
	Store    Store
	Keystone Keystone
	Pages    *Pages
	Registry *prometheus.Registry // /metrics serves it
	Metrics  *Metrics             // nil: registered on Registry here
	Logger   *slog.Logger
	Now      func() time.Time
	Random   io.Reader
	Settings Settings

	// Resetter sets passwords without the old one (setpass.reset_user);
	// nil when no reset credential is configured: PUT /reset then needs a
	// temporary password, and /reset only tells the helpdesk.
	Resetter Resetter
	// Directory and Mail serve the self-service /reset page, which is off
	// while either is nil.
	Directory Directory
	Mail      Mailer
	// MailQueued, if set, is called (it must not block) after the handler
	// queued mail, to wake the sender.
	MailQueued func()
	// Sleep waits d or until ctx ends (the /reset floor); nil: a timer.
	Sleep func(ctx context.Context, d time.Duration)
	// Go runs the work behind a /reset answer; nil: a goroutine. A server
	// that shuts down should wait for it.
	Go func(func())
}

type handler struct {
	Deps   // Metrics and Logger are never nil here
	limits *limiters
	// /reset: per client address, and per address typed.
	resetLimits, accountLimits *limiters
	// resetSlots bounds the /reset work in flight.
	resetSlots chan struct{}
}

// NewHandler builds the whole service on one listener: routes, security
// headers, cross-origin protection and request logging.
func NewHandler(d Deps) (http.Handler, error) {
	h, err := newHandler(d)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	h.publicRoutes(mux)
	h.adminRoutes(mux)
	mux.HandleFunc("GET /healthz", h.healthz)
	return h.wrap(mux, ""), nil
}

// Handlers are the service split over two listeners (setpass.admin_listen).
type Handlers struct {
	// Public serves the pages and a /healthz without detail; the admin API
	// and /metrics are 404 there, as any unknown path is.
	Public http.Handler
	// Admin serves PUT /token, PUT /reset, /metrics and the detailed /healthz.
	Admin http.Handler
}

// adminPaths are the admin API's and /metrics' paths, refused on the public
// listener of a split service whatever the method.
var adminPaths = []string{"/token/", "/reset/", "/metrics"}

// NewHandlers builds the service split over a public and an admin
// listener, sharing one state (limits, metrics).
func NewHandlers(d Deps) (Handlers, error) {
	h, err := newHandler(d)
	if err != nil {
		return Handlers{}, err
	}
	public := http.NewServeMux()
	h.publicRoutes(public)
	public.HandleFunc("GET /healthz", h.publicHealthz)
	for _, p := range adminPaths {
		public.Handle(p, http.NotFoundHandler()) // explicit, so no later route can catch them
	}
	admin := http.NewServeMux()
	h.adminRoutes(admin)
	admin.HandleFunc("GET /healthz", h.healthz)
	return Handlers{Public: h.wrap(public, "public"), Admin: h.wrap(admin, "admin")}, nil
}

func newHandler(d Deps) (*handler, error) {
	switch {
	case d.Store == nil || d.Keystone == nil || d.Pages == nil || d.Registry == nil || d.Now == nil || d.Random == nil:
		return nil, errors.New("setpass: Store, Keystone, Pages, Registry, Now and Random are required")
	case d.Settings.Keys == nil && len(d.Settings.SecretKey) < keyring.MinKeyLen:
		return nil, errors.New("setpass: the secret keys are required (Keys, or a SecretKey of at least 32 bytes)")
	case d.Settings.TokenTTL <= 0 || d.Settings.MaxAttempts < 1 || d.Settings.MinPasswordLength < 1 ||
		d.Settings.RateLimit < 1 || d.Settings.RateBurst < 1:
		return nil, errors.New("setpass: TokenTTL, MaxAttempts, MinPasswordLength, RateLimit and RateBurst must be positive")
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	d.Logger = d.Logger.With("component", "setpass")
	if d.Settings.Keys == nil {
		keys, err := keyring.New(d.Random, d.Settings.SecretKey)
		if err != nil {
			return nil, fmt.Errorf("setpass: %w", err)
		}
		d.Settings.Keys = keys
	}
	if err := d.resetDefaults(); err != nil {
		return nil, err
	}
	if d.Metrics == nil {
		var err error
		if d.Metrics, err = NewMetrics(d.Registry); err != nil {
			return nil, err
		}
	}
	h := &handler{Deps: d, limits: newLimiters(d.Settings.RateLimit, d.Settings.RateBurst, maxLimiterClients)}
	if h.selfService() {
		h.resetLimits = newLimiters(d.Settings.RateLimit, d.Settings.RateBurst, maxLimiterClients)
		h.accountLimits = newLimitersEvery(time.Hour/time.Duration(d.Settings.Reset.AccountLimit),
			d.Settings.Reset.AccountLimit, maxLimiterClients)
		h.resetSlots = make(chan struct{}, maxResetsInFlight)
	}
	return h, nil
}

// publicRoutes are the pages people open from their mail.
func (h *handler) publicRoutes(mux *http.ServeMux) {
	if h.selfService() {
		mux.HandleFunc("GET /reset", h.showResetForm)
		mux.HandleFunc("POST /reset", h.submitResetForm)
	}
	mux.HandleFunc("GET /{$}", h.showForm)
	mux.HandleFunc("POST /{$}", h.submitForm)
	mux.HandleFunc("GET /static/style.css", h.style)
}

// adminRoutes are the admin API and the metrics.
func (h *handler) adminRoutes(mux *http.ServeMux) {
	mux.HandleFunc("PUT /token/{user_id}", h.issue)
	mux.HandleFunc("PUT /reset/{user_id}", h.issueReset)
	mux.Handle("GET /metrics", promhttp.HandlerFor(h.Registry, promhttp.HandlerOpts{}))
}

// wrap adds cross-origin protection, security headers and request logging;
// listener names the listener in the log ("" on a single one).
func (h *handler) wrap(mux *http.ServeMux, listener string) http.Handler {
	// Refuses browsers' cross-site POSTs and PUTs (Sec-Fetch-Site, else
	// Origin vs Host); non-browser API clients send neither header and pass.
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut {
			apiError(w, http.StatusForbidden, "cross-origin requests are refused")
			return
		}
		h.problem(w, http.StatusForbidden, "Request refused",
			"This form can only be sent from its own page. Open the link from your email again.")
	}))
	logger := h.Logger
	if listener != "" {
		logger = logger.With("listener", listener)
	}
	return h.logRequests(logger, securityHeaders(cop.Handler(mux)))
}

const contentSecurityPolicy = "default-src 'none'; style-src 'self'; img-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// securityHeaders go on every response, errors included.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", contentSecurityPolicy)
		hd.Set("Referrer-Policy", "no-referrer") // the token is in the URL
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Cache-Control", "no-store")
		if r.TLS != nil {
			hd.Set("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
		}
		next.ServeHTTP(w, r)
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// logRequests logs the path only: the query string holds the token.
func (h *handler) logRequests(logger *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := h.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		logger.Info("request", "method", r.Method, "path", r.URL.Path, "status", sw.status,
			"client", limiterKey(clientAddr(r, h.Settings.TrustedProxies)), "duration", h.Now().Sub(start))
	})
}

func (h *handler) style(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	_, _ = w.Write(h.Pages.style)
}

// page writes a rendered page; a template failure is logged, never shown.
func (h *handler) page(w http.ResponseWriter, status int, name string, d pageData) {
	body, err := h.Pages.render(name, d)
	if err != nil {
		h.Logger.Error("rendering a page", "page", name, "err", err)
		http.Error(w, "Internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func (h *handler) problem(w http.ResponseWriter, status int, heading, message string) {
	h.page(w, status, pageProblem, pageData{Heading: heading, Message: message})
}

func (h *handler) invalidLink(w http.ResponseWriter) {
	h.page(w, http.StatusGone, pageInvalid, pageData{})
}

// healthz answers which dependency fails, for the operator's monitoring.
func (h *handler) healthz(w http.ResponseWriter, r *http.Request) {
	checks, status := h.health(r.Context())
	writeJSON(w, status, map[string]any{"status": overallHealth(status), "checks": checks})
}

// publicHealthz is healthz for the internet: up or not, nothing more.
func (h *handler) publicHealthz(w http.ResponseWriter, r *http.Request) {
	_, status := h.health(r.Context())
	writeJSON(w, status, map[string]any{"status": overallHealth(status)})
}

func (h *handler) health(ctx context.Context) (map[string]string, int) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	checks := map[string]string{"store": "ok", "keystone": "ok"}
	status := http.StatusOK
	if err := h.Store.Ping(ctx); err != nil {
		h.Logger.Warn("health check: store", "err", err)
		checks["store"], status = "fail", http.StatusServiceUnavailable
	}
	if err := h.Keystone.Ping(ctx); err != nil {
		h.Logger.Warn("health check: keystone", "err", err)
		checks["keystone"], status = "fail", http.StatusServiceUnavailable
	}
	return checks, status
}

func overallHealth(status int) string {
	if status != http.StatusOK {
		return "unavailable"
	}
	return "ok"
}

// audit records an event; a failure is logged and does not undo the action.
func (h *handler) audit(ctx context.Context, actor, action, target string) {
	if _, err := h.Store.AppendEvent(ctx, store.Event{At: h.Now(), Actor: actor, Action: action, Target: target}); err != nil {
		h.Logger.Warn("recording an audit event", "action", action, "err", fmt.Errorf("audit: %w", err))
	}
}
