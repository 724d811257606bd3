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

	"github.com/kaizen-onboard/kaizen/internal/cloud"
	kmail "github.com/kaizen-onboard/kaizen/internal/mail"
	"github.com/kaizen-onboard/kaizen/internal/request"
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
	domains   map[string]string // domain name -> ID; "" when it would be created (dry run)

	// planned holds the projects a dry run would create, by domain and
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
}

// prepare looks up, once per run, what every row needs: role IDs and the
// domains (created when missing). Directories load on first use.
func (r *runner) prepare(ctx context.Context, todo []request.Request) error {
	for _, name := range r.opts.Roles {
		id, err := r.deps.Identity.RoleID(ctx, name)
		if err != nil {
			return fmt.Errorf("import.roles: %w", err)
		}
		r.roleIDs[name] = id
	}
	for _, q := range todo {
		if !q.DomainManager {
			continue
		}
		var err error
		if r.opts.DryRun {
			// Plan: the role must be acceptable; it may not exist yet.
			r.managerID, _ = r.deps.Identity.RoleID(ctx, r.opts.ManagerRole)
			err = cloud.CheckManagerRoleOn(ctx, r.deps.Identity, r.opts.ManagerRole, r.managerID, r.opts.ManagerForbidden)
		} else {
			r.managerID, _, err = cloud.EnsureManagerRoleOn(ctx, r.deps.Identity, r.opts.ManagerRole, r.opts.ManagerForbidden)
		}
		if err != nil {
			return fmt.Errorf("domain_manager.role: %w", err)
		}
		break
	}
	seen := map[string]bool{}
	for _, q := range todo {
		if seen[q.Domain] {
			continue
		}
		seen[q.Domain] = true
		d, created, err := cloud.EnsureDomainOn(ctx, r.deps.Identity, q.Domain, !r.opts.DryRun)
		switch {
		case r.opts.DryRun && errors.Is(err, cloud.ErrNoDomain):
			r.domains[q.Domain] = ""
			continue
		case err != nil:
			return err
		case created:
			r.audit(ctx, q, "domain.create", d.ID, map[string]string{"name": d.Name})
		}
		r.domains[q.Domain] = d.ID
	}
	return r.directories(ctx, todo)
}

// lookupLimit is the most names (projects and users) a run looks up one by
// one in a domain; with more it lists the domain's projects and users once
// instead. A look-up is one small read per name; a listing is two reads
// whatever the count, but each pages through the whole domain (about 1 s at
// 1,400 users, growing with the cloud). Up to a dozen rows, look-ups cost
// fewer requests and far less time; beyond, a listing's two reads win.
const lookupLimit = 25

// directories chooses, for each domain the rows touch, between looking
// their names up and listing the domain once, from the number of names.
func (r *runner) directories(ctx context.Context, todo []request.Request) error {
	names := map[string]map[string]bool{} // domain ID -> project and user names
	for _, q := range todo {
		id := r.domains[q.Domain]
		if id == "" {
			continue // would be created (plan): nothing in it to read
		}
		if names[id] == nil {
			names[id] = map[string]bool{}
		}
		names[id]["p:"+q.ProjectName] = true
		names[id]["u:"+strings.ToLower(q.Email)] = true
		for _, a := range q.AdditionalUsers {
			names[id]["u:"+strings.ToLower(a)] = true
		}
	}
	for id, n := range names {
		if len(n) <= lookupLimit {
			r.dirs[id] = cloud.NewLookupDirectory(r.deps.Identity, id)
			continue
		}
		d, err := cloud.LoadDirectoryFrom(ctx, r.deps.Identity, id)
		if err != nil {
			return err
		}
		r.dirs[id] = d
	}
	return nil
}

// rowRun is the state of one row being applied.
type rowRun struct {
	q          request.Request
	res        *RowResult
	domainID   string
	dir        *cloud.Directory // nil: dry run in a domain that does not exist yet
	created    bool
	ownProject bool           // the project was created for this request
	want       cloud.QuotaSet // the row's preset with its overrides
}

func (rr *rowRun) change(format string, args ...any) {
	rr.res.Changes = append(rr.res.Changes, fmt.Sprintf(format, args...))
}

// apply runs one request and returns its result and the values to write
// back (nil in a dry run).
func (r *runner) apply(ctx context.Context, q request.Request) (*RowResult, map[string]string) {
	res := &RowResult{Row: q.Row, Email: q.Email, Project: q.ProjectName, Domain: q.Domain}
	rr := &rowRun{q: q, res: res}
	err := r.applyRow(ctx, rr)
	switch {
	case err != nil:
		res.Outcome = Failed
		res.Error = err.Error()
		r.opts.Logger.Error("request failed", "row", q.Row, "email", q.Email, "project", q.ProjectName, "err", err)
	case rr.created:
		res.Outcome = Created
	case len(res.Changes) > 0:
		res.Outcome = Updated
	default:
		res.Outcome = Unchanged
	}
	if r.opts.DryRun {
		return res, nil
	}
	if err != nil && ctx.Err() != nil {
		// Interrupted (Ctrl-C, SIGTERM): the row is half-done and the next
		// run finishes it; an "error" in the sheet would only alarm.
		res.Error = "interrupted; run import again to finish this row"
		return res, nil
	}
	c := r.opts.Columns
	values := map[string]string{
		c.Status:      statusOf(res),
		c.ProcessedAt: r.opts.Now().UTC().Format(time.RFC3339),
		c.UserID:      res.UserID,
		c.ProjectID:   res.ProjectID,
	}
	// The PIN stays until the row is done: a re-run may still need it for
	// an additional user's link.
	if err == nil && !q.PINRegistered {
		values[c.PIN] = request.PINRegistered
	}
	return res, values
}

func (r *runner) applyRow(ctx context.Context, rr *rowRun) error {
	q := rr.q
	rr.domainID = r.domains[q.Domain]
	if rr.domainID == "" {
		if !r.opts.DryRun {
			return fmt.Errorf("domain %q was not prepared", q.Domain)
		}
		rr.change("would create domain %q", q.Domain)
	} else {
		rr.dir = r.dirs[rr.domainID]
	}

	// Checks that can fail the row come before anything is created, so a
	// failed row leaves nothing behind.
	want, err := r.want(q)
	if err != nil {
		return err
	}
	rr.want = want
	if q.ExistingAccount {
		if _, err := r.existing(ctx, rr, q.Email); err != nil {
			return err
		}
	}

	project, ownProject, err := r.project(ctx, rr)
	if err != nil {
		return err
	}
	rr.ownProject = ownProject
	rr.res.ProjectID = project.ID

	requester, isNew, err := r.user(ctx, rr, q.Email, q.FullName, q.ExistingAccount)
	if err != nil {
		return err
	}
	rr.res.UserID = requester.ID

	type member struct {
		user  cloud.User
		isNew bool
		name  string
	}
	members := []member{{requester, isNew, q.FullName}}
	var unknown []string
	for _, addr := range q.AdditionalUsers {
		u, fresh, err := r.additional(ctx, rr, addr)
		if errors.Is(err, errReported) {
			unknown = append(unknown, addr)
			continue
		}
		if err != nil {
			return fmt.Errorf("additional user %q: %w", addr, err)
		}
		members = append(members, member{u, fresh, ""})
	}

	for _, m := range members {
		if err := r.roles(ctx, rr, m.user, project); err != nil {
			return err
		}
	}
	if ownProject {
		if err := r.quotas(ctx, rr, project); err != nil {
			return err
		}
	}
	if q.DomainManager {
		if err := r.manager(ctx, rr, requester); err != nil {
			return err
		}
	}

	// Links and mail come last: a user is told about a project only once it
	// is ready for them.
	for i, m := range members {
		pin, pinFrom := q.PIN.Reveal(), ""
		if i > 0 {
			pinFrom = q.FullName
		}
		if q.PINRegistered {
			pin = ""
		}
		if err := r.register(ctx, rr, m.user, m.isNew, pin, pinFrom, m.name, project); err != nil {
			return err
		}
		if err := r.notify(ctx, rr, m.user, i == 0, project); err != nil {
			return err
		}
	}
	if len(unknown) > 0 {
		return fmt.Errorf("%s: no account for %s (import.additional_users = \"report\"); ask them to sign up, or create the accounts and re-run",
			colName(r.opts.Request.Columns.AdditionalUsers, request.DefaultColumns().AdditionalUsers), strings.Join(unknown, ", "))
	}
	return nil
}

var errReported = errors.New("reported, not created")

// project finds or creates the row's project. own reports that the project
// was created for this request (its quotas are the request's to set).
func (r *runner) project(ctx context.Context, rr *rowRun) (p cloud.Project, own bool, err error) {
	q := rr.q
	if q.ExistingProject {
		if rr.dir != nil {
			p, ok, err := rr.dir.FindProject(ctx, q.ProjectName)
			if err != nil {
				return cloud.Project{}, false, err
			}
			if ok {
				return p, false, nil
			}
		}
		if _, ok := r.planned.Load(q.Domain + "\x00" + q.ProjectName); ok {
			return cloud.Project{Name: q.ProjectName}, false, nil
		}
		return cloud.Project{}, false, fmt.Errorf("%s: project %q does not exist in domain %q (the row asks to join an existing project)",
			colName(r.opts.Request.Columns.ExistingProject, request.DefaultColumns().ExistingProject), q.ProjectName, q.Domain)
	}
	spec := cloud.ProjectSpec{
		DomainID:    rr.domainID,
		Name:        q.ProjectName,
		Description: q.ProjectDescription,
		Tags:        []string{"requested-" + requestDate(q, r.opts.Now())},
		Owner:       q.Email,
	}
	if r.opts.DryRun {
		if rr.dir != nil {
			p, ok, err := rr.dir.FindProject(ctx, q.ProjectName)
			if err != nil {
				return cloud.Project{}, false, err
			}
			if ok {
				if !slices.Contains(p.Tags, cloud.OwnerTag(q.Email)) {
					return cloud.Project{}, false, fmt.Errorf("project %q in domain %q exists but was not created for %s: %w", q.ProjectName, q.Domain, q.Email, cloud.ErrProjectTaken)
				}
				return p, true, nil
			}
		}
		rr.created = true
		rr.change("would create project %q", q.ProjectName)
		r.planned.Store(q.Domain+"\x00"+q.ProjectName, true)
		return cloud.Project{Name: q.ProjectName}, true, nil
	}
	p, created, err := rr.dir.EnsureProject(ctx, spec)
	if err != nil {
		return cloud.Project{}, false, err
	}
	if created {
		rr.created = true
		rr.change("created project %q", p.Name)
		r.audit(ctx, q, "project.create", p.ID, map[string]string{"name": p.Name, "domain": q.Domain})
	}
	return p, true, nil
}

// requestDate is the row's submission date for the project tag, or today
// when the timestamp is not in a format we know.
func requestDate(q request.Request, now time.Time) string {
	for _, layout := range []string{"1/2/2006 15:04:05", time.RFC3339, "2006-01-02 15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, strings.TrimSpace(q.Identity.Timestamp)); err == nil {
			return t.Format("2006-01-02")
		}
	}
	return now.UTC().Format("2006-01-02")
}

// user finds or creates the requester. isNew reports that kaizen created
// the account (now or in an interrupted earlier run) and it may need a link.
func (r *runner) user(ctx context.Context, rr *rowRun, email, fullName string, mustExist bool) (cloud.User, bool, error) {
	var found cloud.User
	var ferr error = cloud.ErrNoUser
	if rr.dir != nil {
		found, ferr = rr.dir.FindUser(ctx, email)
	}
	switch {
	case ferr == nil:
		return found, found.Owner != "", nil
	case !errors.Is(ferr, cloud.ErrNoUser):
		return cloud.User{}, false, ferr
	case mustExist:
		_, err := r.existing(ctx, rr, email)
		return cloud.User{}, false, err
	}
	if r.opts.DryRun {
		rr.created = true
		rr.change("would create user %q", email)
		return cloud.User{Name: email}, true, nil
	}
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

// existing returns the account a row says exists, or the row's error.
func (r *runner) existing(ctx context.Context, rr *rowRun, email string) (cloud.User, error) {
	if rr.dir != nil {
		u, err := rr.dir.FindUser(ctx, email)
		if err == nil || !errors.Is(err, cloud.ErrNoUser) {
			return u, err
		}
	}
	return cloud.User{}, fmt.Errorf("%s: the row says %s has an account, but there is none in domain %q; clear Existing Account to create one",
		colName(r.opts.Request.Columns.ExistingAccount, request.DefaultColumns().ExistingAccount), email, rr.q.Domain)
}

// additional resolves one Additional Users address.
func (r *runner) additional(ctx context.Context, rr *rowRun, addr string) (cloud.User, bool, error) {
	if rr.dir != nil {
		u, err := rr.dir.FindUser(ctx, addr)
		if err == nil {
			return u, u.Owner != "", nil
		}
		if !errors.Is(err, cloud.ErrNoUser) {
			return cloud.User{}, false, err
		}
	}
	if !r.opts.CreateAdditional {
		return cloud.User{}, false, errReported
	}
	return r.user(ctx, rr, addr, "", false)
}

// roles grants every configured role on p to u. PUT is idempotent, so no
// read is needed first; a dry run reads to tell what is missing.
func (r *runner) roles(ctx context.Context, rr *rowRun, u cloud.User, p cloud.Project) error {
	for _, name := range r.opts.Roles {
		id := r.roleIDs[name]
		if r.opts.DryRun {
			if u.ID != "" && p.ID != "" {
				has, err := r.deps.Identity.HasRole(ctx, cloud.Grant{UserID: u.ID, RoleID: id, ProjectID: p.ID})
				if err != nil {
					return err
				}
				if has {
					continue
				}
			}
			rr.change("would assign %s to %s", name, u.Name)
			continue
		}
		err := r.deps.Identity.AssignRole(ctx, cloud.Grant{UserID: u.ID, RoleID: id, ProjectID: p.ID})
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
	if r.opts.DryRun {
		if u.ID != "" && rr.domainID != "" && r.managerID != "" {
			if has, err := r.deps.Identity.HasRole(ctx, cloud.Grant{UserID: u.ID, RoleID: r.managerID, DomainID: rr.domainID}); err != nil || has {
				return err
			}
		}
		rr.change("would make %s manager of domain %q", u.Name, rr.q.Domain)
		return nil
	}
	assigned, err := cloud.EnsureGrantOn(ctx, r.deps.Identity, cloud.Grant{UserID: u.ID, RoleID: r.managerID, DomainID: rr.domainID})
	if err != nil {
		return err
	}
	if assigned {
		rr.change("made %s manager of domain %q", u.Name, rr.q.Domain)
		r.audit(ctx, rr.q, "role.assign", rr.domainID, map[string]string{"role": r.opts.ManagerRole, "user": u.ID, "user_name": u.Name, "scope": "domain"})
	}
	return nil
}

// want is the row's quota set: its preset with its overrides.
func (r *runner) want(q request.Request) (cloud.QuotaSet, error) {
	var preset map[string]int64
	for name, values := range r.opts.Presets {
		if strings.EqualFold(name, q.QuotaPreset) {
			preset = values
		}
	}
	if preset == nil && q.QuotaPreset != "" {
		return nil, fmt.Errorf("%s: no preset named %q", colName(r.opts.Request.Columns.QuotaPreset, request.DefaultColumns().QuotaPreset), q.QuotaPreset)
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
	if r.opts.DryRun {
		rr.change("would set quotas %s", formatQuotas(want))
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

// register gives a user kaizen created a set-password link and queues the
// welcome mail, unless that was done before. The welcome mail's key is the
// marker: once it is queued the link went out, and the account is never
// touched again. A kaizen account without it (a run died between creating
// the user and queuing the mail) gets a fresh temporary password first,
// since the one it was created with is gone with that run.
func (r *runner) register(ctx context.Context, rr *rowRun, u cloud.User, isNew bool, pin, pinFrom, name string, p cloud.Project) error {
	if !isNew {
		return nil
	}
	key := "welcome:" + u.ID
	if r.opts.DryRun {
		if u.ID != "" && r.deps.Store != nil {
			if _, err := r.deps.Store.MessageByKey(ctx, key); err == nil {
				return nil
			}
		}
		rr.change("would mail %s a set-password link", u.Name)
		return nil
	}
	if _, err := r.deps.Store.MessageByKey(ctx, key); err == nil {
		return nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("checking for %s's welcome mail: %w", u.Name, err)
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
	temp, fresh := r.temps.LoadAndDelete(u.ID)
	if !fresh {
		t, err := cloud.TempPassword(r.opts.Random)
		if err != nil {
			return err
		}
		if err := r.deps.Identity.SetPassword(ctx, u.ID, t); err != nil {
			return err
		}
		temp = t
		r.audit(ctx, rr.q, "user.password.unused-reset", u.ID, map[string]string{"name": u.Name})
	}
	issued, err := r.deps.Setpass.Issue(ctx, u.ID, temp.(string), pin)
	if err != nil {
		return fmt.Errorf("registering %s with setpass: %w", u.Name, err)
	}
	r.audit(ctx, rr.q, "setpass.issue", u.ID, map[string]string{"name": u.Name, "expires_at": issued.ExpiresAt.UTC().Format(time.RFC3339)})
	if name == "" {
		name = u.Name
	}
	data := kmail.WelcomeData{
		Name: name, Username: u.Name, Domain: r.mailDomain(rr.q), Project: p.Name,
		Link: issued.URL, ExpiresAt: issued.ExpiresAt, PINFrom: pinFrom,
	}
	if err := r.queue(ctx, rr, key, kmail.KindWelcome, u, data); err != nil {
		return err
	}
	rr.change("queued a set-password link for %s", u.Name)
	return nil
}

// notify tells a member about the project: its requester gets new-project
// when the project is new, an existing user added to it added-to-project.
// New users learn of the project from their welcome mail.
func (r *runner) notify(ctx context.Context, rr *rowRun, u cloud.User, requester bool, p cloud.Project) error {
	if r.opts.DryRun {
		return nil
	}
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
func (r *runner) mailDomain(q request.Request) string {
	if strings.EqualFold(q.Domain, r.opts.DefaultDomain) {
		return ""
	}
	return q.Domain
}

// audit records one change in the store and the log. A failing audit write
// is logged, not fatal: the change already happened.
func (r *runner) audit(ctx context.Context, q request.Request, action, target string, details map[string]string) {
	src := fmt.Sprintf("%s row %d (%s|%s)", r.opts.Source, q.Row, q.Identity.Timestamp, q.Email)
	r.opts.Logger.Info("audit", "actor", r.opts.Actor, "action", action, "target", target, "row", q.Row, "source", r.opts.Source, "details", details)
	if r.deps.Store == nil {
		return
	}
	_, err := r.deps.Store.AppendEvent(context.WithoutCancel(ctx), store.Event{
		At: r.opts.Now().UTC(), Actor: r.opts.Actor, Action: action, Target: target, Source: src, Details: details,
	})
	if err != nil {
		r.opts.Logger.Error("writing an audit record", "action", action, "target", target, "err", err)
	}
}

func colName(set, def string) string {
	if set != "" {
		return set
	}
	return def
}
