package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/kaizen-onboard/kaizen/internal/onboard"
)

// TestImportReportUnwritten: rows whose outcome is not in the sheet, and
// rows that lost cells to a moved row's outcome, are named by row and
// email in both outputs.
func TestImportReportUnwritten(t *testing.T) {
	t.Parallel()
	rep := report{Summary: onboard.Summary{
		Counts: map[string]int{string(onboard.Created): 2},
		Rows: []onboard.RowResult{
			{Row: 2, Email: "ada@example.org", Outcome: onboard.Created, WriteBack: "googleapi: Error 429: Quota exceeded"},
			{Row: 3, Email: "bob@example.org", Outcome: onboard.Created},
		},
		NotWritten: []onboard.Unwritten{{Row: 2, Email: "ada@example.org", Reason: "googleapi: Error 429: Quota exceeded"}},
		Overwritten: []onboard.Overwrite{{Row: 4, Email: "zed@example.org", Columns: []string{"PIN", "Status"},
			ByRow: 3, ByEmail: "bob@example.org"}},
	}}
	var table bytes.Buffer
	if err := printTable(&table, rep, false); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"NOT WRITTEN BACK", "row 2  ada@example.org: googleapi: Error 429",
		"row 4  zed@example.org: PIN, Status overwritten by the outcome of row 3 (bob@example.org); LOST",
	} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
	var js bytes.Buffer
	if err := printJSON(&js, rep); err != nil {
		t.Fatal(err)
	}
	var got struct {
		NotWritten  []onboard.Unwritten `json:"not_written_back"`
		Overwritten []onboard.Overwrite `json:"overwritten"`
	}
	if err := json.Unmarshal(js.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.NotWritten) != 1 || got.NotWritten[0].Row != 2 || got.NotWritten[0].Email != "ada@example.org" ||
		len(got.Overwritten) != 1 || got.Overwritten[0].Row != 4 || got.Overwritten[0].Restored {
		t.Errorf("JSON = %s", js.String())
	}
}
