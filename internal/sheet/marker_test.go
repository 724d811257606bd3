package sheet

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

type markerSheet interface {
	StoreMarker(ctx context.Context) (StoreMarker, bool, error)
	SetStoreMarker(ctx context.Context, m StoreMarker) error
}

func TestStoreMarker(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	fx := newGFix(t, tab, signups)
	csvPath := filepath.Join(t.TempDir(), "signups.csv")
	if err := os.WriteFile(csvPath, []byte("Timestamp,Email\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]markerSheet{"google": fx.g, "csv": NewCSV(csvPath)} {
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			if _, ok, err := s.StoreMarker(ctx); ok || err != nil {
				t.Fatalf("fresh sheet: marker found %v, err %v; want none", ok, err)
			}
			first := StoreMarker{StoreID: "id-a", Store: "sqlite:///var/lib/kaizen/kaizen.db on host a", At: at}
			if err := s.SetStoreMarker(ctx, first); err != nil {
				t.Fatalf("SetStoreMarker: %v", err)
			}
			got, ok, err := s.StoreMarker(ctx)
			if err != nil || !ok || got != first {
				t.Fatalf("read back %+v, %v, %v; want %+v", got, ok, err, first)
			}
			second := StoreMarker{StoreID: "id-b", Store: "postgres://db/kaizen", At: at.Add(time.Hour)}
			if err := s.SetStoreMarker(ctx, second); err != nil {
				t.Fatalf("SetStoreMarker again: %v", err)
			}
			if got, _, _ := s.StoreMarker(ctx); got != second {
				t.Errorf("after the take-over: %+v, want %+v", got, second)
			}
		})
	}
	// Google: one hidden worksheet, the form's untouched.
	if titles := fx.fake.SheetTitles(book); !slices.Contains(titles, MarkerWorksheet) || !slices.Contains(titles, tab) || len(titles) != 2 {
		t.Errorf("worksheets %q, want the form's and %q", titles, MarkerWorksheet)
	}
	if rows := fx.fake.Rows(book, tab); !slices.Equal(rows[0][:len(signups[0])], signups[0]) {
		t.Errorf("the form's worksheet changed: %q", rows[0])
	}
	row := fx.fake.Rows(book, MarkerWorksheet)
	if len(row) < 2 || row[1][0] != "id-b" || !strings.Contains(row[1][3], "--take-over") {
		t.Errorf("marker worksheet = %q", row)
	}
	// CSV: a damaged sidecar is an error naming it, not a silent claim.
	if err := os.WriteFile(csvPath+".kaizen-store", []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := NewCSV(csvPath).StoreMarker(t.Context()); err == nil || !strings.Contains(err.Error(), ".kaizen-store") {
		t.Errorf("damaged sidecar: err = %v", err)
	}
}
