package sheetsfake

import (
	"strconv"
	"strings"
	"unicode"
)

// A spreadsheet holds at most 10 million cells, so no row number can exceed
// that; columns stop at ZZZ, which the three-letter limit in parsePoint
// enforces.
const (
	maxRow  = 10_000_000
	maxCols = 18278 // ZZZ
)

// constError is a constant error type so the package keeps no mutable globals.
type constError string

func (e constError) Error() string { return string(e) }

const errSyntax = constError("unable to parse range")

// rangeRef is a parsed A1 range. Bounds are 1-based and inclusive; 0 means
// unbounded on that side. Forms produced by parseA1:
//
//	whole sheet  Sheet1     all bounds 0
//	cell         B2         StartCol=EndCol=2, StartRow=EndRow=2
//	box          A1:C10
//	columns      A:C        rows 0
//	rows         2:5        cols 0
//	open down    A2:Z       EndRow 0
//	open right   A2:5       EndCol 0
type rangeRef struct {
	Sheet                              string // unquoted title; "" when the range names no sheet
	StartCol, StartRow, EndCol, EndRow int
}

func (r rangeRef) wholeSheet() bool {
	return r.StartCol == 0 && r.StartRow == 0 && r.EndCol == 0 && r.EndRow == 0
}

func (r rangeRef) singleCell() bool {
	return r.StartCol != 0 && r.StartRow != 0 && r.StartCol == r.EndCol && r.StartRow == r.EndRow
}

// parseA1 parses Google's A1 notation. A bare token that reads as a cell
// reference is a range on the first sheet, never a sheet name — Google does
// the same (a sheet called "tab01" must be quoted).
func parseA1(s string) (rangeRef, error) {
	if s == "" {
		return rangeRef{}, errSyntax
	}
	if s[0] == '\'' {
		name, rest, ok := unquoteSheet(s)
		if !ok || name == "" {
			return rangeRef{}, errSyntax
		}
		if rest == "" {
			return rangeRef{Sheet: name}, nil
		}
		if rest[0] != '!' {
			return rangeRef{}, errSyntax
		}
		r, err := parseGrid(rest[1:])
		r.Sheet = name
		return r, err
	}
	if name, grid, ok := strings.Cut(s, "!"); ok {
		// Unquoted names are accepted with spaces (Google is lenient there)
		// but an apostrophe demands quoting.
		if name == "" || strings.ContainsRune(name, '\'') {
			return rangeRef{}, errSyntax
		}
		r, err := parseGrid(grid)
		r.Sheet = name
		return r, err
	}
	if r, err := parseGrid(s); err == nil {
		return r, nil
	}
	return rangeRef{Sheet: s}, nil
}

// unquoteSheet reads a leading quoted name, where a doubled quote stands
// for an apostrophe, and returns the name and what follows the closing quote.
func unquoteSheet(s string) (name, rest string, ok bool) {
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

type point struct{ col, row int }

func parseGrid(s string) (rangeRef, error) {
	left, right, isPair := strings.Cut(s, ":")
	a, err := parsePoint(left)
	if err != nil {
		return rangeRef{}, err
	}
	if !isPair {
		if a.col == 0 || a.row == 0 {
			return rangeRef{}, errSyntax // a lone "A" or "5" is not a range
		}
		return rangeRef{StartCol: a.col, StartRow: a.row, EndCol: a.col, EndRow: a.row}, nil
	}
	b, err := parsePoint(right)
	if err != nil {
		return rangeRef{}, err
	}
	aCell, bCell := a.col != 0 && a.row != 0, b.col != 0 && b.row != 0
	switch {
	case aCell && bCell,
		a.row == 0 && b.row == 0, // A:C
		a.col == 0 && b.col == 0, // 2:5
		aCell:                    // A2:Z, A2:5
	default:
		return rangeRef{}, errSyntax // A:C5, 2:C5, A:5
	}
	// Google normalises reversed corners (C3:A1 is A1:C3).
	sc, ec := ordered(a.col, b.col)
	sr, er := ordered(a.row, b.row)
	return rangeRef{StartCol: sc, StartRow: sr, EndCol: ec, EndRow: er}, nil
}

// ordered sorts two bounds, keeping 0 (unbounded) at the end it was on: for an
// open range only one side can be 0 and it is always the end.
func ordered(a, b int) (int, int) {
	if a != 0 && b != 0 && a > b {
		return b, a
	}
	return a, b
}

func parsePoint(s string) (point, error) {
	var p point
	i := 0
	if i < len(s) && s[i] == '$' {
		i++
	}
	start := i
	for i < len(s) && isLetter(s[i]) {
		if i-start == 3 {
			return p, errSyntax // beyond ZZZ
		}
		p.col = p.col*26 + int(s[i]|0x20) - 'a' + 1
		i++
	}
	hasCol := i > start
	if hasCol && i < len(s) && s[i] == '$' {
		i++ // "$A$1"; a '$' must be followed by a row here
		if i == len(s) {
			return p, errSyntax
		}
	}
	start = i
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		p.row = p.row*10 + int(s[i]-'0')
		if p.row > maxRow {
			return p, errSyntax
		}
		i++
	}
	hasRow := i > start
	if i != len(s) || (!hasCol && !hasRow) || (hasRow && p.row == 0) {
		return p, errSyntax
	}
	return p, nil
}

func isLetter(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }

// String formats r in the canonical form parseA1 accepts.
func (r rangeRef) String() string {
	grid := r.gridString()
	if r.Sheet == "" {
		return grid
	}
	if grid == "" {
		return quoteSheet(r.Sheet)
	}
	return quoteSheet(r.Sheet) + "!" + grid
}

func (r rangeRef) gridString() string {
	if r.wholeSheet() {
		return ""
	}
	if r.singleCell() {
		return colName(r.StartCol) + strconv.Itoa(r.StartRow)
	}
	return pointString(r.StartCol, r.StartRow) + ":" + pointString(r.EndCol, r.EndRow)
}

func pointString(col, row int) string {
	var s string
	if col != 0 {
		s = colName(col)
	}
	if row != 0 {
		s += strconv.Itoa(row)
	}
	return s
}

// quoteSheet quotes a sheet title the way Google echoes it: bare when it is
// a plain identifier that cannot be mistaken for a cell, quoted otherwise.
func quoteSheet(name string) string {
	plain := name != ""
	for i, c := range name {
		if !(c == '_' || unicode.IsLetter(c) || (i > 0 && unicode.IsDigit(c))) {
			plain = false
			break
		}
	}
	if plain {
		if _, err := parseGrid(name); err != nil {
			return name
		}
	}
	return "'" + strings.ReplaceAll(name, "'", "''") + "'"
}

// colName converts a 1-based column number to letters (1=A, 27=AA).
func colName(n int) string {
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
