package storetest

import (
	"bytes"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/kaizen-onboard/kaizen/internal/store"
)

// pinWindow is the suite's wrong-PIN window.
const pinWindow = 24 * time.Hour

// testPINFailureWindow: wrong PINs are counted per user in a sliding
// window (now-window, now].
func testPINFailureWindow(t *testing.T, s store.Store) {
	c := ctx(t)
	record := func(user string, at time.Time) int {
		t.Helper()
		return must(s.RecordPINFailure(c, user, at, pinWindow))(t, "RecordPINFailure "+user)
	}
	steps := []struct {
		name string
		at   time.Duration // after base
		want int
	}{
		{"first", 0, 1},
		{"an hour later", time.Hour, 2},
		{"two hours later", 2 * time.Hour, 3},
		{"the same instant again", 2 * time.Hour, 4},
		{"a day after the first: it is out", pinWindow, 4},
		{"a day after the second and a second", pinWindow + time.Hour + time.Second, 4},
		{"much later: only this one", 10 * pinWindow, 1},
	}
	for _, st := range steps {
		if got := record("alice", base().Add(st.at)); got != st.want {
			t.Errorf("%s: count %d, want %d", st.name, got, st.want)
		}
	}
	// Users are counted apart.
	if got := record("bob", base().Add(10*pinWindow)); got != 1 {
		t.Errorf("bob's first wrong PIN counted %d, want 1", got)
	}
	// A failure counted does not lock anything by itself.
	if _, locked := must2(s.PINLock(c, "alice"))(t, "PINLock"); locked {
		t.Error("counting wrong PINs locked the PIN")
	}
	if _, err := s.RecordPINFailure(c, "", base(), pinWindow); err == nil {
		t.Error("RecordPINFailure accepted an empty user ID")
	}
	if _, err := s.RecordPINFailure(c, "alice", base(), 0); err == nil {
		t.Error("RecordPINFailure accepted a zero window")
	}
}

// testPINLock: a lock keeps its first time, outlives the window, and only
// ResetPIN lifts it, with the count.
func testPINLock(t *testing.T, s store.Store) {
	c := ctx(t)
	if _, locked := must2(s.PINLock(c, "alice"))(t, "PINLock of a user never seen"); locked {
		t.Error("an unknown user's PIN is locked")
	}
	ok(t, "PutPIN", s.PutPIN(c, "alice", []byte("old"), base()))
	for range 3 {
		_ = must(s.RecordPINFailure(c, "alice", base(), pinWindow))(t, "RecordPINFailure")
	}
	at, first := must2(s.LockPIN(c, "alice", base()))(t, "LockPIN")
	if !first {
		t.Error("the first LockPIN did not report locking")
	}
	checkTime(t, "LockPIN's time", at, base())
	at, first = must2(s.LockPIN(c, "alice", base().Add(time.Hour)))(t, "LockPIN again")
	if first {
		t.Error("LockPIN of a locked PIN reported locking it")
	}
	checkTime(t, "the second LockPIN's time", at, base())
	// Long after, out of any window, still locked at the first time.
	at, locked := must2(s.PINLock(c, "alice"))(t, "PINLock")
	if !locked {
		t.Fatal("the PIN is not locked")
	}
	checkTime(t, "PINLock", at, base())
	if _, locked := must2(s.PINLock(c, "bob"))(t, "PINLock bob"); locked {
		t.Error("locking alice locked bob")
	}
	// PutPIN (a password set through a link) does not unlock; nor does
	// replacing a token.
	ok(t, "PutPIN", s.PutPIN(c, "alice", []byte("other"), base().Add(2*time.Hour)))
	ok(t, "PutToken", s.PutToken(c, tokenFor("alice", base())))
	if _, locked := must2(s.PINLock(c, "alice"))(t, "PINLock after PutPIN"); !locked {
		t.Error("PutPIN or PutToken unlocked the PIN")
	}

	ok(t, "ResetPIN", s.ResetPIN(c, "alice", []byte("new"), base().Add(3*time.Hour)))
	if _, locked := must2(s.PINLock(c, "alice"))(t, "PINLock after ResetPIN"); locked {
		t.Error("ResetPIN left the PIN locked")
	}
	if got := must(s.GetPIN(c, "alice"))(t, "GetPIN"); !bytes.Equal(got, []byte("new")) {
		t.Errorf("GetPIN after ResetPIN = %q, want %q", got, "new")
	}
	if got := must(s.RecordPINFailure(c, "alice", base().Add(3*time.Hour), pinWindow))(t, "RecordPINFailure"); got != 1 {
		t.Errorf("the count after ResetPIN went on at %d, want 1", got)
	}
	// A new lock after an unlock has its own time.
	at, first = must2(s.LockPIN(c, "alice", base().Add(4*time.Hour)))(t, "LockPIN after ResetPIN")
	if !first {
		t.Error("LockPIN after ResetPIN did not report locking")
	}
	checkTime(t, "the new lock's time", at, base().Add(4*time.Hour))

	// ResetPIN of a user never seen stores the PIN.
	ok(t, "ResetPIN carol", s.ResetPIN(c, "carol", []byte("c"), base()))
	if got := must(s.GetPIN(c, "carol"))(t, "GetPIN carol"); string(got) != "c" {
		t.Errorf("GetPIN(carol) = %q", got)
	}
	for _, bad := range []struct {
		user string
		hmac []byte
	}{{"", []byte("x")}, {"dave", nil}} {
		if err := s.ResetPIN(c, bad.user, bad.hmac, base()); err == nil {
			t.Errorf("ResetPIN(%q, %q) accepted", bad.user, bad.hmac)
		}
	}
	if _, _, err := s.LockPIN(c, "", base()); err == nil {
		t.Error("LockPIN accepted an empty user ID")
	}
}

// testRaceRecordPINFailure: concurrent wrong PINs for one user get the
// counts 1..n, each once.
func testRaceRecordPINFailure(t *testing.T, s store.Store) {
	c := ctx(t)
	var mu sync.Mutex
	var counts []int
	for _, err := range race(racers, func(int) error {
		n, err := s.RecordPINFailure(c, "alice", base(), pinWindow)
		mu.Lock()
		counts = append(counts, n)
		mu.Unlock()
		return err
	}) {
		ok(t, "RecordPINFailure", err)
	}
	slices.Sort(counts)
	want := make([]int, racers)
	for i := range want {
		want[i] = i + 1
	}
	if !slices.Equal(counts, want) {
		t.Errorf("racing RecordPINFailure counted %v, want %v", counts, want)
	}
}

// testRaceLockPIN: of concurrent lockers exactly one locks, and all see
// its time.
func testRaceLockPIN(t *testing.T, s store.Store) {
	c := ctx(t)
	times := make([]time.Time, racers)
	errs := race(racers, func(i int) error {
		at, locked, err := s.LockPIN(c, "alice", base().Add(time.Duration(i)*time.Second))
		times[i] = at
		if err == nil && !locked {
			return store.ErrConflict
		}
		return err
	})
	oneWinner(t, "LockPIN", errs)
	winner := slices.IndexFunc(errs, func(err error) bool { return err == nil })
	if winner < 0 {
		return
	}
	for i, at := range times {
		if errors.Is(errs[i], store.ErrConflict) {
			checkTime(t, "a losing locker's time", at, base().Add(time.Duration(winner)*time.Second))
		}
	}
	at, _ := must2(s.PINLock(c, "alice"))(t, "PINLock")
	checkTime(t, "PINLock after the race", at, base().Add(time.Duration(winner)*time.Second))
}

// must2 is must for two values.
func must2[A, B any](a A, b B, err error) func(t *testing.T, what string) (A, B) {
	return func(t *testing.T, what string) (A, B) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return a, b
	}
}
