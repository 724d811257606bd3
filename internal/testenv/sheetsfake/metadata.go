package sheetsfake

import (
	"encoding/json"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"net/url"
	"slices"

	"google.golang.org/api/sheets/v4"
)

// Developer metadata, as far as Kaizen uses it: metadata on one row
// (DeveloperMetadataLocation.dimensionRange of one row). Like Google's it
// stays with its row when rows are inserted or deleted above it (InsertRow,
// DeleteRow) and is deleted with its row. Google does not document whether
// a sort carries row metadata along; SortRows leaves it at its position,
// the harder case for a client. Data filters support developerMetadataLookup
// (by metadataId, metadataKey, metadataValue) and a1Range.

// devMeta is one row's developer metadata.
type devMeta struct {
	id         int64
	key, value string
	visibility string
	row        int // 0-based
}

func (t *tab) metaResource(m devMeta) *sheets.DeveloperMetadata {
	return &sheets.DeveloperMetadata{
		MetadataId: m.id, MetadataKey: m.key, MetadataValue: m.value, Visibility: m.visibility,
		Location: &sheets.DeveloperMetadataLocation{
			LocationType:   "ROW",
			DimensionRange: &sheets.DimensionRange{SheetId: t.id, Dimension: "ROWS", StartIndex: int64(m.row), EndIndex: int64(m.row + 1), ForceSendFields: []string{"SheetId", "StartIndex"}},
		},
	}
}

func metaIDTaken(tabs []*tab, id int64) bool {
	for _, t := range tabs {
		if slices.ContainsFunc(t.meta, func(m devMeta) bool { return m.id == id }) {
			return true
		}
	}
	return false
}

func createDeveloperMetadata(work *[]*tab, raw json.RawMessage, at reqAt) (*sheets.Response, *apiError) {
	var in sheets.CreateDeveloperMetadataRequest
	if e := at.decode(raw, &in); e != nil {
		return nil, e
	}
	dm := in.DeveloperMetadata
	switch {
	case dm == nil:
		return nil, at.errorf("developerMetadata is required.")
	case dm.MetadataKey == "":
		return nil, at.errorf("Developer metadata must have a key.")
	case dm.Visibility != "DOCUMENT" && dm.Visibility != "PROJECT":
		return nil, at.errorf("Developer metadata must have a visibility (DOCUMENT or PROJECT).")
	case dm.Location == nil || dm.Location.DimensionRange == nil:
		return nil, at.errorf("this location is not supported by the kaizen Sheets fake (only a row's dimensionRange).")
	}
	dr := dm.Location.DimensionRange
	idx := indexOfID(*work, dr.SheetId)
	if idx < 0 {
		return nil, at.errorf("No grid with id: %d", dr.SheetId)
	}
	t := (*work)[idx]
	if dr.Dimension != "ROWS" {
		return nil, at.errorf("this location is not supported by the kaizen Sheets fake (only a row's dimensionRange).")
	}
	if dr.EndIndex != dr.StartIndex+1 || dr.StartIndex < 0 || int(dr.StartIndex) >= t.rows {
		return nil, at.errorf("The specified DimensionRange must represent a single row or column; it cannot be unbounded or span multiple rows or columns.")
	}
	m := devMeta{id: dm.MetadataId, key: dm.MetadataKey, value: dm.MetadataValue, visibility: dm.Visibility, row: int(dr.StartIndex)}
	if m.id < 0 || (m.id != 0 && metaIDTaken(*work, m.id)) {
		return nil, at.errorf("Developer metadata with ID %d already exists or is invalid.", m.id)
	}
	for m.id == 0 || metaIDTaken(*work, m.id) {
		m.id = mrand.Int64N(math.MaxInt32) + 1
	}
	t.meta = append(slices.Clone(t.meta), m)
	return &sheets.Response{CreateDeveloperMetadata: &sheets.CreateDeveloperMetadataResponse{DeveloperMetadata: t.metaResource(m)}}, nil
}

func deleteDeveloperMetadata(work *[]*tab, raw json.RawMessage, at reqAt) (*sheets.Response, *apiError) {
	var in sheets.DeleteDeveloperMetadataRequest
	if e := at.decode(raw, &in); e != nil {
		return nil, e
	}
	if in.DataFilter == nil || in.DataFilter.DeveloperMetadataLookup == nil {
		return nil, at.errorf("dataFilter.developerMetadataLookup is required by the kaizen Sheets fake.")
	}
	out := &sheets.DeleteDeveloperMetadataResponse{}
	for _, t := range *work {
		var keep []devMeta
		for _, m := range t.meta {
			if lookupMatches(in.DataFilter.DeveloperMetadataLookup, m) {
				out.DeletedDeveloperMetadata = append(out.DeletedDeveloperMetadata, t.metaResource(m))
			} else {
				keep = append(keep, m)
			}
		}
		t.meta = keep
	}
	return &sheets.Response{DeleteDeveloperMetadata: out}, nil
}

func lookupMatches(l *sheets.DeveloperMetadataLookup, m devMeta) bool {
	return (l.MetadataId == 0 || l.MetadataId == m.id) &&
		(l.MetadataKey == "" || l.MetadataKey == m.key) &&
		(l.MetadataValue == "" || l.MetadataValue == m.value)
}

// filterRanges resolves a data filter to the ranges it selects: the rows
// of the matching metadata (the whole row, as Google does), or an A1 range.
func (b *book) filterRanges(f *sheets.DataFilter, field string) ([]resolved, *apiError) {
	switch {
	case f == nil:
		return nil, errorf(400, "Invalid %s: a data filter is required.", field)
	case f.A1Range != "":
		x, e := b.resolve(f.A1Range)
		if e != nil {
			return nil, e
		}
		return []resolved{x}, nil
	case f.DeveloperMetadataLookup != nil:
		l := f.DeveloperMetadataLookup
		if l.MetadataId == 0 && l.MetadataKey == "" && l.MetadataValue == "" {
			return nil, errorf(400, "Invalid %s: the developer metadata lookup must name an id, key or value.", field)
		}
		var out []resolved
		for _, t := range b.tabs {
			for _, m := range t.meta {
				if lookupMatches(l, m) {
					out = append(out, resolved{tab: t, ref: rangeRef{Sheet: t.title, StartRow: m.row + 1, EndRow: m.row + 1}, r0: m.row, c0: 0, r1: m.row + 1, c1: t.cols})
				}
			}
		}
		return out, nil
	}
	return nil, errorf(400, "Invalid %s: this data filter is not supported by the kaizen Sheets fake (a1Range or developerMetadataLookup).", field)
}

// valuesBatchGetByDataFilter serves values.batchGetByDataFilter (a read,
// though sent as POST).
func (b *book) valuesBatchGetByDataFilter(body []byte) (any, *apiError) {
	var req sheets.BatchGetValuesByDataFilterRequest
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	q := url.Values{}
	if req.ValueRenderOption != "" {
		q.Set("valueRenderOption", req.ValueRenderOption)
	}
	if req.MajorDimension != "" {
		q.Set("majorDimension", req.MajorDimension)
	}
	out := &sheets.BatchGetValuesByDataFilterResponse{SpreadsheetId: b.id}
	for i, f := range req.DataFilters {
		xs, e := b.filterRanges(f, fmt.Sprintf("dataFilters[%d]", i))
		if e != nil {
			return nil, e
		}
		for _, x := range xs {
			vr, e := b.readRange(x.String(), q)
			if e != nil {
				return nil, e
			}
			out.ValueRanges = append(out.ValueRanges, &sheets.MatchedValueRange{ValueRange: vr, DataFilters: []*sheets.DataFilter{f}})
		}
	}
	return out, nil
}

// valuesBatchUpdateByDataFilter serves values.batchUpdateByDataFilter:
// each value range is written into every range its filter selects,
// starting at the range's top-left cell; null values leave cells alone.
func (b *book) valuesBatchUpdateByDataFilter(body []byte) (any, *apiError) {
	var req sheets.BatchUpdateValuesByDataFilterRequest
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	userEntered, e := inputOption(req.ValueInputOption, errorf(400, "Invalid valueInputOption: INPUT_VALUE_OPTION_UNSPECIFIED"))
	if e != nil {
		return nil, e
	}
	type planned struct {
		f *sheets.DataFilter
		w *writePlan
	}
	var writes []planned
	for i, d := range req.Data {
		field := fmt.Sprintf("data[%d].", i)
		if d == nil {
			return nil, errorf(400, "Invalid %sdataFilter: a data filter is required.", field)
		}
		xs, e := b.filterRanges(d.DataFilter, field+"dataFilter")
		if e != nil {
			return nil, e
		}
		for _, x := range xs {
			w, e := b.planWrite(x.String(), &sheets.ValueRange{MajorDimension: d.MajorDimension, Values: d.Values}, userEntered, field)
			if e != nil {
				return nil, e
			}
			writes = append(writes, planned{d.DataFilter, w})
		}
	}
	out := &sheets.BatchUpdateValuesByDataFilterResponse{SpreadsheetId: b.id}
	rows, cols, tabs := map[[2]any]bool{}, map[[2]any]bool{}, map[*tab]bool{}
	var plans []*writePlan
	for _, p := range writes {
		resp := p.w.apply(b.id, false, renderFormatted)
		out.Responses = append(out.Responses, &sheets.UpdateValuesByDataFilterResponse{
			DataFilter: p.f, UpdatedRange: resp.UpdatedRange, UpdatedCells: resp.UpdatedCells,
			UpdatedRows: resp.UpdatedRows, UpdatedColumns: resp.UpdatedColumns,
		})
		out.TotalUpdatedCells += resp.UpdatedCells
		for pp := range p.w.written() {
			rows[[2]any{p.w.tab, pp.r}], cols[[2]any{p.w.tab, pp.c}], tabs[p.w.tab] = true, true, true
		}
		plans = append(plans, p.w)
	}
	out.TotalUpdatedRows, out.TotalUpdatedColumns, out.TotalUpdatedSheets = int64(len(rows)), int64(len(cols)), int64(len(tabs))
	b.logWrites("values.batchUpdateByDataFilter", plans...)
	return out, nil
}

// DeveloperMetadata returns the row metadata of a sheet: key → value →
// 1-based row.
func (f *Fake) DeveloperMetadata(id, sheet string) map[string]map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]map[string]int{}
	for _, m := range f.mustTab(id, sheet).meta {
		if out[m.key] == nil {
			out[m.key] = map[string]int{}
		}
		out[m.key][m.value] = m.row + 1
	}
	return out
}
