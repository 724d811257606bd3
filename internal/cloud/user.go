package cloud

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/users"
)

// UserSpec describes the user one onboarding request wants.
type UserSpec struct {
	DomainID string
	// Name is the login name, the email address; it is lower-cased before
	// use, so users are always created with lower-case names.
	Name     string
	Email    string // stored as the user's "email" attribute
	FullName string // stored as the user's description
	// Password is set only when the user is created; an existing user's
	// password is never changed. Empty creates a user without a password.
	Password         string
	DefaultProjectID string // only used when creating
}

// User is a Keystone user.
type User struct {
	ID               string
	Name             string
	DomainID         string
	DefaultProjectID string
	Enabled          bool
}

// FindUser returns the user of domain domainID whose name equals name
// ignoring case, or an error wrapping [ErrNoUser]. It makes exactly one API
// call: GET /users?domain_id=D&name__icontains=<name lower-cased>, Keystone's
// case-insensitive substring filter, then keeps the names equal to name
// under Unicode case folding. (The plain name= filter is exact and, on
// Keystone's usual databases, case-sensitive, so it would miss
// "Ada@Example.org" when looking for "ada@example.org"; a name= lookup
// followed by a fallback scan would cost two calls on every create.) If a
// Keystone ignored the inexact filter it would return every user of the
// domain, and the folding comparison would still find the right one: the
// fallback scan is built in.
//
// When several users match ignoring case, the one whose name is exactly
// the lower-cased name wins; without one the result wraps [ErrAmbiguousUser].
func FindUser(ctx context.Context, c *gophercloud.ServiceClient, domainID, name string) (User, error) {
	lower := strings.ToLower(name)
	pages, err := users.List(c, users.ListOpts{
		DomainID: domainID,
		Filters:  map[string]string{"name__icontains": lower},
	}).AllPages(ctx)
	if err != nil {
		return User{}, fmt.Errorf("looking up user %q in domain %q: %w", name, domainID, err)
	}
	all, err := users.ExtractUsers(pages)
	if err != nil {
		return User{}, fmt.Errorf("looking up user %q in domain %q: %w", name, domainID, err)
	}
	var matches []users.User
	for _, u := range all {
		if u.DomainID != domainID || !strings.EqualFold(u.Name, name) {
			continue
		}
		if u.Name == lower {
			return userOf(u), nil
		}
		matches = append(matches, u)
	}
	switch len(matches) {
	case 0:
		return User{}, fmt.Errorf("user %q in domain %q: %w", name, domainID, ErrNoUser)
	case 1:
		return userOf(matches[0]), nil
	default:
		return User{}, fmt.Errorf("user %q in domain %q: %d users differ only in case: %w", name, domainID, len(matches), ErrAmbiguousUser)
	}
}

func userOf(u users.User) User {
	return User{ID: u.ID, Name: u.Name, DomainID: u.DomainID, DefaultProjectID: u.DefaultProjectID, Enabled: u.Enabled}
}

// EnsureUser returns the user spec.Name of spec.DomainID (matched ignoring
// case, see [FindUser]), creating it when there is none. An existing user is
// returned as it is: its password, email, description and default project
// are never changed. A concurrent creator winning the race (409 Conflict) is
// resolved by reading the user again.
//
// API calls: reuse 1 (GET list); create 2 (GET list, POST); lost race 3.
func EnsureUser(ctx context.Context, c *gophercloud.ServiceClient, spec UserSpec) (u User, created bool, err error) {
	if spec.Name == "" || spec.DomainID == "" {
		return User{}, false, fmt.Errorf("ensuring user %q in domain %q: name and domain are required", spec.Name, spec.DomainID)
	}
	name := strings.ToLower(spec.Name)
	u, err = FindUser(ctx, c, spec.DomainID, name)
	if err == nil || !errors.Is(err, ErrNoUser) {
		return u, false, err
	}
	opts := users.CreateOpts{
		Name:             name,
		DomainID:         spec.DomainID,
		Description:      spec.FullName,
		Password:         spec.Password,
		DefaultProjectID: spec.DefaultProjectID,
	}
	if spec.Email != "" {
		opts.Extra = map[string]any{"email": spec.Email}
	}
	nu, err := users.Create(ctx, c, opts).Extract()
	if isConflict(err) {
		u, err = FindUser(ctx, c, spec.DomainID, name)
		if err != nil {
			return User{}, false, fmt.Errorf("creating user %q in domain %q: Keystone reports a conflict, then: %w", name, spec.DomainID, err)
		}
		return u, false, nil
	}
	if err != nil {
		return User{}, false, fmt.Errorf("creating user %q in domain %q: %w", name, spec.DomainID, err)
	}
	return userOf(*nu), true, nil
}
