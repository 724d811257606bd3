package storetest

import (
	"maps"
	"testing"
	"time"

	"github.com/kaizen-onboard/kaizen/internal/store"
)

func testWriteBacks(t *testing.T, s store.Store) {
	c := ctx(t)
	if got := must(s.PendingWriteBacks(c, "sheet:a"))(t, "PendingWriteBacks empty"); len(got) != 0 {
		t.Fatalf("PendingWriteBacks of an empty store = %+v", got)
	}
	ok(t, "PutWriteBacks nothing", s.PutWriteBacks(c, nil))
	ada := store.PendingWriteBack{Source: "sheet:a", Timestamp: "3/14/2026 14:05:09", Email: "Ada@Example.org", Row: 7,
		Cells: map[string]string{"Status": "done", "PIN": "(registered)"}, Reason: "429", CreatedAt: base()}
	bob := store.PendingWriteBack{Source: "sheet:a", Timestamp: "3/14/2026 15:00:00", Email: "bob@example.org", Row: 3,
		Cells: map[string]string{"Status": "error: x"}, CreatedAt: base().Add(time.Second)}
	other := bob
	other.Source = "sheet:b"
	ok(t, "PutWriteBacks", s.PutWriteBacks(c, []store.PendingWriteBack{ada, bob, other}))

	got := must(s.PendingWriteBacks(c, "sheet:a"))(t, "PendingWriteBacks")
	if len(got) != 2 {
		t.Fatalf("PendingWriteBacks = %+v, want ada and bob", got)
	}
	for i, want := range []store.PendingWriteBack{ada, bob} {
		g := got[i]
		if g.Source != want.Source || g.Timestamp != want.Timestamp || g.Email != want.Email || g.Row != want.Row ||
			!maps.Equal(g.Cells, want.Cells) || g.Reason != want.Reason || !g.CreatedAt.Equal(want.CreatedAt) {
			t.Errorf("record %d = %+v, want %+v", i, g, want)
		}
	}

	// The same identity (email in another case) replaces the record.
	ada2 := ada
	ada2.Email, ada2.Row, ada2.Cells, ada2.Reason = "ada@example.org", 9, map[string]string{"Status": "done"}, "503"
	ok(t, "PutWriteBacks replace", s.PutWriteBacks(c, []store.PendingWriteBack{ada2}))
	got = must(s.PendingWriteBacks(c, "sheet:a"))(t, "PendingWriteBacks after replace")
	if len(got) != 2 || got[0].Row != 9 || !maps.Equal(got[0].Cells, ada2.Cells) || got[0].Reason != "503" || !got[0].CreatedAt.Equal(base()) {
		t.Errorf("after replace: %+v", got)
	}

	ok(t, "DeleteWriteBack", s.DeleteWriteBack(c, "sheet:a", ada.Timestamp, "ADA@example.org"))
	ok(t, "DeleteWriteBack again", s.DeleteWriteBack(c, "sheet:a", ada.Timestamp, ada.Email))
	got = must(s.PendingWriteBacks(c, "sheet:a"))(t, "PendingWriteBacks after delete")
	if len(got) != 1 || got[0].Email != bob.Email {
		t.Errorf("after delete: %+v, want bob only", got)
	}
	if got := must(s.PendingWriteBacks(c, "sheet:b"))(t, "PendingWriteBacks b"); len(got) != 1 {
		t.Errorf("sheet:b = %+v, want its own record", got)
	}
	if err := s.PutWriteBacks(c, []store.PendingWriteBack{{Source: "sheet:a", Email: "x@y", CreatedAt: base()}}); err == nil {
		t.Error("PutWriteBacks without cells: no error")
	}
}
