package e2e

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/projects"
	"github.com/prometheus/client_golang/prometheus"
	sheetsapi "google.golang.org/api/sheets/v4"

	"github.com/kaizen-onboard/kaizen/internal/app"
	"github.com/kaizen-onboard/kaizen/internal/cloud"
	"github.com/kaizen-onboard/kaizen/internal/config"
	"github.com/kaizen-onboard/kaizen/internal/keyring"
	"github.com/kaizen-onboard/kaizen/internal/mail"
	"github.com/kaizen-onboard/kaizen/internal/onboard"
	"github.com/kaizen-onboard/kaizen/internal/reminder"
	"github.com/kaizen-onboard/kaizen/internal/setpass"
	"github.com/kaizen-onboard/kaizen/internal/setpass/client"
	"github.com/kaizen-onboard/kaizen/internal/store"
	"github.com/kaizen-onboard/kaizen/internal/testenv"
	"github.com/kaizen-onboard/kaizen/internal/testenv/sheetsfake"
	"github.com/kaizen-onboard/kaizen/templates"
)

// secretEnv carries the settings' secret, the one thing kept out of the
// settings file and the database. Once [secrets] keys exist (helper
// "atrest"), this line becomes "KAIZEN_SECRET_KEYS".
const secretEnv = config.SecretKeysEnv

const (
	book      = "signups"
	worksheet = "Form Responses 1"
	actor     = "e2e-admin"
)

// person is one sign-up, and what the test knows about them.
type person struct {
	email, first, last, project, pin string
	userID                           string
}

// world is one backend's complete installation: a Keystone domain, the
// sign-up sheet, the SMTP server, one store shared by addusers, setpass
// and reminders, and setpass serving on a fixed address.
type world struct {
	t          *testing.T
	ks         *testenv.KeystoneEnv
	domainID   string
	domain     string
	smtp       *testenv.SMTPServer
	sheets     *sheetsfake.Fake
	storeURL   string
	sqlitePath string // "" on PostgreSQL
	settings   string // the settings file
	env        map[string]string
	vault      *vault
	logger     *slog.Logger

	setpassURL string
	setpassSrv *httptest.Server
	handler    atomic.Pointer[http.Handler]
	setpass    *setpassProcess // nil while "stopped"

	people map[string]*person // by first name, lower case
	rows   []string           // emails, in sheet order (row n+2)
}

var header = func() []string {
	c := config.DefaultSheetColumns()
	return []string{c.Timestamp, c.Email, c.FirstName, c.LastName, c.Organization, c.PIN,
		c.ExistingAccount, c.ProjectName, c.ProjectDescription, c.AdditionalUsers, c.ExistingProject,
		c.QuotaPreset, c.Approved, c.Status, c.ProcessedAt, c.UserID, c.ProjectID}
}()

// newWorld builds the installation; storeURL is a fresh, empty store.
func newWorld(t *testing.T, storeURL, sqlitePath string) *world {
	t.Helper()
	ks := testenv.Keystone(t)
	for _, svc := range []string{cloud.ServiceCompute, cloud.ServiceBlockStorage, cloud.ServiceNetwork} {
		testenv.RequireQuotaService(t, svc)
	}
	startBuilding() // addusers, for the helpdesk's reset
	w := &world{t: t, ks: ks, storeURL: storeURL, sqlitePath: sqlitePath, vault: newVault(),
		logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelError})),
		people: map[string]*person{}}
	w.domainID, w.domain = ks.Domain(t)
	w.resetQuotasAtCleanup()
	w.smtp = testenv.NewSMTP(t)
	w.sheets = sheetsfake.New(t)
	w.sheets.AddSpreadsheet(book, "Sign-ups")

	// setpass's address is fixed for the whole test: the links in the mail
	// point at it, across the "restart" at the end.
	w.setpassSrv = httptest.NewUnstartedServer(w.vault.tapSetpass(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		h := w.handler.Load()
		if h == nil {
			http.Error(rw, "setpass is stopped", http.StatusServiceUnavailable)
			return
		}
		(*h).ServeHTTP(rw, r)
	})))
	w.setpassSrv.Start()
	t.Cleanup(w.setpassSrv.Close)
	w.setpassURL = w.setpassSrv.URL + "/"

	// The secret: random, at least 32 characters, never in a file that the
	// store's host holds.
	secretKey := rand.Text() + rand.Text()
	w.vault.add(kindKey, secretKey, "the settings' secret")
	w.env = map[string]string{
		secretEnv:                       secretKey,
		"KAIZEN_SMTP_PASSWORD":          w.smtp.Password(),
		"KAIZEN_SETPASS_RESET_PASSWORD": ks.Admin.Password,
	}
	w.writeSettings()

	// Unique names: setpass's /reset looks a name up in every domain.
	tag := strings.ToLower(rand.Text()[:8])
	for _, p := range []*person{
		{email: "ada-" + tag + "@example.org", first: "Ada", last: "Lovelace", project: "engines", pin: "4821"},
		{email: "carol-" + tag + "@example.org", first: "Carol", last: "Shaw", project: "looms", pin: "7310"},
		{email: "dave-" + tag + "@example.org", first: "Dave", last: "Cutler", project: "gears", pin: "5937"},
		{email: "bob-" + tag + "@example.org", first: "Bob", last: "Kahn", project: "mills", pin: "3164"},
	} {
		w.people[strings.ToLower(p.first)] = p
		w.vault.add(kindPIN, p.pin, "the sign-up sheet")
	}
	return w
}

// getenv is the programs' environment: the process's (OS_* of the dev
// Keystone) with the test's KAIZEN_* instead of any the shell has.
func (w *world) getenv(k string) string {
	if v, ok := w.env[k]; ok {
		return v
	}
	if strings.HasPrefix(k, "KAIZEN_") {
		return ""
	}
	return os.Getenv(k)
}

// writeSettings writes the one settings file every program loads, as an
// operator would; secrets come from the environment.
func (w *world) writeSettings() {
	w.t.Helper()
	dir := w.t.TempDir()
	ks := w.ks
	s := fmt.Sprintf(`
[openstack]
domain = %q
admin_project = %q
admin_project_domain = %q
timeout = "60s"

[sheet]
spreadsheet_id = %q
worksheet = %q
credentials_file = %q
endpoint = %q

[setpass]
url = %q
token_ttl = "3d"
rate_limit = 1000
rate_burst = 1000
reset_mode = "link"
reset_min_time = "100ms"
reset_account_limit = 10
reset_user = %q
reset_user_domain = %q

[mail]
transport = "smtp"
from = "Test Cloud <cloud@example.org>"
support = "support@example.org"
helpdesk = "helpdesk@example.org"
cloud_name = "Test Cloud"

[mail.smtp]
host = %q
port = %d
tls = "starttls"
ca_file = %q
username = %q
ehlo_name = "kaizen.test"
pool_size = 2
timeout = "10s"

[store]
url = %q

[quotas]
default_preset = "small"

[quotas.presets.small]
instances = 3
cores = 6
ram = 8192
volumes = 4
gigabytes = 120
network = 3
subnet = 3
router = 2
floatingip = 1
port = 33

[import]
actor = %q
workers = 4

[[reminders.job]]
name = "link-reminder"
kind = "link-reminder"
schedule = "0 10 * * *"
after = "48h"
give_up = "7d"

[[reminders.job]]
name = "outbox"
kind = "outbox"
schedule = "@every 1m"

[log]
level = "error"
`, w.domain, ks.Admin.ProjectName, ks.Admin.ProjectDomainName,
		book, worksheet, w.sheets.ServiceAccountFile(w.t), w.sheets.Endpoint(),
		w.setpassURL, ks.Admin.Username, ks.Admin.UserDomainName,
		w.smtp.Host(), w.smtp.Port(), w.smtp.CAFile(w.t), w.smtp.Username(),
		w.storeURL, actor)
	w.settings = filepath.Join(dir, "settings.toml")
	if err := os.WriteFile(w.settings, []byte(s), 0o600); err != nil {
		w.t.Fatal(err)
	}
}

// load reads the settings as a program starting up does.
func (w *world) load() *config.Config {
	w.t.Helper()
	cfg, err := config.Load(w.settings, config.Options{Getenv: w.getenv})
	if err != nil {
		w.t.Fatalf("loading the settings: %v", err)
	}
	return cfg
}

// resetQuotasAtCleanup puts back the quotas of the domain's projects
// before the domain is deleted: the quota services keep them otherwise.
func (w *world) resetQuotasAtCleanup() {
	t := w.t // not w.t inside: restart points w.t at a subtest
	qc := w.ks.QuotaClients(t)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		q, err := cloud.NewQuotas(ctx, &cloud.Clients{Provider: w.ks.Identity.ProviderClient, Identity: w.ks.Identity, Endpoint: qc.Endpoint},
			map[string]string{cloud.ServiceCompute: cloud.MethodQuotaSets, cloud.ServiceBlockStorage: cloud.MethodQuotaSets,
				cloud.ServiceNetwork: cloud.MethodQuotaSets})
		if err != nil {
			t.Errorf("cleanup: %v", err)
			return
		}
		pages, err := projects.List(w.ks.Identity, projects.ListOpts{DomainID: w.domainID}).AllPages(ctx)
		if err != nil {
			t.Errorf("cleanup: listing projects: %v", err)
			return
		}
		ps, _ := projects.ExtractProjects(pages)
		for _, p := range ps {
			if err := q.Reset(ctx, p.ID); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
	})
}

// writeSheet puts the sign-ups on the sheet; approved says which.
func (w *world) writeSheet(approved map[string]bool) {
	w.t.Helper()
	c := config.DefaultSheetColumns()
	grid := [][]string{header}
	for i, name := range []string{"ada", "carol", "dave", "bob"} {
		p := w.people[name]
		r := map[string]string{
			c.Timestamp: fmt.Sprintf("3/%d/2026 14:05:09", 10+i), c.Email: p.email, c.FirstName: p.first,
			c.LastName: p.last, c.Organization: "Analytical Engines", c.PIN: p.pin, c.ProjectName: p.project,
			c.ProjectDescription: "Simulations of " + p.project, c.QuotaPreset: "small",
		}
		if approved[name] {
			r[c.Approved] = "yes"
		}
		cells := make([]string, len(header))
		for j, h := range header {
			cells[j] = r[h]
		}
		grid = append(grid, cells)
		w.rows = append(w.rows, p.email)
	}
	w.sheets.AddSheet(book, worksheet, grid)
}

// approve ticks a row's Approved cell, as an approver editing the sheet.
func (w *world) approve(name string) {
	w.t.Helper()
	row := slices.Index(w.rows, w.people[name].email) + 2
	col := slices.Index(header, config.DefaultSheetColumns().Approved)
	rng := "'" + worksheet + "'!" + string(rune('A'+col)) + strconv.Itoa(row)
	svc := w.sheets.Service(w.t.Context(), w.t)
	if _, err := svc.Spreadsheets.Values.Update(book, rng, &sheetsapi.ValueRange{Values: [][]any{{"yes"}}}).
		ValueInputOption("RAW").Context(w.t.Context()).Do(); err != nil {
		w.t.Fatalf("approving %s: %v", name, err)
	}
}

// addusersImport is `addusers import`: wired from the settings by
// app.Import, run, then the queued mail delivered.
func (w *world) addusersImport() (onboard.Summary, mail.Report) {
	w.t.Helper()
	ctx := w.t.Context()
	a := app.New(w.load(), w.logger, app.Options{})
	defer a.Close()
	setup, err := a.Import(ctx, app.ImportOptions{})
	if err != nil {
		w.t.Fatalf("addusers import: wiring: %v", err)
	}
	defer setup.Close()
	w.vault.tap(setup.Deps.Identity.(*cloud.Keystone).Client().ProviderClient, "addusers import")
	sum, err := onboard.Run(ctx, setup.Deps, setup.Options)
	if err != nil {
		w.t.Fatalf("addusers import: %v; rows %+v", err, sum.Rows)
	}
	rep, err := setup.Outbox.Drain(ctx)
	if err != nil {
		w.t.Fatalf("addusers import: delivering: %v", err)
	}
	for _, r := range sum.Rows {
		for _, p := range w.people {
			if strings.EqualFold(r.Email, p.email) && r.UserID != "" {
				p.userID = r.UserID
			}
		}
	}
	return sum, rep
}

// remindersRun is `reminders run` of the link-reminder job and then the
// outbox job, wired as cmd/reminders wires them, on a clock set to at.
func (w *world) remindersRun(at time.Time) (linkRes reminder.Result, outboxErr error) {
	w.t.Helper()
	ctx := w.t.Context()
	cfg := w.load()
	clock := func() time.Time { return at }
	st, err := store.Open(ctx, cfg.Store.URL.Reveal(), w.logger)
	if err != nil {
		w.t.Fatalf("reminders: store: %v", err)
	}
	defer st.Close()
	a := app.New(cfg, w.logger, app.Options{Now: clock})
	defer a.Close()
	outbox, err := a.Outbox(st, true)
	if err != nil {
		w.t.Fatalf("reminders: mail: %v", err)
	}
	lazy := reminder.NewLazyCloud(func(ctx context.Context) (*cloud.Clients, error) {
		c, err := cloud.Connect(ctx, cfg.OpenStack)
		if err == nil {
			w.vault.tap(c.Provider, "reminders")
		}
		return c, err
	})
	sp, err := client.New(cfg.Setpass.URL, &http.Client{Timeout: cfg.OpenStack.Timeout.D}, lazy.Token)
	if err != nil {
		w.t.Fatal(err)
	}
	deps := reminder.BuildDeps{Store: st, Outbox: outbox, Logger: w.logger, Now: clock, Random: rand.Reader,
		Users: lazy, Passwords: lazy, Projects: lazy, Members: lazy, Setpass: sp}
	run := func(kind string) (reminder.Result, error) {
		i := slices.IndexFunc(cfg.Reminders.Jobs, func(j config.Job) bool { return j.Kind == kind })
		if i < 0 {
			w.t.Fatalf("no %s job in the settings", kind)
		}
		job, err := reminder.BuildJob(ctx, cfg, cfg.Reminders.Jobs[i], deps)
		if err != nil {
			w.t.Fatalf("reminders: building %s: %v", kind, err)
		}
		return job.Run(ctx, reminder.RunContext{Now: at, Logger: w.logger})
	}
	linkRes, err = run("link-reminder")
	if err != nil {
		w.t.Fatalf("reminders run link-reminder: %v", err)
	}
	_, outboxErr = run("outbox")
	return linkRes, outboxErr
}

// helpdeskReset is `addusers reset-password --user ID --pin PIN`, the
// real program: setpass's PUT /reset, the audit records, the
// password-reset mail queued and delivered (or left waiting).
func (w *world) helpdeskReset(p *person, pin string) (stdout string) {
	w.t.Helper()
	w.vault.add(kindPIN, pin, "addusers reset-password --pin")
	code, out, errOut := w.addusers("reset-password", "--user", p.userID, "--pin", pin)
	if code != 0 {
		w.t.Fatalf("addusers reset-password: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	return out
}

// setpassProcess is one run of `setpass serve`.
type setpassProcess struct {
	store     store.Store
	outbox    *mail.Outbox
	closeMail io.Closer
	work      sync.WaitGroup // the work behind /reset answers
}

// startSetpass starts setpass on the fixed address, wired from the
// settings as cmd/setpass's serveConfig wires it.
func (w *world) startSetpass() {
	w.t.Helper()
	ctx := w.t.Context()
	cfg := w.load()
	sp := cfg.Setpass
	proc := &setpassProcess{}
	var err error
	if proc.store, err = store.Open(ctx, cfg.Store.URL.Reveal(), w.logger); err != nil {
		w.t.Fatalf("setpass: store: %v", err)
	}
	pages, err := setpass.LoadPages(templates.FS, cfg.Mail.TemplatesDir, setpass.Branding{
		CloudName: cfg.Mail.CloudName, Support: cfg.Mail.Support, LoginURL: cfg.Mail.LoginURL})
	if err != nil {
		w.t.Fatal(err)
	}
	clients, err := cloud.Connect(ctx, cfg.OpenStack)
	if err != nil {
		w.t.Fatal(err)
	}
	w.vault.tap(clients.Provider, "setpass")
	// The reset credential (setpass.reset_user), as cmd/setpass's
	// resetCredential builds it.
	admin, _, _ := cfg.OpenStack.Auth()
	resetClients, err := cloud.ConnectAs(ctx, cfg.OpenStack, gophercloud.AuthOptions{
		IdentityEndpoint: admin.IdentityEndpoint, Username: sp.ResetUser, DomainName: sp.ResetUserDomain,
		Password: sp.ResetPassword.Reveal(), AllowReauth: true,
		Scope: &gophercloud.AuthScope{ProjectName: cfg.OpenStack.AdminProject, DomainName: cfg.OpenStack.AdminProjectDomain},
	})
	if err != nil {
		w.t.Fatalf("setpass.reset_user: %v", err)
	}
	w.vault.tap(resetClients.Provider, "setpass reset credential")
	pa := app.New(cfg, w.logger, app.Options{})
	proc.closeMail = pa // closes the mail transport
	if proc.outbox, err = pa.Outbox(proc.store, true); err != nil {
		w.t.Fatal(err)
	}
	proxies, err := setpass.ParseTrustedProxies(sp.TrustedProxies)
	if err != nil {
		w.t.Fatal(err)
	}
	keystone := setpass.NewKeystone(cloud.NewKeystone(clients.Identity), cfg.OpenStack.AdminProject, cfg.OpenStack.AdminProjectDomain)
	h, err := setpass.NewHandler(setpass.Deps{
		Store: proc.store, Keystone: keystone, Directory: keystone,
		Resetter: setpass.NewResetter(cloud.NewKeystone(resetClients.Identity)), Mail: proc.outbox, Go: proc.work.Go,
		Pages: pages, Registry: prometheus.NewRegistry(), Logger: w.logger, Now: time.Now, Random: rand.Reader,
		Settings: setpass.Settings{
			Keys: setpassKeys(w.t, cfg), BaseURL: sp.URL, TokenTTL: sp.TokenTTL.D, MaxAttempts: sp.MaxAttempts,
			MinPasswordLength: sp.MinPasswordLength, TrustedProxies: proxies, RateLimit: sp.RateLimit, RateBurst: sp.RateBurst,
			PINGuard: setpass.PINGuardSettings{PerUser: sp.PINFailuresPerUser, Window: sp.PINFailureWindow.D},
			Reset: setpass.ResetSettings{Mode: sp.ResetMode, TokenTTL: sp.ResetTokenTTL.D, MinTime: sp.ResetMinTime.D,
				ProtectedRoles: sp.ResetProtectedRoles, RevokeTokens: sp.ResetRevokeTokens,
				AccountLimit: sp.ResetAccountLimit, Helpdesk: cfg.Mail.Helpdesk},
		},
	})
	if err != nil {
		w.t.Fatalf("setpass: %v", err)
	}
	w.setpass = proc
	w.handler.Store(&h)
	// A test that stops half-way leaves no process running.
	w.t.Cleanup(func() {
		if w.setpass == proc {
			w.handler.Store(nil)
			proc.work.Wait()
			if proc.closeMail != nil {
				proc.closeMail.Close()
			}
			proc.store.Close()
		}
	})
}

// setpassKeys are the [secrets] keys setpass's handler gets, as
// cmd/setpass builds them.
func setpassKeys(t testing.TB, cfg *config.Config) *keyring.Keyring {
	t.Helper()
	k, err := app.Keys(cfg, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// stopSetpass stops the process: no more requests, the work behind the
// /reset answers finished, its mail delivered (as serveConfig does on its
// way out), the store closed.
func (w *world) stopSetpass() {
	w.t.Helper()
	w.handler.Store(nil)
	p := w.setpass
	w.setpass = nil
	p.work.Wait()
	if _, err := p.outbox.Drain(w.t.Context()); err != nil {
		w.t.Errorf("setpass: final delivery: %v", err)
	}
	if p.closeMail != nil {
		p.closeMail.Close()
	}
	if err := p.store.Close(); err != nil {
		w.t.Errorf("setpass: closing the store: %v", err)
	}
}

// setpassDeliver is setpass's mail sender running once, after the work
// behind the /reset answers.
func (w *world) setpassDeliver() mail.Report {
	w.t.Helper()
	w.setpass.work.Wait()
	rep, err := w.setpass.outbox.Drain(w.t.Context())
	if err != nil {
		w.t.Fatalf("setpass: delivering: %v", err)
	}
	return rep
}

// logsIn reports whether Keystone accepts the password.
func (w *world) logsIn(p *person, password string) bool {
	w.t.Helper()
	_, err := w.ks.AuthenticateUser(w.t.Context(), w.domainID, p.email, password)
	if err != nil && !gophercloud.ResponseCodeIs(err, http.StatusUnauthorized) {
		w.t.Fatalf("authenticating %s: %v", p.email, err)
	}
	return err == nil
}

// logsInAs is logsIn for a user known by ID only.
func (w *world) logsInAs(userID, password string) bool {
	for _, p := range w.people {
		if p.userID == userID {
			return w.logsIn(p, password)
		}
	}
	return false
}

// newPassword is a password a user chooses.
func (w *world) newPassword(p *person) string {
	pw := "chosen by " + p.first + " " + rand.Text()
	w.vault.add(kindPassword, pw, "typed by "+p.first)
	return pw
}
