package storetest

import (
	"maps"
	"testing"
	"time"

	"github.com/kaizen-onboard/kaizen/internal/store"
)

func checkQuotaRecord(t *testing.T, what string, got, want store.QuotaRecord) {
	t.Helper()
	if got.ProjectID != want.ProjectID || got.Preset != want.Preset || got.Change != want.Change {
		t.Errorf("%s (project, preset, change) = (%q, %q, %q), want (%q, %q, %q)", what,
			got.ProjectID, got.Preset, got.Change, want.ProjectID, want.Preset, want.Change)
	}
	for _, m := range []struct {
		name      string
		got, want map[string]int64
	}{{"Quotas", got.Quotas, want.Quotas}, {"Previous", got.Previous, want.Previous}, {"Before", got.Before, want.Before}} {
		if !maps.Equal(m.got, m.want) || (m.got == nil) != (m.want == nil) {
			t.Errorf("%s %s = %v, want %v", what, m.name, m.got, m.want)
		}
	}
	checkTime(t, what+" ChangedAt", got.ChangedAt, want.ChangedAt)
	checkTimePtr(t, what+" EndsOn", got.EndsOn, want.EndsOn)
}

func day(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

func testQuotaRecordPutGet(t *testing.T, s store.Store) {
	c := ctx(t)
	_, err := s.GetQuotaRecord(c, "p1")
	isErr(t, "GetQuotaRecord before Put", err, store.ErrNotFound)
	isErr(t, "DeleteQuotaRecord before Put", s.DeleteQuotaRecord(c, "p1"), store.ErrNotFound)

	perm := store.QuotaRecord{ProjectID: "p1", Quotas: map[string]int64{"cores": 20, "ram": 51200, "floatingip": -1},
		Preset: "small", ChangedAt: base(), Change: "import:sheet row 2"}
	ok(t, "PutQuotaRecord", s.PutQuotaRecord(c, perm))
	checkQuotaRecord(t, "permanent", must(s.GetQuotaRecord(c, "p1"))(t, "GetQuotaRecord"), perm)

	// Replaced whole: a temporary record with its previous quotas.
	temp := store.QuotaRecord{ProjectID: "p1", Quotas: map[string]int64{"cores": 40, "ram": 51200, "floatingip": -1},
		EndsOn: ptr(day(2031, 4, 30)), Previous: map[string]int64{"cores": 20}, ChangedAt: base().Add(time.Hour),
		Change: "request:abc", Before: map[string]int64{"cores": 20, "ram": 51200, "floatingip": -1}}
	ok(t, "PutQuotaRecord temporary", s.PutQuotaRecord(c, temp))
	checkQuotaRecord(t, "temporary", must(s.GetQuotaRecord(c, "p1"))(t, "GetQuotaRecord"), temp)

	// And back to permanent: the end, previous and before quotas go.
	perm.ChangedAt = base().Add(2 * time.Hour)
	ok(t, "PutQuotaRecord permanent again", s.PutQuotaRecord(c, perm))
	checkQuotaRecord(t, "permanent again", must(s.GetQuotaRecord(c, "p1"))(t, "GetQuotaRecord"), perm)

	ok(t, "DeleteQuotaRecord", s.DeleteQuotaRecord(c, "p1"))
	_, err = s.GetQuotaRecord(c, "p1")
	isErr(t, "GetQuotaRecord after Delete", err, store.ErrNotFound)

	// Half a temporary record is refused.
	if err := s.PutQuotaRecord(c, store.QuotaRecord{ProjectID: "p2", Quotas: map[string]int64{}, EndsOn: ptr(day(2031, 1, 1)), ChangedAt: base()}); err == nil {
		t.Error("PutQuotaRecord with an end but no previous quotas: no error")
	}
	if err := s.PutQuotaRecord(c, store.QuotaRecord{ProjectID: "p2", ChangedAt: base()}); err == nil {
		t.Error("PutQuotaRecord without quotas: no error")
	}
}

func testQuotaRecordEnded(t *testing.T, s store.Store) {
	c := ctx(t)
	put := func(id string, ends *time.Time) {
		r := store.QuotaRecord{ProjectID: id, Quotas: map[string]int64{"cores": 8}, ChangedAt: base()}
		if ends != nil {
			r.EndsOn, r.Previous = ends, map[string]int64{"cores": 4}
		}
		ok(t, "PutQuotaRecord "+id, s.PutQuotaRecord(c, r))
	}
	put("permanent", nil)
	put("late", ptr(day(2031, 5, 1)))
	put("early", ptr(day(2031, 3, 1)))
	put("last-day-today", ptr(day(2031, 4, 1)))
	got := must(s.EndedQuotaRecords(c, day(2031, 4, 1)))(t, "EndedQuotaRecords")
	if len(got) != 1 || got[0].ProjectID != "early" {
		t.Fatalf("EndedQuotaRecords(2031-04-01) = %v, want just early (a quota's last day is not past)", got)
	}
	got = must(s.EndedQuotaRecords(c, day(2031, 6, 1)))(t, "EndedQuotaRecords later")
	var ids []string
	for _, r := range got {
		ids = append(ids, r.ProjectID)
	}
	if len(ids) != 3 || ids[0] != "early" || ids[1] != "last-day-today" || ids[2] != "late" {
		t.Errorf("EndedQuotaRecords(2031-06-01) = %v, want early, last-day-today, late", ids)
	}
}
