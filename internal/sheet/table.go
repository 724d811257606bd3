// Package sheet reads the sign-up table (a Google Form's response sheet, or
// a CSV export of it) and writes each row's outcome back.
//
// Columns are always found by header name, never by position, so reordering
// or adding form questions does not break the tool. Headers compare as
// config.HeaderKey says (trimmed, inner whitespace collapsed,
// case-insensitive), the rule the signup package reads them by. Writes re-read the target row and check its
// identity (timestamp and email) first, following the row if someone sorted
// or inserted rows, and refusing if it is gone: nothing is ever written by a
// stale row number.
//
// Two implementations share one method set: Google (Sheets API v4) and CSV.
// Consumers declare the interface they need.
package sheet

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/kaizen-onboard/kaizen/internal/config"
)

// Table is a worksheet: its header row and the data rows below it.
type Table struct {
	Header []string
	Rows   []Row
}

// Row is one data row.
type Row struct {
	// Number is the 1-based row number in the sheet or file; the header is
	// row 1, so the first data row is 2.
	Number int
	// Cells are the row's values; trailing empty cells may be missing.
	Cells []string
}

// At returns cell i, or "" when the row is shorter (or i is negative).
func (r Row) At(i int) string {
	if i < 0 || i >= len(r.Cells) {
		return ""
	}
	return r.Cells[i]
}

// Identity names a sign-up row independently of its position: the form's
// submission timestamp and the applicant's email.
type Identity struct {
	Timestamp string
	Email     string
}

func (id Identity) String() string {
	return fmt.Sprintf("timestamp %q, email %q", id.Timestamp, id.Email)
}

// ErrRowNotFound is returned (wrapped) by WriteChecked, or set in a
// WriteResult by WriteBatch, when no row has the expected identity any more;
// nothing was written.
var ErrRowNotFound = errors.New("row not found")

// ErrAmbiguousRow is returned (wrapped) by WriteChecked, or set in a
// WriteResult by WriteBatch, when the target row moved and several rows share
// its identity, or when several writes of one WriteBatch locate the same row;
// nothing was written.
var ErrAmbiguousRow = errors.New("row identity is ambiguous")

// Index returns the column index of the header name, compared as
// config.HeaderKey does. With duplicate headers the first one wins.
func (t *Table) Index(name string) (int, bool) {
	want := config.HeaderKey(name)
	for i, h := range t.Header {
		if config.HeaderKey(h) == want {
			return i, true
		}
	}
	return -1, false
}

// Value returns the cell of row r under header name, and whether the column
// exists. A missing trailing cell reads as "".
func (t *Table) Value(r Row, name string) (string, bool) {
	i, ok := t.Index(name)
	if !ok {
		return "", false
	}
	return r.At(i), true
}

// Get is Value without the found flag: "" for a missing column or cell.
func (t *Table) Get(r Row, name string) string {
	v, _ := t.Value(r, name)
	return v
}

// Require reports every header in names that the table lacks, in one error.
func (t *Table) Require(names ...string) error {
	var missing []string
	for _, n := range names {
		if _, ok := t.Index(n); !ok {
			missing = append(missing, fmt.Sprintf("%q", strings.TrimSpace(n)))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("sheet is missing %d required column(s): %s (header row has: %s)",
			len(missing), strings.Join(missing, ", "), quoteList(t.Header))
	}
	return nil
}

// Row returns the row with sheet row number n.
func (t *Table) Row(n int) (Row, bool) {
	for _, r := range t.Rows {
		if r.Number == n {
			return r, true
		}
	}
	return Row{}, false
}

func quoteList(ss []string) string {
	if len(ss) == 0 {
		return "nothing"
	}
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}

// newTable builds a table from raw rows; rows[0] is the header. Blank data
// rows are dropped, the others keep their 1-based numbers.
func newTable(rows [][]string) *Table {
	t := &Table{}
	if len(rows) == 0 {
		return t
	}
	t.Header = rows[0]
	for i, cells := range rows[1:] {
		if blank(cells) {
			continue
		}
		t.Rows = append(t.Rows, Row{Number: i + 2, Cells: cells})
	}
	return t
}

func blank(cells []string) bool {
	for _, c := range cells {
		if strings.TrimSpace(c) != "" {
			return false
		}
	}
	return true
}

// same reports whether two identities name the same row: timestamps equal
// and emails equal ignoring case, both trimmed.
func (id Identity) same(o Identity) bool {
	return strings.TrimSpace(id.Timestamp) == strings.TrimSpace(o.Timestamp) &&
		strings.EqualFold(strings.TrimSpace(id.Email), strings.TrimSpace(o.Email))
}

func (id Identity) empty() bool {
	return strings.TrimSpace(id.Timestamp) == "" && strings.TrimSpace(id.Email) == ""
}

// identityOf reads row r's identity; empty when t lacks the columns.
func identityOf(t *Table, cols identityCols, r Row) Identity {
	ts, ok1 := t.Index(cols.timestamp)
	em, ok2 := t.Index(cols.email)
	if !ok1 || !ok2 {
		return Identity{}
	}
	return Identity{Timestamp: r.At(ts), Email: r.At(em)}
}

// findRow returns the number of the single row of t with identity id.
func findRow(t *Table, cols identityCols, id Identity) (int, error) {
	var found []int
	for _, r := range t.Rows {
		if identityOf(t, cols, r).same(id) {
			found = append(found, r.Number)
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return 0, fmt.Errorf("no row has %s any more: %w", id, ErrRowNotFound)
	}
	return 0, fmt.Errorf("rows %v all have %s: %w", found, id, ErrAmbiguousRow)
}

// identityCols names the columns that identify a row.
type identityCols struct{ timestamp, email string }

// orDefault fills an empty name with the settings' default header.
func (c identityCols) orDefault() identityCols {
	r := config.SheetColumns{Timestamp: c.timestamp, Email: c.email}.Resolved()
	return identityCols{r.Timestamp, r.Email}
}

// locate finds where the row with identity id is now: at want if it still
// holds id, else the single row anywhere in t that does. It also resolves
// the column names in values to indexes.
func locate(t *Table, cols identityCols, want int, id Identity, values map[string]string) (int, map[int]string, error) {
	if strings.TrimSpace(id.Timestamp) == "" && strings.TrimSpace(id.Email) == "" {
		return 0, nil, errors.New("refusing to write: the row identity (timestamp and email) is empty")
	}
	if len(values) == 0 {
		return 0, nil, errors.New("nothing to write: no values given")
	}
	if err := t.Require(cols.timestamp, cols.email); err != nil {
		return 0, nil, fmt.Errorf("cannot check row identity: %w", err)
	}
	matches := func(r Row) bool { return identityOf(t, cols, r).same(id) }
	byCol := make(map[int]string, len(values))
	var unknown []string
	for name, v := range values {
		i, ok := t.Index(name)
		if !ok {
			unknown = append(unknown, fmt.Sprintf("%q", name))
			continue
		}
		if _, dup := byCol[i]; dup {
			return 0, nil, fmt.Errorf("column %q given twice (header names are case-insensitive)", name)
		}
		byCol[i] = v
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return 0, nil, fmt.Errorf("unknown column(s) %s: no such header (header row has: %s)",
			strings.Join(unknown, ", "), quoteList(t.Header))
	}
	if r, ok := t.Row(want); ok && matches(r) {
		return want, byCol, nil
	}
	var found []int
	for _, r := range t.Rows {
		if matches(r) {
			found = append(found, r.Number)
		}
	}
	switch len(found) {
	case 1:
		return found[0], byCol, nil
	case 0:
		return 0, nil, fmt.Errorf("row %d (%s) is no longer in the sheet (deleted or edited?); nothing written: %w", want, id, ErrRowNotFound)
	default:
		return 0, nil, fmt.Errorf("row %d (%s) moved and %d rows now match it (rows %v); nothing written: %w", want, id, len(found), found, ErrAmbiguousRow)
	}
}

// Write is one row's values to write, addressed as WriteChecked does: the
// row number last seen, the row's identity, and header name → plain text.
type Write struct {
	Row    int
	ID     Identity
	Values map[string]string
}

// WriteResult says where a Write landed or why it did not.
type WriteResult struct {
	// Row is the row number written (the row may have moved since it was
	// read); 0 when Err is set.
	Row int
	// Err says why nothing was written for this Write: it wraps
	// ErrRowNotFound or ErrAmbiguousRow, or names unknown columns.
	Err error
	// Moved: the row moved in the moment between the re-read and the
	// write, so the values first landed in another row; they were written
	// again where the row is now.
	Moved bool
	// Damage lists the other rows this write's values landed in when its
	// row moved, and whether their cells were put back.
	Damage []Damage
	// Unverified, when set, says why the written row could not be read
	// back to check it still carries its identity; the values were
	// written.
	Unverified error
}

// Damage is a row that received another row's values because rows moved
// while they were being written.
type Damage struct {
	Row     int      // the row's number when it was found
	ID      Identity // its identity (empty for a row without one)
	Columns []string // the headers of the cells overwritten
	// Restored: the cells were put back as the re-read before the write
	// had them. Otherwise their previous values are unknown (the row was
	// not in that read: they are cleared, so that the row does not pass
	// for done) or could not be written: the cells are lost.
	Restored bool
	// Previous holds the values written back into the cells, by header
	// ("" for a cleared cell).
	Previous map[string]string
}

func (d Damage) String() string {
	what := "restored"
	if !d.Restored {
		what = "previous values lost"
	}
	return fmt.Sprintf("row %d (%s): %s overwritten, %s", d.Row, d.ID, strings.Join(d.Columns, ", "), what)
}

// target is a located write: the sheet row it goes to and the cells it sets.
type target struct {
	row   int
	cells map[int]string // column index → value
}

// plan locates every write in t, as WriteChecked does. It returns one result
// per write, in order, with Row set for those that can be written and Err for
// the others, and the rows to write in ascending row order. where names the
// table in error messages. Writes that locate the same row all fail with
// ErrAmbiguousRow: neither is written, since it is unclear which should win.
func plan(t *Table, cols identityCols, writes []Write, where string) ([]WriteResult, []target) {
	results := make([]WriteResult, len(writes))
	cells := make([]map[int]string, len(writes))
	byRow := map[int][]int{} // located row → indexes of writes
	for i, w := range writes {
		at, byCol, err := locate(t, cols, w.Row, w.ID, w.Values)
		if err != nil {
			results[i].Err = fmt.Errorf("writing row %d of %s: %w", w.Row, where, err)
			continue
		}
		results[i].Row, cells[i] = at, byCol
		byRow[at] = append(byRow[at], i)
	}
	var targets []target
	for _, at := range slices.Sorted(maps.Keys(byRow)) {
		idx := byRow[at]
		if len(idx) == 1 {
			targets = append(targets, target{row: at, cells: cells[idx[0]]})
			continue
		}
		for _, i := range idx {
			others := slices.DeleteFunc(slices.Clone(idx), func(j int) bool { return j == i })
			results[i] = WriteResult{Err: fmt.Errorf(
				"writing row %d of %s: write #%d (%s) and write(s) #%s of the same batch all locate row %d; none of them written: %w",
				writes[i].Row, where, i, writes[i].ID, joinInts(others), at, ErrAmbiguousRow)}
		}
	}
	return results, targets
}

func joinInts(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ", #")
}

// rowsText names the rows of targets for messages: "row 5", "rows 2, 3, 9".
func rowsText(targets []target) string {
	if len(targets) == 1 {
		return "row " + strconv.Itoa(targets[0].row)
	}
	const most = 10
	nums := make([]string, 0, most)
	for i, tg := range targets {
		if i == most {
			return fmt.Sprintf("%d rows (%s, ...)", len(targets), strings.Join(nums, ", "))
		}
		nums = append(nums, strconv.Itoa(tg.row))
	}
	return "rows " + strings.Join(nums, ", ")
}
