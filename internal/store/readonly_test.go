package store_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kaizen-onboard/kaizen/internal/store"
)

// snapshot is every file under dir with its size and modification time.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		m[p] = fmt.Sprintf("%s %s %d", fi.ModTime().Format(time.RFC3339Nano), fi.Mode(), fi.Size())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestOpenReadOnlySQLite(t *testing.T) {
	ctx := context.Background()
	t.Run("missing store creates nothing", func(t *testing.T) {
		dir := t.TempDir()
		_, err := store.OpenReadOnly(ctx, "sqlite://"+filepath.Join(dir, "state", "kaizen.db"), nil)
		if !errors.Is(err, store.ErrNoStore) {
			t.Fatalf("err = %v, want ErrNoStore", err)
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 0 {
			t.Fatalf("created %v", ents)
		}
	})
	t.Run("existing store is read, not changed", func(t *testing.T) {
		dir := t.TempDir()
		url := "sqlite://" + filepath.Join(dir, "kaizen.db")
		st, err := store.Open(ctx, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.PutQuotaRecord(ctx, store.QuotaRecord{ProjectID: "p1", Quotas: map[string]int64{"cores": 4}, ChangedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
		st.Close()
		before := snapshot(t, dir)
		ro, err := store.OpenReadOnly(ctx, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		rec, err := ro.GetQuotaRecord(ctx, "p1")
		if err != nil || rec.Quotas["cores"] != 4 {
			t.Fatalf("read %+v, %v", rec, err)
		}
		if err := ro.PutQuotaRecord(ctx, store.QuotaRecord{ProjectID: "p2", Quotas: map[string]int64{"cores": 1}, ChangedAt: time.Now()}); err == nil {
			t.Error("a write through the read-only store succeeded")
		}
		ro.Close()
		after := snapshot(t, dir)
		if len(before) != len(after) {
			t.Fatalf("files before %v, after %v", before, after)
		}
		for p, b := range before {
			if after[p] != b {
				t.Errorf("%s changed: %s -> %s", p, b, after[p])
			}
		}
	})
	t.Run("store open elsewhere is read through its WAL", func(t *testing.T) {
		url := "sqlite://" + filepath.Join(t.TempDir(), "kaizen.db")
		st, err := store.Open(ctx, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		if err := st.PutQuotaRecord(ctx, store.QuotaRecord{ProjectID: "p1", Quotas: map[string]int64{"cores": 8}, ChangedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
		ro, err := store.OpenReadOnly(ctx, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer ro.Close()
		if rec, err := ro.GetQuotaRecord(ctx, "p1"); err != nil || rec.Quotas["cores"] != 8 {
			t.Fatalf("read %+v, %v", rec, err)
		}
	})
}
