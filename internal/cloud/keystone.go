package cloud

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/domains"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/groups"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/projects"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/roles"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/users"
)

// Keystone is [Identity] on a gophercloud identity v3 client.
type Keystone struct {
	c *gophercloud.ServiceClient
}

var _ Identity = (*Keystone)(nil)

// NewKeystone returns the Identity of identity v3 client c (an admin).
func NewKeystone(c *gophercloud.ServiceClient) *Keystone { return &Keystone{c: c} }

// Client is the gophercloud client underneath.
func (k *Keystone) Client() *gophercloud.ServiceClient { return k.c }

// ops is the logic of the package-level functions over Keystone c.
func ops(c *gophercloud.ServiceClient) Ops { return Ops{NewKeystone(c)} }

func domainOf(d domains.Domain) Domain { return Domain{ID: d.ID, Name: d.Name, Enabled: d.Enabled} }

func projectOf(p projects.Project) Project {
	return Project{ID: p.ID, Name: p.Name, DomainID: p.DomainID, Tags: p.Tags, Enabled: p.Enabled}
}

// FindDomain is one GET /domains?name=.
func (k *Keystone) FindDomain(ctx context.Context, name string) (Domain, error) {
	pages, err := domains.List(k.c, domains.ListOpts{Name: name}).AllPages(ctx)
	if err != nil {
		return Domain{}, mapErr(fmt.Sprintf("looking up domain %q", name), err)
	}
	all, err := domains.ExtractDomains(pages)
	if err != nil {
		return Domain{}, fmt.Errorf("looking up domain %q: %w", name, err)
	}
	for _, d := range all {
		if d.Name == name { // the filter is exact already; be sure anyway
			return domainOf(d), nil
		}
	}
	return Domain{}, fmt.Errorf("domain %q: %w", name, ErrNoDomain)
}

// CreateDomain is one POST /domains.
func (k *Keystone) CreateDomain(ctx context.Context, name, description string) (Domain, error) {
	d, err := domains.Create(ctx, k.c, domains.CreateOpts{Name: name, Description: description}).Extract()
	if err != nil {
		return Domain{}, mapErr(fmt.Sprintf("creating domain %q", name), err)
	}
	return domainOf(*d), nil
}

// DeleteDomain is PATCH (disable, which Keystone requires first) and DELETE.
func (k *Keystone) DeleteDomain(ctx context.Context, id string) error {
	off := false
	if _, err := domains.Update(ctx, k.c, id, domains.UpdateOpts{Enabled: &off}).Extract(); err != nil {
		return mapErr(fmt.Sprintf("disabling domain %s", id), err)
	}
	return mapErr(fmt.Sprintf("deleting domain %s", id), domains.Delete(ctx, k.c, id).ExtractErr())
}

// GetProject is one GET /projects/P.
func (k *Keystone) GetProject(ctx context.Context, id string) (Project, error) {
	p, err := projects.Get(ctx, k.c, id).Extract()
	if err != nil {
		return Project{}, mapErr(fmt.Sprintf("reading project %s", id), err)
	}
	return projectOf(*p), nil
}

// FindProject is one GET /projects?domain_id=&name=.
func (k *Keystone) FindProject(ctx context.Context, domainID, name string) (Project, bool, error) {
	pages, err := projects.List(k.c, projects.ListOpts{DomainID: domainID, Name: name}).AllPages(ctx)
	if err != nil {
		return Project{}, false, mapErr(fmt.Sprintf("looking up project %q in domain %q", name, domainID), err)
	}
	all, err := projects.ExtractProjects(pages)
	if err != nil {
		return Project{}, false, fmt.Errorf("looking up project %q in domain %q: %w", name, domainID, err)
	}
	for _, p := range all {
		if p.Name == name && p.DomainID == domainID && !p.IsDomain {
			return projectOf(p), true, nil
		}
	}
	return Project{}, false, nil
}

// ListProjects is one GET /projects (gophercloud follows pages).
func (k *Keystone) ListProjects(ctx context.Context, f ProjectFilter) ([]Project, error) {
	what := fmt.Sprintf("listing the projects of domain %q", f.DomainID)
	if f.Tag != "" {
		what += fmt.Sprintf(" tagged %q", f.Tag)
	}
	pages, err := projects.List(k.c, projects.ListOpts{DomainID: f.DomainID, Tags: f.Tag}).AllPages(ctx)
	if err != nil {
		return nil, mapErr(what, err)
	}
	all, err := projects.ExtractProjects(pages)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	out := make([]Project, 0, len(all))
	for _, p := range all {
		if p.IsDomain || f.DomainID != "" && p.DomainID != f.DomainID {
			continue
		}
		out = append(out, projectOf(p))
	}
	return out, nil
}

// CreateProject is one POST /projects.
func (k *Keystone) CreateProject(ctx context.Context, np NewProject) (Project, error) {
	p, err := projects.Create(ctx, k.c, projects.CreateOpts{
		DomainID: np.DomainID, Name: np.Name, Description: np.Description, Tags: np.Tags,
	}).Extract()
	if err != nil {
		return Project{}, mapErr(fmt.Sprintf("creating project %q in domain %q", np.Name, np.DomainID), err)
	}
	return projectOf(*p), nil
}

// AddProjectTag is one PUT /projects/P/tags/T.
func (k *Keystone) AddProjectTag(ctx context.Context, projectID, tag string) error {
	_, err := k.c.Put(ctx, k.c.ServiceURL("projects", projectID, "tags", tag), nil, nil,
		&gophercloud.RequestOpts{OkCodes: []int{http.StatusCreated, http.StatusOK, http.StatusNoContent}})
	return mapErr(fmt.Sprintf("tagging project %s with %q", projectID, tag), err)
}

// RemoveProjectTag is one DELETE /projects/P/tags/T.
func (k *Keystone) RemoveProjectTag(ctx context.Context, projectID, tag string) error {
	_, err := k.c.Delete(ctx, k.c.ServiceURL("projects", projectID, "tags", tag), nil)
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("removing tag %q from project %s: %w", tag, projectID, err)
	}
	return nil
}

// DeleteProject is one DELETE /projects/P.
func (k *Keystone) DeleteProject(ctx context.Context, id string) error {
	return mapErr(fmt.Sprintf("deleting project %s", id), projects.Delete(ctx, k.c, id).ExtractErr())
}

// GetUser is one GET /users/U.
func (k *Keystone) GetUser(ctx context.Context, id string) (User, error) {
	u, err := users.Get(ctx, k.c, id).Extract()
	switch {
	case isNotFound(err):
		return User{}, fmt.Errorf("user %s: %w", id, ErrNoUser)
	case err != nil:
		return User{}, fmt.Errorf("reading user %s: %w", id, err)
	}
	return userOf(*u), nil
}

// UsersNamed is [UsersNamed]: one GET /users.
func (k *Keystone) UsersNamed(ctx context.Context, domainID, name string) ([]User, error) {
	lower := strings.ToLower(name)
	opts := users.ListOpts{DomainID: domainID}
	if strings.ContainsAny(lower, likeWildcards) {
		opts.Name = lower
	} else {
		opts.Filters = map[string]string{"name__istartswith": lower, "name__iendswith": lower}
	}
	pages, err := users.List(k.c, opts).AllPages(ctx)
	if err != nil {
		return nil, mapErr(fmt.Sprintf("looking up users named %q", name), err)
	}
	all, err := users.ExtractUsers(pages)
	if err != nil {
		return nil, fmt.Errorf("reading users: %w", err)
	}
	var out []User
	for _, u := range all {
		// A Keystone that ignored a filter would answer with more; the
		// comparison keeps only the name.
		if strings.EqualFold(u.Name, name) && (domainID == "" || u.DomainID == domainID) {
			out = append(out, userOf(u))
		}
	}
	return out, nil
}

// ListUsers is one GET /users?domain_id= (gophercloud follows pages).
func (k *Keystone) ListUsers(ctx context.Context, domainID string) ([]User, error) {
	pages, err := users.List(k.c, users.ListOpts{DomainID: domainID}).AllPages(ctx)
	if err != nil {
		return nil, mapErr(fmt.Sprintf("listing the users of domain %q", domainID), err)
	}
	us, err := users.ExtractUsers(pages)
	if err != nil {
		return nil, fmt.Errorf("listing the users of domain %q: %w", domainID, err)
	}
	out := make([]User, 0, len(us))
	for _, u := range us {
		if u.DomainID == domainID {
			out = append(out, userOf(u))
		}
	}
	return out, nil
}

// CreateUser is one POST /users.
func (k *Keystone) CreateUser(ctx context.Context, nu NewUser) (User, error) {
	opts := users.CreateOpts{
		Name: nu.Name, DomainID: nu.DomainID, Description: nu.FullName,
		Password: nu.Password, DefaultProjectID: nu.DefaultProjectID,
		Extra: map[string]any{},
	}
	if nu.Email != "" {
		opts.Extra["email"] = nu.Email
	}
	if nu.Owner != "" {
		opts.Extra[OwnerAttr] = nu.Owner
	}
	u, err := users.Create(ctx, k.c, opts).Extract()
	if err != nil {
		return User{}, mapErr(fmt.Sprintf("creating user %q in domain %q", nu.Name, nu.DomainID), err)
	}
	return userOf(*u), nil
}

// SetPassword is one PATCH /users/U.
func (k *Keystone) SetPassword(ctx context.Context, userID, password string) error {
	_, err := users.Update(ctx, k.c, userID, users.UpdateOpts{Password: password}).Extract()
	return mapErr(fmt.Sprintf("setting a new temporary password for user %q", userID), err)
}

// DeleteUser is one DELETE /users/U.
func (k *Keystone) DeleteUser(ctx context.Context, id string) error {
	return mapErr(fmt.Sprintf("deleting user %s", id), users.Delete(ctx, k.c, id).ExtractErr())
}

// SetUserEnabled is one PATCH /users/U.
func (k *Keystone) SetUserEnabled(ctx context.Context, userID string, enabled bool) error {
	_, err := users.Update(ctx, k.c, userID, users.UpdateOpts{Enabled: &enabled}).Extract()
	return mapErr(fmt.Sprintf("setting user %s enabled=%v", userID, enabled), err)
}

// CreateGroup is one POST /groups.
func (k *Keystone) CreateGroup(ctx context.Context, domainID, name string) (Group, error) {
	g, err := groups.Create(ctx, k.c, groups.CreateOpts{DomainID: domainID, Name: name}).Extract()
	if err != nil {
		return Group{}, mapErr(fmt.Sprintf("creating group %q in domain %q", name, domainID), err)
	}
	return Group{ID: g.ID, Name: g.Name, DomainID: g.DomainID}, nil
}

// AddUserToGroup is one PUT /groups/G/users/U.
func (k *Keystone) AddUserToGroup(ctx context.Context, groupID, userID string) error {
	return mapErr(fmt.Sprintf("adding user %s to group %s", userID, groupID), users.AddToGroup(ctx, k.c, groupID, userID).ExtractErr())
}

// DeleteGroup is one DELETE /groups/G.
func (k *Keystone) DeleteGroup(ctx context.Context, id string) error {
	return mapErr(fmt.Sprintf("deleting group %s", id), groups.Delete(ctx, k.c, id).ExtractErr())
}

// RoleID is one GET /roles?name=.
func (k *Keystone) RoleID(ctx context.Context, name string) (string, error) {
	// Without domain_id Keystone lists global roles only.
	pages, err := roles.List(k.c, roles.ListOpts{Name: name}).AllPages(ctx)
	if err != nil {
		return "", mapErr(fmt.Sprintf("looking up role %q", name), err)
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

// CreateRole is one POST /roles.
func (k *Keystone) CreateRole(ctx context.Context, name, description string) (RoleRef, error) {
	r, err := roles.Create(ctx, k.c, roles.CreateOpts{Name: name, Description: description}).Extract()
	if err != nil {
		return RoleRef{}, mapErr(fmt.Sprintf("creating role %q", name), err)
	}
	return RoleRef{ID: r.ID, Name: r.Name}, nil
}

// DeleteRole is one DELETE /roles/R.
func (k *Keystone) DeleteRole(ctx context.Context, id string) error {
	return mapErr(fmt.Sprintf("deleting role %s", id), roles.Delete(ctx, k.c, id).ExtractErr())
}

// RoleImplies is one GET /roles/R/implies.
func (k *Keystone) RoleImplies(ctx context.Context, roleID string) ([]RoleRef, error) {
	var body struct {
		RoleInference struct {
			Implies []RoleRef `json:"implies"`
		} `json:"role_inference"`
	}
	if _, err := k.c.Get(ctx, k.c.ServiceURL("roles", roleID, "implies"), &body, nil); err != nil {
		return nil, mapErr(fmt.Sprintf("listing the roles role %q implies", roleID), err)
	}
	return body.RoleInference.Implies, nil
}

// CreateImpliedRole is one PUT /roles/P/implies/I.
func (k *Keystone) CreateImpliedRole(ctx context.Context, priorID, impliedID string) error {
	_, err := k.c.Put(ctx, k.c.ServiceURL("roles", priorID, "implies", impliedID), nil, nil,
		&gophercloud.RequestOpts{OkCodes: []int{http.StatusCreated, http.StatusOK, http.StatusNoContent}})
	return mapErr(fmt.Sprintf("making role %s imply role %s", priorID, impliedID), err)
}

func (g Grant) String() string {
	who := fmt.Sprintf("user %q", g.UserID)
	if g.GroupID != "" {
		who = fmt.Sprintf("group %q", g.GroupID)
	}
	return fmt.Sprintf("role %q of %s on %s", g.RoleID, who, roleScope{projectID: g.ProjectID, domainID: g.DomainID})
}

// HasRole is one HEAD /projects/P/users/U/roles/R (or /domains/D/...).
func (k *Keystone) HasRole(ctx context.Context, g Grant) (bool, error) {
	err := roles.Validate(ctx, k.c, g.RoleID, roles.ValidateOpts{UserID: g.UserID, GroupID: g.GroupID, ProjectID: g.ProjectID, DomainID: g.DomainID}).ExtractErr()
	switch {
	case err == nil:
		return true, nil
	case isNotFound(err):
		return false, nil
	default:
		return false, fmt.Errorf("checking %s: %w", g, err)
	}
}

// AssignRole is one PUT /projects/P/users/U/roles/R (or /domains/D/...).
func (k *Keystone) AssignRole(ctx context.Context, g Grant) error {
	err := roles.Assign(ctx, k.c, g.RoleID, roles.AssignOpts{UserID: g.UserID, GroupID: g.GroupID, ProjectID: g.ProjectID, DomainID: g.DomainID}).ExtractErr()
	return mapErr("assigning "+g.String(), err)
}

// UnassignRole is one DELETE /projects/P/users/U/roles/R (or /domains/D/...).
func (k *Keystone) UnassignRole(ctx context.Context, g Grant) (bool, error) {
	err := roles.Unassign(ctx, k.c, g.RoleID, roles.UnassignOpts{UserID: g.UserID, GroupID: g.GroupID, ProjectID: g.ProjectID, DomainID: g.DomainID}).ExtractErr()
	switch {
	case err == nil:
		return true, nil
	case isNotFound(err):
		return false, nil
	default:
		return false, fmt.Errorf("revoking %s: %w", g, err)
	}
}

// assignmentJSON is roles.RoleAssignment plus the inheritance marker
// gophercloud does not decode.
type assignmentJSON struct {
	Role  roles.AssignedRole `json:"role"`
	User  roles.User         `json:"user"`
	Group roles.Group        `json:"group"`
	Scope struct {
		Domain    roles.Domain  `json:"domain"`
		Project   roles.Project `json:"project"`
		Inherited string        `json:"OS-INHERIT:inherited_to"`
	} `json:"scope"`
}

// ListRoleAssignments is one GET /role_assignments (gophercloud follows
// pages).
func (k *Keystone) ListRoleAssignments(ctx context.Context, f AssignmentFilter) ([]RoleAssignment, error) {
	opts := roles.ListAssignmentsOpts{UserID: f.UserID, RoleID: f.RoleID, ScopeProjectID: f.ProjectID, ScopeDomainID: f.DomainID}
	if f.Effective {
		opts.Effective = &f.Effective
	}
	if f.IncludeNames {
		opts.IncludeNames = &f.IncludeNames
	}
	pages, err := roles.ListAssignments(k.c, opts).AllPages(ctx)
	if err != nil {
		return nil, mapErr("listing role assignments", err)
	}
	var body struct {
		RoleAssignments []assignmentJSON `json:"role_assignments"`
	}
	if err := pages.(roles.RoleAssignmentPage).ExtractInto(&body); err != nil {
		return nil, fmt.Errorf("listing role assignments: %w", err)
	}
	out := make([]RoleAssignment, 0, len(body.RoleAssignments))
	for _, a := range body.RoleAssignments {
		s := a.Scope
		out = append(out, RoleAssignment{
			RoleID: a.Role.ID, RoleName: a.Role.Name,
			UserID: a.User.ID, UserName: a.User.Name, UserDomainName: a.User.Domain.Name,
			GroupID: a.Group.ID, GroupName: a.Group.Name, GroupDomainName: a.Group.Domain.Name,
			ProjectID: s.Project.ID, DomainID: s.Domain.ID, DomainName: s.Domain.Name,
			Inherited: s.Inherited != "",
		})
	}
	return out, nil
}
