package cloud_test

import (
	"errors"
	"testing"

	"github.com/kaizen-onboard/kaizen/internal/cloud"
	"github.com/kaizen-onboard/kaizen/internal/testenv"
)

func TestRoleID(t *testing.T) {
	t.Parallel()
	ks := testenv.Keystone(t)
	tests := []struct {
		name    string
		wantErr error
	}{
		{"member", nil},
		{"admin", nil},
		{"no-such-role-kaizen", cloud.ErrNoRole},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			id, err := cloud.RoleID(t.Context(), ks.Identity, tt.name)
			if !errors.Is(err, tt.wantErr) || (err == nil) == (id == "") {
				t.Fatalf("RoleID(%q) = %q, %v; want error %v", tt.name, id, err, tt.wantErr)
			}
		})
	}
}

func TestEnsureProjectRole(t *testing.T) {
	t.Parallel()
	ks := testenv.Keystone(t)
	ctx := t.Context()
	c, n := countingIdentity(t, ks)
	domainID, _ := ks.Domain(t)
	roleID, err := cloud.RoleID(ctx, c, "member")
	if err != nil {
		t.Fatal(err)
	}
	p, _, err := cloud.EnsureProject(ctx, c, cloud.ProjectSpec{DomainID: domainID, Name: "lab", Owner: "row-1"})
	if err != nil {
		t.Fatal(err)
	}
	const password = "role-Passw0rd"
	u, _, err := cloud.EnsureUser(ctx, c, cloud.UserSpec{DomainID: domainID, Name: "ada@example.org", Password: password})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ks.AuthenticateUserInProject(ctx, domainID, u.Name, password, p.ID); err == nil {
		t.Fatal("user got a project-scoped token before any role was assigned")
	}
	calls(n)

	for i, want := range []struct {
		assigned bool
		calls    int64
	}{{true, 2}, {false, 1}} {
		assigned, err := cloud.EnsureProjectRole(ctx, c, u.ID, p.ID, roleID)
		if err != nil || assigned != want.assigned {
			t.Fatalf("EnsureProjectRole #%d = %v, %v; want %v", i+1, assigned, err, want.assigned)
		}
		if got := calls(n); got != want.calls {
			t.Errorf("EnsureProjectRole #%d made %d API calls, want %d", i+1, got, want.calls)
		}
		if has, err := cloud.HasProjectRole(ctx, c, u.ID, p.ID, roleID); err != nil || !has {
			t.Errorf("HasProjectRole after #%d = %v, %v", i+1, has, err)
		}
		calls(n)
	}
	if _, err := ks.AuthenticateUserInProject(ctx, domainID, u.Name, password, p.ID); err != nil {
		t.Fatalf("project-scoped token after assignment: %v", err)
	}
}
