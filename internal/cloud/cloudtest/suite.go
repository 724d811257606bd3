package cloudtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kaizen-onboard/kaizen/internal/cloud"
)

// Run is the conformance suite of [cloud.Identity]: every implementation
// (the real Keystone through [cloud.Keystone], [Fake]) must pass it
// unchanged. newIdentity returns the implementation for one subtest and a
// cleanup (nil for none). Each subtest works in domains and roles of its
// own, uniquely named, and deletes them at the end, so Run may share a
// Keystone with other tests.
func Run(t *testing.T, newIdentity func(t *testing.T) (cloud.Identity, func())) {
	tests := []struct {
		name string
		fn   func(t *testing.T, e *env)
	}{
		{"Domain/CreateFind", testDomainCreateFind},
		{"Domain/Conflict", testDomainConflict},
		{"Domain/EnsureRace", testDomainEnsureRace},
		{"Domain/Delete", testDomainDelete},
		{"Project/CreateGetFind", testProjectCreateGetFind},
		{"Project/Conflict", testProjectConflict},
		{"Project/List", testProjectList},
		{"Project/Tags", testProjectTags},
		{"Project/EnsureRace", testProjectEnsureRace},
		{"Project/Delete", testProjectDelete},
		{"User/CreateGet", testUserCreateGet},
		{"User/Conflict", testUserConflict},
		{"User/Named", testUsersNamed},
		{"User/EnsureRace", testUserEnsureRace},
		{"User/List", testUserList},
		{"User/PasswordDelete", testUserPasswordDelete},
		{"User/Enabled", testUserEnabled},
		{"Group/CreateDelete", testGroupCreateDelete},
		{"Group/Assignments", testGroupAssignments},
		{"Role/CreateFind", testRoleCreateFind},
		{"Role/EnsureRace", testRoleEnsureRace},
		{"Role/Implies", testRoleImplies},
		{"Role/ManagerCheck", testManagerRoleCheck},
		{"Assignment/AssignRevoke", testAssignRevoke},
		{"Assignment/Missing", testAssignMissing},
		{"Assignment/DirectEffective", testAssignmentsDirectEffective},
		{"Assignment/Domain", testAssignmentsDomain},
		{"Directory", testDirectory},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			id, cleanup := newIdentity(t)
			if cleanup != nil {
				t.Cleanup(cleanup)
			}
			tc.fn(t, &env{Ops: cloud.Ops{Identity: id}, t: t})
		})
	}
}

// env is one subtest's implementation with helpers that create uniquely
// named objects and delete them afterwards.
type env struct {
	cloud.Ops
	t *testing.T
}

func ctx(t *testing.T) context.Context { return t.Context() }

// cleanupCtx is for cleanups, which run after t.Context() is cancelled.
func cleanupCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), time.Minute)
}

func unique(prefix string) string {
	var b [5]byte
	_, _ = rand.Read(b[:])
	return prefix + "-" + hex.EncodeToString(b[:])
}

// domain creates a domain of its own for the test, deleted at the end.
func (e *env) domain() cloud.Domain {
	e.t.Helper()
	d, err := e.CreateDomain(ctx(e.t), unique("kzt-conf"), "kaizen conformance test "+e.t.Name())
	if err != nil {
		e.t.Fatalf("CreateDomain: %v", err)
	}
	e.deleteDomainAtEnd(d.ID)
	return d
}

func (e *env) deleteDomainAtEnd(id string) {
	e.t.Cleanup(func() {
		c, cancel := cleanupCtx()
		defer cancel()
		if err := e.DeleteDomain(c, id); err != nil && !errors.Is(err, cloud.ErrNotFound) {
			e.t.Errorf("cleanup: %v", err)
		}
	})
}

// role creates a global role of its own for the test, deleted at the end.
func (e *env) role(prefix string) cloud.RoleRef {
	e.t.Helper()
	r, err := e.CreateRole(ctx(e.t), unique(prefix), "kaizen conformance test")
	if err != nil {
		e.t.Fatalf("CreateRole: %v", err)
	}
	e.deleteRoleAtEnd(r.ID)
	return r
}

func (e *env) deleteRoleAtEnd(id string) {
	e.t.Cleanup(func() {
		c, cancel := cleanupCtx()
		defer cancel()
		if err := e.DeleteRole(c, id); err != nil && !errors.Is(err, cloud.ErrNotFound) {
			e.t.Errorf("cleanup: %v", err)
		}
	})
}

func (e *env) project(domainID, name string, tags ...string) cloud.Project {
	e.t.Helper()
	p, err := e.CreateProject(ctx(e.t), cloud.NewProject{DomainID: domainID, Name: name, Tags: tags})
	if err != nil {
		e.t.Fatalf("CreateProject(%q): %v", name, err)
	}
	return p
}

func (e *env) user(domainID, name string) cloud.User {
	e.t.Helper()
	u, err := e.CreateUser(ctx(e.t), cloud.NewUser{DomainID: domainID, Name: name})
	if err != nil {
		e.t.Fatalf("CreateUser(%q): %v", name, err)
	}
	return u
}

func wantIs(t *testing.T, what string, err error, targets ...error) {
	t.Helper()
	for _, target := range targets {
		if !errors.Is(err, target) {
			t.Errorf("%s: err = %v, want one wrapping %v", what, err, target)
		}
	}
}

func testDomainCreateFind(t *testing.T, e *env) {
	d := e.domain()
	if d.ID == "" || !d.Enabled || !strings.HasPrefix(d.Name, "kzt-conf-") {
		t.Fatalf("created %+v", d)
	}
	got, err := e.FindDomain(ctx(t), d.Name)
	if err != nil || got != d {
		t.Errorf("FindDomain = %+v, %v; want %+v", got, err, d)
	}
	for _, name := range []string{strings.ToUpper(d.Name), d.Name[:len(d.Name)-1], d.Name + "x", "%"} {
		_, err := e.FindDomain(ctx(t), name)
		wantIs(t, fmt.Sprintf("FindDomain(%q)", name), err, cloud.ErrNoDomain, cloud.ErrNotFound)
	}
}

func testDomainConflict(t *testing.T, e *env) {
	d := e.domain()
	_, err := e.CreateDomain(ctx(t), d.Name, "")
	wantIs(t, "a second domain of the same name", err, cloud.ErrConflict)
	// Names differing in case are distinct names: Keystone's SQL backend
	// compares them as the database does, case-sensitively on SQLite.
	up, err := e.CreateDomain(ctx(t), strings.ToUpper(d.Name), "")
	if err != nil {
		t.Fatalf("a domain named in upper case: %v", err)
	}
	e.deleteDomainAtEnd(up.ID)
	if up.ID == d.ID {
		t.Error("the upper-case domain is the same domain")
	}
	if got, err := e.FindDomain(ctx(t), up.Name); err != nil || got.ID != up.ID {
		t.Errorf("FindDomain(%q) = %+v, %v", up.Name, got, err)
	}
}

func testDomainEnsureRace(t *testing.T, e *env) {
	name := unique("kzt-conf")
	const n = 4
	var wg sync.WaitGroup
	ds := make([]cloud.Domain, n)
	created := make([]bool, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { ds[i], created[i], errs[i] = e.EnsureDomain(ctx(t), name, true) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] == nil && ds[i].ID != "" {
			e.deleteDomainAtEnd(ds[i].ID)
		}
	}
	made := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("EnsureDomain #%d: %v", i, errs[i])
		}
		if ds[i].ID != ds[0].ID {
			t.Errorf("EnsureDomain #%d returned %s, #0 %s", i, ds[i].ID, ds[0].ID)
		}
		if created[i] {
			made++
		}
	}
	if made != 1 {
		t.Errorf("%d calls report creating the domain, want 1", made)
	}
	_, created1, err := e.EnsureDomain(ctx(t), name, true)
	if err != nil || created1 {
		t.Errorf("EnsureDomain of an existing domain: created %v, %v", created1, err)
	}
	_, _, err = e.EnsureDomain(ctx(t), unique("kzt-conf"), false)
	wantIs(t, "EnsureDomain without create", err, cloud.ErrNoDomain)
}

func testDomainDelete(t *testing.T, e *env) {
	d := e.domain()
	p := e.project(d.ID, "p")
	u := e.user(d.ID, "u@example.org")
	if err := e.DeleteDomain(ctx(t), d.ID); err != nil {
		t.Fatal(err)
	}
	_, err := e.FindDomain(ctx(t), d.Name)
	wantIs(t, "FindDomain after delete", err, cloud.ErrNoDomain)
	_, err = e.GetProject(ctx(t), p.ID)
	wantIs(t, "the deleted domain's project", err, cloud.ErrNotFound)
	_, err = e.GetUser(ctx(t), u.ID)
	wantIs(t, "the deleted domain's user", err, cloud.ErrNoUser)
	wantIs(t, "deleting it again", e.DeleteDomain(ctx(t), d.ID), cloud.ErrNotFound)
}

func testProjectCreateGetFind(t *testing.T, e *env) {
	d := e.domain()
	p, err := e.CreateProject(ctx(t), cloud.NewProject{DomainID: d.ID, Name: "Engines", Description: "d", Tags: []string{"kaizen", "x"}})
	if err != nil {
		t.Fatal(err)
	}
	if p.ID == "" || p.Name != "Engines" || p.DomainID != d.ID || !p.Enabled || !slices.Equal(p.Tags, []string{"kaizen", "x"}) {
		t.Errorf("created %+v", p)
	}
	if got, err := e.GetProject(ctx(t), p.ID); err != nil || got.ID != p.ID || !slices.Equal(got.Tags, p.Tags) || got.Name != p.Name {
		t.Errorf("GetProject = %+v, %v", got, err)
	}
	if got, ok, err := e.FindProject(ctx(t), d.ID, "Engines"); err != nil || !ok || got.ID != p.ID {
		t.Errorf("FindProject = %+v, %v, %v", got, ok, err)
	}
	other := e.domain()
	for _, tc := range []struct{ domainID, name string }{{d.ID, "engines"}, {d.ID, "ENGINES"}, {d.ID, "Engine"}, {d.ID, "%"}, {other.ID, "Engines"}} {
		if got, ok, err := e.FindProject(ctx(t), tc.domainID, tc.name); err != nil || ok {
			t.Errorf("FindProject(%q in %s) = %+v, %v, %v; want none", tc.name, tc.domainID, got, ok, err)
		}
	}
	_, err = e.GetProject(ctx(t), "0123456789abcdef0123456789abcdef")
	wantIs(t, "GetProject of a missing ID", err, cloud.ErrNotFound)
	_, err = e.CreateProject(ctx(t), cloud.NewProject{DomainID: "0123456789abcdef0123456789abcdef", Name: "p"})
	// Keystone answers 400 Could not find domain, not 404.
	wantIs(t, "CreateProject in a missing domain", err, cloud.ErrInvalid)
}

func testProjectConflict(t *testing.T, e *env) {
	d, other := e.domain(), e.domain()
	e.project(d.ID, "engines")
	_, err := e.CreateProject(ctx(t), cloud.NewProject{DomainID: d.ID, Name: "engines"})
	wantIs(t, "a second project of the same name", err, cloud.ErrConflict)
	// Unique per domain, and case-sensitively (on SQLite).
	e.project(other.ID, "engines")
	up := e.project(d.ID, "Engines")
	if got, ok, _ := e.FindProject(ctx(t), d.ID, "Engines"); !ok || got.ID != up.ID {
		t.Errorf("FindProject(Engines) = %+v, %v; want %s", got, ok, up.ID)
	}
}

func projectIDs(ps []cloud.Project) []string {
	var ids []string
	for _, p := range ps {
		ids = append(ids, p.ID)
	}
	slices.Sort(ids)
	return ids
}

func sorted(ids ...string) []string {
	ids = slices.Clone(ids)
	slices.Sort(ids)
	return ids
}

func testProjectList(t *testing.T, e *env) {
	d, other := e.domain(), e.domain()
	a := e.project(d.ID, "a", "kaizen", "quota-ends-2026-09-30")
	b := e.project(d.ID, "b", "Kaizen")
	c := e.project(d.ID, "c")
	o := e.project(other.ID, "o", "kaizen")
	tag := unique("kzt-tag")
	x := e.project(other.ID, "x", tag)
	tests := []struct {
		name string
		f    cloud.ProjectFilter
		want []string
	}{
		{"domain", cloud.ProjectFilter{DomainID: d.ID}, sorted(a.ID, b.ID, c.ID)},
		{"domain and tag", cloud.ProjectFilter{DomainID: d.ID, Tag: "kaizen"}, sorted(a.ID)},
		{"tag in another case", cloud.ProjectFilter{DomainID: d.ID, Tag: "KAIZEN"}, nil},
		{"a prefix of a tag", cloud.ProjectFilter{DomainID: d.ID, Tag: "quota-ends-"}, nil},
		{"other domain", cloud.ProjectFilter{DomainID: other.ID, Tag: "kaizen"}, sorted(o.ID)},
		{"tag across domains", cloud.ProjectFilter{Tag: tag}, sorted(x.ID)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ps, err := e.ListProjects(ctx(t), tc.f)
			if err != nil {
				t.Fatal(err)
			}
			if got := projectIDs(ps); !slices.Equal(got, tc.want) {
				t.Errorf("ListProjects(%+v) = %v, want %v", tc.f, got, tc.want)
			}
		})
	}
}

func testProjectTags(t *testing.T, e *env) {
	d := e.domain()
	p := e.project(d.ID, "p", "kaizen")
	tags := func() []string {
		t.Helper()
		got, err := e.GetProject(ctx(t), p.ID)
		if err != nil {
			t.Fatal(err)
		}
		return sorted(got.Tags...)
	}
	steps := []struct {
		name string
		do   func() error
		want []string
	}{
		{"add", func() error { return e.AddProjectTag(ctx(t), p.ID, "quota-ends-2026-09-30") }, []string{"kaizen", "quota-ends-2026-09-30"}},
		{"add in another case", func() error { return e.AddProjectTag(ctx(t), p.ID, "Kaizen") }, []string{"Kaizen", "kaizen", "quota-ends-2026-09-30"}},
		{"remove", func() error { return e.RemoveProjectTag(ctx(t), p.ID, "Kaizen") }, []string{"kaizen", "quota-ends-2026-09-30"}},
		{"remove what is not there", func() error { return e.RemoveProjectTag(ctx(t), p.ID, "nope") }, []string{"kaizen", "quota-ends-2026-09-30"}},
		{"set the quota end it has", func() error {
			return e.SetQuotaEnd(ctx(t), p.ID, []string{"kaizen", "quota-ends-2026-09-30"}, time.Date(2026, 9, 30, 0, 0, 0, 0, time.UTC))
		}, []string{"kaizen", "quota-ends-2026-09-30"}},
		{"set quota end", func() error {
			return e.SetQuotaEnd(ctx(t), p.ID, []string{"kaizen", "quota-ends-2026-09-30"}, time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC))
		}, []string{"kaizen", "quota-ends-2026-12-31"}},
		{"clear quota end", func() error { return e.ClearQuotaEnd(ctx(t), p.ID, []string{"kaizen", "quota-ends-2026-12-31"}) }, []string{"kaizen"}},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if got := tags(); !slices.Equal(got, s.want) {
			t.Fatalf("after %s: tags %v, want %v", s.name, got, s.want)
		}
	}
	// Zed's PUT /projects/P/tags/T is not idempotent: it appends T and
	// refuses the list holding it twice.
	wantIs(t, "adding a tag the project has", e.AddProjectTag(ctx(t), p.ID, "kaizen"), cloud.ErrInvalid)
	if got := tags(); !slices.Equal(got, []string{"kaizen"}) {
		t.Errorf("after the refused add: %v", got)
	}
	_, err := e.CreateProject(ctx(t), cloud.NewProject{DomainID: d.ID, Name: "twice", Tags: []string{"a", "a"}})
	wantIs(t, "creating with a tag twice", err, cloud.ErrInvalid)
	many := make([]string, 81)
	for i := range many {
		many[i] = fmt.Sprintf("t%d", i)
	}
	_, err = e.CreateProject(ctx(t), cloud.NewProject{DomainID: d.ID, Name: "many", Tags: many})
	wantIs(t, "creating with 81 tags", err, cloud.ErrInvalid)
	full := e.project(d.ID, "full", many[:80]...)
	wantIs(t, "an 81st tag", e.AddProjectTag(ctx(t), full.ID, "one-more"), cloud.ErrInvalid)
	wantIs(t, "a tag with a comma", e.AddProjectTag(ctx(t), p.ID, "a,b"), cloud.ErrInvalid)
	_, err = e.CreateProject(ctx(t), cloud.NewProject{DomainID: d.ID, Name: "q", Tags: []string{"a/b"}})
	wantIs(t, "creating with a tag holding a slash", err, cloud.ErrInvalid)
	wantIs(t, "tagging a missing project", e.AddProjectTag(ctx(t), "0123456789abcdef0123456789abcdef", "x"), cloud.ErrNotFound)
	if err := e.RemoveProjectTag(ctx(t), "0123456789abcdef0123456789abcdef", "x"); err != nil {
		t.Errorf("untagging a missing project: %v", err)
	}
}

func testProjectEnsureRace(t *testing.T, e *env) {
	d := e.domain()
	spec := cloud.ProjectSpec{DomainID: d.ID, Name: "engines", Owner: "ada@example.org", Tags: []string{"extra"}}
	const n = 4
	var wg sync.WaitGroup
	ps := make([]cloud.Project, n)
	created := make([]bool, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { ps[i], created[i], errs[i] = e.EnsureProject(ctx(t), spec) })
	}
	wg.Wait()
	made := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("EnsureProject #%d: %v", i, errs[i])
		}
		if ps[i].ID != ps[0].ID {
			t.Errorf("EnsureProject #%d returned %s, #0 %s", i, ps[i].ID, ps[0].ID)
		}
		if created[i] {
			made++
		}
	}
	if made != 1 {
		t.Errorf("%d calls report creating the project, want 1", made)
	}
	if want := sorted(cloud.KaizenTag, cloud.OwnerTag(spec.Owner), "extra"); !slices.Equal(sorted(ps[0].Tags...), want) {
		t.Errorf("tags %v, want %v", ps[0].Tags, want)
	}
	_, _, err := e.EnsureProject(ctx(t), cloud.ProjectSpec{DomainID: d.ID, Name: "engines", Owner: "bob@example.org"})
	wantIs(t, "EnsureProject for another request", err, cloud.ErrProjectTaken)
	e.project(d.ID, "theirs")
	_, _, err = e.EnsureProject(ctx(t), cloud.ProjectSpec{DomainID: d.ID, Name: "theirs", Owner: "ada@example.org"})
	wantIs(t, "EnsureProject of a project not made by kaizen", err, cloud.ErrProjectTaken)
}

func testProjectDelete(t *testing.T, e *env) {
	d := e.domain()
	p := e.project(d.ID, "p")
	u := e.user(d.ID, "u@example.org")
	member, err := e.RoleID(ctx(t), "member")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.AssignRole(ctx(t), cloud.Grant{UserID: u.ID, RoleID: member, ProjectID: p.ID}); err != nil {
		t.Fatal(err)
	}
	if err := e.DeleteProject(ctx(t), p.ID); err != nil {
		t.Fatal(err)
	}
	_, err = e.GetProject(ctx(t), p.ID)
	wantIs(t, "GetProject after delete", err, cloud.ErrNotFound)
	if _, ok, err := e.FindProject(ctx(t), d.ID, "p"); ok || err != nil {
		t.Errorf("FindProject after delete: %v %v", ok, err)
	}
	wantIs(t, "deleting it again", e.DeleteProject(ctx(t), p.ID), cloud.ErrNotFound)
	as, err := e.ListRoleAssignments(ctx(t), cloud.AssignmentFilter{UserID: u.ID})
	if err != nil || len(as) != 0 {
		t.Errorf("the deleted project's assignments remain: %+v, %v", as, err)
	}
}

func testUserCreateGet(t *testing.T, e *env) {
	d := e.domain()
	p := e.project(d.ID, "p")
	u, err := e.CreateUser(ctx(t), cloud.NewUser{DomainID: d.ID, Name: "ada@example.org", Password: "correct horse battery",
		Email: "Ada@Example.org", Owner: "row-2", FullName: "Ada Lovelace", DefaultProjectID: p.ID})
	if err != nil {
		t.Fatal(err)
	}
	want := cloud.User{ID: u.ID, Name: "ada@example.org", DomainID: d.ID, DefaultProjectID: p.ID, Enabled: true,
		Email: "Ada@Example.org", Owner: "row-2", FullName: "Ada Lovelace"}
	if u.ID == "" || u != want {
		t.Errorf("created %+v, want %+v", u, want)
	}
	if got, err := e.GetUser(ctx(t), u.ID); err != nil || got != want {
		t.Errorf("GetUser = %+v, %v; want %+v", got, err, want)
	}
	bare := e.user(d.ID, "bob@example.org")
	if bare.Email != "" || bare.Owner != "" || bare.FullName != "" || bare.DefaultProjectID != "" || !bare.Enabled {
		t.Errorf("a user created with a name only: %+v", bare)
	}
	_, err = e.GetUser(ctx(t), "0123456789abcdef0123456789abcdef")
	wantIs(t, "GetUser of a missing ID", err, cloud.ErrNoUser, cloud.ErrNotFound)
	_, err = e.CreateUser(ctx(t), cloud.NewUser{DomainID: "0123456789abcdef0123456789abcdef", Name: "x@example.org"})
	wantIs(t, "CreateUser in a missing domain", err, cloud.ErrNotFound)
}

func testUserConflict(t *testing.T, e *env) {
	d, other := e.domain(), e.domain()
	ada := e.user(d.ID, "ada@example.org")
	_, err := e.CreateUser(ctx(t), cloud.NewUser{DomainID: d.ID, Name: "ada@example.org"})
	wantIs(t, "a second user of the same name", err, cloud.ErrConflict)
	e.user(other.ID, "ada@example.org")
	// Case-sensitively unique (on SQLite): another tool may make "Ada".
	upper := e.user(d.ID, "Ada@Example.org")
	if u, err := e.FindUser(ctx(t), d.ID, "ADA@example.ORG"); err != nil || u.ID != ada.ID {
		t.Errorf("FindUser with a lower-case one among them = %+v, %v; want %s", u, err, ada.ID)
	}
	e.user(d.ID, "GRACE@example.org")
	e.user(d.ID, "Grace@example.org")
	_, err = e.FindUser(ctx(t), d.ID, "grace@example.org")
	wantIs(t, "FindUser of two mixed-case names", err, cloud.ErrAmbiguousUser)
	_, err = e.FindUser(ctx(t), d.ID, "cy@example.org")
	wantIs(t, "FindUser of nobody", err, cloud.ErrNoUser, cloud.ErrNotFound)
	if got, err := e.UsersNamed(ctx(t), d.ID, "ada@example.org"); err != nil || len(got) != 2 {
		t.Errorf("UsersNamed = %+v, %v; want ada and %s", got, err, upper.ID)
	}
}

func userNames(us []cloud.User) []string {
	var names []string
	for _, u := range us {
		names = append(names, u.Name+"@"+u.DomainID)
	}
	slices.Sort(names)
	return names
}

func testUsersNamed(t *testing.T, e *env) {
	d, other := e.domain(), e.domain()
	for _, name := range []string{"ada@example.org", "Grace@Example.org", "a_b@example.org", "axb@example.org",
		"ada@example.org.uk", "xada@example.org", "ada@example.org@ada@example.org", "100%@example.org"} {
		e.user(d.ID, name)
	}
	e.user(other.ID, "ada@example.org")
	in := func(domainID string, names ...string) []string {
		var out []string
		for _, n := range names {
			out = append(out, n+"@"+domainID)
		}
		return out
	}
	tests := []struct {
		name, typed string
		domainID    string
		want        []string
	}{
		{"percent wildcards", "%@%", d.ID, nil},
		{"underscore wildcards", "_@_", d.ID, nil},
		{"stars", "*@*", d.ID, nil},
		{"a prefix of a real name", "ada@example.or", d.ID, nil},
		{"a suffix of a real name", "da@example.org", d.ID, nil},
		{"percent inside a real name", "ada@exam%", d.ID, nil},
		{"a percent that is part of the name", "100%@example.org", d.ID, in(d.ID, "100%@example.org")},
		{"underscore standing for one letter", "a_b@example.org", d.ID, in(d.ID, "a_b@example.org")},
		{"underscore in another case", "A_B@Example.org", d.ID, in(d.ID, "a_b@example.org")},
		{"exact", "ada@example.org", d.ID, in(d.ID, "ada@example.org")},
		{"upper case", "ADA@EXAMPLE.ORG", d.ID, in(d.ID, "ada@example.org")},
		{"mixed case made elsewhere, typed in lower case", "grace@example.org", d.ID, in(d.ID, "Grace@Example.org")},
		{"mixed case made elsewhere, typed in another case", "gRACE@eXAMPLE.ORG", d.ID, in(d.ID, "Grace@Example.org")},
		{"a name that starts and ends with another", "ada@example.org@ada@example.org", d.ID, in(d.ID, "ada@example.org@ada@example.org")},
		{"nobody", "cy@example.org", d.ID, nil},
		{"other domain", "ADA@example.org", other.ID, in(other.ID, "ada@example.org")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := e.UsersNamed(ctx(t), tc.domainID, tc.typed)
			if err != nil {
				t.Fatal(err)
			}
			if names := userNames(got); !slices.Equal(names, tc.want) {
				t.Errorf("UsersNamed(%q) = %v, want %v", tc.typed, names, tc.want)
			}
		})
	}
	// Every domain: only this test's two ada@example.org are certain, other
	// tests' domains may hold more.
	all, err := e.UsersNamed(ctx(t), "", "Ada@Example.org")
	if err != nil {
		t.Fatal(err)
	}
	var ours []string
	for _, u := range all {
		if u.DomainID == d.ID || u.DomainID == other.ID {
			ours = append(ours, u.Name+"@"+u.DomainID)
		}
	}
	slices.Sort(ours)
	if want := sorted(append(in(d.ID, "ada@example.org"), in(other.ID, "ada@example.org")...)...); !slices.Equal(ours, want) {
		t.Errorf("UsersNamed across domains = %v, want %v", ours, want)
	}
}

func testUserEnsureRace(t *testing.T, e *env) {
	d := e.domain()
	spec := cloud.UserSpec{DomainID: d.ID, Name: "Ada@Example.org", Email: "Ada@Example.org", FullName: "Ada", Owner: "row-2", Password: "temporary-password-1"}
	const n = 4
	var wg sync.WaitGroup
	us := make([]cloud.User, n)
	created := make([]bool, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { us[i], created[i], errs[i] = e.EnsureUser(ctx(t), spec) })
	}
	wg.Wait()
	made := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("EnsureUser #%d: %v", i, errs[i])
		}
		if us[i].ID != us[0].ID {
			t.Errorf("EnsureUser #%d returned %s, #0 %s", i, us[i].ID, us[0].ID)
		}
		if created[i] {
			made++
		}
	}
	if made != 1 {
		t.Errorf("%d calls report creating the user, want 1", made)
	}
	if u := us[0]; u.Name != "ada@example.org" || u.Email != "Ada@Example.org" || u.Owner != "row-2" || u.FullName != "Ada" {
		t.Errorf("ensured %+v", u)
	}
	// An existing user is returned as it is.
	u, created1, err := e.EnsureUser(ctx(t), cloud.UserSpec{DomainID: d.ID, Name: "ADA@example.org", Email: "other@example.org"})
	if err != nil || created1 || u.ID != us[0].ID || u.Email != "Ada@Example.org" {
		t.Errorf("EnsureUser of an existing user = %+v, %v, %v", u, created1, err)
	}
}

func testUserList(t *testing.T, e *env) {
	d, other, empty := e.domain(), e.domain(), e.domain()
	a, b := e.user(d.ID, "a@example.org"), e.user(d.ID, "B@example.org")
	e.user(other.ID, "c@example.org")
	us, err := e.ListUsers(ctx(t), d.ID)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, u := range us {
		ids = append(ids, u.ID)
	}
	if slices.Sort(ids); !slices.Equal(ids, sorted(a.ID, b.ID)) {
		t.Errorf("ListUsers = %v, want %v", ids, sorted(a.ID, b.ID))
	}
	if us, err := e.ListUsers(ctx(t), empty.ID); err != nil || len(us) != 0 {
		t.Errorf("ListUsers of an empty domain = %+v, %v", us, err)
	}
}

func testUserPasswordDelete(t *testing.T, e *env) {
	d := e.domain()
	u := e.user(d.ID, "u@example.org")
	if err := e.SetPassword(ctx(t), u.ID, "another temporary password"); err != nil {
		t.Fatal(err)
	}
	wantIs(t, "SetPassword of a missing user", e.SetPassword(ctx(t), "0123456789abcdef0123456789abcdef", "x-password-1"), cloud.ErrNotFound)
	if err := e.DeleteUser(ctx(t), u.ID); err != nil {
		t.Fatal(err)
	}
	_, err := e.GetUser(ctx(t), u.ID)
	wantIs(t, "GetUser after delete", err, cloud.ErrNoUser)
	wantIs(t, "deleting it again", e.DeleteUser(ctx(t), u.ID), cloud.ErrNotFound)
	if us, err := e.UsersNamed(ctx(t), d.ID, "u@example.org"); err != nil || len(us) != 0 {
		t.Errorf("UsersNamed after delete = %+v, %v", us, err)
	}
}

func testUserEnabled(t *testing.T, e *env) {
	d := e.domain()
	u := e.user(d.ID, "u@example.org")
	for _, enabled := range []bool{false, true, false} {
		if err := e.SetUserEnabled(ctx(t), u.ID, enabled); err != nil {
			t.Fatal(err)
		}
		if got, err := e.GetUser(ctx(t), u.ID); err != nil || got.Enabled != enabled {
			t.Errorf("GetUser after SetUserEnabled(%v) = %+v, %v", enabled, got, err)
		}
		if got, err := e.UsersNamed(ctx(t), d.ID, "U@example.org"); err != nil || len(got) != 1 || got[0].Enabled != enabled {
			t.Errorf("UsersNamed after SetUserEnabled(%v) = %+v, %v", enabled, got, err)
		}
	}
	wantIs(t, "SetUserEnabled of a missing user", e.SetUserEnabled(ctx(t), "0123456789abcdef0123456789abcdef", false), cloud.ErrNotFound)
}

func testGroupCreateDelete(t *testing.T, e *env) {
	d, other := e.domain(), e.domain()
	g, err := e.CreateGroup(ctx(t), d.ID, "engineers")
	if err != nil {
		t.Fatal(err)
	}
	if g.ID == "" || g.Name != "engineers" || g.DomainID != d.ID {
		t.Errorf("created %+v", g)
	}
	_, err = e.CreateGroup(ctx(t), d.ID, "engineers")
	wantIs(t, "a second group of the same name", err, cloud.ErrConflict)
	if _, err := e.CreateGroup(ctx(t), other.ID, "engineers"); err != nil {
		t.Errorf("the same name in another domain: %v", err)
	}
	u := e.user(d.ID, "u@example.org")
	const missing = "0123456789abcdef0123456789abcdef"
	wantIs(t, "adding a missing user", e.AddUserToGroup(ctx(t), g.ID, missing), cloud.ErrNotFound)
	wantIs(t, "adding to a missing group", e.AddUserToGroup(ctx(t), missing, u.ID), cloud.ErrNotFound)
	for range 2 {
		if err := e.AddUserToGroup(ctx(t), g.ID, u.ID); err != nil {
			t.Errorf("AddUserToGroup: %v", err)
		}
	}
	if err := e.DeleteGroup(ctx(t), g.ID); err != nil {
		t.Fatal(err)
	}
	wantIs(t, "deleting it again", e.DeleteGroup(ctx(t), g.ID), cloud.ErrNotFound)
}

func testGroupAssignments(t *testing.T, e *env) {
	d, p, u, _ := e.fixture()
	v := e.user(d.ID, "v@example.org")
	g, err := e.CreateGroup(ctx(t), d.ID, "engineers")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.AddUserToGroup(ctx(t), g.ID, u.ID); err != nil {
		t.Fatal(err)
	}
	a, b := e.role("kzt-conf-a"), e.role("kzt-conf-b")
	if err := e.CreateImpliedRole(ctx(t), a.ID, b.ID); err != nil {
		t.Fatal(err)
	}
	onGroup := cloud.Grant{GroupID: g.ID, RoleID: a.ID, ProjectID: p.ID}
	if err := e.AssignRole(ctx(t), onGroup); err != nil {
		t.Fatal(err)
	}
	if has, err := e.HasRole(ctx(t), onGroup); err != nil || !has {
		t.Errorf("HasRole of the group's assignment = %v, %v", has, err)
	}
	if has, err := e.HasRole(ctx(t), cloud.Grant{UserID: u.ID, RoleID: a.ID, ProjectID: p.ID}); err != nil || has {
		t.Errorf("HasRole of the member, through the group = %v, %v; want false (direct only)", has, err)
	}
	as, err := e.ListRoleAssignments(ctx(t), cloud.AssignmentFilter{ProjectID: p.ID, IncludeNames: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(as) != 1 || as[0].GroupID != g.ID || as[0].UserID != "" || as[0].GroupName != "engineers" || as[0].GroupDomainName != d.Name || as[0].RoleName != a.Name {
		t.Errorf("direct assignments = %+v, want the group's", as)
	}
	if as, err := e.ListRoleAssignments(ctx(t), cloud.AssignmentFilter{UserID: u.ID, ProjectID: p.ID}); err != nil || len(as) != 0 {
		t.Errorf("the member's direct assignments = %+v, %v; want none", as, err)
	}
	as, err = e.ListRoleAssignments(ctx(t), cloud.AssignmentFilter{ProjectID: p.ID, Effective: true})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := assignmentsOf(as), []assignment{{u.ID, a.ID, p.ID, ""}, {u.ID, b.ID, p.ID, ""}}; !slices.Equal(got, sortAssignments(want)) {
		t.Errorf("effective assignments = %v, want %v", got, sortAssignments(want))
	}
	if got, err := e.ProjectMembers(ctx(t), p.ID); err != nil || !slices.Equal(got, []string{u.ID}) {
		t.Errorf("ProjectMembers = %v, %v; want the group's member", got, err)
	}
	for _, tc := range []struct {
		user string
		want bool
	}{{u.ID, true}, {v.ID, false}} {
		if got, err := e.IsProjectMember(ctx(t), tc.user, p.ID); err != nil || got != tc.want {
			t.Errorf("IsProjectMember(%s) = %v, %v; want %v", tc.user, got, err, tc.want)
		}
	}
	if removed, err := e.UnassignRole(ctx(t), onGroup); err != nil || !removed {
		t.Errorf("UnassignRole of the group's = %v, %v", removed, err)
	}
	if got, err := e.ProjectMembers(ctx(t), p.ID); err != nil || len(got) != 0 {
		t.Errorf("ProjectMembers after = %v, %v", got, err)
	}
}

func sortAssignments(as []assignment) []assignment {
	slices.SortFunc(as, func(x, y assignment) int {
		return strings.Compare(x.user+x.role+x.project+x.domain, y.user+y.role+y.project+y.domain)
	})
	return as
}

func testRoleCreateFind(t *testing.T, e *env) {
	r := e.role("kzt-conf-role")
	if id, err := e.RoleID(ctx(t), r.Name); err != nil || id != r.ID {
		t.Errorf("RoleID = %q, %v; want %q", id, err, r.ID)
	}
	_, err := e.CreateRole(ctx(t), r.Name, "")
	wantIs(t, "a second role of the same name", err, cloud.ErrConflict)
	_, err = e.RoleID(ctx(t), r.Name+"-x")
	wantIs(t, "RoleID of a missing role", err, cloud.ErrNoRole, cloud.ErrNotFound)
	for _, name := range []string{"admin", "member", "reader"} {
		if id, err := e.RoleID(ctx(t), name); err != nil || id == "" {
			t.Errorf("the bootstrap role %s: %q, %v", name, id, err)
		}
	}
	if err := e.DeleteRole(ctx(t), r.ID); err != nil {
		t.Fatal(err)
	}
	_, err = e.RoleID(ctx(t), r.Name)
	wantIs(t, "RoleID after delete", err, cloud.ErrNoRole)
	wantIs(t, "deleting it again", e.DeleteRole(ctx(t), r.ID), cloud.ErrNotFound)
}

func testRoleEnsureRace(t *testing.T, e *env) {
	name := unique("kzt-conf-role")
	const n = 4
	var wg sync.WaitGroup
	ids := make([]string, n)
	created := make([]bool, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { ids[i], created[i], errs[i] = e.EnsureRole(ctx(t), name) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] == nil {
			e.deleteRoleAtEnd(ids[i])
		}
	}
	made := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("EnsureRole #%d: %v", i, errs[i])
		}
		if ids[i] != ids[0] {
			t.Errorf("EnsureRole #%d returned %s, #0 %s", i, ids[i], ids[0])
		}
		if created[i] {
			made++
		}
	}
	if made != 1 {
		t.Errorf("%d calls report creating the role, want 1", made)
	}
}

func refNames(rs []cloud.RoleRef) []string {
	var names []string
	for _, r := range rs {
		names = append(names, r.Name)
	}
	return names
}

func testRoleImplies(t *testing.T, e *env) {
	// Bootstrap's rules: admin implies member, member implies reader.
	admin, err := e.RoleID(ctx(t), "admin")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := e.RoleImplies(ctx(t), admin); err != nil || !slices.Contains(refNames(got), "member") {
		t.Errorf("admin implies %v, %v; want member among them", refNames(got), err)
	}
	if got, err := e.ImpliedRoles(ctx(t), admin); err != nil || !slices.Contains(refNames(got), "reader") {
		t.Errorf("admin implies in a chain %v, %v; want reader among them", refNames(got), err)
	}
	a, b, c := e.role("kzt-conf-a"), e.role("kzt-conf-b"), e.role("kzt-conf-c")
	for _, rule := range [][2]cloud.RoleRef{{a, b}, {b, c}, {c, a}} {
		if err := e.CreateImpliedRole(ctx(t), rule[0].ID, rule[1].ID); err != nil {
			t.Fatalf("%s implies %s: %v", rule[0].Name, rule[1].Name, err)
		}
	}
	wantIs(t, "making the same rule twice", e.CreateImpliedRole(ctx(t), a.ID, b.ID), cloud.ErrConflict)
	if got, err := e.RoleImplies(ctx(t), a.ID); err != nil || !slices.Equal(refNames(got), []string{b.Name}) {
		t.Errorf("RoleImplies(a) = %v, %v; want [b]", refNames(got), err)
	}
	// The chain, the cycle back to a followed once.
	if got, err := e.ImpliedRoles(ctx(t), a.ID); err != nil || !slices.Equal(refNames(got), []string{b.Name, c.Name}) {
		t.Errorf("ImpliedRoles(a) = %v, %v; want [b c]", refNames(got), err)
	}
	d := e.role("kzt-conf-d")
	if got, err := e.RoleImplies(ctx(t), d.ID); err != nil || len(got) != 0 {
		t.Errorf("a role implying nothing implies %v, %v", refNames(got), err)
	}
	wantIs(t, "implying admin", e.CreateImpliedRole(ctx(t), d.ID, admin), cloud.ErrForbidden)
	_, err = e.RoleImplies(ctx(t), "0123456789abcdef0123456789abcdef")
	wantIs(t, "RoleImplies of a missing role", err, cloud.ErrNotFound)
	wantIs(t, "implying a missing role", e.CreateImpliedRole(ctx(t), d.ID, "0123456789abcdef0123456789abcdef"), cloud.ErrNotFound)
}

func testManagerRoleCheck(t *testing.T, e *env) {
	a, b := e.role("kzt-conf-mgr"), e.role("kzt-conf-sub")
	if err := e.CreateImpliedRole(ctx(t), a.ID, b.ID); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		role      cloud.RoleRef
		forbidden []string
		refused   bool
	}{
		{"allowed", a, nil, false},
		{"admin by name", cloud.RoleRef{Name: "ADMIN"}, nil, true},
		{"listed", a, []string{strings.ToUpper(a.Name)}, true},
		{"implies a listed role", a, []string{b.Name}, true},
		{"implied by a listed role", b, []string{a.Name}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := e.CheckManagerRole(ctx(t), tc.role.Name, tc.role.ID, tc.forbidden)
			if got := errors.Is(err, cloud.ErrForbiddenRole); got != tc.refused || !tc.refused && err != nil {
				t.Errorf("CheckManagerRole = %v, want refused %v", err, tc.refused)
			}
		})
	}
	name := unique("kzt-conf-manager")
	id, created, err := e.EnsureManagerRole(ctx(t), name, nil)
	if err == nil {
		e.deleteRoleAtEnd(id)
	}
	if err != nil || !created || id == "" {
		t.Errorf("EnsureManagerRole of a new role = %q, %v, %v", id, created, err)
	}
	_, _, err = e.EnsureManagerRole(ctx(t), "admin", nil)
	wantIs(t, "EnsureManagerRole(admin)", err, cloud.ErrForbiddenRole)
}

func (e *env) fixture() (d cloud.Domain, p cloud.Project, u cloud.User, member string) {
	e.t.Helper()
	d = e.domain()
	p = e.project(d.ID, "p")
	u = e.user(d.ID, "u@example.org")
	member, err := e.RoleID(ctx(e.t), "member")
	if err != nil {
		e.t.Fatal(err)
	}
	return d, p, u, member
}

func testAssignRevoke(t *testing.T, e *env) {
	d, p, u, member := e.fixture()
	onProject := cloud.Grant{UserID: u.ID, RoleID: member, ProjectID: p.ID}
	onDomain := cloud.Grant{UserID: u.ID, RoleID: member, DomainID: d.ID}
	has := func(g cloud.Grant) bool {
		t.Helper()
		ok, err := e.HasRole(ctx(t), g)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if has(onProject) || has(onDomain) {
		t.Fatal("a new user holds roles")
	}
	if assigned, err := e.EnsureGrant(ctx(t), onProject); err != nil || !assigned {
		t.Fatalf("EnsureGrant = %v, %v", assigned, err)
	}
	if assigned, err := e.EnsureGrant(ctx(t), onProject); err != nil || assigned {
		t.Errorf("EnsureGrant again = %v, %v; want nothing to do", assigned, err)
	}
	if err := e.AssignRole(ctx(t), onProject); err != nil {
		t.Errorf("AssignRole of what is assigned: %v", err)
	}
	if !has(onProject) || has(onDomain) {
		t.Error("the project role is not held, or held on the domain too")
	}
	if err := e.AssignRole(ctx(t), onDomain); err != nil {
		t.Fatal(err)
	}
	if !has(onDomain) {
		t.Error("the domain role is not held")
	}
	if removed, err := e.UnassignRole(ctx(t), onProject); err != nil || !removed {
		t.Errorf("UnassignRole = %v, %v", removed, err)
	}
	if removed, err := e.UnassignRole(ctx(t), onProject); err != nil || removed {
		t.Errorf("UnassignRole again = %v, %v; want nothing removed", removed, err)
	}
	if has(onProject) || !has(onDomain) {
		t.Error("revoking the project role changed the wrong assignment")
	}
}

func testAssignMissing(t *testing.T, e *env) {
	d, p, u, member := e.fixture()
	const missing = "0123456789abcdef0123456789abcdef"
	tests := []struct {
		name string
		g    cloud.Grant
	}{
		{"user", cloud.Grant{UserID: missing, RoleID: member, ProjectID: p.ID}},
		{"role", cloud.Grant{UserID: u.ID, RoleID: missing, ProjectID: p.ID}},
		{"project", cloud.Grant{UserID: u.ID, RoleID: member, ProjectID: missing}},
		{"domain", cloud.Grant{UserID: u.ID, RoleID: member, DomainID: missing}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wantIs(t, "AssignRole with a missing "+tc.name, e.AssignRole(ctx(t), tc.g), cloud.ErrNotFound)
		})
	}
	_ = d
}

type assignment struct{ user, role, project, domain string }

func assignmentsOf(as []cloud.RoleAssignment) []assignment {
	var out []assignment
	for _, a := range as {
		out = append(out, assignment{a.UserID, a.RoleID, a.ProjectID, a.DomainID})
	}
	slices.SortFunc(out, func(x, y assignment) int {
		return strings.Compare(x.user+x.role+x.project+x.domain, y.user+y.role+y.project+y.domain)
	})
	return out
}

func testAssignmentsDirectEffective(t *testing.T, e *env) {
	d, p, u, _ := e.fixture()
	v := e.user(d.ID, "v@example.org")
	q := e.project(d.ID, "q")
	a, b, c := e.role("kzt-conf-a"), e.role("kzt-conf-b"), e.role("kzt-conf-c")
	for _, rule := range [][2]string{{a.ID, b.ID}, {b.ID, c.ID}} {
		if err := e.CreateImpliedRole(ctx(t), rule[0], rule[1]); err != nil {
			t.Fatal(err)
		}
	}
	for _, g := range []cloud.Grant{{UserID: u.ID, RoleID: a.ID, ProjectID: p.ID}, {UserID: v.ID, RoleID: c.ID, ProjectID: p.ID},
		{UserID: v.ID, RoleID: a.ID, ProjectID: q.ID}, {UserID: u.ID, RoleID: c.ID, DomainID: d.ID}} {
		if err := e.AssignRole(ctx(t), g); err != nil {
			t.Fatal(err)
		}
	}
	sortA := func(as ...assignment) []assignment {
		slices.SortFunc(as, func(x, y assignment) int {
			return strings.Compare(x.user+x.role+x.project+x.domain, y.user+y.role+y.project+y.domain)
		})
		return as
	}
	tests := []struct {
		name string
		f    cloud.AssignmentFilter
		want []assignment
	}{
		{"project, direct", cloud.AssignmentFilter{ProjectID: p.ID},
			sortA(assignment{u.ID, a.ID, p.ID, ""}, assignment{v.ID, c.ID, p.ID, ""})},
		{"project, effective", cloud.AssignmentFilter{ProjectID: p.ID, Effective: true},
			sortA(assignment{u.ID, a.ID, p.ID, ""}, assignment{u.ID, b.ID, p.ID, ""}, assignment{u.ID, c.ID, p.ID, ""}, assignment{v.ID, c.ID, p.ID, ""})},
		{"user on project, effective", cloud.AssignmentFilter{UserID: v.ID, ProjectID: q.ID, Effective: true},
			sortA(assignment{v.ID, a.ID, q.ID, ""}, assignment{v.ID, b.ID, q.ID, ""}, assignment{v.ID, c.ID, q.ID, ""})},
		{"user, direct", cloud.AssignmentFilter{UserID: u.ID},
			sortA(assignment{u.ID, a.ID, p.ID, ""}, assignment{u.ID, c.ID, "", d.ID})},
		{"domain, direct", cloud.AssignmentFilter{DomainID: d.ID}, sortA(assignment{u.ID, c.ID, "", d.ID})},
		{"role, direct", cloud.AssignmentFilter{RoleID: a.ID}, sortA(assignment{u.ID, a.ID, p.ID, ""}, assignment{v.ID, a.ID, q.ID, ""})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			as, err := e.ListRoleAssignments(ctx(t), tc.f)
			if err != nil {
				t.Fatal(err)
			}
			if got := assignmentsOf(as); !slices.Equal(got, tc.want) {
				t.Errorf("ListRoleAssignments(%+v) =\n%v, want\n%v", tc.f, got, tc.want)
			}
		})
	}
	// HEAD checks direct assignments only: b is u's in effect, not directly.
	if has, err := e.HasRole(ctx(t), cloud.Grant{UserID: u.ID, RoleID: b.ID, ProjectID: p.ID}); err != nil || has {
		t.Errorf("HasRole of an implied role = %v, %v; want false", has, err)
	}
	if got, err := e.DirectProjectRoles(ctx(t), p.ID); err != nil || !slices.Equal(got[u.ID], []string{a.ID}) || !slices.Equal(got[v.ID], []string{c.ID}) || len(got) != 2 {
		t.Errorf("DirectProjectRoles = %v, %v", got, err)
	}
	if got, err := e.ProjectMembers(ctx(t), p.ID); err != nil || !slices.Equal(sorted(got...), sorted(u.ID, v.ID)) {
		t.Errorf("ProjectMembers = %v, %v", got, err)
	}
	for _, tc := range []struct {
		user, project string
		want          bool
	}{{u.ID, p.ID, true}, {v.ID, q.ID, true}, {u.ID, q.ID, false}} {
		if got, err := e.IsProjectMember(ctx(t), tc.user, tc.project); err != nil || got != tc.want {
			t.Errorf("IsProjectMember(%s, %s) = %v, %v; want %v", tc.user, tc.project, got, err, tc.want)
		}
	}
}

func testAssignmentsDomain(t *testing.T, e *env) {
	d, p, u, _ := e.fixture()
	mgr := e.role("kzt-conf-mgr")
	other := e.domain()
	w := e.user(other.ID, "w@example.org")
	for _, g := range []cloud.Grant{{UserID: u.ID, RoleID: mgr.ID, DomainID: d.ID}, {UserID: w.ID, RoleID: mgr.ID, DomainID: d.ID},
		{UserID: w.ID, RoleID: mgr.ID, DomainID: other.ID}, {UserID: u.ID, RoleID: mgr.ID, ProjectID: p.ID}} {
		if err := e.AssignRole(ctx(t), g); err != nil {
			t.Fatal(err)
		}
	}
	got, err := e.ListDomainRoleAssignments(ctx(t), mgr.ID, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := []cloud.DomainRoleAssignment{
		{DomainID: d.ID, Domain: d.Name, RoleID: mgr.ID, Role: mgr.Name, UserID: u.ID, User: "u@example.org", UserDomain: d.Name},
		{DomainID: d.ID, Domain: d.Name, RoleID: mgr.ID, Role: mgr.Name, UserID: w.ID, User: "w@example.org", UserDomain: other.Name},
	}
	if !slices.Equal(got, want) {
		t.Errorf("ListDomainRoleAssignments(d) =\n%+v, want\n%+v", got, want)
	}
	all, err := e.ListDomainRoleAssignments(ctx(t), mgr.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 3 {
		t.Errorf("ListDomainRoleAssignments(every domain) = %+v, want the three domain assignments", all)
	}
	if revoked, err := e.UnassignRole(ctx(t), cloud.Grant{UserID: w.ID, RoleID: mgr.ID, DomainID: d.ID}); err != nil || !revoked {
		t.Errorf("UnassignRole = %v, %v", revoked, err)
	}
}

func testDirectory(t *testing.T, e *env) {
	d := e.domain()
	e.project(d.ID, "theirs")
	ada := e.user(d.ID, "Ada@Example.org")
	dir, err := cloud.LoadDirectoryFrom(ctx(t), e, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := dir.Project("theirs"); !ok {
		t.Error("the listed project is not in the directory")
	}
	if u, err := dir.User("ada@example.org"); err != nil || u.ID != ada.ID {
		t.Errorf("dir.User = %+v, %v", u, err)
	}
	// Created behind the directory's back: the create meets the conflict.
	if _, err := e.CreateProject(ctx(t), cloud.NewProject{DomainID: d.ID, Name: "late", Tags: []string{cloud.KaizenTag, cloud.OwnerTag("row-9")}}); err != nil {
		t.Fatal(err)
	}
	p, created, err := dir.EnsureProject(ctx(t), cloud.ProjectSpec{DomainID: d.ID, Name: "late", Owner: "row-9"})
	if err != nil || created {
		t.Errorf("EnsureProject of a project made after the listing = %+v, %v, %v", p, created, err)
	}
	late := e.user(d.ID, "bob@example.org")
	u, created, err := dir.EnsureUser(ctx(t), cloud.UserSpec{DomainID: d.ID, Name: "Bob@example.org"})
	if err != nil || created || u.ID != late.ID {
		t.Errorf("EnsureUser of a user made after the listing = %+v, %v, %v", u, created, err)
	}
	n, created, err := dir.EnsureUser(ctx(t), cloud.UserSpec{DomainID: d.ID, Name: "Cy@example.org"})
	if err != nil || !created || n.Name != "cy@example.org" {
		t.Errorf("EnsureUser of a new user = %+v, %v, %v", n, created, err)
	}
	if got, err := dir.User("CY@example.org"); err != nil || got.ID != n.ID {
		t.Errorf("the created user is not in the directory: %+v, %v", got, err)
	}
}
