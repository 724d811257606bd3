package cloud

import (
	"context"
	"fmt"
	"slices"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/projects"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/roles"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/users"
)

// ProjectMembers lists the users holding any role on a project, through
// groups and inheritance too, each once, in Keystone's order. One API call:
// GET /role_assignments?scope.project.id=P&effective.
func ProjectMembers(ctx context.Context, c *gophercloud.ServiceClient, projectID string) ([]string, error) {
	as, err := assignments(ctx, c, roles.ListAssignmentsOpts{ScopeProjectID: projectID}, true)
	if err != nil {
		return nil, fmt.Errorf("listing the role assignments of project %s: %w", projectID, err)
	}
	var ids []string
	for _, a := range as {
		if a.User.ID != "" && !slices.Contains(ids, a.User.ID) {
			ids = append(ids, a.User.ID)
		}
	}
	return ids, nil
}

// IsProjectMember reports whether userID holds any role on projectID,
// directly, through a group or inherited. One API call: GET
// /role_assignments?user.id=U&scope.project.id=P&effective.
func IsProjectMember(ctx context.Context, c *gophercloud.ServiceClient, userID, projectID string) (bool, error) {
	as, err := assignments(ctx, c, roles.ListAssignmentsOpts{UserID: userID, ScopeProjectID: projectID}, true)
	if err != nil {
		return false, fmt.Errorf("checking the roles of user %s on project %s: %w", userID, projectID, err)
	}
	for _, a := range as {
		if a.User.ID == userID {
			return true, nil
		}
	}
	return false, nil
}

// DirectProjectRoles returns the role IDs each user holds directly on a
// project (not through groups or inheritance), by user ID. One API call:
// GET /role_assignments?scope.project.id=P.
func DirectProjectRoles(ctx context.Context, c *gophercloud.ServiceClient, projectID string) (map[string][]string, error) {
	as, err := assignments(ctx, c, roles.ListAssignmentsOpts{ScopeProjectID: projectID}, false)
	if err != nil {
		return nil, fmt.Errorf("listing the role assignments of project %s: %w", projectID, err)
	}
	out := map[string][]string{}
	for _, a := range as {
		if a.User.ID != "" && a.Scope.Project.ID == projectID && !slices.Contains(out[a.User.ID], a.Role.ID) {
			out[a.User.ID] = append(out[a.User.ID], a.Role.ID)
		}
	}
	return out, nil
}

func assignments(ctx context.Context, c *gophercloud.ServiceClient, opts roles.ListAssignmentsOpts, effective bool) ([]roles.RoleAssignment, error) {
	if effective {
		opts.Effective = &effective
	}
	pages, err := roles.ListAssignments(c, opts).AllPages(ctx)
	if err != nil {
		return nil, err
	}
	return roles.ExtractRoleAssignments(pages)
}

// GetProject reads a project by ID; ok is false when there is none. One
// API call.
func GetProject(ctx context.Context, c *gophercloud.ServiceClient, id string) (p Project, ok bool, err error) {
	r, err := projects.Get(ctx, c, id).Extract()
	switch {
	case isNotFound(err):
		return Project{}, false, nil
	case err != nil:
		return Project{}, false, fmt.Errorf("reading project %s: %w", id, err)
	}
	return Project{ID: r.ID, Name: r.Name, DomainID: r.DomainID, Tags: r.Tags, Enabled: r.Enabled}, true, nil
}

// GetUser reads a user by ID, or an error wrapping [ErrNoUser]. One API
// call.
func GetUser(ctx context.Context, c *gophercloud.ServiceClient, id string) (User, error) {
	u, err := users.Get(ctx, c, id).Extract()
	switch {
	case isNotFound(err):
		return User{}, fmt.Errorf("user %s: %w", id, ErrNoUser)
	case err != nil:
		return User{}, fmt.Errorf("reading user %s: %w", id, err)
	}
	return userOf(*u), nil
}
