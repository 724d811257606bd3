package cloud

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/gophercloud/gophercloud/v2"
	"golang.org/x/sync/singleflight"
)

// DirectorySource is what a [Directory] lists. A read-only consumer needs
// no more; [Directory.EnsureProject] and [Directory.EnsureUser] also need
// the source to look up and create (FindProject and CreateProject;
// UsersNamed and CreateUser), as [Identity] does.
type DirectorySource interface {
	ListProjects(ctx context.Context, f ProjectFilter) ([]Project, error)
	ListUsers(ctx context.Context, domainID string) ([]User, error)
}

// Directory is a batch's view of one domain's projects and users: listed
// once (two API calls), then kept current by the batch's own creates. It
// turns the per-row lookups of EnsureProject and EnsureUser into map reads,
// so a row costs only its writes. Something created behind the batch's back
// after the listing is still handled: the create meets 409 Conflict and
// reads the object then, as the Ensure functions do.
//
// It is safe for concurrent use; callers serialise rows that share a
// project or user.
type Directory struct {
	ks       DirectorySource
	domainID string

	mu       sync.Mutex
	projects map[string]Project // by exact name
	users    map[string][]User  // by lower-cased name
	// lookup: nothing was listed; names are looked up on first use and
	// remembered in looked (by "p:"+name and "u:"+lower-cased name),
	// found or not (see NewLookupDirectory).
	lookup bool
	looked map[string]bool
}

// LoadDirectory is [LoadDirectoryFrom] on Keystone c.
func LoadDirectory(ctx context.Context, c *gophercloud.ServiceClient, domainID string) (*Directory, error) {
	return LoadDirectoryFrom(ctx, NewKeystone(c), domainID)
}

// LoadDirectoryFrom lists the projects and users of domainID. Two API calls
// (Keystone does not paginate these lists unless list_limit is set, and
// gophercloud follows the pages when it is).
func LoadDirectoryFrom(ctx context.Context, ks DirectorySource, domainID string) (*Directory, error) {
	d := &Directory{ks: ks, domainID: domainID, projects: map[string]Project{}, users: map[string][]User{}}
	ps, err := ks.ListProjects(ctx, ProjectFilter{DomainID: domainID})
	if err != nil {
		return nil, err
	}
	for _, p := range ps {
		if p.DomainID == domainID {
			d.projects[p.Name] = p
		}
	}
	us, err := ks.ListUsers(ctx, domainID)
	if err != nil {
		return nil, err
	}
	for _, u := range us {
		if u.DomainID == domainID {
			k := strings.ToLower(u.Name)
			d.users[k] = append(d.users[k], u)
		}
	}
	return d, nil
}

// DomainID is the domain the directory lists.
func (d *Directory) DomainID() string { return d.domainID }

// Project returns the project named exactly name, if listed.
func (d *Directory) Project(name string) (Project, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	p, ok := d.projects[name]
	return p, ok
}

// User returns the user named name ignoring case, with FindUser's rules
// and errors ([ErrNoUser], [ErrAmbiguousUser]).
func (d *Directory) User(name string) (User, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return matchUser(d.users[strings.ToLower(name)], d.domainID, name)
}

// EnsureProject is [Ops.EnsureProject] without the lookup. API calls: reuse
// 0; create 1 (POST); lost race 2.
func (d *Directory) EnsureProject(ctx context.Context, spec ProjectSpec) (Project, bool, error) {
	if spec.Owner == "" || spec.Name == "" || spec.DomainID != d.domainID {
		return Project{}, false, fmt.Errorf("ensuring project %q in domain %q: name and owner are required, and the domain must be the directory's (%q)", spec.Name, spec.DomainID, d.domainID)
	}
	ks, can := d.ks.(projectCreator)
	if !can {
		return Project{}, false, fmt.Errorf("ensuring project %q: the directory's source cannot create projects", spec.Name)
	}
	found, ok, err := d.FindProject(ctx, spec.Name)
	if err != nil {
		return Project{}, false, err
	}
	p, created, err := ensureProject(ctx, ks, spec, found, ok)
	if err == nil && !ok {
		d.mu.Lock()
		d.projects[p.Name] = p
		d.mu.Unlock()
	}
	return p, created, err
}

// EnsureUser is [Ops.EnsureUser] without the lookup. API calls: reuse 0;
// create 1 (POST); lost race 2.
func (d *Directory) EnsureUser(ctx context.Context, spec UserSpec) (User, bool, error) {
	if spec.Name == "" || spec.DomainID != d.domainID {
		return User{}, false, fmt.Errorf("ensuring user %q in domain %q: a name is required, and the domain must be the directory's (%q)", spec.Name, spec.DomainID, d.domainID)
	}
	ks, can := d.ks.(userCreator)
	if !can {
		return User{}, false, fmt.Errorf("ensuring user %q: the directory's source cannot create users", spec.Name)
	}
	found, ferr := d.FindUser(ctx, spec.Name)
	u, created, err := ensureUser(ctx, ks, spec, found, ferr)
	if err == nil && ferr != nil {
		k := strings.ToLower(u.Name)
		d.mu.Lock()
		d.users[k] = append(d.users[k], u)
		d.mu.Unlock()
	}
	return u, created, err
}

// Directories loads each domain's Directory once, however many rows ask
// for it at the same time.
type Directories struct {
	ks    DirectorySource
	group singleflight.Group
	mu    sync.Mutex
	dirs  map[string]*Directory // by domain ID
}

// NewDirectories returns an empty cache over identity client c.
func NewDirectories(c *gophercloud.ServiceClient) *Directories {
	return NewDirectoriesOf(NewKeystone(c))
}

// NewDirectoriesOf returns an empty cache over ks.
func NewDirectoriesOf(ks DirectorySource) *Directories {
	return &Directories{ks: ks, dirs: map[string]*Directory{}}
}

// Get returns the directory of domainID, listing it on first use.
func (ds *Directories) Get(ctx context.Context, domainID string) (*Directory, error) {
	ds.mu.Lock()
	d, ok := ds.dirs[domainID]
	ds.mu.Unlock()
	if ok {
		return d, nil
	}
	v, err, _ := ds.group.Do(domainID, func() (any, error) {
		d, err := LoadDirectoryFrom(ctx, ds.ks, domainID)
		if err != nil {
			return nil, err
		}
		ds.mu.Lock()
		ds.dirs[domainID] = d
		ds.mu.Unlock()
		return d, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*Directory), nil
}
