package setpass

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/applicationcredentials"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/groups"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/projects"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/roles"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/tokens"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/users"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kaizen-onboard/kaizen/internal/cloud"
	"github.com/kaizen-onboard/kaizen/internal/store"
	"github.com/kaizen-onboard/kaizen/internal/testenv"
	"github.com/kaizen-onboard/kaizen/templates"
)

// ksFixture is a test domain with a project and helpers to make users.
type ksFixture struct {
	t         *testing.T
	ks        *testenv.KeystoneEnv
	domainID  string
	projectID string
}

func newKSFixture(t *testing.T) *ksFixture {
	ks := testenv.Keystone(t)
	domainID, _ := ks.Domain(t)
	p, err := projects.Create(t.Context(), ks.Identity, projects.CreateOpts{Name: "svc", DomainID: domainID}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	return &ksFixture{t: t, ks: ks, domainID: domainID, projectID: p.ID}
}

func (f *ksFixture) roleID(name string) string {
	f.t.Helper()
	return f.ks.Role(f.t, name)
}

// user creates a user with a password and, for each role, that role on
// the fixture's project.
func (f *ksFixture) user(name, password, email string, roleNames ...string) users.User {
	f.t.Helper()
	opts := users.CreateOpts{Name: name, DomainID: f.domainID, Password: password, Description: "Person " + name}
	if email != "" {
		opts.Extra = map[string]any{"email": email}
	}
	u, err := users.Create(f.t.Context(), f.ks.Identity, opts).Extract()
	if err != nil {
		f.t.Fatal(err)
	}
	for _, r := range roleNames {
		if err := roles.Assign(f.t.Context(), f.ks.Identity, f.roleID(r), roles.AssignOpts{UserID: u.ID, ProjectID: f.projectID}).ExtractErr(); err != nil {
			f.t.Fatal(err)
		}
	}
	return *u
}

// client authenticates as a user of the fixture's domain, scoped to its
// project.
func (f *ksFixture) client(name, password string) (*gophercloud.ServiceClient, error) {
	provider, err := openstack.NewClient(f.ks.AuthURL)
	if err != nil {
		return nil, err
	}
	provider.HTTPClient = http.Client{Timeout: time.Minute}
	err = openstack.Authenticate(f.t.Context(), provider, gophercloud.AuthOptions{
		IdentityEndpoint: f.ks.AuthURL, Username: name, DomainID: f.domainID, Password: password,
		AllowReauth: true, Scope: &gophercloud.AuthScope{ProjectID: f.projectID},
	})
	if err != nil {
		return nil, err
	}
	return openstack.NewIdentityV3(provider, gophercloud.EndpointOpts{})
}

func (f *ksFixture) canLogIn(name, password string) error {
	_, err := f.ks.AuthenticateUser(f.t.Context(), f.domainID, name, password)
	return err
}

// tokenValid asks Keystone (as the admin) whether a token is still accepted.
func (f *ksFixture) tokenValid(tok string) bool {
	f.t.Helper()
	err := tokens.Get(f.t.Context(), f.ks.Identity, tok).Err
	if err != nil && !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		f.t.Fatalf("validating a token: %v", err)
	}
	return err == nil
}

// TestResetCredentialAgainstKeystone finds out on the real Keystone what a
// reset credential needs and what a reset revokes; the README states what
// this test shows.
func TestResetCredentialAgainstKeystone(t *testing.T) {
	f := newKSFixture(t)
	ctx := t.Context()
	const p0, p1, p2 = "Original-passw0rd-1", "Reset-by-setpass-2", "Reset-again-setpass-3"
	ada := f.user("ada@example.org", p0, "ada@example.org", "member")

	// With Keystone's default policy, identity:update_user is
	// rule:admin_required: the admin role on any project (here a plain
	// project of a test domain, not the admin project) is enough, and it
	// makes the service user a cloud admin. member, reader and manager on
	// the project are refused.
	for _, role := range []string{"member", "reader", "manager"} {
		t.Run("refused with "+role, func(t *testing.T) {
			// f.user creates the role if missing: manager exists only once
			// something created it (Keystone's bootstrap makes admin, member
			// and reader).
			name := "svc-" + role
			f.user(name, "svc-password-"+role, "", role)
			c, err := f.client(name, "svc-password-"+role)
			if err != nil {
				t.Fatal(err)
			}
			if err := NewResetter(cloud.NewKeystone(c)).SetPassword(ctx, ada.ID, "should not be set 1"); !errors.Is(err, ErrResetDenied) {
				t.Errorf("SetPassword with %s: %v, want ErrResetDenied", role, err)
			}
			if err := f.canLogIn(ada.Name, p0); err != nil {
				t.Errorf("ada's password changed: %v", err)
			}
		})
	}

	f.user("svc-reset", "svc-reset-password", "", "admin")
	c, err := f.client("svc-reset", "svc-reset-password")
	if err != nil {
		t.Fatal(err)
	}
	r := NewResetter(cloud.NewKeystone(c))

	// Keystone itself revokes every token of a user whose password is set.
	tok0, err := f.ks.AuthenticateUser(ctx, f.domainID, ada.Name, p0)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.SetPassword(ctx, ada.ID, p1); err != nil {
		t.Fatalf("SetPassword with admin on a project: %v", err)
	}
	if err := f.canLogIn(ada.Name, p1); err != nil {
		t.Errorf("the new password: %v", err)
	}
	if err := f.canLogIn(ada.Name, p0); !gophercloud.ResponseCodeIs(err, http.StatusUnauthorized) {
		t.Errorf("the old password: %v, want 401", err)
	}
	if f.tokenValid(tok0) {
		t.Error("a token from before the reset survived it (README says Keystone revokes them)")
	}

	t.Run("unknown user", func(t *testing.T) {
		if err := r.SetPassword(ctx, "0000000000000000000000000000dead", p1); !errors.Is(err, ErrUnknownUser) {
			t.Errorf("%v", err)
		}
	})

	t.Run("revoke tokens: what survives", func(t *testing.T) {
		// Keystone's revocation events have a resolution of one second: a
		// token issued in the second of a password change is revoked too.
		time.Sleep(1100 * time.Millisecond)
		adaClient, err := f.client(ada.Name, p1)
		if err != nil {
			t.Fatal(err)
		}
		secret := "app-cred-secret-" + rand.Text()
		ac, err := applicationcredentials.Create(ctx, adaClient, ada.ID, applicationcredentials.CreateOpts{
			Name: "survivor", Secret: secret}).Extract()
		if err != nil {
			t.Fatal(err)
		}
		// Deleted through the API before the domain: deleting the user
		// leaves the credential's role rows behind in the dev Keystone's
		// SQLite database (no foreign-key cascade there), which breaks the
		// next application credential created.
		t.Cleanup(func() {
			c, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := applicationcredentials.Delete(c, f.ks.Identity, ada.ID, ac.ID).ExtractErr(); err != nil {
				t.Errorf("deleting the application credential: %v", err)
			}
		})
		tok1 := adaClient.Token()
		acProvider, _ := openstack.NewClient(f.ks.AuthURL)
		acAuth := gophercloud.AuthOptions{IdentityEndpoint: f.ks.AuthURL, ApplicationCredentialID: ac.ID, ApplicationCredentialSecret: secret}
		if err := openstack.Authenticate(ctx, acProvider, acAuth); err != nil {
			t.Fatal(err)
		}
		acTok := acProvider.Token()
		if err := r.SetPassword(ctx, ada.ID, p2); err != nil {
			t.Fatal(err)
		}
		if f.tokenValid(tok1) || f.tokenValid(acTok) {
			t.Error("a token survived the password change (README says Keystone revokes them)")
		}
		if err := r.RevokeTokens(ctx, ada.ID); err != nil {
			t.Fatalf("RevokeTokens: %v", err)
		}
		if f.tokenValid(tok1) {
			t.Error("a project-scoped token survived")
		}
		u, err := users.Get(ctx, f.ks.Identity, ada.ID).Extract()
		if err != nil || !u.Enabled {
			t.Fatalf("ada is not enabled again: %+v, %v", u, err)
		}
		time.Sleep(1100 * time.Millisecond)
		if err := f.canLogIn(ada.Name, p2); err != nil {
			t.Errorf("the password after revoking: %v", err)
		}
		// Application credentials are not touched: they still log in.
		provider, _ := openstack.NewClient(f.ks.AuthURL)
		if err := openstack.Authenticate(ctx, provider, acAuth); err != nil {
			t.Errorf("the application credential no longer logs in: %v (README says it survives)", err)
		}
	})

	t.Run("revoke leaves a disabled user disabled", func(t *testing.T) {
		bob := f.user("bob@example.org", p0, "")
		off := false
		if _, err := users.Update(ctx, f.ks.Identity, bob.ID, users.UpdateOpts{Enabled: &off}).Extract(); err != nil {
			t.Fatal(err)
		}
		if err := r.RevokeTokens(ctx, bob.ID); err != nil {
			t.Fatal(err)
		}
		if u, _ := users.Get(ctx, f.ks.Identity, bob.ID).Extract(); u.Enabled {
			t.Error("RevokeTokens enabled a disabled user")
		}
	})
}

// TestDirectoryAgainstKeystone: finding users by name across domains and
// their effective roles, through groups and implied roles.
func TestDirectoryAgainstKeystone(t *testing.T) {
	f := newKSFixture(t)
	ctx := t.Context()
	k := NewKeystone(cloud.NewKeystone(f.ks.Identity), f.ks.Admin.ProjectName, f.ks.Admin.ProjectDomainName)
	ada := f.user("ada@example.org", "pw-ada-123456", "ada.l@example.org", "member")
	found, err := k.FindUsers(ctx, "ADA@Example.ORG")
	if err != nil {
		t.Fatal(err)
	}
	var mine []User
	for _, u := range found {
		if u.DomainID == f.domainID {
			mine = append(mine, u)
		}
	}
	if len(mine) != 1 || mine[0].ID != ada.ID || mine[0].Email != "ada.l@example.org" || !mine[0].Enabled ||
		mine[0].FullName != "Person ada@example.org" {
		t.Errorf("FindUsers: %+v", mine)
	}
	if got, _ := k.FindUsers(ctx, "da@example.org"); slices.ContainsFunc(got, func(u User) bool { return u.ID == ada.ID }) {
		t.Error("FindUsers matched a substring")
	}

	rs, err := k.UserRoles(ctx, ada.ID)
	if err != nil || !slices.Contains(rs, "member") || slices.Contains(rs, "admin") {
		t.Errorf("ada's roles: %v, %v", rs, err)
	}

	// admin through a group.
	grace := f.user("grace@example.org", "pw-grace-123456", "")
	g, err := groups.Create(ctx, f.ks.Identity, groups.CreateOpts{Name: "admins", DomainID: f.domainID}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if err := users.AddToGroup(ctx, f.ks.Identity, g.ID, grace.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if err := roles.Assign(ctx, f.ks.Identity, f.roleID("admin"), roles.AssignOpts{GroupID: g.ID, ProjectID: f.projectID}).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if rs, err := k.UserRoles(ctx, grace.ID); err != nil || protectedRole(rs, nil) == "" {
		t.Errorf("admin through a group is not seen: %v, %v", rs, err)
	}

	// Keystone refuses any role implying admin ([assignment]
	// prohibited_implied_role), but another protected role may be implied.
	mk := func(prefix string) roles.Role {
		r, err := roles.Create(ctx, f.ks.Identity, roles.CreateOpts{Name: prefix + strings.ToLower(rand.Text()[:8])}).Extract()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			c, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			_ = roles.Delete(c, f.ks.Identity, r.ID).ExtractErr()
		})
		return *r
	}
	secret, boss := mk("kzt-secret-"), mk("kzt-boss-")
	if _, err := roles.CreateRoleInferenceRule(ctx, f.ks.Identity, boss.ID, f.roleID("admin")).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusForbidden) {
		t.Errorf("a role implying admin: %v, want 403 (README says Keystone refuses it)", err)
	}
	if _, err := roles.CreateRoleInferenceRule(ctx, f.ks.Identity, boss.ID, secret.ID).Extract(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // before the roles (cleanups run last first)
		c, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = roles.DeleteRoleInferenceRule(c, f.ks.Identity, boss.ID, secret.ID).ExtractErr()
	})
	hopper := f.user("hopper@example.org", "pw-hopper-123456", "")
	if err := roles.Assign(ctx, f.ks.Identity, boss.ID, roles.AssignOpts{UserID: hopper.ID, DomainID: f.domainID}).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if rs, err := k.UserRoles(ctx, hopper.ID); err != nil || protectedRole(rs, []string{strings.ToUpper(secret.Name)}) == "" {
		t.Errorf("a role implying a protected one is not seen: %v, %v", rs, err)
	}
}

// TestResetPageAgainstKeystone runs the self-service page on a real HTTP
// server, with real time, the real Keystone and a reset credential: known,
// unknown and protected addresses answer alike and take the floor within a
// tolerance; the mailed link keeps the old password working until used.
func TestResetPageAgainstKeystone(t *testing.T) {
	f := newKSFixture(t)
	ctx := t.Context()
	const floor, tolerance = 600 * time.Millisecond, 250 * time.Millisecond
	const oldPass = "Current-passw0rd-ada"
	name := "ada-" + strings.ToLower(rand.Text()[:8]) + "@example.org" // unique across domains
	ada := f.user(name, oldPass, "", "member")
	rootName := "root-" + strings.ToLower(rand.Text()[:8]) + "@example.org"
	root := f.user(rootName, "Root-passw0rd-1234", "", "admin")
	f.user("svc-reset", "svc-reset-password", "", "admin")
	rc, err := f.client("svc-reset", "svc-reset-password")
	if err != nil {
		t.Fatal(err)
	}

	st, err := store.Open(ctx, "sqlite://"+t.TempDir()+"/s.db", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	for _, id := range []string{ada.ID, root.ID} {
		if err := st.PutPIN(ctx, id, pinMAC(testKeys(t), id, testPIN), time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	pages, err := LoadPages(templates.FS, "", Branding{CloudName: "Test Cloud", Support: "help@example.org"})
	if err != nil {
		t.Fatal(err)
	}
	k := NewKeystone(cloud.NewKeystone(f.ks.Identity), f.ks.Admin.ProjectName, f.ks.Admin.ProjectDomainName)
	mailer := &fakeMailer{}
	logs := &testenv.SyncBuffer{}
	var bg sync.WaitGroup
	s := testSettings()
	s.Reset = ResetSettings{MinTime: floor, Helpdesk: resetHelpdesk}
	h, err := NewHandler(Deps{Store: st, Keystone: k, Directory: k, Resetter: NewResetter(cloud.NewKeystone(rc)), Mail: mailer,
		Go: bg.Go, Pages: pages, Registry: prometheus.NewRegistry(), Now: time.Now, Random: rand.Reader,
		Logger: slog.New(slog.NewTextHandler(logs, nil)), Settings: s})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()

	post := func(email string) (int, string, time.Duration) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/reset",
			strings.NewReader(url.Values{"email": {email}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", srv.URL)
		start := time.Now()
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body := new(strings.Builder)
		_, _ = io.Copy(body, resp.Body)
		resp.Body.Close()
		took := time.Since(start)
		return resp.StatusCode, body.String(), took
	}
	var want string
	for round := range 3 {
		for _, email := range []string{name, "nobody-" + rand.Text()[:6] + "@example.org", rootName} {
			code, body, took := post(email)
			if code != http.StatusOK {
				t.Fatalf("%s: %d", email, code)
			}
			if want == "" {
				want = body
			} else if body != want {
				t.Errorf("round %d, %s: the answer differs", round, email)
			}
			if took < floor || took > floor+tolerance {
				t.Errorf("round %d, %s: answered in %v, want %v..%v", round, email, took, floor, floor+tolerance)
			}
			t.Logf("round %d: %v", round, took)
		}
	}
	bg.Wait()

	// Three requests for ada (the per-account limit), none for root.
	msgs := mailer.all()
	if len(msgs) != 3 {
		t.Fatalf("%d mails, want 3 links for ada: %+v", len(msgs), msgs)
	}
	for _, m := range msgs {
		if m.to[0].Address != name {
			t.Errorf("a mail went to %s", m.to[0].Address)
		}
	}
	if !strings.Contains(logs.String(), "protected role") || !strings.Contains(logs.String(), root.ID) {
		t.Error("the log does not say why root got no link")
	}

	// Only the last link works (each request replaced the previous one);
	// the old password works until it is used.
	tok := linkToken(t, msgs[len(msgs)-1])
	if err := f.canLogIn(name, oldPass); err != nil {
		t.Fatalf("the old password stopped working before the link was used: %v", err)
	}
	form := url.Values{"token": {tok}, "pin": {testPIN}, "password": {newPass}, "confirm": {newPass}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("completing the link: %s", resp.Status)
	}
	if err := f.canLogIn(name, newPass); err != nil {
		t.Errorf("the new password: %v", err)
	}
	if err := f.canLogIn(name, oldPass); !gophercloud.ResponseCodeIs(err, http.StatusUnauthorized) {
		t.Errorf("the old password after the link: %v, want 401", err)
	}
}
