package cloud_test

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/projects"

	"github.com/kaizen-onboard/kaizen/internal/cloud"
	"github.com/kaizen-onboard/kaizen/internal/testenv"
)

func TestOwnerTag(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 100)
	tests := []struct {
		name, owner string
		verbatim    bool
	}{
		{"email", "ada@example.org", true},
		{"row id", "sheet-row_42.v2+x", true},
		{"exactly fits", strings.Repeat("a", cloud.MaxTagLen-len(cloud.OwnerTagPrefix)), true},
		{"one too long", strings.Repeat("a", cloud.MaxTagLen-len(cloud.OwnerTagPrefix)+1), false},
		{"long", long, false},
		{"slash and comma", "https://forms/row,7", false},
		{"space", "Ada Lovelace", false},
		{"tilde", "a~b", false},
		{"unicode", "ådå@exämple.org", false},
		{"nothing safe", strings.Repeat("/", 80), false},
	}
	seen := map[string]string{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tag := cloud.OwnerTag(tt.owner)
			if len(tag) > cloud.MaxTagLen || strings.ContainsAny(tag, "/,") || !strings.HasPrefix(tag, cloud.OwnerTagPrefix) {
				t.Errorf("OwnerTag(%q) = %q (%d bytes): not a valid kaizen tag", tt.owner, tag, len(tag))
			}
			if got := tag == cloud.OwnerTagPrefix+tt.owner; got != tt.verbatim {
				t.Errorf("OwnerTag(%q) = %q; verbatim %v, want %v", tt.owner, tag, got, tt.verbatim)
			}
			if cloud.OwnerTag(tt.owner) != tag {
				t.Errorf("OwnerTag(%q) is not deterministic", tt.owner)
			}
		})
		tag := cloud.OwnerTag(tt.owner)
		if other, dup := seen[tag]; dup {
			t.Errorf("OwnerTag(%q) = OwnerTag(%q) = %q", tt.owner, other, tag)
		}
		seen[tag] = tt.owner
	}
	if cloud.OwnerTag(long) == cloud.OwnerTag(long+"y") {
		t.Errorf("owners differing after the truncation point share a tag")
	}
}

func TestEnsureProject(t *testing.T) {
	t.Parallel()
	ks := testenv.Keystone(t)
	tests := []struct {
		name  string
		owner string
	}{
		{"plain owner", "ada@example.org"},
		{"owner hashed into the tag", "https://docs.google.com/forms/d/e/some-very-long-form-id/row,42 Ada Lovelace"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			c, n := countingIdentity(t, ks)
			domainID, _ := ks.Domain(t)
			spec := cloud.ProjectSpec{
				DomainID: domainID, Name: "ada-lab", Description: "Ada's lab",
				Tags: []string{"course-cs101"}, Owner: tt.owner,
			}

			p, created, err := cloud.EnsureProject(ctx, c, spec)
			if err != nil {
				t.Fatal(err)
			}
			if got := calls(n); got != 2 {
				t.Errorf("creating a project made %d API calls, want 2", got)
			}
			if !created || p.ID == "" || p.Name != spec.Name || p.DomainID != domainID {
				t.Fatalf("EnsureProject = %+v, created %v; want a new project", p, created)
			}
			stored, err := projects.Get(ctx, ks.Identity, p.ID).Extract()
			if err != nil {
				t.Fatal(err)
			}
			for _, tag := range []string{cloud.KaizenTag, cloud.OwnerTag(tt.owner), "course-cs101"} {
				if !slices.Contains(stored.Tags, tag) {
					t.Errorf("project tags %q lack %q", stored.Tags, tag)
				}
			}
			if stored.Description != spec.Description {
				t.Errorf("description = %q, want %q", stored.Description, spec.Description)
			}

			// A re-run (e.g. after a crash) reuses it.
			again, created, err := cloud.EnsureProject(ctx, c, spec)
			if err != nil || created || again.ID != p.ID {
				t.Fatalf("re-run EnsureProject = %+v, created %v, %v; want %s reused", again, created, err, p.ID)
			}
			if got := calls(n); got != 1 {
				t.Errorf("reusing a project made %d API calls, want 1", got)
			}

			// Another request wanting the same name is refused.
			other := spec
			other.Owner = tt.owner + "-someone-else"
			_, created, err = cloud.EnsureProject(ctx, c, other)
			if !errors.Is(err, cloud.ErrProjectTaken) || created {
				t.Fatalf("EnsureProject by another owner = created %v, %v; want ErrProjectTaken", created, err)
			}
			if !strings.Contains(err.Error(), spec.Name) {
				t.Errorf("error %q does not name the project", err)
			}
		})
	}

	t.Run("same name made outside kaizen is taken", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		domainID, _ := ks.Domain(t)
		if _, err := projects.Create(ctx, ks.Identity, projects.CreateOpts{DomainID: domainID, Name: "shared"}).Extract(); err != nil {
			t.Fatal(err)
		}
		_, _, err := cloud.EnsureProject(ctx, ks.Identity, cloud.ProjectSpec{DomainID: domainID, Name: "shared", Owner: "ada@example.org"})
		if !errors.Is(err, cloud.ErrProjectTaken) {
			t.Fatalf("EnsureProject = %v; want ErrProjectTaken", err)
		}
	})

	t.Run("concurrent ensures create one project", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		c, n := countingIdentity(t, ks)
		domainID, _ := ks.Domain(t)
		spec := cloud.ProjectSpec{DomainID: domainID, Name: "raced", Owner: "row-7"}
		const workers = 8
		ids := make([]string, workers)
		errs := make([]error, workers)
		createdN := 0
		var mu sync.Mutex
		var wg sync.WaitGroup
		for i := range workers {
			wg.Go(func() {
				p, created, err := cloud.EnsureProject(ctx, c, spec)
				ids[i], errs[i] = p.ID, err
				if created {
					mu.Lock()
					createdN++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		// 2 calls for the winner, 1 per reuse, 3 per lost race.
		t.Logf("%d workers made %d API calls", workers, calls(n))
		pages, err := projects.List(ks.Identity, projects.ListOpts{DomainID: domainID}).AllPages(ctx)
		if err != nil {
			t.Fatal(err)
		}
		all, err := projects.ExtractProjects(pages)
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != 1 {
			t.Fatalf("%d projects in the domain after concurrent ensures, want 1", len(all))
		}
		for i := range workers {
			if errs[i] != nil || ids[i] != all[0].ID {
				t.Errorf("worker %d: id %q, err %v; want %s", i, ids[i], errs[i], all[0].ID)
			}
		}
		if createdN != 1 {
			t.Errorf("%d workers report creating the project, want 1", createdN)
		}
	})
}
