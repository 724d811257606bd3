package sheetsfake

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/api/googleapi"
	"google.golang.org/api/sheets/v4"
)

func lookupFilter(key, value string) *sheets.DataFilter {
	return &sheets.DataFilter{DeveloperMetadataLookup: &sheets.DeveloperMetadataLookup{MetadataKey: key, MetadataValue: value}}
}

// TestDeveloperMetadata: row metadata through the real client moves with
// inserted and deleted rows and addresses reads and writes.
func TestDeveloperMetadata(t *testing.T) {
	t.Parallel()
	f, svc := newFixture(t)
	ctx := t.Context()
	create := func(row int64, value string) *sheets.Request {
		return &sheets.Request{CreateDeveloperMetadata: &sheets.CreateDeveloperMetadataRequest{DeveloperMetadata: &sheets.DeveloperMetadata{
			MetadataKey: "k", MetadataValue: value, Visibility: "DOCUMENT",
			Location: &sheets.DeveloperMetadataLocation{DimensionRange: &sheets.DimensionRange{
				SheetId: 0, Dimension: "ROWS", StartIndex: row, EndIndex: row + 1, ForceSendFields: []string{"SheetId"}}},
		}}}
	}
	resp, err := svc.Spreadsheets.BatchUpdate(testBook, &sheets.BatchUpdateSpreadsheetRequest{
		Requests: []*sheets.Request{create(1, "alice"), create(2, "bob")}}).Context(ctx).Do()
	if err != nil {
		t.Fatal(err)
	}
	got := resp.Replies[0].CreateDeveloperMetadata.DeveloperMetadata
	if got.MetadataId <= 0 || got.Location.LocationType != "ROW" || got.Location.DimensionRange.StartIndex != 1 {
		t.Errorf("created %+v", got)
	}

	// A row inserted above and one deleted above: the metadata follows.
	f.InsertRow(testBook, "Form Responses 1", 2, []string{"2024-01-05 09:00", "zed@example.com"})
	f.InsertRow(testBook, "Form Responses 1", 2, []string{"x"})
	f.DeleteRow(testBook, "Form Responses 1", 2)
	if m := f.DeveloperMetadata(testBook, "Form Responses 1")["k"]; m["alice"] != 3 || m["bob"] != 4 {
		t.Errorf("metadata rows = %v, want alice 3, bob 4", m)
	}

	vals, err := svc.Spreadsheets.Values.BatchGetByDataFilter(testBook, &sheets.BatchGetValuesByDataFilterRequest{
		DataFilters: []*sheets.DataFilter{lookupFilter("k", "bob"), lookupFilter("k", "alice")}}).Context(ctx).Do()
	if err != nil {
		t.Fatal(err)
	}
	if len(vals.ValueRanges) != 2 || vals.ValueRanges[0].ValueRange.Range != "'Form Responses 1'!A4:Z4" ||
		vals.ValueRanges[0].ValueRange.Values[0][1] != "bob@example.com" ||
		vals.ValueRanges[1].DataFilters[0].DeveloperMetadataLookup.MetadataValue != "alice" {
		t.Errorf("batchGetByDataFilter = %+v", vals.ValueRanges)
	}

	up, err := svc.Spreadsheets.Values.BatchUpdateByDataFilter(testBook, &sheets.BatchUpdateValuesByDataFilterRequest{
		ValueInputOption: "RAW",
		Data:             []*sheets.DataFilterValueRange{{DataFilter: lookupFilter("k", "bob"), Values: [][]any{{nil, nil, "Bob", "=1"}}}},
	}).Context(ctx).Do()
	if err != nil {
		t.Fatal(err)
	}
	if up.TotalUpdatedCells != 2 || up.Responses[0].UpdatedRange != "'Form Responses 1'!A4:D4" {
		t.Errorf("batchUpdateByDataFilter = %+v %+v", up, up.Responses[0])
	}
	if v, formula := f.Cell(testBook, "Form Responses 1", "D4"); v != "=1" || formula {
		t.Errorf("D4 = %q formula %v, want RAW text", v, formula)
	}
	if v, _ := f.Cell(testBook, "Form Responses 1", "B4"); v != "bob@example.com" {
		t.Errorf("B4 = %q: a null value changed a cell", v)
	}

	// Deleting a row deletes its metadata; deleteDeveloperMetadata the rest.
	f.DeleteRow(testBook, "Form Responses 1", 3)
	del, err := svc.Spreadsheets.BatchUpdate(testBook, &sheets.BatchUpdateSpreadsheetRequest{Requests: []*sheets.Request{
		{DeleteDeveloperMetadata: &sheets.DeleteDeveloperMetadataRequest{DataFilter: lookupFilter("k", "")}}}}).Context(ctx).Do()
	if err != nil {
		t.Fatal(err)
	}
	if d := del.Replies[0].DeleteDeveloperMetadata.DeletedDeveloperMetadata; len(d) != 1 || d[0].MetadataValue != "bob" {
		t.Errorf("deleted %+v, want bob's only (alice's went with its row)", d)
	}
	if m := f.DeveloperMetadata(testBook, "Form Responses 1"); len(m) != 0 {
		t.Errorf("metadata left: %v", m)
	}

	// A multi-row location is refused, as Google does.
	_, err = svc.Spreadsheets.BatchUpdate(testBook, &sheets.BatchUpdateSpreadsheetRequest{Requests: []*sheets.Request{{
		CreateDeveloperMetadata: &sheets.CreateDeveloperMetadataRequest{DeveloperMetadata: &sheets.DeveloperMetadata{
			MetadataKey: "k", Visibility: "DOCUMENT", Location: &sheets.DeveloperMetadataLocation{DimensionRange: &sheets.DimensionRange{
				Dimension: "ROWS", StartIndex: 1, EndIndex: 3}}}}}}}).Context(ctx).Do()
	if ge, ok := err.(*googleapi.Error); !ok || ge.Code != 400 || !strings.Contains(ge.Message, "single row") {
		t.Errorf("multi-row metadata: %v, want 400", err)
	}
}

// TestQuota: reads and writes are counted apart per minute, and the 429
// carries Google's RESOURCE_EXHAUSTED body.
func TestQuota(t *testing.T) {
	t.Parallel()
	f, svc := newFixture(t)
	now := time.Date(2026, 3, 14, 15, 0, 30, 0, time.UTC)
	f.SetQuota(Quota{ReadsPerMinute: 2, WritesPerMinute: 1, Now: func() time.Time { return now }, RetryAfter: true})
	ctx := t.Context()
	read := func() error {
		_, err := svc.Spreadsheets.Values.Get(testBook, "'Form Responses 1'!A1").Context(ctx).Do()
		return err
	}
	write := func() error {
		_, err := svc.Spreadsheets.Values.Update(testBook, "Sheet1!A1", &sheets.ValueRange{Values: [][]any{{"x"}}}).
			ValueInputOption("RAW").Context(ctx).Do()
		return err
	}
	for i, err := range []error{read(), write(), read()} {
		if err != nil {
			t.Fatalf("call %d within the quota: %v", i, err)
		}
	}
	err := read()
	ge, ok := err.(*googleapi.Error)
	if !ok || ge.Code != 429 || !strings.Contains(ge.Message, "'Read requests per minute per user'") ||
		ge.Header.Get("Retry-After") != "30" || !strings.Contains(string(ge.Body), `"RESOURCE_EXHAUSTED"`) ||
		!strings.Contains(string(ge.Body), `"RATE_LIMIT_EXCEEDED"`) || !strings.Contains(string(ge.Body), `"quota_limit_value":"2"`) {
		t.Fatalf("over the read quota: %v (body %s)", err, ge.Body)
	}
	if err := write(); err == nil || !strings.Contains(err.Error(), "Write requests") {
		t.Fatalf("over the write quota: %v", err)
	}
	now = now.Add(30 * time.Second) // the next minute
	if err := read(); err != nil {
		t.Errorf("read in the next minute: %v", err)
	}
	if n := f.QuotaRefusals(); n != 2 {
		t.Errorf("QuotaRefusals = %d, want 2", n)
	}
}
