package setpass

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
)

// TestCheckAdminCachesSuccesses: one admin token validated once for a
// batch; refusals are asked again every time.
func TestCheckAdminCachesSuccesses(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		role := "admin"
		if r.Header.Get("X-Subject-Token") == "member-token" {
			role = "member"
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"token":{"expires_at":%q,"user":{"id":"u1","name":"boss"},
			"project":{"name":"admin","domain":{"id":"default","name":"Default"}},"roles":[{"name":%q}]}}`,
			time.Now().Add(time.Hour).UTC().Format(time.RFC3339Nano), role)
	}))
	t.Cleanup(srv.Close)
	provider := &gophercloud.ProviderClient{HTTPClient: *srv.Client()}
	provider.SetToken("setpass-own-token")
	k := NewKeystone(&gophercloud.ServiceClient{ProviderClient: provider, Endpoint: srv.URL + "/v3/"}, "admin", "Default")

	tests := []struct {
		name      string
		token     string
		wantErr   error
		wantCalls int32 // cumulative
	}{
		{"first admin check asks Keystone", "admin-token", nil, 1},
		{"second is cached", "admin-token", nil, 1},
		{"a member is refused", "member-token", ErrForbidden, 2},
		{"and asked again, never cached", "member-token", ErrForbidden, 3},
		{"another admin token is its own entry", "admin-token-2", nil, 4},
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
			if got := calls.Load(); got != tt.wantCalls {
				t.Errorf("Keystone asked %d times, want %d", got, tt.wantCalls)
			}
		})
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
		{"after the cache lifetime", time.Time{}, adminCacheTTL, false},
		{"token expires before the cache lifetime", now.Add(30 * time.Second), 31 * time.Second, false},
		{"before the token expires", now.Add(30 * time.Second), 29 * time.Second, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c adminCache
			c.put(key, "boss", now, tt.expires)
			if _, ok := c.get(key, now.Add(tt.at)); ok != tt.want {
				t.Errorf("cached = %v, want %v", ok, tt.want)
			}
		})
	}
	t.Run("bounded", func(t *testing.T) {
		var c adminCache
		for i := range adminCacheMax + 10 {
			c.put([32]byte{byte(i), byte(i >> 8)}, "a", now, time.Time{})
		}
		if len(c.entries) > adminCacheMax {
			t.Errorf("%d entries, want at most %d", len(c.entries), adminCacheMax)
		}
	})
}
