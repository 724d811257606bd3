package cloud

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
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
	// Owner, when set, is stored as the user's "kaizen_owner" attribute: it
	// records that kaizen created the account for that request, which is
	// what allows a re-run to give a never-used account a new temporary
	// password (see [SetPassword]). Accounts without it are never touched.
	Owner string
}

// OwnerAttr is the user attribute holding [UserSpec.Owner].
const OwnerAttr = "kaizen_owner"

// User is a Keystone user.
type User struct {
	ID               string
	Name             string
	DomainID         string
	DefaultProjectID string
	Enabled          bool
	Email            string // the "email" attribute, "" when unset
	Owner            string // the OwnerAttr attribute, "" when unset
	FullName         string // the description (kaizen stores the full name there)
}

// FindUser is [Ops.FindUser] on Keystone c.
func FindUser(ctx context.Context, c *gophercloud.ServiceClient, domainID, name string) (User, error) {
	return ops(c).FindUser(ctx, domainID, name)
}

// FindUser returns the user of domain domainID whose name equals name
// ignoring case, or an error wrapping [ErrNoUser]. It makes exactly one API
// call, UsersNamed's, then keeps the names equal to name under Unicode
// case folding.
//
// When several users match ignoring case, the one whose name is exactly
// the lower-cased name wins; without one the result wraps [ErrAmbiguousUser].
func (o Ops) FindUser(ctx context.Context, domainID, name string) (User, error) {
	found, err := o.UsersNamed(ctx, domainID, name)
	if err != nil {
		return User{}, fmt.Errorf("looking up user %q in domain %q: %w", name, domainID, err)
	}
	return matchUser(found, domainID, name)
}

// likeWildcards are the characters Keystone's SQL backend passes on, un-
// escaped, inside the LIKE pattern of its inexact filters: % and _ are
// wildcards, and PostgreSQL and MySQL take \ as an escape.
const likeWildcards = `%_\`

// UsersNamed returns the users of domainID ("" for every domain) whose name
// equals name ignoring case, in exactly one API call, and never lets name
// act as a pattern. Keystone's SQL backend builds its name__i* filters into
// LIKE patterns without escaping % and _, so name__icontains=%@% matches
// every user. So:
//
//   - without %, _ or \ in name: GET /users?name__istartswith=N&name__iendswith=N
//     with N lower-cased, which Keystone answers with the names that both
//     start and end with N ignoring case (the name itself, and the rare
//     name like N...N); only names equal to name under Unicode case folding
//     are kept. This finds "Ada@Example.org" for "ada@example.org", which
//     the exact name= filter would miss: it is case-sensitive on SQLite and
//     PostgreSQL.
//   - with one of them: GET /users?name=<name lower-cased>, exact. kaizen
//     creates every user with a lower-cased name, so its own accounts are
//     found; an account created elsewhere whose name holds one of these
//     characters and an upper-case letter is not.
//
// Case folding in SQLite's LIKE covers ASCII letters only; names that
// differ from the typed address in the case of other letters are not found
// on a SQLite-backed Keystone.
func UsersNamed(ctx context.Context, c *gophercloud.ServiceClient, domainID, name string) ([]User, error) {
	return NewKeystone(c).UsersNamed(ctx, domainID, name)
}

// matchUser picks name out of users as FindUser describes.
func matchUser(all []User, domainID, name string) (User, error) {
	lower := strings.ToLower(name)
	var matches []User
	for _, u := range all {
		if u.DomainID != domainID || !strings.EqualFold(u.Name, name) {
			continue
		}
		if u.Name == lower {
			return u, nil
		}
		matches = append(matches, u)
	}
	switch len(matches) {
	case 0:
		return User{}, fmt.Errorf("user %q in domain %q: %w", name, domainID, ErrNoUser)
	case 1:
		return matches[0], nil
	default:
		return User{}, fmt.Errorf("user %q in domain %q: %d users differ only in case: %w", name, domainID, len(matches), ErrAmbiguousUser)
	}
}

func userOf(u users.User) User {
	email, _ := u.Extra["email"].(string)
	owner, _ := u.Extra[OwnerAttr].(string)
	return User{ID: u.ID, Name: u.Name, DomainID: u.DomainID, DefaultProjectID: u.DefaultProjectID,
		Enabled: u.Enabled, Email: email, Owner: owner, FullName: u.Description}
}

// EnsureUser is [Ops.EnsureUser] on Keystone c.
func EnsureUser(ctx context.Context, c *gophercloud.ServiceClient, spec UserSpec) (u User, created bool, err error) {
	return ops(c).EnsureUser(ctx, spec)
}

// EnsureUser returns the user spec.Name of spec.DomainID (matched ignoring
// case, see [Ops.FindUser]), creating it when there is none. An existing
// user is returned as it is: its password, email, description and default
// project are never changed. A concurrent creator winning the race (409
// Conflict) is resolved by reading the user again.
//
// API calls: reuse 1 (GET list); create 2 (GET list, POST); lost race 3.
func (o Ops) EnsureUser(ctx context.Context, spec UserSpec) (u User, created bool, err error) {
	if spec.Name == "" || spec.DomainID == "" {
		return User{}, false, fmt.Errorf("ensuring user %q in domain %q: name and domain are required", spec.Name, spec.DomainID)
	}
	u, err = o.FindUser(ctx, spec.DomainID, spec.Name)
	return ensureUser(ctx, o, spec, u, err)
}

// ensureUser is EnsureUser once the lookup is done: u and err are what the
// caller's lookup found.
func ensureUser(ctx context.Context, ks userCreator, spec UserSpec, u User, err error) (User, bool, error) {
	if err == nil || !errors.Is(err, ErrNoUser) {
		return u, false, err
	}
	name := strings.ToLower(spec.Name)
	nu, err := ks.CreateUser(ctx, NewUser{
		Name:             name,
		DomainID:         spec.DomainID,
		FullName:         spec.FullName,
		Password:         spec.Password,
		DefaultProjectID: spec.DefaultProjectID,
		Email:            spec.Email,
		Owner:            spec.Owner,
	})
	if errors.Is(err, ErrConflict) {
		found, err := ks.UsersNamed(ctx, spec.DomainID, name)
		if err == nil {
			u, err = matchUser(found, spec.DomainID, name)
		}
		if err != nil {
			return User{}, false, fmt.Errorf("creating user %q in domain %q: Keystone reports a conflict, then: %w", name, spec.DomainID, err)
		}
		return u, false, nil
	}
	if err != nil {
		return User{}, false, err
	}
	return nu, true, nil
}

// SetPassword gives user userID a new password as the admin. Kaizen uses it
// only on an account it created itself whose set-password link was never
// sent (a run crashed in between), so no one can know the old password.
// One API call.
func SetPassword(ctx context.Context, c *gophercloud.ServiceClient, userID, password string) error {
	return NewKeystone(c).SetPassword(ctx, userID, password)
}

// TempPassword draws the temporary password of an account kaizen creates
// (or of one whose unused link it replaces): 24 bytes of random, 32
// characters of URL-safe base64. It only ever travels to Keystone and,
// sealed, to setpass; nobody is told it.
func TempPassword(random io.Reader) (string, error) {
	var b [24]byte
	if _, err := io.ReadFull(random, b[:]); err != nil {
		return "", fmt.Errorf("drawing a temporary password: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

type userCreator interface {
	UsersNamed(ctx context.Context, domainID, name string) ([]User, error)
	CreateUser(ctx context.Context, u NewUser) (User, error)
}
