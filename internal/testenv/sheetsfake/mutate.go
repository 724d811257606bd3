package sheetsfake

import (
	"fmt"
	"slices"
	"strings"
)

// SetHook calls fn with the operation name (as RecordedRequest.Op) before
// the fake serves each Sheets API request, outside its lock: fn may edit
// the grid (InsertRow, DeleteRow, SortRows) the way a person editing the
// sheet between two of a client's calls would. nil removes the hook.
func (f *Fake) SetHook(fn func(op string)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hook = fn
}

// InsertRow inserts a row before sheet row n (1-based; n = 2 inserts right
// under the header) holding cells as plain text, shifting the rows below
// down and growing the grid by one row, as "Insert 1 row above" does.
func (f *Fake) InsertRow(id, sheet string, n int, cells []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := f.mustTab(id, sheet)
	if n < 1 || n > t.rows+1 {
		panic(fmt.Sprintf("sheetsfake: InsertRow %d outside the grid of %d rows", n, t.rows))
	}
	for len(t.cells) < n-1 {
		t.cells = append(t.cells, nil)
	}
	row := make([]cell, len(cells))
	for i, v := range cells {
		if v != "" {
			row[i] = cell{kind: cellText, text: v}
		}
	}
	t.cells = slices.Insert(t.cells, n-1, row)
	t.rows++
	for i := range t.meta {
		if t.meta[i].row >= n-1 {
			t.meta[i].row++ // row metadata moves with its row
		}
	}
	t.cols = max(t.cols, len(cells))
}

// DeleteRow deletes sheet row n (1-based), shifting the rows below up.
func (f *Fake) DeleteRow(id, sheet string, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := f.mustTab(id, sheet)
	if n < 1 || n > t.rows {
		panic(fmt.Sprintf("sheetsfake: DeleteRow %d outside the grid of %d rows", n, t.rows))
	}
	if n-1 < len(t.cells) {
		t.cells = slices.Delete(t.cells, n-1, n)
	}
	t.rows--
	t.meta = slices.DeleteFunc(t.meta, func(m devMeta) bool { return m.row == n-1 })
	for i := range t.meta {
		if t.meta[i].row > n-1 {
			t.meta[i].row--
		}
	}
}

// SortRows sorts the rows below the header by the formatted text of
// column col (0-based), as "Sort sheet A→Z" (desc: Z→A) with the header
// frozen does: stable, blank rows last. Row developer metadata stays at its
// position (Google does not document that a sort carries it along).
func (f *Fake) SortRows(id, sheet string, col int, desc bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := f.mustTab(id, sheet)
	if len(t.cells) < 2 {
		return
	}
	text := func(r []cell) string {
		if col < len(r) && r[col].kind != cellEmpty {
			return fmt.Sprint(r[col].render(renderFormatted))
		}
		return ""
	}
	blank := func(r []cell) bool {
		return !slices.ContainsFunc(r, func(c cell) bool { return c.kind != cellEmpty })
	}
	data := t.cells[1:]
	slices.SortStableFunc(data, func(a, b []cell) int {
		if ba, bb := blank(a), blank(b); ba || bb {
			switch {
			case ba && bb:
				return 0
			case ba:
				return 1
			}
			return -1
		}
		c := strings.Compare(text(a), text(b))
		if desc {
			c = -c
		}
		return c
	})
}

// CellWrite is one cell a write request set, with the row it landed in as
// it read right after the request.
type CellWrite struct {
	Op       string
	Sheet    string
	Row, Col int      // 1-based
	Value    string   // formatted
	RowCells []string // the whole row, formatted, after the request
}

// CellWrites returns every cell written by values.update, values.batchUpdate,
// values.batchUpdateByDataFilter and values.append to spreadsheet id, in
// order.
func (f *Fake) CellWrites(id string) []CellWrite {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.mustBook(id).writes)
}

func (f *Fake) mustTab(id, sheet string) *tab {
	t := f.mustBook(id).tab(sheet)
	if t == nil {
		panic(fmt.Sprintf("sheetsfake: spreadsheet %q has no sheet %q", id, sheet))
	}
	return t
}

// logWrites records the cells of w, once the whole request is applied.
func (b *book) logWrites(op string, ws ...*writePlan) {
	for _, w := range ws {
		for p, c := range w.written() {
			var row []string
			if p.r < len(w.tab.cells) {
				for _, rc := range w.tab.cells[p.r] {
					if rc.kind == cellEmpty {
						row = append(row, "")
					} else {
						row = append(row, fmt.Sprint(rc.render(renderFormatted)))
					}
				}
			}
			v := ""
			if c.kind != cellEmpty {
				v = fmt.Sprint(c.render(renderFormatted))
			}
			b.writes = append(b.writes, CellWrite{Op: op, Sheet: w.tab.title, Row: p.r + 1, Col: p.c + 1, Value: v, RowCells: row})
		}
	}
}
