package sheet

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kaizen-onboard/kaizen/internal/config"
)

// formerLayouts are the layout lists ParseTimestamp replaced: every stamp
// one of them read must still read the same.
var formerLayouts = []struct{ from, layout string }{
	// reminder.signupTimeLayouts (approver digest, helpdesk notify)
	{"reminders", "1/2/2006 15:04:05"},
	{"reminders", time.RFC3339Nano},
	{"reminders", "2006-01-02 15:04:05"},
	{"reminders", "2006-01-02T15:04:05"},
	{"reminders", "1/2/2006 15:04"},
	{"reminders", "2006-01-02 15:04"},
	// onboard.requestDate (the import's requested-<date> project tag)
	{"import", "1/2/2006 15:04:05"},
	{"import", time.RFC3339},
	{"import", "2006-01-02 15:04:05"},
	{"import", "2006-01-02"},
	// quotareq.parseDate (a quota request's End Date)
	{"quotas", time.DateOnly},
	{"quotas", "1/2/2006"},
	{"quotas", "1/2/2006 15:04:05"},
	{"quotas", time.RFC3339},
	{"quotas", "2006-01-02 15:04:05"},
}

func TestParseTimestampFormerLayouts(t *testing.T) {
	t.Parallel()
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	// Days and months of one and two digits, before and after noon.
	moments := []time.Time{
		time.Date(2026, 3, 9, 8, 5, 7, 0, ny),
		time.Date(2026, 11, 20, 22, 45, 59, 123456789, ny),
	}
	for _, f := range formerLayouts {
		for _, at := range moments {
			cell := at.Format(f.layout)
			t.Run(f.from+"/"+f.layout+"/"+cell, func(t *testing.T) {
				got, err := ParseTimestamp(cell, config.MonthFirst, ny)
				if err != nil {
					t.Fatalf("ParseTimestamp(%q): %v", cell, err)
				}
				// What the layout itself reads back is what must come out.
				want, err := time.ParseInLocation(f.layout, cell, ny)
				if err != nil {
					t.Fatal(err)
				}
				if !got.Equal(want) {
					t.Errorf("ParseTimestamp(%q) = %v, want %v", cell, got, want)
				}
			})
		}
	}
}

func TestParseTimestamp(t *testing.T) {
	t.Parallel()
	utc := func(y int, m time.Month, d, h, min, s int) time.Time {
		return time.Date(y, m, d, h, min, s, 0, time.UTC)
	}
	tests := []struct {
		name  string
		in    string
		order config.DateOrder
		want  time.Time
	}{
		{"Google Forms en_US", "11/20/2026 10:00:00", config.MonthFirst, utc(2026, 11, 20, 10, 0, 0)},
		{"Google Forms en_US, one-digit month, day and hour", "3/9/2026 8:05:07", config.MonthFirst, utc(2026, 3, 9, 8, 5, 7)},
		{"default order is month first", "3/9/2026 8:05:07", "", utc(2026, 3, 9, 8, 5, 7)},
		{"padded month and day", "03/09/2026 08:05:07", config.MonthFirst, utc(2026, 3, 9, 8, 5, 7)},
		{"CSV re-saved without seconds", "11/20/2026 10:00", config.MonthFirst, utc(2026, 11, 20, 10, 0, 0)},
		{"12-hour clock", "11/20/2026 10:15:30 PM", config.MonthFirst, utc(2026, 11, 20, 22, 15, 30)},
		{"12-hour clock without seconds, lower case", "11/20/2026 12:15 am", config.MonthFirst, utc(2026, 11, 20, 0, 15, 0)},
		{"date only", "11/20/2026", config.MonthFirst, utc(2026, 11, 20, 0, 0, 0)},
		{"en_GB day first", "20/11/2026 10:00:00", config.DayFirst, utc(2026, 11, 20, 10, 0, 0)},
		{"day first, ambiguous day", "3/9/2026 10:00:00", config.DayFirst, utc(2026, 9, 3, 10, 0, 0)},
		{"day first without seconds", "20/11/2026 10:00", config.DayFirst, utc(2026, 11, 20, 10, 0, 0)},
		{"de_DE dots", "20.11.2026 10:00:00", config.MonthFirst, utc(2026, 11, 20, 10, 0, 0)},
		{"dots are day first either way", "3.9.2026 10:00:00", config.DayFirst, utc(2026, 9, 3, 10, 0, 0)},
		{"nl_NL dashes", "20-11-2026 10:00:00", config.MonthFirst, utc(2026, 11, 20, 10, 0, 0)},
		{"ISO (sv_SE, CSV from a database)", "2026-11-20 10:00:00", config.DayFirst, utc(2026, 11, 20, 10, 0, 0)},
		{"ISO without padding", "2026-3-9 8:05:07", config.MonthFirst, utc(2026, 3, 9, 8, 5, 7)},
		{"ja_JP / zh_CN slashes, year first", "2026/11/20 10:00:00", config.DayFirst, utc(2026, 11, 20, 10, 0, 0)},
		{"ISO with T, no zone", "2026-11-20T10:00:00", config.MonthFirst, utc(2026, 11, 20, 10, 0, 0)},
		{"RFC 3339 UTC", "2026-11-20T10:00:00Z", config.MonthFirst, utc(2026, 11, 20, 10, 0, 0)},
		{"RFC 3339 offset", "2026-11-20T12:00:00+02:00", config.MonthFirst, utc(2026, 11, 20, 10, 0, 0)},
		{"RFC 3339 fraction", "2026-11-20T10:00:00.25Z", config.MonthFirst, time.Date(2026, 11, 20, 10, 0, 0, 250e6, time.UTC)},
		{"fractional seconds", "11/20/2026 10:00:00.5", config.MonthFirst, time.Date(2026, 11, 20, 10, 0, 0, 500e6, time.UTC)},
		{"surrounding space", "  11/20/2026 10:00:00\t", config.MonthFirst, utc(2026, 11, 20, 10, 0, 0)},
		{"leap day", "2/29/2028 10:00:00", config.MonthFirst, utc(2028, 2, 29, 10, 0, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseTimestamp(tt.in, tt.order, nil)
			if err != nil {
				t.Fatalf("ParseTimestamp(%q, %q): %v", tt.in, tt.order, err)
			}
			if !got.Equal(tt.want) {
				t.Errorf("ParseTimestamp(%q, %q) = %v, want %v", tt.in, tt.order, got, tt.want)
			}
		})
	}

	t.Run("zone-less stamps are read in the location", func(t *testing.T) {
		ny, err := time.LoadLocation("America/New_York")
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseTimestamp("3/9/2026 08:00:00", config.MonthFirst, ny) // EDT
		if err != nil || !got.Equal(time.Date(2026, 3, 9, 12, 0, 0, 0, time.UTC)) {
			t.Errorf("got %v, %v", got, err)
		}
		got, err = ParseTimestamp("2026-03-09T08:00:00Z", config.MonthFirst, ny)
		if err != nil || !got.Equal(time.Date(2026, 3, 9, 8, 0, 0, 0, time.UTC)) {
			t.Errorf("a stamp with a zone keeps it: got %v, %v", got, err)
		}
	})
}

func TestParseTimestampRefuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		in         string
		order      config.DateOrder
		otherOrder bool
		problem    string
	}{
		{"empty", "  ", config.MonthFirst, false, "is empty"},
		{"words", "yesterday", config.MonthFirst, false, "is not a date and time"},
		{"day first in a month-first sheet", "20/11/2026 10:00:00", config.MonthFirst, true, `set sheet.date_order = "day-first"`},
		{"month first in a day-first sheet", "11/20/2026 10:00:00", config.DayFirst, true, `set sheet.date_order = "month-first"`},
		{"no such day", "2/30/2026 10:00:00", config.MonthFirst, false, "is not a date"},
		{"not a leap year", "2/29/2026", config.MonthFirst, false, "is not a date"},
		{"hour 24", "11/20/2026 24:00:00", config.MonthFirst, false, "is not a date"},
		{"two-digit year", "11/20/26 10:00", config.MonthFirst, false, "is not a date"},
		{"time only", "10:00:00", config.MonthFirst, false, "is not a date"},
		{"Google Sheets serial number", "46346.4166666667", config.MonthFirst, false, "is not a date"},
		{"trailing text", "11/20/2026 10:00:00 please", config.MonthFirst, false, "is not a date"},
		{"13-hour PM", "11/20/2026 13:00 PM", config.MonthFirst, false, "is not a date"},
		{"other scripts' digits", "١١/٢٠/٢٠٢٦", config.MonthFirst, false, "is not a date"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseTimestamp(tt.in, tt.order, nil)
			var te *TimestampError
			if !errors.As(err, &te) {
				t.Fatalf("ParseTimestamp(%q) = %v, %v; want a *TimestampError", tt.in, got, err)
			}
			if te.Value != strings.TrimSpace(tt.in) || te.OtherOrder != tt.otherOrder || !strings.Contains(te.Problem(), tt.problem) {
				t.Errorf("got %+v (%s), want other order %v and ...%s...", te, te.Problem(), tt.otherOrder, tt.problem)
			}
			if !strings.Contains(err.Error(), te.Problem()) {
				t.Errorf("Error() %q lacks the problem", err)
			}
		})
	}
}

// FuzzParseTimestamp feeds cells from outside (the sheet) to the parser.
// Whatever it accepts, it accepts trimmed or not, reads the same with
// either order unless the cell is a slash date with the year last, and
// reads back from its own canonical form.
func FuzzParseTimestamp(f *testing.F) {
	for _, s := range []string{"11/20/2026 10:00:00", "20/11/2026 10:00", "2026-11-20T10:00:00.5+02:00", "20.11.2026",
		"3/9/2026 8:05 pm", "2026/1/2", "yesterday", "", "2/30/2026", "99999/1/1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseTimestamp(s, config.MonthFirst, time.UTC)
		if err != nil {
			var te *TimestampError
			if !errors.As(err, &te) {
				t.Fatalf("error %v is not a *TimestampError", err)
			}
			return
		}
		if again, err := ParseTimestamp(" "+s+"\t", config.MonthFirst, time.UTC); err != nil || !again.Equal(got) {
			t.Errorf("padded %q reads %v, %v; unpadded %v", s, again, err, got)
		}
		canon := got.Format("2006-01-02T15:04:05.999999999Z07:00")
		if back, err := ParseTimestamp(canon, config.DayFirst, time.UTC); err != nil || !back.Equal(got) {
			t.Errorf("%q read %v; its form %q reads back %v, %v", s, got, canon, back, err)
		}
		if !slashYearLast(s) {
			if other, err := ParseTimestamp(s, config.DayFirst, time.UTC); err != nil || !other.Equal(got) {
				t.Errorf("%q reads %v month first but %v, %v day first", s, got, other, err)
			}
		}
	})
}

// slashYearLast reports whether the date part of s is d/d/yyyy, the one
// shape whose reading depends on the order.
func slashYearLast(s string) bool {
	date, _, _ := strings.Cut(strings.TrimSpace(s), " ")
	parts := strings.Split(date, "/")
	return len(parts) == 3 && len(parts[2]) == 4
}

// FuzzTimestampLayouts formats arbitrary moments in every layout the
// parser knows and reads them back: no layout is shadowed by another.
func FuzzTimestampLayouts(f *testing.F) {
	f.Add(int64(1795168800), uint8(0), true)
	f.Add(int64(1772000000), uint8(7), false)
	f.Fuzz(func(t *testing.T, unix int64, which uint8, dayFirst bool) {
		order := config.MonthFirst
		if dayFirst {
			order = config.DayFirst
		}
		// Years with four digits, to the second.
		at := time.Unix(unix%(8000*365*86400), 0).UTC().AddDate(1000, 0, 0)
		if at.Year() < 1000 || at.Year() > 9999 {
			return
		}
		layouts := timestampLayouts(order)
		layout := layouts[int(which)%len(layouts)]
		cell := at.Format(layout)
		want, err := time.Parse(layout, cell)
		if err != nil {
			t.Fatalf("layout %q does not read its own %q: %v", layout, cell, err)
		}
		got, err := ParseTimestamp(cell, order, time.UTC)
		if err != nil || !got.Equal(want) {
			t.Errorf("%q (layout %q, %s) reads %v, %v; want %v", cell, layout, order, got, err, want)
		}
	})
}
