package cloud

import (
	"context"
	"errors"
	"strings"
)

// LookupSource is what a look-up [Directory] reads: one project or the
// users of one name at a time.
type LookupSource interface {
	DirectorySource
	FindProject(ctx context.Context, domainID, name string) (Project, bool, error)
	UsersNamed(ctx context.Context, domainID, name string) ([]User, error)
}

// NewLookupDirectory returns a Directory of domainID that lists nothing:
// each project or user name is looked up on first use (FindProject,
// UsersNamed: one API call each) and remembered, found or not, for the
// rest of the batch. For a batch touching a few names of a large domain it
// costs a few small reads where [LoadDirectoryFrom] pages through the
// whole domain.
func NewLookupDirectory(ks LookupSource, domainID string) *Directory {
	return &Directory{ks: ks, domainID: domainID, projects: map[string]Project{}, users: map[string][]User{},
		lookup: true, looked: map[string]bool{}}
}

// FindProject is [Directory.Project], looking name up first in a look-up
// directory.
func (d *Directory) FindProject(ctx context.Context, name string) (Project, bool, error) {
	if err := d.lookUp(ctx, "p:"+name, func(ks LookupSource) error {
		p, ok, err := ks.FindProject(ctx, d.domainID, name)
		if err == nil && ok && p.DomainID == d.domainID {
			d.mu.Lock()
			d.projects[p.Name] = p
			d.mu.Unlock()
		}
		return err
	}); err != nil {
		return Project{}, false, err
	}
	p, ok := d.Project(name)
	return p, ok, nil
}

// FindUser is [Directory.User], looking name up first (ignoring case) in
// a look-up directory.
func (d *Directory) FindUser(ctx context.Context, name string) (User, error) {
	k := strings.ToLower(name)
	if err := d.lookUp(ctx, "u:"+k, func(ks LookupSource) error {
		us, err := ks.UsersNamed(ctx, d.domainID, name)
		if err != nil {
			return err
		}
		d.mu.Lock()
		defer d.mu.Unlock()
		for _, u := range us {
			if u.DomainID == d.domainID {
				lk := strings.ToLower(u.Name)
				if !containsUser(d.users[lk], u.ID) {
					d.users[lk] = append(d.users[lk], u)
				}
			}
		}
		return nil
	}); err != nil {
		return User{}, err
	}
	return d.User(name)
}

func containsUser(us []User, id string) bool {
	for _, u := range us {
		if u.ID == id {
			return true
		}
	}
	return false
}

// lookUp runs read once per key in a look-up directory. Callers serialise
// rows sharing a name, so two reads of one key at once only cost a read.
func (d *Directory) lookUp(ctx context.Context, key string, read func(LookupSource) error) error {
	d.mu.Lock()
	skip := !d.lookup || d.looked[key]
	d.mu.Unlock()
	if skip {
		return nil
	}
	ks, ok := d.ks.(LookupSource)
	if !ok {
		return errors.New("the directory's source cannot look names up")
	}
	if err := read(ks); err != nil {
		return err
	}
	d.mu.Lock()
	d.looked[key] = true
	d.mu.Unlock()
	return nil
}

// NewEmptyDirectory returns the Directory of a domain known to hold
// nothing (just created): nothing is listed or looked up; the batch's own
// creates fill it, and a name taken behind its back is still handled by
// the create's 409.
func NewEmptyDirectory(ks DirectorySource, domainID string) *Directory {
	return &Directory{ks: ks, domainID: domainID, projects: map[string]Project{}, users: map[string][]User{}}
}
