package drift_test

// Check on each identity backend: the in-memory fake (always, no servers)
// and the real Keystone (skipped without one, failing under CI=true), from
// the same test code. Quotas are kept in memory on both: the quota
// services are TestDriftReportedThenRepaired's.

import (
	"context"
	"crypto/rand"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kaizen-onboard/kaizen/internal/cloud"
	"github.com/kaizen-onboard/kaizen/internal/cloud/cloudtest"
	"github.com/kaizen-onboard/kaizen/internal/config"
	"github.com/kaizen-onboard/kaizen/internal/drift"
	"github.com/kaizen-onboard/kaizen/internal/sheet"
	"github.com/kaizen-onboard/kaizen/internal/signup"
	"github.com/kaizen-onboard/kaizen/internal/store"
	"github.com/kaizen-onboard/kaizen/internal/testenv"
)

// backends are the identity implementations every test below runs on.
var backends = []struct {
	name string
	new  func(t *testing.T) cloud.Identity
}{
	{"fake", func(t *testing.T) cloud.Identity { return cloudtest.New() }},
	{"keystone", func(t *testing.T) cloud.Identity { return cloud.NewKeystone(testenv.Keystone(t).Identity) }},
}

// eachBackend runs fn in a parallel subtest per backend.
func eachBackend(t *testing.T, fn func(t *testing.T, id cloud.Identity)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			fn(t, b.new(t))
		})
	}
}

// memQuotas is a quota service in memory: a project's quotas are what was
// set, and only those are "managed".
type memQuotas struct {
	mu    sync.Mutex
	sets  map[string]cloud.QuotaSet
	fail  error // Apply's error, when set
	calls int   // Apply calls
}

func (q *memQuotas) Get(ctx context.Context, projectID string) (cloud.QuotaSet, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return maps.Clone(q.sets[projectID]), nil
}

func (q *memQuotas) Apply(ctx context.Context, projectID string, want cloud.QuotaSet) ([]string, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.calls++
	if q.fail != nil {
		return nil, q.fail
	}
	if q.sets[projectID] == nil {
		q.sets[projectID] = cloud.QuotaSet{}
	}
	maps.Copy(q.sets[projectID], want)
	return want.Keys(), nil
}

func (q *memQuotas) set(projectID, k string, v int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.sets[projectID][k] = v
}

// world is what an import of three rows leaves: Ada's project engines
// (row 2, cores 8), Bob joining it (row 3), Cy's project gone (row 4), the
// member role held by each on their project, engines' quota record.
type world struct {
	t        *testing.T
	ks       cloud.Ops
	domainID string
	domain   string
	member   string
	projects map[string]cloud.Project
	users    map[string]cloud.User
	quotas   *memQuotas
	st       store.Store
	path     string
	rows     [][]string
	now      time.Time
}

var header = func() []string {
	c := config.DefaultSheetColumns()
	return []string{c.Timestamp, c.Email, c.FirstName, c.LastName, c.PIN, c.ProjectName, c.ExistingProject,
		c.QuotaPreset, "vCPUs", c.Approved, c.Status, c.ProcessedAt, c.UserID, c.ProjectID, c.Domain}
}()

func newWorld(t *testing.T, id cloud.Identity) *world {
	t.Helper()
	ctx := t.Context()
	var b [5]byte
	_, _ = rand.Read(b[:])
	w := &world{t: t, ks: cloud.Ops{Identity: id}, projects: map[string]cloud.Project{}, users: map[string]cloud.User{},
		quotas: &memQuotas{sets: map[string]cloud.QuotaSet{}}, now: time.Date(2026, 3, 15, 9, 0, 0, 0, time.UTC)}
	d, err := id.CreateDomain(ctx, "kzt-drift-"+hex.EncodeToString(b[:]), "kaizen drift test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := id.DeleteDomain(ctx, d.ID); err != nil && !errors.Is(err, cloud.ErrNotFound) {
			t.Errorf("cleanup: %v", err)
		}
	})
	w.domainID, w.domain = d.ID, d.Name
	if w.member, err = id.RoleID(ctx, "member"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []struct{ name, owner string }{{"engines", "ada@example.org"}, {"gone", "cy@example.org"}} {
		pr, _, err := w.ks.EnsureProject(ctx, cloud.ProjectSpec{DomainID: d.ID, Name: p.name, Owner: p.owner})
		if err != nil {
			t.Fatal(err)
		}
		w.projects[p.name] = pr
	}
	for _, u := range []struct{ email, project string }{{"ada@example.org", "engines"}, {"bob@example.org", "engines"}, {"cy@example.org", "gone"}} {
		w.users[u.email] = w.addUser(u.email, u.project)
	}
	want := maps.Clone(presets["small"])
	want["cores"] = 8
	w.quotas.sets[w.projects["engines"].ID] = maps.Clone(want)
	w.quotas.sets[w.projects["gone"].ID] = maps.Clone(presets["small"])
	w.st, err = store.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "kaizen.db"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.st.Close() })
	// Import records the quotas of engines; gone's project predates records.
	if err := w.st.PutQuotaRecord(ctx, store.QuotaRecord{ProjectID: w.projects["engines"].ID, Quotas: want,
		ChangedAt: w.now, Change: "import: row 2"}); err != nil {
		t.Fatal(err)
	}
	w.path = filepath.Join(t.TempDir(), "signups.csv")
	w.rows = [][]string{header,
		w.row("3/14/2026 14:05:09", "ada@example.org", "engines", "", "small", "8"),
		w.row("3/14/2026 15:00:00", "bob@example.org", "engines", "yes", "", ""),
		w.row("3/14/2026 16:00:00", "cy@example.org", "gone", "", "small", ""),
	}
	w.writeSheet()
	return w
}

// addUser creates a user holding member on the project, as import does.
func (w *world) addUser(email, project string) cloud.User {
	w.t.Helper()
	u, _, err := w.ks.EnsureUser(w.t.Context(), cloud.UserSpec{DomainID: w.domainID, Name: email, Email: email, Owner: email})
	if err != nil {
		w.t.Fatal(err)
	}
	if err := w.ks.AssignRole(w.t.Context(), cloud.Grant{UserID: u.ID, RoleID: w.member, ProjectID: w.projects[project].ID}); err != nil {
		w.t.Fatal(err)
	}
	return u
}

// row is a processed sign-up row as import leaves it.
func (w *world) row(stamp, email, project, existing, preset, cores string) []string {
	var userID, projectID string
	if u, ok := w.users[email]; ok && existing == "" {
		userID = u.ID
	}
	if p, ok := w.projects[project]; ok {
		projectID = p.ID
	}
	return []string{stamp, email, "First", "Last", "1234", project, existing, preset, cores, "yes", "done", "2026-03-14 16:05:00", userID, projectID, ""}
}

func (w *world) writeSheet() {
	w.t.Helper()
	f, err := os.Create(w.path)
	if err != nil {
		w.t.Fatal(err)
	}
	if err := csv.NewWriter(f).WriteAll(w.rows); err != nil {
		w.t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) options(apply bool) drift.Options {
	return drift.Options{
		Request: signup.Options{QuotaColumns: map[string]string{"vCPUs": "cores"}, DefaultDomain: w.domain,
			DefaultPreset: "small", Presets: []string{"small"}},
		Presets: presets, Apply: apply, Actor: "test-admin", Source: "csv:" + w.path,
		Now: func() time.Time { return w.now },
	}
}

func (w *world) deps(id drift.Identity) drift.Deps {
	return drift.Deps{Identity: id, Quotas: w.quotas, Sheet: sheet.NewCSV(w.path), Store: w.st}
}

func (w *world) check(apply bool) drift.Report {
	w.t.Helper()
	rep, err := drift.Check(w.t.Context(), w.deps(w.ks), w.options(apply))
	if err != nil {
		w.t.Fatalf("Check: %v", err)
	}
	return rep
}

func (w *world) hasMember(email, project string) bool {
	w.t.Helper()
	has, err := w.ks.HasRole(w.t.Context(), cloud.Grant{UserID: w.users[email].ID, RoleID: w.member, ProjectID: w.projects[project].ID})
	if err != nil {
		w.t.Fatal(err)
	}
	return has
}

func (w *world) repairEvents(target string) []store.Event {
	w.t.Helper()
	evs, err := w.st.Events(w.t.Context(), time.Time{}, target, 0)
	if err != nil {
		w.t.Fatal(err)
	}
	var out []store.Event
	for _, ev := range evs {
		if strings.HasPrefix(ev.Action, "repair.") {
			out = append(out, ev)
		}
	}
	return out
}

func kinds(rep drift.Report) []string {
	var out []string
	for _, d := range rep.Drift {
		out = append(out, d.Kind+":"+d.Resource+d.User)
	}
	slices.Sort(out)
	return out
}

func TestCheckInStep(t *testing.T) {
	eachBackend(t, func(t *testing.T, id cloud.Identity) {
		w := newWorld(t, id)
		for _, apply := range []bool{false, true} {
			rep := w.check(apply)
			if len(rep.Drift) != 0 || rep.Rows != 3 || rep.Projects != 2 || rep.Users != 3 || rep.Unreadable != 0 || rep.Apply != apply {
				t.Fatalf("apply %v, right after the import: %+v", apply, rep)
			}
			if !rep.Started.Equal(w.now) || !rep.Ended.Equal(w.now) {
				t.Errorf("report times %v, %v; want the clock's %v", rep.Started, rep.Ended, w.now)
			}
		}
		// --apply backfilled gone's record from its row; nothing else.
		rec, err := w.st.GetQuotaRecord(t.Context(), w.projects["gone"].ID)
		if err != nil || !maps.Equal(rec.Quotas, presets["small"]) || rec.Change != "validate: from row 4" {
			t.Errorf("gone's backfilled record = %+v, %v", rec, err)
		}
		if evs := w.repairEvents(""); len(evs) != 0 {
			t.Errorf("repairs of nothing: %+v", evs)
		}
	})
}

// TestCheckReportsThenRepairs is TestDriftReportedThenRepaired's story on
// each backend.
func TestCheckReportsThenRepairs(t *testing.T) {
	eachBackend(t, func(t *testing.T, id cloud.Identity) {
		w := newWorld(t, id)
		ctx := t.Context()
		engines, gone := w.projects["engines"].ID, w.projects["gone"].ID
		if _, err := id.UnassignRole(ctx, cloud.Grant{UserID: w.users["bob@example.org"].ID, RoleID: w.member, ProjectID: engines}); err != nil {
			t.Fatal(err)
		}
		w.quotas.set(engines, "cores", 50)
		w.quotas.set(engines, "port", 500)
		if err := id.DeleteProject(ctx, gone); err != nil {
			t.Fatal(err)
		}
		wantKinds := []string{"project-missing:", "quota-differs:cores", "quota-differs:port", "role-missing:bob@example.org"}
		rep := w.check(false)
		if got := kinds(rep); !slices.Equal(got, wantKinds) || rep.Unrepaired() != 4 {
			t.Fatalf("drift = %v (%+v), want %v", got, rep.Drift, wantKinds)
		}
		for _, d := range rep.Drift {
			switch d.Kind {
			case drift.QuotaDiffers:
				if d.Resource == "cores" && (*d.Got != 50 || *d.Want != 8 || d.Row != 2 || d.ProjectID != engines || !d.Repairable ||
					!strings.Contains(d.Detail, "its store record")) {
					t.Errorf("cores drift = %+v", d)
				}
			case drift.RoleMissing:
				if d.Row != 3 || !d.Repairable || d.ProjectID != engines || d.Project != "engines" {
					t.Errorf("role drift = %+v", d)
				}
			case drift.ProjectMissing:
				if d.Row != 4 || d.Repairable || !strings.Contains(d.Detail, "not recreated") {
					t.Errorf("project drift = %+v", d)
				}
			}
		}
		// A report changes nothing.
		if w.hasMember("bob@example.org", "engines") || w.quotas.calls != 0 {
			t.Error("the report repaired")
		}

		rep = w.check(true)
		if got := kinds(rep); !slices.Equal(got, wantKinds) || rep.Unrepaired() != 1 {
			t.Fatalf("--apply: %+v, want all but the missing project repaired", rep.Drift)
		}
		if !w.hasMember("bob@example.org", "engines") {
			t.Error("Bob's role was not assigned again")
		}
		if got, _ := w.quotas.Get(ctx, engines); got["cores"] != 8 || got["port"] != 33 {
			t.Errorf("quotas after --apply: %v", got)
		}
		var actions []string
		for _, ev := range w.repairEvents(engines) {
			actions = append(actions, ev.Action)
			if ev.Actor != "test-admin" || ev.Source != "validate csv:"+w.path || !ev.At.Equal(w.now) {
				t.Errorf("repair event %+v", ev)
			}
			switch ev.Action {
			case "repair.quota.set":
				if ev.Details["cores"] != "50 -> 8" || ev.Details["port"] != "500 -> 33" {
					t.Errorf("repair.quota.set details %v", ev.Details)
				}
			case "repair.role.assign":
				if ev.Details["role"] != "member" || ev.Details["user"] != w.users["bob@example.org"].ID || ev.Details["row"] != "3" {
					t.Errorf("repair.role.assign details %v", ev.Details)
				}
			}
		}
		if slices.Sort(actions); !slices.Equal(actions, []string{"repair.quota.set", "repair.role.assign"}) {
			t.Errorf("repair events = %v", actions)
		}
		if _, ok, _ := id.FindProject(ctx, w.domainID, "gone"); ok {
			t.Error("--apply recreated the deleted project")
		}
		if got := kinds(w.check(false)); !slices.Equal(got, []string{"project-missing:"}) {
			t.Errorf("after the repair: %v", got)
		}

		// A user deleted behind the tool's back is reported, not recreated.
		if err := id.DeleteUser(ctx, w.users["bob@example.org"].ID); err != nil {
			t.Fatal(err)
		}
		rep = w.check(true)
		if got := kinds(rep); !slices.Equal(got, []string{"project-missing:", "user-missing:bob@example.org"}) || rep.Unrepaired() != 2 {
			t.Errorf("after deleting Bob: %v", rep.Drift)
		}
		if us, _ := id.UsersNamed(ctx, w.domainID, "bob@example.org"); len(us) != 0 {
			t.Error("--apply recreated Bob")
		}
	})
}

// TestCheckNamesTakenOver: a project or user deleted and made again under
// the same name is not the one kaizen made; it is reported, not repaired.
func TestCheckNamesTakenOver(t *testing.T) {
	eachBackend(t, func(t *testing.T, id cloud.Identity) {
		w := newWorld(t, id)
		ctx := t.Context()
		if err := id.DeleteProject(ctx, w.projects["gone"].ID); err != nil {
			t.Fatal(err)
		}
		other, err := id.CreateProject(ctx, cloud.NewProject{DomainID: w.domainID, Name: "gone"})
		if err != nil {
			t.Fatal(err)
		}
		if err := id.DeleteUser(ctx, w.users["ada@example.org"].ID); err != nil {
			t.Fatal(err)
		}
		// Made elsewhere, in another case: still Ada's name.
		ada2, err := id.CreateUser(ctx, cloud.NewUser{DomainID: w.domainID, Name: "Ada@Example.org"})
		if err != nil {
			t.Fatal(err)
		}
		rep := w.check(true)
		if got := kinds(rep); !slices.Equal(got, []string{"project-missing:", "user-missing:ada@example.org"}) || rep.Unrepaired() != 2 {
			t.Fatalf("drift = %v (%+v)", got, rep.Drift)
		}
		for _, d := range rep.Drift {
			if !strings.Contains(d.Detail, "another took its name") || d.Repairable {
				t.Errorf("%s: %+v", d.Kind, d)
			}
			if d.Kind == drift.ProjectMissing && !strings.Contains(d.Detail, other.ID) {
				t.Errorf("the detail does not name the project now there: %s", d.Detail)
			}
			if d.Kind == drift.UserMissing && !strings.Contains(d.Detail, ada2.ID) {
				t.Errorf("the detail does not name the user now there: %s", d.Detail)
			}
		}
		// Bob (row 3) is still checked on engines: he holds his role.
		if rep.Users != 1 || rep.Projects != 1 {
			t.Errorf("checked %d users, %d projects; want Bob on engines", rep.Users, rep.Projects)
		}
	})
}

func TestCheckRowsThatNoLongerMatch(t *testing.T) {
	eachBackend(t, func(t *testing.T, id cloud.Identity) {
		w := newWorld(t, id)
		c := config.DefaultSheetColumns()
		domainCol := slices.Index(header, c.Domain)
		missingDomain := w.row("3/14/2026 17:00:00", "dee@example.org", "elsewhere", "", "small", "")
		missingDomain[domainCol] = w.domain + "-deleted"
		again := w.row("3/14/2026 17:30:00", "dan@example.org", "elsewhere2", "", "small", "")
		again[domainCol] = w.domain + "-deleted"
		unreadable := w.row("3/14/2026 18:00:00", "eve@example.org", "big", "", "huge", "")
		notDone := w.row("3/14/2026 19:00:00", "fay@example.org", "later", "", "small", "")
		notDone[slices.Index(header, c.Status)] = ""
		w.rows = append(w.rows, missingDomain, again, unreadable, notDone)
		w.writeSheet()
		rep := w.check(false)
		if got := kinds(rep); !slices.Equal(got, []string{"domain-missing:", "domain-missing:"}) {
			t.Fatalf("drift = %v (%+v)", got, rep.Drift)
		}
		if d := rep.Drift[0]; d.Row != 5 || !strings.Contains(d.Detail, w.domain+"-deleted") || d.Repairable {
			t.Errorf("domain drift = %+v", d)
		}
		if rep.Rows != 5 || rep.Unreadable != 1 {
			t.Errorf("rows checked %d (want 5: not the unprocessed or unreadable), unreadable %d (want 1)", rep.Rows, rep.Unreadable)
		}
	})
}

// failingAssign is a Keystone that refuses to assign roles.
type failingAssign struct{ drift.Identity }

var errRefused = errors.New("refused by the test")

func (failingAssign) AssignRole(ctx context.Context, g cloud.Grant) error { return errRefused }

func TestCheckFailedRepairs(t *testing.T) {
	eachBackend(t, func(t *testing.T, id cloud.Identity) {
		w := newWorld(t, id)
		ctx := t.Context()
		engines := w.projects["engines"].ID
		if _, err := id.UnassignRole(ctx, cloud.Grant{UserID: w.users["bob@example.org"].ID, RoleID: w.member, ProjectID: engines}); err != nil {
			t.Fatal(err)
		}
		w.quotas.set(engines, "cores", 50)
		w.quotas.fail = errRefused
		rep, err := drift.Check(ctx, w.deps(failingAssign{w.ks}), w.options(true))
		if err != nil {
			t.Fatal(err)
		}
		if got := kinds(rep); !slices.Equal(got, []string{"quota-differs:cores", "role-missing:bob@example.org"}) || rep.Unrepaired() != 2 {
			t.Fatalf("drift = %v (%+v)", got, rep.Drift)
		}
		for _, d := range rep.Drift {
			if d.Repaired || !d.Repairable || !strings.Contains(d.RepairError, errRefused.Error()) {
				t.Errorf("a failed repair: %+v", d)
			}
		}
		if evs := w.repairEvents(""); len(evs) != 0 {
			t.Errorf("failed repairs were audited: %+v", evs)
		}
		if w.hasMember("bob@example.org", "engines") {
			t.Error("the role was assigned")
		}
	})
}

type brokenSheet struct{}

func (brokenSheet) Read(ctx context.Context) (*sheet.Table, error) { return nil, errRefused }

func TestCheckFails(t *testing.T) {
	eachBackend(t, func(t *testing.T, id cloud.Identity) {
		w := newWorld(t, id)
		tests := []struct {
			name string
			run  func(ctx context.Context) error
			want error
		}{
			{"an import role missing", func(ctx context.Context) error {
				o := w.options(false)
				o.Roles = []string{"member", "kzt-no-such-role"}
				_, err := drift.Check(ctx, w.deps(w.ks), o)
				return err
			}, cloud.ErrNoRole},
			{"the sheet unreadable", func(ctx context.Context) error {
				d := w.deps(w.ks)
				d.Sheet = brokenSheet{}
				_, err := drift.Check(ctx, d, w.options(false))
				return err
			}, errRefused},
			{"cancelled", func(ctx context.Context) error {
				ctx, cancel := context.WithCancel(ctx)
				cancel()
				_, err := drift.Check(ctx, w.deps(w.ks), w.options(true))
				return err
			}, context.Canceled},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				if err := tc.run(t.Context()); !errors.Is(err, tc.want) {
					t.Errorf("Check: %v, want an error wrapping %v", err, tc.want)
				}
			})
		}
		if w.quotas.calls != 0 {
			t.Error("a failed check repaired")
		}
	})
}
