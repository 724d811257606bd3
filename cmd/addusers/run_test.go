package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kaizen-onboard/kaizen/internal/cli"
)

func openrc(extra map[string]string) func(string) string {
	env := map[string]string{
		"OS_AUTH_URL": "http://127.0.0.1:5000/v3", "OS_USERNAME": "admin", "OS_PASSWORD": "admin-pw-never-printed",
		"OS_PROJECT_NAME": "admin", "OS_USER_DOMAIN_NAME": "Default", "OS_PROJECT_DOMAIN_NAME": "Default",
	}
	for k, v := range extra {
		env[k] = v
	}
	return func(k string) string { return env[k] }
}

// runMain runs the program as main would and returns its exit status.
func runMain(t *testing.T, getenv func(string) string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(context.Background(), args, getenv, &out, &errb)
	code = cli.ExitCode("addusers", err, &errb)
	return code, out.String(), errb.String()
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "settings.toml")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConfigCheck(t *testing.T) {
	t.Setenv("OS_CLOUD", "")
	bad := writeFile(t, `
[setpass]
token_ttl = "forever"
[mail]
support = "helpdesk at example dot org"
[mail.smtp]
hots = "smtp.example.org"
`)
	good := writeFile(t, `
[setpass]
secret_key = "0123456789abcdef0123456789abcdef-inline"
[mail]
transport = "smtp"
[mail.smtp]
host = "smtp.example.org"
username = "kaizen"
password = "smtp-pw-never-printed"
`)
	keys := writeFile(t, "[mail]\ncloud_name = \"Keys Test\"\n")
	both := writeFile(t, `
[secrets]
keys = ["0123456789abcdef0123456789abcdef-current"]
[setpass]
secret_key = "0123456789abcdef0123456789abcdef-legacy"
`)
	tests := []struct {
		name       string
		args       []string
		env        map[string]string
		wantCode   int
		wantOut    []string
		wantErr    []string
		neverShown []string
	}{
		{
			name:     "three mistakes, all reported with key paths",
			args:     []string{"--config", bad, "config", "check"},
			wantCode: 2,
			wantErr: []string{
				"3 configuration problem(s)",
				`mail.smtp.hots: unknown key`,
				`mail.support: "helpdesk at example dot org" is not an email address`,
				`setpass.token_ttl: malformed duration "forever"`,
			},
		},
		{
			name:       "valid file printed redacted",
			args:       []string{"--config", good, "config", "check"},
			wantCode:   0,
			wantOut:    []string{`password = "[redacted]"`, `secret_key = "[redacted]"`, `host = "smtp.example.org"`, "# mail.smtp.password: set, from inline"},
			wantErr:    []string{"configuration OK"},
			neverShown: []string{"smtp-pw-never-printed", "0123456789abcdef0123456789abcdef-inline", "admin-pw-never-printed"},
		},
		{
			name:       "secret keys from the environment, counted, never shown",
			args:       []string{"--config", keys, "config", "check"},
			env:        map[string]string{"KAIZEN_SECRET_KEYS": "new-key-0123456789abcdef0123456789abcdef,old-key-0123456789abcdef0123456789abcdef"},
			wantCode:   0,
			wantOut:    []string{"# secrets.keys: 2 key(s) set, from env KAIZEN_SECRET_KEYS"},
			wantErr:    []string{"configuration OK"},
			neverShown: []string{"new-key-0123", "old-key-0123", "WARNING"},
		},
		{
			name:     "no secret keys: valid, with a warning naming what needs them",
			args:     []string{"--config", keys, "config", "check"},
			wantCode: 0,
			wantOut:  []string{"# secrets.keys: NOT SET"},
			wantErr:  []string{"WARNING: no secret keys are set", "addusers import", "setpass and reminders", "KAIZEN_SECRET_KEYS", "configuration OK"},
		},
		{
			name:     "[secrets] and the legacy key together",
			args:     []string{"--config", both, "config", "check"},
			wantCode: 2,
			wantErr:  []string{"secrets.keys: set, and so is the legacy setpass.secret_key"},
		},
		{
			name:     "KAIZEN_CONFIG names the file",
			args:     []string{"config", "check"},
			env:      map[string]string{"KAIZEN_CONFIG": bad},
			wantCode: 2,
			wantErr:  []string{bad, "setpass.token_ttl"},
		},
		{
			name:     "missing file",
			args:     []string{"--config", "/nonexistent/settings.toml", "config", "check"},
			wantCode: 2,
			wantErr:  []string{"cannot read settings file"},
		},
		{name: "no command runs import", args: nil, wantCode: 2, wantErr: []string{"no sign-up sheet", "--sheet requests.csv"}},
		{name: "import help", args: []string{"import", "--help"}, wantCode: 0, wantOut: []string{"Usage: addusers", "--sheet PATH", "--output FORMAT"}},
		{name: "import bad output", args: []string{"import", "--output", "xml"}, wantCode: 2, wantErr: []string{"--output must be table or json"}},
		{name: "import stray argument", args: []string{"plan", "extra"}, wantCode: 2, wantErr: []string{`unexpected argument "extra"`}},
		{name: "import missing csv", args: []string{"import", "--sheet", "/nonexistent.csv"}, wantCode: 2, wantErr: []string{"--sheet", "no such file"}},
		{name: "unknown command", args: []string{"frobnicate"}, wantCode: 2, wantErr: []string{`unknown command "frobnicate"`}},
		{name: "bad flag", args: []string{"--colour"}, wantCode: 2, wantErr: []string{"flag provided but not defined"}},
		{name: "config without check", args: []string{"config"}, wantCode: 2, wantErr: []string{"usage: addusers config check"}},
		{name: "help", args: []string{"--help"}, wantCode: 0, wantOut: []string{"Usage:", "config check", "--config PATH"}},
		{name: "version", args: []string{"--version"}, wantCode: 0, wantOut: []string{"addusers dev"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runMain(t, openrc(tt.env), tt.args...)
			if code != tt.wantCode {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.wantCode, out, errOut)
			}
			for _, w := range tt.wantOut {
				if !strings.Contains(out, w) {
					t.Errorf("stdout lacks %q:\n%s", w, out)
				}
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut)
				}
			}
			for _, s := range tt.neverShown {
				if strings.Contains(out+errOut, s) {
					t.Errorf("output shows secret %q", s)
				}
			}
		})
	}
}
