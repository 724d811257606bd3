package onboard_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kaizen-onboard/kaizen/internal/onboard"
	"github.com/kaizen-onboard/kaizen/internal/sheet"
	"github.com/kaizen-onboard/kaizen/internal/signup"
)

// formHeader is what a Google Form's response sheet has: header without
// the write-back columns kaizen adds.
var formHeader = header[:len(header)-4]

var writeBackCols = []string{cols.Status, cols.ProcessedAt, cols.UserID, cols.ProjectID}

func formGrid(rows ...formRow) [][]string {
	grid := [][]string{slices.Clone(formHeader)}
	for _, r := range rows {
		cells := make([]string, len(formHeader))
		for i, h := range formHeader {
			cells[i] = r[h]
		}
		grid = append(grid, cells)
	}
	return grid
}

// TestFormSheet runs imports on a sheet as a Google Form makes it (no
// Status, Processed At, User ID or Project ID column), through the real
// Sheets client against the fake, and on a CSV download of one.
func TestFormSheet(t *testing.T) {
	e := newEnv(t)

	t.Run("Google sheet gets the columns on the first run", func(t *testing.T) {
		e := e.in(t)
		e.sheets.AddSheet(book, worksheet, formGrid(row("form1@example.org", "form-one")))
		plan, err := e.run(func(o *onboard.Options) { o.DryRun = true })
		if err != nil {
			t.Fatalf("plan: %v", err)
		}
		if !slices.Equal(plan.AddedColumns, writeBackCols) {
			t.Errorf("plan AddedColumns = %q, want %q", plan.AddedColumns, writeBackCols)
		}
		if got := e.sheets.Rows(book, worksheet)[0]; slices.Contains(got, cols.Status) {
			t.Fatalf("the plan wrote the header: %q", got)
		}

		sum := e.mustRun()
		if !slices.Equal(sum.AddedColumns, writeBackCols) {
			t.Errorf("AddedColumns = %q, want %q", sum.AddedColumns, writeBackCols)
		}
		got := e.sheets.Rows(book, worksheet)[0]
		if !slices.Equal(got[:len(header)], header) {
			t.Errorf("header row = %q, want %q", got, header)
		}
		if r := result(t, sum, 2); r.Outcome != onboard.Created {
			t.Errorf("row 2: %s %s", r.Outcome, r.Error)
		}
		if s := e.cell(2, cols.Status); s != signup.StatusDone {
			t.Errorf("Status = %q, want done", s)
		}
		if e.cell(2, cols.UserID) == "" || e.cell(2, cols.ProjectID) == "" || e.cell(2, cols.ProcessedAt) == "" {
			t.Errorf("write-back cells empty: %q", e.sheets.Rows(book, worksheet)[1])
		}
		if e.cell(2, cols.PIN) != signup.PINRegistered {
			t.Errorf("PIN = %q, want it redacted", e.cell(2, cols.PIN))
		}
		again := e.mustRun()
		if len(again.AddedColumns) != 0 {
			t.Errorf("second run added %q again", again.AddedColumns)
		}
	})

	t.Run("CSV download gets the columns too", func(t *testing.T) {
		e := e.in(t)
		path := filepath.Join(t.TempDir(), "responses.csv")
		var b strings.Builder
		for _, r := range formGrid(row("form2@example.org", "form-two")) {
			b.WriteString(strings.Join(r, ",") + "\n")
		}
		if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
			t.Fatal(err)
		}
		deps := e.deps()
		deps.Sheet = sheet.NewCSV(path)
		sum, err := onboard.Run(t.Context(), deps, e.opts)
		if err != nil {
			t.Fatalf("Run: %v %+v", err, sum.Rows)
		}
		if !slices.Equal(sum.AddedColumns, writeBackCols) {
			t.Errorf("AddedColumns = %q, want %q", sum.AddedColumns, writeBackCols)
		}
		data, _ := os.ReadFile(path)
		tbl, err := sheet.ReadCSV(data)
		if err != nil {
			t.Fatal(err)
		}
		if s := tbl.Get(tbl.Rows[0], cols.Status); s != signup.StatusDone {
			t.Errorf("CSV Status = %q, want done; file:\n%s", s, data)
		}
	})
}

// TestStillInvalidAndRejected: an invalid row reported once does not fail
// every later run; --strict makes it; a row marked rejected is never
// processed nor reported.
func TestStillInvalidAndRejected(t *testing.T) {
	e := newEnv(t)
	e.write(
		row("valid@example.org", "still-ok"),
		row("invalid@example.org", "bad name!"),
		row("turned-down@example.org", "", cols.Approved, "Rejected"), // invalid too, but rejected
	)
	first, err := e.run()
	if !errors.Is(err, onboard.ErrSomeFailed) {
		t.Fatalf("first run: err = %v, want ErrSomeFailed", err)
	}
	if r := result(t, first, 3); r.Outcome != onboard.Failed {
		t.Errorf("row 3 first run: %s, want failed", r.Outcome)
	}
	status := e.cell(3, cols.Status)
	if !strings.HasPrefix(status, "error:") {
		t.Fatalf("row 3 Status = %q, want the error", status)
	}
	for _, r := range first.Rows {
		if r.Row == 4 {
			t.Errorf("the rejected row is reported: %+v", r)
		}
	}
	if first.Rejected != 1 {
		t.Errorf("Rejected = %d, want 1", first.Rejected)
	}
	if s := e.cell(4, cols.Status); s != "" {
		t.Errorf("rejected row's Status = %q, want it untouched", s)
	}

	second, err := e.run()
	if err != nil {
		t.Fatalf("second run: %v, want no error (nothing new failed)", err)
	}
	if r := result(t, second, 3); r.Outcome != onboard.StillInvalid || r.Error == "" {
		t.Errorf("row 3 second run: %s %q, want still invalid with its reason", r.Outcome, r.Error)
	}
	if second.Counts[string(onboard.StillInvalid)] != 1 || second.Counts[string(onboard.Failed)] != 0 {
		t.Errorf("counts = %v", second.Counts)
	}
	if _, err := e.run(func(o *onboard.Options) { o.Strict = true }); !errors.Is(err, onboard.ErrSomeFailed) {
		t.Errorf("strict run: err = %v, want ErrSomeFailed", err)
	}

	// A new problem in the row is new: it fails the run again.
	e.setCell(3, cols.ProjectName, "worse name?")
	third, err := e.run()
	if !errors.Is(err, onboard.ErrSomeFailed) {
		t.Errorf("after an edit: err = %v, want ErrSomeFailed", err)
	}
	if r := result(t, third, 3); r.Outcome != onboard.Failed {
		t.Errorf("row 3 after an edit: %s, want failed", r.Outcome)
	}

	// Rejected wins over all_approved too.
	all, _ := e.run(func(o *onboard.Options) { o.Request.AllApproved = true })
	for _, r := range all.Rows {
		if r.Row == 4 {
			t.Errorf("all_approved: the rejected row is reported: %+v", r)
		}
	}
	if e.cell(4, cols.Status) != "" || len(e.mailsTo("turned-down@example.org", "")) != 0 {
		t.Errorf("the rejected row was processed")
	}
}
