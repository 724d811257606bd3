package sheet

import (
	"context"
	"fmt"
	"strings"

	"google.golang.org/api/sheets/v4"

	"github.com/kaizen-onboard/kaizen/internal/config"
)

// missingColumns returns the names (in order, each once) that header lacks,
// compared as config.HeaderKey does, and the index after the header's last
// non-empty cell, where they go.
func missingColumns(header []string, names []string) (missing []string, at int) {
	have := map[string]bool{}
	for i, h := range header {
		if k := config.HeaderKey(h); k != "" {
			have[k] = true
			at = i + 1
		}
	}
	for _, n := range names {
		k := config.HeaderKey(n)
		if k == "" || have[k] {
			continue
		}
		have[k] = true
		missing = append(missing, strings.TrimSpace(n))
	}
	return missing, at
}

// AddColumns writes each of names that the header row lacks into the
// header row, after its last used column, in the order given, and returns
// the names it added (none: nothing was written). A Google Form's response
// sheet has none of the columns kaizen writes back (Status, Processed At,
// ...); this adds them on the first run that needs them. The worksheet's
// grid is widened first when it has too few columns.
//
// API calls: one read of the header row; when something is missing, one
// write, plus a read of the grid size and a resize when it is too narrow.
func (g *Google) AddColumns(ctx context.Context, names []string) ([]string, error) {
	sheet := quoteSheet(g.worksheet)
	rng := sheet + "!1:1"
	var vr *sheets.ValueRange
	err := g.retried(ctx, rng, func() error {
		var err error
		vr, err = g.svc.Spreadsheets.Values.Get(g.id, rng).MajorDimension("ROWS").
			ValueRenderOption("FORMATTED_VALUE").Context(ctx).Do()
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("reading the header row of %s: %w", g.where(sheet), err)
	}
	var header []string
	if len(vr.Values) > 0 {
		for _, v := range vr.Values[0] {
			header = append(header, fmt.Sprint(v))
		}
	}
	missing, at := missingColumns(header, names)
	if len(missing) == 0 {
		return nil, nil
	}
	if err := g.widen(ctx, at+len(missing)); err != nil {
		return nil, err
	}
	cells := make([]any, len(missing))
	for i, n := range missing {
		cells[i] = n
	}
	target := sheet + "!" + columnName(at) + "1:" + columnName(at+len(missing)-1) + "1"
	err = g.retried(ctx, target, func() error {
		_, err := g.svc.Spreadsheets.Values.Update(g.id, target, &sheets.ValueRange{
			Range: target, MajorDimension: "ROWS", Values: [][]any{cells},
		}).ValueInputOption("RAW").Context(ctx).Do()
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("adding the columns %s to the header row of %s: %w", quoteList(missing), g.where(sheet), err)
	}
	return missing, nil
}

// widen makes the worksheet at least cols columns wide.
func (g *Google) widen(ctx context.Context, cols int) error {
	var ss *sheets.Spreadsheet
	err := g.retried(ctx, quoteSheet(g.worksheet), func() error {
		var err error
		ss, err = g.svc.Spreadsheets.Get(g.id).Fields("sheets.properties").Context(ctx).Do()
		return err
	})
	if err != nil {
		return fmt.Errorf("reading the size of %s: %w", g.where(quoteSheet(g.worksheet)), err)
	}
	for _, s := range ss.Sheets {
		p := s.Properties
		if p == nil || p.Title != g.worksheet {
			continue
		}
		if p.GridProperties != nil && p.GridProperties.ColumnCount >= int64(cols) {
			return nil
		}
		req := &sheets.BatchUpdateSpreadsheetRequest{Requests: []*sheets.Request{{
			UpdateSheetProperties: &sheets.UpdateSheetPropertiesRequest{
				Properties: &sheets.SheetProperties{SheetId: p.SheetId,
					GridProperties: &sheets.GridProperties{ColumnCount: int64(cols)}},
				Fields: "gridProperties.columnCount",
			},
		}}}
		err := g.retried(ctx, quoteSheet(g.worksheet), func() error {
			_, err := g.svc.Spreadsheets.BatchUpdate(g.id, req).Context(ctx).Do()
			return err
		})
		if err != nil {
			return fmt.Errorf("widening %s to %d columns: %w", g.where(quoteSheet(g.worksheet)), cols, err)
		}
		return nil
	}
	return fmt.Errorf("%s: no worksheet %q (sheet.worksheet)", g.where(quoteSheet(g.worksheet)), g.worksheet)
}

// AddColumns is [Google.AddColumns] for a CSV file: the header record gets
// the missing names after its last non-empty cell; the file is replaced
// atomically.
func (c *CSV) AddColumns(ctx context.Context, names []string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	f, err := c.load()
	if err != nil {
		return nil, err
	}
	if len(f.records) == 0 {
		f.records = [][]string{{}}
	}
	missing, at := missingColumns(f.records[0], names)
	if len(missing) == 0 {
		return nil, nil
	}
	h := f.records[0]
	for len(h) < at {
		h = append(h, "")
	}
	f.records[0] = append(h[:at:at], missing...)
	if err := c.replace(f); err != nil {
		return nil, fmt.Errorf("adding the columns %s to the header of %s: %w", quoteList(missing), c.path, err)
	}
	return missing, nil
}
