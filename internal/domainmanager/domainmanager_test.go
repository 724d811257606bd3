package domainmanager_test

// The domain-manager service on each identity backend: the in-memory fake
// (always, no servers) and the real Keystone (skipped without one, failing
// under CI=true), from the same test code.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kaizen-onboard/kaizen/internal/account"
	"github.com/kaizen-onboard/kaizen/internal/cloud"
	"github.com/kaizen-onboard/kaizen/internal/cloud/cloudtest"
	"github.com/kaizen-onboard/kaizen/internal/domainmanager"
	"github.com/kaizen-onboard/kaizen/internal/testenv"
)

var backends = []struct {
	name string
	new  func(t *testing.T) cloud.Identity
}{
	{"fake", func(t *testing.T) cloud.Identity { return cloudtest.New() }},
	{"keystone", func(t *testing.T) cloud.Identity { return cloud.NewKeystone(testenv.Keystone(t).Identity) }},
}

func eachBackend(t *testing.T, fn func(t *testing.T, e *env)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			fn(t, newEnv(t, b.new(t)))
		})
	}
}

func unique(prefix string) string {
	var b [5]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// audit is an account.Auditor in memory.
type audit struct {
	mu      sync.Mutex
	actions []string
}

func (a *audit) Record(ctx context.Context, action, target string, details map[string]string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.actions = append(a.actions, action)
}

func (a *audit) take() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := a.actions
	a.actions = nil
	return out
}

// linker records the links asked for.
type linker struct {
	reqs []account.LinkRequest
	err  error
}

func (l *linker) IssueLink(ctx context.Context, req account.LinkRequest) (account.Link, error) {
	l.reqs = append(l.reqs, req)
	if l.err != nil {
		return account.Link{}, l.err
	}
	return account.Link{Outcome: account.Issued, MailKey: account.WelcomeKey(req.User.ID), Queued: true, To: req.To}, nil
}

type env struct {
	t     *testing.T
	ops   cloud.Ops
	role  string // the settings' domain-manager role, deleted at the end
	audit *audit
	links *linker
}

func newEnv(t *testing.T, id cloud.Identity) *env {
	e := &env{t: t, ops: cloud.Ops{Identity: id}, role: unique("kzt-dm-manager-"), audit: &audit{}, links: &linker{}}
	t.Cleanup(func() { e.deleteRoleNamed(e.role) })
	return e
}

func cleanupCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), time.Minute)
}

func (e *env) deleteRoleNamed(name string) {
	ctx, cancel := cleanupCtx()
	defer cancel()
	id, err := e.ops.RoleID(ctx, name)
	if err == nil {
		err = e.ops.DeleteRole(ctx, id)
	}
	if err != nil && !errors.Is(err, cloud.ErrNotFound) {
		e.t.Errorf("cleanup: deleting role %s: %v", name, err)
	}
}

// domainName is a domain name of the test's own, deleted at the end if
// something created it.
func (e *env) domainName() string {
	name := unique("kzt-dm-")
	e.t.Cleanup(func() {
		ctx, cancel := cleanupCtx()
		defer cancel()
		d, err := e.ops.FindDomain(ctx, name)
		if err == nil {
			err = e.ops.DeleteDomain(ctx, d.ID)
		}
		if err != nil && !errors.Is(err, cloud.ErrNotFound) {
			e.t.Errorf("cleanup: deleting domain %s: %v", name, err)
		}
	})
	return name
}

func (e *env) domain() cloud.Domain {
	name := e.domainName()
	d, err := e.ops.CreateDomain(e.t.Context(), name, "kaizen domain-manager test")
	if err != nil {
		e.t.Fatal(err)
	}
	return d
}

func (e *env) user(domainID, name string) cloud.User {
	u, err := e.ops.CreateUser(e.t.Context(), cloud.NewUser{DomainID: domainID, Name: name, Password: "Passw0rd-" + unique("")})
	if err != nil {
		e.t.Fatal(err)
	}
	return u
}

func (e *env) service(forbidden ...string) *domainmanager.Service {
	return domainmanager.New(e.ops, e.links, e.audit, bytes.NewReader(bytes.Repeat([]byte{3}, 4096)),
		domainmanager.Settings{Role: e.role, ForbiddenRoles: append([]string{"admin"}, forbidden...), DefaultDomain: "Default"})
}

func (e *env) holds(userID, domainID string) bool {
	e.t.Helper()
	id, err := e.ops.RoleID(e.t.Context(), e.role)
	if errors.Is(err, cloud.ErrNoRole) {
		return false
	}
	if err != nil {
		e.t.Fatal(err)
	}
	has, err := e.ops.HasRole(e.t.Context(), cloud.Grant{UserID: userID, RoleID: id, DomainID: domainID})
	if err != nil {
		e.t.Fatal(err)
	}
	return has
}

func TestAssignExistingUser(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		d := e.domain()
		bob := e.user(d.ID, "bob@example.org")
		s := e.service()

		res, err := s.Assign(ctx, domainmanager.AssignRequest{Domain: d.Name, User: "BOB@example.org"})
		if err != nil {
			t.Fatal(err)
		}
		if !res.RoleCreated || !res.Manager || !res.Assigned || res.DomainCreated || res.UserCreated || res.User.ID != bob.ID || res.Domain.ID != d.ID || res.Welcome != nil {
			t.Errorf("first assign: %+v", res)
		}
		if got, want := e.audit.take(), []string{"role.create", "role.assign"}; !slices.Equal(got, want) {
			t.Errorf("audit %v, want %v", got, want)
		}
		if !e.holds(bob.ID, d.ID) {
			t.Fatal("bob does not hold the role on the domain")
		}

		res, err = s.Assign(ctx, domainmanager.AssignRequest{Domain: d.Name, User: bob.Name})
		if err != nil || res.RoleCreated || !res.Manager || res.Assigned {
			t.Errorf("re-assign: %+v, %v; want held, nothing assigned", res, err)
		}
		if got := e.audit.take(); len(got) != 0 {
			t.Errorf("re-assign recorded %v", got)
		}
		if len(e.links.reqs) != 0 {
			t.Errorf("links asked for an existing user without CreateUser: %+v", e.links.reqs)
		}

		// list, then revoke twice.
		rows, err := s.List(ctx, domainmanager.ListRequest{Domain: d.Name})
		if err != nil || len(rows) != 1 || rows[0].User != bob.Name || rows[0].Domain != d.Name || rows[0].Role != e.role {
			t.Errorf("list = %+v, %v; want bob", rows, err)
		}
		if all, err := s.List(ctx, domainmanager.ListRequest{}); err != nil || !slices.ContainsFunc(all, func(r cloud.DomainRoleAssignment) bool { return r.UserID == bob.ID }) {
			t.Errorf("list of every domain lacks bob: %+v, %v", all, err)
		}
		rv, err := s.Revoke(ctx, domainmanager.RevokeRequest{Domain: d.Name, User: "Bob@Example.org"})
		if err != nil || !rv.Revoked || rv.User.ID != bob.ID || rv.NoRole {
			t.Errorf("revoke: %+v, %v", rv, err)
		}
		if e.holds(bob.ID, d.ID) {
			t.Error("bob holds the role after revoke")
		}
		rv, err = s.Revoke(ctx, domainmanager.RevokeRequest{Domain: d.Name, User: bob.Name})
		if err != nil || rv.Revoked {
			t.Errorf("second revoke: %+v, %v; want nothing to revoke", rv, err)
		}
		if got, want := e.audit.take(), []string{"role.revoke"}; !slices.Equal(got, want) {
			t.Errorf("audit of two revokes %v, want %v", got, want)
		}
		if rows, err := s.List(ctx, domainmanager.ListRequest{Domain: d.Name}); err != nil || len(rows) != 0 {
			t.Errorf("list after revoke = %+v, %v", rows, err)
		}
		if _, err := s.Revoke(ctx, domainmanager.RevokeRequest{Domain: d.Name, User: "nobody@example.org"}); !errors.Is(err, cloud.ErrNoUser) {
			t.Errorf("revoke of an unknown user: %v, want ErrNoUser", err)
		}
	})
}

func TestAssignCreates(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		s := e.service()
		name := e.domainName()

		// Refused before anything is created.
		for _, tc := range []struct {
			name    string
			req     domainmanager.AssignRequest
			wantErr string
		}{
			{"missing domain", domainmanager.AssignRequest{Domain: name, User: "ada@example.org"}, "pass --create-domain"},
			{"missing user", domainmanager.AssignRequest{Domain: name, CreateDomain: true, User: "ada@example.org"}, "pass --create-user"},
		} {
			if _, err := s.Assign(ctx, tc.req); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s: %v, want %q", tc.name, err, tc.wantErr)
			}
		}
		if _, err := e.ops.FindDomain(ctx, name); !errors.Is(err, cloud.ErrNoDomain) {
			t.Errorf("a refused assign created the domain: %v", err)
		}
		if _, err := e.ops.RoleID(ctx, e.role); !errors.Is(err, cloud.ErrNoRole) {
			t.Errorf("a refused assign created the role: %v", err)
		}
		if got := e.audit.take(); len(got) != 0 {
			t.Errorf("refusals recorded %v", got)
		}

		res, err := s.Assign(ctx, domainmanager.AssignRequest{Domain: name, CreateDomain: true, User: "Ada@Example.org",
			CreateUser: true, Email: "Ada@Example.org", PIN: "2468"})
		if err != nil {
			t.Fatal(err)
		}
		if !res.RoleCreated || !res.DomainCreated || !res.UserCreated || !res.Assigned || res.User.Name != "ada@example.org" || res.User.Owner != "Ada@Example.org" {
			t.Errorf("assign --create-*: %+v", res)
		}
		if got, want := e.audit.take(), []string{"role.create", "domain.create", "user.create", "role.assign"}; !slices.Equal(got, want) {
			t.Errorf("audit %v, want %v", got, want)
		}
		if !e.holds(res.User.ID, res.Domain.ID) {
			t.Error("the new user is no manager")
		}
		if len(e.links.reqs) != 1 || res.Welcome == nil || res.Welcome.Outcome != account.Issued {
			t.Fatalf("links %+v, welcome %+v; want one welcome", e.links.reqs, res.Welcome)
		}
		lr := e.links.reqs[0]
		if lr.Purpose != account.Welcome || lr.User.ID != res.User.ID || lr.TempPassword == "" || lr.PIN != "2468" ||
			lr.To.Address != "Ada@Example.org" || lr.Welcome.Domain != name || lr.Welcome.Username != "ada@example.org" {
			t.Errorf("link request %+v", lr)
		}

		// A re-run asks for the welcome again (the issuer gives it once)
		// but with no password: the account's is gone with the first run.
		res, err = s.Assign(ctx, domainmanager.AssignRequest{Domain: name, CreateDomain: true, User: "ada@example.org",
			CreateUser: true, Email: "ada@example.org", PIN: "2468"})
		if err != nil || res.DomainCreated || res.UserCreated || res.Assigned || !res.Manager {
			t.Errorf("re-run: %+v, %v", res, err)
		}
		if len(e.links.reqs) != 2 || e.links.reqs[1].TempPassword != "" {
			t.Errorf("re-run link request %+v", e.links.reqs[1:])
		}
		if got := e.audit.take(); len(got) != 0 {
			t.Errorf("re-run recorded %v", got)
		}
	})
}

func TestAssignLinkFails(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		d := e.domain()
		e.links.err = errors.New("registering dan@example.org with setpass: connection refused")
		res, err := e.service().Assign(t.Context(), domainmanager.AssignRequest{Domain: d.Name, User: "dan@example.org",
			CreateUser: true, Email: "dan@example.org", PIN: "8080"})
		if err == nil || !strings.Contains(err.Error(), "connection refused") {
			t.Fatalf("err = %v", err)
		}
		// The user is a manager whatever the link did.
		if !res.Manager || !res.UserCreated || !e.holds(res.User.ID, d.ID) {
			t.Errorf("result %+v: want the user created and made a manager", res)
		}
	})
}

func TestAssignRefusals(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		d := e.domain()
		carol := e.user(d.ID, "carol@example.org")
		mk := func(prefix string) cloud.RoleRef {
			r, err := e.ops.CreateRole(ctx, unique(prefix), "kaizen domain-manager test")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { e.deleteRoleNamed(r.Name) })
			return r
		}
		secret, mid := mk("kzt-dm-secret-"), mk("kzt-dm-mid-")
		// The settings' role, existing and implying secret two steps away.
		boss, err := e.ops.CreateRole(ctx, e.role, "kaizen domain-manager test")
		if err != nil {
			t.Fatal(err)
		}
		for _, rule := range [][2]string{{boss.ID, mid.ID}, {mid.ID, secret.ID}} {
			if err := e.ops.CreateImpliedRole(ctx, rule[0], rule[1]); err != nil {
				t.Fatal(err)
			}
		}
		for _, tc := range []struct {
			name      string
			forbidden []string
			role      string
			wantErr   string
		}{
			{"implies a forbidden role", []string{secret.Name}, "", `implies role "` + secret.Name + `"`},
			{"forbidden itself", []string{strings.ToUpper(e.role)}, "", "in domain_manager.forbidden_roles"},
			{"admin", nil, "Admin", "it is admin"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				st := domainmanager.Settings{Role: e.role, ForbiddenRoles: tc.forbidden}
				if tc.role != "" {
					st.Role = tc.role
				}
				s := domainmanager.New(e.ops, e.links, e.audit, bytes.NewReader(make([]byte, 64)), st)
				_, err := s.Assign(ctx, domainmanager.AssignRequest{Domain: d.Name, User: carol.Name})
				if !errors.Is(err, cloud.ErrForbiddenRole) || !strings.Contains(err.Error(), "refusing to assign") || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("err = %v, want a refusal with %q", err, tc.wantErr)
				}
			})
		}
		if e.holds(carol.ID, d.ID) {
			t.Error("carol holds a refused role")
		}
		if got := e.audit.take(); len(got) != 0 {
			t.Errorf("refusals recorded %v", got)
		}
	})
}

func TestNoRole(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		d := e.domain()
		e.user(d.ID, "erin@example.org")
		s := e.service()
		if rows, err := s.List(t.Context(), domainmanager.ListRequest{Domain: d.Name}); err != nil || rows == nil || len(rows) != 0 {
			t.Errorf("list without the role = %#v, %v; want an empty list", rows, err)
		}
		if rv, err := s.Revoke(t.Context(), domainmanager.RevokeRequest{Domain: d.Name, User: "erin@example.org"}); err != nil || !rv.NoRole {
			t.Errorf("revoke without the role = %+v, %v; want NoRole", rv, err)
		}
		if _, err := s.List(t.Context(), domainmanager.ListRequest{Domain: unique("kzt-dm-none-")}); !errors.Is(err, cloud.ErrNoDomain) {
			t.Errorf("list of a missing domain: %v", err)
		}
	})
}
