package sheetsfake

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"google.golang.org/api/sheets/v4"
)

const titleDup = "A sheet with the name %q already exists. Please enter another name."

type propsIn struct {
	SheetID        *int64  `json:"sheetId"`
	Title          *string `json:"title"`
	Index          *int64  `json:"index"`
	GridProperties *struct {
		RowCount    *int64 `json:"rowCount"`
		ColumnCount *int64 `json:"columnCount"`
	} `json:"gridProperties"`
}

// reqAt names one request of a batch, which Google's errors start with.
type reqAt struct {
	i    int
	kind string
}

func (at reqAt) errorf(format string, args ...any) *apiError {
	return errorf(400, "Invalid requests[%d].%s: %s", at.i, at.kind, fmt.Sprintf(format, args...))
}

func (at reqAt) decode(raw json.RawMessage, v any) *apiError {
	if err := json.Unmarshal(raw, v); err != nil {
		return at.errorf("%v", err)
	}
	return nil
}

func (b *book) batchUpdate(body []byte) (any, *apiError) {
	var req struct {
		Requests                     []map[string]json.RawMessage `json:"requests"`
		IncludeSpreadsheetInResponse bool                         `json:"includeSpreadsheetInResponse"`
		ResponseRanges               []string                     `json:"responseRanges"`
		ResponseIncludeGridData      bool                         `json:"responseIncludeGridData"`
	}
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	if len(req.Requests) == 0 {
		return nil, errorf(400, "Must specify at least one request.")
	}
	// Work on copies of the sheets so a failing request changes nothing.
	work := make([]*tab, len(b.tabs))
	for i, t := range b.tabs {
		c := *t
		c.meta = slices.Clone(t.meta)
		work[i] = &c
	}
	out := &sheets.BatchUpdateSpreadsheetResponse{SpreadsheetId: b.id}
	for i, rq := range req.Requests {
		if len(rq) != 1 {
			return nil, errorf(400, "Invalid requests[%d]: exactly one request kind must be set, got %d.", i, len(rq))
		}
		for kind, raw := range rq {
			at := reqAt{i, kind}
			var reply *sheets.Response
			var e *apiError
			switch kind {
			case "addSheet":
				reply, e = addSheet(&work, raw, at)
			case "deleteSheet":
				reply, e = deleteSheet(&work, raw, at)
			case "updateSheetProperties":
				reply, e = updateSheetProperties(&work, raw, at)
			case "createDeveloperMetadata":
				reply, e = createDeveloperMetadata(&work, raw, at)
			case "deleteDeveloperMetadata":
				reply, e = deleteDeveloperMetadata(&work, raw, at)
			default:
				if knownRequest(kind) {
					e = at.errorf("this request kind is not supported by the kaizen Sheets fake (supported: addSheet, deleteSheet, updateSheetProperties, createDeveloperMetadata, deleteDeveloperMetadata).")
				} else {
					e = errorf(400, "Invalid JSON payload received. Unknown name %q at 'requests[%d]': Cannot find field.", kind, i)
				}
			}
			if e != nil {
				return nil, e
			}
			out.Replies = append(out.Replies, reply)
		}
	}
	b.tabs = work
	if req.IncludeSpreadsheetInResponse {
		out.UpdatedSpreadsheet = b.resource()
	}
	return out, nil
}

// knownRequest reports whether kind is a real Request field, so an
// unsupported-but-valid request is told apart from a typo.
func knownRequest(kind string) bool {
	rt := reflect.TypeFor[sheets.Request]()
	for i := range rt.NumField() {
		if name, _, _ := strings.Cut(rt.Field(i).Tag.Get("json"), ","); name == kind {
			return true
		}
	}
	return false
}

func titleTaken(tabs []*tab, title string, except *tab) bool {
	return slices.ContainsFunc(tabs, func(t *tab) bool { return t != except && strings.EqualFold(t.title, title) })
}

func indexOfID(tabs []*tab, id int64) int {
	return slices.IndexFunc(tabs, func(t *tab) bool { return t.id == id })
}

func addSheet(work *[]*tab, raw json.RawMessage, at reqAt) (*sheets.Response, *apiError) {
	var in struct {
		Properties propsIn `json:"properties"`
	}
	if e := at.decode(raw, &in); e != nil {
		return nil, e
	}
	p := in.Properties
	t := &tab{rows: defaultRows, cols: defaultCols}
	if p.Title != nil && *p.Title != "" {
		t.title = *p.Title
		if titleTaken(*work, t.title, nil) {
			return nil, at.errorf(titleDup, t.title)
		}
	} else {
		for n := len(*work) + 1; ; n++ {
			if title := "Sheet" + strconv.Itoa(n); !titleTaken(*work, title, nil) {
				t.title = title
				break
			}
		}
	}
	if p.SheetID != nil {
		t.id = *p.SheetID
		if t.id < 0 || indexOfID(*work, t.id) >= 0 {
			return nil, at.errorf("Sheet with id %d already exists or is invalid.", t.id)
		}
	} else {
		t.id = newSheetID(*work)
	}
	if g := p.GridProperties; g != nil {
		if e := setGridSize(t, g.RowCount, g.ColumnCount, at); e != nil {
			return nil, e
		}
	}
	idx := len(*work)
	if p.Index != nil {
		idx = int(min(max(*p.Index, 0), int64(len(*work))))
	}
	*work = slices.Insert(*work, idx, t)
	return &sheets.Response{AddSheet: &sheets.AddSheetResponse{Properties: t.props(idx)}}, nil
}

func setGridSize(t *tab, rows, cols *int64, at reqAt) *apiError {
	if rows != nil {
		if *rows < 1 || *rows > maxRow {
			return at.errorf("rowCount must be between 1 and %d.", maxRow)
		}
		t.rows = int(*rows)
	}
	if cols != nil {
		if *cols < 1 || *cols > maxCols {
			return at.errorf("columnCount must be between 1 and %d.", maxCols)
		}
		t.cols = int(*cols)
	}
	// Shrinking drops the cells outside the grid; copy so the original
	// (shared until the request commits) is untouched.
	cells := make([][]cell, 0, min(len(t.cells), t.rows))
	for _, row := range t.cells[:min(len(t.cells), t.rows)] {
		cells = append(cells, slices.Clone(row[:min(len(row), t.cols)]))
	}
	t.cells = cells
	return nil
}

func deleteSheet(work *[]*tab, raw json.RawMessage, at reqAt) (*sheets.Response, *apiError) {
	var in struct {
		SheetID int64 `json:"sheetId"`
	}
	if e := at.decode(raw, &in); e != nil {
		return nil, e
	}
	idx := indexOfID(*work, in.SheetID)
	if idx < 0 {
		return nil, at.errorf("No grid with id: %d", in.SheetID)
	}
	if len(*work) == 1 {
		return nil, at.errorf("You can't remove all the sheets in a document.")
	}
	*work = slices.Delete(*work, idx, idx+1)
	return &sheets.Response{}, nil
}

// updateSheetProperties applies title, index and grid size; other
// (cosmetic) fields named in the mask are accepted and ignored.
func updateSheetProperties(work *[]*tab, raw json.RawMessage, at reqAt) (*sheets.Response, *apiError) {
	var in struct {
		Properties propsIn `json:"properties"`
		Fields     string  `json:"fields"`
	}
	if e := at.decode(raw, &in); e != nil {
		return nil, e
	}
	if strings.TrimSpace(in.Fields) == "" {
		return nil, at.errorf("At least one field must be listed in 'fields'. (Use '*' to indicate all fields.)")
	}
	p := in.Properties
	var id int64
	if p.SheetID != nil {
		id = *p.SheetID
	}
	idx := indexOfID(*work, id)
	if idx < 0 {
		return nil, at.errorf("No grid with id: %d", id)
	}
	t := (*work)[idx]
	var rows, cols *int64
	for _, f := range strings.Split(in.Fields, ",") {
		f = strings.TrimSpace(f)
		all := f == "*"
		if all || f == "title" {
			switch {
			case p.Title == nil || *p.Title == "":
				return nil, at.errorf("The sheet name cannot be empty.")
			case titleTaken(*work, *p.Title, t):
				return nil, at.errorf(titleDup, *p.Title)
			}
			t.title = *p.Title
		}
		if g := p.GridProperties; g != nil && (all || f == "gridProperties" || f == "gridProperties.rowCount") {
			rows = g.RowCount
		}
		if g := p.GridProperties; g != nil && (all || f == "gridProperties" || f == "gridProperties.columnCount") {
			cols = g.ColumnCount
		}
		if (all || f == "index") && p.Index != nil {
			to := int(min(max(*p.Index, 0), int64(len(*work)-1)))
			*work = slices.Insert(slices.Delete(*work, idx, idx+1), to, t)
			idx = to
		}
	}
	if rows != nil || cols != nil {
		if e := setGridSize(t, rows, cols, at); e != nil {
			return nil, e
		}
	}
	return &sheets.Response{}, nil
}
