package onboard_test

import (
	"context"
	"io"
	"log/slog"
	"maps"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/projects"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/roles"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/users"
	sheetsapi "google.golang.org/api/sheets/v4"

	"github.com/kaizen-onboard/kaizen/internal/cloud"
	"github.com/kaizen-onboard/kaizen/internal/config"
	"github.com/kaizen-onboard/kaizen/internal/mail"
	"github.com/kaizen-onboard/kaizen/internal/onboard"
	"github.com/kaizen-onboard/kaizen/internal/setpass"
	"github.com/kaizen-onboard/kaizen/internal/setpass/client"
	"github.com/kaizen-onboard/kaizen/internal/sheet"
	"github.com/kaizen-onboard/kaizen/internal/signup"
	"github.com/kaizen-onboard/kaizen/internal/store"
	"github.com/kaizen-onboard/kaizen/internal/testenv"
	"github.com/kaizen-onboard/kaizen/internal/testenv/mailtest"
	"github.com/kaizen-onboard/kaizen/internal/testenv/setpasstest"
	"github.com/kaizen-onboard/kaizen/internal/testenv/sheetsfake"
)

const (
	book      = "signups-book"
	worksheet = "Form Responses 1"
	ramColumn = "RAM (GB)"
	actor     = "test-admin"

	// The default row's values.
	defaultStamp = "3/14/2026 14:05:09"
	defaultDate  = "2026-03-14" // requestDate of defaultStamp
	defaultPIN   = "4821"
	newPassword  = "a brand new passphrase 42"
)

// presets are the harness's quota presets: values far from the services'
// defaults, so that a set quota cannot be mistaken for an untouched one.
var presets = map[string]map[string]int64{
	"small": {"instances": 3, "cores": 6, "ram": 8192, "volumes": 4, "gigabytes": 120,
		"network": 3, "subnet": 3, "router": 2, "floatingip": 1, "port": 33},
	"large": {"instances": 30, "cores": 60, "ram": 81920, "volumes": 40, "gigabytes": 1200,
		"network": 9, "subnet": 9, "router": 5, "floatingip": 7, "port": 333},
}

// header is the sheet's header row: the default column names of Kaizen's
// form (config.DefaultSheetColumns), in the form's order, plus one quota
// column.
var header = func() []string {
	c := config.DefaultSheetColumns()
	return []string{c.Timestamp, c.Email, c.FirstName, c.LastName, c.Organization, c.PIN,
		c.ExistingAccount, c.ProjectName, c.ProjectDescription, c.AdditionalUsers, c.ExistingProject,
		c.QuotaPreset, ramColumn, c.DomainManager, c.Approved, c.Status, c.ProcessedAt, c.UserID, c.ProjectID}
}()

var cols = config.DefaultSheetColumns()

// formRow is one sheet row by header; see row.
type formRow map[string]string

// row is an approved sign-up of email for project, with the defaults of
// Ada Lovelace (PIN defaultPIN, preset small); kv are header, value pairs
// that override them ("" clears a cell).
func row(email, project string, kv ...string) formRow {
	r := formRow{
		cols.Timestamp: defaultStamp, cols.Email: email, cols.FirstName: "Ada", cols.LastName: "Lovelace",
		cols.Organization: "Analytical Engines", cols.PIN: defaultPIN, cols.ProjectName: project,
		cols.ProjectDescription: "Difference engine simulations", cols.QuotaPreset: "small",
		cols.Approved: "yes",
	}
	if len(kv)%2 != 0 {
		panic("row: odd number of header, value arguments")
	}
	for i := 0; i < len(kv); i += 2 {
		r[kv[i]] = kv[i+1]
	}
	return r
}

// env is one test's complete environment: its own Keystone domain, the
// real quota services, a fake Google sheet read through the real client,
// an SMTP server fed by the real outbox, and a real setpass service.
type env struct {
	t        *testing.T
	ks       *testenv.KeystoneEnv
	domainID string
	domain   string // name; every row lands in it

	// Onboard gets an admin connection of its own, whose requests are
	// counted (counter), so that a test can tell what a run asked of
	// Keystone and the quota services. Assertions and setup use ks.Identity
	// and the direct quota clients below, uncounted.
	provider     *gophercloud.ProviderClient
	identity     *gophercloud.ServiceClient
	quotas       *cloud.Quotas
	counter      *countingTransport
	direct       testenv.QuotaClients // for assertions
	memberRoleID string

	sheets *sheetsfake.Fake
	sheet  *sheet.Google

	smtp   *testenv.SMTPServer
	store  store.Store // onboard's and the outbox's
	outbox *mail.Outbox

	setpassURL  string // base URL, ends in "/"
	setpassHTTP *http.Client
	setpass     *client.Client

	logger *slog.Logger
	opts   onboard.Options
}

// newEnv builds the environment of one test. Without the dev Keystone or
// one of the quota services the test is skipped, or fails under CI=true;
// the sheet, SMTP and setpass servers run in-process.
func newEnv(t *testing.T) *env {
	t.Helper()
	ks := testenv.Keystone(t)
	for _, svc := range []string{cloud.ServiceCompute, cloud.ServiceBlockStorage, cloud.ServiceNetwork} {
		testenv.RequireQuotaService(t, svc)
	}
	ctx := t.Context()
	e := &env{t: t, ks: ks, logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))}
	e.domainID, e.domain = ks.Domain(t)

	e.direct = ks.QuotaClients(t)
	eo := e.direct.Endpoint
	var err error

	// Onboard's connection: a second admin session, counted.
	own := testenv.Keystone(t)
	e.provider, e.identity = own.Identity.ProviderClient, own.Identity
	e.counter = &countingTransport{base: http.DefaultTransport, hosts: map[string]string{}}
	e.provider.HTTPClient.Transport = e.counter
	services := map[string]string{
		cloud.ServiceCompute: cloud.MethodQuotaSets, cloud.ServiceBlockStorage: cloud.MethodQuotaSets,
		cloud.ServiceNetwork: cloud.MethodQuotaSets,
	}
	if e.quotas, err = cloud.NewQuotas(ctx, &cloud.Clients{Provider: e.provider, Identity: e.identity, Endpoint: eo}, services); err != nil {
		t.Fatalf("NewQuotas: %v", err)
	}
	for svc, c := range map[string]*gophercloud.ServiceClient{"identity": e.identity, cloud.ServiceCompute: e.direct.Compute,
		cloud.ServiceBlockStorage: e.direct.Volume, cloud.ServiceNetwork: e.direct.Network} {
		u, err := url.Parse(c.Endpoint)
		if err != nil {
			t.Fatal(err)
		}
		e.counter.hosts[u.Host] = svc
	}
	e.counter.reset()
	// The quota services keep a deleted project's quotas: reset those of
	// kaizen's projects before Domain's cleanup deletes them.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		pages, err := projects.List(ks.Identity, projects.ListOpts{DomainID: e.domainID, Tags: cloud.KaizenTag}).AllPages(ctx)
		if err != nil {
			t.Errorf("cleanup: listing projects: %v", err)
			return
		}
		ps, _ := projects.ExtractProjects(pages)
		for _, p := range ps {
			if err := e.quotas.Reset(ctx, p.ID); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
	})
	if e.memberRoleID, err = memberRole(t, ks); err != nil {
		t.Fatalf("member role: %v", err)
	}

	// The sheet: the fake, through the real client and service-account flow.
	e.sheets = sheetsfake.New(t)
	e.sheets.AddSpreadsheet(book, "Sign-ups")
	if e.sheet, err = sheet.NewGoogle(ctx, sheet.Options{
		SpreadsheetID: book, Worksheet: worksheet,
		CredentialsJSON: e.sheets.ServiceAccountJSON(), Endpoint: e.sheets.Endpoint(),
	}); err != nil {
		t.Fatalf("NewGoogle: %v", err)
	}

	// Mail: the real outbox on a SQLite store, over SMTP with STARTTLS and
	// AUTH to the in-process server.
	dir := t.TempDir()
	if e.store, err = store.Open(ctx, "sqlite://"+filepath.Join(dir, "kaizen.db"), e.logger); err != nil {
		t.Fatalf("store: %v", err)
	}
	t.Cleanup(func() { e.store.Close() })
	e.smtp = testenv.NewSMTP(t)
	e.outbox = mailtest.Outbox(t, e.store, e.smtp, e.logger)

	// setpass: the real handler on its own store, against the real Keystone.
	provider := e.provider
	sp := setpasstest.New(t, ks, setpasstest.Options{
		Logger: e.logger, Branding: setpass.Branding{CloudName: "Test Cloud", Support: "support@example.org"},
		Token: func(context.Context) (string, error) { return provider.Token(), nil },
	})
	e.setpassURL, e.setpassHTTP, e.setpass = sp.URL, sp.HTTP.Client(), sp.Client

	names := slices.Sorted(maps.Keys(presets))
	e.opts = onboard.Options{
		// Columns left zero: the defaults (the sheet uses them).
		Request: signup.Options{
			QuotaColumns:  map[string]string{ramColumn: signup.RAMGB},
			DefaultDomain: e.domain,
			DefaultPreset: "small",
			Presets:       names, // as signup.OptionsFromConfig does
		},
		Presets:          presets,
		CreateAdditional: true,
		Workers:          4,
		Actor:            actor,
		Source:           "sheet:" + book + "/" + worksheet,
		DefaultDomain:    e.domain,
		FlushEvery:       20 * time.Millisecond,
		Logger:           e.logger,
	}
	return e
}

// in returns e reporting to t, a subtest of e's test.
func (e *env) in(t *testing.T) *env {
	c := *e
	c.t = t
	return &c
}

// write puts the header and rows into the worksheet (once per test).
func (e *env) write(rows ...formRow) {
	e.t.Helper()
	grid := [][]string{header}
	for _, r := range rows {
		for k := range r {
			if !slices.Contains(header, k) {
				e.t.Fatalf("row has a column %q that the header lacks", k)
			}
		}
		cells := make([]string, len(header))
		for i, h := range header {
			cells[i] = r[h]
		}
		grid = append(grid, cells)
	}
	e.sheets.AddSheet(book, worksheet, grid)
}

func (e *env) deps() onboard.Deps {
	return onboard.Deps{Identity: cloud.NewKeystone(e.identity), Quotas: e.quotas, Setpass: e.setpass, Mail: e.outbox, Sheet: e.sheet, Store: e.store}
}

// run runs onboard with the env's options changed by mods, then delivers
// the queued mail to the SMTP server.
func (e *env) run(mods ...func(*onboard.Options)) (onboard.Summary, error) {
	e.t.Helper()
	opts := e.opts
	opts.Request.QuotaColumns = maps.Clone(opts.Request.QuotaColumns)
	for _, m := range mods {
		m(&opts)
	}
	sum, err := onboard.Run(e.t.Context(), e.deps(), opts)
	rep, derr := e.outbox.Drain(e.t.Context())
	if derr != nil || len(rep.Failures) > 0 {
		e.t.Fatalf("draining the outbox: %v %+v", derr, rep.Failures)
	}
	return sum, err
}

// mustRun is run that expects no error.
func (e *env) mustRun(mods ...func(*onboard.Options)) onboard.Summary {
	e.t.Helper()
	sum, err := e.run(mods...)
	if err != nil {
		e.t.Fatalf("Run: %v; summary %+v", err, sum.Rows)
	}
	return sum
}

// result returns the summary row of sheet row n.
func result(t *testing.T, sum onboard.Summary, n int) onboard.RowResult {
	t.Helper()
	for _, r := range sum.Rows {
		if r.Row == n {
			return r
		}
	}
	t.Fatalf("summary has no row %d: %+v", n, sum.Rows)
	return onboard.RowResult{}
}

// cell reads sheet row n (1-based, header is 1) under a header, from the
// fake's own grid.
func (e *env) cell(n int, name string) string {
	e.t.Helper()
	i := slices.Index(header, name)
	if i < 0 {
		e.t.Fatalf("no column %q", name)
	}
	rows := e.sheets.Rows(book, worksheet)
	if n-1 >= len(rows) || i >= len(rows[n-1]) {
		return ""
	}
	return rows[n-1][i]
}

// setCell changes one cell out of band, as a person editing the sheet.
func (e *env) setCell(n int, name, value string) {
	e.t.Helper()
	i := slices.Index(header, name)
	svc := e.sheets.Service(e.t.Context(), e.t)
	rng := "'" + worksheet + "'!" + string(rune('A'+i)) + strconv.Itoa(n)
	if _, err := svc.Spreadsheets.Values.Update(book, rng, &sheetsapi.ValueRange{Values: [][]any{{value}}}).
		ValueInputOption("RAW").Context(e.t.Context()).Do(); err != nil {
		e.t.Fatalf("updating %s: %v", rng, err)
	}
}

// sheetWrites counts the write calls the fake served.
func (e *env) sheetWrites() int {
	n := 0
	for _, r := range e.sheets.Requests() {
		switch r.Op {
		case "values.update", "values.batchUpdate", "values.append", "values.clear", "values.batchClear", "spreadsheets.batchUpdate",
			"values.batchUpdateByDataFilter":
			n++
		}
	}
	return n
}

// cloudWrites returns the writes (not reads, not token issuance) that
// onboard's connection sent to Keystone and each quota service since the
// last counter.reset, by service.
func (e *env) cloudWrites() map[string][]string {
	return e.counter.writes()
}

// countingTransport records the requests onboard's admin connection makes.
type countingTransport struct {
	base  http.RoundTripper
	hosts map[string]string // host:port -> service; set up before use

	mu  sync.Mutex
	log map[string][]string // service -> "METHOD path" of each write
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead &&
		!(r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/auth/tokens")) {
		svc := c.hosts[r.URL.Host]
		if svc == "" {
			svc = r.URL.Host
		}
		c.mu.Lock()
		c.log[svc] = append(c.log[svc], r.Method+" "+r.URL.Path)
		c.mu.Unlock()
	}
	return c.base.RoundTrip(r)
}

func (c *countingTransport) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.log = map[string][]string{}
}

func (c *countingTransport) writes() map[string][]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.log)
}

var (
	roleMu       sync.Mutex
	memberRoleID string
)

// memberRole looks the member role up once for the package.
func memberRole(t *testing.T, ks *testenv.KeystoneEnv) (string, error) {
	roleMu.Lock()
	defer roleMu.Unlock()
	if memberRoleID != "" {
		return memberRoleID, nil
	}
	id, err := cloud.RoleID(t.Context(), ks.Identity, "member")
	memberRoleID = id
	return id, err
}

// projects lists the domain's projects straight from Keystone.
func (e *env) projects() []projects.Project {
	e.t.Helper()
	pages, err := projects.List(e.ks.Identity, projects.ListOpts{DomainID: e.domainID}).AllPages(e.t.Context())
	if err != nil {
		e.t.Fatalf("listing projects: %v", err)
	}
	ps, err := projects.ExtractProjects(pages)
	if err != nil {
		e.t.Fatal(err)
	}
	return ps
}

// project returns the domain's project named name, failing without one.
func (e *env) project(name string) projects.Project {
	e.t.Helper()
	for _, p := range e.projects() {
		if p.Name == name {
			return p
		}
	}
	e.t.Fatalf("no project %q in the domain", name)
	return projects.Project{}
}

// users lists the domain's users straight from Keystone.
func (e *env) users() []users.User {
	e.t.Helper()
	pages, err := users.List(e.ks.Identity, users.ListOpts{DomainID: e.domainID}).AllPages(e.t.Context())
	if err != nil {
		e.t.Fatalf("listing users: %v", err)
	}
	us, err := users.ExtractUsers(pages)
	if err != nil {
		e.t.Fatal(err)
	}
	return us
}

// user returns the domain's user named exactly name, failing without one.
func (e *env) user(name string) users.User {
	e.t.Helper()
	for _, u := range e.users() {
		if u.Name == name {
			return u
		}
	}
	e.t.Fatalf("no user %q in the domain (has %v)", name, names(e.users()))
	return users.User{}
}

func names(us []users.User) []string {
	var out []string
	for _, u := range us {
		out = append(out, u.Name)
	}
	return out
}

// roleIDs lists the roles userID (any user: "") holds directly on
// projectID.
func (e *env) roleIDs(userID, projectID string) []string {
	e.t.Helper()
	pages, err := roles.ListAssignments(e.ks.Identity, roles.ListAssignmentsOpts{UserID: userID, ScopeProjectID: projectID}).AllPages(e.t.Context())
	if err != nil {
		e.t.Fatalf("listing role assignments: %v", err)
	}
	as, err := roles.ExtractRoleAssignments(pages)
	if err != nil {
		e.t.Fatal(err)
	}
	var ids []string
	for _, a := range as {
		if (userID == "" || a.User.ID == userID) && a.Scope.Project.ID == projectID {
			ids = append(ids, a.Role.ID)
		}
	}
	return ids
}

// quotaSet reads a project's quotas from Nova, Cinder and Neutron
// themselves, under the preset keys.
func (e *env) quotaSet(projectID string) map[string]int64 {
	e.t.Helper()
	return e.direct.Get(e.t, projectID)
}

// events lists the store's audit trail.
func (e *env) events() []store.Event {
	e.t.Helper()
	evs, err := e.store.Events(e.t.Context(), time.Time{}, "", 0)
	if err != nil {
		e.t.Fatalf("events: %v", err)
	}
	return evs
}

// queued lists the store's outbox.
func (e *env) queued() []store.Message {
	e.t.Helper()
	ms, err := e.store.Messages(e.t.Context(), 0)
	if err != nil {
		e.t.Fatalf("messages: %v", err)
	}
	return ms
}

// createUser makes a user directly in Keystone, as someone other than
// kaizen would (no owner attribute).
func (e *env) createUser(name, password string) users.User {
	e.t.Helper()
	u, err := users.Create(e.t.Context(), e.ks.Identity, users.CreateOpts{
		Name: name, DomainID: e.domainID, Password: password, Extra: map[string]any{"email": name},
	}).Extract()
	if err != nil {
		e.t.Fatalf("creating user %s: %v", name, err)
	}
	return *u
}

// createProject makes a project directly in Keystone, with tags (none:
// not kaizen's).
func (e *env) createProject(name string, tags ...string) projects.Project {
	e.t.Helper()
	p, err := projects.Create(e.t.Context(), e.ks.Identity, projects.CreateOpts{
		Name: name, DomainID: e.domainID, Tags: tags,
	}).Extract()
	if err != nil {
		e.t.Fatalf("creating project %s: %v", name, err)
	}
	return *p
}

// authenticates reports whether Keystone accepts name's password; other
// errors than 401 fail the test.
func (e *env) authenticates(name, password string) bool {
	e.t.Helper()
	_, err := e.ks.AuthenticateUser(e.t.Context(), e.domainID, name, password)
	switch {
	case err == nil:
		return true
	case gophercloud.ResponseCodeIs(err, http.StatusUnauthorized):
		return false
	}
	e.t.Fatalf("authenticating %s: %v", name, err)
	return false
}

// gotMail is a delivered message, parsed.
type gotMail struct {
	To      []string
	Subject string
	Text    string
	HTML    string
}

func (m gotMail) String() string { return "to " + strings.Join(m.To, ",") + ": " + m.Subject }

// mails parses what the SMTP server received.
func (e *env) mails() []gotMail {
	e.t.Helper()
	var out []gotMail
	for _, rm := range e.smtp.Messages() {
		out = append(out, parseMail(e.t, rm))
	}
	return out
}

// mailsTo returns the delivered messages to addr whose subject contains
// subj.
func (e *env) mailsTo(addr, subj string) []gotMail {
	e.t.Helper()
	var out []gotMail
	for _, m := range e.mails() {
		if slices.Contains(m.To, addr) && strings.Contains(m.Subject, subj) {
			out = append(out, m)
		}
	}
	return out
}

// Subjects of the templates (templates/*/subject.txt with "Test Cloud").
const (
	subjWelcome = "account is ready: set your password"
	subjProject = "Your project "
	subjAdded   = "You have been added to"
)

// oneMail returns the single message to addr with subj in its subject.
func (e *env) oneMail(addr, subj string) gotMail {
	e.t.Helper()
	ms := e.mailsTo(addr, subj)
	if len(ms) != 1 {
		e.t.Fatalf("%d messages to %s with subject %q, want 1; all: %v", len(ms), addr, subj, e.mails())
	}
	return ms[0]
}

func parseMail(t *testing.T, rm testenv.ReceivedMessage) gotMail {
	t.Helper()
	msg, err := rm.Parsed()
	if err != nil {
		t.Fatalf("parsing a delivered message: %v", err)
	}
	var m gotMail
	if m.Subject, err = new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject")); err != nil {
		t.Fatalf("subject: %v", err)
	}
	to, err := msg.Header.AddressList("To")
	if err != nil {
		t.Fatalf("To: %v", err)
	}
	for _, a := range to {
		m.To = append(m.To, a.Address)
	}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/alternative" {
		t.Fatalf("content type %q: %v", msg.Header.Get("Content-Type"), err)
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		p, err := mr.NextPart() // undoes quoted-printable
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("reading a part: %v", err)
		}
		b, err := io.ReadAll(p)
		if err != nil {
			t.Fatalf("reading a part: %v", err)
		}
		body := strings.ReplaceAll(string(b), "\r\n", "\n")
		switch pt, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type")); pt {
		case "text/plain":
			m.Text = body
		case "text/html":
			m.HTML = body
		}
	}
	if m.Text == "" || m.HTML == "" {
		t.Fatalf("message %q lacks a text or HTML part", m.Subject)
	}
	return m
}

var linkRE = regexp.MustCompile(`https?://\S+\?token=\S+`)

// link returns the set-password link of a welcome mail; it must point at
// the env's setpass service.
func (e *env) link(m gotMail) string {
	e.t.Helper()
	l := linkRE.FindString(m.Text)
	if l == "" {
		e.t.Fatalf("no link in %q:\n%s", m.Subject, m.Text)
	}
	if !strings.HasPrefix(l, e.setpassURL) {
		e.t.Fatalf("link %s is not on the setpass service %s", l, e.setpassURL)
	}
	if !strings.Contains(m.HTML, `href="`+strings.ReplaceAll(l, "&", "&amp;")+`"`) {
		e.t.Errorf("the HTML part does not link to %s", l)
	}
	return l
}

// completeLink does what the new user does: open the link, then send the
// form with the PIN and a new password. It fails the test unless setpass
// reports success.
func (e *env) completeLink(link, pin, password string) {
	e.t.Helper()
	ctx := e.t.Context()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, link, nil)
	resp, err := e.setpassHTTP.Do(req)
	if err != nil {
		e.t.Fatalf("GET %s: %v", link, err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), `name="pin"`) || !strings.Contains(string(page), `name="password"`) {
		e.t.Fatalf("GET link: %d, want 200 with the password form:\n%s", resp.StatusCode, page)
	}
	u, err := url.Parse(link)
	if err != nil {
		e.t.Fatal(err)
	}
	form := url.Values{"token": {u.Query().Get("token")}, "pin": {pin}, "password": {password}, "confirm": {password}}
	req, _ = http.NewRequestWithContext(ctx, http.MethodPost, e.setpassURL, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", strings.TrimSuffix(e.setpassURL, "/"))
	resp, err = e.setpassHTTP.Do(req)
	if err != nil {
		e.t.Fatalf("POST the form: %v", err)
	}
	page, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("POST the form: %d, want 200:\n%s", resp.StatusCode, page)
	}
}

// actions counts the audit events by action.
func actions(evs []store.Event) map[string]int {
	out := map[string]int{}
	for _, ev := range evs {
		out[ev.Action]++
	}
	return out
}

// hasChange reports whether some change of res contains all of parts.
func hasChange(res onboard.RowResult, parts ...string) bool {
	for _, c := range res.Changes {
		ok := true
		for _, p := range parts {
			if !strings.Contains(c, p) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}
