package cloud

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/gophercloud/gophercloud/v2"
)

// ProjectMembers is [Ops.ProjectMembers] on Keystone c.
func ProjectMembers(ctx context.Context, c *gophercloud.ServiceClient, projectID string) ([]string, error) {
	return ops(c).ProjectMembers(ctx, projectID)
}

// ProjectMembers lists the users holding any role on a project, through
// groups and inheritance too, each once, in Keystone's order. One API call:
// GET /role_assignments?scope.project.id=P&effective.
func (o Ops) ProjectMembers(ctx context.Context, projectID string) ([]string, error) {
	return ProjectMembersOn(ctx, o, projectID)
}

// ProjectMembersOn is [Ops.ProjectMembers] for a consumer holding only the
// assignment listing.
func ProjectMembersOn(ctx context.Context, ks AssignmentLister, projectID string) ([]string, error) {
	as, err := ks.ListRoleAssignments(ctx, AssignmentFilter{ProjectID: projectID, Effective: true})
	if err != nil {
		return nil, fmt.Errorf("listing the role assignments of project %s: %w", projectID, err)
	}
	var ids []string
	for _, a := range as {
		if a.UserID != "" && !slices.Contains(ids, a.UserID) {
			ids = append(ids, a.UserID)
		}
	}
	return ids, nil
}

// IsProjectMember is [Ops.IsProjectMember] on Keystone c.
func IsProjectMember(ctx context.Context, c *gophercloud.ServiceClient, userID, projectID string) (bool, error) {
	return ops(c).IsProjectMember(ctx, userID, projectID)
}

// IsProjectMember reports whether userID holds any role on projectID,
// directly, through a group or inherited. One API call: GET
// /role_assignments?user.id=U&scope.project.id=P&effective.
func (o Ops) IsProjectMember(ctx context.Context, userID, projectID string) (bool, error) {
	return IsProjectMemberOn(ctx, o, userID, projectID)
}

// IsProjectMemberOn is [Ops.IsProjectMember] for a consumer holding only
// the assignment listing.
func IsProjectMemberOn(ctx context.Context, ks AssignmentLister, userID, projectID string) (bool, error) {
	as, err := ks.ListRoleAssignments(ctx, AssignmentFilter{UserID: userID, ProjectID: projectID, Effective: true})
	if err != nil {
		return false, fmt.Errorf("checking the roles of user %s on project %s: %w", userID, projectID, err)
	}
	for _, a := range as {
		if a.UserID == userID {
			return true, nil
		}
	}
	return false, nil
}

// DirectProjectRoles is [Ops.DirectProjectRoles] on Keystone c.
func DirectProjectRoles(ctx context.Context, c *gophercloud.ServiceClient, projectID string) (map[string][]string, error) {
	return ops(c).DirectProjectRoles(ctx, projectID)
}

// DirectProjectRoles returns the role IDs each user holds directly on a
// project (not through groups or inheritance), by user ID. One API call:
// GET /role_assignments?scope.project.id=P.
func (o Ops) DirectProjectRoles(ctx context.Context, projectID string) (map[string][]string, error) {
	return DirectRolesOn(ctx, o, projectID)
}

// AssignmentLister lists role assignments ([Assignments]).
type AssignmentLister interface {
	ListRoleAssignments(ctx context.Context, f AssignmentFilter) ([]RoleAssignment, error)
}

// DirectRolesOn is [Ops.DirectProjectRoles] for a consumer holding only
// the assignment listing.
func DirectRolesOn(ctx context.Context, ks AssignmentLister, projectID string) (map[string][]string, error) {
	as, err := ks.ListRoleAssignments(ctx, AssignmentFilter{ProjectID: projectID})
	if err != nil {
		return nil, fmt.Errorf("listing the role assignments of project %s: %w", projectID, err)
	}
	out := map[string][]string{}
	for _, a := range as {
		if a.UserID != "" && a.ProjectID == projectID && !slices.Contains(out[a.UserID], a.RoleID) {
			out[a.UserID] = append(out[a.UserID], a.RoleID)
		}
	}
	return out, nil
}

// GetProject reads a project by ID; ok is false when there is none. One
// API call.
func GetProject(ctx context.Context, c *gophercloud.ServiceClient, id string) (p Project, ok bool, err error) {
	p, err = NewKeystone(c).GetProject(ctx, id)
	switch {
	case errors.Is(err, ErrNotFound):
		return Project{}, false, nil
	case err != nil:
		return Project{}, false, err
	}
	return p, true, nil
}

// GetUser reads a user by ID, or an error wrapping [ErrNoUser]. One API
// call.
func GetUser(ctx context.Context, c *gophercloud.ServiceClient, id string) (User, error) {
	return NewKeystone(c).GetUser(ctx, id)
}
