package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kaizen-onboard/kaizen/internal/cli"
	"github.com/kaizen-onboard/kaizen/internal/store"
	"github.com/kaizen-onboard/kaizen/internal/testenv"
)

// osEnv is a complete set of admin credentials: settings are only valid
// with some, though these commands never connect.
var osEnv = map[string]string{"OS_AUTH_URL": "http://127.0.0.1:1/v3", "OS_USERNAME": "a", "OS_PASSWORD": "b",
	"OS_PROJECT_NAME": "admin", "OS_USER_DOMAIN_NAME": "Default", "OS_PROJECT_DOMAIN_NAME": "Default"}

func getenv(k string) string { return osEnv[k] }

// settings writes a settings file with a SQLite store and a Maildir in dir,
// plus extra TOML.
func settings(t *testing.T, dir, extra string) string {
	t.Helper()
	f := filepath.Join(dir, "settings.toml")
	body := "[secrets]\nkeys = [\"reminders-test-secret-key-0123456789abcdef\"]\n\n" +
		"[store]\nurl = \"sqlite://" + dir + "/kaizen.db\"\n\n[mail]\ntransport = \"maildir\"\nmaildir = \"" +
		dir + "/mail\"\n\n" + extra
	if err := os.WriteFile(f, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func runCmd(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(t.Context(), args, getenv, &out, &errb)
	code = cli.ExitCode("reminders", err, &errb)
	return out.String(), errb.String(), code
}

func TestHelp(t *testing.T) {
	out, _, code := runCmd(t, "--help")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"serve", "list", "run", "--dry-run"} {
		if !strings.Contains(out, want) {
			t.Errorf("help lacks %q:\n%s", want, out)
		}
	}
}

func TestList(t *testing.T) {
	dir := t.TempDir()
	cfg := settings(t, dir, `[reminders]
timezone = "Europe/Paris"

[[reminders.job]]
name = "digest"
kind = "approver-digest"
schedule = "0 9 * * 1-5"
to = ["approvers@example.org"]

[[reminders.job]]
name = "outbox"
kind = "outbox"
schedule = "@every 10m"

[[reminders.job]]
name = "ny"
kind = "helpdesk-notify"
schedule = "CRON_TZ=America/New_York 30 8 * * *"

[[reminders.job]]
name = "old"
kind = "quota-expiry"
schedule = "@daily"
disabled = true
`)
	saved := now
	now = func() time.Time { return time.Date(2026, 3, 6, 11, 0, 0, 0, time.UTC) } // Friday, 12:00 in Paris
	t.Cleanup(func() { now = saved })

	out, stderr, code := runCmd(t, "--config", cfg, "list")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	fields := func(s string) string { return strings.Join(strings.Fields(s), " ") }
	want := []string{
		"JOB KIND SCHEDULE NEXT RUNS (Europe/Paris)",
		"digest approver-digest 0 9 * * 1-5 2026-03-09 09:00:00 CET, 2026-03-10 09:00:00 CET, 2026-03-11 09:00:00 CET",
		"outbox outbox @every 10m 2026-03-06 12:10:00 CET, 2026-03-06 12:20:00 CET, 2026-03-06 12:30:00 CET",
		// 08:30 in New York is 14:30 in Paris (both on winter time then).
		"ny helpdesk-notify CRON_TZ=America/New_York 30 8 * * * 2026-03-06 14:30:00 CET, 2026-03-07 14:30:00 CET, 2026-03-08 13:30:00 CET",
		"old quota-expiry @daily disabled",
	}
	if len(lines) != len(want) {
		t.Fatalf("list:\n%s", out)
	}
	for i := range want {
		if got := fields(lines[i]); got != want[i] {
			t.Errorf("line %d:\n got %s\nwant %s", i, got, want[i])
		}
	}
}

func TestRunOutboxJobMaildir(t *testing.T) {
	dir := t.TempDir()
	cfg := settings(t, dir, "[[reminders.job]]\nname = \"mail\"\nkind = \"outbox\"\nschedule = \"@every 1m\"\n")

	// Queue one message as addusers --no-deliver would.
	st, err := store.Open(t.Context(), "sqlite://"+dir+"/kaizen.db", nil)
	if err != nil {
		t.Fatal(err)
	}
	queued := time.Now().Add(-time.Minute)
	body := "From: kaizen@localhost\r\nTo: ada@example.edu\r\nSubject: Welcome\r\n\r\nHello Ada\r\n"
	if _, _, err := st.Enqueue(t.Context(), store.Message{Key: "welcome:u1", Kind: "welcome", From: "kaizen@localhost",
		To: []string{"ada@example.edu"}, Body: []byte(body), CreatedAt: queued, NextAttemptAt: queued}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	delivered := func() int {
		ents, _ := os.ReadDir(filepath.Join(dir, "mail", "new"))
		return len(ents)
	}

	// A dry run says what it would deliver and delivers nothing.
	out, stderr, code := runCmd(t, "--config", cfg, "run", "mail", "--dry-run")
	if code != 0 {
		t.Fatalf("dry run: exit %d: %s", code, stderr)
	}
	if !strings.Contains(out, "would deliver welcome mail welcome:u1 to ada@example.edu") || !strings.Contains(out, "mail: would send 1, skipped 0") {
		t.Errorf("dry run output:\n%s", out)
	}
	if n := delivered(); n != 0 {
		t.Fatalf("a dry run delivered %d message(s)", n)
	}

	out, stderr, code = runCmd(t, "--config", cfg, "run", "mail")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(out, "delivered 1 message(s)") || !strings.Contains(out, "mail: sent 1, skipped 0") {
		t.Errorf("output:\n%s", out)
	}
	if n := delivered(); n != 1 {
		t.Fatalf("%d message(s) in the Maildir, want 1", n)
	}
	// Nothing left: a second run sends nothing.
	out, _, code = runCmd(t, "--config", cfg, "run", "mail")
	if code != 0 || !strings.Contains(out, "mail: sent 0") || delivered() != 1 {
		t.Errorf("second run: exit %d\n%s", code, out)
	}
}

func TestRunUnknownJob(t *testing.T) {
	dir := t.TempDir()
	cfg := settings(t, dir, "[[reminders.job]]\nname = \"mail\"\nkind = \"outbox\"\nschedule = \"@every 1m\"\n")
	_, stderr, code := runCmd(t, "--config", cfg, "run", "nope")
	if code != 2 || !strings.Contains(stderr, `unknown job "nope" (configured: mail)`) {
		t.Errorf("exit %d, stderr:\n%s", code, stderr)
	}
	if _, _, code := runCmd(t, "--config", cfg, "run"); code != 2 {
		t.Errorf("run without a job: exit %d, want 2", code)
	}
	if _, _, code := runCmd(t, "--config", cfg, "run", "mail", "--bogus"); code != 2 {
		t.Errorf("unknown flag: exit %d, want 2", code)
	}
}

func TestInvalidConfig(t *testing.T) {
	dir := t.TempDir()
	cfg := settings(t, dir, "[[reminders.job]]\nname = \"mail\"\nkind = \"outbox\"\nschedule = \"every minute\"\n")
	for _, args := range [][]string{{"list"}, {"run", "mail"}, {"serve"}} {
		_, stderr, code := runCmd(t, append([]string{"--config", cfg}, args...)...)
		if code != 2 || !strings.Contains(stderr, "reminders.job[0] (mail).schedule") {
			t.Errorf("%v: exit %d, stderr:\n%s", args, code, stderr)
		}
	}
	// A job its kind cannot build (approver-digest without "to" or a
	// sheet) is a configuration error too.
	cfg = settings(t, dir, "[[reminders.job]]\nname = \"d\"\nkind = \"approver-digest\"\nschedule = \"@daily\"\n")
	_, stderr, code := runCmd(t, "--config", cfg, "run", "d")
	if code != 2 {
		t.Errorf("approver-digest without a sheet: exit %d, stderr:\n%s", code, stderr)
	}
}

// TestServe runs the daemon with an outbox job every second, reads
// /healthz and /metrics, and stops it as SIGTERM does.
func TestServe(t *testing.T) {
	dir := t.TempDir()
	cfgFile := settings(t, dir, "[[reminders.job]]\nname = \"mail\"\nkind = \"outbox\"\nschedule = \"* * * * * *\"\n")
	g := cli.NewGlobal("reminders", "", io.Discard)
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
	defer cancel()
	done := make(chan error, 1)
	var logs testenv.SyncBuffer
	go func() {
		done <- serveConfig(ctx, cfg, cli.Env{Global: g, Getenv: getenv, Stdout: &logs, Stderr: &logs}, ln, false)
	}()
	base := "http://" + ln.Addr().String()

	// Wait for the first run to have finished.
	var health struct {
		Status string            `json:"status"`
		Checks map[string]string `json:"checks"`
		Jobs   []struct {
			Name        string     `json:"name"`
			LastSuccess *time.Time `json:"last_success"`
			Next        *time.Time `json:"next_run"`
		} `json:"jobs"`
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			err = json.NewDecoder(resp.Body).Decode(&health)
			resp.Body.Close()
		}
		if err == nil && len(health.Jobs) == 1 && health.Jobs[0].LastSuccess != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no successful run in /healthz: %+v, %v\nlogs:\n%s", health, err, logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if health.Status != "ok" || health.Checks["store"] != "ok" || health.Jobs[0].Name != "mail" || health.Jobs[0].Next == nil {
		t.Errorf("/healthz = %+v", health)
	}
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`kaizen_reminders_runs_total{job="mail",result="ok"}`,
		`kaizen_reminders_runs_total{job="mail",result="error"} 0`,
		`kaizen_reminders_last_success_timestamp_seconds{job="mail"}`,
		`kaizen_reminders_messages_total{job="mail"} 0`,
		`kaizen_reminders_run_duration_seconds_count{job="mail"}`,
	} {
		if !bytes.Contains(metrics, []byte(want)) {
			t.Errorf("/metrics lacks %s", want)
		}
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
	if !strings.Contains(logs.String(), "stopped") {
		t.Errorf("logs:\n%s", logs.String())
	}
}
