package cloud_test

import (
	"context"
	"errors"
	"testing"

	"github.com/kaizen-onboard/kaizen/internal/cloud"
	"github.com/kaizen-onboard/kaizen/internal/cloud/cloudtest"
)

// lookupCounter counts a look-up directory's reads.
type lookupCounter struct {
	*cloudtest.Fake
	reads int
}

func (c *lookupCounter) FindProject(ctx context.Context, domainID, name string) (cloud.Project, bool, error) {
	c.reads++
	return c.Fake.FindProject(ctx, domainID, name)
}

func (c *lookupCounter) UsersNamed(ctx context.Context, domainID, name string) ([]cloud.User, error) {
	c.reads++
	return c.Fake.UsersNamed(ctx, domainID, name)
}

func (c *lookupCounter) ListProjects(ctx context.Context, f cloud.ProjectFilter) ([]cloud.Project, error) {
	c.reads++
	return c.Fake.ListProjects(ctx, f)
}

func (c *lookupCounter) ListUsers(ctx context.Context, domainID string) ([]cloud.User, error) {
	c.reads++
	return c.Fake.ListUsers(ctx, domainID)
}

// A look-up directory reads each name once, found or not, matches users
// ignoring case, and knows what the batch creates without reading.
func TestLookupDirectory(t *testing.T) {
	ctx := t.Context()
	c := &lookupCounter{Fake: cloudtest.New()}
	d, err := c.CreateDomain(ctx, "kzt-lookup", "")
	if err != nil {
		t.Fatal(err)
	}
	ada, err := c.CreateUser(ctx, cloud.NewUser{DomainID: d.ID, Name: "Ada@Example.org"})
	if err != nil {
		t.Fatal(err)
	}
	engines, err := c.CreateProject(ctx, cloud.NewProject{DomainID: d.ID, Name: "engines", Tags: []string{cloud.OwnerTag("ada@example.org")}})
	if err != nil {
		t.Fatal(err)
	}
	dir := cloud.NewLookupDirectory(c, d.ID)
	for range 2 {
		if u, err := dir.FindUser(ctx, "ada@example.org"); err != nil || u.ID != ada.ID {
			t.Errorf("FindUser = %+v, %v", u, err)
		}
		if p, ok, err := dir.FindProject(ctx, "engines"); err != nil || !ok || p.ID != engines.ID {
			t.Errorf("FindProject = %+v, %v, %v", p, ok, err)
		}
		if _, err := dir.FindUser(ctx, "bob@example.org"); !errors.Is(err, cloud.ErrNoUser) {
			t.Errorf("FindUser(bob) = %v, want ErrNoUser", err)
		}
		if _, ok, err := dir.FindProject(ctx, "mills"); ok || err != nil {
			t.Errorf("FindProject(mills) = %v, %v", ok, err)
		}
	}
	if c.reads != 4 {
		t.Errorf("%d reads, want 4 (one per name)", c.reads)
	}
	p, created, err := dir.EnsureProject(ctx, cloud.ProjectSpec{DomainID: d.ID, Name: "mills", Owner: "bob@example.org"})
	if err != nil || !created {
		t.Fatalf("EnsureProject = %+v, %v, %v", p, created, err)
	}
	u, created, err := dir.EnsureUser(ctx, cloud.UserSpec{DomainID: d.ID, Name: "Bob@example.org"})
	if err != nil || !created {
		t.Fatalf("EnsureUser = %+v, %v, %v", u, created, err)
	}
	if got, ok, _ := dir.FindProject(ctx, "mills"); !ok || got.ID != p.ID {
		t.Errorf("created project not found: %+v", got)
	}
	if got, err := dir.FindUser(ctx, "BOB@example.org"); err != nil || got.ID != u.ID {
		t.Errorf("created user not found: %+v %v", got, err)
	}
	if _, created, err := dir.EnsureProject(ctx, cloud.ProjectSpec{DomainID: d.ID, Name: "engines", Owner: "ada@example.org"}); err != nil || created {
		t.Errorf("EnsureProject(engines) reused = %v, %v", created, err)
	}
	if c.reads != 4 {
		t.Errorf("%d reads after the creates, want still 4", c.reads)
	}

	// An empty directory reads nothing and knows only what is created.
	c.reads = 0
	empty := cloud.NewEmptyDirectory(c, d.ID)
	if _, ok, err := empty.FindProject(ctx, "engines"); ok || err != nil || c.reads != 0 {
		t.Errorf("empty directory: %v %v, %d reads", ok, err, c.reads)
	}
}
