package quotareq_test

// The harness of the tests, on two backends from the same test code: the
// real Keystone and the real quota APIs of Nova, Cinder and Neutron
// (scripts/dev-keystone), or the in-memory Keystone of cloudtest and
// quotas in memory (no servers). Both with a SQLite store, the real outbox
// delivering over SMTP with STARTTLS to an in-process server, and the
// request worksheet as a CSV file. Assertions read the services' own APIs.

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"mime"
	"mime/multipart"
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
	"github.com/kaizen-onboard/kaizen/internal/mail"
	"github.com/kaizen-onboard/kaizen/internal/quotareq"
	"github.com/kaizen-onboard/kaizen/internal/sheet"
	"github.com/kaizen-onboard/kaizen/internal/store"
	"github.com/kaizen-onboard/kaizen/internal/testenv"
	"github.com/kaizen-onboard/kaizen/internal/testenv/mailtest"
)

// presets are far from the services' defaults, so that a set quota cannot
// be mistaken for an untouched one.
var presets = map[string]map[string]int64{
	"small": {"instances": 3, "cores": 6, "ram": 8192, "volumes": 4, "gigabytes": 120,
		"network": 3, "subnet": 3, "router": 2, "floatingip": 1, "port": 33},
	"medium": {"instances": 6, "cores": 12, "ram": 16384, "volumes": 8, "gigabytes": 240,
		"network": 6, "subnet": 6, "router": 4, "floatingip": 2, "port": 66},
	"large": {"instances": 12, "cores": 24, "ram": 32768, "volumes": 16, "gigabytes": 480,
		"network": 12, "subnet": 12, "router": 8, "floatingip": 4, "port": 132},
}

var cols = config.DefaultQuotaRequestColumns()

// header is the worksheet's header: Kaizen's columns and the default quota
// columns.
var header = []string{cols.Timestamp, cols.Email, cols.Project, cols.Duration, cols.EndDate, cols.Preset,
	"Instances", "vCPUs", "RAM (GB)", "Volumes", "Ports", cols.Approved, cols.Comment, cols.Status, cols.ProcessedAt}

// ask is one worksheet row by header.
type ask map[string]string

// request is an approved request of email for project; kv are header,
// value pairs that change it.
func request(stamp, email, project string, kv ...string) ask {
	r := ask{cols.Timestamp: stamp, cols.Email: email, cols.Project: project, cols.Approved: "yes"}
	for i := 0; i+1 < len(kv); i += 2 {
		r[kv[i]] = kv[i+1]
	}
	return r
}

// backend is where a test's cloud lives.
type backend struct {
	name string
	fake bool
}

var (
	fakeBackend     = backend{"fake", true}
	keystoneBackend = backend{"keystone", false}
)

// eachBackend runs fn in a parallel subtest per backend.
func eachBackend(t *testing.T, fn func(t *testing.T, b backend)) {
	for _, b := range []backend{fakeBackend, keystoneBackend} {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			fn(t, b)
		})
	}
}

// quotaService is cloud.Quotas as the tests use it.
type quotaService interface {
	quotareq.Quotas
	Reset(ctx context.Context, projectID string) error
}

// memQuotas is the quota services in memory: every project starts with
// their defaults, and Get reports the ten quotas kaizen manages.
type memQuotas struct {
	mu   sync.Mutex
	sets map[string]cloud.QuotaSet
}

var serviceDefaults = cloud.QuotaSet{"instances": 10, "cores": 20, "ram": 51200, "volumes": 10, "gigabytes": 1000,
	"network": 100, "subnet": 100, "router": 10, "floatingip": 50, "port": 500}

func (q *memQuotas) Get(ctx context.Context, projectID string) (cloud.QuotaSet, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	got := maps.Clone(serviceDefaults)
	maps.Copy(got, q.sets[projectID])
	return got, nil
}

func (q *memQuotas) Apply(ctx context.Context, projectID string, want cloud.QuotaSet) ([]string, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.sets[projectID] == nil {
		q.sets[projectID] = cloud.QuotaSet{}
	}
	var changed []string
	for _, k := range want.Keys() {
		if _, ok := serviceDefaults[k]; !ok {
			return nil, fmt.Errorf("no service manages quota %q", k)
		}
		q.sets[projectID][k] = want[k]
		changed = append(changed, k)
	}
	return changed, nil
}

func (q *memQuotas) Reset(ctx context.Context, projectID string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.sets, projectID)
	return nil
}

type env struct {
	t *testing.T
	// ks is the real Keystone, nil on the fake backend.
	ks       *testenv.KeystoneEnv
	id       cloud.Ops
	domainID string
	domain   string
	quotas   quotaService
	// read reads a project's quotas from the services themselves, for
	// assertions.
	read         func(projectID string) map[string]int64
	memberRoleID string

	store  store.Store
	outbox *mail.Outbox
	smtp   *testenv.SMTPServer
	csv    string

	mu   sync.Mutex
	now  time.Time
	opts quotareq.Options
}

func newEnv(t *testing.T, b backend) *env {
	t.Helper()
	ctx := t.Context()
	e := &env{t: t, now: time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)}
	var err error
	if b.fake {
		e.id = cloud.Ops{Identity: cloudtest.New()}
		d, err := e.id.CreateDomain(ctx, "kzt-quotareq", "")
		if err != nil {
			t.Fatal(err)
		}
		e.domainID, e.domain = d.ID, d.Name
		q := &memQuotas{sets: map[string]cloud.QuotaSet{}}
		e.quotas = q
		e.read = func(projectID string) map[string]int64 {
			got, _ := q.Get(ctx, projectID)
			return got
		}
	} else {
		e.ks = testenv.Keystone(t)
		for _, svc := range []string{cloud.ServiceCompute, cloud.ServiceBlockStorage, cloud.ServiceNetwork} {
			testenv.RequireQuotaService(t, svc)
		}
		e.id = cloud.Ops{Identity: cloud.NewKeystone(e.ks.Identity)}
		e.domainID, e.domain = e.ks.Domain(t)
		direct := e.ks.QuotaClients(t)
		e.read = func(projectID string) map[string]int64 { return direct.Get(t, projectID) }
		own := testenv.Keystone(t) // the tool's own admin session
		if e.quotas, err = cloud.NewQuotas(ctx, &cloud.Clients{Provider: own.Identity.ProviderClient, Identity: own.Identity, Endpoint: direct.Endpoint},
			map[string]string{cloud.ServiceCompute: cloud.MethodQuotaSets, cloud.ServiceBlockStorage: cloud.MethodQuotaSets, cloud.ServiceNetwork: cloud.MethodQuotaSets}); err != nil {
			t.Fatalf("NewQuotas: %v", err)
		}
	}
	if e.memberRoleID, err = e.id.RoleID(ctx, "member"); err != nil {
		t.Fatal(err)
	}
	// The services keep a deleted project's quotas: reset those of the
	// domain's projects before Domain's cleanup deletes them.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		ps, err := e.id.ListProjects(ctx, cloud.ProjectFilter{DomainID: e.domainID})
		if err != nil {
			t.Errorf("cleanup: %v", err)
			return
		}
		for _, p := range ps {
			if err := e.quotas.Reset(ctx, p.ID); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
	})

	dir := t.TempDir()
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	if e.store, err = store.Open(ctx, "sqlite://"+filepath.Join(dir, "kaizen.db"), logger); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.store.Close() })
	e.smtp = testenv.NewSMTP(t)
	e.outbox = mailtest.Outbox(t, e.store, e.smtp, logger)

	e.csv = filepath.Join(dir, "requests.csv")
	order, err := quotareq.OrderPresets(presets, nil)
	if err != nil {
		t.Fatal(err)
	}
	e.opts = quotareq.Options{
		Parse: quotareq.ParseOptions{QuotaColumns: config.Defaults().QuotaRequests.QuotaColumns,
			DefaultDomain: e.domain, Presets: presets},
		Rules:  quotareq.Rules{Presets: presets, Order: order, Days: 30, Threshold: 0.1},
		Actor:  "test-admin",
		Source: "csv:" + e.csv, Now: e.clock, Logger: logger, DomainID: e.domainID,
	}
	return e
}

func (e *env) clock() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.now
}

func (e *env) setNow(t time.Time) {
	e.mu.Lock()
	e.now = t
	e.mu.Unlock()
}

func (e *env) deps() quotareq.Deps {
	f := sheet.NewCSV(e.csv)
	return quotareq.Deps{Identity: e.id, Quotas: e.quotas, Mail: e.outbox, Sheet: f, Store: e.store}
}

// run runs the requests with e's options changed by mods, then delivers
// the mail.
func (e *env) run(mods ...func(*quotareq.Options)) (quotareq.Summary, error) {
	e.t.Helper()
	opts := e.opts
	for _, m := range mods {
		m(&opts)
	}
	sum, err := quotareq.Run(e.t.Context(), e.deps(), opts)
	e.drain()
	return sum, err
}

// revert runs RevertExpired, then delivers the mail.
func (e *env) revert() (quotareq.Summary, error) {
	e.t.Helper()
	sum, err := quotareq.RevertExpired(e.t.Context(), e.deps(), e.opts)
	e.drain()
	return sum, err
}

func (e *env) drain() {
	e.t.Helper()
	rep, err := e.outbox.Drain(e.t.Context())
	if err != nil || len(rep.Failures) > 0 {
		e.t.Fatalf("draining the outbox: %v %+v", err, rep.Failures)
	}
}

// write replaces the worksheet with rows.
func (e *env) write(rows ...ask) {
	e.t.Helper()
	f, err := os.Create(e.csv)
	if err != nil {
		e.t.Fatal(err)
	}
	w := csv.NewWriter(f)
	_ = w.Write(header)
	for _, r := range rows {
		for k := range r {
			if !slices.Contains(header, k) {
				e.t.Fatalf("row has a column %q the header lacks", k)
			}
		}
		cells := make([]string, len(header))
		for i, h := range header {
			cells[i] = r[h]
		}
		_ = w.Write(cells)
	}
	w.Flush()
	if err := errorsJoin(w.Error(), f.Close()); err != nil {
		e.t.Fatal(err)
	}
}

func errorsJoin(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// cell reads the worksheet's row n (header is 1) under a header.
func (e *env) cell(n int, name string) string {
	e.t.Helper()
	tbl, err := sheet.NewCSV(e.csv).Read(e.t.Context())
	if err != nil {
		e.t.Fatal(err)
	}
	r, ok := tbl.Row(n)
	if !ok {
		e.t.Fatalf("no row %d", n)
	}
	return tbl.Get(r, name)
}

// setCell edits one cell, as a person would.
func (e *env) setCell(n int, name, value string) {
	e.t.Helper()
	tbl, err := sheet.NewCSV(e.csv).Read(e.t.Context())
	if err != nil {
		e.t.Fatal(err)
	}
	r, _ := tbl.Row(n)
	if _, err := sheet.NewCSV(e.csv).WriteChecked(e.t.Context(), n,
		sheet.Identity{Timestamp: tbl.Get(r, cols.Timestamp), Email: tbl.Get(r, cols.Email)}, map[string]string{name: value}); err != nil {
		e.t.Fatal(err)
	}
}

// project creates a kaizen project in the domain with quotas q (as import
// would have set them; nil leaves the defaults).
func (e *env) project(name string, q map[string]int64, tags ...string) cloud.Project {
	e.t.Helper()
	p, err := e.id.CreateProject(e.t.Context(), cloud.NewProject{
		Name: name, DomainID: e.domainID, Tags: append([]string{cloud.KaizenTag}, tags...),
	})
	if err != nil {
		e.t.Fatalf("creating project %s: %v", name, err)
	}
	if q != nil {
		e.setQuotas(p.ID, q)
	}
	return p
}

// setQuotas changes quotas behind the tool's back.
func (e *env) setQuotas(projectID string, q map[string]int64) {
	e.t.Helper()
	if _, err := e.quotas.Apply(e.t.Context(), projectID, q); err != nil {
		e.t.Fatalf("setting quotas: %v", err)
	}
}

// user creates a user with an email attribute and a full name.
func (e *env) user(email, fullName string) cloud.User {
	e.t.Helper()
	u, err := e.id.CreateUser(e.t.Context(), cloud.NewUser{
		Name: email, DomainID: e.domainID, FullName: fullName, Email: email,
	})
	if err != nil {
		e.t.Fatalf("creating user %s: %v", email, err)
	}
	return u
}

// member gives userID the member role on projectID.
func (e *env) member(userID, projectID string) {
	e.t.Helper()
	if err := e.id.AssignRole(e.t.Context(), cloud.Grant{UserID: userID, RoleID: e.memberRoleID, ProjectID: projectID}); err != nil {
		e.t.Fatal(err)
	}
}

// quotaSet reads a project's quotas from Nova, Cinder and Neutron.
func (e *env) quotaSet(projectID string) map[string]int64 {
	e.t.Helper()
	return e.read(projectID)
}

// wantQuotas fails unless the project has base changed by mods.
func (e *env) wantQuotas(projectID string, base map[string]int64, mods map[string]int64) {
	e.t.Helper()
	want := maps.Clone(base)
	maps.Copy(want, mods)
	if got := e.quotaSet(projectID); !maps.Equal(got, want) {
		e.t.Errorf("quotas of %s = %v, want %v", projectID, got, want)
	}
}

func (e *env) tags(projectID string) []string {
	e.t.Helper()
	p, err := e.id.GetProject(e.t.Context(), projectID)
	if err != nil {
		e.t.Fatal(err)
	}
	return p.Tags
}

func (e *env) events(action string) []store.Event {
	e.t.Helper()
	evs, err := e.store.Events(e.t.Context(), time.Time{}, "", 0)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []store.Event
	for _, ev := range evs {
		if ev.Action == action {
			out = append(out, ev)
		}
	}
	return out
}

func (e *env) record(projectID string) store.QuotaRecord {
	e.t.Helper()
	r, err := e.store.GetQuotaRecord(e.t.Context(), projectID)
	if err != nil {
		e.t.Fatalf("quota record of %s: %v", projectID, err)
	}
	return r
}

// gotMail is a delivered message, parsed.
type gotMail struct {
	To            []string
	Subject, Text string
}

func (e *env) mails() []gotMail {
	e.t.Helper()
	var out []gotMail
	for _, rm := range e.smtp.Messages() {
		msg, err := rm.Parsed()
		if err != nil {
			e.t.Fatal(err)
		}
		var m gotMail
		m.Subject, _ = new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
		to, _ := msg.Header.AddressList("To")
		for _, a := range to {
			m.To = append(m.To, a.Address)
		}
		_, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
		if err != nil {
			e.t.Fatal(err)
		}
		mr := multipart.NewReader(msg.Body, params["boundary"])
		for {
			p, err := mr.NextPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				e.t.Fatal(err)
			}
			b, _ := io.ReadAll(p)
			if pt, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type")); pt == "text/plain" {
				m.Text = strings.ReplaceAll(string(b), "\r\n", "\n")
			}
		}
		out = append(out, m)
	}
	return out
}

// mailsTo lists the delivered messages to addr.
func (e *env) mailsTo(addr string) []gotMail {
	var out []gotMail
	for _, m := range e.mails() {
		if slices.Contains(m.To, addr) {
			out = append(out, m)
		}
	}
	return out
}

func result(t *testing.T, sum quotareq.Summary, row int) quotareq.RowResult {
	t.Helper()
	for _, r := range sum.Rows {
		if r.Row == row {
			return r
		}
	}
	t.Fatalf("no row %d in %+v", row, sum.Rows)
	return quotareq.RowResult{}
}
