// Package quotareq applies quota-change requests from the quota-request
// worksheet (MOC's second sheet): it checks that the requester holds a role
// on the project, approves requests by Adjutant's rules when a person has
// not, sets the quotas through the same quota layer as import, records
// them in the store (so addusers validate knows them), tags a temporary
// quota with its end date, mails every member of the project an old-vs-new
// table and writes each row's outcome back. RevertExpired returns projects
// whose temporary quota has ended to the quotas before it.
//
// A row converges when run again: the store record of the project is
// written, with the row's key and the quotas before, before the quotas
// are set, so a run that died in between finds the change and its old
// values again; quota writes are PUTs and mail has keys the outbox refuses
// to queue twice.
package quotareq

import (
	"context"
	"io"
	"log/slog"
	netmail "net/mail"
	"time"

	"github.com/kaizen-onboard/kaizen/internal/cloud"
	"github.com/kaizen-onboard/kaizen/internal/sheet"
	"github.com/kaizen-onboard/kaizen/internal/store"
)

// Sheet is the quota-request worksheet (sheet.Google or sheet.CSV).
type Sheet interface {
	Read(ctx context.Context) (*sheet.Table, error)
	WriteBatch(ctx context.Context, writes []sheet.Write) ([]sheet.WriteResult, error)
}

// Quotas reads and sets project quotas (cloud.Quotas).
type Quotas interface {
	Get(ctx context.Context, projectID string) (cloud.QuotaSet, error)
	Apply(ctx context.Context, projectID string, want cloud.QuotaSet) ([]string, error)
}

// Mailer queues mail (mail.Outbox).
type Mailer interface {
	Queue(ctx context.Context, key, kind string, to []netmail.Address, data any) (id int64, created bool, err error)
}

// Store is the part of the state store quota requests use.
type Store interface {
	store.QuotaRecords
	store.Audit
	store.Locks
}

// Identity is what a run reads and writes in Keystone: the domains and
// projects the rows name (one listing per domain), the requester's and
// members' accounts, project membership, and the quota end tag.
// cloud.Keystone and cloudtest.Fake implement it.
type Identity interface {
	cloud.DirectorySource
	cloud.AssignmentLister
	cloud.ProjectTagger
	FindDomain(ctx context.Context, name string) (cloud.Domain, error)
	GetProject(ctx context.Context, id string) (cloud.Project, error)
	GetUser(ctx context.Context, id string) (cloud.User, error)
}

// Deps are the services a run talks to. Sheet may be nil for
// RevertExpired; Mail may be nil in a dry run.
type Deps struct {
	Identity Identity
	Quotas   Quotas
	Mail     Mailer
	Sheet    Sheet
	Store    Store
}

// Options shape a run.
type Options struct {
	Parse ParseOptions
	// Rules decide rows nobody approved, when AutoApprove is set.
	Rules       Rules
	AutoApprove bool
	Actor       string // who the audit log names
	// Source names the worksheet in audit records and row keys:
	// "sheet:<id>/<worksheet>" or "csv:<path>".
	Source string
	// DryRun reads the sheet, the cloud and the store and reports what
	// would happen; it changes nothing anywhere.
	DryRun bool
	// Location decides which day it is (end dates are calendar days).
	Location *time.Location
	// DomainID restricts RevertExpired's search for end tags without a
	// record to one domain ("": every domain).
	DomainID  string
	FlushRows int           // write back every this many rows (default 20)
	LockTTL   time.Duration // default 10m
	Now       func() time.Time
	Logger    *slog.Logger
	Random    io.Reader
}

func (o *Options) defaults() {
	if o.Location == nil {
		o.Location = time.UTC
	}
	if o.FlushRows <= 0 {
		o.FlushRows = 20
	}
	if o.LockTTL <= 0 {
		o.LockTTL = 10 * time.Minute
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
	o.Parse = o.Parse.withDefaults()
	o.Parse.AutoApprove = o.AutoApprove
}

// Outcome is what a run did with one row (or, reverting, one project).
type Outcome string

const (
	Applied   Outcome = "applied"   // the quotas changed (in a dry run: would)
	Unchanged Outcome = "unchanged" // the project already had what was asked
	Pending   Outcome = "pending"   // waits for a person's approval
	Refused   Outcome = "refused"   // not the requester's project, no such project
	Failed    Outcome = "failed"    // invalid, or an error part-way (retried)
	Reverted  Outcome = "reverted"  // a temporary quota was returned
	// NotProcessed: the run stopped (its lock lost, or interrupted) before
	// this row or project; nothing of it was done (Summary.Stopped).
	NotProcessed Outcome = "not processed"
)

// Change is one quota's old and new value.
type Change struct {
	Resource string `json:"resource"`
	Old      int64  `json:"old"`
	New      int64  `json:"new"`
}

// RowResult is one row's (or reverted project's) outcome.
type RowResult struct {
	Row       int      `json:"row,omitempty"`
	Email     string   `json:"email,omitempty"`
	Project   string   `json:"project"`
	ProjectID string   `json:"project_id,omitempty"`
	Outcome   Outcome  `json:"outcome"`
	Approval  string   `json:"approval,omitempty"` // "sheet", or the auto-approval reason
	Changes   []Change `json:"changes,omitempty"`
	EndsOn    string   `json:"ends_on,omitempty"` // a temporary quota's last day
	Detail    string   `json:"detail,omitempty"`  // why refused, pending or failed
	Mail      int      `json:"mail_queued,omitempty"`
	WriteBack string   `json:"write_back_error,omitempty"`
}

// Summary is a whole run.
type Summary struct {
	Rows     []RowResult    `json:"rows"`
	Counts   map[string]int `json:"counts"` // by Outcome
	Finished int            `json:"finished_earlier"`
	Waiting  int            `json:"waiting"` // not approved, not auto-approvable
	Mail     int            `json:"mail_queued"`
	DryRun   bool           `json:"dry_run"`
	Started  time.Time      `json:"started"`
	Ended    time.Time      `json:"ended"`
	// Stopped says why the run stopped early (the quotas lock was lost,
	// or it was interrupted); what it did not reach is NotProcessed.
	Stopped string `json:"stopped,omitempty"`
}

func (s *Summary) add(r RowResult) {
	s.Rows = append(s.Rows, r)
	s.Counts[string(r.Outcome)]++
	s.Mail += r.Mail
}
