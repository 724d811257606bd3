package config

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSecretKeys(t *testing.T) {
	osEnv(t)
	k1, k2, k3 := strings.Repeat("1", 32), strings.Repeat("2", 40), strings.Repeat("3", 64)
	legacy := strings.Repeat("L", 36)
	dir := t.TempDir()
	keysFile := filepath.Join(dir, "keys")
	os.WriteFile(keysFile, []byte("# current first\n"+k2+"\n\n  "+k1+"  \r\n"), 0o600)
	emptyFile := filepath.Join(dir, "empty")
	os.WriteFile(emptyFile, []byte("\n# none yet\n"), 0o600)
	legacyFile := filepath.Join(dir, "legacy")
	os.WriteFile(legacyFile, []byte(legacy+"\n"), 0o600)

	tests := []struct {
		name    string
		doc     string
		env     map[string]string
		want    []string
		source  string
		problem string // key: message prefix, when the load must fail
	}{
		{"none", "", nil, nil, "", ""},
		{"inline, current first", `[secrets]` + "\n" + `keys = ["` + k1 + `", "` + k2 + `"]`, nil, []string{k1, k2}, "inline", ""},
		{"file, comments and blank lines skipped", `[secrets]` + "\n" + `keys_file = "` + keysFile + `"`, nil, []string{k2, k1}, "file " + keysFile, ""},
		{"env, commas", "", map[string]string{SecretKeysEnv: k3 + "," + k1}, []string{k3, k1}, "env " + SecretKeysEnv, ""},
		{"env, newlines", "", map[string]string{SecretKeysEnv: k3 + "\n" + k2 + "\n"}, []string{k3, k2}, "env " + SecretKeysEnv, ""},
		{"env wins over file", `[secrets]` + "\n" + `keys_file = "` + keysFile + `"`, map[string]string{SecretKeysEnv: k3}, []string{k3}, "env " + SecretKeysEnv, ""},
		{"env wins over inline", `[secrets]` + "\n" + `keys = ["` + k1 + `"]`, map[string]string{SecretKeysEnv: k3}, []string{k3}, "env " + SecretKeysEnv, ""},
		{"legacy inline", `[setpass]` + "\n" + `secret_key = "` + legacy + `"`, nil, []string{legacy}, "setpass.secret_key (legacy, from inline)", ""},
		{"legacy file", `[setpass]` + "\n" + `secret_key_file = "` + legacyFile + `"`, nil, []string{legacy}, "setpass.secret_key (legacy, from file " + legacyFile + ")", ""},
		{"legacy env", "", map[string]string{"KAIZEN_SETPASS_SECRET_KEY": legacy}, []string{legacy}, "setpass.secret_key (legacy, from env KAIZEN_SETPASS_SECRET_KEY)", ""},
		{"both [secrets] and legacy", `[secrets]` + "\n" + `keys = ["` + k1 + `"]` + "\n[setpass]\n" + `secret_key = "` + legacy + `"`, nil, nil, "",
			"secrets.keys: set, and so is the legacy setpass.secret_key"},
		{"env keys and legacy env", "", map[string]string{SecretKeysEnv: k1, "KAIZEN_SETPASS_SECRET_KEY": legacy}, nil, "",
			"secrets.keys: set, and so is the legacy setpass.secret_key (from env KAIZEN_SETPASS_SECRET_KEY)"},
		{"inline and file", `[secrets]` + "\n" + `keys = ["` + k1 + `"]` + "\n" + `keys_file = "` + keysFile + `"`, nil, nil, "", "secrets.keys: set both inline and as secrets.keys_file"},
		{"short key", `[secrets]` + "\n" + `keys = ["` + k1 + `", "short"]`, nil, nil, "", "secrets.keys[1]: is 5 characters; each key must be at least 32"},
		{"short key in env", "", map[string]string{SecretKeysEnv: "tiny," + k1}, nil, "", "secrets.keys[0]: is 4 characters"},
		{"repeated key", `[secrets]` + "\n" + `keys = ["` + k1 + `", "` + k2 + `", "` + k1 + `"]`, nil, nil, "", "secrets.keys[2]: repeats secrets.keys[0]"},
		{"empty file", `[secrets]` + "\n" + `keys_file = "` + emptyFile + `"`, nil, nil, "", "secrets.keys_file: \"" + emptyFile + "\" holds no key"},
		{"missing file", `[secrets]` + "\n" + `keys_file = "/nonexistent/keys"`, nil, nil, "", "secrets.keys_file: cannot read"},
		{"env of separators only", "", map[string]string{SecretKeysEnv: ",\n,"}, nil, "", "secrets.keys: " + SecretKeysEnv + " holds no key"},
		{"not an array", `[secrets]` + "\n" + `keys = "` + k1 + `"`, nil, nil, "", "secrets.keys: must be an array"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parse(t, tt.doc, tt.env)
			if tt.problem != "" {
				if err == nil {
					t.Fatalf("loaded; want problem %q", tt.problem)
				}
				found := false
				for _, p := range problems(t, err) {
					found = found || strings.HasPrefix(p.String(), tt.problem)
				}
				if !found {
					t.Fatalf("problems lack %q:\n%v", tt.problem, err)
				}
				for _, k := range []string{k1, k2, k3, legacy} {
					if strings.Contains(err.Error(), k) {
						t.Errorf("the error reveals a key:\n%v", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, b := range cfg.Secrets.Reveal() {
				got = append(got, string(b))
			}
			if strings.Join(got, "|") != strings.Join(tt.want, "|") || len(cfg.Secrets.Effective()) != len(tt.want) {
				t.Errorf("keys = %q, want %q", got, tt.want)
			}
			if cfg.Secrets.IsSet() != (len(tt.want) > 0) || cfg.Secrets.Source() != tt.source {
				t.Errorf("IsSet %v, source %q; want %v, %q", cfg.Secrets.IsSet(), cfg.Secrets.Source(), len(tt.want) > 0, tt.source)
			}
		})
	}
}

func TestSecretKeysNeverPrinted(t *testing.T) {
	osEnv(t)
	k1, k2 := "key-one-0123456789abcdef0123456789abcdef", "key-two-0123456789abcdef0123456789abcdef"
	for _, tt := range []struct {
		name, doc string
		env       map[string]string
		comment   string
	}{
		{"inline", "[secrets]\nkeys = [\"" + k1 + "\", \"" + k2 + "\"]\n", nil, "# secrets.keys: 2 key(s) set, from inline"},
		{"env", "", map[string]string{SecretKeysEnv: k1 + "," + k2}, "# secrets.keys: 2 key(s) set, from env KAIZEN_SECRET_KEYS"},
		{"legacy", "[setpass]\nsecret_key = \"" + k1 + "\"\n", nil, "# secrets.keys: 1 key(s) set, from setpass.secret_key (legacy, from inline)"},
		{"none", "", nil, "# secrets.keys: NOT SET"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parse(t, tt.doc, tt.env)
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			if err := cfg.WriteRedacted(&buf); err != nil {
				t.Fatal(err)
			}
			out := buf.String()
			for _, k := range []string{k1, k2, "key-one", "key-two"} {
				if strings.Contains(out, k) {
					t.Errorf("output contains a key:\n%s", out)
				}
			}
			if !strings.Contains(out, tt.comment) {
				t.Errorf("output lacks %q:\n%s", tt.comment, out)
			}
			for _, s := range cfg.Secrets.Effective() {
				if p := s.String() + s.GoString(); strings.Contains(p, "key-") {
					t.Errorf("a key prints as %s", p)
				}
			}
		})
	}
}

func TestMailRetention(t *testing.T) {
	osEnv(t)
	cfg, err := parse(t, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Mail.Retention.D != 90*24*time.Hour {
		t.Errorf("default mail.retention = %s, want 90d", cfg.Mail.Retention.D)
	}
	cfg, err = parse(t, "[mail]\nretention = \"30d\"", nil)
	if err != nil || cfg.Mail.Retention.D != 30*24*time.Hour {
		t.Fatalf("mail.retention = 30d: %v, %v", cfg, err)
	}
	for doc, want := range map[string]string{
		"[mail]\nretention = \"10m\"":  "mail.retention: must be at least 1h",
		"[mail]\nretention = \"soon\"": "mail.retention: malformed duration",
	} {
		_, err := parse(t, doc, nil)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want %q", doc, err, want)
		}
	}
}
