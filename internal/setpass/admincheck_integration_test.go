package setpass

import (
	"context"
	"errors"
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

	"github.com/kaizen-onboard/kaizen/internal/cloud"
	"github.com/kaizen-onboard/kaizen/internal/testenv"
)

// TestCheckAdminAgainstKeystone: the admin role on the admin project counts
// however the user holds it and whatever their token is scoped to; a
// delegation restricted to fewer roles does not.
func TestCheckAdminAgainstKeystone(t *testing.T) {
	ks := testenv.Keystone(t)
	ctx := t.Context()
	domainID, _ := ks.Domain(t)
	adminProject, err := tokens.Get(ctx, ks.Identity, ks.Identity.Token()).ExtractProject()
	if err != nil {
		t.Fatal(err)
	}
	roleID := func(name string) string { return ks.Role(t, name) }
	admin, member := roleID("admin"), roleID("member")
	other, err := projects.Create(ctx, ks.Identity, projects.CreateOpts{Name: "other", DomainID: domainID}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	const pw = "check-admin-password-1"
	newUser := func(name string) string {
		u, err := users.Create(ctx, ks.Identity, users.CreateOpts{Name: name, DomainID: domainID, Password: pw}).Extract()
		must(err)
		return u.ID
	}
	direct := newUser("direct-admin")
	must(roles.Assign(ctx, ks.Identity, admin, roles.AssignOpts{UserID: direct, ProjectID: adminProject.ID}).ExtractErr())
	must(roles.Assign(ctx, ks.Identity, member, roles.AssignOpts{UserID: direct, ProjectID: other.ID}).ExtractErr())
	must(roles.Assign(ctx, ks.Identity, member, roles.AssignOpts{UserID: direct, DomainID: domainID}).ExtractErr())
	viaGroup := newUser("group-admin")
	g, err := groups.Create(ctx, ks.Identity, groups.CreateOpts{Name: "admins", DomainID: domainID}).Extract()
	must(err)
	must(users.AddToGroup(ctx, ks.Identity, g.ID, viaGroup).ExtractErr())
	must(roles.Assign(ctx, ks.Identity, admin, roles.AssignOpts{GroupID: g.ID, ProjectID: adminProject.ID}).ExtractErr())
	plain := newUser("admin-project-member")
	must(roles.Assign(ctx, ks.Identity, member, roles.AssignOpts{UserID: plain, ProjectID: adminProject.ID}).ExtractErr())

	token := func(name string, scope tokens.Scope) string {
		t.Helper()
		opts := tokens.AuthOptions{Username: name, DomainID: domainID, Password: pw, Scope: scope}
		r := tokens.Create(ctx, ks.Identity, &opts)
		tok, err := r.ExtractTokenID()
		must(err)
		return tok
	}
	// An application credential of the admin, made from a token scoped to
	// another project and restricted to member there.
	appCredToken := func(roleName string, project string) string {
		t.Helper()
		userProvider, err := openstack.NewClient(ks.AuthURL)
		must(err)
		must(openstack.Authenticate(ctx, userProvider, gophercloud.AuthOptions{
			IdentityEndpoint: ks.AuthURL, Username: "direct-admin", DomainID: domainID, Password: pw,
			Scope: &gophercloud.AuthScope{ProjectID: project},
		}))
		userClient, err := openstack.NewIdentityV3(userProvider, gophercloud.EndpointOpts{})
		must(err)
		ac, err := applicationcredentials.Create(ctx, userClient, direct, applicationcredentials.CreateOpts{
			Name: "restricted-" + roleName + "-" + project, Roles: []applicationcredentials.Role{{Name: roleName}},
		}).Extract()
		must(err)
		// Deleted through the API before the domain: deleting the user
		// leaves the credential's role rows behind in the dev Keystone's
		// SQLite database (no foreign-key cascade there), which breaks the
		// next application credential created.
		t.Cleanup(func() {
			c, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := applicationcredentials.Delete(c, ks.Identity, direct, ac.ID).ExtractErr(); err != nil {
				t.Errorf("deleting the application credential: %v", err)
			}
		})
		p, err := openstack.NewClient(ks.AuthURL)
		must(err)
		must(openstack.Authenticate(ctx, p, gophercloud.AuthOptions{
			IdentityEndpoint: ks.AuthURL, ApplicationCredentialID: ac.ID, ApplicationCredentialSecret: ac.Secret,
		}))
		return p.Token()
	}

	k := NewKeystone(cloud.NewKeystone(ks.Identity), ks.Admin.ProjectName, ks.Admin.ProjectDomainName).SetAdminCacheTTL(0)
	tests := []struct {
		name, token string
		want        error
	}{
		{"unscoped admin", token("direct-admin", tokens.Scope{}), nil},
		{"admin scoped to another project", token("direct-admin", tokens.Scope{ProjectID: other.ID}), nil},
		{"admin scoped to a domain", token("direct-admin", tokens.Scope{DomainID: domainID}), nil},
		{"admin scoped to the admin project", token("direct-admin", tokens.Scope{ProjectID: adminProject.ID}), nil},
		{"admin through a group, unscoped", token("group-admin", tokens.Scope{}), nil},
		{"member of the admin project, unscoped", token("admin-project-member", tokens.Scope{}), ErrForbidden},
		{"member of the admin project, scoped to it", token("admin-project-member", tokens.Scope{ProjectID: adminProject.ID}), ErrForbidden},
		{"an admin's application credential restricted to member", appCredToken("member", other.ID), ErrForbidden},
		{"an admin's application credential with admin on the admin project", appCredToken("admin", adminProject.ID), nil},
		{"not a token", "gAAAAABnot-a-token", ErrUnauthenticated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			actor, err := k.CheckAdmin(ctx, tt.token)
			if !errors.Is(err, tt.want) {
				t.Fatalf("CheckAdmin = %q, %v; want %v", actor, err, tt.want)
			}
		})
	}
}
