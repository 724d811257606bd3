package setpass

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/kaizen-onboard/kaizen/internal/cloud"
)

// Directory is what the self-service /reset page needs from Keystone
// besides [Keystone]: finding an account by the address typed, and its
// roles. setpass's own (admin) client serves it.
type Directory interface {
	// FindUsers returns every user, in any domain, whose name equals name
	// ignoring case (kaizen names users by their address).
	FindUsers(ctx context.Context, name string) ([]User, error)
	// UserRoles returns the names of every role the user holds, on any
	// project, domain or the system, directly or through a group, and the
	// roles those imply.
	UserRoles(ctx context.Context, userID string) ([]string, error)
}

// Resetter sets a password without the old one, with setpass's dedicated
// reset credential (setpass.reset_user). nil in Deps when none is
// configured.
type Resetter interface {
	// SetPassword sets the user's password. A *PasswordRefusedError when
	// Keystone refuses the new password; ErrResetDenied when Keystone does
	// not accept the credential or its role; ErrUnknownUser.
	SetPassword(ctx context.Context, userID, password string) error
	// RevokeTokens disables the user and enables it again: Keystone revokes
	// every token of a user it disables. A disabled user is left alone.
	RevokeTokens(ctx context.Context, userID string) error
}

// ErrResetDenied: Keystone refused setpass's reset credential (401) or
// the policy refused it the password update (403). Nothing changed.
var ErrResetDenied = errors.New("setpass: Keystone refused the reset credential")

// FindUsers makes one exact, case-insensitive lookup across domains
// ([cloud.UsersNamed]): the address typed is never a LIKE pattern, so
// "%@%" reaches nobody.
func (k *KeystoneClient) FindUsers(ctx context.Context, name string) ([]User, error) {
	found, err := cloud.UsersNamed(ctx, k.admin.Client(), "", name)
	if err != nil {
		return nil, wrapKeystone("finding users by name", err)
	}
	out := make([]User, len(found))
	for i, u := range found {
		out[i] = User{ID: u.ID, Name: u.Name, Email: u.Email, FullName: u.FullName, DomainID: u.DomainID, Enabled: u.Enabled}
	}
	return out, nil
}

// UserRoles lists the user's effective role assignments by name
// (GET /v3/role_assignments?user.id=&effective&include_names): group
// memberships, inherited assignments and implied roles are expanded.
func (k *KeystoneClient) UserRoles(ctx context.Context, userID string) ([]string, error) {
	as, callErr, err := k.admin.EffectiveAssignmentsRaw(ctx, userID, "")
	if callErr != nil {
		return nil, wrapKeystone("listing role assignments", callErr)
	}
	if err != nil {
		return nil, fmt.Errorf("keystone: reading role assignments: %w", err)
	}
	var names []string
	for _, a := range as {
		n := a.RoleName
		if n == "" {
			n = a.RoleID // names not included: compare the ID (never a match, so fail closed below)
		}
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	return names, nil
}

func userOf(u cloud.User) User {
	return User{ID: u.ID, Name: u.Name, Email: u.Email, FullName: u.FullName, DomainID: u.DomainID, Enabled: u.Enabled}
}

// KeystoneResetter is the real [Resetter]: an identity client
// authenticated as setpass.reset_user (it re-authenticates by itself).
type KeystoneResetter struct{ c *cloud.Keystone }

// NewResetter wraps the reset credential's identity client.
func NewResetter(c *cloud.Keystone) *KeystoneResetter { return &KeystoneResetter{c: c} }

func (k *KeystoneResetter) SetPassword(ctx context.Context, userID, password string) error {
	err := k.c.UpdateUserRaw(ctx, userID, &password, nil)
	if err == nil {
		return nil
	}
	switch statusOf(err) {
	case http.StatusBadRequest:
		return &PasswordRefusedError{Reason: plainReason(cloud.ResponseBody(err))}
	case http.StatusUnauthorized, http.StatusForbidden:
		return ErrResetDenied
	case http.StatusNotFound:
		return ErrUnknownUser
	}
	return wrapKeystone("resetting a password", err)
}

// revokeRetries bounds the attempts to enable a user again after the
// disable that revoked its tokens.
const revokeRetries = 5

func (k *KeystoneResetter) RevokeTokens(ctx context.Context, userID string) error {
	u, err := k.c.UserRaw(ctx, userID)
	if err != nil {
		return wrapKeystone("reading a user before revoking its tokens", err)
	}
	if !u.Enabled {
		return nil // a disabled user's tokens are not accepted; and it must stay disabled
	}
	off, on := false, true
	if err := k.c.UpdateUserRaw(ctx, userID, nil, &off); err != nil {
		return wrapKeystone("disabling a user to revoke its tokens", err)
	}
	// From here the user must be enabled again whatever happens to ctx.
	var last error
	for i := range revokeRetries {
		ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		err := k.c.UpdateUserRaw(ectx, userID, nil, &on)
		cancel()
		if err == nil {
			return nil
		}
		last = err
		time.Sleep(time.Duration(i+1) * 200 * time.Millisecond)
	}
	return fmt.Errorf("the user is left DISABLED: enabling it again after revoking its tokens failed: %w",
		wrapKeystone("enabling a user", last))
}
