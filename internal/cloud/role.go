package cloud

import (
	"context"
	"fmt"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/roles"
)

// RoleID returns the ID of the global role named name (e.g. "member"), or
// an error wrapping [ErrNoRole]. One API call; callers running a batch
// should look each role up once.
func RoleID(ctx context.Context, c *gophercloud.ServiceClient, name string) (string, error) {
	// Without domain_id Keystone lists global roles only.
	pages, err := roles.List(c, roles.ListOpts{Name: name}).AllPages(ctx)
	if err != nil {
		return "", fmt.Errorf("looking up role %q: %w", name, err)
	}
	all, err := roles.ExtractRoles(pages)
	if err != nil {
		return "", fmt.Errorf("looking up role %q: %w", name, err)
	}
	for _, r := range all {
		if r.Name == name && r.DomainID == "" {
			return r.ID, nil
		}
	}
	return "", fmt.Errorf("role %q: %w", name, ErrNoRole)
}

// HasProjectRole reports whether user userID holds role roleID on project
// projectID by a direct assignment (not through a group or inheritance).
// One API call: HEAD /projects/P/users/U/roles/R.
func HasProjectRole(ctx context.Context, c *gophercloud.ServiceClient, userID, projectID, roleID string) (bool, error) {
	return hasRole(ctx, c, userID, roleID, onProject(projectID))
}

// EnsureProjectRole assigns role roleID on project projectID to user userID
// unless the user already holds it directly, and reports whether it made the
// assignment. The PUT is idempotent in Keystone, so two concurrent callers
// both succeed (and may both report assigned).
//
// API calls: already assigned 1 (HEAD); new 2 (HEAD, PUT).
func EnsureProjectRole(ctx context.Context, c *gophercloud.ServiceClient, userID, projectID, roleID string) (assigned bool, err error) {
	return ensureRole(ctx, c, userID, roleID, onProject(projectID))
}

// roleScope is what a role is held on: a project or a domain (the domain
// itself, not its projects). Exactly one of the IDs is set.
type roleScope struct{ projectID, domainID string }

func onProject(id string) roleScope { return roleScope{projectID: id} }
func onDomain(id string) roleScope  { return roleScope{domainID: id} }

// String is how errors name the scope: project "P" or domain "D".
func (s roleScope) String() string {
	if s.domainID != "" {
		return fmt.Sprintf("domain %q", s.domainID)
	}
	return fmt.Sprintf("project %q", s.projectID)
}

// hasRole is HEAD /<scope>/users/U/roles/R: direct assignments only.
func hasRole(ctx context.Context, c *gophercloud.ServiceClient, userID, roleID string, s roleScope) (bool, error) {
	err := roles.Validate(ctx, c, roleID, roles.ValidateOpts{UserID: userID, ProjectID: s.projectID, DomainID: s.domainID}).ExtractErr()
	switch {
	case err == nil:
		return true, nil
	case isNotFound(err):
		return false, nil
	default:
		return false, fmt.Errorf("checking role %q of user %q on %s: %w", roleID, userID, s, err)
	}
}

// ensureRole assigns the role unless the user holds it directly already.
func ensureRole(ctx context.Context, c *gophercloud.ServiceClient, userID, roleID string, s roleScope) (assigned bool, err error) {
	has, err := hasRole(ctx, c, userID, roleID, s)
	if err != nil || has {
		return false, err
	}
	err = roles.Assign(ctx, c, roleID, roles.AssignOpts{UserID: userID, ProjectID: s.projectID, DomainID: s.domainID}).ExtractErr()
	if err != nil {
		return false, fmt.Errorf("assigning role %q to user %q on %s: %w", roleID, userID, s, err)
	}
	return true, nil
}
