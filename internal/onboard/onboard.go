// Package onboard applies approved sign-up requests to the cloud: domain,
// project, user, roles, quotas, a set-password link and mail, one row at a
// time, writing each row's outcome back to the sheet.
//
// Every step is idempotent, so a run that failed or was killed anywhere
// converges when run again and never duplicates anything:
//
//   - projects carry the request's owner tag from the creating POST and are
//     reused only with it; users are matched ignoring case and never get a
//     new password, except an account kaizen created itself whose welcome
//     mail was never queued (nobody can know its password);
//   - role assignments and quota sets are PUTs;
//   - mail is queued under keys (welcome:<user>, new-project:<project>,
//     added:<user>:<project>) the outbox refuses to queue twice.
//
// Each row is planned, then its plan applied: the plan reads what the row
// needs and decides what to create, assign, set, issue and mail ([RowPlan]);
// `addusers plan` stops there ([Plan]), `addusers import` applies it
// ([Apply]). Both take the same path up to applying.
//
// A run reads only what its rows need: in a domain where they name at most
// lookupLimit (25) projects and users, each name is looked up (one small
// read); with more, the domain's projects and users are listed once (two
// reads, paging through the domain). A new row costs its writes and, when
// looked up, two reads. Rows sharing a project or a user run one after
// another in sheet order; independent rows run on a bounded pool.
package onboard

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	netmail "net/mail"
	"time"

	"github.com/kaizen-onboard/kaizen/internal/cloud"
	"github.com/kaizen-onboard/kaizen/internal/setpass/client"
	"github.com/kaizen-onboard/kaizen/internal/sheet"
	"github.com/kaizen-onboard/kaizen/internal/signup"
	"github.com/kaizen-onboard/kaizen/internal/store"
)

// Sheet is where requests come from and outcomes go.
type Sheet interface {
	Read(ctx context.Context) (*sheet.Table, error)
	WriteBatch(ctx context.Context, writes []sheet.Write) ([]sheet.WriteResult, error)
}

// Quotas sets a project's quotas (cloud.Quotas).
type Quotas interface {
	Apply(ctx context.Context, projectID string, want cloud.QuotaSet) ([]string, error)
}

// Registrar issues set-password links (client.Client).
type Registrar interface {
	Issue(ctx context.Context, userID, tempPassword, pin string) (client.Issued, error)
}

// Mailer queues mail (mail.Outbox).
type Mailer interface {
	Queue(ctx context.Context, key, kind string, to []netmail.Address, data any) (id int64, created bool, err error)
}

// Store is the part of the state store a run uses.
type Store interface {
	store.Audit
	store.Locks
	store.Ledger
	store.WriteBacks
	MessageByKey(ctx context.Context, key string) (store.Message, error)
}

// Identity is the part of Keystone a run reads and changes: the rows'
// domains, the import and domain-manager roles, the projects and users the
// rows name (looked up by name, or each domain listed once), the accounts
// it creates, their passwords, and role assignments. cloud.Keystone and
// cloudtest.Fake implement it.
type Identity interface {
	cloud.DomainMaker
	cloud.RoleMaker
	cloud.Granter
	cloud.LookupSource
	CreateProject(ctx context.Context, p cloud.NewProject) (cloud.Project, error)
	CreateUser(ctx context.Context, u cloud.NewUser) (cloud.User, error)
	SetPassword(ctx context.Context, userID, password string) error
}

// Deps are the services a run talks to.
type Deps struct {
	Identity Identity
	Quotas   Quotas
	Setpass  Registrar
	Mail     Mailer
	Sheet    Sheet
	Store    Store
	// Retries, when set, counts the OpenStack requests retried after a
	// transient fault, by service (cloud.Clients); the summary reports
	// those of the run.
	Retries RetryCounter
}

// RetryCounter counts retried requests by service (cloud.Clients).
type RetryCounter interface {
	Retries() map[string]int
}

// Options shape a run. Zero values take the defaults noted.
type Options struct {
	// Request says how rows are read; its Columns also name the columns
	// written back (Status, Processed At, User ID, Project ID, PIN).
	Request signup.Options
	// Presets are the quota presets by name; a row's preset is looked up
	// case-insensitively.
	Presets map[string]map[string]int64
	// Roles are granted on the project to the requester and each
	// additional user (default member).
	Roles []string
	// ManagerRole is granted on the row's domain to a requester whose
	// Domain Manager cell says yes (SCS scs-0302; default "manager");
	// ManagerForbidden are roles it must neither be nor imply.
	ManagerRole      string
	ManagerForbidden []string
	// CreateAdditional creates accounts for Additional Users who have none;
	// otherwise they are reported on the row.
	CreateAdditional bool
	Workers          int    // default 8
	Actor            string // the admin named in the audit log
	// Source names the sheet in audit records and the store lock, e.g.
	// "sheet:<id>/<worksheet>" or "csv:<path>".
	Source string
	// DryRun plans: it reads the sheet and the cloud and reports what would
	// change, changing nothing anywhere (sheet, cloud, store, mail). Run
	// plans each row either way; DryRun only stops it before applying.
	DryRun bool
	// Only, when set, restricts the run to matching requests (helpdesk use).
	OnlyUser    string // requester email, any case
	OnlyProject string // project name, exact
	// Helpdesk is mailed when moved rows lost cells to a write-back
	// (mail.helpdesk); "" mails nobody (the summary and audit still say).
	Helpdesk string
	// DefaultDomain is the domain rows without one use; it is left out of
	// mail when it is the only one the cloud uses.
	DefaultDomain string
	// FlushEvery bounds how long a finished row waits for its write-back
	// (default 500ms); FlushRows flushes earlier once that many are waiting
	// (default 50). Batching spares the Sheets API its per-minute quota.
	FlushEvery time.Duration
	FlushRows  int
	// LockTTL is how long the sheet's lock outlives a run that died without
	// releasing it (default 1m); a live run renews it every LockTTL/3.
	LockTTL time.Duration
	Now     func() time.Time
	Random  io.Reader
	Logger  *slog.Logger
	// StoreID and StoreDesc name the state store (store.Identity,
	// DescribeStore); the run marks the sheet with them and refuses a sheet
	// marked with another store unless TakeOver. Empty StoreID: no check.
	StoreID, StoreDesc string
	TakeOver           bool
	// Strict makes rows still invalid as reported before fail the run too;
	// otherwise only new failures do (cron monitoring stays quiet).
	Strict bool
	// Progress, when set, is called after each row with the number of rows
	// finished and the total.
	Progress func(done, total int)
}

// Sentinel errors of Run.
var (
	// ErrLocked: another addusers run holds the sheet's lock.
	ErrLocked = errors.New("another addusers run is working on this sheet")
	// ErrSomeFailed: the run finished, but some rows failed or were
	// invalid, some outcomes could not be written back, or a row moved
	// during the write-back lost cells (Summary.NotWritten, Overwritten).
	ErrSomeFailed = errors.New("some rows failed")
)

// Outcome is what a run did with one row.
type Outcome string

const (
	Created   Outcome = "created"   // something was created (project or user)
	Updated   Outcome = "updated"   // only existing things changed (roles, quotas, links)
	Unchanged Outcome = "unchanged" // done in an earlier run, or nothing to do
	Failed    Outcome = "failed"    // invalid, or an error part-way (a re-run continues)
	// StillInvalid: invalid exactly as an earlier run reported it (its
	// Status says so already); it fails the run only with Options.Strict.
	StillInvalid Outcome = "still invalid"
	// NotProcessed: the run stopped (its lock lost, or interrupted) before
	// this row started; nothing of it was done (Summary.Stopped).
	NotProcessed Outcome = "not processed"
)

// RowResult is one row's outcome.
type RowResult struct {
	Row       int      `json:"row"`
	Email     string   `json:"email,omitempty"`
	Project   string   `json:"project,omitempty"`
	Domain    string   `json:"domain,omitempty"`
	Outcome   Outcome  `json:"outcome"`
	Changes   []string `json:"changes,omitempty"` // e.g. "created project", "assigned member to a@b"
	UserID    string   `json:"user_id,omitempty"`
	ProjectID string   `json:"project_id,omitempty"`
	Error     string   `json:"error,omitempty"`
	// Plan is what the run found and planned for the row (nil when the row
	// failed before a plan was made, or was not planned).
	Plan *RowPlan `json:"-"`
	// WriteBack is "" when the outcome was written to the sheet (or there
	// was nothing to write), else why it was not.
	WriteBack string `json:"write_back_error,omitempty"`
}

// Unwritten is a row whose outcome is not in the sheet: the next run
// writes it first (the store keeps it), without touching the cloud again.
type Unwritten struct {
	Row    int    `json:"row"`
	Email  string `json:"email"`
	Reason string `json:"reason"`
}

// Overwrite is a row that received another row's outcome because rows
// moved (sorted, inserted, deleted) while outcomes were written back.
type Overwrite struct {
	Row       int      `json:"row"`
	Timestamp string   `json:"timestamp,omitempty"`
	Email     string   `json:"email,omitempty"`
	Columns   []string `json:"columns"`
	// Restored: its cells were put back; otherwise they are lost (the
	// helpdesk was mailed).
	Restored bool   `json:"restored"`
	ByRow    int    `json:"outcome_of_row"`
	ByEmail  string `json:"outcome_of_email,omitempty"`
}

// Summary is a whole run.
type Summary struct {
	Rows    []RowResult    `json:"rows"`
	Counts  map[string]int `json:"counts"` // by Outcome
	Skipped int            `json:"skipped"`
	// Rejected counts rows whose Approved cell says rejected
	// (sheet.rejected_values): never processed nor reported.
	Rejected int `json:"rejected,omitempty"`
	// AddedColumns are the write-back columns this run added to the
	// header row (a Google Form's sheet has none); in a dry run, those it
	// would add.
	AddedColumns []string `json:"added_columns,omitempty"`
	Mail         int      `json:"mail_queued"`
	// Retries are the OpenStack requests this run repeated after a
	// transient fault (a timeout, 429, 5xx), by service.
	Retries  map[string]int `json:"openstack_retries,omitempty"`
	DryRun   bool           `json:"dry_run"`
	Started  time.Time      `json:"started"`
	Finished time.Time      `json:"finished"`
	// NotWritten lists every row whose outcome could not be written back.
	NotWritten []Unwritten `json:"not_written_back,omitempty"`
	// Overwritten lists rows that received another row's outcome.
	Overwritten []Overwrite `json:"overwritten,omitempty"`
	// WrittenBack counts outcomes of earlier runs written at the start.
	WrittenBack int `json:"written_back_from_earlier_runs,omitempty"`
	// Stopped says why the run stopped before every row (the sheet's lock
	// was lost, or it was interrupted); its rows are NotProcessed.
	Stopped string `json:"stopped,omitempty"`
}

func (o *Options) defaults() {
	if len(o.Roles) == 0 {
		o.Roles = []string{"member"}
	}
	if o.ManagerRole == "" {
		o.ManagerRole = "manager"
	}
	if o.Workers <= 0 {
		o.Workers = 8
	}
	if o.FlushEvery <= 0 {
		o.FlushEvery = 500 * time.Millisecond
	}
	if o.FlushRows <= 0 {
		o.FlushRows = 50
	}
	if o.LockTTL <= 0 {
		o.LockTTL = time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Actor == "" {
		o.Actor = "addusers"
	}
	if o.Source == "" {
		o.Source = "sheet"
	}
	// One set of headers, every one named, for reading and writing back.
	o.Request.Columns = o.Request.Columns.Resolved()
	// One default domain, whichever field the caller set.
	switch {
	case o.DefaultDomain == "" && o.Request.DefaultDomain == "":
		o.DefaultDomain, o.Request.DefaultDomain = "Default", "Default"
	case o.DefaultDomain == "":
		o.DefaultDomain = o.Request.DefaultDomain
	case o.Request.DefaultDomain == "":
		o.Request.DefaultDomain = o.DefaultDomain
	}
}

func validateDeps(d Deps, dry bool) error {
	var missing []string
	if d.Identity == nil {
		missing = append(missing, "Identity")
	}
	if d.Sheet == nil {
		missing = append(missing, "Sheet")
	}
	if !dry {
		if d.Quotas == nil {
			missing = append(missing, "Quotas")
		}
		if d.Setpass == nil {
			missing = append(missing, "Setpass")
		}
		if d.Mail == nil {
			missing = append(missing, "Mail")
		}
		if d.Store == nil {
			missing = append(missing, "Store")
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("onboard: missing dependencies: %v", missing)
	}
	return nil
}
