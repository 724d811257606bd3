package sheet

import (
	"context"
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

func TestGoogleWriteBatchMovedRows(t *testing.T) {
	t.Parallel()
	zed := person{"2024-02-01 09:00", "zed@example.com", "7777"}
	t.Run("row inserted above between the re-read and the write", func(t *testing.T) {
		t.Parallel()
		fx := newMovedFix(t, people(4), 4)
		fx.people = append(fx.people, zed) // typed in only later
		onFirst(fx.fake, "values.batchUpdate", func() { fx.fake.InsertRow(book, tab, 2, zed.cells()) })
		res, err := fx.g.WriteBatch(t.Context(), fx.writes)
		if err != nil {
			t.Fatal(err)
		}
		// zed's row was not in the re-read: its PIN cannot be known, so it
		// is cleared and reported; everyone else ends right.
		fx.checkOutcomes(t, res, zed.email)
		if !res[0].Moved || len(res[0].Damage) != 1 || res[0].Damage[0].Row != 2 ||
			!slices.Equal(res[0].Damage[0].Columns, []string{"PIN", "Status", "User ID"}) {
			t.Errorf("result 0 = %+v, want moved with zed's row 2 damaged in PIN, Status, User ID", res[0])
		}
	})
	t.Run("row deleted above between the re-read and the write", func(t *testing.T) {
		t.Parallel()
		dave := person{"2023-12-31 08:00", "dave@example.com", "4444"}
		fx := newMovedFix(t, append([]person{dave}, append(people(3), zed)...), 0)
		for i, p := range fx.people[1:4] {
			fx.writes = append(fx.writes, Write{Row: i + 3, ID: p.id(), Values: map[string]string{
				"Status": "done", "User ID": "uid-" + p.email, "PIN": "(registered)"}})
		}
		// dave is deleted: everyone moves up one, zed into the last write's row.
		fx.people = []person{fx.people[1], fx.people[2], fx.people[3], zed}
		onFirst(fx.fake, "values.batchUpdate", func() { fx.fake.DeleteRow(book, tab, 2) })
		res, err := fx.g.WriteBatch(t.Context(), fx.writes)
		if err != nil {
			t.Fatal(err)
		}
		fx.checkOutcomes(t, res) // zed was in the re-read: restored
		if d := res[2].Damage; len(d) != 1 || !d[0].Restored || d[0].ID.Email != zed.email {
			t.Errorf("last write's damage = %+v, want zed's row restored", d)
		}
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
		onFirst(fx.fake, "values.batchUpdate", func() { fx.fake.FailNext(1, 429) })
		res, err := fx.g.WriteBatch(t.Context(), fx.writes)
		if err != nil {
			t.Fatal(err)
		}
		fx.checkOutcomes(t, res) // the retry re-located every row: nothing to repair
		for i, r := range res {
			if r.Moved || len(r.Damage) > 0 || r.Row != i+3 {
				t.Errorf("result %d = %+v, want row %d written in place", i, r, i+3)
			}
		}
	})
	t.Run("whole sheet sorted between the re-read and the write", func(t *testing.T) {
		t.Parallel()
		// Two typed rows kaizen does not write are among them: their PINs
		// must survive whatever lands on them.
		ps := people(8)
		fx := newMovedFix(t, ps, 6)
		onFirst(fx.fake, "values.batchUpdate", func() { fx.fake.SortRows(book, tab, 1, true) })
		res, err := fx.g.WriteBatch(t.Context(), fx.writes)
		if err != nil {
			t.Fatal(err)
		}
		fx.checkOutcomes(t, res)
		restored := 0
		for _, r := range res {
			for _, d := range r.Damage {
				if d.Restored {
					restored++
				}
			}
		}
		if restored == 0 {
			t.Errorf("no damage reported after a sort; results %+v", res)
		}
	})
	t.Run("sorted again right after the write", func(t *testing.T) {
		t.Parallel()
		fx := newMovedFix(t, people(6), 6)
		var n int
		var mu sync.Mutex
		fx.fake.SetHook(func(op string) {
			mu.Lock()
			defer mu.Unlock()
			if op == "values.batchUpdate" {
				n++
				if n == 1 {
					fx.fake.SortRows(book, tab, 1, true)
				}
			}
			if op == "values.get" && n == 1 {
				fx.fake.SortRows(book, tab, 1, false) // back, before the read-back
				n++
			}
		})
		res, err := fx.g.WriteBatch(t.Context(), fx.writes)
		if err != nil {
			t.Fatal(err)
		}
		// The read-back saw the rows back in place, but holding their
		// neighbours' outcomes: each is repaired.
		fx.checkOutcomes(t, res)
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
