package onboard

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"

	"github.com/gophercloud/gophercloud/v2"

	"github.com/kaizen-onboard/kaizen/internal/cloud"
	"github.com/kaizen-onboard/kaizen/internal/config"
	"github.com/kaizen-onboard/kaizen/internal/mail"
	"github.com/kaizen-onboard/kaizen/internal/request"
	"github.com/kaizen-onboard/kaizen/internal/setpass"
	"github.com/kaizen-onboard/kaizen/internal/sheet"
	"github.com/kaizen-onboard/kaizen/internal/store"
)

// ErrNoSheet: neither a CSV file nor a Google Sheet is configured.
var ErrNoSheet = errors.New("no sign-up sheet")

// Setup is a run wired from the settings: what addusers import and the
// reminders daemon's import job both use.
type Setup struct {
	Deps    Deps
	Options Options
	// Outbox delivers the queued mail; nil in a dry run.
	Outbox *mail.Outbox
	// Deliver is false when the outbox was built without a transport.
	Deliver bool
	closers Closers
}

// SetupOptions say what to wire.
type SetupOptions struct {
	// CSVPath reads requests from a CSV file instead of the Google Sheet.
	CSVPath string
	DryRun  bool
	// NoDeliver queues mail without a transport (another process delivers).
	NoDeliver bool
	// Store, when set, is used instead of opening cfg.Store (the caller
	// keeps ownership).
	Store  store.Store
	Logger *slog.Logger
}

// FromConfig connects to everything a run needs. Close the Setup when done.
func FromConfig(ctx context.Context, cfg *config.Config, so SetupOptions) (_ *Setup, err error) {
	logger := so.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	reqOpts, err := request.OptionsFromConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", config.ErrInvalid, err)
	}
	s := &Setup{}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	src, source, err := OpenSheet(ctx, cfg, so.CSVPath)
	if err != nil {
		return nil, err
	}
	clients, err := cloud.Connect(ctx, cfg.OpenStack)
	if err != nil {
		return nil, err
	}
	st, err := s.closers.OpenStore(ctx, cfg, so.Store, logger)
	if err != nil {
		return nil, err
	}
	s.Deps = Deps{Identity: cloud.NewKeystone(clients.Identity), Sheet: src, Store: st, Retries: clients}
	// A plan writes nothing, the store's ID included: it skips the check.
	var storeID string
	if !so.DryRun {
		if storeID, err = st.StoreID(ctx, rand.Text()); err != nil {
			return nil, err
		}
	}
	if !so.DryRun {
		q, err := cloud.NewQuotas(ctx, clients, cfg.Quotas.Services)
		if err != nil {
			return nil, err
		}
		sp, err := NewSetpassClient(cfg, clients.Provider)
		if err != nil {
			return nil, err
		}
		outbox, closer, err := mail.FromConfig(cfg, st, !so.NoDeliver, nil, logger)
		if err != nil {
			return nil, err
		}
		s.closers.Add(closer)
		s.Outbox, s.Deliver = outbox, !so.NoDeliver
		s.Deps.Quotas, s.Deps.Setpass, s.Deps.Mail = q, sp, s.Outbox
	}

	s.Options = Options{
		Request:          reqOpts,
		Presets:          cfg.Quotas.Presets,
		Roles:            cfg.Import.Roles,
		CreateAdditional: cfg.Import.AdditionalUsers == "create",
		ManagerRole:      cfg.DomainManager.Role,
		ManagerForbidden: cfg.DomainManager.ForbiddenRoles,
		Workers:          cfg.Import.Workers,
		Actor:            Actor(cfg),
		Source:           source,
		StoreID:          storeID,
		StoreDesc:        DescribeStore(cfg.Store.URL.Reveal()),
		DryRun:           so.DryRun,
		Columns:          request.Columns(cfg.Sheet.Columns),
		DefaultDomain:    cfg.OpenStack.Domain,
		Helpdesk:         cfg.Mail.Helpdesk,
		Logger:           logger,
	}
	return s, nil
}

// Actor is who the audit log names: import.actor, else the user of the
// OpenStack credentials.
func Actor(cfg *config.Config) string {
	if cfg.Import.Actor != "" {
		return cfg.Import.Actor
	}
	ao, _, _ := cfg.OpenStack.Auth()
	if ao.Username != "" {
		return ao.Username
	}
	return ao.UserID
}

// NewSetpassClient calls setpass's admin API (config.Setpass.APIURL) with the
// admin provider's token.
func NewSetpassClient(cfg *config.Config, provider *gophercloud.ProviderClient) (*setpass.Client, error) {
	sp, err := setpass.NewClient(cfg.Setpass.APIURL(), &http.Client{Timeout: cfg.OpenStack.Timeout.D},
		func(context.Context) (string, error) { return provider.Token(), nil })
	if err != nil {
		return nil, fmt.Errorf("%w: setpass.admin_url (or setpass.url): %w", config.ErrInvalid, err)
	}
	return sp, nil
}

// Close releases the store (unless the caller passed its own) and the
// mail transport.
func (s *Setup) Close() error {
	return s.closers.Close()
}

// OpenSheet returns the request source: a CSV file when path is set, else
// the Google Sheet of the settings. source names it for audit and locking.
func OpenSheet(ctx context.Context, cfg *config.Config, path string) (Sheet, string, error) {
	if path != "" {
		abs, err := filepath.Abs(path)
		if err != nil {
			return nil, "", err
		}
		if _, err := os.Stat(abs); err != nil {
			return nil, "", fmt.Errorf("%w: %w", ErrNoSheet, err)
		}
		return sheet.NewCSV(abs), "csv:" + abs, nil
	}
	s := cfg.Sheet
	if s.SpreadsheetID == "" || s.CredentialsFile == "" {
		return nil, "", fmt.Errorf("%w: %w: set sheet.spreadsheet_id and sheet.credentials_file, or pass --sheet requests.csv", config.ErrInvalid, ErrNoSheet)
	}
	key, err := os.ReadFile(s.CredentialsFile)
	if err != nil {
		return nil, "", fmt.Errorf("%w: sheet.credentials_file: %w", config.ErrInvalid, err)
	}
	g, err := sheet.NewGoogle(ctx, sheet.Options{
		SpreadsheetID: s.SpreadsheetID, Worksheet: s.Worksheet, CredentialsJSON: key, Endpoint: s.Endpoint,
		TimestampColumn: s.Columns.Timestamp, EmailColumn: s.Columns.Email,
		Retry: sheet.RetryPolicy{MaxWait: s.RetryMaxWait.D},
	})
	if err != nil {
		return nil, "", err
	}
	return g, "sheet:" + s.SpreadsheetID + "/" + s.Worksheet, nil
}
