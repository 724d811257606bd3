package onboard_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kaizen-onboard/kaizen/internal/onboard"
	"github.com/kaizen-onboard/kaizen/internal/sheet"
	"github.com/kaizen-onboard/kaizen/internal/store"
	"github.com/kaizen-onboard/kaizen/internal/testenv/mailtest"
)

// TestOneStorePerSheet: a run marks the spreadsheet with its store; a run
// with another store refuses, naming both, until told --take-over.
func TestOneStorePerSheet(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	e.write(row("first@example.org", "marked-one"), row("second@example.org", "marked-two"))

	const descA, descB = "sqlite:///srv/a/kaizen.db on host a", "sqlite:///home/b/kaizen.db on host b"
	idA, err := e.store.StoreID(ctx, "store-a")
	if err != nil {
		t.Fatal(err)
	}
	storeA := func(o *onboard.Options) { o.StoreID, o.StoreDesc = idA, descA }
	e.mustRun(storeA, func(o *onboard.Options) { o.OnlyUser = "first@example.org" })
	m, ok, err := e.sheet.StoreMarker(ctx)
	if err != nil || !ok || m.StoreID != idA || m.Store != descA {
		t.Fatalf("marker after the first run: %+v %v %v", m, ok, err)
	}
	if !strings.Contains(strings.Join(e.sheets.SheetTitles(book), ","), sheet.MarkerWorksheet) {
		t.Errorf("no %q worksheet: %v", sheet.MarkerWorksheet, e.sheets.SheetTitles(book))
	}

	// A second store: another SQLite file, as another working directory
	// used to give.
	other, err := store.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "kaizen.db"), e.logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	idB, err := other.StoreID(ctx, "store-b")
	if err != nil {
		t.Fatal(err)
	}
	deps := e.deps()
	deps.Store, deps.Mail = other, mailtest.Outbox(t, other, e.smtp, e.logger)
	optsB := e.opts
	optsB.StoreID, optsB.StoreDesc = idB, descB

	sum, err := onboard.Run(ctx, deps, optsB)
	if !errors.Is(err, onboard.ErrOtherStore) {
		t.Fatalf("second store: err = %v, want ErrOtherStore", err)
	}
	for _, s := range []string{descA, descB, idA, idB, "--take-over"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("refusal %q does not name %q", err, s)
		}
	}
	if len(sum.Rows) != 0 {
		t.Errorf("the refused run reported rows: %+v", sum.Rows)
	}
	for _, u := range e.users() {
		if u.Name == "second@example.org" {
			t.Fatal("the refused run created a user")
		}
	}

	// --take-over moves the sheet; then the first store is the other one.
	optsB.TakeOver = true
	if sum, err := onboard.Run(ctx, deps, optsB); err != nil {
		t.Fatalf("take-over run: %v %+v", err, sum.Rows)
	}
	if m, _, _ := e.sheet.StoreMarker(ctx); m.StoreID != idB {
		t.Errorf("marker after take-over = %+v, want store B", m)
	}
	e.user("second@example.org")
	if _, err := e.run(storeA); !errors.Is(err, onboard.ErrOtherStore) || !strings.Contains(err.Error(), descB) {
		t.Errorf("the first store after the take-over: err = %v, want ErrOtherStore naming %s", err, descB)
	}
	// A plan only checks.
	if _, err := e.run(storeA, func(o *onboard.Options) { o.DryRun = true }); !errors.Is(err, onboard.ErrOtherStore) {
		t.Errorf("plan with the other store: err = %v, want ErrOtherStore", err)
	}
}

func TestDescribeStore(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, url, want, never string }{
		{"postgres without secrets", "postgres://kaizen:s3cret@db.example.org:5432/kaizen?sslmode=verify-full&password=x", "postgres://db.example.org:5432/kaizen", "s3cret"},
		{"sqlite path and host", "sqlite:///var/lib/kaizen/kaizen.db", "sqlite:///var/lib/kaizen/kaizen.db on host ", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := onboard.DescribeStore(tc.url)
			if !strings.HasPrefix(got, tc.want) || tc.never != "" && strings.Contains(got, tc.never) {
				t.Errorf("DescribeStore(%q) = %q, want %q…", tc.url, got, tc.want)
			}
		})
	}
}
