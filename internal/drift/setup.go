package drift

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/kaizen-onboard/kaizen/internal/cloud"
	"github.com/kaizen-onboard/kaizen/internal/config"
	"github.com/kaizen-onboard/kaizen/internal/onboard"
	"github.com/kaizen-onboard/kaizen/internal/request"
	"github.com/kaizen-onboard/kaizen/internal/store"
)

// Setup is a check wired from the settings.
type Setup struct {
	Deps    Deps
	Options Options
	closers onboard.Closers
}

// SetupOptions say what to wire.
type SetupOptions struct {
	// CSVPath reads the sign-up rows from a CSV file instead of the sheet.
	CSVPath string
	Apply   bool
	// Store, when set, is used instead of opening cfg.Store.
	Store  store.Store
	Logger *slog.Logger
}

// FromConfig connects to the sign-up sheet, the cloud and the store.
// Close the Setup when done.
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
	src, source, err := onboard.OpenSheet(ctx, cfg, so.CSVPath)
	if err != nil {
		return nil, err
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
	s.Options = Options{
		Request: reqOpts, Presets: cfg.Quotas.Presets, Roles: cfg.Import.Roles, Apply: so.Apply,
		Actor: onboard.Actor(cfg), Source: source, Logger: logger,
	}
	return s, nil
}

// Close releases what FromConfig opened.
func (s *Setup) Close() error {
	return s.closers.Close()
}
