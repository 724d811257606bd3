package sheetsfake

import (
	"encoding/json"
	"reflect"
	"sync"
	"testing"

	"google.golang.org/api/sheets/v4"
)

func TestRead(t *testing.T) {
	t.Parallel()
	f, svc := newFixture(t)
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

func TestWrite(t *testing.T) {
	t.Parallel()
	runFixtureCases(t, []fixtureCase{
		{"update RAW keeps formulas as text", func(t *testing.T, f *Fake, svc *sheets.Service) {
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
		{"USER_ENTERED parses formulas numbers and booleans", func(t *testing.T, f *Fake, svc *sheets.Service) {
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
		{"batchUpdate values", func(t *testing.T, f *Fake, svc *sheets.Service) {
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
		{"batchUpdate is atomic", func(t *testing.T, f *Fake, svc *sheets.Service) {
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
		{"append after the table", func(t *testing.T, f *Fake, svc *sheets.Service) {
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
		{"append to an empty sheet starts at the range", func(t *testing.T, f *Fake, svc *sheets.Service) {
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
		{"clear and batchClear", func(t *testing.T, f *Fake, svc *sheets.Service) {
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
		{"concurrent appends all land", func(t *testing.T, f *Fake, svc *sheets.Service) {
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
	})
}
