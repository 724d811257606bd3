package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/projects"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/roles"

	"github.com/kaizen-onboard/kaizen/internal/cli"
	"github.com/kaizen-onboard/kaizen/internal/cloud"
	"github.com/kaizen-onboard/kaizen/internal/testenv"
)

// TestServeReset runs the wired service with a reset credential against
// the real Keystone: a helpdesk reset link keeps the old password until it
// is used, and the /reset page's mail reaches the maildir.
func TestServeReset(t *testing.T) {
	ks := testenv.Keystone(t)
	ctx := t.Context()
	domainID, domain := ks.Domain(t)
	p, err := projects.Create(ctx, ks.Identity, projects.CreateOpts{Name: "svc", DomainID: domainID}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	svc, _, err := cloud.EnsureUser(ctx, ks.Identity, cloud.UserSpec{DomainID: domainID, Name: "svc-reset", Password: "svc-reset-password"})
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
	const p0, p1 = "Ada-original-passw0rd", "Ada chose this one herself"
	name := "ada-" + strings.ToLower(domainID[:8]) + "@example.org" // unique across domains
	ada, _, err := cloud.EnsureUser(ctx, ks.Identity, cloud.UserSpec{DomainID: domainID, Name: name, Password: p0})
	if err != nil {
		t.Fatal(err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	dir := t.TempDir()
	settings := fmt.Sprintf(`
[setpass]
url = %q
reset_user = "svc-reset"
reset_user_domain = %q
reset_project = "svc"
reset_project_domain = %q
reset_min_time = "300ms"
[store]
url = "sqlite://%s/s.db"
[mail]
maildir = "%s/mail"
`, base+"/", domain, domain, dir, dir)
	run := func(resetPassword string, ln net.Listener) (context.CancelFunc, chan error, error) {
		cfgFile := filepath.Join(dir, "settings.toml")
		if err := os.WriteFile(cfgFile, []byte(settings), 0o600); err != nil {
			t.Fatal(err)
		}
		getenv := func(k string) string {
			switch k {
			case "KAIZEN_SETPASS_SECRET_KEY":
				return strings.Repeat("k", 40)
			case "KAIZEN_SETPASS_RESET_PASSWORD":
				return resetPassword
			}
			return os.Getenv(k)
		}
		g := cli.NewGlobal("setpass", "", &bytes.Buffer{})
		if _, err := g.Parse([]string{"--config", cfgFile}); err != nil {
			t.Fatal(err)
		}
		cfg, err := g.LoadConfig(getenv)
		if err != nil {
			return nil, nil, err
		}
		sctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		var logs bytes.Buffer
		go func() {
			done <- serveConfig(sctx, cfg, cli.Env{Global: g, Getenv: getenv, Stdout: &logs, Stderr: &logs}, listeners{public: ln})
		}()
		return cancel, done, nil
	}

	t.Run("wrong reset password stops start-up", func(t *testing.T) {
		l2, _ := net.Listen("tcp", "127.0.0.1:0")
		defer l2.Close()
		cancel, done, err := run("not-the-password", l2)
		if err != nil {
			t.Fatal(err)
		}
		defer cancel()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), "setpass.reset_user") {
				t.Errorf("serve: %v, want an error naming setpass.reset_user", err)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("setpass started with a wrong reset password")
		}
	})

	cancel, done, err := run("svc-reset-password", ln)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		if resp, err := http.Get(base + "/healthz"); err == nil {
			resp.Body.Close()
			break
		}
		time.Sleep(50 * time.Millisecond)
	}

	// The helpdesk's link: PUT /reset with a PIN.
	req, _ := http.NewRequestWithContext(ctx, http.MethodPut, base+"/reset/"+ada.ID, strings.NewReader(`{"pin": "1357"}`))
	req.Header.Set("X-Auth-Token", ks.Identity.Token())
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var issued struct{ Token string }
	json.NewDecoder(resp.Body).Decode(&issued)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || issued.Token == "" {
		t.Fatalf("PUT /reset: %s", resp.Status)
	}
	logsIn := func(pw string) bool {
		_, err := ks.AuthenticateUser(ctx, domainID, name, pw)
		if err != nil && !gophercloud.ResponseCodeIs(err, http.StatusUnauthorized) {
			t.Fatal(err)
		}
		return err == nil
	}
	if !logsIn(p0) {
		t.Fatal("the old password stopped working when the link was issued")
	}
	resp, err = http.PostForm(base+"/", url.Values{"token": {issued.Token}, "pin": {"1357"}, "password": {p1}, "confirm": {p1}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("completing the link: %s", resp.Status)
	}
	if logsIn(p0) || !logsIn(p1) {
		t.Fatal("after the link only the new password should work")
	}

	// The self-service page: its PIN-gated link reaches the maildir.
	form := url.Values{"email": {strings.ToUpper(name)}}
	req, _ = http.NewRequestWithContext(ctx, http.MethodPost, base+"/reset", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", base)
	start := time.Now()
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if took := time.Since(start); resp.StatusCode != http.StatusOK || took < 300*time.Millisecond {
		t.Errorf("POST /reset: %s in %v", resp.Status, took)
	}
	var found string
	for deadline := time.Now().Add(15 * time.Second); found == "" && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		files, _ := filepath.Glob(filepath.Join(dir, "mail", "new", "*"))
		for _, f := range files {
			if b, _ := os.ReadFile(f); bytes.Contains(b, []byte("Delivered-To: "+name)) {
				found = string(b)
			}
		}
	}
	if !strings.Contains(found, "Reset your") || !strings.Contains(found, base+"/?token=") {
		t.Errorf("no password-reset mail for %s in the maildir:\n%s", name, found)
	}
	if !logsIn(p1) {
		t.Error("asking for a link changed the password")
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop")
	}
}
