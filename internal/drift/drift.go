// Package drift finds where the cloud no longer matches what addusers
// did (ColdFront's validate_allocations): for every processed row of the
// sign-up sheet, the project and its users must exist, the import roles
// must be assigned, and the project's quotas must equal what kaizen set
// (its store record: preset + overrides + approved changes; for a project
// imported before records were kept, the row's preset and overrides).
// With Apply it repairs what can be repaired without guessing: missing
// role assignments are made again and drifted quotas set again, each
// repair audited. A missing domain, project or user is reported, never
// recreated: it may have been deleted on purpose, and recreating it would
// not bring back what it held.
package drift

import (
	"context"
	"log/slog"
	"time"

	"github.com/kaizen-onboard/kaizen/internal/cloud"
	"github.com/kaizen-onboard/kaizen/internal/sheet"
	"github.com/kaizen-onboard/kaizen/internal/signup"
	"github.com/kaizen-onboard/kaizen/internal/store"
)

// Sheet is the sign-up sheet, read only.
type Sheet interface {
	Read(ctx context.Context) (*sheet.Table, error)
}

// Quotas reads and sets project quotas (cloud.Quotas).
type Quotas interface {
	Get(ctx context.Context, projectID string) (cloud.QuotaSet, error)
	Apply(ctx context.Context, projectID string, want cloud.QuotaSet) ([]string, error)
}

// Store is the part of the state store validation uses.
type Store interface {
	store.QuotaRecords
	store.Audit
}

// Identity is what a check reads and repairs in Keystone: the domains the
// rows name, one listing of each domain's projects and users, the import
// roles, each project's direct assignments, and the assignments it makes
// again. cloud.Keystone and cloudtest.Fake implement it.
type Identity interface {
	cloud.DirectorySource
	FindDomain(ctx context.Context, name string) (cloud.Domain, error)
	RoleID(ctx context.Context, name string) (string, error)
	ListRoleAssignments(ctx context.Context, f cloud.AssignmentFilter) ([]cloud.RoleAssignment, error)
	AssignRole(ctx context.Context, g cloud.Grant) error
}

// Deps are the services a check talks to.
type Deps struct {
	Identity Identity
	Quotas   Quotas
	Sheet    Sheet
	Store    Store
}

// Options shape a check.
type Options struct {
	// Request reads the sign-up sheet as import does.
	Request signup.Options
	Presets map[string]map[string]int64
	// Roles each row's users must hold on its project (import.roles).
	Roles []string
	// Apply repairs what can be repaired.
	Apply  bool
	Actor  string // who the audit log names
	Source string // the sheet, for audit records
	Now    func() time.Time
	Logger *slog.Logger
}

// Kinds of drift.
const (
	DomainMissing  = "domain-missing"
	ProjectMissing = "project-missing"
	UserMissing    = "user-missing"
	RoleMissing    = "role-missing"
	QuotaDiffers   = "quota-differs"
)

// Drift is one difference between the cloud and what kaizen did.
type Drift struct {
	Row     int    `json:"row"`
	Project string `json:"project"`
	// ProjectID is the project's, "" when it is missing.
	ProjectID string `json:"project_id,omitempty"`
	User      string `json:"user,omitempty"`
	Kind      string `json:"kind"`
	Detail    string `json:"detail"`
	// Resource, Want and Got describe a quota that differs.
	Resource string `json:"resource,omitempty"`
	Want     *int64 `json:"want,omitempty"`
	Got      *int64 `json:"got,omitempty"`
	// Repairable: Apply would repair it. Repaired: it was.
	Repairable  bool   `json:"repairable"`
	Repaired    bool   `json:"repaired"`
	RepairError string `json:"repair_error,omitempty"`
}

// Report is one check.
type Report struct {
	// Rows is the number of processed rows checked; Projects and Users the
	// distinct ones found.
	Rows     int `json:"rows_checked"`
	Projects int `json:"projects_checked"`
	Users    int `json:"users_checked"`
	// Unreadable counts processed rows that no longer parse (settings
	// changed since); they are not checked.
	Unreadable int       `json:"rows_unreadable"`
	Drift      []Drift   `json:"drift"`
	Apply      bool      `json:"apply"`
	Started    time.Time `json:"started"`
	Ended      time.Time `json:"ended"`
}

// Unrepaired counts the drift left as it was.
func (r Report) Unrepaired() int {
	n := 0
	for _, d := range r.Drift {
		if !d.Repaired {
			n++
		}
	}
	return n
}
