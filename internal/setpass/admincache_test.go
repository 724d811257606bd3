package setpass

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"

	"github.com/kaizen-onboard/kaizen/internal/cloud"
)

// fakeIdentity answers the calls CheckAdmin makes, counting them by path.
type fakeIdentity struct {
	calls sync.Map // path -> *atomic.Int32
}

func (f *fakeIdentity) count(path string) int32 {
	v, ok := f.calls.Load(path)
	if !ok {
		return 0
	}
	return v.(*atomic.Int32).Load()
}

func (f *fakeIdentity) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	v, _ := f.calls.LoadOrStore(r.URL.Path, new(atomic.Int32))
	v.(*atomic.Int32).Add(1)
	w.Header().Set("Content-Type", "application/json")
	expires := time.Now().Add(time.Hour).UTC().Format(time.RFC3339Nano)
	switch r.URL.Path {
	case "/v3/auth/tokens":
		tokens := map[string]string{
			"scoped-admin":   `"user":{"id":"u1","name":"boss"},"project":{"id":"p-admin","name":"admin","domain":{"id":"default","name":"Default"}},"roles":[{"name":"admin"}]`,
			"unscoped-admin": `"user":{"id":"u1","name":"boss"}`,
			"other-project":  `"user":{"id":"u1","name":"boss"},"project":{"id":"p2","name":"p2","domain":{"id":"default","name":"Default"}},"roles":[{"name":"member"}]`,
			"member":         `"user":{"id":"u2","name":"pleb"},"project":{"id":"p-admin","name":"admin","domain":{"id":"default","name":"Default"}},"roles":[{"name":"member"}]`,
			"appcred-admin":  `"user":{"id":"u1","name":"boss"},"methods":["application_credential"],"application_credential":{"id":"ac","restricted":true},"project":{"id":"p2","name":"p2","domain":{"id":"default","name":"Default"}},"roles":[{"name":"member"}]`,
		}
		body, ok := tokens[r.Header.Get("X-Subject-Token")]
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"error":{"code":404,"title":"Not Found","message":"no token"}}`)
			return
		}
		fmt.Fprintf(w, `{"token":{"expires_at":%q,%s}}`, expires, body)
	case "/v3/projects":
		fmt.Fprint(w, `{"projects":[{"id":"p-admin","name":"admin","domain_id":"default"}],"links":{}}`)
	case "/v3/domains":
		fmt.Fprint(w, `{"domains":[{"id":"default","name":"Default"}],"links":{}}`)
	case "/v3/role_assignments":
		q := r.URL.Query()
		role := "member"
		if q.Get("user.id") == "u1" {
			role = "admin"
		}
		if q.Get("scope.project.id") != "p-admin" || !q.Has("effective") {
			http.Error(w, `{"error":{"code":400}}`, http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, `{"role_assignments":[{"role":{"id":"r","name":%q},"user":{"id":%q},"scope":{"project":{"id":"p-admin"}}}],"links":{}}`,
			role, q.Get("user.id"))
	default:
		http.NotFound(w, r)
	}
}

func newFakeIdentityKeystone(t *testing.T) (*fakeIdentity, *KeystoneClient) {
	t.Helper()
	f := &fakeIdentity{}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	provider := &gophercloud.ProviderClient{HTTPClient: *srv.Client()}
	provider.SetToken("setpass-own-token")
	return f, NewKeystone(cloud.NewKeystone(&gophercloud.ServiceClient{ProviderClient: provider, Endpoint: srv.URL + "/v3/"}), "admin", "Default")
}

// TestCheckAdminCachesSuccesses: one admin token validated once for a
// batch; refusals are asked again every time; the admin project is looked
// up once.
func TestCheckAdminCachesSuccesses(t *testing.T) {
	t.Parallel()
	f, k := newFakeIdentityKeystone(t)
	tests := []struct {
		name                  string
		token                 string
		wantErr               error
		wantTokens, wantRoles int32 // cumulative calls
	}{
		{"an admin-project admin token needs no role lookup", "scoped-admin", nil, 1, 0},
		{"and is cached", "scoped-admin", nil, 1, 0},
		{"an unscoped token of an admin: roles looked up", "unscoped-admin", nil, 2, 1},
		{"cached too", "unscoped-admin", nil, 2, 1},
		{"a token scoped elsewhere of an admin", "other-project", nil, 3, 2},
		{"a member of the admin project is refused", "member", ErrForbidden, 4, 3},
		{"and asked again, never cached", "member", ErrForbidden, 5, 4},
		{"an application credential passes only on its own roles", "appcred-admin", ErrForbidden, 6, 4},
		{"an unknown token", "bogus", ErrUnauthenticated, 7, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			actor, err := k.CheckAdmin(context.Background(), tt.token)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("CheckAdmin = %q, %v; want %v", actor, err, tt.wantErr)
			}
			if err == nil && actor != "boss" {
				t.Errorf("actor = %q, want boss", actor)
			}
			if got := f.count("/v3/auth/tokens"); got != tt.wantTokens {
				t.Errorf("tokens validated %d times, want %d", got, tt.wantTokens)
			}
			if got := f.count("/v3/role_assignments"); got != tt.wantRoles {
				t.Errorf("role assignments listed %d times, want %d", got, tt.wantRoles)
			}
		})
	}
	if got := f.count("/v3/projects"); got != 1 {
		t.Errorf("admin project looked up %d times, want 1", got)
	}
}

// TestCheckAdminCacheOff: with a TTL of 0 every check asks Keystone.
func TestCheckAdminCacheOff(t *testing.T) {
	t.Parallel()
	f, k := newFakeIdentityKeystone(t)
	k.SetAdminCacheTTL(0)
	for i := range 3 {
		if _, err := k.CheckAdmin(context.Background(), "unscoped-admin"); err != nil {
			t.Fatal(err)
		}
		if got := f.count("/v3/auth/tokens"); got != int32(i+1) {
			t.Fatalf("check %d: tokens validated %d times, want %d", i+1, got, i+1)
		}
	}
}

func TestAdminCacheExpiry(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	key := [32]byte{1}
	tests := []struct {
		name    string
		expires time.Time
		at      time.Duration
		want    bool
	}{
		{"fresh", time.Time{}, time.Minute, true},
		{"after the cache lifetime", time.Time{}, DefaultAdminCacheTTL, false},
		{"token expires before the cache lifetime", now.Add(30 * time.Second), 31 * time.Second, false},
		{"before the token expires", now.Add(30 * time.Second), 29 * time.Second, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := adminCache{ttl: DefaultAdminCacheTTL}
			c.put(key, "boss", now, tt.expires)
			if _, ok := c.get(key, now.Add(tt.at)); ok != tt.want {
				t.Errorf("cached = %v, want %v", ok, tt.want)
			}
		})
	}
	t.Run("bounded", func(t *testing.T) {
		c := adminCache{ttl: DefaultAdminCacheTTL}
		for i := range adminCacheMax + 10 {
			c.put([32]byte{byte(i), byte(i >> 8)}, "a", now, time.Time{})
		}
		if len(c.entries) > adminCacheMax {
			t.Errorf("%d entries, want at most %d", len(c.entries), adminCacheMax)
		}
	})
}
