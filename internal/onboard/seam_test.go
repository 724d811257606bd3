package onboard_test

// The seam harness: onboard's tests on two backends from the same test
// code, the in-memory Keystone of cloudtest with quotas in memory (no
// servers, `make unit`), and the real dev Keystone (`make test`; skipped
// without it, failing under CI=true). Both with a SQLite store, the real
// outbox delivering over SMTP to an in-process server, a recording setpass
// and the sheet as a CSV file. Keystone's requests are counted on both.

import (
	"context"
	"encoding/csv"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kaizen-onboard/kaizen/internal/cloud"
	"github.com/kaizen-onboard/kaizen/internal/cloud/cloudtest"
	"github.com/kaizen-onboard/kaizen/internal/mail"
	"github.com/kaizen-onboard/kaizen/internal/onboard"
	"github.com/kaizen-onboard/kaizen/internal/setpass/client"
	"github.com/kaizen-onboard/kaizen/internal/sheet"
	"github.com/kaizen-onboard/kaizen/internal/signup"
	"github.com/kaizen-onboard/kaizen/internal/store"
	"github.com/kaizen-onboard/kaizen/internal/testenv"
	"github.com/kaizen-onboard/kaizen/internal/testenv/mailtest"
)

// seamBackend is where a seam test's Keystone lives.
type seamBackend struct {
	name string
	fake bool
	// shared, when set, is a Keystone holding domain already (benchmarks).
	shared identity
	domain cloud.Domain
}

// eachSeamBackend runs fn in a parallel subtest per backend.
func eachSeamBackend(t *testing.T, fn func(t *testing.T, b seamBackend)) {
	for _, b := range []seamBackend{{name: "fake", fake: true}, {name: "keystone"}} {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			fn(t, b)
		})
	}
}

// identity is what the tests use of Keystone for setup and assertions:
// all of it (onboard itself gets only onboard.Identity).
type identity = cloud.Identity

// countingIdentity counts the Keystone requests onboard makes through it.
type countingIdentity struct {
	onboard.Identity
	reads, writes atomic.Int64
}

func (c *countingIdentity) read()  { c.reads.Add(1) }
func (c *countingIdentity) write() { c.writes.Add(1) }

func (c *countingIdentity) FindDomain(ctx context.Context, name string) (cloud.Domain, error) {
	c.read()
	return c.Identity.FindDomain(ctx, name)
}
func (c *countingIdentity) CreateDomain(ctx context.Context, name, desc string) (cloud.Domain, error) {
	c.write()
	return c.Identity.CreateDomain(ctx, name, desc)
}
func (c *countingIdentity) RoleID(ctx context.Context, name string) (string, error) {
	c.read()
	return c.Identity.RoleID(ctx, name)
}
func (c *countingIdentity) CreateRole(ctx context.Context, name, desc string) (cloud.RoleRef, error) {
	c.write()
	return c.Identity.CreateRole(ctx, name, desc)
}
func (c *countingIdentity) RoleImplies(ctx context.Context, roleID string) ([]cloud.RoleRef, error) {
	c.read()
	return c.Identity.RoleImplies(ctx, roleID)
}
func (c *countingIdentity) HasRole(ctx context.Context, g cloud.Grant) (bool, error) {
	c.read()
	return c.Identity.HasRole(ctx, g)
}
func (c *countingIdentity) AssignRole(ctx context.Context, g cloud.Grant) error {
	c.write()
	return c.Identity.AssignRole(ctx, g)
}
func (c *countingIdentity) FindProject(ctx context.Context, domainID, name string) (cloud.Project, bool, error) {
	c.read()
	return c.Identity.FindProject(ctx, domainID, name)
}
func (c *countingIdentity) ListProjects(ctx context.Context, f cloud.ProjectFilter) ([]cloud.Project, error) {
	c.read()
	return c.Identity.ListProjects(ctx, f)
}
func (c *countingIdentity) CreateProject(ctx context.Context, p cloud.NewProject) (cloud.Project, error) {
	c.write()
	return c.Identity.CreateProject(ctx, p)
}
func (c *countingIdentity) UsersNamed(ctx context.Context, domainID, name string) ([]cloud.User, error) {
	c.read()
	return c.Identity.UsersNamed(ctx, domainID, name)
}
func (c *countingIdentity) ListUsers(ctx context.Context, domainID string) ([]cloud.User, error) {
	c.read()
	return c.Identity.ListUsers(ctx, domainID)
}
func (c *countingIdentity) CreateUser(ctx context.Context, u cloud.NewUser) (cloud.User, error) {
	c.write()
	return c.Identity.CreateUser(ctx, u)
}
func (c *countingIdentity) SetPassword(ctx context.Context, userID, password string) error {
	c.write()
	return c.Identity.SetPassword(ctx, userID, password)
}

func (c *countingIdentity) reset() { c.reads.Store(0); c.writes.Store(0) }

// memQuotas are the quota services in memory: what was set, by project.
type memQuotas struct {
	mu   sync.Mutex
	sets map[string]cloud.QuotaSet
}

func (q *memQuotas) Apply(ctx context.Context, projectID string, want cloud.QuotaSet) ([]string, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.sets[projectID] == nil {
		q.sets[projectID] = cloud.QuotaSet{}
	}
	maps.Copy(q.sets[projectID], want)
	return []string{cloud.ServiceCompute}, nil
}

func (q *memQuotas) get(projectID string) cloud.QuotaSet {
	q.mu.Lock()
	defer q.mu.Unlock()
	return maps.Clone(q.sets[projectID])
}

// issued is one set-password link a recordingSetpass issued.
type issued struct{ userID, temp, pin string }

// recordingSetpass issues links, recording each.
type recordingSetpass struct {
	mu     sync.Mutex
	issued []issued
}

func (s *recordingSetpass) Issue(ctx context.Context, userID, temp, pin string) (client.Issued, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.issued = append(s.issued, issued{userID, temp, pin})
	return client.Issued{URL: "https://setpass.example.org/?t=" + userID, ExpiresAt: time.Date(2026, 3, 20, 0, 0, 0, 0, time.UTC)}, nil
}

func (s *recordingSetpass) links() []issued {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.issued)
}

// seamEnv is one seam test's world.
type seamEnv struct {
	t        testing.TB
	id       identity // setup and assertions, uncounted
	count    *countingIdentity
	domainID string
	domain   string
	quotas   *memQuotas
	setpass  *recordingSetpass
	store    store.Store
	outbox   *mail.Outbox
	smtp     *testenv.SMTPServer
	csv      string
	opts     onboard.Options
}

func newSeamEnv(t testing.TB, b seamBackend) *seamEnv {
	t.Helper()
	ctx := t.Context()
	e := &seamEnv{t: t, quotas: &memQuotas{sets: map[string]cloud.QuotaSet{}}, setpass: &recordingSetpass{}}
	switch {
	case b.shared != nil:
		e.id, e.domainID, e.domain = b.shared, b.domain.ID, b.domain.Name
	case b.fake:
		f := cloudtest.New()
		e.id = f
		d, err := f.CreateDomain(ctx, "kzt-onboard", "")
		if err != nil {
			t.Fatal(err)
		}
		e.domainID, e.domain = d.ID, d.Name
	default:
		ks := testenv.Keystone(t)
		e.id = cloud.NewKeystone(ks.Identity)
		e.domainID, e.domain = ks.Domain(t)
	}
	e.count = &countingIdentity{Identity: e.id}
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	dir := t.TempDir()
	var err error
	if e.store, err = store.Open(ctx, "sqlite://"+filepath.Join(dir, "kaizen.db"), logger); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.store.Close() })
	e.smtp = testenv.NewSMTP(t)
	e.outbox = mailtest.Outbox(t, e.store, e.smtp, logger)
	e.csv = filepath.Join(dir, "signups.csv")
	e.opts = onboard.Options{
		Request: signup.Options{
			QuotaColumns:  map[string]string{ramColumn: signup.RAMGB},
			DefaultDomain: e.domain, DefaultPreset: "small", Presets: slices.Sorted(maps.Keys(presets)),
		},
		Presets: presets, CreateAdditional: true, Workers: 4, Actor: actor,
		Source: "csv:" + e.csv, DefaultDomain: e.domain, FlushEvery: 5 * time.Millisecond,
		Now: func() time.Time { return time.Date(2026, 3, 15, 12, 0, 0, 0, time.UTC) }, Logger: logger,
	}
	return e
}

// write puts the header and rows into the CSV sheet.
func (e *seamEnv) write(rows ...formRow) {
	e.t.Helper()
	hdr := append(slices.Clone(header), cols.Domain)
	grid := [][]string{hdr}
	for _, r := range rows {
		cells := make([]string, len(hdr))
		for i, h := range hdr {
			cells[i] = r[h]
		}
		grid = append(grid, cells)
	}
	f, err := os.Create(e.csv)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := csv.NewWriter(f).WriteAll(grid); err != nil {
		e.t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		e.t.Fatal(err)
	}
}

// grid reads the CSV sheet back.
func (e *seamEnv) grid() [][]string {
	e.t.Helper()
	f, err := os.Open(e.csv)
	if err != nil {
		e.t.Fatal(err)
	}
	defer f.Close()
	g, err := csv.NewReader(f).ReadAll()
	if err != nil {
		e.t.Fatal(err)
	}
	return g
}

// cell is sheet row n's value in column name.
func (e *seamEnv) cell(n int, name string) string {
	e.t.Helper()
	g := e.grid()
	i := slices.Index(g[0], name)
	if i < 0 || n-1 >= len(g) || i >= len(g[n-1]) {
		return ""
	}
	return g[n-1][i]
}

func (e *seamEnv) deps() onboard.Deps {
	return onboard.Deps{Identity: e.count, Quotas: e.quotas, Setpass: e.setpass, Mail: e.outbox,
		Sheet: sheet.NewCSV(e.csv), Store: e.store}
}

// run imports (or plans, with DryRun) with e's options changed by mods,
// then delivers the queued mail.
func (e *seamEnv) run(mods ...func(*onboard.Options)) (onboard.Summary, error) {
	e.t.Helper()
	opts := e.opts
	for _, m := range mods {
		m(&opts)
	}
	run := onboard.Apply
	if opts.DryRun {
		run = onboard.Plan
	}
	sum, err := run(e.t.Context(), e.deps(), opts)
	if rep, derr := e.outbox.Drain(e.t.Context()); derr != nil || len(rep.Failures) > 0 {
		e.t.Fatalf("draining the outbox: %v %+v", derr, rep.Failures)
	}
	return sum, err
}

func (e *seamEnv) mustRun(mods ...func(*onboard.Options)) onboard.Summary {
	e.t.Helper()
	sum, err := e.run(mods...)
	if err != nil {
		e.t.Fatalf("Run: %v; rows %+v", err, sum.Rows)
	}
	return sum
}

func dryRun(o *onboard.Options) { o.DryRun = true }

func (e *seamEnv) project(name string) (cloud.Project, bool) {
	e.t.Helper()
	p, ok, err := e.id.FindProject(e.t.Context(), e.domainID, name)
	if err != nil {
		e.t.Fatal(err)
	}
	return p, ok
}

func (e *seamEnv) user(name string) (cloud.User, bool) {
	e.t.Helper()
	us, err := e.id.UsersNamed(e.t.Context(), e.domainID, name)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, u := range us {
		if strings.EqualFold(u.Name, name) {
			return u, true
		}
	}
	return cloud.User{}, false
}

func (e *seamEnv) countProjects() int {
	e.t.Helper()
	ps, err := e.id.ListProjects(e.t.Context(), cloud.ProjectFilter{DomainID: e.domainID})
	if err != nil {
		e.t.Fatal(err)
	}
	return len(ps)
}

func (e *seamEnv) countUsers() int {
	e.t.Helper()
	us, err := e.id.ListUsers(e.t.Context(), e.domainID)
	if err != nil {
		e.t.Fatal(err)
	}
	return len(us)
}

// hasRole reports whether user u holds role on project p directly.
func (e *seamEnv) hasRole(role, userID, projectID string) bool {
	e.t.Helper()
	id, err := e.id.RoleID(e.t.Context(), role)
	if err != nil {
		e.t.Fatal(err)
	}
	has, err := e.id.HasRole(e.t.Context(), cloud.Grant{UserID: userID, RoleID: id, ProjectID: projectID})
	if err != nil {
		e.t.Fatal(err)
	}
	return has
}

// queuedKinds are the kinds of the messages in the outbox, by key.
func (e *seamEnv) queued() map[string]string {
	e.t.Helper()
	ms, err := e.store.Messages(e.t.Context(), 1000)
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[string]string{}
	for _, m := range ms {
		out[m.Key] = m.Kind
	}
	return out
}

// createUser makes an account outside kaizen (owner "" ) or as kaizen does
// (owner set), returning it.
func (e *seamEnv) createUser(name, owner string) cloud.User {
	e.t.Helper()
	u, err := e.id.CreateUser(e.t.Context(), cloud.NewUser{DomainID: e.domainID, Name: name, Email: name, Owner: owner, Password: "their own password 1"})
	if err != nil {
		e.t.Fatal(err)
	}
	return u
}

func (e *seamEnv) createProject(name string, tags ...string) cloud.Project {
	e.t.Helper()
	p, err := e.id.CreateProject(e.t.Context(), cloud.NewProject{DomainID: e.domainID, Name: name, Tags: tags})
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

func rowOf(t *testing.T, sum onboard.Summary, n int) onboard.RowResult {
	t.Helper()
	for _, r := range sum.Rows {
		if r.Row == n {
			return r
		}
	}
	t.Fatalf("no row %d in %+v", n, sum.Rows)
	return onboard.RowResult{}
}

func changed(res onboard.RowResult, parts ...string) bool {
	return slices.ContainsFunc(res.Changes, func(c string) bool {
		for _, p := range parts {
			if !strings.Contains(c, p) {
				return false
			}
		}
		return true
	})
}

func describe(res onboard.RowResult) string { return fmt.Sprintf("%+v", res) }
