package sheetsfake

import (
	"bytes"
	"encoding/json"
	"fmt"
	"iter"
	"net/url"
	"slices"

	"google.golang.org/api/sheets/v4"
)

func renderOption(v string) (string, *apiError) {
	switch v {
	case "":
		return renderFormatted, nil
	case renderFormatted, renderUnformatted, renderFormula:
		return v, nil
	}
	return "", badEnum("value_render_option", "ValueRenderOption", v)
}

// dimension reports whether v selects COLUMNS.
func dimension(field, v string) (bool, *apiError) {
	switch v {
	case "", "ROWS", "DIMENSION_UNSPECIFIED":
		return false, nil
	case "COLUMNS":
		return true, nil
	}
	return false, badEnum(field, "Dimension", v)
}

// inputOption reports whether v is USER_ENTERED; required is the error for
// an unset option, which differs between methods.
func inputOption(v string, required *apiError) (bool, *apiError) {
	switch v {
	case "RAW":
		return false, nil
	case "USER_ENTERED":
		return true, nil
	case "", "INPUT_VALUE_OPTION_UNSPECIFIED":
		return false, required
	}
	return false, badEnum("value_input_option", "ValueInputOption", v)
}

func requiredInput() *apiError {
	return errorf(400, "'valueInputOption' is required but not specified")
}

func decode(body []byte, v any) *apiError {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil // an absent body is an empty message
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errorf(400, "Invalid JSON payload received. %v", err)
	}
	return nil
}

// readRange serves values.get, and each range of values.batchGet.
func (b *book) readRange(raw string, q url.Values) (*sheets.ValueRange, *apiError) {
	render, e := renderOption(q.Get("valueRenderOption"))
	if e != nil {
		return nil, e
	}
	cols, e := dimension("major_dimension", q.Get("majorDimension"))
	if e != nil {
		return nil, e
	}
	x, e := b.resolve(raw)
	if e != nil {
		return nil, e
	}
	vr := &sheets.ValueRange{Range: x.String(), MajorDimension: "ROWS"}
	if cols {
		vr.MajorDimension = "COLUMNS"
	}
	vr.Values = x.values(cols, render)
	return vr, nil
}

func (b *book) valuesBatchGet(q url.Values) (any, *apiError) {
	out := &sheets.BatchGetValuesResponse{SpreadsheetId: b.id}
	for _, raw := range q["ranges"] {
		vr, e := b.readRange(raw, q)
		if e != nil {
			return nil, e
		}
		out.ValueRanges = append(out.ValueRanges, vr)
	}
	return out, nil
}

// writePlan is a validated write, applied only once every write of the
// request has validated so that requests stay atomic.
type writePlan struct {
	tab      *tab
	r0, c0   int
	cells    [][]*cell // nil entries are nulls: left untouched
	width    int
	fallback string // reported range when there is no data
}

// stage resolves raw and converts vr's values (transposed first for
// COLUMNS) into a plan not yet placed on the grid.
func (b *book) stage(raw string, vr *sheets.ValueRange, userEntered bool, field string) (resolved, *writePlan, *apiError) {
	x, e := b.resolve(raw)
	if e != nil {
		return x, nil, e
	}
	cols, e := dimension(field+"major_dimension", vr.MajorDimension)
	if e != nil {
		return x, nil, e
	}
	values := vr.Values
	if cols {
		var t [][]any
		for c, col := range values {
			for r, v := range col {
				for len(t) <= r {
					t = append(t, nil)
				}
				for len(t[r]) <= c {
					t[r] = append(t[r], nil)
				}
				t[r][c] = v
			}
		}
		values = t
	}
	w := &writePlan{cells: make([][]*cell, len(values))}
	for i, row := range values {
		w.width = max(w.width, len(row))
		w.cells[i] = make([]*cell, len(row))
		for j, v := range row {
			c, ok, err := entered(v, userEntered)
			if err != nil {
				js, _ := json.Marshal(v)
				return x, nil, errorf(400, "Invalid %svalues[%d][%d]: %s", field, i, j, js)
			}
			if ok {
				w.cells[i][j] = &c
			}
		}
	}
	return x, w, nil
}

// planWrite validates values for a write into raw. Bounded ranges limit the
// data; a single cell or an open side is limited by the grid only.
func (b *book) planWrite(raw string, vr *sheets.ValueRange, userEntered bool, field string) (*writePlan, *apiError) {
	x, w, e := b.stage(raw, vr, userEntered, field)
	if e != nil {
		return nil, e
	}
	w.tab, w.r0, w.c0, w.fallback = x.tab, x.r0, x.c0, x.String()
	single := x.ref.singleCell()
	rowsBounded, colsBounded := !single && x.ref.EndRow != 0, !single && x.ref.EndCol != 0
	box := w.box()
	if rowsBounded && box.r1 > x.r1 {
		return nil, errorf(400, "Requested writing within range [%s], but tried writing to row [%d]", x.ref, x.r1+1)
	} else if box.r1 > x.tab.rows {
		box.c1 = max(box.c1, box.c0+1) // an empty row still names a column
		return nil, x.tab.gridError(box.String())
	}
	if colsBounded && box.c1 > x.c1 {
		return nil, errorf(400, "Requested writing within range [%s], but tried writing to column [%s]", x.ref, colName(x.c1+1))
	} else if box.c1 > x.tab.cols {
		return nil, x.tab.gridError(box.String())
	}
	return w, nil
}

// pos is a 0-based cell position on a sheet.
type pos struct{ r, c int }

// written yields every non-null cell of the plan at its place on the sheet.
func (w *writePlan) written() iter.Seq2[pos, cell] {
	return func(yield func(pos, cell) bool) {
		for i, row := range w.cells {
			for j, c := range row {
				if c != nil && !yield(pos{w.r0 + i, w.c0 + j}, *c) {
					return
				}
			}
		}
	}
}

// apply writes the cells and returns Google's UpdateValuesResponse; rows
// and columns count those with at least one non-null value. With
// includeValues the response echoes the written box rendered as render.
func (w *writePlan) apply(bookID string, includeValues bool, render string) *sheets.UpdateValuesResponse {
	resp := &sheets.UpdateValuesResponse{SpreadsheetId: bookID, UpdatedRange: w.fallback}
	rows, cols := map[int]bool{}, map[int]bool{}
	for p, c := range w.written() {
		w.tab.set(p.r, p.c, c)
		resp.UpdatedCells++
		rows[p.r], cols[p.c] = true, true
	}
	resp.UpdatedRows, resp.UpdatedColumns = int64(len(rows)), int64(len(cols))
	if len(w.cells) > 0 && w.width > 0 {
		resp.UpdatedRange = w.box().String()
	}
	if includeValues {
		x := w.box()
		resp.UpdatedData = &sheets.ValueRange{Range: x.String(), MajorDimension: "ROWS", Values: x.values(false, render)}
	}
	return resp
}

func (w *writePlan) box() resolved {
	return resolved{tab: w.tab, r0: w.r0, c0: w.c0, r1: w.r0 + len(w.cells), c1: w.c0 + w.width}
}

// decodeWrite reads what values.update and values.append share after their
// input options: the response render option and the body, whose range (if
// set) must name the URL's cells.
func (b *book) decodeWrite(raw string, q url.Values, body []byte) (*sheets.ValueRange, string, *apiError) {
	render, e := renderOption(q.Get("responseValueRenderOption"))
	if e != nil {
		return nil, "", e
	}
	var vr sheets.ValueRange
	if e := decode(body, &vr); e != nil {
		return nil, "", e
	}
	if vr.Range != "" {
		x, e1 := b.resolve(raw)
		y, e2 := b.resolve(vr.Range)
		if e1 != nil || e2 != nil || x.tab != y.tab || x.ref != y.ref {
			return nil, "", errorf(400, "Request range[%s] does not match value's range[%s]", raw, vr.Range)
		}
	}
	return &vr, render, nil
}

func (b *book) valuesUpdate(raw string, q url.Values, body []byte) (any, *apiError) {
	userEntered, e := inputOption(q.Get("valueInputOption"), requiredInput())
	if e != nil {
		return nil, e
	}
	vr, render, e := b.decodeWrite(raw, q, body)
	if e != nil {
		return nil, e
	}
	w, e := b.planWrite(raw, vr, userEntered, "")
	if e != nil {
		return nil, e
	}
	resp := w.apply(b.id, q.Get("includeValuesInResponse") == "true", render)
	b.logWrites("values.update", w)
	return resp, nil
}

func (b *book) valuesBatchUpdate(body []byte) (any, *apiError) {
	var req sheets.BatchUpdateValuesRequest
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	userEntered, e := inputOption(req.ValueInputOption, errorf(400, "Invalid valueInputOption: INPUT_VALUE_OPTION_UNSPECIFIED"))
	if e != nil {
		return nil, e
	}
	render, e := renderOption(req.ResponseValueRenderOption)
	if e != nil {
		return nil, e
	}
	var writes []*writePlan
	for i, vr := range req.Data {
		if vr == nil {
			vr = &sheets.ValueRange{}
		}
		w, e := b.planWrite(vr.Range, vr, userEntered, fmt.Sprintf("data[%d].", i))
		if e != nil {
			return nil, e
		}
		writes = append(writes, w)
	}
	out := &sheets.BatchUpdateValuesResponse{SpreadsheetId: b.id}
	type rc struct {
		tab *tab
		n   int
	}
	rows, cols, tabs := map[rc]bool{}, map[rc]bool{}, map[*tab]bool{}
	for _, w := range writes {
		resp := w.apply(b.id, req.IncludeValuesInResponse, render)
		out.Responses = append(out.Responses, resp)
		out.TotalUpdatedCells += resp.UpdatedCells
		for p := range w.written() {
			rows[rc{w.tab, p.r}], cols[rc{w.tab, p.c}], tabs[w.tab] = true, true, true
		}
	}
	b.logWrites("values.batchUpdate", writes...)
	out.TotalUpdatedRows, out.TotalUpdatedColumns, out.TotalUpdatedSheets = int64(len(rows)), int64(len(cols)), int64(len(tabs))
	return out, nil
}

func (b *book) valuesAppend(raw string, q url.Values, body []byte) (any, *apiError) {
	userEntered, e := inputOption(q.Get("valueInputOption"), requiredInput())
	if e != nil {
		return nil, e
	}
	insertRows := false
	switch v := q.Get("insertDataOption"); v {
	case "", "OVERWRITE":
	case "INSERT_ROWS":
		insertRows = true
	default:
		return nil, badEnum("insert_data_option", "ValueRange.InsertDataOption", v)
	}
	vr, render, e := b.decodeWrite(raw, q, body)
	if e != nil {
		return nil, e
	}
	x, w, e := b.stage(raw, vr, userEntered, "")
	if e != nil {
		return nil, e
	}
	t := x.tab
	// The table: rows from the range's top holding a value in its columns.
	searchEnd := x.c1
	if x.ref.singleCell() {
		searchEnd = t.cols
	}
	first, last, lastCol := -1, -1, -1
	for r := x.r0; r < len(t.cells); r++ {
		for c := x.c0; c < min(searchEnd, len(t.cells[r])); c++ {
			if t.cells[r][c].kind != cellEmpty {
				if first < 0 {
					first = r
				}
				last, lastCol = r, max(lastCol, c)
			}
		}
	}
	out := &sheets.AppendValuesResponse{SpreadsheetId: b.id}
	at := x.r0
	if last >= 0 {
		out.TableRange = resolved{tab: t, r0: first, c0: x.c0, r1: last + 1, c1: lastCol + 1}.String()
		at = last + 1
	}
	n := len(w.cells)
	if insertRows && n > 0 && at < len(t.cells) {
		t.cells = slices.Insert(t.cells, at, make([][]cell, n)...)
	}
	if insertRows {
		t.rows += n
	}
	t.rows = max(t.rows, at+n)
	t.cols = max(t.cols, x.c0+w.width)
	w.tab, w.r0, w.c0 = t, at, x.c0
	w.fallback = resolved{tab: t, r0: at, c0: x.c0, r1: at + 1, c1: x.c0 + 1}.String()
	out.Updates = w.apply(b.id, q.Get("includeValuesInResponse") == "true", render)
	b.logWrites("values.append", w)
	return out, nil
}

func (b *book) valuesClear(raw string) (any, *apiError) {
	x, e := b.resolve(raw)
	if e != nil {
		return nil, e
	}
	x.clear()
	return &sheets.ClearValuesResponse{SpreadsheetId: b.id, ClearedRange: x.String()}, nil
}

func (b *book) valuesBatchClear(body []byte) (any, *apiError) {
	var req sheets.BatchClearValuesRequest
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	var xs []resolved
	for _, raw := range req.Ranges {
		x, e := b.resolve(raw)
		if e != nil {
			return nil, e
		}
		xs = append(xs, x)
	}
	out := &sheets.BatchClearValuesResponse{SpreadsheetId: b.id}
	for _, x := range xs {
		x.clear()
		out.ClearedRanges = append(out.ClearedRanges, x.String())
	}
	return out, nil
}
