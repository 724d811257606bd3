// Package domainmanager assigns, revokes and lists SCS Domain Managers
// (scs-0302): users holding the domain-manager role on a domain, not on a
// project, who administer that domain's users and projects.
package domainmanager

import (
	"context"
	"errors"
	"fmt"
	"io"
	netmail "net/mail"
	"strings"

	"github.com/kaizen-onboard/kaizen/internal/account"
	"github.com/kaizen-onboard/kaizen/internal/cloud"
	"github.com/kaizen-onboard/kaizen/internal/mail"
)

// Identity is what the service reads and changes in Keystone (cloud.Ops).
type Identity interface {
	RoleID(ctx context.Context, name string) (string, error)
	CheckManagerRole(ctx context.Context, name, id string, forbidden []string) error
	EnsureManagerRole(ctx context.Context, name string, forbidden []string) (id string, created bool, err error)
	FindDomain(ctx context.Context, name string) (cloud.Domain, error)
	EnsureDomain(ctx context.Context, name string, create bool) (cloud.Domain, bool, error)
	FindUser(ctx context.Context, domainID, name string) (cloud.User, error)
	EnsureUser(ctx context.Context, spec cloud.UserSpec) (cloud.User, bool, error)
	EnsureGrant(ctx context.Context, g cloud.Grant) (assigned bool, err error)
	UnassignRole(ctx context.Context, g cloud.Grant) (removed bool, err error)
	ListDomainRoleAssignments(ctx context.Context, roleID, domainID string) ([]cloud.DomainRoleAssignment, error)
}

// Linker gives a new user its set-password link (account.Issuer).
type Linker interface {
	IssueLink(ctx context.Context, req account.LinkRequest) (account.Link, error)
}

// Settings are the service's settings (domain_manager.*, openstack.domain).
type Settings struct {
	Role           string   // domain_manager.role
	ForbiddenRoles []string // domain_manager.forbidden_roles
	// DefaultDomain (openstack.domain) is left out of welcome mails.
	DefaultDomain string
}

// Service assigns, revokes and lists domain managers.
type Service struct {
	ids    Identity
	links  Linker
	audit  account.Auditor
	random io.Reader
	s      Settings
}

// New builds a Service. links may be nil when no assignment creates a
// user; random draws the temporary passwords of created users
// (crypto/rand.Reader outside tests).
func New(ids Identity, links Linker, audit account.Auditor, random io.Reader, s Settings) *Service {
	return &Service{ids: ids, links: links, audit: audit, random: random, s: s}
}

// AssignRequest makes User of Domain a domain manager.
type AssignRequest struct {
	Domain, User string
	CreateDomain bool // create the domain when it does not exist
	// CreateUser creates the user when it does not exist and gives it a
	// welcome with a set-password link at Email asking for PIN.
	CreateUser bool
	Email, PIN string
}

// AssignResult is what Assign did; on an error, what was done before it.
type AssignResult struct {
	Role          string
	RoleID        string
	RoleCreated   bool
	Domain        cloud.Domain
	DomainCreated bool
	User          cloud.User
	UserCreated   bool
	// Manager: the user holds the role on the domain now; Assigned: this
	// call assigned it (false with Manager: held before).
	Manager, Assigned bool
	// Welcome is the new user's link, once asked for (CreateUser).
	Welcome *account.Link
}

// Assign checks everything that can refuse first (the role, the domain
// and the user without their Create flags), so a refusal leaves the cloud
// as it was; then it creates what is missing and grants the role. The
// link and mail come last: the user is told once the role is theirs.
func (s *Service) Assign(ctx context.Context, req AssignRequest) (AssignResult, error) {
	res := AssignResult{Role: s.s.Role}
	roleID, err := s.ids.RoleID(ctx, s.s.Role)
	if err != nil && !errors.Is(err, cloud.ErrNoRole) {
		return res, err
	}
	if err := s.ids.CheckManagerRole(ctx, s.s.Role, roleID, s.s.ForbiddenRoles); err != nil {
		return res, fmt.Errorf("refusing to assign: %w", err)
	}
	d, err := s.ids.FindDomain(ctx, req.Domain)
	newDomain := errors.Is(err, cloud.ErrNoDomain)
	switch {
	case newDomain && !req.CreateDomain:
		return res, fmt.Errorf("domain %q does not exist; pass --create-domain to create it", req.Domain)
	case err != nil && !newDomain:
		return res, err
	}
	var u cloud.User
	newUser := newDomain
	if !newDomain {
		u, err = s.ids.FindUser(ctx, d.ID, req.User)
		newUser = errors.Is(err, cloud.ErrNoUser)
		if err != nil && !newUser {
			return res, err
		}
	}
	if newUser && !req.CreateUser {
		return res, fmt.Errorf("no user %q in domain %q; pass --create-user --email ADDRESS --pin NNNN to create it", req.User, req.Domain)
	}
	if req.CreateUser && s.links == nil {
		return res, errors.New("domain manager: creating a user needs a link issuer")
	}

	if roleID == "" {
		var created bool
		// Checked again: a concurrent creator may have made it first.
		roleID, created, err = s.ids.EnsureManagerRole(ctx, s.s.Role, s.s.ForbiddenRoles)
		if err != nil {
			return res, fmt.Errorf("refusing to assign: %w", err)
		}
		if created {
			res.RoleCreated = true
			s.audit.Record(ctx, "role.create", roleID, map[string]string{"name": s.s.Role})
		}
	}
	res.RoleID = roleID
	if newDomain {
		var created bool
		if d, created, err = s.ids.EnsureDomain(ctx, req.Domain, true); err != nil {
			return res, err
		}
		if created {
			res.DomainCreated = true
			s.audit.Record(ctx, "domain.create", d.ID, map[string]string{"name": d.Name})
		}
	}
	res.Domain = d
	temp := ""
	if newUser {
		if u, temp, err = s.createUser(ctx, req, d); err != nil {
			return res, err
		}
		res.UserCreated = temp != ""
	}
	res.User = u

	assigned, err := s.ids.EnsureGrant(ctx, cloud.Grant{UserID: u.ID, RoleID: roleID, DomainID: d.ID})
	if err != nil {
		return res, err
	}
	res.Manager, res.Assigned = true, assigned
	if assigned {
		s.audit.Record(ctx, "role.assign", d.ID, map[string]string{
			"role": s.s.Role, "role_id": roleID, "user": u.ID, "user_name": u.Name, "scope": "domain", "domain": d.Name,
		})
	}
	if !req.CreateUser {
		return res, nil
	}
	// A user kaizen created but never welcomed (a run died in between, or
	// a concurrent creator won) gets a fresh temporary password from the
	// issuer; accounts kaizen did not create are not touched.
	mailDomain := d.Name
	if strings.EqualFold(mailDomain, s.s.DefaultDomain) {
		mailDomain = ""
	}
	addr := u.Email
	if addr == "" {
		addr = req.Email
	}
	link, err := s.links.IssueLink(ctx, account.LinkRequest{
		User: u, Purpose: account.Welcome, TempPassword: temp, PIN: req.PIN,
		To:      netmail.Address{Address: addr},
		Welcome: mail.WelcomeData{Name: u.Name, Username: u.Name, Domain: mailDomain},
	})
	res.Welcome = &link
	return res, err
}

// createUser creates req.User in domain d with a temporary password,
// returned for the set-password link ("" when a concurrent creator won).
func (s *Service) createUser(ctx context.Context, req AssignRequest, d cloud.Domain) (cloud.User, string, error) {
	if s.random == nil {
		return cloud.User{}, "", errors.New("domain manager: no source of randomness for temporary passwords")
	}
	temp, err := cloud.TempPassword(s.random)
	if err != nil {
		return cloud.User{}, "", err
	}
	u, created, err := s.ids.EnsureUser(ctx, cloud.UserSpec{
		DomainID: d.ID, Name: req.User, Email: req.Email, Password: temp, Owner: req.Email,
	})
	if err != nil {
		return cloud.User{}, "", err
	}
	if !created {
		return u, "", nil
	}
	s.audit.Record(ctx, "user.create", u.ID, map[string]string{"name": u.Name, "domain": d.Name})
	u.Owner = req.Email
	return u, temp, nil
}

// RevokeRequest removes User's domain-manager role on Domain.
type RevokeRequest struct {
	Domain, User string
}

// RevokeResult is what Revoke did.
type RevokeResult struct {
	Role string
	// NoRole: the role does not exist, so no one holds it; nothing else
	// was looked up.
	NoRole  bool
	Domain  cloud.Domain
	User    cloud.User
	Revoked bool // false: the user did not hold it
}

// Revoke removes the user's direct assignment of the role on the domain;
// nothing to revoke is not an error. Tokens already issued keep their
// roles until they expire.
func (s *Service) Revoke(ctx context.Context, req RevokeRequest) (RevokeResult, error) {
	res := RevokeResult{Role: s.s.Role}
	roleID, err := s.ids.RoleID(ctx, s.s.Role)
	if errors.Is(err, cloud.ErrNoRole) {
		res.NoRole = true
		return res, nil
	}
	if err != nil {
		return res, err
	}
	if res.Domain, err = s.ids.FindDomain(ctx, req.Domain); err != nil {
		return res, err
	}
	if res.User, err = s.ids.FindUser(ctx, res.Domain.ID, req.User); err != nil {
		return res, err
	}
	d, u := res.Domain, res.User
	if res.Revoked, err = s.ids.UnassignRole(ctx, cloud.Grant{UserID: u.ID, RoleID: roleID, DomainID: d.ID}); err != nil {
		return res, err
	}
	if res.Revoked {
		s.audit.Record(ctx, "role.revoke", d.ID, map[string]string{
			"role": s.s.Role, "role_id": roleID, "user": u.ID, "user_name": u.Name, "scope": "domain", "domain": d.Name,
		})
	}
	return res, nil
}

// ListRequest selects the assignments to list: Domain "" for every domain.
type ListRequest struct {
	Domain string
}

// List returns the direct assignments of the role on domains, names
// resolved, sorted by domain, then user or group name; none when the role
// does not exist.
func (s *Service) List(ctx context.Context, req ListRequest) ([]cloud.DomainRoleAssignment, error) {
	domainID := ""
	if req.Domain != "" {
		d, err := s.ids.FindDomain(ctx, req.Domain)
		if err != nil {
			return nil, err
		}
		domainID = d.ID
	}
	roleID, err := s.ids.RoleID(ctx, s.s.Role)
	switch {
	case errors.Is(err, cloud.ErrNoRole):
		return []cloud.DomainRoleAssignment{}, nil // no role, no managers
	case err != nil:
		return nil, err
	}
	return s.ids.ListDomainRoleAssignments(ctx, roleID, domainID)
}
