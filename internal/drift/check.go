package drift

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/kaizen-onboard/kaizen/internal/cloud"
	"github.com/kaizen-onboard/kaizen/internal/signup"
	"github.com/kaizen-onboard/kaizen/internal/store"
)

// Check compares the cloud with every processed row of the sign-up sheet
// and, with opts.Apply, repairs what it can. The error is for the check as
// a whole (sheet unreadable, Keystone down, an import role missing); drift
// is in the report.
//
// API calls: a domain lookup and a directory (two lists) per domain, one
// role-assignment list and one quota read per project, plus the repairs.
func Check(ctx context.Context, deps Deps, opts Options) (Report, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if len(opts.Roles) == 0 {
		opts.Roles = []string{"member"}
	}
	if opts.Actor == "" {
		opts.Actor = "addusers"
	}
	rep := Report{Apply: opts.Apply, Started: opts.Now().UTC(), Drift: []Drift{}}
	t, err := deps.Sheet.Read(ctx)
	if err != nil {
		return rep, fmt.Errorf("reading the sign-up sheet: %w", err)
	}
	parsed, err := signup.Parse(t.Header, t.Rows, opts.Request)
	if err != nil {
		return rep, err
	}
	cols := opts.Request.Columns.Resolved()
	for _, inv := range parsed.Invalid {
		if strings.EqualFold(inv.Status, signup.StatusDone) {
			rep.Unreadable++
		}
	}

	c := &checker{deps: deps, opts: opts, rep: &rep, domains: map[string]string{},
		dirs: cloud.NewDirectoriesOf(deps.Identity), roleIDs: map[string]string{}, projects: map[string]*project{}}
	for _, name := range opts.Roles {
		id, err := deps.Identity.RoleID(ctx, name)
		if err != nil {
			return rep, fmt.Errorf("import.roles: %w", err)
		}
		c.roleIDs[name] = id
	}
	users := map[string]bool{}
	for _, q := range parsed.Requests {
		if !q.Done {
			continue
		}
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		rep.Rows++
		tr, _ := t.Row(q.Row)
		ids := rowIDs{project: strings.TrimSpace(t.Get(tr, cols.ProjectID)),
			user: strings.TrimSpace(t.Get(tr, cols.UserID))}
		if err := c.row(ctx, q, ids, users); err != nil {
			return rep, err
		}
	}
	rep.Users = len(users)
	for _, id := range slices.Sorted(maps.Keys(c.projects)) {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		if err := c.project(ctx, c.projects[id]); err != nil {
			return rep, err
		}
	}
	rep.Projects = len(c.projects)
	rep.Ended = opts.Now().UTC()
	return rep, nil
}

type checker struct {
	deps     Deps
	opts     Options
	rep      *Report
	domains  map[string]string // name -> ID, "" for missing
	dirs     *cloud.Directories
	roleIDs  map[string]string
	projects map[string]*project // by ID
}

// project is what the rows say of one existing project.
type project struct {
	p    cloud.Project
	row  int // the first row naming it
	want map[string]int64
	// wantRow is the row whose preset and overrides want comes from, 0
	// when it comes from the store record (or there is none).
	wantRow int
	members []member
}

type member struct {
	u   cloud.User
	row int
}

type rowIDs struct{ project, user string }

// row checks that one processed row's domain, project and users exist,
// and gathers its project's members and quotas for project.
func (c *checker) row(ctx context.Context, q signup.Request, ids rowIDs, users map[string]bool) error {
	add := func(kind, user, detail string) {
		c.rep.Drift = append(c.rep.Drift, Drift{Row: q.Row, Project: q.ProjectName, User: user, Kind: kind, Detail: detail})
	}
	domainID, ok := c.domains[q.Domain]
	if !ok {
		d, err := c.deps.Identity.FindDomain(ctx, q.Domain)
		switch {
		case errors.Is(err, cloud.ErrNoDomain):
		case err != nil:
			return err
		default:
			domainID = d.ID
		}
		c.domains[q.Domain] = domainID
	}
	if domainID == "" {
		add(DomainMissing, "", fmt.Sprintf("domain %q no longer exists (not recreated: validate never recreates what was deleted)", q.Domain))
		return nil
	}
	dir, err := c.dirs.Get(ctx, domainID)
	if err != nil {
		return err
	}
	p, found := dir.Project(q.ProjectName)
	switch {
	case !found:
		add(ProjectMissing, "", fmt.Sprintf("project %q no longer exists in domain %q (not recreated: validate never recreates what was deleted; clear the row's Status to import it again)",
			q.ProjectName, q.Domain))
		return nil
	case ids.project != "" && p.ID != ids.project:
		add(ProjectMissing, "", fmt.Sprintf("project %q is %s, not %s as the sheet says: the project kaizen made was deleted and another took its name (not repaired)",
			q.ProjectName, p.ID, ids.project))
		return nil
	}
	pr := c.projects[p.ID]
	if pr == nil {
		pr = &project{p: p, row: q.Row}
		c.projects[p.ID] = pr
	}
	if !q.ExistingProject && pr.want == nil {
		pr.want, pr.wantRow = c.rowQuotas(q), q.Row
	}
	for i, email := range append([]string{q.Email}, q.AdditionalUsers...) {
		u, err := dir.User(email)
		switch {
		case errors.Is(err, cloud.ErrNoUser):
			add(UserMissing, email, fmt.Sprintf("user %q no longer exists in domain %q (not recreated)", email, q.Domain))
			continue
		case err != nil:
			return err
		case i == 0 && ids.user != "" && u.ID != ids.user:
			add(UserMissing, email, fmt.Sprintf("user %q is %s, not %s as the sheet says: the account kaizen made was deleted and another took its name (not repaired)",
				email, u.ID, ids.user))
			continue
		}
		users[u.ID] = true
		if !slices.ContainsFunc(pr.members, func(m member) bool { return m.u.ID == u.ID }) {
			pr.members = append(pr.members, member{u: u, row: q.Row})
		}
	}
	return nil
}

// rowQuotas is what import set on a project the row created: its preset
// with its overrides.
func (c *checker) rowQuotas(q signup.Request) map[string]int64 {
	want := map[string]int64{}
	for name, values := range c.opts.Presets {
		if strings.EqualFold(name, q.QuotaPreset) {
			maps.Copy(want, values)
		}
	}
	maps.Copy(want, q.QuotaOverrides)
	return want
}

// project checks one project's role assignments and quotas.
func (c *checker) project(ctx context.Context, pr *project) error {
	assigned, err := cloud.DirectRolesOn(ctx, c.deps.Identity, pr.p.ID)
	if err != nil {
		return err
	}
	for _, m := range pr.members {
		for _, name := range c.opts.Roles {
			if slices.Contains(assigned[m.u.ID], c.roleIDs[name]) {
				continue
			}
			d := Drift{Row: m.row, Project: pr.p.Name, ProjectID: pr.p.ID, User: m.u.Name, Kind: RoleMissing,
				Detail: fmt.Sprintf("%s does not hold role %s on the project", m.u.Name, name), Repairable: true}
			if c.opts.Apply {
				c.assign(ctx, &d, m.u, pr.p, name)
			}
			c.rep.Drift = append(c.rep.Drift, d)
		}
	}
	return c.quotas(ctx, pr)
}

// quotas compares the project's quotas with its record, else with the
// preset and overrides of the row that created it. Only quotas the
// services report (a configured service) are compared.
func (c *checker) quotas(ctx context.Context, pr *project) error {
	rec, err := c.deps.Store.GetQuotaRecord(ctx, pr.p.ID)
	recorded := err == nil
	switch {
	case recorded:
		pr.want, pr.wantRow = rec.Quotas, 0
	case !errors.Is(err, store.ErrNotFound):
		return err
	}
	if len(pr.want) == 0 {
		return nil
	}
	got, err := c.deps.Quotas.Get(ctx, pr.p.ID)
	if err != nil {
		return err
	}
	from := "its store record"
	if !recorded {
		from = fmt.Sprintf("the preset and overrides of row %d", pr.wantRow)
	}
	fix := cloud.QuotaSet{}
	var found []int
	for _, k := range cloud.QuotaSet(pr.want).Keys() {
		g, managed := got[k]
		w := pr.want[k]
		if !managed || g == w {
			continue
		}
		fix[k] = w
		found = append(found, len(c.rep.Drift))
		c.rep.Drift = append(c.rep.Drift, Drift{Row: pr.row, Project: pr.p.Name, ProjectID: pr.p.ID, Kind: QuotaDiffers,
			Resource: k, Want: &w, Got: &g, Repairable: true,
			Detail: fmt.Sprintf("quota %s is %d, %s says %d", k, g, from, w)})
	}
	if !c.opts.Apply {
		return nil
	}
	if len(fix) > 0 {
		c.setQuotas(ctx, pr, fix, found)
	}
	if !recorded {
		// Backfill: from now on the record is what validate checks.
		if err := c.deps.Store.PutQuotaRecord(ctx, store.QuotaRecord{ProjectID: pr.p.ID, Quotas: pr.want,
			ChangedAt: c.opts.Now().UTC(), Change: fmt.Sprintf("validate: from row %d", pr.wantRow)}); err != nil {
			return err
		}
	}
	return nil
}
