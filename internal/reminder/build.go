package reminder

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/kaizen-onboard/kaizen/internal/cloud"
	"github.com/kaizen-onboard/kaizen/internal/config"
	"github.com/kaizen-onboard/kaizen/internal/drift"
	"github.com/kaizen-onboard/kaizen/internal/mail"
	"github.com/kaizen-onboard/kaizen/internal/onboard"
	"github.com/kaizen-onboard/kaizen/internal/store"
)

// BuildDeps are the real things the jobs share. Fields a configured job
// does not need may be left nil.
type BuildDeps struct {
	// Store holds the tokens (shared with setpass), the ledger, the outbox
	// and the audit trail (shared with addusers) and the jobs' locks.
	Store store.Store
	// Outbox queues mail and delivers it; build it on Now.
	Outbox *mail.Outbox
	// Sheet is the sign-up sheet; nil when none is configured.
	Sheet Sheet
	// Setpass issues set-password links (client.Client).
	Setpass Issuer
	// Keystone lookups and changes (KeystoneUsers, KeystoneProjects, or a
	// LazyCloud for all four).
	Users     UserDirectory
	Passwords PasswordSetter
	Projects  ProjectLister
	Members   MemberLister
	// ImportOpen wires an import run (app.App.Import); the import kind
	// needs it.
	ImportOpen func(ctx context.Context, dryRun bool) (*onboard.Setup, error)
	// ValidateOpen wires a validate check (app.App.Validate); the
	// validate kind needs it.
	ValidateOpen func(ctx context.Context, apply bool) (*drift.Setup, error)
	Logger       *slog.Logger
	Now          func() time.Time // default time.Now
	Random       io.Reader        // default crypto/rand
}

// Build creates every configured, enabled job by kind, by name. A job
// that cannot be built (a missing sheet, a key its kind needs) is a
// configuration error naming it.
func Build(ctx context.Context, cfg *config.Config, deps BuildDeps) (map[string]Job, error) {
	jobs := map[string]Job{}
	var errs []error
	for _, j := range cfg.Reminders.Jobs {
		if j.Disabled {
			continue
		}
		job, err := BuildJob(ctx, cfg, j, deps)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		jobs[j.Name] = job
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return jobs, nil
}

// BuildJob creates one job (disabled or not: `reminders run` may run a
// disabled job by hand).
func BuildJob(ctx context.Context, cfg *config.Config, j config.Job, deps BuildDeps) (Job, error) {
	if deps.Now == nil {
		deps.Now = time.Now
	}
	job, err := buildJob(cfg, j, deps)
	if err != nil {
		return nil, fmt.Errorf("%w: reminders.job %q (%s): %w", config.ErrInvalid, j.Name, j.Kind, err)
	}
	return job, nil
}

func buildJob(cfg *config.Config, j config.Job, d BuildDeps) (Job, error) {
	var mailer Mailer
	if d.Outbox != nil {
		mailer = d.Outbox
	}
	var (
		ledger Ledger
		tokens TokenLister
		audit  AuditLog
	)
	if d.Store != nil {
		ledger, tokens, audit = d.Store, d.Store, d.Store
	}
	loc, err := Location(cfg.Reminders)
	if err != nil {
		return nil, err
	}
	switch j.Kind {
	case "approver-digest", "helpdesk-notify":
		if d.Sheet == nil {
			return nil, errors.New("needs the sign-up sheet: set sheet.spreadsheet_id and sheet.credentials_file")
		}
		sd, err := SheetJobDepsFromConfig(cfg, d.Sheet, ledger, mailer)
		if err != nil {
			return nil, err
		}
		if j.Kind == "approver-digest" {
			return NewApproverDigest(j, sd)
		}
		return NewHelpdeskNotify(j, sd)

	case "link-reminder":
		return NewLinkReminder(j, LinkReminderDeps{
			Tokens: tokens, Ledger: ledger, Mail: mailer, Audit: audit,
			Users: d.Users, Passwords: d.Passwords, Setpass: d.Setpass,
			Random: d.Random, Helpdesk: cfg.Mail.Helpdesk,
		})

	case "quota-expiry":
		return NewQuotaExpiry(j, QuotaExpiryDeps{
			Projects: d.Projects, Members: d.Members, Users: d.Users,
			Ledger: ledger, Mail: mailer, Helpdesk: cfg.Mail.Helpdesk, Location: loc,
		})

	case "import":
		if d.ImportOpen == nil {
			return nil, errors.New("needs the import wiring (BuildDeps.ImportOpen)")
		}
		return NewImport(j, ImportDeps{Open: d.ImportOpen, Now: d.Now})

	case "validate":
		if d.ValidateOpen == nil {
			return nil, errors.New("needs the validate wiring (BuildDeps.ValidateOpen)")
		}
		return NewValidate(j, ValidateDeps{Open: d.ValidateOpen, Ledger: ledger, Mail: mailer, Helpdesk: cfg.Mail.Helpdesk, Location: loc})

	case "outbox":
		od := OutboxDeps{}
		if d.Outbox != nil {
			od.Outbox = d.Outbox
		}
		if d.Store != nil {
			od.Queue, od.Purge, od.Retention = d.Store, d.Store, cfg.Mail.Retention.D
		}
		return NewOutboxJob(j, od)
	}
	return nil, fmt.Errorf("unknown kind %q (known: %v)", j.Kind, config.JobKinds)
}

// NeedsCloud reports whether a job of this kind talks to OpenStack.
func NeedsCloud(kind string) bool {
	return kind == "link-reminder" || kind == "quota-expiry"
}

// NeedsSheet reports whether a job of this kind reads the sign-up sheet
// through BuildDeps.Sheet.
func NeedsSheet(kind string) bool {
	return kind == "approver-digest" || kind == "helpdesk-notify"
}

// LazyCloud connects to OpenStack on first use and then reuses the
// connection (the provider re-authenticates by itself); a failed connection
// is tried again at the next use. So Keystone being down at start-up fails
// the runs that need it, not the daemon or its other jobs. It is the
// UserDirectory, PasswordSetter, ProjectLister and MemberLister of
// BuildDeps.
type LazyCloud struct {
	connect func(ctx context.Context) (*cloud.Clients, error)

	mu      sync.Mutex
	clients *cloud.Clients
}

// NewLazyCloud wraps connect (e.g. cloud.Connect with the settings).
func NewLazyCloud(connect func(ctx context.Context) (*cloud.Clients, error)) *LazyCloud {
	return &LazyCloud{connect: connect}
}

// Clients connects if needed and returns the clients.
func (l *LazyCloud) Clients(ctx context.Context) (*cloud.Clients, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.clients != nil {
		return l.clients, nil
	}
	c, err := l.connect(ctx)
	if err != nil {
		return nil, err
	}
	l.clients = c
	return c, nil
}

// Token is the admin connection's current Keystone token (for the
// setpass client).
func (l *LazyCloud) Token(ctx context.Context) (string, error) {
	c, err := l.Clients(ctx)
	if err != nil {
		return "", err
	}
	return c.Provider.Token(), nil
}

func (l *LazyCloud) User(ctx context.Context, id string) (UserInfo, error) {
	c, err := l.Clients(ctx)
	if err != nil {
		return UserInfo{}, err
	}
	return KeystoneUsers{Identity: cloud.NewKeystone(c.Identity)}.User(ctx, id)
}

func (l *LazyCloud) SetPassword(ctx context.Context, userID, password string) error {
	c, err := l.Clients(ctx)
	if err != nil {
		return err
	}
	return KeystoneUsers{Identity: cloud.NewKeystone(c.Identity)}.SetPassword(ctx, userID, password)
}

func (l *LazyCloud) TaggedProjects(ctx context.Context, tag string) ([]cloud.Project, error) {
	c, err := l.Clients(ctx)
	if err != nil {
		return nil, err
	}
	return KeystoneProjects{Identity: cloud.NewKeystone(c.Identity)}.TaggedProjects(ctx, tag)
}

func (l *LazyCloud) ProjectMembers(ctx context.Context, projectID string) ([]string, error) {
	c, err := l.Clients(ctx)
	if err != nil {
		return nil, err
	}
	return KeystoneProjects{Identity: cloud.NewKeystone(c.Identity)}.ProjectMembers(ctx, projectID)
}

var (
	_ UserDirectory  = (*LazyCloud)(nil)
	_ PasswordSetter = (*LazyCloud)(nil)
	_ ProjectLister  = (*LazyCloud)(nil)
	_ MemberLister   = (*LazyCloud)(nil)
)
