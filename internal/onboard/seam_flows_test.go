package onboard_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/kaizen-onboard/kaizen/internal/cloud"
	"github.com/kaizen-onboard/kaizen/internal/onboard"
	"github.com/kaizen-onboard/kaizen/internal/signup"
)

// A new request, planned then imported then imported again: the plan
// changes nothing and says what the import does; the import creates the
// project (owner-tagged), the user, the role, the quotas, issues the link
// with the row's PIN and mails it; the re-run changes nothing.
func TestSeamNewRequestPlannedThenImported(t *testing.T) {
	eachSeamBackend(t, func(t *testing.T, b seamBackend) {
		e := newSeamEnv(t, b)
		e.write(row("ada@example.org", "engines", ramColumn, "16"))
		before := e.grid()

		plan := e.mustRun(dryRun)
		res := rowOf(t, plan, 2)
		if !plan.DryRun || res.Outcome != onboard.Created || res.Plan == nil {
			t.Fatalf("plan row 2 = %s, want created with a plan", describe(res))
		}
		for _, c := range [][]string{{"would create project", `"engines"`}, {"would create user", "ada@example.org"},
			{"would assign member to ada@example.org"}, {"would set quotas", "ram=16384"}, {"would mail ada@example.org a set-password link"}} {
			if !changed(res, c...) {
				t.Errorf("plan changes %q lack %q", res.Changes, c)
			}
		}
		if p := res.Plan; !p.CreateProject || !p.OwnProject || len(p.Members) != 1 || !p.Members[0].Create || !p.Members[0].Link ||
			!slices.Equal(p.Members[0].Roles, []string{"member"}) || p.Quotas["ram"] != 16384 {
			t.Errorf("plan = %+v", *p)
		}
		if e.count.writes.Load() != 0 || e.countProjects() != 0 || e.countUsers() != 0 {
			t.Errorf("plan wrote to Keystone: %d writes", e.count.writes.Load())
		}
		if !slices.EqualFunc(before, e.grid(), slices.Equal) || len(e.queued()) != 0 || len(e.setpass.links()) != 0 {
			t.Error("plan changed the sheet, queued mail or issued a link")
		}

		sum := e.mustRun()
		got := rowOf(t, sum, 2)
		if got.Outcome != onboard.Created || len(got.Changes) != len(res.Changes) {
			t.Errorf("import row 2 = %s; the plan said %q", describe(got), res.Changes)
		}
		p, ok := e.project("engines")
		if !ok || !slices.Contains(p.Tags, cloud.OwnerTag("ada@example.org")) || !slices.Contains(p.Tags, "requested-"+defaultDate) {
			t.Fatalf("project = %+v, %v", p, ok)
		}
		u, ok := e.user("ada@example.org")
		if !ok || u.Owner != "ada@example.org" || u.Email != "ada@example.org" || u.DefaultProjectID != p.ID {
			t.Fatalf("user = %+v, %v", u, ok)
		}
		if got.UserID != u.ID || got.ProjectID != p.ID {
			t.Errorf("row IDs %s/%s, want %s/%s", got.UserID, got.ProjectID, u.ID, p.ID)
		}
		if !e.hasRole("member", u.ID, p.ID) {
			t.Error("no member role")
		}
		if q := e.quotas.get(p.ID); q["ram"] != 16384 || q["cores"] != presets["small"]["cores"] {
			t.Errorf("quotas = %v", q)
		}
		if links := e.setpass.links(); len(links) != 1 || links[0].userID != u.ID || links[0].pin != defaultPIN || links[0].temp == "" {
			t.Errorf("links = %+v", links)
		}
		if q := e.queued(); q["welcome:"+u.ID] != "welcome" || q["new-project:"+p.ID] != "new-project" || len(q) != 2 {
			t.Errorf("queued %v", q)
		}
		if len(e.smtp.Messages()) != 2 || sum.Mail != 2 {
			t.Errorf("delivered %d, summary mail %d; want 2", len(e.smtp.Messages()), sum.Mail)
		}
		if s := e.cell(2, cols.Status); s != signup.StatusDone {
			t.Errorf("status %q", s)
		}
		if pin := e.cell(2, cols.PIN); pin != signup.PINRegistered {
			t.Errorf("PIN cell %q, want it replaced", pin)
		}

		e.count.reset()
		again := e.mustRun()
		if r := rowOf(t, again, 2); r.Outcome != onboard.Unchanged || e.count.writes.Load() != 0 {
			t.Errorf("re-run row 2 = %s, %d writes", describe(r), e.count.writes.Load())
		}
		replan := e.mustRun(dryRun)
		if r := rowOf(t, replan, 2); r.Outcome != onboard.Unchanged {
			t.Errorf("plan after import: %s", describe(r))
		}
	})
}

// Rows that join: an existing account joins an existing project, a new
// one joins the project an earlier row creates, additional users are
// created or reported, a domain manager is made, and rows that cannot be
// done fail without leaving anything behind.
func TestSeamJoinsAndFailures(t *testing.T) {
	eachSeamBackend(t, func(t *testing.T, b seamBackend) {
		e := newSeamEnv(t, b)
		grace := e.createUser("grace@example.org", "")
		compilers := e.createProject("compilers")
		e.createProject("taken") // not kaizen's
		e.write(
			row("Grace@Example.org", "compilers", cols.ExistingAccount, "yes", cols.ExistingProject, "yes", cols.QuotaPreset, "large"),
			row("ada@example.org", "engines", cols.Timestamp, "3/15/2026 08:00:00", cols.AdditionalUsers, "charles@example.org", cols.DomainManager, "yes"),
			row("dora@example.org", "engines", cols.Timestamp, "3/16/2026 08:00:00", cols.ExistingProject, "yes"),
			row("eve@example.org", "taken", cols.Timestamp, "3/17/2026 08:00:00"),
			row("finn@example.org", "nowhere", cols.Timestamp, "3/18/2026 08:00:00", cols.ExistingProject, "yes"),
			row("gil@example.org", "gils", cols.Timestamp, "3/19/2026 08:00:00", cols.ExistingAccount, "yes"),
			row("hal@example.org", "hals", cols.Timestamp, "3/20/2026 08:00:00", cols.QuotaPreset, "huge"),
		)
		plan, err := e.run(dryRun)
		if !errors.Is(err, onboard.ErrSomeFailed) {
			t.Fatalf("plan: %v", err)
		}
		if r := rowOf(t, plan, 2); r.Outcome != onboard.Updated || !changed(r, "would assign member to grace@example.org") || len(r.Changes) != 1 {
			t.Errorf("plan row 2 = %s", describe(r))
		}
		if r := rowOf(t, plan, 3); r.Outcome != onboard.Created || !changed(r, "would make ada@example.org manager") || !changed(r, "would create user", "charles@") {
			t.Errorf("plan row 3 = %s", describe(r))
		}
		if r := rowOf(t, plan, 4); r.Outcome != onboard.Created || changed(r, "would create project") {
			t.Errorf("plan row 4 = %s, want it to join row 3's project", describe(r))
		}
		if e.count.writes.Load() != 0 {
			t.Errorf("plan made %d writes", e.count.writes.Load())
		}

		sum, err := e.run()
		if !errors.Is(err, onboard.ErrSomeFailed) {
			t.Fatalf("import: %v", err)
		}
		if r := rowOf(t, sum, 2); r.Outcome != onboard.Updated || r.UserID != grace.ID || r.ProjectID != compilers.ID {
			t.Errorf("row 2 = %s", describe(r))
		}
		if !e.hasRole("member", grace.ID, compilers.ID) || len(e.quotas.get(compilers.ID)) != 0 {
			t.Error("grace: no role, or the joined project's quotas were set")
		}
		engines, _ := e.project("engines")
		ada, _ := e.user("ada@example.org")
		charles, _ := e.user("charles@example.org")
		dora, _ := e.user("dora@example.org")
		for _, u := range []cloud.User{ada, charles, dora} {
			if u.ID == "" || !e.hasRole("member", u.ID, engines.ID) {
				t.Errorf("%+v: no member role on engines", u)
			}
		}
		mgr, err := e.id.RoleID(t.Context(), "manager")
		if err != nil {
			t.Fatal(err)
		}
		if has, err := e.id.HasRole(t.Context(), cloud.Grant{UserID: ada.ID, RoleID: mgr, DomainID: e.domainID}); err != nil || !has {
			t.Errorf("ada is not domain manager: %v %v", has, err)
		}
		for n, want := range map[int]string{5: "was not created for", 6: "does not exist", 7: "has an account, but there is none", 8: `"huge" is not a quota preset`} {
			r := rowOf(t, sum, n)
			if r.Outcome != onboard.Failed || !strings.Contains(r.Error, want) {
				t.Errorf("row %d = %s, want failed with %q", n, describe(r), want)
			}
		}
		for _, name := range []string{"eve@example.org", "finn@example.org", "gil@example.org", "hal@example.org"} {
			if _, ok := e.user(name); ok {
				t.Errorf("a failed row created %s", name)
			}
		}
		if _, ok := e.project("hals"); ok {
			t.Error("a failed row created its project")
		}
		q := e.queued()
		for _, k := range []string{"welcome:" + ada.ID, "welcome:" + charles.ID, "welcome:" + dora.ID, "added:" + grace.ID + ":" + compilers.ID, "new-project:" + engines.ID} {
			if q[k] == "" {
				t.Errorf("no %s in %v", k, q)
			}
		}
	})
}

// Additional users without an account are reported, not created, with
// import.additional_users = "report"; the row fails and names them.
func TestSeamAdditionalReported(t *testing.T) {
	eachSeamBackend(t, func(t *testing.T, b seamBackend) {
		e := newSeamEnv(t, b)
		bob := e.createUser("bob@example.org", "")
		e.write(row("ada@example.org", "engines", cols.AdditionalUsers, "bob@example.org, zed@example.org"))
		noCreate := func(o *onboard.Options) { o.CreateAdditional = false }
		plan, err := e.run(noCreate, dryRun)
		if !errors.Is(err, onboard.ErrSomeFailed) || !strings.Contains(rowOf(t, plan, 2).Error, "zed@example.org") {
			t.Fatalf("plan: %v %s", err, describe(rowOf(t, plan, 2)))
		}
		sum, err := e.run(noCreate)
		r := rowOf(t, sum, 2)
		if !errors.Is(err, onboard.ErrSomeFailed) || r.Outcome != onboard.Failed || !strings.Contains(r.Error, "no account for zed@example.org") {
			t.Fatalf("import: %v %s", err, describe(r))
		}
		p, _ := e.project("engines")
		if !e.hasRole("member", bob.ID, p.ID) {
			t.Error("bob, who has an account, was not added")
		}
		if _, ok := e.user("zed@example.org"); ok {
			t.Error("zed was created")
		}
	})
}

// An account kaizen created whose welcome was never queued (a run died in
// between) gets a fresh temporary password and its link; a PIN already
// removed from the sheet fails the row instead.
func TestSeamUnwelcomedAccount(t *testing.T) {
	eachSeamBackend(t, func(t *testing.T, b seamBackend) {
		e := newSeamEnv(t, b)
		p := e.createProject("engines", cloud.KaizenTag, cloud.OwnerTag("ada@example.org"))
		u := e.createUser("ada@example.org", "ada@example.org")
		e.write(row("ada@example.org", "engines"))
		plan := e.mustRun(dryRun)
		if r := rowOf(t, plan, 2); !changed(r, "would mail ada@example.org a set-password link") || r.Plan.Members[0].Create {
			t.Errorf("plan = %s", describe(r))
		}
		sum := e.mustRun()
		r := rowOf(t, sum, 2)
		if r.UserID != u.ID || r.ProjectID != p.ID || !changed(r, "queued a set-password link for ada@example.org") {
			t.Errorf("row 2 = %s", describe(r))
		}
		links := e.setpass.links()
		if len(links) != 1 || links[0].userID != u.ID || links[0].temp == "" {
			t.Fatalf("links = %+v", links)
		}
		if f, ok := e.id.(interface{ Password(string) string }); ok && f.Password(u.ID) != links[0].temp {
			t.Error("the link's temporary password is not the account's")
		}

		// Another such account, its row's PIN gone.
		e2 := newSeamEnv(t, b)
		e2.createProject("mills", cloud.KaizenTag, cloud.OwnerTag("bea@example.org"))
		e2.createUser("bea@example.org", "bea@example.org")
		e2.write(row("bea@example.org", "mills", cols.PIN, ""))
		sum2, err := e2.run()
		if r := rowOf(t, sum2, 2); !errors.Is(err, onboard.ErrSomeFailed) && r.Outcome != onboard.Failed {
			t.Errorf("row without a PIN = %s, %v", describe(r), err)
		}
	})
}

// Invalid and rejected rows, and --user / --project filters.
func TestSeamInvalidAndFiltered(t *testing.T) {
	eachSeamBackend(t, func(t *testing.T, b seamBackend) {
		e := newSeamEnv(t, b)
		e.write(
			row("not-an-address", "engines"),
			row("ada@example.org", "engines", cols.Timestamp, "3/15/2026 08:00:00"),
			row("bob@example.org", "mills", cols.Timestamp, "3/16/2026 08:00:00"),
			row("cy@example.org", "rejected", cols.Timestamp, "3/17/2026 08:00:00", cols.Approved, "no"),
		)
		sum, err := e.run(func(o *onboard.Options) { o.OnlyUser = "ADA@example.org" })
		if err != nil {
			t.Fatalf("filtered run: %v %+v", err, sum.Rows)
		}
		if len(sum.Rows) != 1 || sum.Rows[0].Row != 3 || sum.Rows[0].Outcome != onboard.Created {
			t.Errorf("filtered rows %+v", sum.Rows)
		}
		if _, ok := e.project("mills"); ok {
			t.Error("the filter let row 4 through")
		}
		sum, err = e.run()
		if !errors.Is(err, onboard.ErrSomeFailed) {
			t.Fatalf("run: %v", err)
		}
		if r := rowOf(t, sum, 2); r.Outcome != onboard.Failed || e.cell(2, cols.Status) == "" {
			t.Errorf("invalid row = %s, status %q", describe(r), e.cell(2, cols.Status))
		}
		if r := rowOf(t, sum, 4); r.Outcome != onboard.Created {
			t.Errorf("row 4 = %s", describe(r))
		}
		again, err := e.run()
		if !errors.Is(err, onboard.ErrSomeFailed) && err != nil {
			t.Fatal(err)
		}
		if r := rowOf(t, again, 2); r.Outcome != onboard.StillInvalid {
			t.Errorf("invalid row again = %s", describe(r))
		}
		if _, err := e.run(func(o *onboard.Options) { o.Strict = true }); !errors.Is(err, onboard.ErrSomeFailed) {
			t.Errorf("strict run: %v, want ErrSomeFailed", err)
		}
	})
}

// A row in a domain that does not exist yet: planned as to be created,
// then created (and audited) by the import.
func TestSeamNewDomain(t *testing.T) {
	eachSeamBackend(t, func(t *testing.T, b seamBackend) {
		e := newSeamEnv(t, b)
		name := e.domain + "-new"
		t.Cleanup(func() {
			if d, err := e.id.FindDomain(t.Context(), name); err == nil {
				_ = e.id.DeleteDomain(t.Context(), d.ID)
			}
		})
		e.write(row("ada@example.org", "engines", cols.Domain, name))
		plan := e.mustRun(dryRun)
		if r := rowOf(t, plan, 2); !changed(r, "would create domain", name) || r.Outcome != onboard.Created {
			t.Fatalf("plan = %s", describe(r))
		}
		if _, err := e.id.FindDomain(t.Context(), name); !errors.Is(err, cloud.ErrNoDomain) {
			t.Fatalf("plan made the domain: %v", err)
		}
		sum := e.mustRun()
		d, err := e.id.FindDomain(t.Context(), name)
		if err != nil {
			t.Fatal(err)
		}
		p, ok, err := e.id.FindProject(t.Context(), d.ID, "engines")
		if err != nil || !ok || rowOf(t, sum, 2).ProjectID != p.ID {
			t.Errorf("project in the new domain: %+v %v %v", p, ok, err)
		}
		evs, err := e.store.Events(t.Context(), e.opts.Now().Add(-1e12), d.ID, 10)
		if err != nil || len(evs) != 1 || evs[0].Action != "domain.create" {
			t.Errorf("audit of the domain: %+v %v", evs, err)
		}
	})
}
