package sheetsfake

import (
	"reflect"
	"testing"

	"google.golang.org/api/sheets/v4"
)

func TestBatchUpdate(t *testing.T) {
	t.Parallel()
	runFixtureCases(t, []fixtureCase{
		{"addSheet then write to it", func(t *testing.T, f *Fake, svc *sheets.Service) {
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
		{"addSheet duplicate name", func(t *testing.T, f *Fake, svc *sheets.Service) {
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
		{"unsupported batchUpdate request", func(t *testing.T, f *Fake, svc *sheets.Service) {
			_, err := svc.Spreadsheets.BatchUpdate(testBook, &sheets.BatchUpdateSpreadsheetRequest{
				Requests: []*sheets.Request{{UpdateCells: &sheets.UpdateCellsRequest{Fields: "*"}}},
			}).Context(t.Context()).Do()
			wantAPIError(t, err, 400, "updateCells")
		}},
		{"rename and delete sheets", func(t *testing.T, f *Fake, svc *sheets.Service) {
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
	})
}
