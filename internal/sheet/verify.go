package sheet

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// repairRounds bounds how often WriteBatch reads back and repairs one
// batch: rows that keep moving under it are reported, not chased forever.
const repairRounds = 3

// written is a write's cells as they landed: in row, as the write call
// reported.
type written struct {
	w     int // index into writes
	row   int
	cells map[int]string
}

// landed is a set of cells written to a row, meant for the row with
// identity id: a write's outcome (w >= 0) and/or cells put back into a row
// that received another row's outcome (damage).
type landed struct {
	w       int // index of the write whose outcome this is; -1: only a restore
	cause   int // index of the write whose results get damage these cells do
	row     int
	id      Identity
	outcome map[int]string // the write's cells
	restore map[int]string // cells put back
	damage  []*Damage      // what restore repairs
}

// cells is what is written to the row: the restores, and the row's own
// outcome over them.
func (l *landed) cells() map[int]string {
	out := maps.Clone(l.restore)
	if out == nil {
		out = map[int]string{}
	}
	maps.Copy(out, l.outcome)
	return out
}

// verify reads the written rows back and checks that each still carries
// the identity it was written for. A write that landed in another row is
// written again where its row is now, and the cells it overwrote are put
// back from before (the read that located the writes) when that row was in
// it; repairs are checked the same way, at most repairRounds times. It
// fills in results.
func (g *Google) verify(ctx context.Context, b *backoff, before *Table, writes []Write, results []WriteResult, done []written) {
	var todo []*landed
	for _, d := range done {
		results[d.w].Row = d.row
		todo = append(todo, &landed{w: d.w, cause: d.w, row: d.row, id: writes[d.w].ID, outcome: d.cells})
	}
	intended := map[Identity]map[int]string{}
	for _, l := range todo {
		intended[key(l.id)] = l.outcome
	}
	damages := make([][]*Damage, len(results))
	defer func() {
		for i, ds := range damages {
			for _, d := range ds {
				results[i].Damage = append(results[i].Damage, *d)
			}
		}
	}()
	unverified := func(ls []*landed, err error) {
		for _, l := range ls {
			if l.w >= 0 && results[l.w].Err == nil {
				results[l.w].Unverified = err
			}
			for _, d := range l.damage {
				d.Restored = false
			}
		}
	}
	for round := 1; len(todo) > 0; round++ {
		after, err := g.read(ctx, b)
		if err != nil {
			unverified(todo, fmt.Errorf("reading the rows back: %w", err))
			return
		}
		if !slices.EqualFunc(before.Header, after.Header, func(a, b string) bool { return strings.TrimSpace(a) == strings.TrimSpace(b) }) {
			unverified(todo, errors.New("the header row changed while the rows were written; check the written rows by hand"))
			return
		}
		fix := map[int]*landed{}
		add := func(l *landed) {
			f := fix[l.row]
			if f == nil {
				fix[l.row] = l
				return
			}
			// One row, two repairs: its own outcome goes over the cells
			// put back (cells() merges them so).
			if l.w >= 0 {
				f.w, f.outcome = l.w, l.outcome
			}
			if f.restore == nil {
				f.restore = map[int]string{}
			}
			maps.Copy(f.restore, l.restore)
			f.damage = append(f.damage, l.damage...)
		}
		for _, l := range todo {
			r, ok := after.Row(l.row)
			idOK := ok && identityOf(after, g.cols, r).same(l.id)
			if idOK && holds(after, l.row, l.cells()) {
				if l.w >= 0 {
					results[l.w].Row = l.row
				}
				continue // confirmed: restores included
			}
			// The row is not where the cells went.
			if l.w >= 0 {
				q, ferr := findRow(after, g.cols, l.id)
				switch {
				case ferr != nil:
					results[l.w] = WriteResult{Moved: true, Err: fmt.Errorf(
						"row %d (%s) moved while its outcome was written, which landed in row %d instead: %w", writes[l.w].Row, l.id, l.row, ferr)}
				case holds(after, q, l.outcome):
					results[l.w].Row = q // written in place; the row moved since
				default:
					results[l.w].Row, results[l.w].Moved = q, true
					add(&landed{w: l.w, cause: l.w, row: q, id: l.id, outcome: l.outcome})
				}
			}
			for _, d := range l.damage {
				// A restore that missed its row: find the row again.
				if q, ferr := findRow(after, g.cols, d.ID); ferr == nil && !d.ID.empty() {
					add(&landed{w: -1, cause: l.cause, row: q, id: d.ID, restore: cellsOf(after, d.Previous), damage: []*Damage{d}})
				} else {
					d.Restored = false
				}
			}
			cells := l.cells()
			var victims []Row
			switch {
			case !idOK && ok && holds(after, l.row, cells):
				victims = []Row{r} // in someone else's row, now where ours was
			case idOK:
				// The row is back where it was written, without the
				// values: they went to a row that has left since.
				victims = strays(after, g.cols, intended, l.row, cells)
			}
			for _, r := range victims {
				// Our cells are in someone else's row: put back what it had.
				victim := identityOf(after, g.cols, r)
				d := &Damage{Row: r.Number, ID: victim, Columns: headers(after, cells)}
				damages[l.cause] = append(damages[l.cause], d)
				old, known := previous(before, g.cols, victim, r, cells)
				if known {
					d.Restored = true
				} else {
					// Unknown: clear the cells rather than leave another
					// row's outcome there (it would pass for done).
					old = make(map[int]string, len(cells))
					for c := range cells {
						old[c] = ""
					}
				}
				d.Previous = named(after, old)
				if maps.Equal(old, cells) {
					continue // it held these values already
				}
				add(&landed{w: -1, cause: l.cause, row: r.Number, id: victim, restore: old, damage: []*Damage{d}})
			}
		}
		if len(fix) == 0 {
			return
		}
		todo = slices.Collect(maps.Values(fix))
		slices.SortFunc(todo, func(a, b *landed) int { return a.row - b.row })
		if round >= repairRounds {
			for _, l := range todo {
				if l.w >= 0 {
					results[l.w] = WriteResult{Moved: true, Err: fmt.Errorf(
						"row %d (%s) kept moving while its outcome was written; check it by hand: %w", writes[l.w].Row, l.id, ErrRowNotFound)}
				}
				for _, d := range l.damage {
					d.Restored = false
				}
			}
			return
		}
		if err := g.putLocated(ctx, b, &todo); err != nil {
			unverified(todo, fmt.Errorf("repairing rows that moved: %w", err))
			return
		}
		before = after
	}
}

// putLocated writes ls; every retry first re-reads the sheet and finds
// each row again by identity (dropping those no longer found).
func (g *Google) putLocated(ctx context.Context, b *backoff, ls *[]*landed) error {
	for {
		targets := make([]target, len(*ls))
		for i, l := range *ls {
			targets[i] = target{row: l.row, cells: l.cells()}
		}
		err := g.put(ctx, targets)
		if err == nil {
			return nil
		}
		retry, serr := b.again(ctx, err)
		if serr != nil {
			return serr
		}
		if !retry {
			return g.explain(err, quoteSheet(g.worksheet))
		}
		b.reset()
		t, err := g.read(ctx, b)
		if err != nil {
			return err
		}
		kept := (*ls)[:0]
		for _, l := range *ls {
			if q, ferr := findRow(t, g.cols, l.id); ferr == nil && !l.id.empty() {
				l.row = q
				kept = append(kept, l)
			}
		}
		*ls = kept
	}
}

// strays finds the rows other than skip that hold every cell of cells
// without that being their own outcome.
func strays(t *Table, cols identityCols, intended map[Identity]map[int]string, skip int, cells map[int]string) []Row {
	var out []Row
	for _, r := range t.Rows {
		if r.Number == skip || !holds(t, r.Number, cells) {
			continue
		}
		if own, ok := intended[key(identityOf(t, cols, r))]; ok && maps.Equal(own, cells) {
			continue
		}
		out = append(out, r)
	}
	return out
}

func key(id Identity) Identity {
	return Identity{strings.TrimSpace(id.Timestamp), strings.ToLower(strings.TrimSpace(id.Email))}
}

// holds reports whether row n of t has every cell of cells.
func holds(t *Table, n int, cells map[int]string) bool {
	r, ok := t.Row(n)
	if !ok {
		return false
	}
	for c, v := range cells {
		// RAW text reads back as written; trimming only spares a
		// false alarm should a display format pad it.
		if strings.TrimSpace(r.At(c)) != strings.TrimSpace(v) {
			return false
		}
	}
	return true
}

// previous returns what row r (now holding another row's cells) had in
// those columns before the write: from before, where a row with its
// identity was; or nothing for a row that has no identity and nothing
// else in it (a blank row inserted there). known is false otherwise.
func previous(before *Table, cols identityCols, id Identity, r Row, cells map[int]string) (map[int]string, bool) {
	old := make(map[int]string, len(cells))
	if id.empty() {
		for i, v := range r.Cells {
			if _, ours := cells[i]; !ours && strings.TrimSpace(v) != "" {
				return nil, false
			}
		}
		for c := range cells {
			old[c] = ""
		}
		return old, true
	}
	n, err := findRow(before, cols, id)
	if err != nil {
		return nil, false
	}
	br, _ := before.Row(n)
	for c := range cells {
		old[c] = br.At(c)
	}
	return old, true
}

func headers(t *Table, cells map[int]string) []string {
	var out []string
	for _, c := range slices.Sorted(maps.Keys(cells)) {
		if c < len(t.Header) {
			out = append(out, t.Header[c])
		}
	}
	return out
}

func named(t *Table, cells map[int]string) map[string]string {
	out := make(map[string]string, len(cells))
	for c, v := range cells {
		if c < len(t.Header) {
			out[t.Header[c]] = v
		}
	}
	return out
}

func cellsOf(t *Table, byName map[string]string) map[int]string {
	out := make(map[int]string, len(byName))
	for h, v := range byName {
		if i, ok := t.Index(h); ok {
			out[i] = v
		}
	}
	return out
}
