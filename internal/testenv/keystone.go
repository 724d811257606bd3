package testenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/domains"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/roles"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/tokens"
)

const (
	keystoneStartHint = `eval "$(scripts/dev-keystone up && scripts/dev-keystone env)", or run make test`

	// KeystoneAllowRemoteEnv, set to 1, lets the harness use a Keystone that
	// is not on a loopback address. Off by default because the OS_ variables
	// of an operator's real cloud are often set in the shell, and the tests
	// create and delete domains as admin.
	KeystoneAllowRemoteEnv = "KAIZEN_TESTENV_REMOTE_KEYSTONE"

	keystoneHTTPTimeout = 60 * time.Second
	keystoneDomainMax   = 64 // Keystone's limit on domain names
)

// KeystoneAdmin is the bootstrap admin, as printed by `scripts/dev-keystone env`.
type KeystoneAdmin struct {
	Username          string // OS_USERNAME
	Password          string // OS_PASSWORD
	ProjectName       string // OS_PROJECT_NAME
	UserDomainName    string // OS_USER_DOMAIN_NAME
	ProjectDomainName string // OS_PROJECT_DOMAIN_NAME
}

// KeystoneEnv is the real Keystone attached by [Keystone].
type KeystoneEnv struct {
	// AuthURL is the identity v3 endpoint, e.g. http://127.0.0.1:5000/v3.
	AuthURL string
	// Admin holds the admin credentials, for tests that authenticate themselves.
	Admin KeystoneAdmin
	// Identity is an identity v3 client with an admin token scoped to the
	// admin project; it reauthenticates when the token expires.
	Identity *gophercloud.ServiceClient
}

// Keystone attaches to the Keystone started by `make test` (or by
// scripts/dev-keystone up), configured through the OS_AUTH_URL, OS_USERNAME,
// OS_PASSWORD, OS_PROJECT_NAME, OS_USER_DOMAIN_NAME and OS_PROJECT_DOMAIN_NAME
// environment variables. When those are missing or Keystone does not answer,
// the test is skipped, or fails under CI=true.
//
// Tests must keep to the domains they create with [KeystoneEnv.Domain].
func Keystone(t testing.TB) *KeystoneEnv {
	t.Helper()
	// Each call authenticates afresh (about 20 ms with the dev Keystone's
	// cheap password hashing) rather than sharing a package-level client.
	env, unavailable, err := attachKeystone()
	switch {
	case unavailable != "":
		if os.Getenv("CI") == "true" {
			t.Fatalf("testenv: %s; CI=true, so this fails instead of skipping; start Keystone first: %s",
				unavailable, keystoneStartHint)
		}
		t.Skipf("testenv: %s; to run this test: %s", unavailable, keystoneStartHint)
	case err != nil:
		t.Fatalf("testenv: %v", err)
	}
	return env
}

func attachKeystone() (env *KeystoneEnv, unavailable string, err error) {
	vars := []string{"OS_AUTH_URL", "OS_USERNAME", "OS_PASSWORD", "OS_PROJECT_NAME",
		"OS_USER_DOMAIN_NAME", "OS_PROJECT_DOMAIN_NAME"}
	val := make(map[string]string, len(vars))
	var missing []string
	for _, v := range vars {
		val[v] = os.Getenv(v)
		if val[v] == "" {
			missing = append(missing, v)
		}
	}
	if len(missing) > 0 {
		return nil, "Keystone is not configured: " + strings.Join(missing, ", ") + " not set", nil
	}

	authURL := strings.TrimRight(val["OS_AUTH_URL"], "/")
	u, err := url.Parse(authURL)
	if err != nil || u.Host == "" {
		return nil, fmt.Sprintf("OS_AUTH_URL=%q is not a URL", authURL), nil
	}
	if !keystoneIsLoopback(u.Hostname()) && os.Getenv(KeystoneAllowRemoteEnv) != "1" {
		return nil, fmt.Sprintf("OS_AUTH_URL=%s is not a local Keystone (set %s=1 to use it anyway)",
			authURL, KeystoneAllowRemoteEnv), nil
	}

	ctx, cancel := context.WithTimeout(context.Background(), keystoneHTTPTimeout)
	defer cancel()

	// A plain GET first, so that "not running" is told apart from "running
	// but the credentials are wrong".
	if err := keystoneHealthy(ctx, authURL); err != nil {
		return nil, fmt.Sprintf("Keystone at %s does not answer: %v", authURL, err), nil
	}

	env = &KeystoneEnv{
		AuthURL: authURL,
		Admin: KeystoneAdmin{
			Username:          val["OS_USERNAME"],
			Password:          val["OS_PASSWORD"],
			ProjectName:       val["OS_PROJECT_NAME"],
			UserDomainName:    val["OS_USER_DOMAIN_NAME"],
			ProjectDomainName: val["OS_PROJECT_DOMAIN_NAME"],
		},
	}
	provider, err := env.newProvider()
	if err != nil {
		return nil, "", err
	}
	if err := openstack.Authenticate(ctx, provider, env.AdminAuthOptions()); err != nil {
		return nil, "", fmt.Errorf("keystone at %s answers but refuses the admin credentials from OS_*"+
			" (stale environment? re-run `eval \"$(scripts/dev-keystone env)\"`): %w", authURL, err)
	}
	// Empty EndpointOpts: use AuthURL itself, not whatever the catalog says.
	env.Identity, err = openstack.NewIdentityV3(provider, gophercloud.EndpointOpts{})
	if err != nil {
		return nil, "", err
	}
	return env, "", nil
}

func keystoneIsLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func keystoneHealthy(ctx context.Context, authURL string) error {
	// A server that is not running refuses at once; the single-threaded dev
	// Keystone under a full parallel test run may take seconds to answer.
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, authURL, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", authURL, resp.Status)
	}
	return nil
}

// AdminAuthOptions returns options that authenticate as the admin, scoped
// to the admin project, with reauthentication allowed.
func (k *KeystoneEnv) AdminAuthOptions() gophercloud.AuthOptions {
	return gophercloud.AuthOptions{
		IdentityEndpoint: k.AuthURL,
		Username:         k.Admin.Username,
		Password:         k.Admin.Password,
		DomainName:       k.Admin.UserDomainName,
		AllowReauth:      true,
		Scope: &gophercloud.AuthScope{
			ProjectName: k.Admin.ProjectName,
			DomainName:  k.Admin.ProjectDomainName,
		},
	}
}

// newProvider returns an unauthenticated provider client for AuthURL.
func (k *KeystoneEnv) newProvider() (*gophercloud.ProviderClient, error) {
	provider, err := openstack.NewClient(k.AuthURL)
	if err != nil {
		return nil, err
	}
	// Backstop for a wedged server; callers' contexts are usually shorter.
	provider.HTTPClient = http.Client{Timeout: keystoneHTTPTimeout}
	return provider, nil
}

// Domain creates a domain for the calling test alone, named
// kzt-<test name>-<random>, and deletes it when the test ends, which also
// deletes every project and user in it.
func (k *KeystoneEnv) Domain(t testing.TB) (id, name string) {
	t.Helper()
	name = keystoneDomainName(t.Name())
	d, err := domains.Create(t.Context(), k.Identity, domains.CreateOpts{
		Name:        name,
		Description: "Kaizen integration test " + t.Name(),
	}).Extract()
	if err != nil {
		t.Fatalf("testenv: create domain %s: %v", name, err)
	}
	t.Cleanup(func() {
		// t.Context() is already cancelled when cleanups run.
		ctx, cancel := context.WithTimeout(context.Background(), keystoneHTTPTimeout)
		defer cancel()
		if err := k.deleteDomain(ctx, d.ID); err != nil {
			t.Errorf("testenv: delete domain %s (%s): %v", name, d.ID, err)
		}
	})
	return d.ID, d.Name
}

func (k *KeystoneEnv) deleteDomain(ctx context.Context, id string) error {
	// Keystone refuses to delete an enabled domain.
	disabled := false
	_, err := domains.Update(ctx, k.Identity, id, domains.UpdateOpts{Enabled: &disabled}).Extract()
	if gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("disable: %w", err)
	}
	err = domains.Delete(ctx, k.Identity, id).ExtractErr()
	if err != nil && !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		return err
	}
	return nil
}

// keystoneDomainName is kzt-<sanitised test name>-<8 hex digits>, at most
// keystoneDomainMax bytes, unique across parallel tests and test runs.
func keystoneDomainName(testName string) string {
	suffix := "-" + randomHex(8)
	const prefix = "kzt-"

	var sb strings.Builder
	dash := false
	for _, r := range strings.ToLower(testName) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			sb.WriteRune(r)
			dash = false
		} else if !dash {
			sb.WriteByte('-')
			dash = true
		}
	}
	part := strings.Trim(sb.String(), "-")
	if limit := keystoneDomainMax - len(prefix) - len(suffix); len(part) > limit {
		part = strings.TrimRight(part[:limit], "-")
	}
	if part == "" {
		part = "test"
	}
	return prefix + part + suffix
}

// AuthenticateUser asks Keystone for a token for the user name in domain
// domainID, requesting no scope: Keystone scopes it to the user's default
// project if there is one, else leaves it unscoped. It uses a fresh client
// that never reauthenticates, so a refused password surfaces as an error for
// which gophercloud.ResponseCodeIs(err, http.StatusUnauthorized) is true.
func (k *KeystoneEnv) AuthenticateUser(ctx context.Context, domainID, name, password string) (tokenID string, err error) {
	return k.authenticate(ctx, tokens.AuthOptions{Username: name, DomainID: domainID, Password: password})
}

// AuthenticateUserInProject is [KeystoneEnv.AuthenticateUser] with a token
// scoped to projectID.
func (k *KeystoneEnv) AuthenticateUserInProject(ctx context.Context, domainID, name, password, projectID string) (tokenID string, err error) {
	return k.authenticate(ctx, tokens.AuthOptions{
		Username: name, DomainID: domainID, Password: password,
		Scope: tokens.Scope{ProjectID: projectID},
	})
}

func (k *KeystoneEnv) authenticate(ctx context.Context, opts tokens.AuthOptions) (string, error) {
	provider, err := k.newProvider()
	if err != nil {
		return "", err
	}
	client, err := openstack.NewIdentityV3(provider, gophercloud.EndpointOpts{})
	if err != nil {
		return "", err
	}
	tok, err := tokens.Create(ctx, client, &opts).ExtractToken()
	if err != nil {
		return "", err
	}
	if tok.ID == "" {
		return "", errors.New("keystone returned no X-Subject-Token")
	}
	return tok.ID, nil
}

// Role returns the ID of the global role name, creating it if this Keystone
// has none yet, so a test does not depend on another test (or a newer
// bootstrap) having made it. The role is left in place: roles are global,
// tests running at the same time may hold it, and the programs under test
// create roles such as manager themselves without removing them.
func (k *KeystoneEnv) Role(t testing.TB, name string) string {
	t.Helper()
	ctx := t.Context()
	find := func() (string, bool) {
		t.Helper()
		pages, err := roles.List(k.Identity, roles.ListOpts{Name: name}).AllPages(ctx)
		if err != nil {
			t.Fatalf("testenv: list role %s: %v", name, err)
		}
		rs, err := roles.ExtractRoles(pages)
		if err != nil {
			t.Fatalf("testenv: list role %s: %v", name, err)
		}
		for _, r := range rs {
			// Keystone's name filter is exact, but a domain-specific role
			// of that name is not the global one.
			if r.DomainID == "" {
				return r.ID, true
			}
		}
		return "", false
	}
	if id, ok := find(); ok {
		return id
	}
	r, err := roles.Create(ctx, k.Identity, roles.CreateOpts{Name: name, Description: "Created by a Kaizen test"}).Extract()
	if gophercloud.ResponseCodeIs(err, http.StatusConflict) {
		// Another test created it in between.
		if id, ok := find(); ok {
			return id
		}
	}
	if err != nil {
		t.Fatalf("testenv: create role %s: %v", name, err)
	}
	return r.ID
}

// DomainTokenRoles authenticates as user name of domain domainID with a
// token scoped to that domain and returns the names of the roles it
// carries. A refusal keeps its status code, as with [KeystoneEnv.AuthenticateUser].
func (k *KeystoneEnv) DomainTokenRoles(ctx context.Context, domainID, name, password string) ([]string, error) {
	provider, err := k.newProvider()
	if err != nil {
		return nil, err
	}
	client, err := openstack.NewIdentityV3(provider, gophercloud.EndpointOpts{})
	if err != nil {
		return nil, err
	}
	res := tokens.Create(ctx, client, &tokens.AuthOptions{
		Username: name, DomainID: domainID, Password: password,
		Scope: tokens.Scope{DomainID: domainID},
	})
	if d, err := res.ExtractDomain(); err != nil {
		return nil, err
	} else if d == nil || d.ID != domainID {
		return nil, errors.New("the token is not scoped to the domain")
	}
	rs, err := res.ExtractRoles()
	if err != nil {
		return nil, err
	}
	var names []string
	for _, r := range rs {
		names = append(names, r.Name)
	}
	return names, nil
}
