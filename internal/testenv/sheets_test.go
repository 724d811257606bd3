package testenv

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2/google"
	"golang.org/x/oauth2/jws"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/option"
	"google.golang.org/api/sheets/v4"
)

const testBook = "book-1"

// newSheetsFixture starts a fake with one spreadsheet holding three sheets,
// and a real client authenticated through the service-account flow.
func newSheetsFixture(t *testing.T) (*SheetsFake, *sheets.Service) {
	t.Helper()
	f := NewSheets(t)
	f.AddSpreadsheet(testBook, "Kaizen approvals")
	f.AddSheet(testBook, "Form Responses 1", [][]string{
		{"Timestamp", "Email", "Name", "Approved"},
		{"2024-01-01 10:00", "alice@example.com", "Alice", "yes"},
		{"2024-01-02 11:00", "bob@example.com"},
		{},
		{"2024-01-03 12:00", "", "Carol"},
		{"", "", "", ""},
	})
	f.AddSheet(testBook, "Sheet1", nil)
	f.AddSheet(testBook, "It's", [][]string{{"quoted"}})
	return f, f.Service(t.Context(), t)
}

func rowsOf(v ...[]any) [][]any { return v }

func TestSheetsRead(t *testing.T) {
	t.Parallel()
	f, svc := newSheetsFixture(t)
	t.Cleanup(func() { // after the parallel subtests
		if n := f.TokenExchanges(); n < 1 {
			t.Errorf("TokenExchanges = %d; the JWT flow did not run", n)
		}
	})

	tests := []struct {
		name      string
		rng       string
		dim       string
		render    string
		wantRange string
		want      [][]any
	}{
		{
			name:      "bare quoted sheet is whole sheet, ragged",
			rng:       "'Form Responses 1'",
			wantRange: "'Form Responses 1'!A1:Z1000",
			want: rowsOf(
				[]any{"Timestamp", "Email", "Name", "Approved"},
				[]any{"2024-01-01 10:00", "alice@example.com", "Alice", "yes"},
				[]any{"2024-01-02 11:00", "bob@example.com"},
				[]any{},
				[]any{"2024-01-03 12:00", "", "Carol"},
			),
		},
		{
			name:      "whole columns",
			rng:       "'Form Responses 1'!b:c",
			wantRange: "'Form Responses 1'!B1:C1000",
			want: rowsOf(
				[]any{"Email", "Name"},
				[]any{"alice@example.com", "Alice"},
				[]any{"bob@example.com"},
				[]any{},
				[]any{"", "Carol"},
			),
		},
		{
			name:      "open-ended rows",
			rng:       "'Form Responses 1'!A2:Z",
			wantRange: "'Form Responses 1'!A2:Z1000",
			want: rowsOf(
				[]any{"2024-01-01 10:00", "alice@example.com", "Alice", "yes"},
				[]any{"2024-01-02 11:00", "bob@example.com"},
				[]any{},
				[]any{"2024-01-03 12:00", "", "Carol"},
			),
		},
		{
			name:      "whole rows",
			rng:       "'Form Responses 1'!2:3",
			wantRange: "'Form Responses 1'!A2:Z3",
			want: rowsOf(
				[]any{"2024-01-01 10:00", "alice@example.com", "Alice", "yes"},
				[]any{"2024-01-02 11:00", "bob@example.com"},
			),
		},
		{
			name:      "no sheet name means first sheet",
			rng:       "A1:B2",
			wantRange: "'Form Responses 1'!A1:B2",
			want:      rowsOf([]any{"Timestamp", "Email"}, []any{"2024-01-01 10:00", "alice@example.com"}),
		},
		{
			name:      "columns major",
			rng:       "'Form Responses 1'!C1:D5",
			dim:       "COLUMNS",
			wantRange: "'Form Responses 1'!C1:D5",
			want:      rowsOf([]any{"Name", "Alice", "", "", "Carol"}, []any{"Approved", "yes"}),
		},
		{
			name:      "apostrophe in sheet name",
			rng:       "'It''s'!A1",
			wantRange: "'It''s'!A1",
			want:      rowsOf([]any{"quoted"}),
		},
		{
			name:      "sheet names match case-insensitively",
			rng:       "sheet1!A1:C3",
			wantRange: "Sheet1!A1:C3",
		},
		{
			name:      "empty range omits values",
			rng:       "Sheet1",
			wantRange: "Sheet1!A1:Z1000",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			call := svc.Spreadsheets.Values.Get(testBook, tt.rng).Context(t.Context())
			if tt.dim != "" {
				call = call.MajorDimension(tt.dim)
			}
			vr, err := call.Do()
			if err != nil {
				t.Fatalf("Get(%q): %v", tt.rng, err)
			}
			if vr.Range != tt.wantRange {
				t.Errorf("range = %q, want %q", vr.Range, tt.wantRange)
			}
			wantDim := "ROWS"
			if tt.dim != "" {
				wantDim = tt.dim
			}
			if vr.MajorDimension != wantDim {
				t.Errorf("majorDimension = %q, want %q", vr.MajorDimension, wantDim)
			}
			if !reflect.DeepEqual(vr.Values, tt.want) {
				t.Errorf("values = %#v\nwant %#v", vr.Values, tt.want)
			}
		})
	}

	t.Run("batchGet", func(t *testing.T) {
		t.Parallel()
		resp, err := svc.Spreadsheets.Values.BatchGet(testBook).Ranges("'Form Responses 1'!A1", "'It''s'!A1:B2").Context(t.Context()).Do()
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.ValueRanges) != 2 || resp.ValueRanges[0].Values[0][0] != "Timestamp" ||
			resp.ValueRanges[1].Range != "'It''s'!A1:B2" || resp.ValueRanges[1].Values[0][0] != "quoted" {
			b, _ := json.Marshal(resp.ValueRanges)
			t.Errorf("batchGet = %s", b)
		}
	})

	t.Run("spreadsheet metadata", func(t *testing.T) {
		t.Parallel()
		ss, err := svc.Spreadsheets.Get(testBook).IncludeGridData(false).Fields("properties.title,sheets.properties").Context(t.Context()).Do()
		if err != nil {
			t.Fatal(err)
		}
		if ss.Properties.Title != "Kaizen approvals" {
			t.Errorf("title = %q", ss.Properties.Title)
		}
		var titles []string
		for i, s := range ss.Sheets {
			titles = append(titles, s.Properties.Title)
			if s.Properties.Index != int64(i) || s.Properties.GridProperties.RowCount != 1000 || s.Properties.GridProperties.ColumnCount != 26 {
				t.Errorf("sheet %d properties = %+v", i, s.Properties)
			}
		}
		if want := []string{"Form Responses 1", "Sheet1", "It's"}; !reflect.DeepEqual(titles, want) {
			t.Errorf("titles = %q, want %q", titles, want)
		}
		if ss.Sheets[0].Properties.SheetId != 0 {
			t.Errorf("first sheetId = %d, want 0", ss.Sheets[0].Properties.SheetId)
		}
	})
}

func TestSheetsWrite(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		run  func(t *testing.T, f *SheetsFake, svc *sheets.Service)
	}{
		{"update RAW keeps formulas as text", func(t *testing.T, f *SheetsFake, svc *sheets.Service) {
			resp, err := svc.Spreadsheets.Values.Update(testBook, "Sheet1!A1:C10", &sheets.ValueRange{
				Values: [][]any{{"=1+1", "'quoted", "007"}, {nil, "x"}},
			}).ValueInputOption("RAW").Context(t.Context()).Do()
			if err != nil {
				t.Fatal(err)
			}
			if resp.UpdatedRange != "Sheet1!A1:C2" || resp.UpdatedRows != 2 || resp.UpdatedColumns != 3 || resp.UpdatedCells != 4 {
				t.Errorf("response = %+v", resp)
			}
			if v, formula := f.Cell(testBook, "Sheet1", "A1"); v != "=1+1" || formula {
				t.Errorf("A1 = %q formula=%v, want text =1+1", v, formula)
			}
			vr, err := svc.Spreadsheets.Values.Get(testBook, "Sheet1!A1:C2").ValueRenderOption("UNFORMATTED_VALUE").Context(t.Context()).Do()
			if err != nil {
				t.Fatal(err)
			}
			if want := rowsOf([]any{"=1+1", "'quoted", "007"}, []any{"", "x"}); !reflect.DeepEqual(vr.Values, want) {
				t.Errorf("read back %#v, want %#v", vr.Values, want)
			}
		}},
		{"USER_ENTERED parses formulas numbers and booleans", func(t *testing.T, f *SheetsFake, svc *sheets.Service) {
			_, err := svc.Spreadsheets.Values.Update(testBook, "Sheet1!B2", &sheets.ValueRange{
				Values: [][]any{{"=SUM(1,2)", "007", "true", "'=not", "1,234", 2.5, "hello"}},
			}).ValueInputOption("USER_ENTERED").Context(t.Context()).Do()
			if err != nil {
				t.Fatal(err)
			}
			if v, formula := f.Cell(testBook, "Sheet1", "B2"); v != "=SUM(1,2)" || !formula {
				t.Errorf("B2 = %q formula=%v, want a formula", v, formula)
			}
			for render, want := range map[string][]any{
				"FORMULA":           {"=SUM(1,2)", 7.0, true, "=not", 1234.0, 2.5, "hello"},
				"UNFORMATTED_VALUE": {"=SUM(1,2)", 7.0, true, "=not", 1234.0, 2.5, "hello"},
				"FORMATTED_VALUE":   {"=SUM(1,2)", "7", "TRUE", "=not", "1,234", "2.5", "hello"},
			} {
				vr, err := svc.Spreadsheets.Values.Get(testBook, "Sheet1!B2:H2").ValueRenderOption(render).Context(t.Context()).Do()
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(vr.Values, [][]any{want}) {
					t.Errorf("%s: %#v, want %#v", render, vr.Values, want)
				}
			}
		}},
		{"batchUpdate values", func(t *testing.T, f *SheetsFake, svc *sheets.Service) {
			resp, err := svc.Spreadsheets.Values.BatchUpdate(testBook, &sheets.BatchUpdateValuesRequest{
				ValueInputOption: "RAW",
				Data: []*sheets.ValueRange{
					{Range: "Sheet1!A1", Values: [][]any{{"a", "b"}}},
					{Range: "'It''s'!A2:A3", MajorDimension: "COLUMNS", Values: [][]any{{"x", "y"}}},
				},
				IncludeValuesInResponse: true,
			}).Context(t.Context()).Do()
			if err != nil {
				t.Fatal(err)
			}
			if resp.TotalUpdatedCells != 4 || resp.TotalUpdatedSheets != 2 || resp.TotalUpdatedRows != 3 || resp.TotalUpdatedColumns != 3 || len(resp.Responses) != 2 {
				t.Errorf("totals = %+v", resp)
			}
			if r := resp.Responses[1]; r.UpdatedRange != "'It''s'!A2:A3" || r.UpdatedData == nil || !reflect.DeepEqual(r.UpdatedData.Values, rowsOf([]any{"x"}, []any{"y"})) {
				t.Errorf("second response = %+v", r)
			}
			if got := f.Rows(testBook, "It's"); !reflect.DeepEqual(got, [][]string{{"quoted"}, {"x"}, {"y"}}) {
				t.Errorf("It's rows = %q", got)
			}
		}},
		{"batchUpdate is atomic", func(t *testing.T, f *SheetsFake, svc *sheets.Service) {
			_, err := svc.Spreadsheets.Values.BatchUpdate(testBook, &sheets.BatchUpdateValuesRequest{
				ValueInputOption: "RAW",
				Data: []*sheets.ValueRange{
					{Range: "Sheet1!A1", Values: [][]any{{"written?"}}},
					{Range: "Missing!A1", Values: [][]any{{"x"}}},
				},
			}).Context(t.Context()).Do()
			wantAPIError(t, err, 400, "Unable to parse range: Missing!A1")
			if got := f.Rows(testBook, "Sheet1"); len(got) != 0 {
				t.Errorf("Sheet1 = %q after failed batch, want untouched", got)
			}
		}},
		{"append after the table", func(t *testing.T, f *SheetsFake, svc *sheets.Service) {
			resp, err := svc.Spreadsheets.Values.Append(testBook, "'Form Responses 1'!A1:D1", &sheets.ValueRange{
				Values: [][]any{{"2024-01-04 09:00", "dave@example.com", "Dave", "no"}},
			}).ValueInputOption("RAW").InsertDataOption("INSERT_ROWS").Context(t.Context()).Do()
			if err != nil {
				t.Fatal(err)
			}
			if resp.TableRange != "'Form Responses 1'!A1:D5" || resp.Updates.UpdatedRange != "'Form Responses 1'!A6:D6" || resp.Updates.UpdatedCells != 4 {
				t.Errorf("append = %+v updates %+v", resp, resp.Updates)
			}
			rows := f.Rows(testBook, "Form Responses 1")
			if len(rows) != 6 || rows[5][2] != "Dave" {
				t.Errorf("rows after append = %q", rows)
			}
			ss, err := svc.Spreadsheets.Get(testBook).Context(t.Context()).Do()
			if err != nil {
				t.Fatal(err)
			}
			if n := ss.Sheets[0].Properties.GridProperties.RowCount; n != 1001 {
				t.Errorf("rowCount after INSERT_ROWS = %d, want 1001", n)
			}
		}},
		{"append to an empty sheet starts at the range", func(t *testing.T, f *SheetsFake, svc *sheets.Service) {
			resp, err := svc.Spreadsheets.Values.Append(testBook, "Sheet1!B3", &sheets.ValueRange{
				Values: [][]any{{"first"}},
			}).ValueInputOption("USER_ENTERED").Context(t.Context()).Do()
			if err != nil {
				t.Fatal(err)
			}
			if resp.TableRange != "" || resp.Updates.UpdatedRange != "Sheet1!B3" {
				t.Errorf("append = %+v updates %+v", resp, resp.Updates)
			}
		}},
		{"addSheet then write to it", func(t *testing.T, f *SheetsFake, svc *sheets.Service) {
			resp, err := svc.Spreadsheets.BatchUpdate(testBook, &sheets.BatchUpdateSpreadsheetRequest{
				Requests: []*sheets.Request{{AddSheet: &sheets.AddSheetRequest{
					Properties: &sheets.SheetProperties{Title: "Audit log", GridProperties: &sheets.GridProperties{RowCount: 10, ColumnCount: 3}},
				}}},
			}).Context(t.Context()).Do()
			if err != nil {
				t.Fatal(err)
			}
			p := resp.Replies[0].AddSheet.Properties
			if p.Title != "Audit log" || p.Index != 3 || p.SheetId == 0 || p.GridProperties.RowCount != 10 {
				t.Errorf("addSheet reply = %+v", p)
			}
			if _, err := svc.Spreadsheets.Values.Update(testBook, "'Audit log'!A1", &sheets.ValueRange{
				Values: [][]any{{"when", "who", "what"}},
			}).ValueInputOption("RAW").Context(t.Context()).Do(); err != nil {
				t.Fatal(err)
			}
			if got := f.Rows(testBook, "Audit log"); !reflect.DeepEqual(got, [][]string{{"when", "who", "what"}}) {
				t.Errorf("rows = %q", got)
			}
			_, err = svc.Spreadsheets.Values.Update(testBook, "'Audit log'!A1", &sheets.ValueRange{
				Values: [][]any{{"a", "b", "c", "d"}},
			}).ValueInputOption("RAW").Context(t.Context()).Do()
			wantAPIError(t, err, 400, "Range ('Audit log'!A1:D1) exceeds grid limits. Max rows: 10, max columns: 3")
		}},
		{"addSheet duplicate name", func(t *testing.T, f *SheetsFake, svc *sheets.Service) {
			_, err := svc.Spreadsheets.BatchUpdate(testBook, &sheets.BatchUpdateSpreadsheetRequest{
				Requests: []*sheets.Request{
					{AddSheet: &sheets.AddSheetRequest{Properties: &sheets.SheetProperties{Title: "New"}}},
					{AddSheet: &sheets.AddSheetRequest{Properties: &sheets.SheetProperties{Title: "sheet1"}}},
				},
			}).Context(t.Context()).Do()
			wantAPIError(t, err, 400, `Invalid requests[1].addSheet: A sheet with the name "sheet1" already exists. Please enter another name.`)
			if got := f.SheetTitles(testBook); len(got) != 3 {
				t.Errorf("titles after failed batch = %q, want unchanged", got)
			}
		}},
		{"unsupported batchUpdate request", func(t *testing.T, f *SheetsFake, svc *sheets.Service) {
			_, err := svc.Spreadsheets.BatchUpdate(testBook, &sheets.BatchUpdateSpreadsheetRequest{
				Requests: []*sheets.Request{{UpdateCells: &sheets.UpdateCellsRequest{Fields: "*"}}},
			}).Context(t.Context()).Do()
			wantAPIError(t, err, 400, "updateCells")
		}},
		{"clear and batchClear", func(t *testing.T, f *SheetsFake, svc *sheets.Service) {
			resp, err := svc.Spreadsheets.Values.Clear(testBook, "'Form Responses 1'!D:D", &sheets.ClearValuesRequest{}).Context(t.Context()).Do()
			if err != nil {
				t.Fatal(err)
			}
			if resp.ClearedRange != "'Form Responses 1'!D1:D1000" {
				t.Errorf("clearedRange = %q", resp.ClearedRange)
			}
			if _, err := svc.Spreadsheets.Values.BatchClear(testBook, &sheets.BatchClearValuesRequest{
				Ranges: []string{"'Form Responses 1'!A2:C", "'It''s'"},
			}).Context(t.Context()).Do(); err != nil {
				t.Fatal(err)
			}
			if got := f.Rows(testBook, "Form Responses 1"); !reflect.DeepEqual(got, [][]string{{"Timestamp", "Email", "Name"}}) {
				t.Errorf("rows = %q", got)
			}
			if got := f.Rows(testBook, "It's"); len(got) != 0 {
				t.Errorf("It's = %q", got)
			}
		}},
		{"rename and delete sheets", func(t *testing.T, f *SheetsFake, svc *sheets.Service) {
			ss, err := svc.Spreadsheets.Get(testBook).Context(t.Context()).Do()
			if err != nil {
				t.Fatal(err)
			}
			_, err = svc.Spreadsheets.BatchUpdate(testBook, &sheets.BatchUpdateSpreadsheetRequest{
				Requests: []*sheets.Request{
					{UpdateSheetProperties: &sheets.UpdateSheetPropertiesRequest{
						Properties: &sheets.SheetProperties{SheetId: ss.Sheets[1].Properties.SheetId, Title: "Renamed"},
						Fields:     "title",
					}},
					{DeleteSheet: &sheets.DeleteSheetRequest{SheetId: ss.Sheets[2].Properties.SheetId}},
				},
			}).Context(t.Context()).Do()
			if err != nil {
				t.Fatal(err)
			}
			if got, want := f.SheetTitles(testBook), []string{"Form Responses 1", "Renamed"}; !reflect.DeepEqual(got, want) {
				t.Errorf("titles = %q, want %q", got, want)
			}
		}},
		{"concurrent appends all land", func(t *testing.T, f *SheetsFake, svc *sheets.Service) {
			var wg sync.WaitGroup
			for i := range 20 {
				wg.Go(func() {
					_, err := svc.Spreadsheets.Values.Append(testBook, "Sheet1!A:B", &sheets.ValueRange{
						Values: [][]any{{float64(i), "row"}},
					}).ValueInputOption("RAW").Context(t.Context()).Do()
					if err != nil {
						t.Error(err)
					}
				})
			}
			wg.Wait()
			if got := f.Rows(testBook, "Sheet1"); len(got) != 20 {
				t.Errorf("%d rows after 20 appends", len(got))
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, svc := newSheetsFixture(t)
			tt.run(t, f, svc)
			if f.TokenExchanges() < 1 {
				t.Error("no token exchange recorded")
			}
		})
	}
}

func wantAPIError(t *testing.T, err error, code int, msgPart string) {
	t.Helper()
	var gerr *googleapi.Error
	if !errors.As(err, &gerr) {
		t.Fatalf("error = %v (%T), want *googleapi.Error %d", err, err, code)
	}
	if gerr.Code != code || !strings.Contains(gerr.Message, msgPart) {
		t.Errorf("error = %d %q, want %d containing %q", gerr.Code, gerr.Message, code, msgPart)
	}
}

func TestSheetsErrors(t *testing.T) {
	t.Parallel()
	get := func(rng string) func(context.Context, *sheets.Service) error {
		return func(ctx context.Context, svc *sheets.Service) error {
			_, err := svc.Spreadsheets.Values.Get(testBook, rng).Context(ctx).Do()
			return err
		}
	}
	update := func(rng string, input string, vr *sheets.ValueRange) func(context.Context, *sheets.Service) error {
		return func(ctx context.Context, svc *sheets.Service) error {
			call := svc.Spreadsheets.Values.Update(testBook, rng, vr).Context(ctx)
			if input != "" {
				call = call.ValueInputOption(input)
			}
			_, err := call.Do()
			return err
		}
	}
	one := &sheets.ValueRange{Values: [][]any{{"x"}}}
	tests := []struct {
		name      string
		setup     func(*SheetsFake)
		call      func(context.Context, *sheets.Service) error
		code      int
		status    string
		msg       string
		thenWorks bool // the next identical call succeeds
	}{
		{name: "unknown spreadsheet", call: func(ctx context.Context, svc *sheets.Service) error {
			_, err := svc.Spreadsheets.Get("no-such-book").Context(ctx).Do()
			return err
		}, code: 404, status: "NOT_FOUND", msg: "Requested entity was not found."},
		{name: "unknown sheet", call: get("Nope!A1"), code: 400, status: "INVALID_ARGUMENT", msg: "Unable to parse range: Nope!A1"},
		{name: "garbage range", call: get("A1:B2:C3"), code: 400, msg: "Unable to parse range: A1:B2:C3"},
		{name: "unterminated quote", call: get("'Sheet1!A1"), code: 400, msg: "Unable to parse range: 'Sheet1!A1"},
		{name: "beyond grid", call: get("Sheet1!A1001"), code: 400, msg: "Range (Sheet1!A1001) exceeds grid limits. Max rows: 1000, max columns: 26"},
		{name: "bad render option", call: func(ctx context.Context, svc *sheets.Service) error {
			_, err := svc.Spreadsheets.Values.Get(testBook, "Sheet1").ValueRenderOption("PRETTY").Context(ctx).Do()
			return err
		}, code: 400, msg: "value_render_option"},
		{name: "revoked access", setup: func(f *SheetsFake) { f.Revoke(testBook) }, call: get("Sheet1!A1"),
			code: 403, status: "PERMISSION_DENIED", msg: "The caller does not have permission"},
		{name: "429 injected", setup: func(f *SheetsFake) { f.FailNext(1, 429) }, call: get("Sheet1!A1"),
			code: 429, status: "RESOURCE_EXHAUSTED", msg: "Quota exceeded for quota metric 'Read requests'", thenWorks: true},
		{name: "500 injected", setup: func(f *SheetsFake) { f.FailNext(1, 500) }, call: update("Sheet1!A1", "RAW", one),
			code: 500, status: "INTERNAL", msg: "Internal error encountered.", thenWorks: true},
		{name: "503 injected", setup: func(f *SheetsFake) { f.FailNext(1, 503) }, call: get("Sheet1!A1"),
			code: 503, status: "UNAVAILABLE", msg: "The service is currently unavailable.", thenWorks: true},
		{name: "valueInputOption required", call: update("Sheet1!A1", "", one),
			code: 400, msg: "'valueInputOption' is required but not specified"},
		{name: "data taller than range", call: update("Sheet1!A1:B1", "RAW", &sheets.ValueRange{Values: [][]any{{"a"}, {"b"}}}),
			code: 400, msg: "Requested writing within range [Sheet1!A1:B1], but tried writing to row [2]"},
		{name: "data wider than range", call: update("Sheet1!A1:B1", "RAW", &sheets.ValueRange{Values: [][]any{{"a", "b", "c"}}}),
			code: 400, msg: "Requested writing within range [Sheet1!A1:B1], but tried writing to column [C]"},
		{name: "body range differs", call: update("Sheet1!A1", "RAW", &sheets.ValueRange{Range: "Sheet1!A2", Values: [][]any{{"a"}}}),
			code: 400, msg: "Request range[Sheet1!A1] does not match value's range[Sheet1!A2]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, svc := newSheetsFixture(t)
			if tt.setup != nil {
				tt.setup(f)
			}
			err := tt.call(t.Context(), svc)
			wantAPIError(t, err, tt.code, tt.msg)
			var gerr *googleapi.Error
			if errors.As(err, &gerr) && tt.status != "" && !strings.Contains(gerr.Body, `"status":"`+tt.status+`"`) {
				t.Errorf("body %s lacks status %s", gerr.Body, tt.status)
			}
			if tt.thenWorks {
				if err := tt.call(t.Context(), svc); err != nil {
					t.Errorf("call after the injected failure: %v", err)
				}
			}
			if f.TokenExchanges() < 1 {
				t.Error("no token exchange recorded")
			}
		})
	}
}

func TestSheetsAuth(t *testing.T) {
	t.Parallel()

	t.Run("JWT signed by another key is refused", func(t *testing.T) {
		t.Parallel()
		f, _ := newSheetsFixture(t)
		other, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		der, _ := x509.MarshalPKCS8PrivateKey(other)
		var key map[string]string
		if err := json.Unmarshal(f.ServiceAccountJSON(), &key); err != nil {
			t.Fatal(err)
		}
		key["private_key"] = string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
		forged, _ := json.Marshal(key)
		creds, err := google.CredentialsFromJSONWithType(t.Context(), forged, google.ServiceAccount, sheets.SpreadsheetsScope)
		if err != nil {
			t.Fatal(err)
		}
		svc, err := sheets.NewService(t.Context(), option.WithTokenSource(creds.TokenSource), option.WithEndpoint(f.Endpoint()))
		if err != nil {
			t.Fatal(err)
		}
		vr, err := svc.Spreadsheets.Values.Get(testBook, "Sheet1").Context(t.Context()).Do()
		// The api client wraps the token error in cloud.google.com/go/auth's
		// error type, so match on the OAuth error body it carries.
		if err == nil || vr != nil || !strings.Contains(err.Error(), `"error":"invalid_grant","error_description":"Invalid JWT Signature."`) {
			t.Fatalf("Get with forged key = %v, %v; want invalid_grant", vr, err)
		}
		if n := f.TokenExchanges(); n != 0 {
			t.Errorf("TokenExchanges = %d, want 0", n)
		}
		for _, r := range f.Requests() {
			if r.Op != "token" {
				t.Errorf("a Sheets request reached the API: %+v", r)
			}
		}
	})

	t.Run("readonly scope reads but cannot write", func(t *testing.T) {
		t.Parallel()
		f, _ := newSheetsFixture(t)
		svc := f.Service(t.Context(), t, sheets.SpreadsheetsReadonlyScope)
		if _, err := svc.Spreadsheets.Values.Get(testBook, "'Form Responses 1'!A1").Context(t.Context()).Do(); err != nil {
			t.Fatalf("read with readonly scope: %v", err)
		}
		_, err := svc.Spreadsheets.Values.Update(testBook, "Sheet1!A1", &sheets.ValueRange{Values: [][]any{{"x"}}}).
			ValueInputOption("RAW").Context(t.Context()).Do()
		wantAPIError(t, err, 403, "Request had insufficient authentication scopes.")
		if got := f.Rows(testBook, "Sheet1"); len(got) != 0 {
			t.Errorf("write with readonly scope landed: %q", got)
		}
	})

	t.Run("revoked tokens get 401", func(t *testing.T) {
		t.Parallel()
		f, svc := newSheetsFixture(t)
		if _, err := svc.Spreadsheets.Get(testBook).Context(t.Context()).Do(); err != nil {
			t.Fatal(err)
		}
		f.RevokeTokens()
		_, err := svc.Spreadsheets.Get(testBook).Context(t.Context()).Do()
		wantAPIError(t, err, 401, "Request had invalid authentication credentials.")
	})

	t.Run("request without token gets 401", func(t *testing.T) {
		t.Parallel()
		f, _ := newSheetsFixture(t)
		resp, err := http.Get(f.Endpoint() + "v4/spreadsheets/" + testBook)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("status %d, WWW-Authenticate %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
	})

	// Direct token-endpoint checks with hand-made assertions.
	f := NewSheets(t)
	now := time.Now()
	good := jws.ClaimSet{Iss: f.ServiceAccountEmail(), Aud: f.TokenURL(), Scope: sheets.SpreadsheetsScope, Iat: now.Unix(), Exp: now.Add(time.Hour).Unix()}
	tokenTests := []struct {
		name      string
		grant     string
		mutate    func(*jws.ClaimSet)
		wantCode  int
		wantError string
	}{
		{name: "valid", wantCode: 200},
		{name: "wrong audience", mutate: func(c *jws.ClaimSet) { c.Aud = "https://oauth2.googleapis.com/token" }, wantCode: 400, wantError: "invalid_grant"},
		{name: "unknown account", mutate: func(c *jws.ClaimSet) { c.Iss = "someone@else.iam.gserviceaccount.com" }, wantCode: 400, wantError: "invalid_grant"},
		{name: "expired", mutate: func(c *jws.ClaimSet) { c.Iat, c.Exp = now.Add(-3*time.Hour).Unix(), now.Add(-2*time.Hour).Unix() }, wantCode: 400, wantError: "invalid_grant"},
		{name: "too long-lived", mutate: func(c *jws.ClaimSet) { c.Exp = now.Add(2 * time.Hour).Unix() }, wantCode: 400, wantError: "invalid_grant"},
		{name: "issued in the future", mutate: func(c *jws.ClaimSet) { c.Iat, c.Exp = now.Add(time.Hour).Unix(), now.Add(90*time.Minute).Unix() }, wantCode: 400, wantError: "invalid_grant"},
		{name: "no scope", mutate: func(c *jws.ClaimSet) { c.Scope = "" }, wantCode: 400, wantError: "invalid_scope"},
		{name: "bogus scope", mutate: func(c *jws.ClaimSet) { c.Scope = "spreadsheets" }, wantCode: 400, wantError: "invalid_scope"},
		{name: "wrong grant type", grant: "client_credentials", wantCode: 400, wantError: "unsupported_grant_type"},
	}
	var key struct {
		PrivateKey string `json:"private_key"`
	}
	if err := json.Unmarshal(f.ServiceAccountJSON(), &key); err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode([]byte(key.PrivateKey))
	pk, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tokenTests {
		t.Run("token endpoint "+tt.name, func(t *testing.T) {
			c := good
			if tt.mutate != nil {
				tt.mutate(&c)
			}
			assertion, err := jws.Encode(&jws.Header{Algorithm: "RS256", Typ: "JWT"}, &c, pk.(*rsa.PrivateKey))
			if err != nil {
				t.Fatal(err)
			}
			grant := tt.grant
			if grant == "" {
				grant = "urn:ietf:params:oauth:grant-type:jwt-bearer"
			}
			resp, err := http.PostForm(f.TokenURL(), url.Values{"grant_type": {grant}, "assertion": {assertion}})
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body map[string]any
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.wantCode || (tt.wantError != "" && body["error"] != tt.wantError) {
				t.Fatalf("status %d body %v, want %d %s", resp.StatusCode, body, tt.wantCode, tt.wantError)
			}
			if tt.wantCode == 200 && (body["token_type"] != "Bearer" || body["expires_in"] != 3600.0 || body["access_token"] == "") {
				t.Errorf("token response %v", body)
			}
			if tt.wantError != "" && body["error_description"] == "" {
				t.Errorf("no error_description in %v", body)
			}
		})
	}
}

func TestA1Parse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    a1Range
		wantErr bool
		format  string // canonical String(); "" means same as in
	}{
		{in: "Sheet1!A1:C10", want: a1Range{Sheet: "Sheet1", StartCol: 1, StartRow: 1, EndCol: 3, EndRow: 10}},
		{in: "'Form Responses 1'!A:Z", want: a1Range{Sheet: "Form Responses 1", StartCol: 1, EndCol: 26}},
		{in: "'It''s'!B2", want: a1Range{Sheet: "It's", StartCol: 2, StartRow: 2, EndCol: 2, EndRow: 2}},
		{in: "A:C", want: a1Range{StartCol: 1, EndCol: 3}},
		{in: "2:5", want: a1Range{StartRow: 2, EndRow: 5}},
		{in: "A2:Z", want: a1Range{StartCol: 1, StartRow: 2, EndCol: 26}},
		{in: "B2:5", want: a1Range{StartCol: 2, StartRow: 2, EndRow: 5}},
		{in: "Sheet1", want: a1Range{Sheet: "Sheet1"}},
		{in: "'My Sheet'", want: a1Range{Sheet: "My Sheet"}},
		{in: "A1:B2", want: a1Range{StartCol: 1, StartRow: 1, EndCol: 2, EndRow: 2}},
		{in: "aa1:az2", want: a1Range{StartCol: 27, StartRow: 1, EndCol: 52, EndRow: 2}, format: "AA1:AZ2"},
		{in: "ZZZ1", want: a1Range{StartCol: 18278, StartRow: 1, EndCol: 18278, EndRow: 1}},
		{in: "$A$1:$B$2", want: a1Range{StartCol: 1, StartRow: 1, EndCol: 2, EndRow: 2}, format: "A1:B2"},
		{in: "C3:A1", want: a1Range{StartCol: 1, StartRow: 1, EndCol: 3, EndRow: 3}, format: "A1:C3"},
		{in: "B2:B2", want: a1Range{StartCol: 2, StartRow: 2, EndCol: 2, EndRow: 2}, format: "B2"},
		{in: "Form Responses 1!A1", want: a1Range{Sheet: "Form Responses 1", StartCol: 1, StartRow: 1, EndCol: 1, EndRow: 1}, format: "'Form Responses 1'!A1"},
		{in: "'A1'!B2", want: a1Range{Sheet: "A1", StartCol: 2, StartRow: 2, EndCol: 2, EndRow: 2}},
		{in: "tab01", want: a1Range{StartCol: 13548, StartRow: 1, EndCol: 13548, EndRow: 1}, format: "TAB1"},
		{in: "'tab01'", want: a1Range{Sheet: "tab01"}},
		{in: "Named_Range", want: a1Range{Sheet: "Named_Range"}},
		{in: "", wantErr: true},
		{in: "Sheet1!", wantErr: true},
		{in: "!A1", wantErr: true},
		{in: "''!A1", wantErr: true},
		{in: "'Sheet1!A1", wantErr: true},
		{in: "'Sheet1'A1", wantErr: true},
		{in: "It's!A1", wantErr: true},
		{in: "Sheet1!A0", wantErr: true},
		{in: "Sheet1!AAAA1", wantErr: true},
		{in: "Sheet1!A:5", wantErr: true},
		{in: "Sheet1!A:C5", wantErr: true},
		{in: "Sheet1!A1:B2:C3", wantErr: true},
		{in: "Sheet1!A", wantErr: true},
		{in: "Sheet1!5", wantErr: true},
		{in: "Sheet1!A99999999", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := parseA1(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("parseA1(%q) = %+v, want error", tt.in, got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("parseA1(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			}
			format := tt.format
			if format == "" {
				format = tt.in
			}
			if s := got.String(); s != format {
				t.Errorf("String() = %q, want %q", s, format)
			}
		})
	}
}
