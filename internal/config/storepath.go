package config

import (
	"os"
	"path/filepath"
	"strings"
)

// StoreFile is the SQLite file of the default store, in the directory
// [DefaultStateDir] picks.
const StoreFile = "kaizen.db"

// DefaultStateDir is where the default store lives when store.url is not
// set, the same place whatever the working directory, so that a cron job
// in / and an admin in $HOME share one store, one lock and one outbox:
//
//  1. $STATE_DIRECTORY (systemd's StateDirectory=; the first of several);
//  2. /var/lib/kaizen, when it is a writable directory, or does not exist
//     and /var/lib is writable (root);
//  3. $XDG_STATE_HOME/kaizen, else ~/.local/state/kaizen.
//
// why says which rule chose it, for config check.
func DefaultStateDir(getenv func(string) string, writable func(dir string) bool) (dir, why string) {
	if writable == nil {
		writable = writableDir
	}
	if sd := getenv("STATE_DIRECTORY"); sd != "" {
		first, _, _ := strings.Cut(sd, ":")
		return first, "$STATE_DIRECTORY"
	}
	const system = "/var/lib/kaizen"
	if st, err := os.Stat(system); err == nil && st.IsDir() && writable(system) {
		return system, system + " is writable"
	} else if os.IsNotExist(err) && writable(filepath.Dir(system)) {
		return system, filepath.Dir(system) + " is writable"
	}
	if x := getenv("XDG_STATE_HOME"); filepath.IsAbs(x) {
		return filepath.Join(x, "kaizen"), "$XDG_STATE_HOME"
	}
	home := getenv("HOME")
	if home == "" {
		home, _ = os.UserHomeDir()
	}
	return filepath.Join(home, ".local", "state", "kaizen"), "the XDG state directory (~/.local/state)"
}

// writableDir reports whether a file can be created in dir.
func writableDir(dir string) bool {
	f, err := os.CreateTemp(dir, ".kaizen-probe-*")
	if err != nil {
		return false
	}
	f.Close()
	os.Remove(f.Name())
	return true
}

// storeLocation makes a SQLite store URL independent of the working
// directory: the default goes to [DefaultStateDir]; a relative path from
// the settings file (inline or store.url_file) is taken relative to the
// settings file's directory, and one from KAIZEN_STORE_URL relative to the
// working directory, made absolute now.
func (v *validator) storeLocation(c *Config) {
	s := &c.Store.URL.Secret
	scheme, rest, ok := strings.Cut(s.value, "://")
	if !ok || scheme != "sqlite" || rest == "" {
		return
	}
	if s.source == "default" {
		dir, why := DefaultStateDir(v.opts.Getenv, v.opts.Writable)
		s.value = "sqlite://" + filepath.Join(dir, StoreFile)
		s.source = "default location, " + why
		return
	}
	path, query, hasQuery := strings.Cut(rest, "?")
	if filepath.IsAbs(path) || path == ":memory:" {
		return
	}
	var abs string
	if strings.HasPrefix(s.source, "env ") || c.Path == "" {
		var err error
		if abs, err = filepath.Abs(path); err != nil {
			return
		}
	} else {
		base, err := filepath.Abs(filepath.Dir(c.Path))
		if err != nil {
			return
		}
		abs = filepath.Join(base, path)
	}
	s.value = "sqlite://" + abs
	if hasQuery {
		s.value += "?" + query
	}
}
