package cloud_test

import (
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/users"

	"github.com/kaizen-onboard/kaizen/internal/cloud"
	"github.com/kaizen-onboard/kaizen/internal/testenv"
)

func TestEnsureUser(t *testing.T) {
	t.Parallel()
	ks := testenv.Keystone(t)

	t.Run("create, find ignoring case, never reset the password", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		c, n := countingIdentity(t, ks)
		domainID, _ := ks.Domain(t)
		spec := cloud.UserSpec{
			DomainID: domainID, Name: "Ada@Example.org", Email: "Ada@Example.org",
			FullName: "Ada Lovelace", Password: "first-Passw0rd",
		}
		u, created, err := cloud.EnsureUser(ctx, c, spec)
		if err != nil {
			t.Fatal(err)
		}
		if got := calls(n); got != 2 {
			t.Errorf("creating a user made %d API calls, want 2", got)
		}
		if !created || u.ID == "" || u.Name != "ada@example.org" || u.DomainID != domainID {
			t.Fatalf("EnsureUser = %+v, created %v; want new user ada@example.org", u, created)
		}
		stored, err := users.Get(ctx, ks.Identity, u.ID).Extract()
		if err != nil {
			t.Fatal(err)
		}
		if stored.Extra["email"] != "Ada@Example.org" || stored.Description != "Ada Lovelace" {
			t.Errorf("stored user: email %v, description %q", stored.Extra["email"], stored.Description)
		}

		for _, name := range []string{"ada@example.org", "Ada@Example.org", "ADA@EXAMPLE.ORG"} {
			t.Run(name, func(t *testing.T) {
				got, err := cloud.FindUser(ctx, c, domainID, name)
				if err != nil || got.ID != u.ID {
					t.Fatalf("FindUser(%q) = %+v, %v; want %s", name, got, err, u.ID)
				}
				if got := calls(n); got != 1 {
					t.Errorf("FindUser made %d API calls, want 1", got)
				}
			})
		}

		again := spec
		again.Name = "ada@example.org"
		again.Password = "second-Passw0rd"
		u2, created, err := cloud.EnsureUser(ctx, c, again)
		if err != nil || created || u2.ID != u.ID {
			t.Fatalf("second EnsureUser = %+v, created %v, %v; want %s reused", u2, created, err, u.ID)
		}
		if got := calls(n); got != 1 {
			t.Errorf("reusing a user made %d API calls, want 1", got)
		}
		if _, err := ks.AuthenticateUser(ctx, domainID, u.Name, spec.Password); err != nil {
			t.Errorf("original password no longer works: %v", err)
		}
		_, err = ks.AuthenticateUser(ctx, domainID, u.Name, again.Password)
		if !gophercloud.ResponseCodeIs(err, http.StatusUnauthorized) {
			t.Errorf("second EnsureUser's password: %v; want 401 (the password must not be reset)", err)
		}
	})

	t.Run("user created with a mixed-case name elsewhere is found", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		domainID, _ := ks.Domain(t)
		made, err := users.Create(ctx, ks.Identity, users.CreateOpts{DomainID: domainID, Name: "Grace@Example.org"}).Extract()
		if err != nil {
			t.Fatal(err)
		}
		// Decoys that a substring match returns but the name does not equal.
		for _, decoy := range []string{"xgrace@example.org", "grace@example.org.uk"} {
			if _, err := users.Create(ctx, ks.Identity, users.CreateOpts{DomainID: domainID, Name: decoy}).Extract(); err != nil {
				t.Fatal(err)
			}
		}
		u, created, err := cloud.EnsureUser(ctx, ks.Identity, cloud.UserSpec{DomainID: domainID, Name: "grace@example.org", Password: "x-Passw0rd"})
		if err != nil || created || u.ID != made.ID {
			t.Fatalf("EnsureUser = %+v, created %v, %v; want existing %s", u, created, err, made.ID)
		}
		if _, err := cloud.FindUser(ctx, ks.Identity, domainID, "nobody@example.org"); !errors.Is(err, cloud.ErrNoUser) {
			t.Errorf("FindUser(nobody) = %v; want ErrNoUser", err)
		}
	})

	t.Run("concurrent ensures create one user", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		domainID, _ := ks.Domain(t)
		const workers = 8
		ids := make([]string, workers)
		errs := make([]error, workers)
		var createdN atomic.Int32
		var wg sync.WaitGroup
		for i := range workers {
			wg.Go(func() {
				u, created, err := cloud.EnsureUser(ctx, ks.Identity, cloud.UserSpec{
					DomainID: domainID, Name: "lin@example.org", Password: "race-Passw0rd",
				})
				ids[i], errs[i] = u.ID, err
				if created {
					createdN.Add(1)
				}
			})
		}
		wg.Wait()
		pages, err := users.List(ks.Identity, users.ListOpts{DomainID: domainID}).AllPages(ctx)
		if err != nil {
			t.Fatal(err)
		}
		all, err := users.ExtractUsers(pages)
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != 1 {
			t.Fatalf("%d users in the domain after concurrent ensures, want 1", len(all))
		}
		for i := range workers {
			if errs[i] != nil || ids[i] != all[0].ID {
				t.Errorf("worker %d: id %q, err %v; want %s", i, ids[i], errs[i], all[0].ID)
			}
		}
		if got := createdN.Load(); got != 1 {
			t.Errorf("%d workers report creating the user, want 1", got)
		}
	})
}
