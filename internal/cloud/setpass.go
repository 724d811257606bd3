package cloud

import (
	"context"
	"errors"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/domains"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/projects"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/roles"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/tokens"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/users"
)

// PasswordAuth is the AuthOptions of a user authenticating by password
// into a project (setpass's reset credential). It re-authenticates by
// itself when its token expires.
func PasswordAuth(identityEndpoint, user, userDomain, password, project, projectDomain string) gophercloud.AuthOptions {
	return gophercloud.AuthOptions{
		IdentityEndpoint: identityEndpoint,
		Username:         user,
		DomainName:       userDomain,
		Password:         password,
		AllowReauth:      true,
		Scope:            &gophercloud.AuthScope{ProjectName: project, DomainName: projectDomain},
	}
}

// The calls below serve setpass's Keystone adapter. They return
// gophercloud's errors unmapped, so that the adapter can tell the status
// ([StatusOf]) and read a refusal's reason ([ResponseBody]); it never lets
// those errors out, as their bodies may quote a token.

// StatusOf is the HTTP status of a failed call, 0 for a transport error.
func StatusOf(err error) int {
	var e gophercloud.ErrUnexpectedResponseCode
	if errors.As(err, &e) {
		return e.Actual
	}
	return 0
}

// ResponseBody is the body of a failed call's response, nil for a
// transport error.
func ResponseBody(err error) []byte {
	var e gophercloud.ErrUnexpectedResponseCode
	if errors.As(err, &e) {
		return e.Body
	}
	return nil
}

// Bare is a client on k's endpoint with no token and no
// reauthentication: a 401 there is the caller's own, never retried as k.
func (k *Keystone) Bare() *Keystone {
	admin := k.c
	p := &gophercloud.ProviderClient{
		HTTPClient:       admin.HTTPClient,
		IdentityBase:     admin.IdentityBase,
		IdentityEndpoint: admin.IdentityEndpoint,
		UserAgent:        admin.UserAgent,
	}
	return NewKeystone(&gophercloud.ServiceClient{ProviderClient: p, Endpoint: admin.Endpoint, ResourceBase: admin.ResourceBase, Type: admin.Type})
}

// UserRaw is one GET /users/{id}.
func (k *Keystone) UserRaw(ctx context.Context, id string) (User, error) {
	u, err := users.Get(ctx, k.c, id).Extract()
	if err != nil {
		return User{}, err
	}
	return userOf(*u), nil
}

// ChangePasswordRaw is POST /users/{id}/password, proven by original.
func (k *Keystone) ChangePasswordRaw(ctx context.Context, userID, original, replacement string) error {
	return users.ChangePassword(ctx, k.c, userID, users.ChangePasswordOpts{
		OriginalPassword: original, Password: replacement,
	}).ExtractErr()
}

// UpdateUserRaw is one PATCH /users/{id} of the password and/or enabled
// flag (nil: unchanged).
func (k *Keystone) UpdateUserRaw(ctx context.Context, userID string, password *string, enabled *bool) error {
	opts := users.UpdateOpts{Enabled: enabled}
	if password != nil {
		opts.Password = *password
	}
	_, err := users.Update(ctx, k.c, userID, opts).Extract()
	return err
}

// PingRaw asks for the identity API's version document.
func (k *Keystone) PingRaw(ctx context.Context) error {
	_, err := k.c.Get(ctx, k.c.Endpoint, nil, &gophercloud.RequestOpts{OkCodes: []int{200, 300}})
	return err
}

// ValidateToken is GET /auth/tokens of subject, decoded into into (the
// "token" object). callErr is the request's failure, readErr the
// decoding's.
func (k *Keystone) ValidateToken(ctx context.Context, subject string, into any) (callErr, readErr error) {
	res := tokens.Get(ctx, k.c, subject)
	if res.Err != nil {
		return res.Err, nil
	}
	return nil, res.ExtractInto(into)
}

// EffectiveAssignment is one effective role assignment, with names.
type EffectiveAssignment struct {
	RoleID, RoleName, UserID, ProjectID string
}

// EffectiveAssignmentsRaw is GET /role_assignments?user.id=&effective&include_names,
// on projectID only when it is not "".
func (k *Keystone) EffectiveAssignmentsRaw(ctx context.Context, userID, projectID string) (_ []EffectiveAssignment, callErr, readErr error) {
	yes := true
	pages, err := roles.ListAssignments(k.c, roles.ListAssignmentsOpts{
		UserID: userID, ScopeProjectID: projectID, Effective: &yes, IncludeNames: &yes,
	}).AllPages(ctx)
	if err != nil {
		return nil, err, nil
	}
	as, err := roles.ExtractRoleAssignments(pages)
	if err != nil {
		return nil, nil, err
	}
	out := make([]EffectiveAssignment, len(as))
	for i, a := range as {
		out[i] = EffectiveAssignment{RoleID: a.Role.ID, RoleName: a.Role.Name, UserID: a.User.ID, ProjectID: a.Scope.Project.ID}
	}
	return out, nil, nil
}

// ProjectsNamedRaw is GET /projects?name=.
func (k *Keystone) ProjectsNamedRaw(ctx context.Context, name string) (_ []Project, callErr, readErr error) {
	pages, err := projects.List(k.c, projects.ListOpts{Name: name}).AllPages(ctx)
	if err != nil {
		return nil, err, nil
	}
	ps, err := projects.ExtractProjects(pages)
	if err != nil {
		return nil, nil, err
	}
	out := make([]Project, len(ps))
	for i, p := range ps {
		out[i] = projectOf(p)
	}
	return out, nil, nil
}

// DomainsNamedRaw is GET /domains?name=.
func (k *Keystone) DomainsNamedRaw(ctx context.Context, name string) (_ []Domain, callErr, readErr error) {
	pages, err := domains.List(k.c, domains.ListOpts{Name: name}).AllPages(ctx)
	if err != nil {
		return nil, err, nil
	}
	ds, err := domains.ExtractDomains(pages)
	if err != nil {
		return nil, nil, err
	}
	out := make([]Domain, len(ds))
	for i, d := range ds {
		out[i] = domainOf(d)
	}
	return out, nil, nil
}
