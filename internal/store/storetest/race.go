package storetest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/kaizen-onboard/kaizen/internal/store"
)

const racers = 16

// oneWinner fails unless exactly one of errs is nil and the rest are
// ErrConflict.
func oneWinner(t *testing.T, what string, errs []error) {
	t.Helper()
	wins := 0
	for _, err := range errs {
		switch {
		case err == nil:
			wins++
		case !errors.Is(err, store.ErrConflict):
			t.Errorf("%s: unexpected error: %v", what, err)
		}
	}
	if wins != 1 {
		t.Errorf("%s: %d of %d racers won, want exactly 1", what, wins, len(errs))
	}
}

func testRaceConsume(t *testing.T, s store.Store) {
	c := ctx(t)
	tok := tokenFor("alice", base())
	ok(t, "PutToken", s.PutToken(c, tok))
	oneWinner(t, "ConsumeToken", race(racers, func(int) error {
		return s.ConsumeToken(c, tok.Hash, base())
	}))
}

func testRaceRecordAttempt(t *testing.T, s store.Store) {
	c := ctx(t)
	const max = 5
	tok := tokenFor("alice", base())
	ok(t, "PutToken", s.PutToken(c, tok))
	var mu sync.Mutex
	var counts []int
	lasts := 0
	errs := race(racers, func(int) error {
		n, last, err := s.RecordAttempt(c, tok.Hash, base(), max)
		if err == nil {
			mu.Lock()
			defer mu.Unlock()
			counts = append(counts, n)
			if last {
				lasts++
			}
		}
		return err
	})
	for _, err := range errs {
		if err != nil && !errors.Is(err, store.ErrConflict) {
			t.Errorf("RecordAttempt: unexpected error: %v", err)
		}
	}
	slices.Sort(counts)
	if want := []int{1, 2, 3, 4, 5}; !slices.Equal(counts, want) || lasts != 1 {
		t.Errorf("racing RecordAttempt counted %v with %d told it was the last, want %v with 1", counts, lasts, want)
	}
}

func testRacePutToken(t *testing.T, s store.Store) {
	c := ctx(t)
	toks := make([]store.Token, racers)
	for i := range toks {
		toks[i] = tokenFor("alice", base().Add(time.Duration(i)*time.Second))
	}
	for i, err := range race(racers, func(i int) error { return s.PutToken(c, toks[i]) }) {
		if err != nil {
			t.Errorf("PutToken %d: %v", i, err)
		}
	}
	kept := must(s.GetTokenByUser(c, "alice"))(t, "GetTokenByUser")
	left := 0
	for _, tk := range toks {
		if _, err := s.GetToken(c, tk.Hash); err == nil {
			left++
			checkToken(t, kept, tk)
		}
	}
	if left != 1 {
		t.Errorf("%d tokens left for the user after racing re-issues, want 1", left)
	}
}

func testRaceEnqueue(t *testing.T, s store.Store) {
	c := ctx(t)
	var mu sync.Mutex
	idSet := make(map[int64]bool)
	created := 0
	errs := race(racers, func(int) error {
		id, isNew, err := s.Enqueue(c, message("welcome:alice", base()))
		mu.Lock()
		defer mu.Unlock()
		idSet[id] = true
		if isNew {
			created++
		}
		return err
	})
	for _, err := range errs {
		ok(t, "Enqueue", err)
	}
	if len(idSet) != 1 || created != 1 {
		t.Errorf("racing Enqueue of one key: IDs %v, created %d times; want one ID, created once", idSet, created)
	}
}

func testRaceClaim(t *testing.T, s store.Store) {
	c := ctx(t)
	const n = 60
	want := make([]int64, n)
	for i := range n {
		want[i] = enqueue(t, s, message(fmt.Sprintf("m%02d", i), base()))
	}
	var mu sync.Mutex
	var got []int64
	errs := race(racers/2, func(i int) error {
		for round := 0; ; round++ {
			ms, err := s.Claim(c, base(), time.Hour, fmt.Sprintf("sender-%d-%d", i, round), 3)
			if err != nil || len(ms) == 0 {
				return err
			}
			mu.Lock()
			got = append(got, ids(ms)...)
			mu.Unlock()
		}
	})
	for _, err := range errs {
		ok(t, "Claim", err)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("racing claimers took %d messages %v, want each of %d exactly once", len(got), got, n)
	}
}

func testRaceRecordOnce(t *testing.T, s store.Store) {
	c := ctx(t)
	oneWinner(t, "RecordOnce", race(racers, func(int) error {
		first, err := s.RecordOnce(c, "digest|2031-03-04", base())
		if err == nil && !first {
			return store.ErrConflict
		}
		return err
	}))
}

func testRaceAcquireLock(t *testing.T, s store.Store) {
	c := ctx(t)
	oneWinner(t, "AcquireLock", race(racers, func(i int) error {
		return s.AcquireLock(c, "import", fmt.Sprintf("owner-%d", i), base(), time.Minute)
	}))
}
