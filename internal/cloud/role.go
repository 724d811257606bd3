package cloud

import (
	"context"
	"fmt"

	"github.com/gophercloud/gophercloud/v2"
)

// RoleID returns the ID of the global role named name (e.g. "member"), or
// an error wrapping [ErrNoRole]. One API call; callers running a batch
// should look each role up once.
func RoleID(ctx context.Context, c *gophercloud.ServiceClient, name string) (string, error) {
	return NewKeystone(c).RoleID(ctx, name)
}

// HasProjectRole reports whether user userID holds role roleID on project
// projectID by a direct assignment (not through a group or inheritance).
// One API call: HEAD /projects/P/users/U/roles/R.
func HasProjectRole(ctx context.Context, c *gophercloud.ServiceClient, userID, projectID, roleID string) (bool, error) {
	return NewKeystone(c).HasRole(ctx, Grant{UserID: userID, RoleID: roleID, ProjectID: projectID})
}

// EnsureProjectRole assigns role roleID on project projectID to user userID
// unless the user already holds it directly, and reports whether it made the
// assignment ([Ops.EnsureGrant]).
//
// API calls: already assigned 1 (HEAD); new 2 (HEAD, PUT).
func EnsureProjectRole(ctx context.Context, c *gophercloud.ServiceClient, userID, projectID, roleID string) (assigned bool, err error) {
	return ops(c).EnsureGrant(ctx, Grant{UserID: userID, RoleID: roleID, ProjectID: projectID})
}

// roleScope is what a role is held on: a project or a domain (the domain
// itself, not its projects). Exactly one of the IDs is set.
type roleScope struct{ projectID, domainID string }

// String is how errors name the scope: project "P" or domain "D".
func (s roleScope) String() string {
	if s.domainID != "" {
		return fmt.Sprintf("domain %q", s.domainID)
	}
	return fmt.Sprintf("project %q", s.projectID)
}

// EnsureGrant makes g unless the user holds it directly already, and
// reports whether it made it. The PUT is idempotent in Keystone, so two
// concurrent callers both succeed (and may both report assigned).
//
// API calls: already assigned 1 (HEAD); new 2 (HEAD, PUT).
func (o Ops) EnsureGrant(ctx context.Context, g Grant) (assigned bool, err error) {
	return EnsureGrantOn(ctx, o, g)
}

// Granter checks and makes role assignments.
type Granter interface {
	HasRole(ctx context.Context, g Grant) (bool, error)
	AssignRole(ctx context.Context, g Grant) error
}

// EnsureGrantOn is [Ops.EnsureGrant] on any [Granter].
func EnsureGrantOn(ctx context.Context, o Granter, g Grant) (assigned bool, err error) {
	has, err := o.HasRole(ctx, g)
	if err != nil || has {
		return false, err
	}
	if err := o.AssignRole(ctx, g); err != nil {
		return false, err
	}
	return true, nil
}
