package testenv

import (
	"strconv"
	"strings"
	"unicode"
)

// A spreadsheet holds at most 10 million cells, so no row number can exceed
// that; columns stop at ZZZ, which the three-letter limit in a1ParsePoint
// enforces.
const a1MaxRow = 10_000_000

// a1Error is a constant error type so the package keeps no mutable globals.
type a1Error string

func (e a1Error) Error() string { return string(e) }

const errA1 = a1Error("unable to parse range")

// a1Range is a parsed A1 range. Bounds are 1-based and inclusive; 0 means
// unbounded on that side. Forms produced by parseA1:
//
//	whole sheet  Sheet1     all bounds 0
//	cell         B2         StartCol=EndCol=2, StartRow=EndRow=2
//	box          A1:C10
//	columns      A:C        rows 0
//	rows         2:5        cols 0
//	open down    A2:Z       EndRow 0
//	open right   A2:5       EndCol 0
type a1Range struct {
	Sheet                              string // unquoted title; "" when the range names no sheet
	StartCol, StartRow, EndCol, EndRow int
}

func (r a1Range) wholeSheet() bool {
	return r.StartCol == 0 && r.StartRow == 0 && r.EndCol == 0 && r.EndRow == 0
}

func (r a1Range) singleCell() bool {
	return r.StartCol != 0 && r.StartRow != 0 && r.StartCol == r.EndCol && r.StartRow == r.EndRow
}

// parseA1 parses Google's A1 notation. A bare token that reads as a cell
// reference is a range on the first sheet, never a sheet name — Google does
// the same (a sheet called "tab01" must be quoted).
func parseA1(s string) (a1Range, error) {
	if s == "" {
		return a1Range{}, errA1
	}
	if s[0] == '\'' {
		name, rest, ok := a1UnquoteSheet(s)
		if !ok || name == "" {
			return a1Range{}, errA1
		}
		if rest == "" {
			return a1Range{Sheet: name}, nil
		}
		if rest[0] != '!' {
			return a1Range{}, errA1
		}
		r, err := a1ParseGrid(rest[1:])
		r.Sheet = name
		return r, err
	}
	if name, grid, ok := strings.Cut(s, "!"); ok {
		// Unquoted names are accepted with spaces (Google is lenient there)
		// but an apostrophe demands quoting.
		if name == "" || strings.ContainsRune(name, '\'') {
			return a1Range{}, errA1
		}
		r, err := a1ParseGrid(grid)
		r.Sheet = name
		return r, err
	}
	if r, err := a1ParseGrid(s); err == nil {
		return r, nil
	}
	return a1Range{Sheet: s}, nil
}

// a1UnquoteSheet reads a leading quoted name, where a doubled quote stands
// for an apostrophe, and returns the name and what follows the closing quote.
func a1UnquoteSheet(s string) (name, rest string, ok bool) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		if s[i] != '\'' {
			b.WriteByte(s[i])
			continue
		}
		if i+1 < len(s) && s[i+1] == '\'' {
			b.WriteByte('\'')
			i++
			continue
		}
		return b.String(), s[i+1:], true
	}
	return "", "", false
}

type a1Point struct{ col, row int }

func a1ParseGrid(s string) (a1Range, error) {
	left, right, isPair := strings.Cut(s, ":")
	a, err := a1ParsePoint(left)
	if err != nil {
		return a1Range{}, err
	}
	if !isPair {
		if a.col == 0 || a.row == 0 {
			return a1Range{}, errA1 // a lone "A" or "5" is not a range
		}
		return a1Range{StartCol: a.col, StartRow: a.row, EndCol: a.col, EndRow: a.row}, nil
	}
	b, err := a1ParsePoint(right)
	if err != nil {
		return a1Range{}, err
	}
	aCell, bCell := a.col != 0 && a.row != 0, b.col != 0 && b.row != 0
	switch {
	case aCell && bCell,
		a.row == 0 && b.row == 0, // A:C
		a.col == 0 && b.col == 0, // 2:5
		aCell:                    // A2:Z, A2:5
	default:
		return a1Range{}, errA1 // A:C5, 2:C5, A:5
	}
	// Google normalises reversed corners (C3:A1 is A1:C3).
	sc, ec := a1Order(a.col, b.col)
	sr, er := a1Order(a.row, b.row)
	return a1Range{StartCol: sc, StartRow: sr, EndCol: ec, EndRow: er}, nil
}

// a1Order sorts two bounds, keeping 0 (unbounded) at the end it was on: for an
// open range only one side can be 0 and it is always the end.
func a1Order(a, b int) (int, int) {
	if a != 0 && b != 0 && a > b {
		return b, a
	}
	return a, b
}

func a1ParsePoint(s string) (a1Point, error) {
	var p a1Point
	i := 0
	if i < len(s) && s[i] == '$' {
		i++
	}
	start := i
	for i < len(s) && a1IsLetter(s[i]) {
		if i-start == 3 {
			return p, errA1 // beyond ZZZ
		}
		p.col = p.col*26 + int(s[i]|0x20) - 'a' + 1
		i++
	}
	hasCol := i > start
	if hasCol && i < len(s) && s[i] == '$' {
		i++ // "$A$1"; a '$' must be followed by a row here
		if i == len(s) {
			return p, errA1
		}
	}
	start = i
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		p.row = p.row*10 + int(s[i]-'0')
		if p.row > a1MaxRow {
			return p, errA1
		}
		i++
	}
	hasRow := i > start
	if i != len(s) || (!hasCol && !hasRow) || (hasRow && p.row == 0) {
		return p, errA1
	}
	return p, nil
}

func a1IsLetter(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }

// String formats r in the canonical form parseA1 accepts.
func (r a1Range) String() string {
	grid := r.gridString()
	if r.Sheet == "" {
		return grid
	}
	if grid == "" {
		return a1QuoteSheet(r.Sheet)
	}
	return a1QuoteSheet(r.Sheet) + "!" + grid
}

func (r a1Range) gridString() string {
	if r.wholeSheet() {
		return ""
	}
	if r.singleCell() {
		return a1ColName(r.StartCol) + strconv.Itoa(r.StartRow)
	}
	return a1PointString(r.StartCol, r.StartRow) + ":" + a1PointString(r.EndCol, r.EndRow)
}

func a1PointString(col, row int) string {
	var s string
	if col != 0 {
		s = a1ColName(col)
	}
	if row != 0 {
		s += strconv.Itoa(row)
	}
	return s
}

// a1QuoteSheet quotes a sheet title the way Google echoes it: bare when it is
// a plain identifier that cannot be mistaken for a cell, quoted otherwise.
func a1QuoteSheet(name string) string {
	plain := name != ""
	for i, c := range name {
		if !(c == '_' || unicode.IsLetter(c) || (i > 0 && unicode.IsDigit(c))) {
			plain = false
			break
		}
	}
	if plain {
		if _, err := a1ParseGrid(name); err != nil {
			return name
		}
	}
	return "'" + strings.ReplaceAll(name, "'", "''") + "'"
}

// a1ColName converts a 1-based column number to letters (1=A, 27=AA).
func a1ColName(n int) string {
	var b []byte
	for n > 0 {
		n--
		b = append(b, byte('A'+n%26))
		n /= 26
	}
	for i, j := 0, len(b)-1; i < j; i, j = i+1, j-1 {
		b[i], b[j] = b[j], b[i]
	}
	return string(b)
}
