package store_test

import (
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kaizen-onboard/kaizen/internal/store"
)

func TestStoreOpenURLs(t *testing.T) {
	t.Chdir(t.TempDir()) // for the relative path
	abs := filepath.Join(t.TempDir(), "abs", "kaizen.db")
	tests := []struct {
		name    string
		url     string
		file    string // the SQLite file Open must create
		wantErr string // substring of the error; "" for success
	}{
		{"sqlite relative", "sqlite://var/state/kaizen.db", "var/state/kaizen.db", ""},
		{"sqlite absolute", "sqlite://" + abs, abs, ""},
		{"sqlite empty path", "sqlite://", "", "want sqlite://"},
		{"sqlite parameters", "sqlite://x.db?mode=ro", "", "without parameters"},
		{"sqlite memory", "sqlite://:memory:", "", "want sqlite://"},
		{"no scheme", "kaizen.db", "", "no scheme"},
		{"unknown scheme", "mysql://root:hunter2@db/kaizen", "", `unsupported URL scheme "mysql"`},
		{"postgres unparsable", "postgres://kaizen:hunter2@[::1/kaizen", "", "cannot parse the URL"},
		{"postgres unreachable", "postgresql://kaizen:hunter2@127.0.0.1:1/kaizen?connect_timeout=2", "", "opening PostgreSQL store"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := store.Open(t.Context(), tc.url, nil)
			if tc.wantErr != "" {
				if err == nil {
					s.Close()
					t.Fatalf("Open(%q) succeeded, want an error", tc.url)
				}
				t.Logf("error: %v", err)
				if !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("Open(%q) = %v, want an error containing %q", tc.url, err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "hunter2") {
					t.Errorf("Open's error shows the password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open(%q): %v", tc.url, err)
			}
			defer s.Close()
			if err := s.Ping(t.Context()); err != nil {
				t.Errorf("Ping: %v", err)
			}
			if _, err := os.Stat(tc.file); err != nil {
				t.Errorf("database file: %v", err)
			}
		})
	}
}

// TestSQLiteFile checks what the SQLite backend leaves on disk: a private
// file in WAL mode whose data survives reopening (with migrations already
// applied).
func TestSQLiteFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kaizen.db")
	s, err := store.Open(t.Context(), "sqlite://"+path, nil)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	now := time.Now()
	if first, err := s.RecordOnce(t.Context(), "k", now); err != nil || !first {
		t.Fatalf("RecordOnce = %v, %v", first, err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if mode := fi.Mode().Perm(); mode != 0o600 {
		t.Errorf("database file mode %v, want 0600 (it holds sealed passwords)", mode)
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var mode string
	if err := db.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode = %q, %v; want wal", mode, err)
	}

	s, err = store.Open(t.Context(), "sqlite://"+path, nil)
	if err != nil {
		t.Fatalf("reopening: %v", err)
	}
	defer s.Close()
	at, found, err := s.Recorded(t.Context(), "k")
	if err != nil || !found || !at.Equal(now.UTC().Truncate(time.Microsecond)) {
		t.Errorf("Recorded after reopening = %v, %v, %v; want %v", at, found, err, now)
	}
}
