package sheet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"google.golang.org/api/sheets/v4"
)

// StoreMarker records in a spreadsheet which state store imports it, so
// that a run with another store (another working directory, another host,
// another store.url) notices before it mails anyone a second link. It
// names the store, never its connection string's secrets.
type StoreMarker struct {
	// StoreID is the store's random ID (store.Identity).
	StoreID string `json:"store_id"`
	// Store describes the store for a person: e.g. "sqlite:///var/lib/
	// kaizen/kaizen.db on host h1", or a Postgres URL without its password.
	Store string `json:"store"`
	// At is when a run last claimed the sheet for the store.
	At time.Time `json:"claimed_at"`
}

// MarkerWorksheet is the hidden worksheet of a Google spreadsheet holding
// its [StoreMarker] (an admin can unhide it to read it).
const MarkerWorksheet = "kaizen-store"

var markerHeader = []any{"store_id", "store", "claimed_at", "note"}

const markerNote = "Written by kaizen addusers: the state store that imports this spreadsheet. " +
	"A run with another store refuses to run; addusers import --take-over moves the sheet to its store."

// StoreMarker returns the spreadsheet's marker; ok is false when there is
// none yet. API calls: one spreadsheets.get, and one values.get when the
// marker worksheet exists.
func (g *Google) StoreMarker(ctx context.Context) (m StoreMarker, ok bool, err error) {
	exists, err := g.markerSheetExists(ctx)
	if err != nil || !exists {
		return StoreMarker{}, false, err
	}
	rng := quoteSheet(MarkerWorksheet) + "!A2:C2"
	var vr *sheets.ValueRange
	err = g.retried(ctx, rng, func() error {
		var err error
		vr, err = g.svc.Spreadsheets.Values.Get(g.id, rng).ValueRenderOption("UNFORMATTED_VALUE").Context(ctx).Do()
		return err
	})
	if err != nil {
		return StoreMarker{}, false, fmt.Errorf("reading the store marker of %s: %w", g.where(rng), err)
	}
	if len(vr.Values) == 0 || len(vr.Values[0]) == 0 {
		return StoreMarker{}, false, nil
	}
	cells := make([]string, 3)
	for i, v := range vr.Values[0] {
		if i < len(cells) {
			cells[i] = fmt.Sprint(v)
		}
	}
	if cells[0] == "" {
		return StoreMarker{}, false, nil
	}
	at, _ := time.Parse(time.RFC3339, cells[2])
	return StoreMarker{StoreID: cells[0], Store: cells[1], At: at}, true, nil
}

// SetStoreMarker records m, creating the hidden marker worksheet first
// when there is none. API calls: spreadsheets.get, then (the first time)
// a spreadsheets.batchUpdate adding the worksheet, and a values.update.
func (g *Google) SetStoreMarker(ctx context.Context, m StoreMarker) error {
	exists, err := g.markerSheetExists(ctx)
	if err != nil {
		return err
	}
	if !exists {
		req := &sheets.BatchUpdateSpreadsheetRequest{Requests: []*sheets.Request{{
			AddSheet: &sheets.AddSheetRequest{Properties: &sheets.SheetProperties{
				Title: MarkerWorksheet, Hidden: true,
				GridProperties: &sheets.GridProperties{RowCount: 2, ColumnCount: 4},
			}},
		}}}
		err := g.retried(ctx, quoteSheet(MarkerWorksheet), func() error {
			_, err := g.svc.Spreadsheets.BatchUpdate(g.id, req).Context(ctx).Do()
			return err
		})
		if err != nil {
			return fmt.Errorf("adding the hidden worksheet %q to spreadsheet %q: %w", MarkerWorksheet, g.id, err)
		}
	}
	rng := quoteSheet(MarkerWorksheet) + "!A1:D2"
	vr := &sheets.ValueRange{Range: rng, MajorDimension: "ROWS", Values: [][]any{
		markerHeader, {m.StoreID, m.Store, m.At.UTC().Format(time.RFC3339), markerNote},
	}}
	err = g.retried(ctx, rng, func() error {
		_, err := g.svc.Spreadsheets.Values.Update(g.id, rng, vr).ValueInputOption("RAW").Context(ctx).Do()
		return err
	})
	if err != nil {
		return fmt.Errorf("writing the store marker to %s: %w", g.where(rng), err)
	}
	return nil
}

func (g *Google) markerSheetExists(ctx context.Context) (bool, error) {
	var ss *sheets.Spreadsheet
	err := g.retried(ctx, quoteSheet(MarkerWorksheet), func() error {
		var err error
		ss, err = g.svc.Spreadsheets.Get(g.id).Fields("sheets.properties.title").Context(ctx).Do()
		return err
	})
	if err != nil {
		return false, fmt.Errorf("listing the worksheets of spreadsheet %q: %w", g.id, err)
	}
	for _, s := range ss.Sheets {
		if s.Properties != nil && s.Properties.Title == MarkerWorksheet {
			return true, nil
		}
	}
	return false, nil
}

// retried runs one Sheets call with the sheet's retries (the write paths'
// policy) and explains a permanent failure.
func (g *Google) retried(ctx context.Context, rng string, call func() error) error {
	return g.do(ctx, rng, g.newBackoff(), call)
}

// MarkerPath is the sidecar file holding a CSV sheet's [StoreMarker]: the
// CSV file's path with ".kaizen-store" appended.
func (c *CSV) MarkerPath() string { return c.path + ".kaizen-store" }

// StoreMarker reads the CSV file's sidecar marker; ok is false without one.
func (c *CSV) StoreMarker(ctx context.Context) (StoreMarker, bool, error) {
	if err := ctx.Err(); err != nil {
		return StoreMarker{}, false, err
	}
	data, err := os.ReadFile(c.MarkerPath())
	if errors.Is(err, os.ErrNotExist) {
		return StoreMarker{}, false, nil
	}
	if err != nil {
		return StoreMarker{}, false, fmt.Errorf("reading the store marker: %w", err)
	}
	var m StoreMarker
	if err := json.Unmarshal(data, &m); err != nil || m.StoreID == "" {
		return StoreMarker{}, false, fmt.Errorf("the store marker %s is damaged; delete it to let the next run claim the sheet", c.MarkerPath())
	}
	return m, true, nil
}

// SetStoreMarker writes the sidecar marker atomically.
func (c *CSV) SetStoreMarker(ctx context.Context, m StoreMarker) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	data, err := json.MarshalIndent(struct {
		StoreMarker
		Note string `json:"note"`
	}{m, markerNote}, "", "  ")
	if err != nil {
		return err
	}
	tmp := c.MarkerPath() + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("writing the store marker: %w", err)
	}
	if err := os.Rename(tmp, c.MarkerPath()); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing the store marker: %w", err)
	}
	return nil
}
