package config

import (
	"strings"
	"testing"
	"time"
)

func TestSetpassAdminProblems(t *testing.T) {
	osEnv(t)
	tests := []struct {
		name, doc, key, msg string
	}{
		{"admin_listen form", `admin_listen = "8081"`, "setpass.admin_listen", "host:port"},
		{"admin_listen is listen", `listen = "127.0.0.1:8080"` + "\n" + `admin_listen = "127.0.0.1:8080"`, "setpass.admin_listen", "its own"},
		{"admin_listen on a wildcard of listen's port", `listen = "0.0.0.0:8080"` + "\n" + `admin_listen = "127.0.0.1:8080"`, "setpass.admin_listen", "its own"},
		{"localhost is loopback", `listen = "localhost:8080"` + "\n" + `admin_listen = "127.0.0.1:8080"`, "setpass.admin_listen", "its own"},
		{"admin_url", `admin_url = "127.0.0.1:8081"`, "setpass.admin_url", "absolute http(s) URL"},
		{"admin_cache_ttl malformed", `admin_cache_ttl = "soon"`, "setpass.admin_cache_ttl", "malformed"},
		{"admin_cache_ttl too long", `admin_cache_ttl = "2h"`, "setpass.admin_cache_ttl", "between 0 (no cache) and 1h"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parse(t, "[setpass]\n"+tt.doc, nil)
			for _, p := range problems(t, err) {
				if p.Key == tt.key && strings.Contains(p.Message, tt.msg) {
					return
				}
			}
			t.Errorf("want problem %s: ...%s..., got:\n%v", tt.key, tt.msg, err)
		})
	}
}

func TestSetpassAdminSettings(t *testing.T) {
	osEnv(t)
	tests := []struct {
		name, doc string
		apiURL    string
		cacheTTL  time.Duration
	}{
		{"defaults: one listener", "", "http://127.0.0.1:8080/", 2 * time.Minute},
		{"public URL when there is no admin listener", `url = "https://setpass.example.org/"`, "https://setpass.example.org/", 2 * time.Minute},
		{"admin listener", `url = "https://setpass.example.org/"` + "\n" + `admin_listen = "127.0.0.1:8081"`, "http://127.0.0.1:8081/", 2 * time.Minute},
		{"wildcard admin listener is called on loopback", `admin_listen = "0.0.0.0:8081"`, "http://127.0.0.1:8081/", 2 * time.Minute},
		{"IPv6 wildcard", `admin_listen = "[::]:8081"`, "http://[::1]:8081/", 2 * time.Minute},
		{"admin_url wins", `admin_listen = "10.0.0.5:8081"` + "\n" + `admin_url = "https://setpass-admin.internal/"`, "https://setpass-admin.internal/", 2 * time.Minute},
		{"cache off", `admin_cache_ttl = "0"`, "http://127.0.0.1:8080/", 0},
		{"other ports may share a host", `listen = "0.0.0.0:8080"` + "\n" + `admin_listen = "127.0.0.1:8081"` + "\n" + `admin_cache_ttl = "30s"`, "http://127.0.0.1:8081/", 30 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parse(t, "[setpass]\n"+tt.doc, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.Setpass.APIURL(); got != tt.apiURL {
				t.Errorf("APIURL = %q, want %q", got, tt.apiURL)
			}
			if got := cfg.Setpass.AdminCacheTTL.D; got != tt.cacheTTL {
				t.Errorf("admin_cache_ttl = %v, want %v", got, tt.cacheTTL)
			}
		})
	}
}
