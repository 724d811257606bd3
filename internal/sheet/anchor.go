package sheet

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"

	"google.golang.org/api/sheets/v4"
)

// anchorKey starts the developer-metadata key of the row anchors
// WriteBatch sets. Row metadata stays with its row when rows are inserted or deleted
// above it, so a write addressed by anchor lands in the anchored row
// wherever it has moved.
const anchorKey = "kaizen.writeback"

// anchorRounds bounds how often WriteBatch anchors rows anew that moved
// between its re-read and the anchoring.
const anchorRounds = 3

type sheetIDCache struct {
	mu sync.Mutex
	id *int64
}

// sheetID returns the worksheet's numeric sheetId (one spreadsheets.get,
// then cached).
func (g *Google) sheetID(ctx context.Context, b *backoff) (int64, error) {
	g.sid.mu.Lock()
	defer g.sid.mu.Unlock()
	if g.sid.id != nil {
		return *g.sid.id, nil
	}
	var ss *sheets.Spreadsheet
	err := g.do(ctx, quoteSheet(g.worksheet), b, func() error {
		var err error
		ss, err = g.svc.Spreadsheets.Get(g.id).Fields("sheets.properties(sheetId,title)").Context(ctx).Do()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("looking up worksheet %q of spreadsheet %q: %w", g.worksheet, g.id, err)
	}
	for _, s := range ss.Sheets {
		if s.Properties != nil && strings.EqualFold(s.Properties.Title, g.worksheet) {
			id := s.Properties.SheetId
			g.sid.id = &id
			return id, nil
		}
	}
	return 0, fmt.Errorf("spreadsheet %q has no worksheet %q (sheet.worksheet; the tab name, not the file name)", g.id, g.worksheet)
}

// writeRound is one WriteBatch attempt at the writes in pending (indexes
// into writes): locate them in t, anchor their rows with developer
// metadata, read the anchored rows to confirm each carries its identity,
// write the confirmed ones by anchor (values.batchUpdateByDataFilter) and
// remove the anchors. It returns what was written and where, and the
// writes to try again in a new round (their anchor missed the row: it
// moved before the anchoring, or was deleted before the write). err is for
// the round as a whole; nothing was written then.
func (g *Google) writeRound(ctx context.Context, b *backoff, t *Table, writes []Write, pending []int, results []WriteResult) (done []written, again []int, err error) {
	sub := make([]Write, len(pending))
	for i, w := range pending {
		sub[i] = writes[w]
	}
	res, targets := plan(t, g.cols, sub, g.where(quoteSheet(g.worksheet)))
	byRow := map[int]int{} // located row → index into writes
	for i, r := range res {
		if r.Err != nil {
			results[pending[i]] = r
			continue
		}
		byRow[r.Row] = pending[i]
	}
	if len(targets) == 0 {
		return nil, nil, nil
	}
	sid, err := g.sheetID(ctx, b)
	if err != nil {
		return nil, nil, err
	}
	var tok [8]byte
	if _, err := io.ReadFull(g.random, tok[:]); err != nil {
		return nil, nil, fmt.Errorf("choosing row anchors: %w", err)
	}
	// Each round has a key of its own, so that one delete drops all its
	// anchors and nothing else (another writer's, say).
	key := anchorKey + "." + hex.EncodeToString(tok[:])
	anchor := func(w int) string { return "w" + strconv.Itoa(w) }
	lookup := func(w int) *sheets.DataFilter {
		return &sheets.DataFilter{DeveloperMetadataLookup: &sheets.DeveloperMetadataLookup{MetadataKey: key, MetadataValue: anchor(w)}}
	}

	// 1. Anchor each located row (one write call).
	create := &sheets.BatchUpdateSpreadsheetRequest{}
	for _, tg := range targets {
		create.Requests = append(create.Requests, &sheets.Request{CreateDeveloperMetadata: &sheets.CreateDeveloperMetadataRequest{
			DeveloperMetadata: &sheets.DeveloperMetadata{
				MetadataKey: key, MetadataValue: anchor(byRow[tg.row]), Visibility: "DOCUMENT",
				Location: &sheets.DeveloperMetadataLocation{DimensionRange: &sheets.DimensionRange{
					SheetId: sid, Dimension: "ROWS", StartIndex: int64(tg.row - 1), EndIndex: int64(tg.row),
					ForceSendFields: []string{"SheetId", "StartIndex"},
				}},
			},
		}})
	}
	if _, err := g.svc.Spreadsheets.BatchUpdate(g.id, create).Context(ctx).Do(); err != nil {
		return nil, nil, err
	}
	defer func() {
		// After a failed round the quota is likely spent: one try, and
		// no waiting on the retry budget for what is only tidying up.
		g.dropAnchors(ctx, b, key, err == nil)
	}()

	// 2. Read the anchored rows: is each still the row located?
	get := &sheets.BatchGetValuesByDataFilterRequest{MajorDimension: "ROWS", ValueRenderOption: "FORMATTED_VALUE"}
	for _, tg := range targets {
		get.DataFilters = append(get.DataFilters, lookup(byRow[tg.row]))
	}
	var got *sheets.BatchGetValuesByDataFilterResponse
	err = g.do(ctx, quoteSheet(g.worksheet), b, func() error {
		var err error
		got, err = g.svc.Spreadsheets.Values.BatchGetByDataFilter(g.id, get).Context(ctx).Do()
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	confirmed := map[string]bool{}
	for _, mv := range got.ValueRanges {
		if mv.ValueRange == nil || len(mv.DataFilters) == 0 || mv.DataFilters[0].DeveloperMetadataLookup == nil {
			continue
		}
		v := mv.DataFilters[0].DeveloperMetadataLookup.MetadataValue
		w := anchorWrite(v)
		if w < 0 {
			continue
		}
		var cells []string
		if len(mv.ValueRange.Values) > 0 {
			for _, c := range mv.ValueRange.Values[0] {
				s, _ := c.(string)
				cells = append(cells, s)
			}
		}
		confirmed[v] = identityOf(t, g.cols, Row{Cells: cells}).same(writes[w].ID)
	}

	// 3. Write the confirmed rows by anchor (one write call), RAW; nulls
	// leave the row's other cells alone.
	put := &sheets.BatchUpdateValuesByDataFilterRequest{ValueInputOption: "RAW"}
	for _, tg := range targets {
		w := byRow[tg.row]
		if !confirmed[anchor(w)] {
			again = append(again, w)
			continue
		}
		last := slices.Max(slices.Collect(maps.Keys(tg.cells)))
		row := make([]any, last+1)
		for c, v := range tg.cells {
			row[c] = v
		}
		put.Data = append(put.Data, &sheets.DataFilterValueRange{DataFilter: lookup(w), MajorDimension: "ROWS", Values: [][]any{row}})
	}
	if len(put.Data) == 0 {
		return nil, again, nil
	}
	resp, err := g.svc.Spreadsheets.Values.BatchUpdateByDataFilter(g.id, put).Context(ctx).Do()
	if err != nil {
		return nil, nil, err
	}
	landedAt := map[int]int{}
	for _, r := range resp.Responses {
		if r.DataFilter == nil || r.DataFilter.DeveloperMetadataLookup == nil {
			continue
		}
		w := anchorWrite(r.DataFilter.DeveloperMetadataLookup.MetadataValue)
		if n, ok := rowOfRange(r.UpdatedRange); ok && w >= 0 {
			landedAt[w] = n
		}
	}
	for _, tg := range targets {
		w := byRow[tg.row]
		if !confirmed[anchor(w)] {
			continue
		}
		if n, ok := landedAt[w]; ok {
			done = append(done, written{w: w, row: n, cells: tg.cells})
		} else {
			again = append(again, w) // its row was deleted after the check
		}
	}
	return done, again, nil
}

// dropAnchors removes a round's anchors, all under key (one write call),
// retried as the budget allows when retry is set. A failure only leaves
// metadata behind that nothing reads again.
func (g *Google) dropAnchors(ctx context.Context, b *backoff, key string, retry bool) {
	del := &sheets.BatchUpdateSpreadsheetRequest{Requests: []*sheets.Request{{DeleteDeveloperMetadata: &sheets.DeleteDeveloperMetadataRequest{
		DataFilter: &sheets.DataFilter{DeveloperMetadataLookup: &sheets.DeveloperMetadataLookup{MetadataKey: key}}}}}}
	call := func() error {
		_, err := g.svc.Spreadsheets.BatchUpdate(g.id, del).Context(ctx).Do()
		return err
	}
	if !retry {
		_ = call()
		return
	}
	_ = g.do(ctx, quoteSheet(g.worksheet), b, call)
}

// anchorWrite is the write index an anchor value names, or -1.
func anchorWrite(v string) int {
	n, ok := strings.CutPrefix(v, "w")
	if !ok {
		return -1
	}
	w, err := strconv.Atoi(n)
	if err != nil {
		return -1
	}
	return w
}

// rowOfRange reads the first row number of an A1 range such as
// "'Form Responses 1'!A5:Z5".
func rowOfRange(a1 string) (int, bool) {
	if i := strings.LastIndex(a1, "!"); i >= 0 {
		a1 = a1[i+1:]
	}
	a1, _, _ = strings.Cut(a1, ":")
	digits := strings.TrimLeft(a1, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz$")
	n, err := strconv.Atoi(strings.TrimPrefix(digits, "$"))
	return n, err == nil && n > 0
}

var errKeptMoving = errors.New("kept moving")
