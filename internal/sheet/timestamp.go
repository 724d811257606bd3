package sheet

import (
	"strconv"
	"strings"
	"time"

	"github.com/kaizen-onboard/kaizen/internal/config"
)

// Timestamp cells, as a Google Form's response sheet shows them (the API's
// FORMATTED_VALUE) and as a CSV download of it, or a CSV re-saved by a
// spreadsheet program, writes them. The date comes in the spreadsheet
// locale's shape; the time is 24-hour with seconds from Google, without
// seconds or 12-hour after a round trip through another program. Go's
// layouts read 1 and 2 as one or two digits, and any fractional seconds.
var (
	// dateLayouts whose reading does not depend on the order setting.
	isoDates   = []string{"2006-1-2", "2006/1/2"}
	dayDates   = []string{"2.1.2006", "2-1-2006"} // de, pl, ru, ...; nl
	slashDates = map[config.DateOrder]string{config.MonthFirst: "1/2/2006", config.DayFirst: "2/1/2006"}
	clockTimes = []string{"15:04:05", "15:04", "3:04:05 PM", "3:04 PM"}
)

// timestampLayouts lists every layout ParseTimestamp tries for order, the
// commonest (Google Forms in en_US) first.
func timestampLayouts(order config.DateOrder) []string {
	slash, ok := slashDates[order]
	if !ok {
		slash = slashDates[config.MonthFirst]
	}
	var out []string
	for _, d := range append([]string{slash}, append(isoDates, dayDates...)...) {
		for _, t := range clockTimes {
			out = append(out, d+" "+t)
		}
		out = append(out, d)
	}
	// ISO 8601 with a T, with or without a zone (RFC 3339).
	for _, t := range clockTimes[:2] {
		out = append(out, "2006-1-2T"+t+"Z07:00", "2006-1-2T"+t)
	}
	return out
}

// TimestampError is a cell ParseTimestamp cannot read.
type TimestampError struct {
	Value string // the cell, trimmed
	Order config.DateOrder
	// OtherOrder: the cell reads as a date in the other order
	// (20/11/2026 read month first); the setting is likely wrong.
	OtherOrder bool
}

func (e *TimestampError) Error() string { return strconv.Quote(e.Value) + " " + e.Problem() }

// Problem is the error without the cell's value, for messages that show
// it already.
func (e *TimestampError) Problem() string {
	if e.Value == "" {
		return "is empty"
	}
	msg := "is not a date and time as Google Forms or a CSV export writes them (e.g. " + example(e.Order) + " or 2026-11-20 10:00:00)"
	if e.OtherOrder {
		other := config.DayFirst
		if e.Order == config.DayFirst {
			other = config.MonthFirst
		}
		first := strings.TrimSuffix(string(other), "-first")
		msg += "; read " + first + " first it is one: if the sheet writes the " + first + " first, set sheet.date_order = " + strconv.Quote(string(other))
	}
	return msg
}

func example(order config.DateOrder) string {
	if order == config.DayFirst {
		return "20/11/2026 10:00:00"
	}
	return "11/20/2026 10:00:00"
}

// ParseTimestamp reads a Timestamp cell of a sign-up or quota-request
// sheet: the form's submission time (or a date alone, read as midnight).
// order says how dates with slashes and the year last are written ("" is
// month first); stamps without a zone are read in loc (nil: UTC). Leading
// and trailing space is ignored, and so is the case of AM/PM. The error is
// a *TimestampError.
func ParseTimestamp(s string, order config.DateOrder, loc *time.Location) (time.Time, error) {
	if loc == nil {
		loc = time.UTC
	}
	if order == "" {
		order = config.MonthFirst
	}
	s = strings.TrimSpace(s)
	if t, ok := parseLayouts(s, timestampLayouts(order), loc); ok {
		return t, nil
	}
	e := &TimestampError{Value: s, Order: order}
	if s != "" {
		other := config.DayFirst
		if order == config.DayFirst {
			other = config.MonthFirst
		}
		_, e.OtherOrder = parseLayouts(s, timestampLayouts(other), loc)
	}
	return time.Time{}, e
}

func parseLayouts(s string, layouts []string, loc *time.Location) (time.Time, bool) {
	if s == "" {
		return time.Time{}, false
	}
	u := strings.ToUpper(s) // pm, t and z as PM, T and Z
	for _, l := range layouts {
		if t, err := time.ParseInLocation(l, u, loc); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}
