package testenv

import (
	"context"
	"crypto/rand"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/domains"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/projects"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/roles"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/tokens"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/users"
)

// TestKeystoneProjectUserRole provisions what Kaizen provisions for a new
// user (project, user, member role on the project) in a domain of its own,
// then checks Keystone reports it all back and lets the user log in.
func TestKeystoneProjectUserRole(t *testing.T) {
	t.Parallel()
	ks := Keystone(t)
	ctx := t.Context()
	client := ks.Identity
	domainID, domainName := ks.Domain(t)
	t.Logf("domain %s (%s)", domainName, domainID)

	pages, err := roles.List(client, nil).AllPages(ctx)
	if err != nil {
		t.Fatalf("list roles: %v", err)
	}
	allRoles, err := roles.ExtractRoles(pages)
	if err != nil {
		t.Fatalf("extract roles: %v", err)
	}
	roleIDs := make(map[string]string)
	for _, r := range allRoles {
		if r.DomainID == "" { // global roles only
			roleIDs[r.Name] = r.ID
		}
	}
	for _, want := range []string{"admin", "member", "reader"} {
		if roleIDs[want] == "" {
			t.Errorf("bootstrap role %q missing; global roles: %v", want, roleIDs)
		}
	}
	memberID := roleIDs["member"]
	if memberID == "" {
		t.FailNow()
	}

	enabled := true
	project, err := projects.Create(ctx, client, projects.CreateOpts{
		Name: "kzt-project", DomainID: domainID, Enabled: &enabled,
		Description: "onboarding test project",
	}).Extract()
	if err != nil {
		t.Fatalf("create project: %v", err)
	}
	password := rand.Text()
	user, err := users.Create(ctx, client, users.CreateOpts{
		Name: "kzt-user", DomainID: domainID, Enabled: &enabled, Password: password,
		DefaultProjectID: project.ID,
	}).Extract()
	if err != nil {
		t.Fatalf("create user: %v", err)
	}
	err = roles.Assign(ctx, client, memberID, roles.AssignOpts{UserID: user.ID, ProjectID: project.ID}).ExtractErr()
	if err != nil {
		t.Fatalf("assign member on project to user: %v", err)
	}

	t.Run("project in domain", func(t *testing.T) {
		got, err := projects.Get(ctx, client, project.ID).Extract()
		if err != nil {
			t.Fatalf("get: %v", err)
		}
		if got.Name != project.Name || got.DomainID != domainID || !got.Enabled {
			t.Errorf("get = {Name:%q DomainID:%q Enabled:%v}, want {%q %q true}",
				got.Name, got.DomainID, got.Enabled, project.Name, domainID)
		}
		pages, err := projects.List(client, projects.ListOpts{DomainID: domainID}).AllPages(ctx)
		if err != nil {
			t.Fatalf("list: %v", err)
		}
		list, err := projects.ExtractProjects(pages)
		if err != nil {
			t.Fatalf("extract: %v", err)
		}
		if len(list) != 1 || list[0].ID != project.ID {
			t.Errorf("projects in domain = %+v, want only %s", list, project.ID)
		}
	})

	t.Run("user in domain", func(t *testing.T) {
		got, err := users.Get(ctx, client, user.ID).Extract()
		if err != nil {
			t.Fatalf("get: %v", err)
		}
		if got.Name != user.Name || got.DomainID != domainID || !got.Enabled || got.DefaultProjectID != project.ID {
			t.Errorf("get = {Name:%q DomainID:%q Enabled:%v DefaultProjectID:%q}, want {%q %q true %q}",
				got.Name, got.DomainID, got.Enabled, got.DefaultProjectID, user.Name, domainID, project.ID)
		}
		pages, err := users.List(client, users.ListOpts{DomainID: domainID}).AllPages(ctx)
		if err != nil {
			t.Fatalf("list: %v", err)
		}
		list, err := users.ExtractUsers(pages)
		if err != nil {
			t.Fatalf("extract: %v", err)
		}
		if len(list) != 1 || list[0].ID != user.ID {
			t.Errorf("users in domain = %+v, want only %s", list, user.ID)
		}
	})

	t.Run("role assignment listed", func(t *testing.T) {
		names := true
		pages, err := roles.ListAssignments(client, roles.ListAssignmentsOpts{
			ScopeProjectID: project.ID, UserID: user.ID, IncludeNames: &names,
		}).AllPages(ctx)
		if err != nil {
			t.Fatalf("list assignments: %v", err)
		}
		list, err := roles.ExtractRoleAssignments(pages)
		if err != nil {
			t.Fatalf("extract: %v", err)
		}
		if len(list) != 1 {
			t.Fatalf("assignments = %+v, want exactly one", list)
		}
		a := list[0]
		if a.Role.ID != memberID || a.Role.Name != "member" || a.User.ID != user.ID || a.Scope.Project.ID != project.ID {
			t.Errorf("assignment = %+v, want member for %s on %s", a, user.ID, project.ID)
		}
	})

	t.Run("authenticate", func(t *testing.T) {
		for _, tc := range []struct {
			name, user, domainID, password string
			wantStatus                     int // 0: success
		}{
			{"right password", user.Name, domainID, password, 0},
			{"wrong password", user.Name, domainID, password + "x", http.StatusUnauthorized},
			{"unknown user", "kzt-nobody", domainID, password, http.StatusUnauthorized},
			{"user looked up in another domain", user.Name, "default", password, http.StatusUnauthorized},
		} {
			t.Run(tc.name, func(t *testing.T) {
				tokenID, err := ks.AuthenticateUserInProject(ctx, tc.domainID, tc.user, tc.password, project.ID)
				if tc.wantStatus != 0 {
					if !gophercloud.ResponseCodeIs(err, tc.wantStatus) {
						t.Fatalf("err = %v, want HTTP %d", err, tc.wantStatus)
					}
					return
				}
				if err != nil {
					t.Fatalf("authenticate: %v", err)
				}
				// Validate the token as admin to see what it is scoped to.
				res := tokens.Get(ctx, client, tokenID)
				gotProject, err := res.ExtractProject()
				if err != nil {
					t.Fatalf("validate token: %v", err)
				}
				gotUser, err := res.ExtractUser()
				if err != nil {
					t.Fatalf("token user: %v", err)
				}
				gotRoles, err := res.ExtractRoles()
				if err != nil {
					t.Fatalf("token roles: %v", err)
				}
				if gotProject == nil || gotProject.ID != project.ID || gotUser.ID != user.ID {
					t.Errorf("token scoped to project %+v for user %+v, want %s for %s", gotProject, gotUser, project.ID, user.ID)
				}
				if !slices.ContainsFunc(gotRoles, func(r tokens.Role) bool { return r.ID == memberID }) {
					t.Errorf("token roles = %+v, want member", gotRoles)
				}
			})
		}
	})

	t.Run("no scope requested", func(t *testing.T) {
		tokenID, err := ks.AuthenticateUser(ctx, domainID, user.Name, password)
		if err != nil {
			t.Fatalf("authenticate: %v", err)
		}
		// Keystone scopes such a token to the user's default project.
		if p, err := tokens.Get(ctx, client, tokenID).ExtractProject(); err != nil || p == nil || p.ID != project.ID {
			t.Errorf("token project = %+v, %v; want the default project %s", p, err, project.ID)
		}
	})
}

// TestKeystoneDomainsAreDistinct checks that parallel tests get domains of
// their own and that the domains are gone once the tests end.
func TestKeystoneDomainsAreDistinct(t *testing.T) {
	t.Parallel()
	ks := Keystone(t)

	var mu sync.Mutex
	got := make(map[string]string) // id -> name
	t.Run("group", func(t *testing.T) {
		for _, name := range []string{"first", "second", "third"} {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				id, domainName := ks.Domain(t)
				d, err := domains.Get(t.Context(), ks.Identity, id).Extract()
				if err != nil {
					t.Fatalf("get domain: %v", err)
				}
				if d.Name != domainName || !d.Enabled {
					t.Errorf("domain = {Name:%q Enabled:%v}, want {%q true}", d.Name, d.Enabled, domainName)
				}
				mu.Lock()
				got[id] = domainName
				mu.Unlock()
			})
		}
	})
	if t.Failed() {
		return
	}
	names := make(map[string]bool)
	for _, n := range got {
		names[n] = true
	}
	if len(got) != 3 || len(names) != 3 {
		t.Fatalf("domains = %v, want 3 distinct IDs and names", got)
	}
	// The subtests have ended, so their cleanups have run.
	for id, name := range got {
		_, err := domains.Get(t.Context(), ks.Identity, id).Extract()
		if !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
			t.Errorf("domain %s (%s) after its test ended: err = %v, want 404", name, id, err)
		}
	}
}

func TestKeystoneDomainName(t *testing.T) {
	valid := regexp.MustCompile(`^kzt-[a-z0-9]+(-[a-z0-9]+)*-[0-9a-f]{8}$`)
	for _, tc := range []struct{ testName, wantPrefix string }{
		{"TestFoo", "kzt-testfoo-"},
		{"TestFoo/sub_test#01", "kzt-testfoo-sub-test-01-"},
		{"Test//--Weird  Name--", "kzt-test-weird-name-"},
		{"/", "kzt-test-"},
		{strings.Repeat("TestVeryLong/", 20), "kzt-testverylong-"},
	} {
		t.Run(tc.wantPrefix, func(t *testing.T) {
			a, b := keystoneDomainName(tc.testName), keystoneDomainName(tc.testName)
			for _, n := range []string{a, b} {
				if len(n) > keystoneDomainMax || !valid.MatchString(n) || !strings.HasPrefix(n, tc.wantPrefix) {
					t.Errorf("keystoneDomainName(%q) = %q (%d bytes), want %s… within %d bytes",
						tc.testName, n, len(n), tc.wantPrefix, keystoneDomainMax)
				}
			}
			if a == b {
				t.Errorf("two calls gave the same name %q", a)
			}
		})
	}
}

// TestKeystoneRole: Role creates a global role that is missing, and callers
// racing for it (as parallel tests do) all get that one role.
func TestKeystoneRole(t *testing.T) {
	t.Parallel()
	ks := Keystone(t)
	name := "kzt-role-" + strings.ToLower(rand.Text()[:10])
	t.Cleanup(func() {
		pages, err := roles.List(ks.Identity, roles.ListOpts{Name: name}).AllPages(context.Background())
		if err != nil {
			t.Errorf("list role %s: %v", name, err)
			return
		}
		rs, _ := roles.ExtractRoles(pages)
		for _, r := range rs {
			if err := roles.Delete(context.Background(), ks.Identity, r.ID).ExtractErr(); err != nil {
				t.Errorf("delete role %s: %v", name, err)
			}
		}
	})
	ids := make([]string, 4)
	var wg sync.WaitGroup
	for i := range ids {
		wg.Go(func() { ids[i] = ks.Role(t, name) })
	}
	wg.Wait()
	for _, id := range ids {
		if id == "" || id != ids[0] {
			t.Fatalf("Role from 4 callers: %q, want one ID", ids)
		}
	}
	pages, err := roles.List(ks.Identity, roles.ListOpts{Name: name}).AllPages(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if rs, _ := roles.ExtractRoles(pages); len(rs) != 1 || rs[0].ID != ids[0] || rs[0].DomainID != "" {
		t.Errorf("Keystone holds %+v, want the one global role %s", rs, ids[0])
	}
	if again := ks.Role(t, name); again != ids[0] {
		t.Errorf("Role again: %s, want %s", again, ids[0])
	}
}
