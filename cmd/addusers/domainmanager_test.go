package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/domains"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/roles"

	"github.com/kaizen-onboard/kaizen/internal/cloud"
	"github.com/kaizen-onboard/kaizen/internal/store"
	"github.com/kaizen-onboard/kaizen/internal/testenv"
	"github.com/kaizen-onboard/kaizen/internal/testenv/mailtest"
	"github.com/kaizen-onboard/kaizen/internal/testenv/setpasstest"
)

// TestDomainManagerUsage: command lines that cannot run exit 2 before
// anything is loaded or contacted, and never echo a PIN.
func TestDomainManagerUsage(t *testing.T) {
	adminRole := writeFile(t, "[domain_manager]\nrole = \"Admin\"\n")
	listedRole := writeFile(t, "[domain_manager]\nrole = \"manager\"\nforbidden_roles = [\"admin\", \"Manager\", \"\"]\n")
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  string
		wantErr  string
	}{
		{"no subcommand", []string{"domain-manager"}, 2, "", "needs a subcommand: assign, revoke or list"},
		{"unknown subcommand", []string{"domain-manager", "grant"}, 2, "", `unknown domain-manager subcommand "grant"`},
		{"help", []string{"domain-manager", "--help"}, 0, "domain-manager assign --domain D --user U", ""},
		{"subcommand help", []string{"domain-manager", "assign", "-h"}, 0, "--create-domain", ""},
		{"listed in the main help", []string{"--help"}, 0, "domain-manager assign, revoke or list SCS domain managers", ""},
		{"assign without --domain", []string{"domain-manager", "assign", "--user", "ada@example.org"}, 2, "", "--domain is required"},
		{"assign without --user", []string{"domain-manager", "assign", "--domain", "research"}, 2, "", "--user is required"},
		{"revoke without --user", []string{"domain-manager", "revoke", "--domain", "research"}, 2, "", "--user is required"},
		{"revoke takes no --create-domain", []string{"domain-manager", "revoke", "--domain", "d", "--user", "u", "--create-domain"}, 2, "", "flag provided but not defined: -create-domain"},
		{"list takes no --user", []string{"domain-manager", "list", "--user", "u"}, 2, "", "flag provided but not defined: -user"},
		{"stray argument", []string{"domain-manager", "assign", "--domain", "d", "--user", "u", "now"}, 2, "", `unexpected argument "now"`},
		{"--pin without --create-user", []string{"domain-manager", "assign", "--domain", "d", "--user", "u@example.org", "--pin", "1234"}, 2, "", "--pin is only used with --create-user"},
		{"--email without --create-user", []string{"domain-manager", "assign", "--domain", "d", "--user", "u", "--email", "u@example.org"}, 2, "", "--email is only used with --create-user"},
		{"--create-user without --pin", []string{"domain-manager", "assign", "--domain", "d", "--user", "u@example.org", "--create-user"}, 2, "", "--create-user needs --pin"},
		{"--create-user with a bad PIN", []string{"domain-manager", "assign", "--domain", "d", "--user", "u@example.org", "--create-user", "--pin", "98x7"}, 2, "", "--pin must be exactly 4 digits"},
		{"--create-user without an address", []string{"domain-manager", "assign", "--domain", "d", "--user", "ada", "--create-user", "--pin", "1234"}, 2, "", "--create-user needs --email"},
		{"--create-user with a bad --email", []string{"domain-manager", "assign", "--domain", "d", "--user", "ada", "--create-user", "--email", "ada at example", "--pin", "1234"}, 2, "", `--email "ada at example" is not an email address`},
		{"list bad output", []string{"domain-manager", "list", "--output", "xml"}, 2, "", "--output must be table or json"},
		{"admin as the role", []string{"--config", adminRole, "domain-manager", "list"}, 2, "", "domain_manager.role: must not be admin"},
		{"role in the forbidden list", []string{"--config", listedRole, "domain-manager", "list"}, 2, "", `domain_manager.role: "manager" is listed in domain_manager.forbidden_roles`},
		{"empty forbidden role", []string{"--config", listedRole, "domain-manager", "list"}, 2, "", "domain_manager.forbidden_roles[2]: empty role name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runMain(t, openrc(nil), tt.args...)
			if code != tt.wantCode {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.wantCode, out, errOut)
			}
			if !strings.Contains(out, tt.wantOut) {
				t.Errorf("stdout lacks %q:\n%s", tt.wantOut, out)
			}
			if !strings.Contains(errOut, tt.wantErr) {
				t.Errorf("stderr lacks %q:\n%s", tt.wantErr, errOut)
			}
			if strings.Contains(out+errOut, "98x7") {
				t.Error("the output echoes the PIN")
			}
		})
	}
}

// dmEnv is a settings file wired to the real Keystone, a real setpass
// handler and the in-process SMTP server.
type dmEnv struct {
	t          *testing.T
	ks         *testenv.KeystoneEnv
	smtp       *testenv.SMTPServer
	setpassURL string
	storeURL   string
	dir        string
	role       string // the domain-manager role of the settings
}

func newDMEnv(t *testing.T) *dmEnv {
	ks := testenv.Keystone(t)
	e := &dmEnv{t: t, ks: ks, dir: t.TempDir(), smtp: testenv.NewSMTP(t)}
	e.role = "kzt-manager-" + strings.ToLower(rand.Text()[:12])
	// Roles are global: a unique name per test, deleted at the end (with
	// every assignment of it).
	t.Cleanup(func() { dmDeleteRoleNamed(t, ks.Identity, e.role) })

	e.setpassURL = setpasstest.New(t, ks, setpasstest.Options{}).URL
	e.storeURL = "sqlite://" + filepath.Join(e.dir, "kaizen.db")
	return e
}

// settings writes a settings file whose domain-manager role is role and
// returns its path.
func (e *dmEnv) settings(role string, forbidden ...string) string {
	fb, _ := json.Marshal(append([]string{"admin"}, forbidden...))
	s := mailtest.Settings(e.t, e.smtp, e.setpassURL) + fmt.Sprintf(`
[store]
url = %q

[domain_manager]
role = %q
forbidden_roles = %s

[log]
level = "warn"
`, e.storeURL, role, fb)
	p := filepath.Join(e.dir, "settings-"+strings.ToLower(rand.Text()[:6])+".toml")
	if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
		e.t.Fatal(err)
	}
	return p
}

// dmGetenv is the test's environment, OS_* included, without KAIZEN_*
// settings that would override the settings file.
func dmGetenv(k string) string {
	if strings.HasPrefix(k, "KAIZEN_") {
		return ""
	}
	return os.Getenv(k)
}

func (e *dmEnv) run(settings string, args ...string) (int, string, string) {
	e.t.Helper()
	return runMain(e.t, dmGetenv, append([]string{"--config", settings, "domain-manager"}, args...)...)
}

func (e *dmEnv) mustRun(settings string, args ...string) string {
	e.t.Helper()
	code, out, errOut := e.run(settings, args...)
	if code != 0 {
		e.t.Fatalf("addusers domain-manager %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// actions lists the audit actions recorded so far, in order.
func (e *dmEnv) actions() []string {
	st, err := store.Open(e.t.Context(), e.storeURL, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	defer st.Close()
	evs, err := st.Events(e.t.Context(), time.Time{}, "", 0)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, ev := range evs {
		if ev.Source != "addusers domain-manager" || ev.Actor == "" {
			e.t.Errorf("audit event %+v: want source %q and an actor", ev, "addusers domain-manager")
		}
		out = append(out, ev.Action)
	}
	return out
}

func dmDeleteRoleNamed(t *testing.T, c *gophercloud.ServiceClient, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	id, err := cloud.RoleID(ctx, c, name)
	if errors.Is(err, cloud.ErrNoRole) {
		return
	}
	if err == nil {
		err = roles.Delete(ctx, c, id).ExtractErr()
	}
	if err != nil {
		t.Errorf("deleting role %s: %v", name, err)
	}
}

func dmDeleteDomainNamed(t *testing.T, c *gophercloud.ServiceClient, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	d, err := cloud.FindDomain(ctx, c, name)
	if errors.Is(err, cloud.ErrNoDomain) {
		return
	}
	if err != nil {
		t.Errorf("finding domain %s to delete it: %v", name, err)
		return
	}
	disabled := false
	if _, err := domains.Update(ctx, c, d.ID, domains.UpdateOpts{Enabled: &disabled}).Extract(); err != nil {
		t.Errorf("disabling domain %s: %v", name, err)
		return
	}
	if err := domains.Delete(ctx, c, d.ID).ExtractErr(); err != nil {
		t.Errorf("deleting domain %s: %v", name, err)
	}
}

var dmTokenLink = regexp.MustCompile(`\?token=[A-Za-z0-9_.~%-]+`)

// useWelcome sets a password through the link of a welcome mail.
func (e *dmEnv) useWelcome(raw []byte, pin string) (password string) {
	t := e.t
	text := testenv.TextPart(t, raw)
	i := strings.Index(text, e.setpassURL+"?token=")
	if i < 0 {
		t.Fatalf("the welcome mail has no link to %s:\n%s", e.setpassURL, text)
	}
	u, err := url.Parse(e.setpassURL + dmTokenLink.FindString(text[i+len(e.setpassURL):]))
	if err != nil {
		t.Fatal(err)
	}
	password = "domain manager " + rand.Text()
	form := url.Values{"token": {u.Query().Get("token")}, "pin": {pin}, "password": {password}, "confirm": {password}}
	resp, err := http.PostForm(e.setpassURL, form)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("setting the password through the link: %s\n%s", resp.Status, body)
	}
	return password
}

// TestDomainManagerCommands runs assign, list and revoke through run()
// against the real Keystone, setpass and SMTP server.
func TestDomainManagerCommands(t *testing.T) {
	e := newDMEnv(t)
	ctx := t.Context()
	ks := e.ks
	settings := e.settings(e.role)
	domain := "kzt-dm-cli-" + strings.ToLower(rand.Text()[:10])
	t.Cleanup(func() { dmDeleteDomainNamed(t, ks.Identity, domain) })
	const pin = "2468"

	// A missing domain is created only when asked.
	code, out, errOut := e.run(settings, "assign", "--domain", domain, "--user", "ada@example.org")
	if code != 1 || !strings.Contains(errOut, fmt.Sprintf("domain %q does not exist; pass --create-domain to create it", domain)) {
		t.Fatalf("assign to a missing domain: exit %d, want 1 naming --create-domain\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if _, err := cloud.FindDomain(ctx, ks.Identity, domain); !errors.Is(err, cloud.ErrNoDomain) {
		t.Fatalf("the domain exists after a refused assign: %v", err)
	}
	if strings.Contains(out, "Note (SCS") {
		t.Error("the caveat was printed for a failed assign")
	}

	// A missing user is created only when asked, and nothing else is
	// created before that is known.
	code, _, errOut = e.run(settings, "assign", "--domain", domain, "--create-domain", "--user", "Ada@Example.org")
	if code != 1 || !strings.Contains(errOut, "pass --create-user") {
		t.Fatalf("assign of a missing user: exit %d, want 1 naming --create-user\nstderr:\n%s", code, errOut)
	}
	if _, err := cloud.FindDomain(ctx, ks.Identity, domain); !errors.Is(err, cloud.ErrNoDomain) {
		t.Fatalf("the domain was created by an assign that failed: %v", err)
	}
	if _, err := cloud.RoleID(ctx, ks.Identity, e.role); !errors.Is(err, cloud.ErrNoRole) {
		t.Fatalf("the role was created by an assign that failed: %v", err)
	}
	if got := e.actions(); len(got) != 0 {
		t.Fatalf("failed assigns recorded %v", got)
	}

	out = e.mustRun(settings, "assign", "--domain", domain, "--create-domain", "--user", "Ada@Example.org", "--create-user", "--pin", pin)
	for _, want := range []string{
		fmt.Sprintf("created role %q", e.role),
		fmt.Sprintf("created domain %q", domain),
		`created user "ada@example.org"`,
		fmt.Sprintf("assigned %s to ada@example.org on domain %q", e.role, domain),
		"queued a welcome with a set-password link for ada@example.org to Ada@Example.org",
		"mail: 1 delivered",
		"Note (SCS scs-0302): before Keystone 2024.2",
		"pseudonymous",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("assign --create-user output lacks %q:\n%s", want, out)
		}
	}
	if got, want := e.actions(), []string{"role.create", "domain.create", "user.create", "role.assign", "setpass.issue", "mail.queue"}; !slices.Equal(got, want) {
		t.Errorf("audit of assign --create-user = %v, want %v", got, want)
	}
	d, err := cloud.FindDomain(ctx, ks.Identity, domain)
	if err != nil {
		t.Fatalf("--create-domain did not create the domain: %v", err)
	}
	msgs := e.smtp.Messages()
	if len(msgs) != 1 || !slices.Equal(msgs[0].To, []string{"Ada@Example.org"}) {
		t.Fatalf("mail after assign --create-user: %d messages (%+v), want one welcome to Ada@Example.org", len(msgs), msgs)
	}
	password := e.useWelcome(msgs[0].Data, pin)
	got, err := ks.DomainTokenRoles(ctx, d.ID, "ada@example.org", password)
	if err != nil || !slices.Contains(got, e.role) {
		t.Fatalf("ada's domain-scoped token: roles %v, %v; want %s", got, err, e.role)
	}

	// Re-running changes nothing and sends nothing.
	before := len(e.actions())
	out = e.mustRun(settings, "assign", "--domain", domain, "--create-domain", "--user", "ada@example.org", "--create-user", "--pin", pin)
	for _, want := range []string{"already holds", "nothing to send", "pseudonymous"} {
		if !strings.Contains(out, want) {
			t.Errorf("re-run output lacks %q:\n%s", want, out)
		}
	}
	if got := e.actions()[before:]; len(got) != 0 {
		t.Errorf("the re-run recorded %v", got)
	}
	if n := len(e.smtp.Messages()); n != 1 {
		t.Errorf("%d messages after the re-run, want still 1", n)
	}

	// An existing account, created here with a known password.
	const bobPassword = "bob-Passw0rd-domain"
	bob, _, err := cloud.EnsureUser(ctx, ks.Identity, cloud.UserSpec{DomainID: d.ID, Name: "bob@example.org", Password: bobPassword})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ks.DomainTokenRoles(ctx, d.ID, bob.Name, bobPassword); !gophercloud.ResponseCodeIs(err, http.StatusUnauthorized) {
		t.Fatalf("bob's domain-scoped token before assign: %v; want 401", err)
	}
	out = e.mustRun(settings, "assign", "--domain", domain, "--user", "BOB@example.org")
	if strings.Contains(out, "welcome") || strings.Contains(out, "created") {
		t.Errorf("assigning an existing user mentions creating or mailing:\n%s", out)
	}
	if got, err := ks.DomainTokenRoles(ctx, d.ID, bob.Name, bobPassword); err != nil || !slices.Contains(got, e.role) {
		t.Fatalf("bob's domain-scoped token after assign: roles %v, %v; want %s", got, err, e.role)
	}

	// list shows exactly this domain's assignments, names resolved.
	var rows []cloud.DomainRoleAssignment
	if err := json.Unmarshal([]byte(e.mustRun(settings, "list", "--domain", domain, "--output", "json")), &rows); err != nil {
		t.Fatal(err)
	}
	var who []string
	for _, r := range rows {
		if r.Domain != domain || r.DomainID != d.ID || r.Role != e.role || r.UserDomain != domain {
			t.Errorf("list row %+v: want domain %s, role %s, user domain %s", r, domain, e.role, domain)
		}
		who = append(who, r.User)
	}
	if want := []string{"ada@example.org", "bob@example.org"}; !slices.Equal(who, want) {
		t.Errorf("list --domain shows %v, want %v", who, want)
	}
	out = e.mustRun(settings, "list", "--domain", domain)
	if !regexp.MustCompile(`(?m)^`+regexp.QuoteMeta(domain)+`\s+bob@example\.org\s+`+regexp.QuoteMeta(domain)+`\s+`+e.role+`\s*$`).MatchString(out) ||
		!strings.Contains(out, "2 domain-manager assignment(s)") {
		t.Errorf("list table:\n%s", out)
	}
	if all := e.mustRun(settings, "list"); !strings.Contains(all, "ada@example.org") {
		t.Errorf("list without --domain lacks ada:\n%s", all)
	}

	// revoke: the role is gone from the domain, once.
	before = len(e.actions())
	out = e.mustRun(settings, "revoke", "--domain", domain, "--user", "bob@example.org")
	if !strings.Contains(out, "is no longer a domain manager") {
		t.Errorf("revoke output:\n%s", out)
	}
	if _, err := ks.DomainTokenRoles(ctx, d.ID, bob.Name, bobPassword); !gophercloud.ResponseCodeIs(err, http.StatusUnauthorized) {
		t.Errorf("bob's domain-scoped token after revoke: %v; want 401", err)
	}
	out = e.mustRun(settings, "revoke", "--domain", domain, "--user", "bob@example.org")
	if !strings.Contains(out, "nothing to revoke") {
		t.Errorf("second revoke output:\n%s", out)
	}
	if got, want := e.actions()[before:], []string{"role.revoke"}; !slices.Equal(got, want) {
		t.Errorf("audit of two revokes = %v, want %v", got, want)
	}
	if err := json.Unmarshal([]byte(e.mustRun(settings, "list", "--domain", domain, "--output", "json")), &rows); err != nil || len(rows) != 1 || rows[0].User != "ada@example.org" {
		t.Errorf("list after revoke = %+v, %v; want ada only", rows, err)
	}
	if code, _, errOut := e.run(settings, "revoke", "--domain", domain, "--user", "nobody@example.org"); code != 1 || !strings.Contains(errOut, "user does not exist") {
		t.Errorf("revoke of an unknown user: exit %d\n%s", code, errOut)
	}
}

// TestDomainManagerRefusals: a role implying a forbidden one is refused
// before anything is created or assigned; a missing role is created once.
func TestDomainManagerRefusals(t *testing.T) {
	e := newDMEnv(t)
	ctx := t.Context()
	ks := e.ks
	domainID, domain := ks.Domain(t)
	const password = "carol-Passw0rd-domain"
	carol, _, err := cloud.EnsureUser(ctx, ks.Identity, cloud.UserSpec{DomainID: domainID, Name: "carol@example.org", Password: password})
	if err != nil {
		t.Fatal(err)
	}

	// The settings' role is created when missing, and audited.
	out := e.mustRun(e.settings(e.role), "assign", "--domain", domain, "--user", carol.Name)
	if !strings.Contains(out, fmt.Sprintf("created role %q", e.role)) {
		t.Errorf("first assign with a new role:\n%s", out)
	}
	if got := e.actions(); !slices.Equal(got, []string{"role.create", "role.assign"}) {
		t.Errorf("audit = %v, want role.create, role.assign", got)
	}

	// A role implying a forbidden one (two steps away).
	mk := func(prefix string) (string, string) {
		name := prefix + strings.ToLower(rand.Text()[:10])
		r, err := roles.Create(ctx, ks.Identity, roles.CreateOpts{Name: name}).Extract()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { dmDeleteRoleNamed(t, ks.Identity, name) })
		return r.ID, name
	}
	secretID, secret := mk("kzt-secret-")
	midID, _ := mk("kzt-mid-")
	bossID, boss := mk("kzt-boss-")
	for _, rule := range [][2]string{{bossID, midID}, {midID, secretID}} {
		if _, err := roles.CreateRoleInferenceRule(ctx, ks.Identity, rule[0], rule[1]).Extract(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { // before the roles: see dmDeleteRuleAtEnd in internal/cloud
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := roles.DeleteRoleInferenceRule(ctx, ks.Identity, rule[0], rule[1]).ExtractErr(); err != nil {
				t.Errorf("deleting an inference rule: %v", err)
			}
		})
	}
	for _, tc := range []struct {
		name, role string
		forbidden  []string
		wantErr    string
	}{
		{"implies a forbidden role", boss, []string{secret}, fmt.Sprintf("role %q implies role %q", boss, secret)},
	} {
		code, out, errOut := e.run(e.settings(tc.role, tc.forbidden...), "assign", "--domain", domain, "--user", carol.Name)
		if code != 1 || !strings.Contains(errOut, tc.wantErr) || !strings.Contains(errOut, "refusing to assign") {
			t.Errorf("%s: exit %d, want 1 with %q\nstdout:\n%s\nstderr:\n%s", tc.name, code, tc.wantErr, out, errOut)
		}
	}
	// A forbidden role itself is caught by the settings check (exit 2).
	if code, _, errOut := e.run(e.settings(secret, strings.ToUpper(secret)), "assign", "--domain", domain, "--user", carol.Name); code != 2 ||
		!strings.Contains(errOut, "is listed in domain_manager.forbidden_roles") {
		t.Errorf("a forbidden role as domain_manager.role: exit %d, want 2\n%s", code, errOut)
	}
	for _, id := range []string{bossID, secretID} {
		if has, err := cloud.HasDomainRole(ctx, ks.Identity, carol.ID, domainID, id); err != nil || has {
			t.Errorf("carol holds refused role %s on the domain: %v, %v", id, has, err)
		}
	}
	got, err := ks.DomainTokenRoles(ctx, domainID, carol.Name, password)
	if err != nil || !slices.Equal(got, []string{e.role}) {
		t.Errorf("carol's domain-scoped token: roles %v, %v; want only %s", got, err, e.role)
	}
	if got := e.actions(); len(got) != 2 {
		t.Errorf("the refusals were audited: %v", got)
	}
}

// TestDomainManagerSetpassDown: when setpass cannot be reached the new user
// is still created and made a manager, and the next run gives the account a
// fresh temporary password and sends the link.
func TestDomainManagerSetpassDown(t *testing.T) {
	e := newDMEnv(t)
	ctx := t.Context()
	domainID, domain := e.ks.Domain(t)
	good := e.settings(e.role)
	up := e.setpassURL
	e.setpassURL = "http://127.0.0.1:1/" // nothing listens there
	down := e.settings(e.role)
	e.setpassURL = up
	const pin = "8080"

	code, out, errOut := e.run(down, "assign", "--domain", domain, "--user", "dan@example.org", "--create-user", "--pin", pin)
	if code != 1 || !strings.Contains(errOut, "registering dan@example.org with setpass") {
		t.Fatalf("assign with setpass down: exit %d, want 1\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if !strings.Contains(out, "is now a domain manager") || !strings.Contains(out, "pseudonymous") {
		t.Errorf("assign with setpass down: the assignment or the caveat is not reported:\n%s", out)
	}
	if n := len(e.smtp.Messages()); n != 0 {
		t.Fatalf("%d messages sent without a link", n)
	}

	out = e.mustRun(good, "assign", "--domain", domain, "--user", "dan@example.org", "--create-user", "--pin", pin)
	if !strings.Contains(out, "already holds") || !strings.Contains(out, "queued a welcome") {
		t.Errorf("re-run with setpass up:\n%s", out)
	}
	if got, want := e.actions(), []string{"role.create", "user.create", "role.assign", "user.password.unused-reset", "setpass.issue", "mail.queue"}; !slices.Equal(got, want) {
		t.Errorf("audit = %v, want %v", got, want)
	}
	msgs := e.smtp.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages after the re-run, want 1 welcome", len(msgs))
	}
	password := e.useWelcome(msgs[0].Data, pin)
	if got, err := e.ks.DomainTokenRoles(ctx, domainID, "dan@example.org", password); err != nil || !slices.Contains(got, e.role) {
		t.Fatalf("dan's domain-scoped token: roles %v, %v; want %s", got, err, e.role)
	}
}
