package cloud

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/gophercloud/gophercloud/v2"
)

// SCS Domain Manager (scs-0302): a user holding the manager role on a
// domain administers that domain's users and projects. The functions here
// keep the grant to that role and that domain: the role is checked against
// a forbidden list before anything is assigned, and assignments are made on
// the domain, never on a project or the system.

// AlwaysForbiddenRole is refused as a domain-manager role whatever the
// configured forbidden list says.
const AlwaysForbiddenRole = "admin"

// ErrForbiddenRole: the role is admin, is in the forbidden list, or implies
// one of those (directly or through other implied roles).
var ErrForbiddenRole = errors.New("role must not be granted to a domain manager")

// RoleRef names a role.
type RoleRef struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// EnsureRole is [Ops.EnsureRole] on Keystone c.
func EnsureRole(ctx context.Context, c *gophercloud.ServiceClient, name string) (id string, created bool, err error) {
	return ops(c).EnsureRole(ctx, name)
}

// EnsureRole returns the ID of the global role named name, creating it when
// there is none. A concurrent creator winning the race (409 Conflict) is
// resolved by reading the role again.
//
// API calls: reuse 1 (GET list); create 2 (GET list, POST); lost race 3.
func (o Ops) EnsureRole(ctx context.Context, name string) (id string, created bool, err error) {
	return ensureRole(ctx, o, name)
}

// RoleMaker looks up, creates and follows the implications of global
// roles: what [EnsureManagerRoleOn] needs.
type RoleMaker interface {
	RoleID(ctx context.Context, name string) (string, error)
	CreateRole(ctx context.Context, name, description string) (RoleRef, error)
	RoleImplies(ctx context.Context, roleID string) ([]RoleRef, error)
}

func ensureRole(ctx context.Context, o RoleMaker, name string) (id string, created bool, err error) {
	id, err = o.RoleID(ctx, name)
	if err == nil || !errors.Is(err, ErrNoRole) {
		return id, false, err
	}
	r, err := o.CreateRole(ctx, name, "Created by kaizen")
	if errors.Is(err, ErrConflict) {
		id, err = o.RoleID(ctx, name)
		if err != nil {
			return "", false, fmt.Errorf("creating role %q: Keystone reports a conflict, then: %w", name, err)
		}
		return id, false, nil
	}
	if err != nil {
		return "", false, err
	}
	return r.ID, true, nil
}

// maxImpliedRoles bounds the walk of [ImpliedRoles] (a real chain is a
// handful of roles long).
const maxImpliedRoles = 100

// ImpliedRoles returns every role that role roleID implies, directly or
// through other implied roles, in breadth-first order and without roleID
// itself; cycles are followed once.
//
// API calls: one GET /roles/R/implies per role reached, roleID included
// (a role implying nothing: 1; manager -> member -> reader: 3).
// GET /role_inferences would list every rule in one call, but Keystone
// builds that answer from two separate reads and fails with 500 when a
// role is deleted in between (or, on SQLite, ever after, since the rules of
// a deleted role stay behind), so one unrelated role deletion anywhere
// would stop every assignment.
func ImpliedRoles(ctx context.Context, c *gophercloud.ServiceClient, roleID string) ([]RoleRef, error) {
	return ops(c).ImpliedRoles(ctx, roleID)
}

// ImpliedRoles is [ImpliedRoles] over any Identity.
func (o Ops) ImpliedRoles(ctx context.Context, roleID string) ([]RoleRef, error) {
	return impliedRoles(ctx, o, roleID)
}

func impliedRoles(ctx context.Context, o RoleMaker, roleID string) ([]RoleRef, error) {
	var out []RoleRef
	seen := map[string]bool{roleID: true}
	queue := []string{roleID}
	for len(queue) > 0 {
		next := queue[0]
		queue = queue[1:]
		implies, err := o.RoleImplies(ctx, next)
		if err != nil {
			return nil, err
		}
		for _, r := range implies {
			if seen[r.ID] {
				continue
			}
			if len(seen) > maxImpliedRoles {
				return nil, fmt.Errorf("role %q implies more than %d roles", roleID, maxImpliedRoles)
			}
			seen[r.ID] = true
			out = append(out, r)
			queue = append(queue, r.ID)
		}
	}
	return out, nil
}

// forbiddenName reports whether name is admin or in forbidden, ignoring
// case (Keystone may compare role names without case).
func forbiddenName(name string, forbidden []string) bool {
	name = strings.TrimSpace(name)
	return strings.EqualFold(name, AlwaysForbiddenRole) || slices.ContainsFunc(forbidden, func(f string) bool {
		return strings.EqualFold(strings.TrimSpace(f), name)
	})
}

// CheckManagerRole refuses, with an error wrapping [ErrForbiddenRole], a
// domain-manager role that is admin, is listed in forbidden, or implies
// one of them. id is the role's ID ("" for a role that does not exist yet,
// which implies nothing and is checked by name alone).
//
// API calls: 0 when the name is refused or id is ""; else those of
// [ImpliedRoles].
func CheckManagerRole(ctx context.Context, c *gophercloud.ServiceClient, name, id string, forbidden []string) error {
	return ops(c).CheckManagerRole(ctx, name, id, forbidden)
}

// CheckManagerRole is [CheckManagerRole] over any Identity.
func (o Ops) CheckManagerRole(ctx context.Context, name, id string, forbidden []string) error {
	return CheckManagerRoleOn(ctx, o, name, id, forbidden)
}

// CheckManagerRoleOn is [Ops.CheckManagerRole] on any [RoleMaker].
func CheckManagerRoleOn(ctx context.Context, o RoleMaker, name, id string, forbidden []string) error {
	if forbiddenName(name, forbidden) {
		return fmt.Errorf("role %q: %w (it is admin or in domain_manager.forbidden_roles)", name, ErrForbiddenRole)
	}
	if id == "" {
		return nil
	}
	implied, err := impliedRoles(ctx, o, id)
	if err != nil {
		return fmt.Errorf("checking role %q: %w", name, err)
	}
	for _, r := range implied {
		if forbiddenName(r.Name, forbidden) {
			return fmt.Errorf("role %q implies role %q: %w (it is admin or in domain_manager.forbidden_roles)", name, r.Name, ErrForbiddenRole)
		}
	}
	return nil
}

// EnsureManagerRole returns the ID of the domain-manager role named name,
// creating the global role when it is missing, once [CheckManagerRole]
// accepts it: a refused role is never created or assigned. created
// reports that this call created the role. A role refused for what it
// implies is returned (id, created) with the error.
//
// API calls: refused by name 0; an existing role 1 (GET list) plus those
// of [ImpliedRoles] (1 for a role implying nothing); created 3 (GET list,
// POST, GET implies).
func EnsureManagerRole(ctx context.Context, c *gophercloud.ServiceClient, name string, forbidden []string) (id string, created bool, err error) {
	return ops(c).EnsureManagerRole(ctx, name, forbidden)
}

// EnsureManagerRole is [EnsureManagerRole] over any Identity.
func (o Ops) EnsureManagerRole(ctx context.Context, name string, forbidden []string) (id string, created bool, err error) {
	return EnsureManagerRoleOn(ctx, o, name, forbidden)
}

// EnsureManagerRoleOn is [Ops.EnsureManagerRole] on any [RoleMaker].
func EnsureManagerRoleOn(ctx context.Context, o RoleMaker, name string, forbidden []string) (id string, created bool, err error) {
	if strings.TrimSpace(name) == "" {
		return "", false, errors.New("the domain-manager role name is empty")
	}
	if err := CheckManagerRoleOn(ctx, o, name, "", forbidden); err != nil {
		return "", false, err
	}
	id, created, err = ensureRole(ctx, o, name)
	if err != nil {
		return "", false, err
	}
	// Checked even when just created: a concurrent creator may have made
	// it first and given it implied roles.
	if err := CheckManagerRoleOn(ctx, o, name, id, forbidden); err != nil {
		return id, created, err
	}
	return id, created, nil
}

// HasDomainRole reports whether user userID holds role roleID on domain
// domainID by a direct assignment (not through a group or inheritance).
// One API call: HEAD /domains/D/users/U/roles/R.
func HasDomainRole(ctx context.Context, c *gophercloud.ServiceClient, userID, domainID, roleID string) (bool, error) {
	return NewKeystone(c).HasRole(ctx, Grant{UserID: userID, RoleID: roleID, DomainID: domainID})
}

// EnsureDomainRole assigns role roleID on domain domainID (the domain
// itself, not its projects) to user userID unless the user already holds it
// directly, and reports whether it made the assignment. The PUT is
// idempotent in Keystone, so concurrent callers both succeed.
//
// API calls: already assigned 1 (HEAD); new 2 (HEAD, PUT).
func EnsureDomainRole(ctx context.Context, c *gophercloud.ServiceClient, userID, domainID, roleID string) (assigned bool, err error) {
	return ops(c).EnsureGrant(ctx, Grant{UserID: userID, RoleID: roleID, DomainID: domainID})
}

// RevokeDomainRole removes user userID's direct assignment of role roleID
// on domain domainID and reports whether there was one to remove; revoking
// an assignment that does not exist is not an error. Tokens already issued
// keep their roles until they expire (Keystone revokes them only when
// configured to).
//
// One API call: DELETE /domains/D/users/U/roles/R.
func RevokeDomainRole(ctx context.Context, c *gophercloud.ServiceClient, userID, domainID, roleID string) (revoked bool, err error) {
	return NewKeystone(c).UnassignRole(ctx, Grant{UserID: userID, RoleID: roleID, DomainID: domainID})
}

// DomainRoleAssignment is one direct assignment of a role on a domain, with
// the names Keystone resolved. Exactly one of the user and group is set.
type DomainRoleAssignment struct {
	DomainID    string `json:"domain_id"`
	Domain      string `json:"domain"`
	RoleID      string `json:"role_id"`
	Role        string `json:"role"`
	UserID      string `json:"user_id,omitempty"`
	User        string `json:"user,omitempty"`
	UserDomain  string `json:"user_domain,omitempty"`
	GroupID     string `json:"group_id,omitempty"`
	Group       string `json:"group,omitempty"`
	GroupDomain string `json:"group_domain,omitempty"`
}

// ListDomainRoleAssignments lists the direct assignments of role roleID on
// domains, names resolved, sorted by domain, then user or group name. With
// domainID set, only that domain's. Assignments on projects, on the system
// and those inherited to a domain's projects (which do not make a domain
// manager) are left out.
//
// One API call: GET /role_assignments?role.id=R[&scope.domain.id=D]&include_names=true.
func ListDomainRoleAssignments(ctx context.Context, c *gophercloud.ServiceClient, roleID, domainID string) ([]DomainRoleAssignment, error) {
	return ops(c).ListDomainRoleAssignments(ctx, roleID, domainID)
}

// ListDomainRoleAssignments is [ListDomainRoleAssignments] over any Identity.
func (o Ops) ListDomainRoleAssignments(ctx context.Context, roleID, domainID string) ([]DomainRoleAssignment, error) {
	as, err := o.ListRoleAssignments(ctx, AssignmentFilter{RoleID: roleID, DomainID: domainID, IncludeNames: true})
	if err != nil {
		return nil, fmt.Errorf("listing assignments of role %q: %w", roleID, err)
	}
	out := []DomainRoleAssignment{}
	for _, a := range as {
		if a.DomainID == "" || a.ProjectID != "" || a.Inherited || a.RoleID != roleID {
			continue
		}
		if domainID != "" && a.DomainID != domainID {
			continue
		}
		out = append(out, DomainRoleAssignment{
			DomainID: a.DomainID, Domain: a.DomainName, RoleID: a.RoleID, Role: a.RoleName,
			UserID: a.UserID, User: a.UserName, UserDomain: a.UserDomainName,
			GroupID: a.GroupID, Group: a.GroupName, GroupDomain: a.GroupDomainName,
		})
	}
	slices.SortFunc(out, func(x, y DomainRoleAssignment) int {
		return strings.Compare(x.Domain+"\x00"+x.User+"\x00"+x.Group+"\x00"+x.UserID+x.GroupID,
			y.Domain+"\x00"+y.User+"\x00"+y.Group+"\x00"+y.UserID+y.GroupID)
	})
	return out, nil
}
