// Package app is the composition root of a Kaizen process: from the
// settings it builds the logger's users, the store, the sheets, the cloud
// connection (made at first use, not at start), the setpass client, the
// mail outbox, the clock and the randomness, and closes what it opened.
// Every program and subcommand takes what it needs from one App; nothing
// else wires dependencies from the settings.
package app

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/kaizen-onboard/kaizen/internal/cloud"
	"github.com/kaizen-onboard/kaizen/internal/config"
	"github.com/kaizen-onboard/kaizen/internal/keyring"
	"github.com/kaizen-onboard/kaizen/internal/mail"
	"github.com/kaizen-onboard/kaizen/internal/setpass/client"
	"github.com/kaizen-onboard/kaizen/internal/sheet"
	"github.com/kaizen-onboard/kaizen/internal/store"
	"github.com/kaizen-onboard/kaizen/templates"
)

// ErrNoSheet: neither a CSV file nor a Google Sheet is configured (or the
// CSV file is missing). Commands turn it into a usage error.
var ErrNoSheet = errors.New("no sign-up sheet")

// ErrNoQuotaSheet: no quota-request worksheet is configured and no CSV given.
var ErrNoQuotaSheet = errors.New("no quota-request sheet")

// Options are what a process passes besides its settings.
type Options struct {
	// Now is the clock of everything built (nil: time.Now).
	Now func() time.Time
	// Random is the randomness of everything built (nil: crypto/rand).
	Random io.Reader
	// Store, when set, is the store to use; the caller keeps ownership
	// (Close does not close it).
	Store store.Store
	// Connect reaches OpenStack (nil: cloud.Connect).
	Connect func(ctx context.Context, o config.OpenStack) (*cloud.Clients, error)
}

// App is one process's dependencies. Its methods build or open each on
// first use and reuse it afterwards; Close releases what was opened.
type App struct {
	Config *config.Config
	Logger *slog.Logger
	Now    func() time.Time
	Random io.Reader

	connect func(ctx context.Context, o config.OpenStack) (*cloud.Clients, error)

	mu       sync.Mutex
	store    store.Store
	clients  *cloud.Clients
	registry *prometheus.Registry
	closers  []io.Closer
}

// New is the App of cfg. logger may be nil (nothing is logged).
func New(cfg *config.Config, logger *slog.Logger, o Options) *App {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Random == nil {
		o.Random = rand.Reader
	}
	if o.Connect == nil {
		o.Connect = cloud.Connect
	}
	return &App{Config: cfg, Logger: logger, Now: o.Now, Random: o.Random, connect: o.Connect, store: o.Store}
}

// Close closes, last opened first, everything the App opened.
func (a *App) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	var errs []error
	for i := len(a.closers) - 1; i >= 0; i-- {
		errs = append(errs, a.closers[i].Close())
	}
	a.closers = nil
	return errors.Join(errs...)
}

func (a *App) keep(c io.Closer) {
	if c == nil {
		return
	}
	a.mu.Lock()
	a.closers = append(a.closers, c)
	a.mu.Unlock()
}

// Store opens the state store (migrating it) once and returns it.
func (a *App) Store(ctx context.Context) (store.Store, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.store != nil {
		return a.store, nil
	}
	st, err := store.Open(ctx, a.Config.Store.URL.Reveal(), a.Logger)
	if err != nil {
		return nil, err
	}
	a.store = st
	a.closers = append(a.closers, st)
	return st, nil
}

// ReadStore is the state store for a run that changes nothing: the store
// already open, else the store opened read-only (no file created, no lock,
// no migration, no write). It is nil, without error, when there is no
// store yet or its schema is older than this program's (the next import
// migrates it): then nothing recorded can be known, and nothing is.
func (a *App) ReadStore(ctx context.Context) (store.Store, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.store != nil {
		return a.store, nil
	}
	st, err := store.OpenReadOnly(ctx, a.Config.Store.URL.Reveal(), a.Logger)
	switch {
	case errors.Is(err, store.ErrNoStore), errors.Is(err, store.ErrSchemaBehind):
		a.Logger.Info("reading without the state store", "reason", err)
		return nil, nil
	case err != nil:
		return nil, err
	}
	a.closers = append(a.closers, st)
	return st, nil
}

// Cloud connects to OpenStack at its first call and returns the same
// clients afterwards (the provider re-authenticates by itself). A failed
// connection is tried again at the next call, so Keystone being down fails
// the work that needs it, not the process.
func (a *App) Cloud(ctx context.Context) (*cloud.Clients, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.clients != nil {
		return a.clients, nil
	}
	c, err := a.connect(ctx, a.Config.OpenStack)
	if err != nil {
		return nil, err
	}
	a.clients = c
	return c, nil
}

// Token is the admin connection's current Keystone token, connecting if
// needed (the setpass client's credential).
func (a *App) Token(ctx context.Context) (string, error) {
	c, err := a.Cloud(ctx)
	if err != nil {
		return "", err
	}
	return c.Provider.Token(), nil
}

// Setpass is the client of setpass's admin API (setpass.admin_url, else
// setpass.url). It connects to OpenStack only when it first calls setpass.
func (a *App) Setpass() (*client.Client, error) {
	sp, err := client.New(a.Config.Setpass.APIURL(), &http.Client{Timeout: a.Config.OpenStack.Timeout.D}, a.Token)
	if err != nil {
		return nil, fmt.Errorf("%w: setpass.admin_url (or setpass.url): %w", config.ErrInvalid, err)
	}
	return sp, nil
}

// Keys is the keyring of the [secrets] keys (or the legacy
// setpass.secret_key); an error wrapping config.ErrInvalid when none is set.
func (a *App) Keys() (*keyring.Keyring, error) {
	return Keys(a.Config, a.Random)
}

// Keys is App.Keys for code that has settings but no App (tests).
func Keys(cfg *config.Config, random io.Reader) (*keyring.Keyring, error) {
	if !cfg.Secrets.IsSet() {
		return nil, fmt.Errorf("%w: secret keys are required to queue, deliver or check mail and PINs: %s",
			config.ErrInvalid, config.MissingSecretsHelp)
	}
	keys, err := keyring.New(random, cfg.Secrets.Reveal()...)
	if err != nil {
		return nil, fmt.Errorf("%w: secrets.keys: %w", config.ErrInvalid, err)
	}
	return keys, nil
}

// Outbox builds the outbox the [mail] settings describe over st: the
// embedded templates (or mail.templates_dir), the composer and, when
// deliver is set, the configured transport, which the App closes. Bodies
// are sealed with the [secrets] keys: without them it fails, naming the
// settings to set.
func (a *App) Outbox(st mail.OutboxStore, deliver bool) (*mail.Outbox, error) {
	o, closer, err := a.newOutbox(st, deliver)
	if err != nil {
		return nil, err
	}
	a.keep(closer)
	return o, nil
}

// newOutbox is Outbox with the transport's closer for the caller.
func (a *App) newOutbox(st mail.OutboxStore, deliver bool) (*mail.Outbox, io.Closer, error) {
	cfg := a.Config
	keys, err := a.Keys()
	if err != nil {
		return nil, nil, err
	}
	renderer, err := mail.NewRenderer(templates.FS, cfg.Mail.TemplatesDir, mail.CommonFromConfig(cfg.Mail))
	if err != nil {
		return nil, nil, err
	}
	composer, err := mail.NewComposer(cfg.Mail.From, cfg.Mail.Support, a.Now, a.Random)
	if err != nil {
		return nil, nil, err
	}
	var (
		transport mail.Transport
		closer    io.Closer
	)
	if deliver {
		if transport, err = mail.NewTransport(cfg.Mail, a.Now, a.Random, mail.SMTPOptions{}); err != nil {
			return nil, nil, err
		}
		closer, _ = transport.(io.Closer)
	}
	return mail.NewOutbox(st, renderer, composer, transport, mail.OutboxOptions{
		MaxAttempts: cfg.Mail.MaxAttempts, Workers: cfg.Mail.SMTP.PoolSize, Keys: keys, Now: a.Now, Logger: a.Logger,
	}), closer, nil
}

// Actor is who the audit log names: import.actor, else the user of the
// OpenStack credentials.
func (a *App) Actor() string {
	cfg := a.Config
	if cfg.Import.Actor != "" {
		return cfg.Import.Actor
	}
	ao, _, _ := cfg.OpenStack.Auth()
	if ao.Username != "" {
		return ao.Username
	}
	return ao.UserID
}

// Table is a worksheet: Google Sheets or a CSV file.
type Table interface {
	Read(ctx context.Context) (*sheet.Table, error)
	WriteBatch(ctx context.Context, writes []sheet.Write) ([]sheet.WriteResult, error)
}

// SignupSheet is the sign-up sheet: the CSV file at path when it is set,
// else the Google Sheet of the settings. source names it for audit and
// locking.
func (a *App) SignupSheet(ctx context.Context, path string) (_ Table, source string, _ error) {
	if path != "" {
		f, source, err := openCSV(path, ErrNoSheet)
		return f, source, err
	}
	s := a.Config.Sheet
	if s.SpreadsheetID == "" || s.CredentialsFile == "" {
		return nil, "", fmt.Errorf("%w: %w: set sheet.spreadsheet_id and sheet.credentials_file, or pass --sheet requests.csv", config.ErrInvalid, ErrNoSheet)
	}
	return a.google(ctx, s.SpreadsheetID, s.Worksheet, s.Columns.Timestamp, s.Columns.Email, s.RetryMaxWait.D)
}

// QuotaSheet is the quota-request worksheet: the CSV file at path when it
// is set, else the worksheet of [quota_requests] in
// quota_requests.spreadsheet_id or the sign-up spreadsheet.
func (a *App) QuotaSheet(ctx context.Context, path string) (_ Table, source string, _ error) {
	cfg := a.Config
	c := cfg.QuotaRequests.Columns
	if path != "" {
		f, source, err := openCSV(path, ErrNoQuotaSheet)
		if err != nil {
			return nil, "", err
		}
		f.TimestampColumn, f.EmailColumn = c.Timestamp, c.Email
		return f, source, nil
	}
	id := cfg.QuotaRequests.SpreadsheetID
	if id == "" {
		id = cfg.Sheet.SpreadsheetID
	}
	if id == "" || cfg.Sheet.CredentialsFile == "" {
		return nil, "", fmt.Errorf("%w: %w: set quota_requests.spreadsheet_id (or sheet.spreadsheet_id) and sheet.credentials_file, or pass --sheet requests.csv",
			config.ErrInvalid, ErrNoQuotaSheet)
	}
	return a.google(ctx, id, cfg.QuotaRequests.Worksheet, c.Timestamp, c.Email, 0)
}

func openCSV(path string, missing error) (*sheet.CSV, string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, "", err
	}
	if _, err := os.Stat(abs); err != nil {
		return nil, "", fmt.Errorf("%w: %w", missing, err)
	}
	return sheet.NewCSV(abs), "csv:" + abs, nil
}

func (a *App) google(ctx context.Context, id, worksheet, tsCol, emailCol string, maxWait time.Duration) (Table, string, error) {
	s := a.Config.Sheet
	key, err := os.ReadFile(s.CredentialsFile)
	if err != nil {
		return nil, "", fmt.Errorf("%w: sheet.credentials_file: %w", config.ErrInvalid, err)
	}
	g, err := sheet.NewGoogle(ctx, sheet.Options{
		SpreadsheetID: id, Worksheet: worksheet, CredentialsJSON: key, Endpoint: s.Endpoint,
		TimestampColumn: tsCol, EmailColumn: emailCol, Retry: sheet.RetryPolicy{MaxWait: maxWait},
	})
	if err != nil {
		return nil, "", err
	}
	return g, "sheet:" + id + "/" + worksheet, nil
}

// Registry is the process's Prometheus registry, with the Go runtime and
// process collectors, made at the first call.
func (a *App) Registry() *prometheus.Registry {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.registry == nil {
		a.registry = prometheus.NewRegistry()
		a.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	return a.registry
}
