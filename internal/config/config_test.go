package config

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
)

// openrc is a complete OS_* password environment, as an openrc file sets it.
var openrc = map[string]string{
	"OS_AUTH_URL": "http://127.0.0.1:5000/v3", "OS_USERNAME": "admin", "OS_PASSWORD": "os-secret-pw",
	"OS_PROJECT_NAME": "admin", "OS_USER_DOMAIN_NAME": "Default", "OS_PROJECT_DOMAIN_NAME": "Default",
}

// osEnv clears the process variables that gophercloud's clouds.yaml parsing
// reads by itself, so a developer's shell (or make test's exported dev
// Keystone) cannot steer these tests.
func osEnv(t *testing.T) {
	t.Helper()
	for _, k := range []string{"OS_CLOUD", "OS_CLIENT_CONFIG_FILE", "OS_REGION_NAME", "OS_INTERFACE"} {
		t.Setenv(k, "")
	}
}

func envOf(extra map[string]string) func(string) string {
	return func(k string) string {
		if v, ok := extra[k]; ok {
			return v
		}
		return openrc[k]
	}
}

func noEnv(k string) string { return envOf(nil)(k) }

func parse(t *testing.T, doc string, env map[string]string) (*Config, error) {
	t.Helper()
	return Parse("settings.toml", []byte(doc), Options{Getenv: envOf(env)})
}

func problems(t *testing.T, err error) []Problem {
	t.Helper()
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("error %v is not ErrInvalid", err)
	}
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("error %T is not *config.Error", err)
	}
	return ce.Problems
}

func TestDefaultsAreValid(t *testing.T) {
	osEnv(t)
	cfg, err := Parse("", nil, Options{Getenv: noEnv})
	if err != nil {
		t.Fatalf("defaults: %v", err)
	}
	if cfg.Setpass.TokenTTL.D != 72*time.Hour || cfg.Setpass.MaxAttempts != 5 || cfg.Mail.Transport != "maildir" {
		t.Errorf("unexpected defaults: %+v", cfg.Setpass)
	}
	ao, _, _ := cfg.OpenStack.Auth()
	if ao.IdentityEndpoint != "http://127.0.0.1:5000/v3" || ao.Username != "admin" || ao.DomainName != "Default" || !ao.AllowReauth {
		t.Errorf("auth options from OS_*: %+v", ao)
	}
	if ao.Scope == nil || ao.Scope.ProjectName != "admin" || ao.Scope.DomainName != "Default" {
		t.Errorf("project scope from OS_PROJECT_*: %+v", ao.Scope)
	}
}

func TestEveryProblemReportedAtOnce(t *testing.T) {
	osEnv(t)
	doc := `
[setpass]
token_ttl = "3 days"
max_attempts = "five"
[mail]
from = "not-an-address"
transport = "pigeon"
[mail.smtp]
prot = 25
[reminders]
[[reminders.job]]
name = "digest"
kind = "approver-digest"
schedule = "61 * * * *"
[[reminders.job]]
name = "digest"
kind = "teleport"
schedule = "@daily"
[colours]
favourite = "blue"
`
	_, err := parse(t, doc, nil)
	got := problems(t, err)
	want := []string{
		"colours: unknown key",
		"mail.from: \"not-an-address\" is not an email address",
		"mail.smtp.prot: unknown key",
		"mail.transport: \"pigeon\" is not one of maildir, smtp",
		"reminders.job[0] (digest).schedule: invalid cron spec",
		"reminders.job[1] (digest).kind: unknown kind \"teleport\"",
		"reminders.job[1] (digest).name: duplicate job name (also reminders.job[0])",
		"setpass.max_attempts: must be a whole number",
		"setpass.token_ttl: malformed duration \"3 days\"",
	}
	if len(got) != len(want) {
		t.Errorf("got %d problems, want %d:\n%v", len(got), len(want), err)
	}
	for _, w := range want {
		found := false
		for _, p := range got {
			if strings.HasPrefix(p.String(), w) {
				found = true
			}
		}
		if !found {
			t.Errorf("missing problem %q in:\n%v", w, err)
		}
	}
}

func TestProblems(t *testing.T) {
	osEnv(t)
	tests := []struct {
		name string
		doc  string
		env  map[string]string
		key  string
		msg  string
	}{
		{"syntax error names the line", "[mail\nfrom = 1", nil, "", "line 2"},
		{"table expected", "mail = 3", nil, "mail", "must be a table"},
		{"url", "[setpass]\nurl = \"ftp://x\"", nil, "setpass.url", "not an absolute http(s) URL"},
		{"listen", "[setpass]\nlisten = \"8080\"", nil, "setpass.listen", "host:port"},
		{"short secret key", "[setpass]\nsecret_key = \"short\"", nil, "setpass.secret_key", "at least 32"},
		{"secret inline and file", "[mail.smtp]\nusername = \"u\"\npassword = \"p\"\npassword_file = \"/x\"", nil, "mail.smtp.password", "keep one"},
		{"secret file missing", "[mail.smtp]\nusername = \"u\"\npassword_file = \"/nonexistent/pw\"", nil, "mail.smtp.password_file", "cannot read"},
		{"plaintext smtp needs opt-in", "[mail.smtp]\ntls = \"none\"", nil, "mail.smtp.tls", "allow_insecure"},
		{"smtp host", "[mail]\ntransport = \"smtp\"", nil, "mail.smtp.host", "required"},
		{"store scheme", "[store]\nurl = \"mysql://x\"", nil, "store.url", "unsupported scheme"},
		{"rejected value also approved", "[sheet]\nrejected_values = [\"Yes\"]", nil, "sheet.rejected_values[0]", "also in sheet.approved_values"},
		{"negative retry budget", "[openstack]\nretry_max_wait = \"-1s\"", nil, "openstack.retry_max_wait", "is negative"},
		{"store url without scheme", "[store]\nurl = \"state.db\"", nil, "store.url", "must start with"},
		{"unknown quota", "[quotas.presets.small]\ncores = 4\nwarp_drives = 1", nil, "quotas.presets.small.warp_drives", "unknown quota"},
		{"negative quota", "[quotas.presets.small]\ncores = -2", nil, "quotas.presets.small.cores", "-1 (unlimited) or more"},
		{"quota type", "[quotas.presets.small]\ncores = \"many\"", nil, "quotas.presets.small.cores", "whole number"},
		{"default preset", "[quotas]\ndefault_preset = \"huge\"", nil, "quotas.default_preset", "no preset named"},
		{"presets replace defaults", "[quotas.presets.tiny]\ncores = 1", nil, "quotas.default_preset", "no preset named \"small\""},
		{"quota service", "[quotas.services]\ncompute = \"magic\"", nil, "quotas.services.compute", "not one of"},
		{"time zone", "[reminders]\ntimezone = \"Mars/Olympus\"", nil, "reminders.timezone", "unknown time zone"},
		{"job schedule missing", "[[reminders.job]]\nname = \"x\"\nkind = \"outbox\"", nil, "reminders.job[0] (x).schedule", "required"},
		{"job duration", "[[reminders.job]]\nname = \"x\"\nkind = \"link-reminder\"\nschedule = \"@hourly\"\nafter = \"soon\"", nil, "reminders.job[0] (x).after", "malformed duration"},
		{"job recipient", "[[reminders.job]]\nname = \"x\"\nkind = \"approver-digest\"\nschedule = \"@daily\"\nto = [\"boss\"]", nil, "reminders.job[0] (x).to[0]", "not an email address"},
		{"job array type", "[reminders]\njob = 3", nil, "reminders.job", "array of tables"},
		{"log level", "[log]\nlevel = \"loud\"", nil, "log.level", "not one of"},
		{"sheet credentials", "[sheet]\nspreadsheet_id = \"abc\"", nil, "sheet.credentials_file", "required"},
		{"clouds_file without cloud", "[openstack]\nclouds_file = \"/etc/openstack/clouds.yaml\"", nil, "openstack.clouds_file", "openstack.cloud"},
		{"project name pattern", "[sheet]\nproject_name_pattern = \"^[a-z(\"", nil, "sheet.project_name_pattern", "invalid regular expression"},
		{"unknown quota column target", "[sheet.quota_columns]\n\"RAM (GB)\" = \"ram_tb\"", nil, `sheet.quota_columns."RAM (GB)"`, `unknown quota "ram_tb"`},
		{"quota column header clashes with a column", "[sheet.quota_columns]\n\" pin \" = \"cores\"", nil, `sheet.quota_columns." pin "`, "also used by sheet.columns.pin"},
		{"empty column header", "[sheet.columns]\nemail = \" \"", nil, "sheet.columns.email", "required"},
		{"two columns share a header", "[sheet.columns]\nemail = \"first name\"", nil, "sheet.columns.first_name", "also used by sheet.columns.email"},
		{"column type", "[sheet.columns]\nemail = 3", nil, "sheet.columns.email", "must be a string"},
		{"unknown column key", "[sheet.columns]\ne_mail = \"Mail\"", nil, "sheet.columns.e_mail", "unknown key"},
		{"unknown cloud", "[openstack]\ncloud = \"nowhere\"\nclouds_file = \"/nonexistent/clouds.yaml\"", nil, "openstack.cloud", "cannot use cloud"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parse(t, tt.doc, tt.env)
			ps := problems(t, err)
			for _, p := range ps {
				if p.Key == tt.key && strings.Contains(p.Message, tt.msg) {
					return
				}
			}
			t.Errorf("want problem %s: ...%s..., got:\n%v", tt.key, tt.msg, err)
		})
	}
}

func TestSheetColumns(t *testing.T) {
	osEnv(t)
	t.Run("defaults", func(t *testing.T) {
		cfg, err := parse(t, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		s := cfg.Sheet
		if s.Columns != DefaultSheetColumns() || s.Columns.FirstName != "First Name" || s.Columns.ProcessedAt != "Processed At" {
			t.Errorf("columns: %+v", s.Columns)
		}
		if s.ProjectNamePattern != DefaultProjectNamePattern || len(s.QuotaColumns) != 0 {
			t.Errorf("pattern %q, quota columns %v", s.ProjectNamePattern, s.QuotaColumns)
		}
	})
	t.Run("new keys load", func(t *testing.T) {
		doc := `
[sheet]
project_name_pattern = "^[a-z]+$"
[sheet.columns]
email = "E-mail Address"
pin = "Your PIN"
[sheet.quota_columns]
"Instances" = "instances"
"RAM (GB)" = "ram_gb"
`
		cfg, err := parse(t, doc, nil)
		if err != nil {
			t.Fatal(err)
		}
		s := cfg.Sheet
		if s.ProjectNamePattern != "^[a-z]+$" || s.Columns.Email != "E-mail Address" || s.Columns.PIN != "Your PIN" {
			t.Errorf("sheet: %+v", s)
		}
		if s.Columns.FirstName != "First Name" {
			t.Errorf("unset column lost its default: %q", s.Columns.FirstName)
		}
		if want := map[string]string{"Instances": "instances", "RAM (GB)": "ram_gb"}; !reflect.DeepEqual(s.QuotaColumns, want) {
			t.Errorf("quota columns %v, want %v", s.QuotaColumns, want)
		}
	})
	t.Run("every problem with its key path", func(t *testing.T) {
		doc := "[sheet]\nproject_name_pattern = \"(\"\n[sheet.quota_columns]\nCores = \"cpus\"\n"
		_, err := parse(t, doc, nil)
		ps := problems(t, err)
		keys := map[string]bool{}
		for _, p := range ps {
			keys[p.Key] = true
		}
		if len(ps) != 2 || !keys["sheet.project_name_pattern"] || !keys["sheet.quota_columns.Cores"] {
			t.Errorf("got %v", err)
		}
	})
}

func TestOpenStackEnvironment(t *testing.T) {
	osEnv(t)
	tests := []struct {
		name    string
		env     map[string]string
		problem string // "" for none
		check   func(t *testing.T, ao gophercloud.AuthOptions)
	}{
		{"no auth URL", map[string]string{"OS_AUTH_URL": ""}, "missing OS_AUTH_URL", nil},
		{"no password", map[string]string{"OS_PASSWORD": ""}, "missing OS_PASSWORD", nil},
		{"no user domain", map[string]string{"OS_USER_DOMAIN_NAME": ""}, "missing OS_USER_DOMAIN_NAME", nil},
		{"no project domain", map[string]string{"OS_PROJECT_DOMAIN_NAME": ""}, "missing OS_PROJECT_DOMAIN_NAME", nil},
		{"legacy OS_DOMAIN_NAME covers both", map[string]string{"OS_USER_DOMAIN_NAME": "", "OS_PROJECT_DOMAIN_NAME": "", "OS_DOMAIN_NAME": "Default"}, "",
			func(t *testing.T, ao gophercloud.AuthOptions) {
				if ao.DomainName != "Default" || ao.Scope.DomainName != "Default" {
					t.Errorf("%+v %+v", ao, ao.Scope)
				}
			}},
		{"project id", map[string]string{"OS_PROJECT_ID": "p123"}, "",
			func(t *testing.T, ao gophercloud.AuthOptions) {
				if ao.Scope.ProjectID != "p123" || ao.Scope.ProjectName != "" {
					t.Errorf("%+v", ao.Scope)
				}
			}},
		{"system scope", map[string]string{"OS_SYSTEM_SCOPE": "all", "OS_PROJECT_NAME": ""}, "",
			func(t *testing.T, ao gophercloud.AuthOptions) {
				if !ao.Scope.System {
					t.Errorf("%+v", ao.Scope)
				}
			}},
		{"application credential", map[string]string{"OS_USERNAME": "", "OS_PASSWORD": "", "OS_APPLICATION_CREDENTIAL_ID": "ac1", "OS_APPLICATION_CREDENTIAL_SECRET": "acs"}, "",
			func(t *testing.T, ao gophercloud.AuthOptions) {
				if ao.ApplicationCredentialID != "ac1" || ao.ApplicationCredentialSecret != "acs" || ao.Scope != nil {
					t.Errorf("%+v", ao)
				}
			}},
		{"application credential without secret", map[string]string{"OS_APPLICATION_CREDENTIAL_ID": "ac1"}, "missing OS_APPLICATION_CREDENTIAL_SECRET", nil},
		{"password from KAIZEN_OPENSTACK_PASSWORD alone", map[string]string{"OS_PASSWORD": "", "KAIZEN_OPENSTACK_PASSWORD": "from-kaizen"}, "",
			func(t *testing.T, ao gophercloud.AuthOptions) {
				if ao.Password != "from-kaizen" {
					t.Errorf("password not taken from KAIZEN_OPENSTACK_PASSWORD")
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parse(t, "", tt.env)
			if tt.problem != "" {
				ps := problems(t, err)
				if len(ps) != 1 || ps[0].Key != "openstack" || !strings.Contains(ps[0].Message, tt.problem) {
					t.Errorf("got %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			ao, _, _ := cfg.OpenStack.Auth()
			tt.check(t, ao)
		})
	}
}

func TestPasswordOverride(t *testing.T) {
	osEnv(t)
	cfg, err := parse(t, "", map[string]string{"KAIZEN_OPENSTACK_PASSWORD": "from-kaizen"})
	if err != nil {
		t.Fatal(err)
	}
	if ao, _, _ := cfg.OpenStack.Auth(); ao.Password != "from-kaizen" {
		t.Errorf("password not overridden")
	}
}

func TestCloudsYAML(t *testing.T) {
	osEnv(t)
	dir := t.TempDir()
	clouds := filepath.Join(dir, "clouds.yaml")
	os.WriteFile(clouds, []byte(`clouds:
  moc:
    auth:
      auth_url: https://keystone.example.org:5000/v3
      application_credential_id: "0123abcd"
      application_credential_secret: "appcred-secret"
    region_name: RegionTwo
    interface: internal
    auth_type: v3applicationcredential
`), 0o600)
	cfg, err := parse(t, "[openstack]\ncloud = \"moc\"\nclouds_file = \""+clouds+"\"\ninterface = \"internal\"", nil)
	if err != nil {
		t.Fatal(err)
	}
	ao, eo, _ := cfg.OpenStack.Auth()
	if ao.IdentityEndpoint != "https://keystone.example.org:5000/v3" || ao.ApplicationCredentialID != "0123abcd" || ao.ApplicationCredentialSecret != "appcred-secret" {
		t.Errorf("auth: %+v", ao)
	}
	if eo.Region != "RegionTwo" || eo.Availability != "internal" {
		t.Errorf("endpoint: %+v", eo)
	}
}

func TestSecretSources(t *testing.T) {
	osEnv(t)
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key")
	os.WriteFile(keyFile, []byte(strings.Repeat("f", 40)+"\n"), 0o600)
	tests := []struct {
		name, doc string
		env       map[string]string
		want      string
		source    string
	}{
		{"inline", `secret_key = "` + strings.Repeat("i", 32) + `"`, nil, strings.Repeat("i", 32), "inline"},
		{"file, newline trimmed", `secret_key_file = "` + keyFile + `"`, nil, strings.Repeat("f", 40), "file " + keyFile},
		{"env wins over file", `secret_key_file = "` + keyFile + `"`, map[string]string{"KAIZEN_SETPASS_SECRET_KEY": strings.Repeat("e", 33)}, strings.Repeat("e", 33), "env KAIZEN_SETPASS_SECRET_KEY"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parse(t, "[setpass]\n"+tt.doc, tt.env)
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.Setpass.SecretKey.Reveal(); got != tt.want {
				t.Errorf("secret = %q, want %q", got, tt.want)
			}
			if got := cfg.Setpass.SecretKey.Source(); got != tt.source {
				t.Errorf("source = %q, want %q", got, tt.source)
			}
		})
	}
}

func TestWriteRedactedHidesSecrets(t *testing.T) {
	osEnv(t)
	doc := `
[setpass]
secret_key = "sk-0123456789abcdef0123456789abcdef"
[mail.smtp]
username = "mailer"
password = "smtp-hunter2"
[store]
url = "postgres://kaizen:pg-s3cret@db.example.org/kaizen?sslmode=require"
`
	cfg, err := parse(t, doc, map[string]string{"KAIZEN_OPENSTACK_PASSWORD": "os-override-pw"})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := cfg.WriteRedacted(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, secret := range []string{"sk-0123456789abcdef", "smtp-hunter2", "pg-s3cret", "os-override-pw", "os-secret-pw"} {
		if strings.Contains(out, secret) {
			t.Errorf("output contains secret %q:\n%s", secret, out)
		}
	}
	for _, want := range []string{`password = "[redacted]"`, `secret_key = "[redacted]"`, "postgres://kaizen:xxxxx@db.example.org/kaizen", "# mail.smtp.password: set, from inline", "# openstack.password: set, from env KAIZEN_OPENSTACK_PASSWORD", `token_ttl = "3d"`} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// The redacted output is itself a loadable settings file.
	if _, err := Parse("redacted", buf.Bytes(), Options{Getenv: noEnv}); err != nil && !strings.Contains(err.Error(), "secret_key") {
		t.Errorf("redacted output does not load: %v", err)
	}
	// Printing a Secret any other way reveals nothing either.
	for _, s := range []string{cfg.Mail.SMTP.Password.String(), cfg.Store.URL.String()} {
		if strings.Contains(s, "hunter2") || strings.Contains(s, "pg-s3cret") {
			t.Errorf("String() leaks: %s", s)
		}
	}
}

func TestDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"72h", 72 * time.Hour, true}, {"7d", 7 * 24 * time.Hour, true}, {"90s", 90 * time.Second, true},
		{"1h30m", 90 * time.Minute, true}, {"-5m", 0, false}, {"d", 0, false}, {"3 days", 0, false}, {"", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseDuration(tt.in)
			if (err == nil) != tt.ok || got != tt.want {
				t.Errorf("parseDuration(%q) = %v, %v", tt.in, got, err)
			}
		})
	}
}

func TestExampleSettingsFileIsValid(t *testing.T) {
	osEnv(t)
	cfg, err := Load(filepath.Join("..", "..", "settings.example.toml"), Options{Getenv: noEnv})
	if err != nil {
		t.Fatalf("settings.example.toml: %v", err)
	}
	if len(cfg.Reminders.Jobs) == 0 {
		t.Error("the example should show at least one reminders job")
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("[setpass]\ntoken_ttl = \"72h\"\n"))
	f.Add([]byte("[[reminders.job]]\nname='a'\nkind='outbox'\nschedule='@every 1m'\n"))
	f.Add([]byte("[quotas.presets.x]\ncores = 1\n[mail.smtp]\nport = 'x'\n"))
	f.Add([]byte("a = [1, 'b']\n[b.c.d]\ne = {f = 1}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("fuzz", data, Options{Getenv: noEnv, ReadFile: func(string) ([]byte, error) { return nil, os.ErrNotExist }})
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error is not ErrInvalid: %v", err)
			}
			return
		}
		if cfg == nil {
			t.Fatal("nil config without error")
		}
	})
}

// TestExampleDocumentsEveryKey keeps settings.example.toml complete: every
// key of the configuration appears in its own table, set or commented out.
func TestExampleDocumentsEveryKey(t *testing.T) {
	example, err := os.ReadFile(filepath.Join("..", "..", "settings.example.toml"))
	if err != nil {
		t.Fatal(err)
	}
	// Text of each table, by header ("mail.smtp", "reminders.job", ...).
	sections := map[string]string{}
	header := regexp.MustCompile(`^\[\[?([^\]]+)\]\]?\s*$`)
	current := ""
	for _, line := range strings.Split(string(example), "\n") {
		if m := header.FindStringSubmatch(line); m != nil {
			current = m[1]
		}
		sections[current] += line + "\n"
	}
	var walk func(rt reflect.Type, path string)
	walk = func(rt reflect.Type, path string) {
		for i := range rt.NumField() {
			f := rt.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
			if name == "" || name == "-" || !f.IsExported() {
				continue
			}
			key := strings.TrimPrefix(path+"."+name, ".")
			ft := f.Type
			if ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct && !reflect.PointerTo(ft).Implements(reflect.TypeFor[interface{ UnmarshalText([]byte) error }]()) {
				walk(ft, key)
				continue
			}
			if ft.Kind() == reflect.Map { // written as tables of its own
				if !regexp.MustCompile(`(?m)^\[` + regexp.QuoteMeta(key) + `[.\]]`).Match(example) {
					t.Errorf("settings.example.toml has no [%s] table", key)
				}
				continue
			}
			if !regexp.MustCompile(`(?m)^#? ?` + regexp.QuoteMeta(name) + ` = `).MatchString(sections[path]) {
				t.Errorf("settings.example.toml does not document %s in [%s]", key, path)
			}
		}
	}
	walk(reflect.TypeFor[Config](), "")
}
