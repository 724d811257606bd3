package config

import (
	"strings"
	"testing"
)

func TestDateOrder(t *testing.T) {
	osEnv(t)
	tests := []struct {
		name, doc string
		want      DateOrder
		problem   string
	}{
		{"default", "", MonthFirst, ""},
		{"day first", "[sheet]\ndate_order = \"day-first\"", DayFirst, ""},
		{"month first", "[sheet]\ndate_order = \"month-first\"", MonthFirst, ""},
		{"unknown", "[sheet]\ndate_order = \"dmy\"", "", `"dmy" is not one of month-first, day-first`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parse(t, tt.doc, nil)
			if tt.problem == "" {
				if err != nil || cfg.Sheet.DateOrder != tt.want {
					t.Fatalf("date_order %q, %v; want %q", cfg.Sheet.DateOrder, err, tt.want)
				}
				return
			}
			for _, p := range problems(t, err) {
				if p.Key == "sheet.date_order" && strings.Contains(p.Message, tt.problem) {
					return
				}
			}
			t.Errorf("want sheet.date_order: ...%s..., got %v", tt.problem, err)
		})
	}
}

func TestColumnsResolved(t *testing.T) {
	t.Parallel()
	got := SheetColumns{Timestamp: "Submitted", Email: "  "}.Resolved()
	want := DefaultSheetColumns()
	want.Timestamp = "Submitted"
	if got != want {
		t.Errorf("SheetColumns.Resolved = %+v, want %+v", got, want)
	}
	if got := (SheetColumns{}).Resolved(); got != DefaultSheetColumns() {
		t.Errorf("zero columns resolve to %+v", got)
	}
	q := QuotaRequestColumns{EndDate: "Last Day"}.Resolved()
	wantQ := DefaultQuotaRequestColumns()
	wantQ.EndDate = "Last Day"
	if q != wantQ {
		t.Errorf("QuotaRequestColumns.Resolved = %+v, want %+v", q, wantQ)
	}
}
