package onboard

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/mail"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kaizen-onboard/kaizen/internal/account"
	"github.com/kaizen-onboard/kaizen/internal/cloud"
	kmail "github.com/kaizen-onboard/kaizen/internal/mail"
	"github.com/kaizen-onboard/kaizen/internal/signup"
	"github.com/kaizen-onboard/kaizen/internal/store"
)

type runner struct {
	deps Deps
	opts Options
	// dirs are the rows' domains' views, by domain ID (see directories).
	dirs map[string]*cloud.Directory

	// Written by prepare before any row runs, then only read.
	roleIDs   map[string]string // role name -> ID
	managerID string            // the domain-manager role, when a row asks for it
	domains   map[string]string // domain name -> ID; "" until created
	// firstOf is the first row naming each domain to be created.
	firstOf map[string]signup.Request
	// needManager: a row asks for a domain manager.
	needManager bool
	// names are the project and user names rows use, by domain name.
	names map[string]map[string]bool

	// planned holds the projects planned to be created, by domain and
	// name, so that later rows joining them plan as they would run.
	planned sync.Map

	mailQueued atomic.Int64
	// retriesBefore is the OpenStack retry count when the run began.
	retriesBefore map[string]int

	mu         sync.Mutex
	overwrites []Overwrite // rows that received another row's outcome
	// temps holds the temporary password of each user created in this run
	// until its link is issued; it is never stored anywhere else.
	temps sync.Map

	// rec records the run's audit events; links issues the set-password
	// links (nil in a plan, which issues none).
	rec   *account.Recorder
	links *account.Issuer
}

// prepare looks up, once per run, what every row needs: role IDs, the
// domain-manager role (checked) and the domains, then chooses how each
// domain's names are read. It only reads; create makes what is missing
// (the domains, the manager role) before any row is applied.
func (r *runner) prepare(ctx context.Context, todo []signup.Request) error {
	for _, name := range r.opts.Roles {
		id, err := r.deps.Identity.RoleID(ctx, name)
		if err != nil {
			return fmt.Errorf("import.roles: %w", err)
		}
		r.roleIDs[name] = id
	}
	if slices.ContainsFunc(todo, func(q signup.Request) bool { return q.DomainManager }) {
		// The role must be acceptable; it may not exist yet.
		r.managerID, _ = r.deps.Identity.RoleID(ctx, r.opts.ManagerRole)
		if err := cloud.CheckManagerRoleOn(ctx, r.deps.Identity, r.opts.ManagerRole, r.managerID, r.opts.ManagerForbidden); err != nil {
			return fmt.Errorf("domain_manager.role: %w", err)
		}
		r.needManager = true
	}
	for _, q := range todo {
		if _, seen := r.domains[q.Domain]; seen {
			continue
		}
		d, err := r.deps.Identity.FindDomain(ctx, q.Domain)
		switch {
		case errors.Is(err, cloud.ErrNoDomain):
			r.domains[q.Domain] = ""
			r.firstOf[q.Domain] = q
		case err != nil:
			return err
		default:
			r.domains[q.Domain] = d.ID
		}
	}
	return r.directories(ctx, todo)
}

// create makes what prepare found missing: the domain-manager role and the
// domains (audited under the first row naming each).
func (r *runner) create(ctx context.Context) error {
	if r.needManager && r.managerID == "" { // else it exists and was checked
		id, _, err := cloud.EnsureManagerRoleOn(ctx, r.deps.Identity, r.opts.ManagerRole, r.opts.ManagerForbidden)
		if err != nil {
			return fmt.Errorf("domain_manager.role: %w", err)
		}
		r.managerID = id
	}
	for _, name := range slices.Sorted(maps.Keys(r.domains)) {
		if r.domains[name] != "" {
			continue
		}
		d, created, err := cloud.EnsureDomainOn(ctx, r.deps.Identity, name, true)
		if err != nil {
			return err
		}
		if created {
			r.audit(ctx, r.firstOf[name], "domain.create", d.ID, map[string]string{"name": d.Name})
		}
		r.domains[name] = d.ID
		if created {
			// Nothing to read in a domain just made.
			r.dirs[d.ID] = cloud.NewEmptyDirectory(r.deps.Identity, d.ID)
		} else if err := r.directory(ctx, d.ID, r.names[name]); err != nil {
			return err
		}
	}
	return nil
}

// lookupLimit is the most names (projects and users) a run looks up one by
// one in a domain; with more it lists the domain's projects and users once
// instead. A look-up is one small read per name; a listing is two reads
// whatever the count, but each pages through the whole domain (about 1 s at
// 1,400 users, growing with the cloud). Up to a dozen rows, look-ups cost
// few requests and little time; beyond, a listing's two reads win.
const lookupLimit = 25

// directories chooses, for each domain the rows touch, between looking
// their names up and listing the domain once, from the number of names.
func (r *runner) directories(ctx context.Context, todo []signup.Request) error {
	for _, q := range todo {
		n := r.names[q.Domain]
		if n == nil {
			n = map[string]bool{}
			r.names[q.Domain] = n
		}
		n["p:"+q.ProjectName] = true
		n["u:"+strings.ToLower(q.Email)] = true
		for _, a := range q.AdditionalUsers {
			n["u:"+strings.ToLower(a)] = true
		}
	}
	for name, n := range r.names {
		if id := r.domains[name]; id != "" { // else to be created: nothing to read
			if err := r.directory(ctx, id, n); err != nil {
				return err
			}
		}
	}
	return nil
}

// directory makes the view of domain id for the names rows look up in it.
func (r *runner) directory(ctx context.Context, id string, names map[string]bool) error {
	if len(names) <= lookupLimit {
		r.dirs[id] = cloud.NewLookupDirectory(r.deps.Identity, id)
		return nil
	}
	d, err := cloud.LoadDirectoryFrom(ctx, r.deps.Identity, id)
	if err != nil {
		return err
	}
	r.dirs[id] = d
	return nil
}

// RowPlan is what a run found in the cloud for one request and what it
// will do: Plan reports it, Apply carries it out. An ID left empty is of
// something to be created (by this row or an earlier one of the run).
type RowPlan struct {
	Request  signup.Request `json:"-"`
	DomainID string         `json:"domain_id,omitempty"` // "" when the domain is to be created
	Project  cloud.Project  `json:"project"`
	// CreateProject: the project is to be created; OwnProject: it is the
	// request's own (created for it, now or by an earlier run), so its
	// quotas are the request's to set.
	CreateProject bool `json:"create_project,omitempty"`
	OwnProject    bool `json:"own_project,omitempty"`
	// Members are the requester, then each Additional User with an
	// account or one to create.
	Members []MemberPlan `json:"members"`
	// Unknown are Additional Users without an account, reported on the
	// row (import.additional_users = "report").
	Unknown []string       `json:"unknown_users,omitempty"`
	Quotas  cloud.QuotaSet `json:"quotas,omitempty"` // to set
	// Manager: the requester is to be made manager of the domain.
	Manager bool `json:"domain_manager,omitempty"`
	// Changes are the plan in words ("would create project ...").
	Changes []string `json:"changes,omitempty"`
}

// MemberPlan is one user of a row's plan.
type MemberPlan struct {
	User cloud.User `json:"user"` // User.Name is the address when to be created
	// Create: no account yet; Kaizen: an account kaizen creates or created,
	// which may still need its set-password link.
	Create bool `json:"create,omitempty"`
	Kaizen bool `json:"kaizen,omitempty"`
	// FullName is the requester's; "" for Additional Users.
	FullName string `json:"full_name,omitempty"`
	// Roles are the import roles to assign on the project.
	Roles []string `json:"roles,omitempty"`
	// Link: a set-password link is to be issued and the welcome mail
	// queued (none was queued yet).
	Link bool `json:"link,omitempty"`
}

func (p *RowPlan) change(format string, args ...any) {
	p.Changes = append(p.Changes, fmt.Sprintf(format, args...))
}

// rowRun is the state of one row being applied.
type rowRun struct {
	q          signup.Request
	res        *RowResult
	domainID   string
	dir        *cloud.Directory
	created    bool
	ownProject bool
	want       cloud.QuotaSet
}

func (rr *rowRun) change(format string, args ...any) {
	rr.res.Changes = append(rr.res.Changes, fmt.Sprintf(format, args...))
}

// row plans one request and, when applying, applies the plan. It returns
// the row's result and the values to write back (nil when only planning).
// Plan and import share this path up to applying.
func (r *runner) row(ctx context.Context, q signup.Request, applying bool) (*RowResult, map[string]string) {
	res := &RowResult{Row: q.Row, Email: q.Email, Project: q.ProjectName, Domain: q.Domain}
	p, err := r.plan(ctx, q)
	if err == nil {
		res.Plan = p
		res.ProjectID = p.Project.ID
		if len(p.Members) > 0 {
			res.UserID = p.Members[0].User.ID
		}
	}
	created := err == nil && planCreates(p)
	if applying && err == nil {
		rr := &rowRun{q: q, res: res, domainID: p.DomainID, dir: r.dirs[p.DomainID]}
		err = r.apply(ctx, rr, p)
		created = rr.created
	} else if err == nil {
		res.Changes = p.Changes
		err = p.unknownErr(r)
	}
	switch {
	case err != nil:
		res.Outcome = Failed
		res.Error = err.Error()
		r.opts.Logger.Error("request failed", "row", q.Row, "email", q.Email, "project", q.ProjectName, "err", err)
	case created:
		res.Outcome = Created
	case len(res.Changes) > 0:
		res.Outcome = Updated
	default:
		res.Outcome = Unchanged
	}
	if !applying {
		return res, nil
	}
	if err != nil && ctx.Err() != nil {
		// Interrupted (Ctrl-C, SIGTERM): the row is half-done and the next
		// run finishes it; an "error" in the sheet would only alarm.
		res.Error = "interrupted; run import again to finish this row"
		return res, nil
	}
	c := r.opts.Request.Columns
	values := map[string]string{
		c.Status:      statusOf(res),
		c.ProcessedAt: r.opts.Now().UTC().Format(time.RFC3339),
		c.UserID:      res.UserID,
		c.ProjectID:   res.ProjectID,
	}
	// The PIN stays until the row is done: a re-run may still need it for
	// an additional user's link.
	if err == nil && !q.PINRegistered {
		values[c.PIN] = signup.PINRegistered
	}
	return res, values
}

// planCreates reports whether p creates a project or a user.
func planCreates(p *RowPlan) bool {
	return p.CreateProject || slices.ContainsFunc(p.Members, func(m MemberPlan) bool { return m.Create })
}

func (p *RowPlan) unknownErr(r *runner) error {
	if len(p.Unknown) == 0 {
		return nil
	}
	return fmt.Errorf("%s: no account for %s (import.additional_users = \"report\"); ask them to sign up, or create the accounts and re-run",
		r.opts.Request.Columns.AdditionalUsers, strings.Join(p.Unknown, ", "))
}

// plan reads what the row needs and decides what to do; it changes
// nothing. Checks that can fail the row come first, so a failed row leaves
// nothing behind.
func (r *runner) plan(ctx context.Context, q signup.Request) (*RowPlan, error) {
	p := &RowPlan{Request: q, DomainID: r.domains[q.Domain]}
	dir := r.dirs[p.DomainID] // nil: the domain is to be created
	if p.DomainID == "" {
		p.change("would create domain %q", q.Domain)
	}
	want, err := r.want(q)
	if err != nil {
		return nil, err
	}
	if q.ExistingAccount {
		if _, err := r.existing(ctx, dir, q, q.Email); err != nil {
			return nil, err
		}
	}
	if err := r.planProject(ctx, dir, p); err != nil {
		return nil, err
	}
	requester, err := r.planUser(ctx, dir, p, q.Email, q.FullName, q.ExistingAccount)
	if err != nil {
		return nil, err
	}
	p.Members = append(p.Members, requester)
	for _, addr := range q.AdditionalUsers {
		m, found, err := r.findUser(ctx, dir, q, addr)
		if err != nil {
			return nil, fmt.Errorf("additional user %q: %w", addr, err)
		}
		if !found && !r.opts.CreateAdditional {
			p.Unknown = append(p.Unknown, addr)
			continue
		}
		if !found {
			m, err = r.planUser(ctx, dir, p, addr, "", false)
			if err != nil {
				return nil, fmt.Errorf("additional user %q: %w", addr, err)
			}
		}
		p.Members = append(p.Members, m)
	}
	for i := range p.Members {
		if err := r.planRoles(ctx, p, &p.Members[i]); err != nil {
			return nil, err
		}
	}
	if p.OwnProject && len(want) > 0 {
		p.Quotas = want
		p.change("would set quotas %s", formatQuotas(want))
	}
	if q.DomainManager {
		if err := r.planManager(ctx, p, p.Members[0]); err != nil {
			return nil, err
		}
	}
	for i := range p.Members {
		if err := r.planLink(ctx, p, &p.Members[i]); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// planProject finds the row's project, or plans to create it.
func (r *runner) planProject(ctx context.Context, dir *cloud.Directory, p *RowPlan) error {
	q := p.Request
	var found cloud.Project
	var ok bool
	if dir != nil {
		var err error
		if found, ok, err = dir.FindProject(ctx, q.ProjectName); err != nil {
			return err
		}
	}
	_, planned := r.planned.Load(q.Domain + "\x00" + q.ProjectName)
	switch {
	case q.ExistingProject && ok:
		p.Project = found
	case q.ExistingProject && planned:
		p.Project = cloud.Project{Name: q.ProjectName}
	case q.ExistingProject:
		return fmt.Errorf("%s: project %q does not exist in domain %q (the row asks to join an existing project)",
			r.opts.Request.Columns.ExistingProject, q.ProjectName, q.Domain)
	case ok && !slices.Contains(found.Tags, cloud.OwnerTag(q.Email)):
		return fmt.Errorf("project %q in domain %q exists but was not created for %s: %w", q.ProjectName, q.Domain, q.Email, cloud.ErrProjectTaken)
	case ok:
		p.Project, p.OwnProject = found, true
	default:
		p.Project, p.OwnProject, p.CreateProject = cloud.Project{Name: q.ProjectName}, true, true
		p.change("would create project %q", q.ProjectName)
		r.planned.Store(q.Domain+"\x00"+q.ProjectName, true)
	}
	return nil
}

// findUser looks addr up in the row's domain.
func (r *runner) findUser(ctx context.Context, dir *cloud.Directory, q signup.Request, addr string) (MemberPlan, bool, error) {
	if dir == nil {
		return MemberPlan{}, false, nil
	}
	u, err := dir.FindUser(ctx, addr)
	switch {
	case err == nil:
		return MemberPlan{User: u, Kaizen: u.Owner != ""}, true, nil
	case errors.Is(err, cloud.ErrNoUser):
		return MemberPlan{}, false, nil
	default:
		return MemberPlan{}, false, err
	}
}

// planUser finds a member's account or plans to create it. isNew
// (Kaizen) tells that kaizen creates or created it and it may need a link.
func (r *runner) planUser(ctx context.Context, dir *cloud.Directory, p *RowPlan, email, fullName string, mustExist bool) (MemberPlan, error) {
	m, found, err := r.findUser(ctx, dir, p.Request, email)
	switch {
	case err != nil:
		return MemberPlan{}, err
	case found:
		m.FullName = fullName
		return m, nil
	case mustExist:
		_, err := r.existing(ctx, dir, p.Request, email)
		return MemberPlan{}, err
	}
	p.change("would create user %q", email)
	return MemberPlan{User: cloud.User{Name: email}, Create: true, Kaizen: true, FullName: fullName}, nil
}

// existing returns the account a row says exists, or the row's error.
func (r *runner) existing(ctx context.Context, dir *cloud.Directory, q signup.Request, email string) (cloud.User, error) {
	if dir != nil {
		u, err := dir.FindUser(ctx, email)
		if err == nil || !errors.Is(err, cloud.ErrNoUser) {
			return u, err
		}
	}
	return cloud.User{}, fmt.Errorf("%s: the row says %s has an account, but there is none in domain %q; clear Existing Account to create one",
		r.opts.Request.Columns.ExistingAccount, email, q.Domain)
}

// planRoles plans the import roles m lacks on the project: all of them for
// a new user or project, else those Keystone says are not assigned.
func (r *runner) planRoles(ctx context.Context, p *RowPlan, m *MemberPlan) error {
	for _, name := range r.opts.Roles {
		if m.User.ID != "" && p.Project.ID != "" {
			has, err := r.deps.Identity.HasRole(ctx, cloud.Grant{UserID: m.User.ID, RoleID: r.roleIDs[name], ProjectID: p.Project.ID})
			if err != nil {
				return err
			}
			if has {
				continue
			}
		}
		m.Roles = append(m.Roles, name)
		p.change("would assign %s to %s", name, m.User.Name)
	}
	return nil
}

// planManager plans making u the domain's manager unless it is.
func (r *runner) planManager(ctx context.Context, p *RowPlan, u MemberPlan) error {
	if u.User.ID != "" && p.DomainID != "" && r.managerID != "" {
		has, err := r.deps.Identity.HasRole(ctx, cloud.Grant{UserID: u.User.ID, RoleID: r.managerID, DomainID: p.DomainID})
		if err != nil || has {
			return err
		}
	}
	p.Manager = true
	p.change("would make %s manager of domain %q", u.User.Name, p.Request.Domain)
	return nil
}

// planLink plans a set-password link for an account kaizen created whose
// welcome mail was not queued yet (see issueLink).
func (r *runner) planLink(ctx context.Context, p *RowPlan, m *MemberPlan) error {
	if !m.Kaizen {
		return nil
	}
	if m.User.ID != "" && r.deps.Store != nil {
		_, err := r.deps.Store.MessageByKey(ctx, account.WelcomeKey(m.User.ID))
		if err == nil {
			return nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("checking for %s's welcome mail: %w", m.User.Name, err)
		}
	}
	m.Link = true
	p.change("would mail %s a set-password link", m.User.Name)
	return nil
}

// apply carries out a row's plan. What an earlier row of the run created
// is found in the domain's directory without a read; every write is
// idempotent, so a plan made before an interrupted run converges.
func (r *runner) apply(ctx context.Context, rr *rowRun, p *RowPlan) error {
	q := p.Request
	if rr.domainID = r.domains[q.Domain]; rr.domainID == "" {
		return fmt.Errorf("domain %q was not prepared", q.Domain)
	}
	rr.dir = r.dirs[rr.domainID]
	rr.want, rr.ownProject = p.Quotas, p.OwnProject
	project, err := r.project(ctx, rr, p)
	if err != nil {
		return err
	}
	rr.res.ProjectID = project.ID

	users := make([]cloud.User, len(p.Members))
	kaizen := make([]bool, len(p.Members))
	for i, m := range p.Members {
		u, isNew := m.User, m.Kaizen
		if m.Create || u.ID == "" {
			if u, isNew, err = r.user(ctx, rr, m.User.Name, m.FullName); err != nil {
				if i > 0 {
					return fmt.Errorf("additional user %q: %w", m.User.Name, err)
				}
				return err
			}
		}
		if i == 0 {
			rr.res.UserID = u.ID
		}
		users[i], kaizen[i] = u, isNew
	}
	for i, m := range p.Members {
		if err := r.roles(ctx, rr, users[i], project, m.Roles); err != nil {
			return err
		}
	}
	if len(p.Quotas) > 0 {
		if err := r.quotas(ctx, rr, project); err != nil {
			return err
		}
	}
	if p.Manager {
		if err := r.manager(ctx, rr, users[0]); err != nil {
			return err
		}
	}

	// Links and mail come last: a user is told about a project only once it
	// is ready for them.
	for i, m := range p.Members {
		pin, pinFrom := q.PIN.Reveal(), ""
		if i > 0 {
			pinFrom = q.FullName
		}
		if q.PINRegistered {
			pin = ""
		}
		name := m.FullName
		if kaizen[i] {
			if err := r.issueLink(ctx, rr, users[i], pin, pinFrom, name, project); err != nil {
				return err
			}
		}
		if err := r.notify(ctx, rr, users[i], i == 0, project); err != nil {
			return err
		}
	}
	return p.unknownErr(r)
}

// project creates the row's project, or finds the one planned (created
// earlier, or by an earlier row of this run).
func (r *runner) project(ctx context.Context, rr *rowRun, p *RowPlan) (cloud.Project, error) {
	q := rr.q
	if q.ExistingProject {
		if p.Project.ID != "" {
			return p.Project, nil
		}
		found, ok, err := rr.dir.FindProject(ctx, q.ProjectName)
		if err != nil {
			return cloud.Project{}, err
		}
		if !ok {
			return cloud.Project{}, fmt.Errorf("%s: project %q does not exist in domain %q (the row asks to join an existing project)",
				r.opts.Request.Columns.ExistingProject, q.ProjectName, q.Domain)
		}
		return found, nil
	}
	spec := cloud.ProjectSpec{
		DomainID:    rr.domainID,
		Name:        q.ProjectName,
		Description: q.ProjectDescription,
		Tags:        []string{"requested-" + requestDate(q)},
		Owner:       q.Email,
	}
	prj, created, err := rr.dir.EnsureProject(ctx, spec)
	if err != nil {
		return cloud.Project{}, err
	}
	if created {
		rr.created = true
		rr.change("created project %q", prj.Name)
		r.audit(ctx, q, "project.create", prj.ID, map[string]string{"name": prj.Name, "domain": q.Domain})
	}
	return prj, nil
}

// requestDate is the row's submission date for the project tag, as the
// sheet shows it (signup.Parse refuses a row whose Timestamp it cannot
// read).
func requestDate(q signup.Request) string {
	return q.Submitted.Format(time.DateOnly)
}

// user creates a member's account (found instead when an earlier row of
// the run or a concurrent creator made it). isNew reports that kaizen
// created the account (now or earlier) and it may need a link.
func (r *runner) user(ctx context.Context, rr *rowRun, email, fullName string) (cloud.User, bool, error) {
	temp, err := cloud.TempPassword(r.opts.Random)
	if err != nil {
		return cloud.User{}, false, err
	}
	u, created, err := rr.dir.EnsureUser(ctx, cloud.UserSpec{
		DomainID: rr.domainID, Name: email, Email: email, FullName: fullName,
		Password: temp, DefaultProjectID: rr.res.ProjectID, Owner: rr.q.Email,
	})
	if err != nil {
		return cloud.User{}, false, err
	}
	if created {
		rr.created = true
		rr.change("created user %q", u.Name)
		r.audit(ctx, rr.q, "user.create", u.ID, map[string]string{"name": u.Name, "domain": rr.q.Domain})
		// The password is needed for the link; keep it only in this run.
		u.Owner = rr.q.Email
		r.temps.Store(u.ID, temp)
	}
	return u, u.Owner != "", nil
}

// roles grants the planned roles on p to u (PUTs, idempotent).
func (r *runner) roles(ctx context.Context, rr *rowRun, u cloud.User, p cloud.Project, names []string) error {
	for _, name := range names {
		err := r.deps.Identity.AssignRole(ctx, cloud.Grant{UserID: u.ID, RoleID: r.roleIDs[name], ProjectID: p.ID})
		if err != nil {
			return fmt.Errorf("assigning role %q to %s on project %q: %w", name, u.Name, p.Name, err)
		}
		rr.change("assigned %s to %s", name, u.Name)
		r.audit(ctx, rr.q, "role.assign", p.ID, map[string]string{"role": name, "user": u.ID, "user_name": u.Name})
	}
	return nil
}

// manager makes the requester the domain manager of the row's domain.
func (r *runner) manager(ctx context.Context, rr *rowRun, u cloud.User) error {
	// The plan found the role not assigned; the PUT is idempotent.
	if err := r.deps.Identity.AssignRole(ctx, cloud.Grant{UserID: u.ID, RoleID: r.managerID, DomainID: rr.domainID}); err != nil {
		return fmt.Errorf("making %s manager of domain %q: %w", u.Name, rr.q.Domain, err)
	}
	rr.change("made %s manager of domain %q", u.Name, rr.q.Domain)
	r.audit(ctx, rr.q, "role.assign", rr.domainID, map[string]string{"role": r.opts.ManagerRole, "user": u.ID, "user_name": u.Name, "scope": "domain"})
	return nil
}

// want is the row's quota set: its preset with its overrides.
func (r *runner) want(q signup.Request) (cloud.QuotaSet, error) {
	var preset map[string]int64
	for name, values := range r.opts.Presets {
		if strings.EqualFold(name, q.QuotaPreset) {
			preset = values
		}
	}
	if preset == nil && q.QuotaPreset != "" {
		return nil, fmt.Errorf("%s: no preset named %q", r.opts.Request.Columns.QuotaPreset, q.QuotaPreset)
	}
	want := cloud.QuotaSet{}
	maps.Copy(want, preset)
	maps.Copy(want, q.QuotaOverrides)
	return want, nil
}

func (r *runner) quotas(ctx context.Context, rr *rowRun, p cloud.Project) error {
	want := rr.want
	if len(want) == 0 {
		return nil
	}
	services, err := r.deps.Quotas.Apply(ctx, p.ID, want)
	if err != nil {
		return err
	}
	if len(services) > 0 {
		rr.change("set %s quotas", strings.Join(services, ", "))
		details := map[string]string{"preset": rr.q.QuotaPreset}
		for k, v := range want {
			details[k] = strconv.FormatInt(v, 10)
		}
		r.audit(ctx, rr.q, "quota.set", p.ID, details)
	}
	// What the quotas should be from now on, for addusers validate.
	if rec, ok := r.deps.Store.(store.QuotaRecords); ok {
		if err := rec.PutQuotaRecord(ctx, store.QuotaRecord{ProjectID: p.ID, Quotas: want, Preset: rr.q.QuotaPreset,
			ChangedAt: r.opts.Now().UTC(), Change: fmt.Sprintf("import:%s row %d", r.opts.Source, rr.q.Row)}); err != nil {
			return err
		}
	}
	return nil
}

func formatQuotas(q cloud.QuotaSet) string {
	keys := slices.Sorted(maps.Keys(q))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + strconv.FormatInt(q[k], 10)
	}
	return strings.Join(parts, " ")
}

// issueLink gives a user kaizen created a set-password link and queues the
// welcome mail, unless that was done before. The welcome mail's key is the
// marker: once it is queued the link went out, and the account is never
// touched again. A kaizen account without it (a run died between creating
// the user and queuing the mail) gets a fresh temporary password first,
// since the one it was created with is gone with that run.
func (r *runner) issueLink(ctx context.Context, rr *rowRun, u cloud.User, pin, pinFrom, name string, p cloud.Project) error {
	if done, err := r.links.Welcomed(ctx, u.ID); err != nil {
		return fmt.Errorf("checking for %s's welcome mail: %w", u.Name, err)
	} else if done {
		return nil
	}
	if u.ID == rr.res.UserID && rr.q.PINRegistered {
		// Registered by an earlier run whose store is gone: nothing to redo.
		return nil
	}
	if pin == "" {
		return fmt.Errorf("cannot send %s a set-password link: the row's PIN was already removed from the sheet; ask the requester for a new PIN", u.Name)
	}
	// Recorded before the welcome is queued, so that no crash can leave a
	// new user with both a welcome and an added-to-project mail for p.
	if _, err := r.deps.Store.RecordOnce(ctx, welcomedKey(u.ID, p.ID), r.opts.Now()); err != nil {
		return fmt.Errorf("recording %s's welcome: %w", u.Name, err)
	}
	// A user created in this run has its temporary password; one created
	// by a run that died before its link gets a fresh one from the issuer.
	temp, _ := r.temps.LoadAndDelete(u.ID)
	t, _ := temp.(string)
	if name == "" {
		name = u.Name
	}
	link, err := r.links.IssueLink(ctx, account.LinkRequest{
		User: u, Purpose: account.Welcome, TempPassword: t, PIN: pin,
		Welcome: kmail.WelcomeData{Name: name, Username: u.Name, Domain: r.mailDomain(rr.q), Project: p.Name, PINFrom: pinFrom},
		Audit:   r.rowAudit(rr.q),
	})
	if err != nil {
		return err
	}
	switch {
	case link.Outcome == account.NotKaizens:
		return fmt.Errorf("cannot send %s a set-password link: the account does not carry kaizen's owner attribute", u.Name)
	case link.Outcome == account.AlreadyWelcomed:
		return nil // a concurrent run queued it
	}
	if link.Queued {
		r.mailQueued.Add(1)
	}
	rr.change("queued a set-password link for %s", u.Name)
	return nil
}

// notify tells a member about the project: its requester gets new-project
// when the project is new, an existing user added to it added-to-project.
// New users learn of the project from their welcome mail.
func (r *runner) notify(ctx context.Context, rr *rowRun, u cloud.User, requester bool, p cloud.Project) error {
	if requester && rr.ownProject {
		want := rr.want
		data := kmail.NewProjectData{Name: rr.q.FullName, Project: p.Name, Domain: r.mailDomain(rr.q), Quota: quotaLimits(want)}
		return r.queue(ctx, rr, "new-project:"+p.ID, kmail.KindNewProject, u, data)
	}
	if _, welcomed, err := r.deps.Store.Recorded(ctx, welcomedKey(u.ID, p.ID)); err != nil {
		return fmt.Errorf("checking %s's welcome: %w", u.Name, err)
	} else if welcomed {
		return nil // a new user; the welcome names the project
	}
	name := u.Name
	if requester {
		name = rr.q.FullName
	}
	data := kmail.AddedToProjectData{Name: name, Username: u.Name, Project: p.Name, Domain: r.mailDomain(rr.q), Role: strings.Join(r.opts.Roles, ", ")}
	return r.queue(ctx, rr, "added:"+u.ID+":"+p.ID, kmail.KindAddedToProject, u, data)
}

// welcomedKey is the ledger key saying u's welcome mail names project p.
func welcomedKey(userID, projectID string) string {
	return "onboard:welcomed:" + userID + ":" + projectID
}

// quotaLimits lists q for the welcome mail, in reading order (QuotaSet.Keys).
func quotaLimits(q cloud.QuotaSet) []kmail.QuotaLimit {
	var out []kmail.QuotaLimit
	for _, k := range q.Keys() {
		out = append(out, kmail.QuotaLimit{Resource: k, Limit: q[k]})
	}
	return out
}

func (r *runner) queue(ctx context.Context, rr *rowRun, key, kind string, u cloud.User, data any) error {
	addr := u.Email
	if addr == "" {
		addr = u.Name
	}
	_, created, err := r.deps.Mail.Queue(ctx, key, kind, []mail.Address{{Address: addr}}, data)
	if err != nil {
		return fmt.Errorf("queuing %s mail for %s: %w", kind, addr, err)
	}
	if created {
		r.mailQueued.Add(1)
		r.audit(ctx, rr.q, "mail.queue", u.ID, map[string]string{"kind": kind, "key": key})
	}
	return nil
}

// mailDomain is the domain as mail shows it: "" for the default domain.
func (r *runner) mailDomain(q signup.Request) string {
	if strings.EqualFold(q.Domain, r.opts.DefaultDomain) {
		return ""
	}
	return q.Domain
}

// audit records one change of row q in the store and the log. A failing
// audit write is logged, not fatal: the change already happened.
func (r *runner) audit(ctx context.Context, q signup.Request, action, target string, details map[string]string) {
	r.rowAudit(q).Record(ctx, action, target, details)
}

// rowAudit is the run's recorder with row q as the source.
func (r *runner) rowAudit(q signup.Request) *account.Recorder {
	return r.rec.With(fmt.Sprintf("%s row %d (%s|%s)", r.opts.Source, q.Row, q.Identity.Timestamp, q.Email), "row", q.Row)
}
