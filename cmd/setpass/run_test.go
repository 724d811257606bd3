package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kaizen-onboard/kaizen/internal/cli"
	"github.com/kaizen-onboard/kaizen/internal/config"
	"github.com/kaizen-onboard/kaizen/internal/testenv"
)

func TestHelp(t *testing.T) {
	var out bytes.Buffer
	err := run(t.Context(), []string{"--help"}, func(string) string { return "" }, &out, &out)
	if code := cli.ExitCode("setpass", err, &out); code != 0 {
		t.Fatalf("exit %d: %v", code, err)
	}
	if !strings.Contains(out.String(), "serve") {
		t.Errorf("help lacks serve:\n%s", out.String())
	}
}

func TestServeRequiresSecretKey(t *testing.T) {
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "settings.toml")
	os.WriteFile(cfgFile, []byte("[store]\nurl = \"sqlite://"+dir+"/s.db\"\n"), 0o600)
	env := map[string]string{"OS_AUTH_URL": "http://127.0.0.1:1/v3", "OS_USERNAME": "a", "OS_PASSWORD": "b",
		"OS_PROJECT_NAME": "admin", "OS_USER_DOMAIN_NAME": "Default", "OS_PROJECT_DOMAIN_NAME": "Default"}
	var out bytes.Buffer
	err := run(t.Context(), []string{"--config", cfgFile, "serve"}, func(k string) string { return env[k] }, &out, &out)
	if !errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), "secrets.keys") || !strings.Contains(err.Error(), "KAIZEN_SECRET_KEYS") {
		t.Fatalf("got %v", err)
	}
	if code := cli.ExitCode("setpass", err, &out); code != 2 {
		t.Errorf("exit %d, want 2", code)
	}
}

// TestServeAgainstKeystone starts the real service, on one listener and
// split with setpass.admin_listen, and stops it by cancelling its context,
// as SIGTERM does.
func TestServeAgainstKeystone(t *testing.T) {
	ks := testenv.Keystone(t) // skips without a Keystone
	tests := []struct {
		name  string
		split bool
	}{
		{"one listener", false},
		{"admin listener apart", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pub, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			lns := listeners{public: pub}
			doc := "[store]\nurl = \"sqlite://" + t.TempDir() + "/s.db\"\n[mail]\nmaildir = \"" + t.TempDir() + "/mail\"\n"
			if tt.split {
				if lns.admin, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
					t.Fatal(err)
				}
				// The address is only validated: the test's listener is used.
				doc = "[setpass]\nadmin_listen = \"127.0.0.1:18081\"\nadmin_cache_ttl = \"0\"\n" + doc
			}
			ctx, cancel := context.WithCancel(t.Context())
			done, logs := startServe(t, ctx, doc, lns)
			public := "http://" + pub.Addr().String()
			admin := public
			if tt.split {
				admin = "http://" + lns.admin.Addr().String()
			}

			wantOnPublic := http.StatusOK
			if tt.split {
				wantOnPublic = http.StatusNotFound
			}
			tok := ks.Identity.Token()
			type check struct {
				name, method, url string
				want              int
				detail            bool // /healthz names its checks
			}
			checks := []check{
				{"healthz", "GET", public + "/healthz", 200, !tt.split},
				{"admin healthz", "GET", admin + "/healthz", 200, true},
				{"metrics", "GET", admin + "/metrics", 200, false},
				{"admin API answers", "PUT", admin + "/token/0000000000000000000000000000dead", 404, false},
				{"metrics on the public listener", "GET", public + "/metrics", wantOnPublic, false},
				{"form on the public listener", "GET", public + "/?token=x", http.StatusGone, false},
			}
			if tt.split {
				checks = append(checks,
					check{"token API on the public listener", "PUT", public + "/token/0000000000000000000000000000dead", 404, false},
					check{"reset API on the public listener", "PUT", public + "/reset/0000000000000000000000000000dead", 404, false},
					check{"no form on the admin listener", "GET", admin + "/?token=x", 404, false},
				)
			}
			for _, c := range checks {
				t.Run(c.name, func(t *testing.T) {
					req, _ := http.NewRequest(c.method, c.url, strings.NewReader(`{"password": "x", "pin": "1234"}`))
					req.Header.Set("X-Auth-Token", tok)
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						t.Fatal(err)
					}
					body, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != c.want {
						t.Fatalf("%s %s: %s %s", c.method, c.url, resp.Status, body)
					}
					if strings.HasSuffix(c.url, "/healthz") && strings.Contains(string(body), "keystone") != c.detail {
						t.Errorf("/healthz detail = %v, want %v: %s", !c.detail, c.detail, body)
					}
					if c.want == 404 && !strings.HasPrefix(c.url, admin) && string(body) != "404 page not found\n" {
						t.Errorf("the public listener's 404 differs from an unknown path's: %q", body)
					}
					if c.method == "PUT" && c.want == 404 && strings.HasPrefix(c.url, admin) &&
						!strings.Contains(string(body), `"code":404`) {
						t.Errorf("the admin API's 404 is not its JSON error: %s", body)
					}
				})
			}
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("serve: %v\n%s", err, logs)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("serve did not stop")
			}
			for _, base := range []string{public, admin} {
				if resp, err := http.Get(base + "/healthz"); err == nil {
					resp.Body.Close()
					t.Errorf("%s still answers after shutdown", base)
				}
			}
		})
	}
}

// startServe runs serveConfig on the settings doc and lns until ctx ends.
func startServe(t *testing.T, ctx context.Context, doc string, lns listeners) (chan error, *testenv.SyncBuffer) {
	t.Helper()
	cfgFile := filepath.Join(t.TempDir(), "settings.toml")
	if err := os.WriteFile(cfgFile, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	getenv := func(k string) string {
		if k == "KAIZEN_SETPASS_SECRET_KEY" {
			return strings.Repeat("k", 40)
		}
		return os.Getenv(k)
	}
	g := cli.NewGlobal("setpass", "", &bytes.Buffer{})
	if _, err := g.Parse([]string{"--config", cfgFile}); err != nil {
		t.Fatal(err)
	}
	cfg, err := g.LoadConfig(getenv)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	logs := &testenv.SyncBuffer{}
	go func() {
		done <- serveConfig(ctx, cfg, cli.Env{Global: g, Getenv: getenv, Stdout: logs, Stderr: logs}, lns)
	}()
	return done, logs
}
