package quotareq

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/kaizen-onboard/kaizen/internal/cloud"
	"github.com/kaizen-onboard/kaizen/internal/config"
	"github.com/kaizen-onboard/kaizen/internal/mail"
	"github.com/kaizen-onboard/kaizen/internal/onboard"
	"github.com/kaizen-onboard/kaizen/internal/sheet"
	"github.com/kaizen-onboard/kaizen/internal/store"
)

// ErrNoSheet: no quota-request worksheet is configured and no CSV given.
var ErrNoSheet = errors.New("no quota-request sheet")

// Setup is a run wired from the settings.
type Setup struct {
	Deps    Deps
	Options Options
	// Outbox delivers the queued mail; nil in a dry run.
	Outbox  *mail.Outbox
	Deliver bool
	closers onboard.Closers
}

// SetupOptions say what to wire.
type SetupOptions struct {
	// CSVPath reads requests from a CSV file instead of the worksheet.
	CSVPath string
	// NoSheet wires no sheet (for RevertExpired).
	NoSheet   bool
	DryRun    bool
	NoDeliver bool
	// Store, when set, is used instead of opening cfg.Store.
	Store  store.Store
	Logger *slog.Logger
}

// FromConfig connects to everything a run needs. Close the Setup when
// done.
func FromConfig(ctx context.Context, cfg *config.Config, so SetupOptions) (_ *Setup, err error) {
	logger := so.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	rules := Rules{Presets: cfg.Quotas.Presets, Days: cfg.QuotaRequests.AutoApprove.DaysBetweenAutoapprove,
		Threshold: cfg.QuotaRequests.AutoApprove.SizeDifferenceThreshold}
	if rules.Order, err = OrderPresets(cfg.Quotas.Presets, cfg.QuotaRequests.AutoApprove.PresetsAscending); err != nil {
		if cfg.QuotaRequests.AutoApprove.Enabled {
			return nil, fmt.Errorf("%w: quota_requests.auto_approve: %w", config.ErrInvalid, err)
		}
		rules.Order = nil // only auto-approval needs the order
	}
	loc, err := time.LoadLocation(cfg.Reminders.Timezone)
	if err != nil {
		return nil, fmt.Errorf("%w: reminders.timezone: %w", config.ErrInvalid, err)
	}
	s := &Setup{}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	var (
		src    Sheet
		source = "revert"
	)
	if !so.NoSheet {
		if src, source, err = OpenSheet(ctx, cfg, so.CSVPath); err != nil {
			return nil, err
		}
	}
	clients, err := cloud.Connect(ctx, cfg.OpenStack)
	if err != nil {
		return nil, err
	}
	q, err := cloud.NewQuotas(ctx, clients, cfg.Quotas.Services)
	if err != nil {
		return nil, err
	}
	st, err := s.closers.OpenStore(ctx, cfg, so.Store, logger)
	if err != nil {
		return nil, err
	}
	s.Deps = Deps{Identity: cloud.NewKeystone(clients.Identity), Quotas: q, Sheet: src, Store: st}
	if !so.DryRun {
		outbox, closer, err := mail.FromConfig(cfg, st, !so.NoDeliver, nil, logger)
		if err != nil {
			return nil, err
		}
		s.closers.Add(closer)
		s.Outbox, s.Deliver, s.Deps.Mail = outbox, !so.NoDeliver, outbox
	}
	qr := cfg.QuotaRequests
	s.Options = Options{
		Parse: ParseOptions{
			Columns: qr.Columns, QuotaColumns: qr.QuotaColumns, ApprovedValues: cfg.Sheet.ApprovedValues,
			DefaultDomain: cfg.OpenStack.Domain, Presets: cfg.Quotas.Presets, DateOrder: cfg.Sheet.DateOrder,
		},
		Rules: rules, AutoApprove: qr.AutoApprove.Enabled,
		Actor: onboard.Actor(cfg), Source: source, DryRun: so.DryRun, Location: loc, Logger: logger,
	}
	return s, nil
}

// Close releases what FromConfig opened.
func (s *Setup) Close() error {
	return s.closers.Close()
}

// OpenSheet returns the quota-request worksheet: a CSV file when path is
// set, else the worksheet of [quota_requests] in quota_requests.spreadsheet_id
// or the sign-up spreadsheet. source names it for audit records.
func OpenSheet(ctx context.Context, cfg *config.Config, path string) (Sheet, string, error) {
	c := cfg.QuotaRequests.Columns
	if path != "" {
		abs, err := filepath.Abs(path)
		if err != nil {
			return nil, "", err
		}
		if _, err := os.Stat(abs); err != nil {
			return nil, "", fmt.Errorf("%w: %w", ErrNoSheet, err)
		}
		f := sheet.NewCSV(abs)
		f.TimestampColumn, f.EmailColumn = c.Timestamp, c.Email
		return f, "csv:" + abs, nil
	}
	id := cfg.QuotaRequests.SpreadsheetID
	if id == "" {
		id = cfg.Sheet.SpreadsheetID
	}
	if id == "" || cfg.Sheet.CredentialsFile == "" {
		return nil, "", fmt.Errorf("%w: %w: set quota_requests.spreadsheet_id (or sheet.spreadsheet_id) and sheet.credentials_file, or pass --sheet requests.csv",
			config.ErrInvalid, ErrNoSheet)
	}
	key, err := os.ReadFile(cfg.Sheet.CredentialsFile)
	if err != nil {
		return nil, "", fmt.Errorf("%w: sheet.credentials_file: %w", config.ErrInvalid, err)
	}
	ws := cfg.QuotaRequests.Worksheet
	g, err := sheet.NewGoogle(ctx, sheet.Options{
		SpreadsheetID: id, Worksheet: ws, CredentialsJSON: key, Endpoint: cfg.Sheet.Endpoint,
		TimestampColumn: c.Timestamp, EmailColumn: c.Email,
	})
	if err != nil {
		return nil, "", err
	}
	return g, "sheet:" + id + "/" + ws, nil
}
