package app

import (
	"context"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/kaizen-onboard/kaizen/internal/cloud"
	"github.com/kaizen-onboard/kaizen/internal/config"
	"github.com/kaizen-onboard/kaizen/internal/drift"
	"github.com/kaizen-onboard/kaizen/internal/onboard"
	"github.com/kaizen-onboard/kaizen/internal/quotareq"
	"github.com/kaizen-onboard/kaizen/internal/reminder"
	"github.com/kaizen-onboard/kaizen/internal/signup"
	"github.com/kaizen-onboard/kaizen/internal/store"
)

// signupInput is what import and validate read: the sign-up sheet read
// as the settings say, and the cloud.
type signupInput struct {
	opts    signup.Options
	sheet   Table
	source  string
	clients *cloud.Clients
}

func (a *App) signup(ctx context.Context, csvPath string) (signupInput, error) {
	var in signupInput
	var err error
	if in.opts, err = signup.OptionsFromConfig(a.Config); err != nil {
		return in, fmt.Errorf("%w: %w", config.ErrInvalid, err)
	}
	if in.sheet, in.source, err = a.SignupSheet(ctx, csvPath); err != nil {
		return in, err
	}
	in.clients, err = a.Cloud(ctx)
	return in, err
}

// ImportOptions say what an import or a plan needs.
type ImportOptions struct {
	// CSVPath reads requests from a CSV file instead of the Google Sheet.
	CSVPath string
	// DryRun is a plan: it changes nothing anywhere, so the store is only
	// read (when there is one) and no setpass client, quotas or outbox
	// are built.
	DryRun bool
	// NoDeliver queues mail without a transport (another process delivers).
	NoDeliver bool
}

// Import wires an import run (or a plan). Close the Setup after the run:
// it closes the mail transport built for it; the store and the cloud
// connection are the App's.
func (a *App) Import(ctx context.Context, o ImportOptions) (_ *onboard.Setup, err error) {
	cfg := a.Config
	in, err := a.signup(ctx, o.CSVPath)
	if err != nil {
		return nil, err
	}
	reqOpts, src, source, clients := in.opts, in.sheet, in.source, in.clients
	s := &onboard.Setup{}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	var st store.Store
	if o.DryRun {
		st, err = a.ReadStore(ctx)
	} else {
		st, err = a.Store(ctx)
	}
	if err != nil {
		return nil, err
	}
	s.Deps = onboard.Deps{Identity: cloud.NewKeystone(clients.Identity), Sheet: src, Store: st, Retries: clients}
	// A plan writes nothing, the store's ID included: it skips the check.
	var storeID string
	if !o.DryRun {
		if storeID, err = st.StoreID(ctx, storeIDCandidate(a)); err != nil {
			return nil, err
		}
		q, err := cloud.NewQuotas(ctx, clients, cfg.Quotas.Services)
		if err != nil {
			return nil, err
		}
		sp, err := a.Setpass()
		if err != nil {
			return nil, err
		}
		outbox, closer, err := a.newOutbox(st, !o.NoDeliver)
		if err != nil {
			return nil, err
		}
		s.Closer = closer
		s.Outbox, s.Deliver = outbox, !o.NoDeliver
		s.Deps.Quotas, s.Deps.Setpass, s.Deps.Mail = q, sp, outbox
	}
	s.Options = onboard.Options{
		Request:          reqOpts,
		Presets:          cfg.Quotas.Presets,
		Roles:            cfg.Import.Roles,
		CreateAdditional: cfg.Import.AdditionalUsers == "create",
		ManagerRole:      cfg.DomainManager.Role,
		ManagerForbidden: cfg.DomainManager.ForbiddenRoles,
		Workers:          cfg.Import.Workers,
		Actor:            a.Actor(),
		Source:           source,
		StoreID:          storeID,
		StoreDesc:        onboard.DescribeStore(cfg.Store.URL.Reveal()),
		DryRun:           o.DryRun,
		DefaultDomain:    cfg.OpenStack.Domain,
		Helpdesk:         cfg.Mail.Helpdesk,
		Now:              a.Now,
		Random:           a.Random,
		Logger:           a.Logger,
	}
	return s, nil
}

// storeIDCandidate is a new store ID candidate drawn from the App's randomness.
func storeIDCandidate(a *App) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	b := make([]byte, 26)
	if _, err := io.ReadFull(a.Random, b); err != nil {
		// A reader that fails leaves the zero bytes: still a valid ID
		// candidate, and the store keeps the first one recorded.
		a.Logger.Warn("reading randomness for the store ID", "err", err)
	}
	for i := range b {
		b[i] = alphabet[b[i]%32]
	}
	return string(b)
}

// ValidateOptions say what a drift check needs.
type ValidateOptions struct {
	// CSVPath reads the sign-up rows from a CSV file instead of the sheet.
	CSVPath string
	Apply   bool
}

// Validate wires a drift check (addusers validate, the validate job).
func (a *App) Validate(ctx context.Context, o ValidateOptions) (*drift.Setup, error) {
	cfg := a.Config
	in, err := a.signup(ctx, o.CSVPath)
	if err != nil {
		return nil, err
	}
	reqOpts, src, source, clients := in.opts, in.sheet, in.source, in.clients
	q, err := cloud.NewQuotas(ctx, clients, cfg.Quotas.Services)
	if err != nil {
		return nil, err
	}
	st, err := a.Store(ctx)
	if err != nil {
		return nil, err
	}
	return &drift.Setup{
		Deps: drift.Deps{Identity: cloud.NewKeystone(clients.Identity), Quotas: q, Sheet: src, Store: st},
		Options: drift.Options{
			Request: reqOpts, Presets: cfg.Quotas.Presets, Roles: cfg.Import.Roles, Apply: o.Apply,
			Actor: a.Actor(), Source: source, Logger: a.Logger, Now: a.Now,
		},
	}, nil
}

// QuotaOptions say what a quota-request run needs.
type QuotaOptions struct {
	// CSVPath reads requests from a CSV file instead of the worksheet.
	CSVPath string
	// NoSheet wires no sheet (for RevertExpired).
	NoSheet bool
	// DryRun changes nothing anywhere: the store is only read (an absent
	// store holds no record) and no outbox is built.
	DryRun    bool
	NoDeliver bool
}

// Quotas wires a quota-request run or a revert of ended quotas. Close the
// Setup after the run (it closes the mail transport built for it).
func (a *App) Quotas(ctx context.Context, o QuotaOptions) (_ *quotareq.Setup, err error) {
	cfg := a.Config
	rules := quotareq.Rules{Presets: cfg.Quotas.Presets, Days: cfg.QuotaRequests.AutoApprove.DaysBetweenAutoapprove,
		Threshold: cfg.QuotaRequests.AutoApprove.SizeDifferenceThreshold}
	if rules.Order, err = quotareq.OrderPresets(cfg.Quotas.Presets, cfg.QuotaRequests.AutoApprove.PresetsAscending); err != nil {
		if cfg.QuotaRequests.AutoApprove.Enabled {
			return nil, fmt.Errorf("%w: quota_requests.auto_approve: %w", config.ErrInvalid, err)
		}
		rules.Order = nil // only auto-approval needs the order
	}
	loc, err := time.LoadLocation(cfg.Reminders.Timezone)
	if err != nil {
		return nil, fmt.Errorf("%w: reminders.timezone: %w", config.ErrInvalid, err)
	}
	var (
		src    quotareq.Sheet
		source = "revert"
	)
	if !o.NoSheet {
		if src, source, err = a.QuotaSheet(ctx, o.CSVPath); err != nil {
			return nil, err
		}
	}
	clients, err := a.Cloud(ctx)
	if err != nil {
		return nil, err
	}
	q, err := cloud.NewQuotas(ctx, clients, cfg.Quotas.Services)
	if err != nil {
		return nil, err
	}
	s := &quotareq.Setup{}
	var st quotareq.Store
	if o.DryRun {
		rs, err := a.ReadStore(ctx)
		if err != nil {
			return nil, err
		}
		st = noStore{}
		if rs != nil {
			st = rs
		}
	} else {
		if st, err = a.Store(ctx); err != nil {
			return nil, err
		}
		outbox, closer, err := a.newOutbox(st.(store.Store), !o.NoDeliver)
		if err != nil {
			return nil, err
		}
		s.Closer = closer
		s.Outbox, s.Deliver, s.Deps.Mail = outbox, !o.NoDeliver, outbox
	}
	s.Deps.Identity, s.Deps.Quotas, s.Deps.Sheet, s.Deps.Store = cloud.NewKeystone(clients.Identity), q, src, st
	qr := cfg.QuotaRequests
	s.Options = quotareq.Options{
		Parse: quotareq.ParseOptions{
			Columns: qr.Columns, QuotaColumns: qr.QuotaColumns, ApprovedValues: cfg.Sheet.ApprovedValues,
			DefaultDomain: cfg.OpenStack.Domain, Presets: cfg.Quotas.Presets, DateOrder: cfg.Sheet.DateOrder,
		},
		Rules: rules, AutoApprove: qr.AutoApprove.Enabled,
		Actor: a.Actor(), Source: source, DryRun: o.DryRun, Location: loc,
		Now: a.Now, Random: a.Random, Logger: a.Logger,
	}
	return s, nil
}

// Reminders wires what the given jobs need: the store and the mail outbox
// always; the sign-up sheet for the sheet jobs; OpenStack (connected at the
// first run that needs it) and the setpass client for the cloud jobs; and
// the import and validate runs, wired afresh at each run on the App's
// store.
func (a *App) Reminders(ctx context.Context, jobs ...config.Job) (reminder.BuildDeps, error) {
	cfg := a.Config
	st, err := a.Store(ctx)
	if err != nil {
		return reminder.BuildDeps{}, err
	}
	outbox, err := a.Outbox(st, true)
	if err != nil {
		return reminder.BuildDeps{}, err
	}
	// Mail of an import job is queued only when an outbox job delivers
	// it; otherwise the import delivers its own, as addusers does.
	noDeliver := slices.ContainsFunc(cfg.Reminders.Jobs, func(j config.Job) bool { return j.Kind == "outbox" && !j.Disabled })
	deps := reminder.BuildDeps{
		Store: st, Outbox: outbox, Logger: a.Logger, Now: a.Now, Random: a.Random,
		ImportOpen: func(ctx context.Context, dryRun bool) (*onboard.Setup, error) {
			return a.Import(ctx, ImportOptions{DryRun: dryRun, NoDeliver: noDeliver})
		},
		ValidateOpen: func(ctx context.Context, apply bool) (*drift.Setup, error) {
			return a.Validate(ctx, ValidateOptions{Apply: apply})
		},
	}
	needSheet := slices.ContainsFunc(jobs, func(j config.Job) bool { return reminder.NeedsSheet(j.Kind) })
	needCloud := slices.ContainsFunc(jobs, func(j config.Job) bool { return reminder.NeedsCloud(j.Kind) })
	// Without a sheet in the settings the sheet jobs fail to build, naming
	// what to set.
	if needSheet && cfg.Sheet.SpreadsheetID != "" {
		sh, _, err := a.SignupSheet(ctx, "")
		if err != nil {
			return reminder.BuildDeps{}, err
		}
		deps.Sheet = sh
	}
	if needCloud {
		lazy := reminder.NewLazyCloud(a.Cloud)
		deps.Users, deps.Passwords, deps.Projects, deps.Members = lazy, lazy, lazy, lazy
		sp, err := a.Setpass()
		if err != nil {
			return reminder.BuildDeps{}, err
		}
		deps.Setpass = sp
	}
	return deps, nil
}
