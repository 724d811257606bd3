// Package cloudtest holds an in-memory [cloud.Identity] ([Fake]) and the
// conformance suite ([Run]) that it and the real Keystone both pass, so
// tests written against the fake mean what they would against Keystone.
package cloudtest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/kaizen-onboard/kaizen/internal/cloud"
)

// Fake is an in-memory Keystone with the behaviour of Keystone's SQL
// backend on SQLite (the dev Keystone's), as the conformance suite pins it
// down: names are unique per domain and compared case-sensitively (so
// "Ada" and "ada" are two users, and UsersNamed finds both), user lookups
// by name ignore ASCII case, 409 on a taken name, 404 on a missing object,
// tags matched whole, implied roles followed by effective assignment
// listings, admin never implied. It is safe for concurrent use.
type Fake struct {
	mu     sync.Mutex
	newID  func() string
	next   int
	domain map[string]*cloud.Domain
	proj   map[string]*cloud.Project
	user   map[string]*cloud.User
	pass   map[string]string // by user ID, never read back: only "set"
	role   map[string]cloud.RoleRef
	imply  map[string][]string // prior role ID -> implied role IDs, in order made
	grants map[cloud.Grant]bool
	group  map[string]*cloud.Group
	member map[string]map[string]bool // group ID -> user IDs
	// prohibited are the role names no role may imply (Keystone's
	// [assignment] prohibited_implied_role, default admin).
	prohibited []string
}

var _ cloud.Identity = (*Fake)(nil)

// Options shape a Fake.
type Options struct {
	// NewID draws object IDs; nil: 32 hex digits from a counter, as
	// Keystone's UUIDs look.
	NewID func() string
}

// New returns a fake Keystone holding what `keystone-manage bootstrap`
// creates that kaizen relies on: the roles admin, member and reader, admin
// implying member and member implying reader.
func New() *Fake { return NewWith(Options{}) }

// NewWith is [New] with options.
func NewWith(o Options) *Fake {
	f := &Fake{newID: o.NewID, domain: map[string]*cloud.Domain{}, proj: map[string]*cloud.Project{},
		user: map[string]*cloud.User{}, pass: map[string]string{}, role: map[string]cloud.RoleRef{},
		imply: map[string][]string{}, grants: map[cloud.Grant]bool{}, group: map[string]*cloud.Group{},
		member: map[string]map[string]bool{}, prohibited: []string{"admin"}}
	if f.newID == nil {
		f.newID = func() string { f.next++; return fmt.Sprintf("%032x", f.next) }
	}
	ids := map[string]string{}
	for _, n := range []string{"admin", "member", "reader"} {
		ids[n] = f.newID()
		f.role[ids[n]] = cloud.RoleRef{ID: ids[n], Name: n}
	}
	f.imply[ids["admin"]] = []string{ids["member"]}
	f.imply[ids["member"]] = []string{ids["reader"]}
	return f
}

func notFound(what string) error { return fmt.Errorf("%s: %w", what, cloud.ErrNotFound) }

// FindDomain implements [cloud.Domains].
func (f *Fake) FindDomain(ctx context.Context, name string) (cloud.Domain, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, d := range f.domain {
		if d.Name == name {
			return *d, nil
		}
	}
	return cloud.Domain{}, fmt.Errorf("domain %q: %w", name, cloud.ErrNoDomain)
}

// CreateDomain implements [cloud.Domains].
func (f *Fake) CreateDomain(ctx context.Context, name, description string) (cloud.Domain, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if name == "" {
		return cloud.Domain{}, fmt.Errorf("creating a domain without a name: %w", cloud.ErrInvalid)
	}
	for _, d := range f.domain {
		if d.Name == name {
			return cloud.Domain{}, fmt.Errorf("creating domain %q: %w", name, cloud.ErrConflict)
		}
	}
	d := &cloud.Domain{ID: f.newID(), Name: name, Enabled: true}
	f.domain[d.ID] = d
	return *d, nil
}

// DeleteDomain implements [cloud.Domains]: the domain goes with its
// projects, users and every assignment on or of them.
func (f *Fake) DeleteDomain(ctx context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.domain[id] == nil {
		return notFound("deleting domain " + id)
	}
	for pid, p := range f.proj {
		if p.DomainID == id {
			f.dropProject(pid)
		}
	}
	for uid, u := range f.user {
		if u.DomainID == id {
			f.dropUser(uid)
		}
	}
	for gid, g := range f.group {
		if g.DomainID == id {
			f.dropGroup(gid)
		}
	}
	for g := range f.grants {
		if g.DomainID == id {
			delete(f.grants, g)
		}
	}
	delete(f.domain, id)
	return nil
}

func cloneProject(p *cloud.Project) cloud.Project {
	c := *p
	c.Tags = slices.Clone(p.Tags)
	if c.Tags == nil {
		c.Tags = []string{}
	}
	return c
}

// GetProject implements [cloud.Projects].
func (f *Fake) GetProject(ctx context.Context, id string) (cloud.Project, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.proj[id]
	if p == nil {
		return cloud.Project{}, notFound("reading project " + id)
	}
	return cloneProject(p), nil
}

// FindProject implements [cloud.Projects].
func (f *Fake) FindProject(ctx context.Context, domainID, name string) (cloud.Project, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range f.proj {
		if p.DomainID == domainID && p.Name == name {
			return cloneProject(p), true, nil
		}
	}
	return cloud.Project{}, false, nil
}

// ListProjects implements [cloud.Projects], in ID order.
func (f *Fake) ListProjects(ctx context.Context, flt cloud.ProjectFilter) ([]cloud.Project, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := []cloud.Project{}
	for _, p := range f.proj {
		if (flt.DomainID == "" || p.DomainID == flt.DomainID) && (flt.Tag == "" || slices.Contains(p.Tags, flt.Tag)) {
			out = append(out, cloneProject(p))
		}
	}
	slices.SortFunc(out, func(a, b cloud.Project) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// maxTags is how many tags Keystone lets a project hold.
const maxTags = 80

// validTag is Keystone's rule: no "/" or ",", 1 to 255 characters.
func validTag(t string) bool {
	return t != "" && len([]rune(t)) <= 255 && !strings.ContainsAny(t, "/,")
}

// CreateProject implements [cloud.Projects].
func (f *Fake) CreateProject(ctx context.Context, np cloud.NewProject) (cloud.Project, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	what := fmt.Sprintf("creating project %q in domain %q", np.Name, np.DomainID)
	if np.Name == "" {
		return cloud.Project{}, fmt.Errorf("%s: %w", what, cloud.ErrInvalid)
	}
	var tags []string
	for _, t := range np.Tags {
		if !validTag(t) || slices.Contains(tags, t) {
			return cloud.Project{}, fmt.Errorf("%s: tag %q: %w", what, t, cloud.ErrInvalid)
		}
		tags = append(tags, t)
	}
	if len(tags) > maxTags {
		return cloud.Project{}, fmt.Errorf("%s: %d tags: %w", what, len(tags), cloud.ErrInvalid)
	}
	if f.domain[np.DomainID] == nil {
		// Keystone answers 400 here, not 404.
		return cloud.Project{}, fmt.Errorf("%s: no such domain: %w", what, cloud.ErrInvalid)
	}
	for _, p := range f.proj {
		if p.DomainID == np.DomainID && p.Name == np.Name {
			return cloud.Project{}, fmt.Errorf("%s: %w", what, cloud.ErrConflict)
		}
	}
	p := &cloud.Project{ID: f.newID(), Name: np.Name, DomainID: np.DomainID, Tags: tags, Enabled: true}
	f.proj[p.ID] = p
	return cloneProject(p), nil
}

// AddProjectTag implements [cloud.Projects].
func (f *Fake) AddProjectTag(ctx context.Context, projectID, tag string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	what := fmt.Sprintf("tagging project %s with %q", projectID, tag)
	p := f.proj[projectID]
	switch {
	case p == nil:
		return notFound(what)
	case !validTag(tag) || len(p.Tags) >= maxTags:
		return fmt.Errorf("%s: %w", what, cloud.ErrInvalid)
	case slices.Contains(p.Tags, tag):
		// Keystone appends the tag and validates the list, which then
		// holds it twice.
		return fmt.Errorf("%s: the project has it already: %w", what, cloud.ErrInvalid)
	}
	p.Tags = append(p.Tags, tag)
	return nil
}

// RemoveProjectTag implements [cloud.Projects].
func (f *Fake) RemoveProjectTag(ctx context.Context, projectID, tag string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if p := f.proj[projectID]; p != nil {
		p.Tags = slices.DeleteFunc(p.Tags, func(t string) bool { return t == tag })
	}
	return nil
}

// DeleteProject implements [cloud.Projects].
func (f *Fake) DeleteProject(ctx context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.proj[id] == nil {
		return notFound("deleting project " + id)
	}
	f.dropProject(id)
	return nil
}

func (f *Fake) dropProject(id string) {
	delete(f.proj, id)
	for g := range f.grants {
		if g.ProjectID == id {
			delete(f.grants, g)
		}
	}
}

func (f *Fake) dropUser(id string) {
	delete(f.user, id)
	delete(f.pass, id)
	for _, m := range f.member {
		delete(m, id)
	}
	for g := range f.grants {
		if g.UserID == id {
			delete(f.grants, g)
		}
	}
}

// GetUser implements [cloud.Users].
func (f *Fake) GetUser(ctx context.Context, id string) (cloud.User, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	u := f.user[id]
	if u == nil {
		return cloud.User{}, fmt.Errorf("user %s: %w", id, cloud.ErrNoUser)
	}
	return *u, nil
}

// asciiLower lower-cases ASCII letters only, as SQLite's LIKE folds case.
func asciiLower(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'A' && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}, s)
}

// UsersNamed implements [cloud.Users] as cloud.UsersNamed meets Keystone:
// a name holding %, _ or \ is matched exactly in lower case (the exact
// name= filter), any other ignoring ASCII case (SQLite's LIKE), in ID
// order.
func (f *Fake) UsersNamed(ctx context.Context, domainID, name string) ([]cloud.User, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	lower := strings.ToLower(name)
	exact := strings.ContainsAny(lower, `%_\`)
	var out []cloud.User
	for _, u := range f.user {
		if domainID != "" && u.DomainID != domainID {
			continue
		}
		if exact && u.Name == lower || !exact && asciiLower(u.Name) == asciiLower(name) {
			out = append(out, *u)
		}
	}
	slices.SortFunc(out, func(a, b cloud.User) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// ListUsers implements [cloud.Users], in ID order.
func (f *Fake) ListUsers(ctx context.Context, domainID string) ([]cloud.User, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := []cloud.User{}
	for _, u := range f.user {
		if u.DomainID == domainID {
			out = append(out, *u)
		}
	}
	slices.SortFunc(out, func(a, b cloud.User) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// CreateUser implements [cloud.Users].
func (f *Fake) CreateUser(ctx context.Context, nu cloud.NewUser) (cloud.User, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	what := fmt.Sprintf("creating user %q in domain %q", nu.Name, nu.DomainID)
	if nu.Name == "" {
		return cloud.User{}, fmt.Errorf("%s: %w", what, cloud.ErrInvalid)
	}
	if f.domain[nu.DomainID] == nil {
		return cloud.User{}, notFound(what)
	}
	for _, u := range f.user {
		if u.DomainID == nu.DomainID && u.Name == nu.Name {
			return cloud.User{}, fmt.Errorf("%s: %w", what, cloud.ErrConflict)
		}
	}
	u := &cloud.User{ID: f.newID(), Name: nu.Name, DomainID: nu.DomainID, DefaultProjectID: nu.DefaultProjectID,
		Enabled: true, Email: nu.Email, Owner: nu.Owner, FullName: nu.FullName}
	f.user[u.ID] = u
	if nu.Password != "" {
		f.pass[u.ID] = nu.Password
	}
	return *u, nil
}

// SetPassword implements [cloud.Users].
func (f *Fake) SetPassword(ctx context.Context, userID, password string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.user[userID] == nil {
		return notFound(fmt.Sprintf("setting a new temporary password for user %q", userID))
	}
	f.pass[userID] = password
	return nil
}

// Password is the password last set for userID, for tests to check that
// one was set; "" when none was.
func (f *Fake) Password(userID string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.pass[userID]
}

// DeleteUser implements [cloud.Users].
func (f *Fake) DeleteUser(ctx context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.user[id] == nil {
		return notFound("deleting user " + id)
	}
	f.dropUser(id)
	return nil
}

// SetUserEnabled implements [cloud.Users].
func (f *Fake) SetUserEnabled(ctx context.Context, userID string, enabled bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	u := f.user[userID]
	if u == nil {
		return notFound("updating user " + userID)
	}
	u.Enabled = enabled
	return nil
}

// CreateGroup implements [cloud.Groups].
func (f *Fake) CreateGroup(ctx context.Context, domainID, name string) (cloud.Group, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	what := fmt.Sprintf("creating group %q in domain %q", name, domainID)
	if name == "" {
		return cloud.Group{}, fmt.Errorf("%s: %w", what, cloud.ErrInvalid)
	}
	if f.domain[domainID] == nil {
		return cloud.Group{}, notFound(what)
	}
	for _, g := range f.group {
		if g.DomainID == domainID && g.Name == name {
			return cloud.Group{}, fmt.Errorf("%s: %w", what, cloud.ErrConflict)
		}
	}
	g := &cloud.Group{ID: f.newID(), Name: name, DomainID: domainID}
	f.group[g.ID] = g
	f.member[g.ID] = map[string]bool{}
	return *g, nil
}

// AddUserToGroup implements [cloud.Groups].
func (f *Fake) AddUserToGroup(ctx context.Context, groupID, userID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.group[groupID] == nil || f.user[userID] == nil {
		return notFound(fmt.Sprintf("adding user %s to group %s", userID, groupID))
	}
	f.member[groupID][userID] = true
	return nil
}

// DeleteGroup implements [cloud.Groups].
func (f *Fake) DeleteGroup(ctx context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.group[id] == nil {
		return notFound("deleting group " + id)
	}
	f.dropGroup(id)
	return nil
}

func (f *Fake) dropGroup(id string) {
	delete(f.group, id)
	delete(f.member, id)
	for g := range f.grants {
		if g.GroupID == id {
			delete(f.grants, g)
		}
	}
}

// RoleID implements [cloud.Roles].
func (f *Fake) RoleID(ctx context.Context, name string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.role {
		if r.Name == name {
			return r.ID, nil
		}
	}
	return "", fmt.Errorf("role %q: %w", name, cloud.ErrNoRole)
}

// CreateRole implements [cloud.Roles].
func (f *Fake) CreateRole(ctx context.Context, name, description string) (cloud.RoleRef, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if name == "" {
		return cloud.RoleRef{}, fmt.Errorf("creating a role without a name: %w", cloud.ErrInvalid)
	}
	for _, r := range f.role {
		if r.Name == name {
			return cloud.RoleRef{}, fmt.Errorf("creating role %q: %w", name, cloud.ErrConflict)
		}
	}
	r := cloud.RoleRef{ID: f.newID(), Name: name}
	f.role[r.ID] = r
	return r, nil
}

// DeleteRole implements [cloud.Roles]; the role's assignments and rules go
// with it.
func (f *Fake) DeleteRole(ctx context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.role[id]; !ok {
		return notFound("deleting role " + id)
	}
	delete(f.role, id)
	delete(f.imply, id)
	for p, is := range f.imply {
		f.imply[p] = slices.DeleteFunc(is, func(i string) bool { return i == id })
	}
	for g := range f.grants {
		if g.RoleID == id {
			delete(f.grants, g)
		}
	}
	return nil
}

// RoleImplies implements [cloud.Roles].
func (f *Fake) RoleImplies(ctx context.Context, roleID string) ([]cloud.RoleRef, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.role[roleID]; !ok {
		return nil, notFound(fmt.Sprintf("listing the roles role %q implies", roleID))
	}
	out := []cloud.RoleRef{}
	for _, id := range f.imply[roleID] {
		out = append(out, f.role[id])
	}
	return out, nil
}

// CreateImpliedRole implements [cloud.Roles].
func (f *Fake) CreateImpliedRole(ctx context.Context, priorID, impliedID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	what := fmt.Sprintf("making role %s imply role %s", priorID, impliedID)
	_, okp := f.role[priorID]
	implied, oki := f.role[impliedID]
	switch {
	case !okp || !oki:
		return notFound(what)
	case slices.Contains(f.prohibited, implied.Name):
		return fmt.Errorf("%s: %w", what, cloud.ErrForbidden)
	case slices.Contains(f.imply[priorID], impliedID):
		return fmt.Errorf("%s: %w", what, cloud.ErrConflict)
	}
	f.imply[priorID] = append(f.imply[priorID], impliedID)
	return nil
}

// HasRole implements [cloud.Assignments].
func (f *Fake) HasRole(ctx context.Context, g cloud.Grant) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.grants[g], nil
}

// AssignRole implements [cloud.Assignments].
func (f *Fake) AssignRole(ctx context.Context, g cloud.Grant) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, role := f.role[g.RoleID]
	target := g.ProjectID != "" && g.DomainID == "" && f.proj[g.ProjectID] != nil ||
		g.DomainID != "" && g.ProjectID == "" && f.domain[g.DomainID] != nil
	who := g.UserID != "" && g.GroupID == "" && f.user[g.UserID] != nil ||
		g.GroupID != "" && g.UserID == "" && f.group[g.GroupID] != nil
	if !role || !who || !target {
		return notFound("assigning " + g.String())
	}
	f.grants[g] = true
	return nil
}

// UnassignRole implements [cloud.Assignments].
func (f *Fake) UnassignRole(ctx context.Context, g cloud.Grant) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	had := f.grants[g]
	delete(f.grants, g)
	return had, nil
}

// ListRoleAssignments implements [cloud.Assignments]. Effective lists a
// group's assignments as each member's and adds the roles each assignment
// implies, transitively; the fake has no inherited assignments.
func (f *Fake) ListRoleAssignments(ctx context.Context, flt cloud.AssignmentFilter) ([]cloud.RoleAssignment, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var grants []cloud.Grant
	for g := range f.grants {
		if flt.Effective && g.GroupID != "" {
			for uid := range f.member[g.GroupID] {
				ug := g
				ug.GroupID, ug.UserID = "", uid
				grants = append(grants, ug)
			}
			continue
		}
		grants = append(grants, g)
	}
	grants = slices.DeleteFunc(grants, func(g cloud.Grant) bool {
		return flt.UserID != "" && g.UserID != flt.UserID || flt.ProjectID != "" && g.ProjectID != flt.ProjectID ||
			flt.DomainID != "" && g.DomainID != flt.DomainID
	})
	key := func(g cloud.Grant) string {
		return g.ProjectID + g.DomainID + "\x00" + g.UserID + g.GroupID + "\x00" + g.RoleID
	}
	slices.SortFunc(grants, func(a, b cloud.Grant) int { return strings.Compare(key(a), key(b)) })
	out := []cloud.RoleAssignment{}
	seen := map[cloud.Grant]bool{}
	add := func(g cloud.Grant) {
		if seen[g] || flt.RoleID != "" && g.RoleID != flt.RoleID {
			return
		}
		seen[g] = true
		a := cloud.RoleAssignment{RoleID: g.RoleID, UserID: g.UserID, GroupID: g.GroupID, ProjectID: g.ProjectID, DomainID: g.DomainID}
		if flt.IncludeNames {
			a.RoleName = f.role[g.RoleID].Name
			if u := f.user[g.UserID]; u != nil {
				a.UserName = u.Name
				if d := f.domain[u.DomainID]; d != nil {
					a.UserDomainName = d.Name
				}
			}
			if gr := f.group[g.GroupID]; gr != nil {
				a.GroupName = gr.Name
				if d := f.domain[gr.DomainID]; d != nil {
					a.GroupDomainName = d.Name
				}
			}
			if d := f.domain[g.DomainID]; d != nil {
				a.DomainName = d.Name
			}
		}
		out = append(out, a)
	}
	for _, g := range grants {
		add(g)
		if !flt.Effective {
			continue
		}
		walked := map[string]bool{g.RoleID: true}
		queue := slices.Clone(f.imply[g.RoleID])
		for len(queue) > 0 {
			id := queue[0]
			queue = queue[1:]
			if walked[id] {
				continue
			}
			walked[id] = true
			queue = append(queue, f.imply[id]...)
			ig := g
			ig.RoleID = id
			add(ig)
		}
	}
	return out, nil
}
