package sheetsfake

import (
	"fmt"
	"math"
	mrand "math/rand/v2"
	"slices"
	"strconv"
	"strings"

	"google.golang.org/api/sheets/v4"
)

const (
	defaultRows = 1000
	defaultCols = 26

	renderFormatted   = "FORMATTED_VALUE"
	renderUnformatted = "UNFORMATTED_VALUE"
	renderFormula     = "FORMULA"
)

// book is one spreadsheet.
type book struct {
	id, title string
	granted   bool
	tabs      []*tab
	writes    []CellWrite
}

// tab is one sheet of a spreadsheet.
type tab struct {
	id         int64
	title      string
	rows, cols int // grid size
	cells      [][]cell
	meta       []devMeta // row developer metadata
}

type cellKind uint8

const (
	cellEmpty cellKind = iota
	cellText
	cellNumber
	cellBool
	cellFormula
)

type cell struct {
	kind cellKind
	text string // text, formula, or how a formatted number was typed
	num  float64
	b    bool
}

func (b *book) tab(name string) *tab {
	for _, t := range b.tabs {
		// Google matches sheet names case-insensitively and refuses titles
		// that differ only in case.
		if strings.EqualFold(t.title, name) {
			return t
		}
	}
	return nil
}

// newSheetID picks an unused id; the first sheet of a spreadsheet is 0, as
// in Google.
func newSheetID(tabs []*tab) int64 {
	if len(tabs) == 0 {
		return 0
	}
	for {
		id := mrand.Int64N(math.MaxInt32) + 1
		if !slices.ContainsFunc(tabs, func(t *tab) bool { return t.id == id }) {
			return id
		}
	}
}

func (t *tab) props(index int) *sheets.SheetProperties {
	return &sheets.SheetProperties{
		SheetId:         t.id,
		Title:           t.title,
		Index:           int64(index),
		SheetType:       "GRID",
		GridProperties:  &sheets.GridProperties{RowCount: int64(t.rows), ColumnCount: int64(t.cols)},
		ForceSendFields: []string{"SheetId", "Index"},
	}
}

func (b *book) resource() *sheets.Spreadsheet {
	out := &sheets.Spreadsheet{
		SpreadsheetId: b.id,
		Properties: &sheets.SpreadsheetProperties{
			Title: b.title, Locale: "en_US", AutoRecalc: "ON_CHANGE", TimeZone: "Etc/GMT",
		},
		SpreadsheetUrl: "https://docs.google.com/spreadsheets/d/" + b.id + "/edit",
	}
	for i, t := range b.tabs {
		out.Sheets = append(out.Sheets, &sheets.Sheet{Properties: t.props(i)})
	}
	return out
}

func (t *tab) at(r, c int) cell {
	if r < len(t.cells) && c < len(t.cells[r]) {
		return t.cells[r][c]
	}
	return cell{}
}

func (t *tab) set(r, c int, v cell) {
	if v.kind == cellEmpty && t.at(r, c).kind == cellEmpty {
		return
	}
	for len(t.cells) <= r {
		t.cells = append(t.cells, nil)
	}
	row := t.cells[r]
	for len(row) <= c {
		row = append(row, cell{})
	}
	row[c] = v
	t.cells[r] = row
}

func (t *tab) gridError(rng string) *apiError {
	return errorf(400, "Range (%s) exceeds grid limits. Max rows: %d, max columns: %d", rng, t.rows, t.cols)
}

// resolved is a range bound to a sheet, as 0-based half-open indexes
// clamped to the grid.
type resolved struct {
	tab            *tab
	ref            rangeRef // as parsed, with the sheet's real title
	r0, c0, r1, c1 int
}

func (x resolved) String() string {
	return rangeRef{Sheet: x.tab.title, StartCol: x.c0 + 1, StartRow: x.r0 + 1, EndCol: x.c1, EndRow: x.r1}.String()
}

// resolve parses raw and binds it to a sheet, refusing bounds beyond the
// grid as Google does.
func (b *book) resolve(raw string) (resolved, *apiError) {
	r, err := parseA1(raw)
	if err != nil {
		return resolved{}, rangeError(raw)
	}
	var t *tab
	if r.Sheet == "" {
		if len(b.tabs) > 0 {
			t = b.tabs[0]
		}
	} else {
		t = b.tab(r.Sheet)
	}
	if t == nil {
		return resolved{}, rangeError(raw)
	}
	r.Sheet = t.title
	if max(r.StartRow, r.EndRow) > t.rows || max(r.StartCol, r.EndCol) > t.cols {
		return resolved{}, t.gridError(r.String())
	}
	x := resolved{tab: t, ref: r, r0: max(r.StartRow, 1) - 1, c0: max(r.StartCol, 1) - 1, r1: r.EndRow, c1: r.EndCol}
	if x.r1 == 0 {
		x.r1 = t.rows
	}
	if x.c1 == 0 {
		x.c1 = t.cols
	}
	return x, nil
}

// values renders the range, ragged like Google: trailing empty cells and
// trailing empty lines are dropped.
func (x resolved) values(columns bool, render string) [][]any {
	t := x.tab
	stored := 0
	for _, row := range t.cells {
		stored = max(stored, len(row))
	}
	o0, o1, i0, i1 := x.r0, min(x.r1, len(t.cells)), x.c0, min(x.c1, stored)
	if columns {
		o0, o1, i0, i1 = x.c0, min(x.c1, stored), x.r0, min(x.r1, len(t.cells))
	}
	var out [][]any
	keep := 0
	for o := o0; o < o1; o++ {
		line := []any{}
		last := 0
		for i := i0; i < i1; i++ {
			c := t.at(o, i)
			if columns {
				c = t.at(i, o)
			}
			if c.kind == cellEmpty {
				line = append(line, "")
				continue
			}
			line = append(line, c.render(render))
			last = len(line)
		}
		out = append(out, line[:last])
		if last > 0 {
			keep = len(out)
		}
	}
	if keep == 0 {
		return nil
	}
	return out[:keep]
}

func (x resolved) clear() {
	for r := x.r0; r < min(x.r1, len(x.tab.cells)); r++ {
		for c := x.c0; c < min(x.c1, len(x.tab.cells[r])); c++ {
			x.tab.cells[r][c] = cell{}
		}
	}
}

func (c cell) render(render string) any {
	switch c.kind {
	case cellNumber:
		if render != renderFormatted {
			return c.num
		}
		if c.text != "" {
			return c.text
		}
		return formatNumber(c.num)
	case cellBool:
		if render != renderFormatted {
			return c.b
		}
		if c.b {
			return "TRUE"
		}
		return "FALSE"
	}
	return c.text
}

// formatNumber approximates Google's "General" number format.
func formatNumber(v float64) string {
	if a := math.Abs(v); a != 0 && (a >= 1e15 || a < 1e-9) {
		return strings.Replace(strconv.FormatFloat(v, 'E', -1, 64), "E+0", "E+", 1)
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

// entered converts one request value to a cell; ok=false means null, which
// leaves the cell untouched.
func entered(v any, userEntered bool) (c cell, ok bool, err error) {
	switch v := v.(type) {
	case nil:
		return c, false, nil
	case bool:
		return cell{kind: cellBool, b: v}, true, nil
	case float64:
		return cell{kind: cellNumber, num: v}, true, nil
	case string:
		switch {
		case v == "":
			return c, true, nil
		case !userEntered:
			return cell{kind: cellText, text: v}, true, nil
		}
		return parseUserEntered(v), true, nil
	}
	return c, false, fmt.Errorf("unsupported value %v", v)
}

// parseUserEntered interprets a string as if typed into the UI.
func parseUserEntered(s string) cell {
	if len(s) > 1 && s[0] == '=' {
		return cell{kind: cellFormula, text: s}
	}
	if s[0] == '\'' {
		if len(s) == 1 {
			return cell{}
		}
		return cell{kind: cellText, text: s[1:]}
	}
	t := strings.TrimSpace(s)
	switch strings.ToUpper(t) {
	case "TRUE":
		return cell{kind: cellBool, b: true}
	case "FALSE":
		return cell{kind: cellBool}
	}
	if n, formatted, ok := parseNumber(t); ok {
		c := cell{kind: cellNumber, num: n}
		if formatted {
			c.text = t
		}
		return c
	}
	return cell{kind: cellText, text: s}
}

// parseNumber accepts [+-][$]digits[,ddd...][.digits][e[+-]digits][%].
// formatted reports a $, thousands separator or % that Google would keep as
// the cell's display format.
func parseNumber(s string) (v float64, formatted, ok bool) {
	neg := false
	if s != "" && (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-'
		s = s[1:]
	}
	if t, cut := strings.CutPrefix(s, "$"); cut {
		s, formatted = t, true
	}
	pct := false
	if t, cut := strings.CutSuffix(s, "%"); cut {
		s, pct, formatted = t, true, true
	}
	mant, exp, hasExp := strings.Cut(strings.ToLower(s), "e")
	intPart, frac, hasFrac := strings.Cut(mant, ".")
	if strings.Contains(intPart, ",") {
		groups := strings.Split(intPart, ",")
		if len(groups[0]) < 1 || len(groups[0]) > 3 || hasExp {
			return 0, false, false
		}
		for _, g := range groups[1:] {
			if len(g) != 3 {
				return 0, false, false
			}
		}
		intPart, formatted = strings.Join(groups, ""), true
	}
	digits := func(x string) bool {
		for i := 0; i < len(x); i++ {
			if x[i] < '0' || x[i] > '9' {
				return false
			}
		}
		return true
	}
	if !digits(intPart) || !digits(frac) || intPart+frac == "" || (hasFrac && frac == "" && intPart == "") {
		return 0, false, false
	}
	if hasExp {
		e := strings.TrimLeft(exp, "+-")
		if e == "" || !digits(e) || len(exp)-len(e) > 1 {
			return 0, false, false
		}
	}
	num := intPart + "." + frac
	if hasExp {
		num += "e" + exp
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || math.IsInf(v, 0) {
		return 0, false, false
	}
	if pct {
		v /= 100
	}
	if neg {
		v = -v
	}
	return v, formatted, true
}
