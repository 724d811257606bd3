package setpass_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/projects"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/roles"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/tokens"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/users"

	"github.com/kaizen-onboard/kaizen/internal/testenv"
	"github.com/kaizen-onboard/kaizen/internal/testenv/setpasstest"
)

// mocAnswer is what testdata/moc_admin_client.py prints.
type mocAnswer struct {
	Status      int    `json:"status"`
	Token       string `json:"token"`
	ContentType string `json:"content_type"`
	// When keystoneauth1 raised:
	Raised     string `json:"raised"`
	HTTPStatus int    `json:"http_status"`
	Message    string `json:"message"`
	Body       string `json:"body"`
}

// TestMOCAdminClient runs the admin client of MOC's setpass README, in
// Python with keystoneauth1, against the real setpass handler and the real
// Keystone: MOC's scripts must work unchanged.
func TestMOCAdminClient(t *testing.T) {
	ks := testenv.Keystone(t)
	python := testenv.KeystoneauthPython(t)
	ctx := t.Context()
	domainID, _ := ks.Domain(t)

	adminProjectID := currentProject(t, ks)
	roleID := func(name string) string { return ks.Role(t, name) }
	adminRole, memberRole := roleID("admin"), roleID("member")
	other, err := projects.Create(ctx, ks.Identity, projects.CreateOpts{Name: "moc-other", DomainID: domainID}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	newUser := func(name, password string, grants ...[2]string) *users.User {
		u, err := users.Create(ctx, ks.Identity, users.CreateOpts{Name: name, DomainID: domainID, Password: password}).Extract()
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range grants {
			if err := roles.Assign(ctx, ks.Identity, g[0], roles.AssignOpts{UserID: u.ID, ProjectID: g[1]}).ExtractErr(); err != nil {
				t.Fatal(err)
			}
		}
		return u
	}
	const adminPass, memberPass, tempPass, pin = "moc-admin-password-1", "moc-member-password-1", "Temp-Passw0rd-moc", "2468"
	newUser("moc-admin", adminPass, [2]string{adminRole, adminProjectID}, [2]string{memberRole, other.ID})
	newUser("moc-member", memberPass, [2]string{memberRole, adminProjectID})
	target := newUser("moc-newbie", tempPass)

	srv := setpasstest.New(t, ks, setpasstest.Options{})

	run := func(t *testing.T, mocCase, username, password, projectID string) mocAnswer {
		t.Helper()
		cmd := exec.CommandContext(ctx, python, "testdata/moc_admin_client.py")
		cmd.Env = append(os.Environ(),
			"MOC_CASE="+mocCase, "OS_AUTH_URL="+ks.AuthURL, "SETPASS_URL="+srv.URL, "USER_ID="+target.ID,
			"ADMIN_USERNAME="+username, "ADMIN_USER_DOMAIN_ID="+domainID, "ADMIN_PASSWORD="+password,
			"ADMIN_PROJECT_ID="+projectID, "TEMP_PASSWORD="+tempPass, "PIN="+pin)
		out, err := cmd.Output()
		if err != nil {
			var stderr string
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = string(ee.Stderr)
			}
			t.Fatalf("%s: %v\n%s", mocCase, err, stderr)
		}
		var a mocAnswer
		if err := json.Unmarshal(out, &a); err != nil {
			t.Fatalf("%s printed %q: %v", mocCase, out, err)
		}
		return a
	}

	tests := []struct {
		name, mocCase, user, password, project string
		status                                 int // 200, or what keystoneauth1 raised for
		raised                                 string
	}{
		{"the README's unscoped admin", "moc-readme", "moc-admin", adminPass, "", 200, ""},
		{"admin, token scoped to another project", "project-scoped", "moc-admin", adminPass, other.ID, 200, ""},
		{"admin, token scoped to the admin project", "project-scoped", "moc-admin", adminPass, adminProjectID, 200, ""},
		{"member of the admin project without admin", "moc-readme", "moc-member", memberPass, "", 403, "Forbidden"},
		{"member, token scoped to the admin project", "project-scoped", "moc-member", memberPass, adminProjectID, 403, "Forbidden"},
		{"no token", "no-token", "", "", "", 401, "Unauthorized"},
		{"a token Keystone does not know", "bad-token", "", "", "", 401, "Unauthorized"},
	}
	var lastToken string
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := run(t, tt.mocCase, tt.user, tt.password, tt.project)
			if tt.status == 200 {
				if a.Raised != "" || a.Status != 200 || a.Token == "" || strings.ContainsAny(a.Token, "{}\" \n") {
					t.Fatalf("want 200 and a bare token as r.text, got %+v", a)
				}
				lastToken = a.Token
				return
			}
			if a.Raised != tt.raised || a.HTTPStatus != tt.status {
				t.Fatalf("keystoneauth1 raised %q (%d), want %s (%d): %+v", a.Raised, a.HTTPStatus, tt.raised, tt.status, a)
			}
			if !strings.HasPrefix(a.ContentType, "application/json") {
				t.Errorf("Content-Type %q", a.ContentType)
			}
			var body struct {
				Error struct {
					Code    int    `json:"code"`
					Title   string `json:"title"`
					Message string `json:"message"`
				} `json:"error"`
			}
			if err := json.Unmarshal([]byte(a.Body), &body); err != nil {
				t.Fatalf("the body is not JSON: %q", a.Body)
			}
			if e := body.Error; e.Code != tt.status || e.Title != http.StatusText(tt.status) || e.Message == "" {
				t.Errorf("not Keystone's error shape: %s", a.Body)
			}
			// keystoneauth1 read it: its exception carries the message
			// (followed by " (HTTP 403)").
			if !strings.HasPrefix(a.Message, body.Error.Message) {
				t.Errorf("keystoneauth1's message %q, the body's %q", a.Message, body.Error.Message)
			}
		})
	}

	t.Run("the token works with the PIN", func(t *testing.T) {
		if lastToken == "" {
			t.Fatal("no token was issued")
		}
		const newPass = "moc client chose this password"
		post := func(pin string) int {
			form := url.Values{"token": {lastToken}, "pin": {pin}, "password": {newPass}, "confirm": {newPass}}
			resp, err := srv.HTTP.Client().PostForm(srv.URL, form)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		if code := post("1111"); code == http.StatusOK {
			t.Fatal("a wrong PIN set the password")
		}
		if code := post(pin); code != http.StatusOK {
			t.Fatalf("the right PIN: %d", code)
		}
		if _, err := ks.AuthenticateUser(ctx, domainID, "moc-newbie", newPass); err != nil {
			t.Errorf("the new password does not log in: %v", err)
		}
		if _, err := ks.AuthenticateUser(ctx, domainID, "moc-newbie", tempPass); !gophercloud.ResponseCodeIs(err, http.StatusUnauthorized) {
			t.Errorf("the temporary password still logs in (or another error): %v", err)
		}
	})
}

// currentProject is the ID of the project the harness's admin token is
// scoped to: the admin project.
func currentProject(t *testing.T, ks *testenv.KeystoneEnv) string {
	t.Helper()
	p, err := tokens.Get(t.Context(), ks.Identity, ks.Identity.Token()).ExtractProject()
	if err != nil || p == nil {
		t.Fatalf("the admin token's project: %v", err)
	}
	return p.ID
}
