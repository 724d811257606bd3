package storetest

import (
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/kaizen-onboard/kaizen/internal/store"
)

func testLedger(t *testing.T, s store.Store) {
	c := ctx(t)
	now := base()
	const key = "link-reminder|user-1|2031-03"

	if _, found, err := s.Recorded(c, key); err != nil || found {
		t.Fatalf("Recorded before RecordOnce = (found %v, %v), want (false, nil)", found, err)
	}
	if first := must(s.RecordOnce(c, key, now))(t, "RecordOnce"); !first {
		t.Fatal("first RecordOnce = false")
	}
	if first := must(s.RecordOnce(c, key, now.Add(time.Hour)))(t, "RecordOnce again"); first {
		t.Error("second RecordOnce = true")
	}
	at, found, err := s.Recorded(c, key)
	ok(t, "Recorded", err)
	if !found {
		t.Fatal("Recorded: not found")
	}
	checkTime(t, "Recorded", at, now) // the first time, not the second

	ok(t, "Forget", s.Forget(c, key))
	isErr(t, "Forget twice", s.Forget(c, key), store.ErrNotFound)
	if first := must(s.RecordOnce(c, key, now))(t, "RecordOnce after Forget"); !first {
		t.Error("RecordOnce after Forget = false")
	}
}

func testAudit(t *testing.T, s store.Store) {
	c := ctx(t)
	now := base()
	events := []store.Event{ // appended out of time order
		{At: now.Add(2 * time.Second), Actor: "admin", Action: "role.assign", Target: "p1",
			Source: "sheet:abc/Form row 2031-03-04|a@example.org", Details: map[string]string{"role": "member"}},
		{At: now, Actor: "admin", Action: "project.create", Target: "p1", Details: map[string]string{"name": "proj"}},
		{At: now.Add(time.Second), Actor: "helpdesk", Action: "user.create", Target: "u1"},
		{At: now.Add(2 * time.Second), Actor: "admin", Action: "quota.set", Target: "p1"},
	}
	idOf := make([]int64, len(events))
	for i, e := range events {
		idOf[i] = must(s.AppendEvent(c, e))(t, "AppendEvent")
	}
	tests := []struct {
		name   string
		since  time.Time
		target string
		limit  int
		want   []int // indexes into events, in the expected order
	}{
		{"all", time.Time{}, "", 0, []int{1, 2, 0, 3}},
		{"since is inclusive", now.Add(time.Second), "", 0, []int{2, 0, 3}},
		{"target", time.Time{}, "p1", 0, []int{1, 0, 3}},
		{"target and limit", time.Time{}, "p1", 2, []int{1, 0}},
		{"nothing", now.Add(time.Hour), "", 0, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := must(s.Events(c, tc.since, tc.target, tc.limit))(t, "Events")
			if len(got) != len(tc.want) {
				t.Fatalf("Events returned %d events, want %d", len(got), len(tc.want))
			}
			for i, w := range tc.want {
				g, e := got[i], events[w]
				if g.ID != idOf[w] || g.Actor != e.Actor || g.Action != e.Action || g.Target != e.Target ||
					g.Source != e.Source || !maps.Equal(g.Details, e.Details) {
					t.Errorf("event %d = %+v, want ID %d %+v", i, g, idOf[w], e)
				}
				checkTime(t, "event At", g.At, e.At)
			}
		})
	}
	if !slices.IsSorted(idOf) {
		t.Errorf("AppendEvent IDs %v are not increasing", idOf)
	}
}

func testLocks(t *testing.T, s store.Store) {
	c := ctx(t)
	now := base()
	ttl := time.Minute
	steps := []struct {
		name    string
		op      func() error
		want    error
		invalid bool // want some error, not a sentinel
	}{
		{"acquire free", func() error { return s.AcquireLock(c, "import", "a", now, ttl) }, nil, false},
		{"held by another", func() error { return s.AcquireLock(c, "import", "b", now.Add(ttl/2), ttl) }, store.ErrConflict, false},
		{"other name is free", func() error { return s.AcquireLock(c, "reminders", "b", now, ttl) }, nil, false},
		{"owner extends", func() error { return s.AcquireLock(c, "import", "a", now.Add(ttl/2), ttl) }, nil, false},
		{"still held at the first expiry", func() error { return s.AcquireLock(c, "import", "b", now.Add(ttl), ttl) }, store.ErrConflict, false},
		{"stolen after expiry", func() error { return s.AcquireLock(c, "import", "b", now.Add(ttl/2+ttl), ttl) }, nil, false},
		{"old owner refused", func() error { return s.AcquireLock(c, "import", "a", now.Add(ttl/2+ttl), ttl) }, store.ErrConflict, false},
		{"release by wrong owner", func() error { return s.ReleaseLock(c, "import", "a") }, store.ErrConflict, false},
		{"release by owner", func() error { return s.ReleaseLock(c, "import", "b") }, nil, false},
		{"release twice", func() error { return s.ReleaseLock(c, "import", "b") }, store.ErrConflict, false},
		{"acquire after release", func() error { return s.AcquireLock(c, "import", "a", now.Add(ttl/2+ttl), ttl) }, nil, false},
		{"no TTL", func() error { return s.AcquireLock(c, "x", "a", now, 0) }, nil, true},
	}
	for _, st := range steps { // in order: each step depends on the ones before
		err := st.op()
		switch {
		case st.invalid:
			if err == nil {
				t.Errorf("%s: succeeded, want an error", st.name)
			}
		case st.want == nil && err != nil:
			t.Errorf("%s: %v", st.name, err)
		case st.want != nil:
			isErr(t, st.name, err, st.want)
		}
	}
}

func testPing(t *testing.T, s store.Store) {
	ok(t, "Ping", s.Ping(ctx(t)))
}
