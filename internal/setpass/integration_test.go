package setpass

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/projects"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/roles"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/users"

	"github.com/kaizen-onboard/kaizen/internal/cloud"
	"github.com/kaizen-onboard/kaizen/internal/setpass/client"
	"github.com/kaizen-onboard/kaizen/internal/testenv"
)

// TestAgainstKeystone runs the whole flow against the real Keystone.
func TestAgainstKeystone(t *testing.T) {
	ks := testenv.Keystone(t)
	ctx := t.Context()
	domainID, _ := ks.Domain(t)

	newUser, err := users.Create(ctx, ks.Identity, users.CreateOpts{Name: "newbie", DomainID: domainID,
		Password: tempPass, Extra: map[string]any{"email": "newbie@example.org"}}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	memberToken := memberToken(t, ks, domainID)
	adminToken := ks.Identity.Token()

	real := NewKeystone(cloud.NewKeystone(ks.Identity), ks.Admin.ProjectName, ks.Admin.ProjectDomainName)
	e := newEnv(t, real, nil)
	srv := httptest.NewServer(e.h)
	defer srv.Close()
	apiAs := func(token string) *client.Client {
		c, err := client.New(srv.URL, srv.Client(), func(context.Context) (string, error) { return token, nil })
		if err != nil {
			t.Fatal(err)
		}
		return c
	}

	t.Run("refusals", func(t *testing.T) {
		tests := []struct {
			name, token, user string
			want              error
		}{
			{"no token", "", newUser.ID, client.ErrIssueUnauthorized},
			{"invalid token", "gAAAAABinvalidtoken", newUser.ID, client.ErrIssueUnauthorized},
			{"not admin", memberToken, newUser.ID, client.ErrIssueForbidden},
			{"unknown user", adminToken, "0000000000000000000000000000dead", client.ErrIssueUnknownUser},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, err := apiAs(tt.token).Issue(ctx, tt.user, tempPass, testPIN)
				if !errors.Is(err, tt.want) {
					t.Errorf("got %v, want %v", err, tt.want)
				}
			})
		}
	})

	issued, err := apiAs(adminToken).Issue(ctx, newUser.ID, tempPass, testPIN)
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		e.post(issued.Token, "0000", goodPass, goodPass)
	}
	if w := e.post(issued.Token, testPIN, goodPass, goodPass); w.Code != http.StatusGone {
		t.Fatalf("locked link accepted the right PIN: %d", w.Code)
	}
	// Re-issue with the PIN omitted: it carries over.
	issued, err = apiAs(adminToken).Issue(ctx, newUser.ID, tempPass, "")
	if err != nil {
		t.Fatal(err)
	}
	if w := e.post(issued.Token, testPIN, goodPass, goodPass); w.Code != http.StatusOK {
		t.Fatalf("right PIN and a good password: %d %s", w.Code, w.Body)
	}
	if _, err := ks.AuthenticateUser(ctx, domainID, "newbie", goodPass); err != nil {
		t.Errorf("the new password does not work: %v", err)
	}
	if _, err := ks.AuthenticateUser(ctx, domainID, "newbie", tempPass); !gophercloud.ResponseCodeIs(err, http.StatusUnauthorized) {
		t.Errorf("the temporary password still works (or another error): %v", err)
	}
	if w := e.post(issued.Token, testPIN, goodPass+"2", goodPass+"2"); w.Code != http.StatusGone {
		t.Errorf("used link: %d", w.Code)
	}

	t.Run("temporary password no longer valid", func(t *testing.T) {
		// The user's password is now goodPass, so a link sealing tempPass
		// is spent without changing anything.
		again, err := apiAs(adminToken).Issue(ctx, newUser.ID, tempPass, testPIN)
		if err != nil {
			t.Fatal(err)
		}
		if w := e.post(again.Token, testPIN, "another good password", "another good password"); w.Code != http.StatusConflict {
			t.Errorf("%d %s", w.Code, w.Body)
		}
		if _, err := ks.AuthenticateUser(ctx, domainID, "newbie", goodPass); err != nil {
			t.Errorf("password changed anyway: %v", err)
		}
	})
	t.Run("healthz", func(t *testing.T) {
		if err := real.Ping(ctx); err != nil {
			t.Errorf("ping: %v", err)
		}
	})
}

// memberToken returns a token of a user with the member role on a project
// of the test's domain: valid, but not admin on the admin project.
func memberToken(t *testing.T, ks *testenv.KeystoneEnv, domainID string) string {
	t.Helper()
	ctx := t.Context()
	p, err := projects.Create(ctx, ks.Identity, projects.CreateOpts{Name: "p", DomainID: domainID}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	u, err := users.Create(ctx, ks.Identity, users.CreateOpts{Name: "member", DomainID: domainID, Password: "member-password-1"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	pages, err := roles.List(ks.Identity, roles.ListOpts{Name: "member"}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := roles.ExtractRoles(pages)
	if err != nil || len(rs) == 0 {
		t.Fatalf("no member role: %v", err)
	}
	if err := roles.Assign(ctx, ks.Identity, rs[0].ID, roles.AssignOpts{UserID: u.ID, ProjectID: p.ID}).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	tok, err := ks.AuthenticateUserInProject(ctx, domainID, "member", "member-password-1", p.ID)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
