package setpass

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/kaizen-onboard/kaizen/internal/cloud"
)

// adminRole is the role a caller must hold on the admin project.
const adminRole = "admin"

// DefaultAdminCacheTTL is how long a successful admin check is remembered
// unless SetAdminCacheTTL says otherwise (setpass.admin_cache_ttl).
const DefaultAdminCacheTTL = 2 * time.Minute

// adminCacheMax bounds the cache; a burst of distinct admin tokens is rare.
const adminCacheMax = 1024

// SetAdminCacheTTL sets how long a token that passed CheckAdmin is accepted
// without asking Keystone again: 0 asks every time. Call it before use.
func (k *KeystoneClient) SetAdminCacheTTL(d time.Duration) *KeystoneClient {
	k.admins.ttl = max(d, 0)
	return k
}

// SetClock sets the clock the admin cache ages entries by (default
// time.Now).
func (k *KeystoneClient) SetClock(now func() time.Time) *KeystoneClient {
	k.now = now
	return k
}

func (k *KeystoneClient) clock() time.Time {
	if k.now == nil {
		return time.Now()
	}
	return k.now()
}

// adminCache remembers tokens that passed CheckAdmin, by SHA-256, so a
// batch of PUT /token calls with one admin token costs Keystone one
// validation, not one per user (a third of Keystone's work per onboarded
// row). Like keystonemiddleware's token cache it trades revocation for
// load: a revoked token, or a user whose admin role was removed, is still
// accepted for at most ttl. Only successes are kept; refusals are asked
// again every time.
type adminCache struct {
	ttl     time.Duration // 0: nothing is kept
	mu      sync.Mutex
	entries map[[32]byte]adminEntry
}

type adminEntry struct {
	actor string
	until time.Time
}

func (c *adminCache) get(key [32]byte, now time.Time) (string, bool) {
	if c.ttl <= 0 {
		return "", false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok || !now.Before(e.until) {
		delete(c.entries, key)
		return "", false
	}
	return e.actor, true
}

func (c *adminCache) put(key [32]byte, actor string, now, expires time.Time) {
	if c.ttl <= 0 {
		return
	}
	until := now.Add(c.ttl)
	if !expires.IsZero() && expires.Before(until) {
		until = expires
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil || len(c.entries) >= adminCacheMax {
		c.entries = map[[32]byte]adminEntry{} // crude, bounded
	}
	c.entries[key] = adminEntry{actor: actor, until: until}
}

// validatedToken is the part of GET /v3/auth/tokens that CheckAdmin reads
// (ExtractInto descends into "token" itself).
type validatedToken struct {
	User struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"user"`
	Project *struct {
		ID     string `json:"id"`
		Name   string `json:"name"`
		Domain struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"domain"`
	} `json:"project"`
	Roles []struct {
		Name string `json:"name"`
	} `json:"roles"`
	ExpiresAt time.Time `json:"expires_at"`
	Methods   []string  `json:"methods"`
	// Present on tokens whose roles are a chosen subset of the user's.
	AppCredential json.RawMessage `json:"application_credential"`
	Trust         json.RawMessage `json:"OS-TRUST:trust"`
	OAuth1        json.RawMessage `json:"OS-OAUTH1"`
}

// restricted tokens carry only the roles their delegation chose, which
// may be fewer than the user's: for them the token's own roles decide.
func (t *validatedToken) restricted() bool {
	return len(t.AppCredential) > 0 || len(t.Trust) > 0 || len(t.OAuth1) > 0 ||
		slices.Contains(t.Methods, "application_credential")
}

// CheckAdmin accepts a token whose user holds the admin role on the admin
// project, whatever the token is scoped to (nothing, any project, a domain,
// the system), as MOC's setpass did by rescoping: its README's admin client
// authenticates with no project. A token scoped to the admin project with
// the admin role passes on its own; for any other, the user's effective
// role assignments on the admin project (groups and inheritance included)
// are read with setpass's own credential, which needs
// identity:list_role_assignments (an admin on the admin project has it).
// Application-credential, trust and OAuth1 tokens pass only on their own
// roles, so that a delegation restricted to "member" does not become admin.
func (k *KeystoneClient) CheckAdmin(ctx context.Context, subjectToken string) (string, error) {
	key := sha256.Sum256([]byte(subjectToken))
	if actor, ok := k.admins.get(key, k.clock()); ok {
		return actor, nil
	}
	var t validatedToken
	callErr, err := k.admin.ValidateToken(ctx, subjectToken, &t)
	if callErr != nil {
		switch statusOf(callErr) {
		case http.StatusNotFound, http.StatusUnauthorized:
			return "", ErrUnauthenticated
		}
		return "", wrapKeystone("validating a token", callErr)
	}
	if err != nil {
		return "", fmt.Errorf("keystone: reading a validated token: %w", err)
	}
	actor := t.User.Name
	if actor == "" {
		actor = t.User.ID
	}
	ok, err := k.holdsAdmin(ctx, &t)
	if err != nil {
		return actor, err
	}
	if !ok {
		return actor, ErrForbidden
	}
	k.admins.put(key, actor, k.clock(), t.ExpiresAt)
	return actor, nil
}

func (k *KeystoneClient) holdsAdmin(ctx context.Context, t *validatedToken) (bool, error) {
	if p := t.Project; p != nil && p.Name == k.adminProject && (p.Domain.Name == k.adminDomain || p.Domain.ID == k.adminDomain) {
		for _, r := range t.Roles {
			if r.Name == adminRole {
				return true, nil
			}
		}
	}
	if t.restricted() || t.User.ID == "" {
		return false, nil
	}
	projectID, err := k.adminProjectIDOf(ctx)
	if err != nil {
		return false, err
	}
	as, callErr, err := k.admin.EffectiveAssignmentsRaw(ctx, t.User.ID, projectID)
	if callErr != nil {
		return false, wrapKeystone("listing the caller's roles on the admin project", callErr)
	}
	if err != nil {
		return false, fmt.Errorf("keystone: reading role assignments: %w", err)
	}
	for _, a := range as {
		// Keystone filtered by user and project; checked again so that a
		// proxy or an older Keystone ignoring a filter cannot widen it.
		if a.RoleName == adminRole && a.ProjectID == projectID && a.UserID == t.User.ID {
			return true, nil
		}
	}
	return false, nil
}

// errNoAdminProject: openstack.admin_project names no project Keystone has.
var errNoAdminProject = errors.New("keystone: openstack.admin_project is not a project in openstack.admin_project_domain")

// adminProjectIDOf resolves openstack.admin_project (a name, in a domain
// given by name or ID) once; project IDs do not change.
func (k *KeystoneClient) adminProjectIDOf(ctx context.Context) (string, error) {
	k.mu.Lock()
	id := k.adminProjectID
	k.mu.Unlock()
	if id != "" {
		return id, nil
	}
	ps, callErr, err := k.admin.ProjectsNamedRaw(ctx, k.adminProject)
	if callErr != nil {
		return "", wrapKeystone("looking up the admin project", callErr)
	}
	if err != nil {
		return "", fmt.Errorf("keystone: reading projects: %w", err)
	}
	domainID := k.adminDomain
	if !slices.ContainsFunc(ps, func(p cloud.Project) bool { return p.DomainID == domainID }) {
		// adminDomain is a name (as the default "Default" is).
		ds, callErr, err := k.admin.DomainsNamedRaw(ctx, k.adminDomain)
		if callErr != nil {
			return "", wrapKeystone("looking up the admin project's domain", callErr)
		}
		if err != nil {
			return "", fmt.Errorf("keystone: reading domains: %w", err)
		}
		if len(ds) != 1 {
			return "", errNoAdminProject
		}
		domainID = ds[0].ID
	}
	for _, p := range ps {
		if p.DomainID == domainID && p.Name == k.adminProject {
			k.mu.Lock()
			k.adminProjectID = p.ID
			k.mu.Unlock()
			return p.ID, nil
		}
	}
	return "", errNoAdminProject
}
