package cloud

import "context"

// The Keystone seam. Identity is every Keystone operation kaizen makes, as
// primitives (one API request each, unless a method says otherwise) on
// kaizen's own types, with errors wrapping [ErrNotFound] and [ErrConflict].
// [Keystone] implements it on gophercloud; cloudtest.Fake in memory, and
// cloudtest.Run is the conformance suite both pass. The logic built on the
// primitives (find-or-create, case-insensitive user lookup, role checks) is
// written once, in [Ops], over any implementation. Consumers declare the
// few methods they call (embedding the interfaces below where natural).

// Domains are Keystone's domains.
type Domains interface {
	// FindDomain returns the domain named exactly name (case-sensitive on
	// Keystone's SQLite and PostgreSQL backends), or an error wrapping
	// [ErrNoDomain] (which is [ErrNotFound]).
	FindDomain(ctx context.Context, name string) (Domain, error)
	// CreateDomain creates an enabled domain; a taken name wraps
	// [ErrConflict].
	CreateDomain(ctx context.Context, name, description string) (Domain, error)
	// DeleteDomain disables and deletes a domain with everything in it
	// (two requests); a missing one wraps [ErrNotFound].
	DeleteDomain(ctx context.Context, id string) error
}

// ProjectFilter selects projects to list. Empty fields do not filter.
type ProjectFilter struct {
	DomainID string
	// Tag keeps the projects carrying exactly this tag (Keystone's
	// ?tags=, matched whole and case-sensitively).
	Tag string
}

// NewProject is a project to create.
type NewProject struct {
	DomainID    string
	Name        string
	Description string
	Tags        []string
}

// Projects are Keystone's projects (never the projects acting as domains).
type Projects interface {
	// GetProject reads a project by ID; a missing one wraps [ErrNotFound].
	GetProject(ctx context.Context, id string) (Project, error)
	// FindProject returns the project of domainID named exactly name, ok
	// false when there is none.
	FindProject(ctx context.Context, domainID, name string) (p Project, ok bool, err error)
	// ListProjects lists the projects f selects, following pages.
	ListProjects(ctx context.Context, f ProjectFilter) ([]Project, error)
	// CreateProject creates an enabled project; a name taken in the domain
	// wraps [ErrConflict]; a missing domain, a tag given twice, an invalid
	// tag or more than 80 tags [ErrInvalid] (Keystone's 400).
	CreateProject(ctx context.Context, p NewProject) (Project, error)
	// AddProjectTag adds one tag, leaving the others. A tag the project
	// has already, an invalid tag or an 81st wraps [ErrInvalid] (Keystone
	// appends, then validates the list); a missing project [ErrNotFound].
	AddProjectTag(ctx context.Context, projectID, tag string) error
	// RemoveProjectTag removes one tag; a tag or project that is not there
	// is no error.
	RemoveProjectTag(ctx context.Context, projectID, tag string) error
	// DeleteProject deletes a project; a missing one wraps [ErrNotFound].
	DeleteProject(ctx context.Context, id string) error
}

// NewUser is a user to create. Name is used as given.
type NewUser struct {
	DomainID         string
	Name             string
	Password         string // "" creates a user without a password
	Email            string // the "email" attribute, unset when ""
	Owner            string // the [OwnerAttr] attribute, unset when ""
	FullName         string // the description
	DefaultProjectID string
}

// Users are Keystone's users.
type Users interface {
	// GetUser reads a user by ID; a missing one wraps [ErrNoUser] (which
	// is [ErrNotFound]).
	GetUser(ctx context.Context, id string) (User, error)
	// UsersNamed returns the users of domainID ("" for every domain) whose
	// name equals name ignoring (ASCII) case, never treating name as a
	// pattern; see the function [UsersNamed] for Keystone's limits.
	UsersNamed(ctx context.Context, domainID, name string) ([]User, error)
	// ListUsers lists every user of domainID.
	ListUsers(ctx context.Context, domainID string) ([]User, error)
	// CreateUser creates an enabled user; a name taken in the domain wraps
	// [ErrConflict] (names differing in case are distinct names on
	// Keystone's SQLite and PostgreSQL backends).
	CreateUser(ctx context.Context, u NewUser) (User, error)
	// SetPassword sets a user's password as the admin; a missing user
	// wraps [ErrNotFound].
	SetPassword(ctx context.Context, userID, password string) error
	// DeleteUser deletes a user; a missing one wraps [ErrNotFound].
	DeleteUser(ctx context.Context, id string) error
	// SetUserEnabled enables or disables a user; a missing one wraps
	// [ErrNotFound].
	SetUserEnabled(ctx context.Context, userID string, enabled bool) error
}

// Group is a Keystone group.
type Group struct {
	ID, Name, DomainID string
}

// Groups are Keystone's groups. Kaizen makes none; they matter because a
// group's roles are its members' in effect.
type Groups interface {
	// CreateGroup creates a group; a name taken in the domain wraps
	// [ErrConflict].
	CreateGroup(ctx context.Context, domainID, name string) (Group, error)
	// AddUserToGroup adds a user to a group (idempotent); a missing user or
	// group wraps [ErrNotFound].
	AddUserToGroup(ctx context.Context, groupID, userID string) error
	// DeleteGroup deletes a group and its assignments; a missing one wraps
	// [ErrNotFound].
	DeleteGroup(ctx context.Context, id string) error
}

// Roles are Keystone's global roles and the rules between them.
type Roles interface {
	// RoleID returns the ID of the global role named exactly name, or an
	// error wrapping [ErrNoRole] (which is [ErrNotFound]).
	RoleID(ctx context.Context, name string) (string, error)
	// CreateRole creates a global role; a taken name wraps [ErrConflict].
	CreateRole(ctx context.Context, name, description string) (RoleRef, error)
	// DeleteRole deletes a role and its assignments; a missing one wraps
	// [ErrNotFound].
	DeleteRole(ctx context.Context, id string) error
	// RoleImplies lists the roles roleID implies directly (GET
	// /roles/R/implies); a missing role wraps [ErrNotFound].
	RoleImplies(ctx context.Context, roleID string) ([]RoleRef, error)
	// CreateImpliedRole makes priorID imply impliedID; an existing rule
	// wraps [ErrConflict], missing roles [ErrNotFound], an implied role
	// Keystone prohibits (admin) [ErrForbidden].
	CreateImpliedRole(ctx context.Context, priorID, impliedID string) error
}

// Grant is one user's or group's role on one project or one domain (the
// domain itself, not its projects): exactly one of UserID and GroupID, and
// one of ProjectID and DomainID, is set.
type Grant struct {
	UserID, RoleID      string
	ProjectID, DomainID string
	GroupID             string
}

// AssignmentFilter selects role assignments. Empty fields do not filter;
// at most one of ProjectID and DomainID is set.
type AssignmentFilter struct {
	UserID, RoleID      string
	ProjectID, DomainID string
	// Effective lists what users hold in effect: a group's assignments
	// listed as each member's (without GroupID), inherited assignments
	// resolved, implied roles added. Without it only the assignments as
	// made are listed, a group's with GroupID; UserID then selects the
	// user's own assignments, not their groups'.
	Effective bool
	// IncludeNames fills the assignments' names.
	IncludeNames bool
}

// RoleAssignment is one role assignment as Keystone lists it. Exactly one
// of UserID and GroupID, and one of ProjectID and DomainID, is set. Names
// are filled only when asked for.
type RoleAssignment struct {
	RoleID, RoleName                    string
	UserID, UserName, UserDomainName    string
	GroupID, GroupName, GroupDomainName string
	ProjectID                           string
	DomainID, DomainName                string
	// Inherited: the assignment is on the domain but for its projects
	// (OS-INHERIT), not on the domain itself.
	Inherited bool
}

// Assignments are Keystone's role assignments.
type Assignments interface {
	// HasRole reports whether g is assigned directly (HEAD
	// /projects/P/users/U/roles/R or its domain or group form): not through
	// a group, inheritance or an implied role.
	HasRole(ctx context.Context, g Grant) (bool, error)
	// AssignRole makes g; assigning what exists is no error (Keystone's
	// PUT is idempotent). A missing user, role or target wraps [ErrNotFound].
	AssignRole(ctx context.Context, g Grant) error
	// UnassignRole removes g and reports whether there was one.
	UnassignRole(ctx context.Context, g Grant) (removed bool, err error)
	// ListRoleAssignments lists the assignments f selects.
	ListRoleAssignments(ctx context.Context, f AssignmentFilter) ([]RoleAssignment, error)
}

// Identity is all of Keystone that kaizen uses.
type Identity interface {
	Domains
	Projects
	Users
	Groups
	Roles
	Assignments
}
