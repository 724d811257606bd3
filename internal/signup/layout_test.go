package signup

import (
	"strings"
	"testing"
	"time"

	"github.com/kaizen-onboard/kaizen/internal/config"
)

// TestTimestamp: every approved row's Timestamp is read, in the sheet's
// date order; one that cannot be read makes the row invalid, naming the
// row and the column (it used to import with today's date).
func TestTimestamp(t *testing.T) {
	tests := []struct {
		name    string
		stamp   string
		order   config.DateOrder
		want    time.Time
		problem string // "" for valid
	}{
		{"Google Forms", "11/20/2026 10:00:00", "", time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC), ""},
		{"without seconds (reminders read it; import did not)", "1/2/2026 15:04", "", time.Date(2026, 1, 2, 15, 4, 0, 0, time.UTC), ""},
		{"day first", "1/2/2026 15:04:05", config.DayFirst, time.Date(2026, 2, 1, 15, 4, 5, 0, time.UTC), ""},
		{"ISO", "2026-11-20 10:00:00", config.DayFirst, time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC), ""},
		{"words", "yesterday", "", time.Time{}, `row 2: Timestamp: "yesterday" is not a date and time`},
		{"day first in a month-first sheet", "20/11/2026 10:00:00", "", time.Time{}, `row 2: Timestamp: "20/11/2026 10:00:00" is not a date and time as Google Forms or a CSV export writes them (e.g. 11/20/2026 10:00:00 or 2026-11-20 10:00:00); read day first it is one: if the sheet writes the day first, set sheet.date_order = "day-first"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := opts()
			o.DateOrder = tt.order
			v := good()
			v["Timestamp"] = tt.stamp
			res, err := Parse(header, []Row{mkRow(2, header, v)}, o)
			if err != nil {
				t.Fatal(err)
			}
			if tt.problem == "" {
				if got := valid(t, res).Submitted; !got.Equal(tt.want) {
					t.Errorf("Submitted = %v, want %v", got, tt.want)
				}
				return
			}
			if len(res.Invalid) != 1 || len(res.Invalid[0].Errors) != 1 {
				t.Fatalf("want one invalid row with one problem, got %+v", res)
			}
			fe := res.Invalid[0].Errors[0]
			if fe.Row != 2 || fe.Field != "Timestamp" || fe.Value != tt.stamp || !strings.HasPrefix(fe.Error(), tt.problem) {
				t.Errorf("got %+v\n%s\nwant %s", fe, fe.Error(), tt.problem)
			}
		})
	}
}

// TestRowErrorCarriesTheRow: an invalid row's error says which row it is
// (its identity), whose (email, project) and what its Status says, so
// callers need not read its cells again.
func TestRowErrorCarriesTheRow(t *testing.T) {
	v := good()
	v["Email"], v["Project Name"], v["Status"], v["PIN"] = " Bob@ ", " my/project ", " error: old ", "12"
	res, err := Parse(header, []Row{mkRow(4, header, v)}, opts())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Invalid) != 1 {
		t.Fatalf("%+v", res)
	}
	got := res.Invalid[0]
	if got.Row != 4 || got.ID != (Identity{Timestamp: "11/20/2026 10:00:00", Email: " Bob@ "}) ||
		got.Email != "Bob@" || got.Project != "my/project" || got.Status != "error: old" || len(got.Errors) != 3 {
		t.Errorf("%+v", got)
	}
}

// TestColumnsResolved: a custom header for some columns leaves the others
// at their defaults, wherever the columns are given.
func TestColumnsResolved(t *testing.T) {
	hdr := append([]string{}, header...)
	hdr[0] = "Submitted"
	o := opts()
	o.Columns = Columns{Timestamp: "Submitted"}
	v := good()
	v["Submitted"] = v["Timestamp"]
	res, err := Parse(hdr, []Row{mkRow(2, hdr, v)}, o)
	if err != nil {
		t.Fatal(err)
	}
	if q := valid(t, res); q.Identity.Timestamp != "11/20/2026 10:00:00" || q.Email != "ada@example.org" {
		t.Errorf("%+v", q)
	}
	if c := (Columns{Timestamp: "Submitted"}).Resolved(); c.Timestamp != "Submitted" || c.Email != "Email" || c.ProjectID != "Project ID" {
		t.Errorf("Resolved = %+v", c)
	}
}
