package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	netmail "net/mail"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/projects"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/roles"

	"github.com/kaizen-onboard/kaizen/internal/cloud"
	"github.com/kaizen-onboard/kaizen/internal/setpass"
	"github.com/kaizen-onboard/kaizen/internal/setpass/client"
	"github.com/kaizen-onboard/kaizen/internal/store"
	"github.com/kaizen-onboard/kaizen/internal/testenv"
	"github.com/kaizen-onboard/kaizen/internal/testenv/mailtest"
	"github.com/kaizen-onboard/kaizen/internal/testenv/setpasstest"
)

func TestResetPasswordUsage(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  string
		wantErr  string
	}{
		{"help", []string{"reset-password", "--help"}, 0, "--user EMAIL|ID", ""},
		{"listed in the main help", []string{"--help"}, 0, "reset-password", ""},
		{"no --user", []string{"reset-password"}, 2, "", "--user is required"},
		{"bad PIN", []string{"reset-password", "--user", "ada@example.org", "--pin", "98x7"}, 2, "", "--pin must be exactly 4 digits"},
		{"stray argument", []string{"reset-password", "--user", "ada@example.org", "now"}, 2, "", `unexpected argument "now"`},
		{"unknown flag", []string{"reset-password", "--user", "ada@example.org", "--email", "x@example.org"}, 2, "", "flag provided but not defined: -email"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runMain(t, openrc(nil), tt.args...)
			if code != tt.wantCode || !strings.Contains(out, tt.wantOut) || !strings.Contains(errOut, tt.wantErr) {
				t.Errorf("exit %d (want %d)\nstdout:\n%s\nstderr:\n%s", code, tt.wantCode, out, errOut)
			}
			if strings.Contains(out+errOut, "98x7") {
				t.Error("the output echoes the PIN")
			}
		})
	}
}

// rpEnv is a test domain on the real Keystone, a real setpass handler (with
// or without a reset credential) and the in-process SMTP server.
type rpEnv struct {
	t          *testing.T
	ks         *testenv.KeystoneEnv
	smtp       *testenv.SMTPServer
	domainID   string
	domain     string
	setpassURL string
	spStore    store.Store
	dir        string
	settings   string
}

func newRPEnv(t *testing.T, withCredential bool) *rpEnv {
	ks := testenv.Keystone(t)
	ctx := t.Context()
	e := &rpEnv{t: t, ks: ks, smtp: testenv.NewSMTP(t), dir: t.TempDir()}
	e.domainID, e.domain = ks.Domain(t)

	var resetter setpass.Resetter
	if withCredential {
		// The reset credential: admin on a plain project of the test
		// domain, which is what Keystone's default policy asks for.
		p, err := projects.Create(ctx, ks.Identity, projects.CreateOpts{Name: "svc", DomainID: e.domainID}).Extract()
		if err != nil {
			t.Fatal(err)
		}
		svc, _, err := cloud.EnsureUser(ctx, ks.Identity, cloud.UserSpec{DomainID: e.domainID, Name: "svc-reset", Password: "svc-reset-password"})
		if err != nil {
			t.Fatal(err)
		}
		adminID, err := cloud.RoleID(ctx, ks.Identity, "admin")
		if err != nil {
			t.Fatal(err)
		}
		if err := roles.Assign(ctx, ks.Identity, adminID, roles.AssignOpts{UserID: svc.ID, ProjectID: p.ID}).ExtractErr(); err != nil {
			t.Fatal(err)
		}
		provider, err := openstack.NewClient(ks.AuthURL)
		if err != nil {
			t.Fatal(err)
		}
		if err := openstack.Authenticate(ctx, provider, gophercloud.AuthOptions{IdentityEndpoint: ks.AuthURL,
			Username: "svc-reset", DomainID: e.domainID, Password: "svc-reset-password", AllowReauth: true,
			Scope: &gophercloud.AuthScope{ProjectID: p.ID}}); err != nil {
			t.Fatal(err)
		}
		c, err := openstack.NewIdentityV3(provider, gophercloud.EndpointOpts{})
		if err != nil {
			t.Fatal(err)
		}
		resetter = setpass.NewResetter(cloud.NewKeystone(c))
	}

	sp := setpasstest.New(t, ks, setpasstest.Options{Resetter: resetter})
	e.setpassURL, e.spStore = sp.URL, sp.Store

	e.settings = filepath.Join(e.dir, "settings.toml")
	s := fmt.Sprintf(`
[openstack]
domain = %q
`, e.domain) + mailtest.Settings(t, e.smtp, e.setpassURL) + fmt.Sprintf(`
[store]
url = %q

[log]
level = "warn"
`, "sqlite://"+filepath.Join(e.dir, "kaizen.db"))
	if err := os.WriteFile(e.settings, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *rpEnv) run(args ...string) (int, string, string) {
	e.t.Helper()
	return runMain(e.t, dmGetenv, append([]string{"--config", e.settings, "reset-password"}, args...)...)
}

// onboarded creates a user the way kaizen does and sets its first password
// through a welcome link with pin, which puts pin on file with setpass.
func (e *rpEnv) onboarded(name, email, pin string) (cloud.User, string) {
	t := e.t
	ctx := t.Context()
	temp := "Temp-" + rand.Text()
	u, _, err := cloud.EnsureUser(ctx, e.ks.Identity, cloud.UserSpec{DomainID: e.domainID, Name: name, Email: email, Password: temp, Owner: email})
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(e.setpassURL, nil, func(context.Context) (string, error) { return e.ks.Identity.Token(), nil })
	if err != nil {
		t.Fatal(err)
	}
	issued, err := c.Issue(ctx, u.ID, temp, pin)
	if err != nil {
		t.Fatal(err)
	}
	password := "first password " + rand.Text()
	if code := e.useLink(issued.Token, pin, password); code != http.StatusOK {
		t.Fatalf("welcome link: %d", code)
	}
	return u, password
}

// useLink posts the set-password form and returns the status.
func (e *rpEnv) useLink(token, pin, password string) int {
	e.t.Helper()
	form := url.Values{"token": {token}, "pin": {pin}, "password": {password}, "confirm": {password}}
	resp, err := http.PostForm(e.setpassURL, form)
	if err != nil {
		e.t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// linkIn returns the token of the set-password link in a mail's text part.
func (e *rpEnv) linkIn(m testenv.ReceivedMessage) string {
	t := e.t
	msg, err := netmail.ReadMessage(bytes.NewReader(m.Data))
	if err != nil {
		t.Fatal(err)
	}
	if subj := msg.Header.Get("Subject"); !strings.Contains(subj, "Reset your") {
		t.Errorf("subject %q is not the password-reset mail's", subj)
	}
	text := testenv.TextPart(t, m.Data)
	i := strings.Index(text, e.setpassURL+"?token=")
	if i < 0 {
		t.Fatalf("no link to %s in:\n%s", e.setpassURL, text)
	}
	u, err := url.Parse(e.setpassURL + dmTokenLink.FindString(text[i+len(e.setpassURL):]))
	if err != nil {
		t.Fatal(err)
	}
	return u.Query().Get("token")
}

func (e *rpEnv) logsIn(name, password string) bool {
	e.t.Helper()
	_, err := e.ks.AuthenticateUser(e.t.Context(), e.domainID, name, password)
	if err != nil && !gophercloud.ResponseCodeIs(err, http.StatusUnauthorized) {
		e.t.Fatalf("authenticating %s: %v", name, err)
	}
	return err == nil
}

// TestResetPassword: the helpdesk's reset with setpass's reset credential,
// against the real Keystone, setpass handler and SMTP server.
func TestResetPassword(t *testing.T) {
	e := newRPEnv(t, true)
	const pin, newPIN = "1234", "5678"
	ada, p1 := e.onboarded("ada@example.org", "ada.lovelace@mail.example.org", pin)

	code, out, errOut := e.run("--user", "ADA@Example.org")
	if code != 0 {
		t.Fatalf("reset-password: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	for _, want := range []string{"issued a password-reset link for ada@example.org",
		"current password keeps working until the link is used",
		"to ada.lovelace@mail.example.org (the address Keystone holds)", "mail: 1 delivered"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "WARNING") {
		t.Errorf("the output warns of a fallback:\n%s", out)
	}
	msgs := e.smtp.Messages()
	if len(msgs) != 1 || !slices.Equal(msgs[0].To, []string{"ada.lovelace@mail.example.org"}) {
		t.Fatalf("mail: %+v, want one to the address Keystone holds", msgs)
	}
	if !e.logsIn(ada.Name, p1) {
		t.Fatal("the current password stopped working when the link was sent")
	}
	tok := e.linkIn(msgs[0])
	if code := e.useLink(tok, "0000", "should not be set 1"); code != http.StatusBadRequest {
		t.Errorf("wrong PIN: %d", code)
	}
	if !e.logsIn(ada.Name, p1) {
		t.Fatal("the current password stopped working after a wrong PIN")
	}
	p2 := "second password " + rand.Text()
	if code := e.useLink(tok, pin, p2); code != http.StatusOK {
		t.Fatalf("the link with the PIN on file: %d", code)
	}
	if e.logsIn(ada.Name, p1) || !e.logsIn(ada.Name, p2) {
		t.Fatal("after the link, only the new password should work")
	}

	// --pin replaces the PIN on file (here by ID).
	code, out, errOut = e.run("--user", ada.ID, "--pin", newPIN)
	if code != 0 || !strings.Contains(out, "PIN on file for ada@example.org was replaced") || strings.Contains(out+errOut, newPIN) {
		t.Fatalf("reset-password --pin: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	msgs = e.smtp.Messages()
	tok = e.linkIn(msgs[len(msgs)-1])
	p3 := "third password " + rand.Text()
	if code := e.useLink(tok, pin, p3); code != http.StatusBadRequest {
		t.Errorf("the replaced PIN: %d, want 400", code)
	}
	if code := e.useLink(tok, newPIN, p3); code != http.StatusOK {
		t.Fatalf("the new PIN: %d", code)
	}
	if !e.logsIn(ada.Name, p3) || e.logsIn(ada.Name, p2) {
		t.Error("after the second link, only the third password should work")
	}
	// The next reset asks for the new PIN without being told.
	if code, out, errOut := e.run("--user", "ada@example.org"); code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	msgs = e.smtp.Messages()
	if code := e.useLink(e.linkIn(msgs[len(msgs)-1]), newPIN, "fourth password "+rand.Text()); code != http.StatusOK {
		t.Errorf("the PIN on file after --pin: %d", code)
	}

	// Audit: every reset, the replaced PIN and the mails.
	st, err := store.Open(t.Context(), "sqlite://"+filepath.Join(e.dir, "kaizen.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	evs, err := st.Events(t.Context(), time.Time{}, ada.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, ev := range evs {
		if ev.Source != "addusers reset-password" {
			t.Errorf("event %+v", ev)
		}
		actions = append(actions, ev.Action)
	}
	if want := []string{"setpass.reset", "mail.queue", "setpass.reset", "mail.queue", "setpass.reset", "mail.queue"}; !slices.Equal(actions, want) {
		t.Errorf("audit %v, want %v", actions, want)
	}
	if evs[2].Details["pin_replaced"] != "true" || evs[0].Details["pin_replaced"] != "false" {
		t.Errorf("pin_replaced not recorded: %v / %v", evs[0].Details, evs[2].Details)
	}
}

// TestResetPasswordRefusals: nothing changes and nothing is mailed.
func TestResetPasswordRefusals(t *testing.T) {
	e := newRPEnv(t, true)
	ctx := t.Context()
	const bobPass = "Bob-passw0rd-never-through-setpass"
	if _, _, err := cloud.EnsureUser(ctx, e.ks.Identity, cloud.UserSpec{DomainID: e.domainID, Name: "bob@example.org", Password: bobPass}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := cloud.EnsureUser(ctx, e.ks.Identity, cloud.UserSpec{DomainID: e.domainID, Name: "svc-robot", Password: "Robot-passw0rd-123"}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"no PIN on file", []string{"--user", "bob@example.org"}, "has no PIN on file"},
		{"unknown user", []string{"--user", "nobody@example.org"}, `no user "nobody@example.org"`},
		{"unknown domain", []string{"--user", "bob@example.org", "--domain", "kzt-no-such-domain-xyz"}, "domain does not exist"},
		{"no address", []string{"--user", "svc-robot", "--pin", "1234"}, "no email address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := e.run(tt.args...)
			if code != 1 || !strings.Contains(errOut, tt.wantErr) {
				t.Errorf("exit %d, want 1 with %q\nstdout:\n%s\nstderr:\n%s", code, tt.wantErr, out, errOut)
			}
		})
	}
	_, _, errOut := e.run("--user", "bob@example.org")
	if !strings.Contains(errOut, "--pin") || !strings.Contains(errOut, "verify the person") {
		t.Errorf("the no-PIN refusal does not tell the helpdesk what to do:\n%s", errOut)
	}
	if !e.logsIn("bob@example.org", bobPass) {
		t.Error("a refused reset changed bob's password")
	}
	if n := len(e.smtp.Messages()); n != 0 {
		t.Errorf("%d mails sent by refused resets", n)
	}

	// With --pin, a user with no PIN on file can be reset: the helpdesk
	// verified the person.
	code, out, errOut := e.run("--user", "bob@example.org", "--pin", "4321")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	if !e.logsIn("bob@example.org", bobPass) {
		t.Error("bob's password changed before the link was used")
	}
	msgs := e.smtp.Messages()
	if len(msgs) != 1 || msgs[0].To[0] != "bob@example.org" {
		t.Fatalf("mail %+v", msgs)
	}
	if code := e.useLink(e.linkIn(msgs[0]), "4321", "bob's new password 1"); code != http.StatusOK {
		t.Fatalf("bob's link: %d", code)
	}
	if e.logsIn("bob@example.org", bobPass) || !e.logsIn("bob@example.org", "bob's new password 1") {
		t.Error("after bob's link, only the new password should work")
	}
}

// TestResetPasswordFallback: without a reset credential the command does
// what MOC did (the old password stops working at once) and says so.
func TestResetPasswordFallback(t *testing.T) {
	e := newRPEnv(t, false)
	const pin = "2468"
	dave, p1 := e.onboarded("dave@example.org", "", pin)
	code, out, errOut := e.run("--user", "dave@example.org")
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	for _, want := range []string{"WARNING: setpass has no reset credential", "falls back to MOC's behaviour",
		"The old password NO LONGER WORKS", "issued a password-reset link for dave@example.org", "mail: 1 delivered"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "keeps working") {
		t.Errorf("the fallback claims the password keeps working:\n%s", out)
	}
	if e.logsIn(dave.Name, p1) {
		t.Fatal("the old password still works after the fallback")
	}
	msgs := e.smtp.Messages()
	if len(msgs) != 1 || msgs[0].To[0] != "dave@example.org" {
		t.Fatalf("mail %+v", msgs)
	}
	p2 := "dave's new password " + rand.Text()
	if code := e.useLink(e.linkIn(msgs[0]), pin, p2); code != http.StatusOK {
		t.Fatalf("the fallback link: %d", code)
	}
	if !e.logsIn(dave.Name, p2) {
		t.Error("the new password does not work")
	}

	// No PIN on file and no --pin: refused before the password is touched.
	const erinPass = "Erin-passw0rd-untouched"
	if _, _, err := cloud.EnsureUser(t.Context(), e.ks.Identity, cloud.UserSpec{DomainID: e.domainID, Name: "erin@example.org", Password: erinPass}); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := e.run("--user", "erin@example.org"); code != 1 || !strings.Contains(errOut, "no PIN on file") {
		t.Errorf("exit %d\n%s", code, errOut)
	}
	if !e.logsIn("erin@example.org", erinPass) {
		t.Error("the fallback replaced the password of a user it then refused")
	}
	var evs []store.Event
	st, _ := store.Open(t.Context(), "sqlite://"+filepath.Join(e.dir, "kaizen.db"), nil)
	defer st.Close()
	evs, _ = st.Events(t.Context(), time.Time{}, dave.ID, 0)
	b, _ := json.Marshal(evs)
	if !strings.Contains(string(b), "user.password.reset-temporary") || !strings.Contains(string(b), `"temporary_password":"true"`) {
		t.Errorf("the fallback is not audited as such: %s", b)
	}
}
