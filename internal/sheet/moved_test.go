package sheet

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kaizen-onboard/kaizen/internal/testenv/sheetsfake"
)

// movedHeader is the grid of the moved-row tests: the identity, a PIN the
// person typed, and two cells the write-back sets.
var movedHeader = []string{"Timestamp", "Email", "PIN", "Status", "User ID"}

type person struct{ ts, email, pin string }

func (p person) id() Identity { return Identity{p.ts, p.email} }
func (p person) cells() []string {
	return []string{p.ts, p.email, p.pin}
}

// movedFix is a sheet of people and the writes of an import's outcomes
// for the first n of them (the others are typed rows kaizen does not
// write, such as a row someone inserts).
type movedFix struct {
	*gfix
	people []person
	writes []Write
}

func newMovedFix(t *testing.T, people []person, n int, mod ...func(*Options)) *movedFix {
	t.Helper()
	grid := [][]string{movedHeader}
	for _, p := range people {
		grid = append(grid, p.cells())
	}
	fx := &movedFix{gfix: newGFix(t, tab, grid, mod...), people: people}
	for i, p := range people[:n] {
		fx.writes = append(fx.writes, Write{Row: i + 2, ID: p.id(), Values: map[string]string{
			"Status": "done", "User ID": "uid-" + p.email, "PIN": "(registered)"}})
	}
	return fx
}

// rowsByEmail is the fake's grid keyed by email.
func (fx *movedFix) rowsByEmail(t *testing.T) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, r := range fx.fake.Rows(book, tab)[1:] {
		if len(r) > 1 && r[1] != "" {
			for len(r) < len(movedHeader) {
				r = append(r, "")
			}
			if _, dup := out[r[1]]; dup {
				t.Fatalf("two rows of %s", r[1])
			}
			out[r[1]] = r
		}
	}
	return out
}

// checkOutcomes: every written person's row has its own outcome; every
// other row still has its typed PIN and no outcome, unless lost lists it
// (its loss was reported).
func (fx *movedFix) checkOutcomes(t *testing.T, results []WriteResult, lost ...string) {
	t.Helper()
	rows := fx.rowsByEmail(t)
	for i, w := range fx.writes {
		if results[i].Err != nil {
			t.Errorf("write %d (%s): %v", i, w.ID.Email, results[i].Err)
		}
		r := rows[w.ID.Email]
		if want := []string{w.ID.Timestamp, w.ID.Email, "(registered)", "done", "uid-" + w.ID.Email}; !slices.Equal(r, want) {
			t.Errorf("row of %s = %q, want its own outcome %q", w.ID.Email, r, want)
		}
	}
	for _, p := range fx.people[len(fx.writes):] {
		r := rows[p.email]
		if slices.Contains(lost, p.email) {
			if want := []string{p.ts, p.email}; !slices.Equal(r[:2], want) || strings.Join(r[2:], "") != "" {
				t.Errorf("row of %s = %q, want its lost cells cleared", p.email, r)
			}
			continue
		}
		if want := []string{p.ts, p.email, p.pin, "", ""}; !slices.Equal(r, want) {
			t.Errorf("row of %s = %q, want it untouched %q", p.email, r, want)
		}
	}
	if m := fx.fake.DeveloperMetadata(book, tab); len(m) != 0 {
		t.Errorf("anchors left in the sheet: %v", m)
	}
	var reported []string
	for _, res := range results {
		for _, d := range res.Damage {
			if !d.Restored {
				reported = append(reported, d.ID.Email)
			}
		}
	}
	slices.Sort(reported)
	slices.Sort(lost)
	if !slices.Equal(reported, lost) {
		t.Errorf("rows reported lost = %v, want %v; results %+v", reported, lost, results)
	}
}

func people(n int) []person {
	var out []person
	for i := range n {
		out = append(out, person{fmt.Sprintf("2024-01-%02d 10:00", i+1), fmt.Sprintf("p%02d@example.com", i), fmt.Sprint(1000 + i)})
	}
	return out
}

// onFirst runs fn before the fake serves the first request of op.
func onFirst(fake *sheetsfake.Fake, op string, fn func()) {
	var once sync.Once
	fake.SetHook(func(got string) {
		if got == op {
			once.Do(fn)
		}
	})
}

// noDamage fails unless no result reports a move or damage.
func noDamage(t *testing.T, res []WriteResult) {
	t.Helper()
	for i, r := range res {
		if r.Moved || len(r.Damage) > 0 {
			t.Errorf("result %d = %+v, want it written in place", i, r)
		}
	}
}

func TestGoogleWriteBatchMovedRows(t *testing.T) {
	t.Parallel()
	zed := person{"2024-02-01 09:00", "zed@example.com", "7777"}
	// The moments of one write round, as the calls it makes.
	const (
		anchoring = "spreadsheets.batchUpdate"       // right after the re-read
		writing   = "values.batchUpdateByDataFilter" // after the anchored rows were checked
	)
	for _, at := range []string{anchoring, writing} {
		t.Run("row inserted above before "+at, func(t *testing.T) {
			t.Parallel()
			fx := newMovedFix(t, people(4), 4)
			fx.people = append(fx.people, zed) // typed in only later
			onFirst(fx.fake, at, func() { fx.fake.InsertRow(book, tab, 2, zed.cells()) })
			res, err := fx.g.WriteBatch(t.Context(), fx.writes)
			if err != nil {
				t.Fatal(err)
			}
			// Before the anchoring: the anchors miss, the check sees it
			// and a new round anchors again. Before the write: the
			// anchors moved with their rows. Either way nothing is lost.
			fx.checkOutcomes(t, res)
			noDamage(t, res)
		})
		t.Run("row deleted above before "+at, func(t *testing.T) {
			t.Parallel()
			dave := person{"2023-12-31 08:00", "dave@example.com", "4444"}
			fx := newMovedFix(t, append([]person{dave}, append(people(3), zed)...), 0)
			for i, p := range fx.people[1:4] {
				fx.writes = append(fx.writes, Write{Row: i + 3, ID: p.id(), Values: map[string]string{
					"Status": "done", "User ID": "uid-" + p.email, "PIN": "(registered)"}})
			}
			fx.people = []person{fx.people[1], fx.people[2], fx.people[3], zed}
			onFirst(fx.fake, at, func() { fx.fake.DeleteRow(book, tab, 2) })
			res, err := fx.g.WriteBatch(t.Context(), fx.writes)
			if err != nil {
				t.Fatal(err)
			}
			fx.checkOutcomes(t, res)
			noDamage(t, res)
		})
	}
	t.Run("anchored row deleted before the write", func(t *testing.T) {
		t.Parallel()
		fx := newMovedFix(t, people(3), 3)
		onFirst(fx.fake, writing, func() { fx.fake.DeleteRow(book, tab, 3) })
		res, err := fx.g.WriteBatch(t.Context(), fx.writes)
		if err != nil {
			t.Fatal(err)
		}
		if !errors.Is(res[1].Err, ErrRowNotFound) || res[0].Err != nil || res[2].Err != nil {
			t.Fatalf("results %+v, want only the deleted row not found", res)
		}
		fx.writes = slices.Delete(fx.writes, 1, 2)
		fx.people = slices.Delete(fx.people, 1, 2)
		fx.checkOutcomes(t, slices.Delete(res, 1, 2))
	})
	t.Run("row inserted above during a 429 backoff", func(t *testing.T) {
		t.Parallel()
		var fx *movedFix
		var once sync.Once
		fx = newMovedFix(t, people(4), 4, func(o *Options) {
			o.Retry.Sleep = func(ctx context.Context, d time.Duration) error {
				once.Do(func() { fx.fake.InsertRow(book, tab, 2, zed.cells()) })
				return nil
			}
		})
		fx.people = append(fx.people, zed)
		onFirst(fx.fake, writing, func() { fx.fake.FailNext(1, 429) })
		res, err := fx.g.WriteBatch(t.Context(), fx.writes)
		if err != nil {
			t.Fatal(err)
		}
		fx.checkOutcomes(t, res) // the retry re-located every row
		noDamage(t, res)
		for i, r := range res {
			if r.Row != i+3 {
				t.Errorf("result %d = %+v, want row %d", i, r, i+3)
			}
		}
	})
	for _, at := range []string{anchoring, writing} {
		t.Run("whole sheet sorted before "+at, func(t *testing.T) {
			t.Parallel()
			// Two typed rows kaizen does not write are among them: their
			// PINs must survive whatever lands on them.
			fx := newMovedFix(t, people(8), 6)
			onFirst(fx.fake, at, func() { fx.fake.SortRows(book, tab, 1, true) })
			res, err := fx.g.WriteBatch(t.Context(), fx.writes)
			if err != nil {
				t.Fatal(err)
			}
			fx.checkOutcomes(t, res)
			if at == anchoring {
				noDamage(t, res) // caught by the check before anything was written
			}
		})
	}
	t.Run("sorted at the write and back before the read-back", func(t *testing.T) {
		t.Parallel()
		fx := newMovedFix(t, people(6), 6)
		var n int
		var mu sync.Mutex
		fx.fake.SetHook(func(op string) {
			mu.Lock()
			defer mu.Unlock()
			switch {
			case op == writing && n == 0:
				fx.fake.SortRows(book, tab, 1, true)
				n++
			case op == "values.get" && n == 1:
				fx.fake.SortRows(book, tab, 1, false)
				n++
			}
		})
		res, err := fx.g.WriteBatch(t.Context(), fx.writes)
		if err != nil {
			t.Fatal(err)
		}
		// The read-back sees the rows in place, holding their neighbours'
		// outcomes: each is repaired.
		fx.checkOutcomes(t, res)
	})
	t.Run("a row typed in and the sheet sorted at the write", func(t *testing.T) {
		t.Parallel()
		fx := newMovedFix(t, people(4), 4)
		fx.people = append(fx.people, zed)
		onFirst(fx.fake, writing, func() {
			fx.fake.InsertRow(book, tab, 6, zed.cells())
			fx.fake.SortRows(book, tab, 1, true) // zed first, under the first anchor
		})
		res, err := fx.g.WriteBatch(t.Context(), fx.writes)
		if err != nil {
			t.Fatal(err)
		}
		// zed was in no read before the write: its PIN cannot be known, so
		// the cells are cleared and the loss reported.
		fx.checkOutcomes(t, res, zed.email)
	})
}

// fakeClock is a clock for the fake's quota minutes that the client's
// sleeps advance, so backing off a minute takes no real time.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(_ context.Context, d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return nil
}

func TestGoogleQuota(t *testing.T) {
	t.Parallel()
	t.Run("Retry-After is honoured", func(t *testing.T) {
		t.Parallel()
		clock := &fakeClock{now: time.Date(2026, 3, 14, 14, 5, 40, 0, time.UTC)}
		var slept []time.Duration
		fx := newGFix(t, tab, signups, func(o *Options) {
			o.Retry.Attempts = 0
			o.Retry.Sleep = func(ctx context.Context, d time.Duration) error {
				slept = append(slept, d)
				return clock.Sleep(ctx, d)
			}
		})
		fx.fake.SetQuota(sheetsfake.Quota{ReadsPerMinute: 1, Now: clock.Now, RetryAfter: true})
		for range 2 {
			if _, err := fx.g.Read(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
		if !slices.Equal(slept, []time.Duration{20 * time.Second}) {
			t.Errorf("slept %v, want the 20s Retry-After asked", slept)
		}
	})
	t.Run("a budget shorter than the Retry-After gives up at once", func(t *testing.T) {
		t.Parallel()
		clock := &fakeClock{now: time.Date(2026, 3, 14, 14, 5, 0, 0, time.UTC)}
		fx := newGFix(t, tab, signups, func(o *Options) {
			o.Retry.Attempts, o.Retry.MaxWait, o.Retry.Sleep = 0, 10*time.Second, clock.Sleep
		})
		fx.fake.SetQuota(sheetsfake.Quota{ReadsPerMinute: 1, Now: clock.Now, RetryAfter: true})
		fx.g.Read(t.Context())
		_, err := fx.g.Read(t.Context())
		if err == nil || !strings.Contains(err.Error(), "RESOURCE_EXHAUSTED") && !strings.Contains(err.Error(), "429") {
			t.Fatalf("Read = %v, want the 429", err)
		}
		if !clock.Now().Equal(time.Date(2026, 3, 14, 14, 5, 0, 0, time.UTC)) {
			t.Errorf("waited until %v in vain", clock.Now())
		}
	})
	t.Run("without Retry-After, backoff outlasts the minute within the budget", func(t *testing.T) {
		t.Parallel()
		clock := &fakeClock{now: time.Date(2026, 3, 14, 14, 5, 0, 0, time.UTC)}
		fx := newMovedFix(t, people(40), 40, func(o *Options) {
			o.Retry = RetryPolicy{Sleep: clock.Sleep} // the defaults: 2m in all
		})
		fx.fake.SetQuota(sheetsfake.Quota{ReadsPerMinute: 60, WritesPerMinute: 60, Now: clock.Now})
		before := len(fx.fake.CellWrites(book))
		// One write per call: 40 batches, 80 reads and 40 writes.
		var res []WriteResult
		for _, w := range fx.writes {
			r, err := fx.g.WriteBatch(t.Context(), []Write{w})
			if err != nil {
				t.Fatalf("WriteBatch %s: %v", w.ID.Email, err)
			}
			res = append(res, r...)
		}
		if fx.fake.QuotaRefusals() == 0 {
			t.Error("the quota never refused a request; the test proves nothing")
		}
		fx.checkOutcomes(t, res)
		perCell := map[string]int{}
		for _, cw := range fx.fake.CellWrites(book)[before:] {
			perCell[fmt.Sprint(cw.Row, cw.Col)]++
		}
		for k, n := range perCell {
			if n != 1 {
				t.Errorf("cell %s written %d times, want once", k, n)
			}
		}
		if len(perCell) != 3*40 {
			t.Errorf("%d cells written, want %d", len(perCell), 3*40)
		}
	})
}
