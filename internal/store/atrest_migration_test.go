package store

import (
	"bytes"
	"database/sql"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/pressly/goose/v3"
)

// TestUpgradeDeletesFinishedBodies: a store of an earlier version keeps the
// bodies of sent and abandoned mail; the upgrade (migration 00004) deletes
// them and keeps the bodies still to be delivered.
func TestUpgradeDeletesFinishedBodies(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	if err := createPrivate(path); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", sqliteDSN(path, "_txlock=immediate"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	sub, err := fs.Sub(migrations, "migrations/sqlite")
	if err != nil {
		t.Fatal(err)
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, db, sub, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(t.Context(), 3); err != nil {
		t.Fatal(err)
	}
	for i, status := range []string{"sent", "abandoned", "pending"} {
		if _, err := db.Exec(`INSERT INTO outbox (id, msg_key, kind, sender, recipients, status, next_attempt_at, created_at, updated_at)
			VALUES ($1, $2, 'welcome', 'a@example.org', '["b@example.org"]', $3, 0, 0, 0)`, i+1, status, status); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(`INSERT INTO outbox_body (id, body) VALUES ($1, $2)`, i+1, []byte("Subject: "+status+"\r\n\r\nlink-of-the-"+status+"-mail")); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	s, err := Open(t.Context(), "sqlite://"+path, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		key      string
		keepBody bool
	}{{"sent", false}, {"abandoned", false}, {"pending", true}} {
		m, err := s.MessageByKey(t.Context(), tc.key)
		if err != nil {
			t.Fatalf("%s: %v", tc.key, err)
		}
		if got := len(m.Body) > 0; got != tc.keepBody || string(m.Status) != tc.key {
			t.Errorf("%s message after the upgrade: status %s, body kept %v; want kept %v", tc.key, m.Status, got, tc.keepBody)
		}
	}
	// The deleted bodies leave no fragment in the file (secure_delete).
	s.Close()
	for _, name := range []string{path, path + "-wal"} {
		raw, err := os.ReadFile(name)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, gone := range []string{"link-of-the-sent-mail", "link-of-the-abandoned-mail"} {
			if bytes.Contains(raw, []byte(gone)) {
				t.Errorf("%s still holds the deleted body %q", filepath.Base(name), gone)
			}
		}
	}
}
