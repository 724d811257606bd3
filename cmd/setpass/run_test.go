package main

import (
	"bytes"
	"context"
	"errors"
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

// TestServeAgainstKeystone starts the real service and stops it by
// cancelling its context, as SIGTERM does.
func TestServeAgainstKeystone(t *testing.T) {
	testenv.Keystone(t) // skips without a Keystone
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "settings.toml")
	os.WriteFile(cfgFile, []byte("[store]\nurl = \"sqlite://"+dir+"/s.db\"\n[mail]\nmaildir = \""+dir+"/mail\"\n"), 0o600)
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
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	var logs bytes.Buffer
	go func() {
		done <- serveConfig(ctx, cfg, cli.Env{Global: g, Getenv: getenv, Stdout: &logs, Stderr: &logs}, ln)
	}()

	base := "http://" + ln.Addr().String()
	var resp *http.Response
	for i := 0; i < 100; i++ {
		if resp, err = http.Get(base + "/healthz"); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz: %s", resp.Status)
	}
	if resp, err := http.Get(base + "/metrics"); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("/metrics: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop")
	}
}
