package config

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestStoreLocation: the store URL a load ends with does not depend on the
// working directory.
func TestStoreLocation(t *testing.T) {
	osEnv(t)
	cwd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	etc := filepath.Join(t.TempDir(), "etc", "kaizen")
	settings := filepath.Join(etc, "settings.toml")
	never := func(string) bool { return false }
	always := func(string) bool { return true }
	tests := []struct {
		name     string
		path     string // settings file ("" none)
		doc      string
		env      map[string]string
		writable func(string) bool
		want     string
		source   string // part of where config check says it came from
	}{
		{name: "default in $STATE_DIRECTORY", env: map[string]string{"STATE_DIRECTORY": "/run/state/kaizen:/other"},
			writable: always, want: "sqlite:///run/state/kaizen/kaizen.db", source: "$STATE_DIRECTORY"},
		{name: "default in /var/lib/kaizen when writable", writable: always,
			want: "sqlite:///var/lib/kaizen/kaizen.db", source: "writable"},
		{name: "default in $XDG_STATE_HOME", env: map[string]string{"XDG_STATE_HOME": "/home/ada/.state"}, writable: never,
			want: "sqlite:///home/ada/.state/kaizen/kaizen.db", source: "$XDG_STATE_HOME"},
		{name: "default in ~/.local/state", env: map[string]string{"HOME": "/home/ada"}, writable: never,
			want: "sqlite:///home/ada/.local/state/kaizen/kaizen.db", source: "XDG"},
		{name: "a settings file without store.url takes the default too", path: settings, doc: "[log]\nlevel = \"info\"\n",
			env: map[string]string{"STATE_DIRECTORY": "/srv/kaizen"}, want: "sqlite:///srv/kaizen/kaizen.db", source: "default"},
		{name: "relative path in the file is relative to the file", path: settings, doc: "[store]\nurl = \"sqlite://var/k.db\"\n",
			want: "sqlite://" + filepath.Join(etc, "var", "k.db"), source: "inline"},
		{name: "relative path in KAIZEN_STORE_URL is relative to the working directory", path: settings,
			env: map[string]string{"KAIZEN_STORE_URL": "sqlite://k.db"}, want: "sqlite://" + filepath.Join(cwd, "k.db"), source: "env"},
		{name: "absolute path kept", path: settings, doc: "[store]\nurl = \"sqlite:///data/k.db\"\n", want: "sqlite:///data/k.db"},
		{name: "postgres untouched", path: settings, doc: "[store]\nurl = \"postgres://kaizen@db/kaizen\"\n", want: "postgres://kaizen@db/kaizen"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{"STATE_DIRECTORY": "", "XDG_STATE_HOME": "", "HOME": "/nonexistent-home", "KAIZEN_STORE_URL": ""}
			for k, v := range tc.env {
				env[k] = v
			}
			cfg, err := Parse(tc.path, []byte(tc.doc), Options{Getenv: envOf(env), Writable: tc.writable})
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.Store.URL.Reveal(); got != tc.want {
				t.Errorf("store URL = %q, want %q", got, tc.want)
			}
			if !strings.Contains(cfg.Store.URL.Source(), tc.source) {
				t.Errorf("source = %q, want it to mention %q", cfg.Store.URL.Source(), tc.source)
			}
			var buf bytes.Buffer
			if err := cfg.WriteRedacted(&buf); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(buf.String(), "# state store: "+tc.want) {
				t.Errorf("config check does not print the store:\n%s", buf.String())
			}
		})
	}
}
