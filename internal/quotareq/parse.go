package quotareq

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"net/mail"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kaizen-onboard/kaizen/internal/config"
	"github.com/kaizen-onboard/kaizen/internal/sheet"
)

// Request is one row of the quota-request worksheet. Strings are trimmed.
type Request struct {
	Row int
	// ID is the row's timestamp and email as read, to find it again.
	ID      sheet.Identity
	Email   string // lower-cased
	Project string
	Domain  string
	// Temporary requests hold until EndsOn (their last day, midnight UTC).
	Temporary bool
	EndsOn    time.Time
	// Preset is the preset asked for ("" for none), as the settings spell
	// it; Quotas the single values asked for (ram in MiB).
	Preset string
	Quotas map[string]int64
	// Approved: a person approved the row. Undecided: its Approved cell is
	// empty, so auto-approval may decide it. Rows with anything else there
	// (rejected, on hold) are nobody's to process.
	Approved  bool
	Undecided bool
	Comment   string
	Status    string
}

// Parsed sorts the worksheet's rows.
type Parsed struct {
	Requests []Request
	// Invalid are rows that would be processed but cannot be read.
	Invalid []RowError
	// Finished counts rows an earlier run finished (Status done or
	// refused); Waiting rows nobody approved (and that auto-approval
	// may not decide).
	Finished, Waiting int
}

// RowError lists the problems of one row.
type RowError struct {
	Row      int
	ID       sheet.Identity
	Email    string
	Project  string
	Status   string
	Problems []string
}

func (e RowError) Error() string { return strings.Join(e.Problems, "; ") }

// ParseOptions say how to read the worksheet.
type ParseOptions struct {
	Columns        config.QuotaRequestColumns // empty fields: the defaults
	QuotaColumns   map[string]string          // header -> quota key or ram_gb
	ApprovedValues []string                   // default: the settings' default
	DefaultDomain  string
	Presets        map[string]map[string]int64
	// AutoApprove makes rows with an empty Approved cell candidates.
	AutoApprove bool
	// DateOrder is how End Date cells write slash dates with the year
	// last (sheet.date_order); "" is month first.
	DateOrder config.DateOrder
}

func (o ParseOptions) withDefaults() ParseOptions {
	o.Columns = o.Columns.Resolved()
	if len(o.ApprovedValues) == 0 {
		o.ApprovedValues = config.Defaults().Sheet.ApprovedValues
	}
	if o.DefaultDomain == "" {
		o.DefaultDomain = "Default"
	}
	return o
}

// Status prefixes. A row whose Status starts with StatusDone or
// StatusRefused is finished: later runs leave it alone (clear the cell to
// have it processed again). Rows in error or pending are looked at again.
const (
	StatusDone    = "done"
	StatusRefused = "refused"
	StatusError   = "error"
	StatusPending = "pending approval"
)

// Finished reports whether a Status cell says an earlier run finished the
// row.
func Finished(status string) bool {
	s := strings.ToLower(strings.TrimSpace(status))
	return strings.HasPrefix(s, StatusDone) || strings.HasPrefix(s, StatusRefused)
}

// Parse reads the worksheet. The error is for a header that lacks a
// required column.
func Parse(t *sheet.Table, opts ParseOptions) (Parsed, error) {
	opts = opts.withDefaults()
	c := opts.Columns
	if err := t.Require(c.Timestamp, c.Email, c.Project, c.Approved, c.Status, c.ProcessedAt); err != nil {
		return Parsed{}, err
	}
	approved := map[string]bool{}
	for _, a := range opts.ApprovedValues {
		approved[config.HeaderKey(a)] = true
	}
	quotaHeaders := make([]string, 0, len(opts.QuotaColumns))
	for h := range opts.QuotaColumns {
		if _, ok := t.Index(h); ok {
			quotaHeaders = append(quotaHeaders, h)
		}
	}
	slices.Sort(quotaHeaders)

	var out Parsed
	for _, r := range t.Rows {
		get := func(h string) string { return strings.TrimSpace(t.Get(r, h)) }
		status := get(c.Status)
		if Finished(status) {
			out.Finished++
			continue
		}
		cell := get(c.Approved)
		q := Request{Row: r.Number, ID: sheet.Identity{Timestamp: t.Get(r, c.Timestamp), Email: t.Get(r, c.Email)},
			Approved: approved[config.HeaderKey(cell)], Undecided: cell == "", Status: status}
		if !q.Approved && !(q.Undecided && opts.AutoApprove) {
			out.Waiting++
			continue
		}
		var problems []string
		fail := func(col, format string, args ...any) {
			problems = append(problems, col+": "+fmt.Sprintf(format, args...))
		}
		q.Email = strings.ToLower(get(c.Email))
		if a, err := mail.ParseAddress(q.Email); q.Email == "" || err != nil || a.Address != q.Email {
			fail(c.Email, "%q is not an email address", get(c.Email))
		}
		if q.Project = get(c.Project); q.Project == "" {
			fail(c.Project, "required")
		}
		if q.Domain = get(c.Domain); q.Domain == "" {
			q.Domain = opts.DefaultDomain
		}
		q.Comment = get(c.Comment)
		switch d := strings.ToLower(get(c.Duration)); {
		case d == "" || strings.HasPrefix(d, "perm"):
		case strings.HasPrefix(d, "temp"):
			q.Temporary = true
		default:
			fail(c.Duration, "%q is neither Temporary nor Permanent", get(c.Duration))
		}
		switch end := get(c.EndDate); {
		case end == "" && q.Temporary:
			fail(c.EndDate, "required for a temporary request (its last day)")
		case end != "" && !q.Temporary:
			fail(c.EndDate, "only a temporary request has an end date (set %s to Temporary)", c.Duration)
		case end != "":
			d, err := parseDate(end, opts.DateOrder)
			if err != nil {
				fail(c.EndDate, "%s", err)
			}
			q.EndsOn = d
		}
		if p := get(c.Preset); p != "" {
			for name := range opts.Presets {
				if strings.EqualFold(name, p) {
					q.Preset = name
				}
			}
			if q.Preset == "" {
				names := make([]string, 0, len(opts.Presets))
				for n := range opts.Presets {
					names = append(names, n)
				}
				slices.Sort(names)
				fail(c.Preset, "%q is not a quota preset (known: %s)", p, strings.Join(names, ", "))
			}
		}
		q.Quotas = map[string]int64{}
		for _, h := range quotaHeaders {
			v := get(h)
			if v == "" {
				continue
			}
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				fail(h, "%q is not a whole number, 0 or more", v)
				continue
			}
			key := opts.QuotaColumns[h]
			if key == config.QuotaColumnRAMGB {
				if n > math.MaxInt64/1024 {
					fail(h, "%q is too large", v)
					continue
				}
				key, n = "ram", n*1024
			}
			q.Quotas[key] = n
		}
		if q.Preset == "" && len(q.Quotas) == 0 && len(problems) == 0 {
			problems = append(problems, "the row asks for no quota: name a preset or fill a quota column")
		}
		if len(problems) > 0 {
			out.Invalid = append(out.Invalid, RowError{Row: r.Number, ID: q.ID, Email: q.Email, Project: q.Project,
				Status: status, Problems: problems})
			continue
		}
		out.Requests = append(out.Requests, q)
	}
	return out, nil
}

// parseDate reads an end date as the sheet writes dates (ISO 2026-09-30,
// or the spreadsheet locale's 9/30/2026 or 30/9/2026), with or without a
// time: its day, at midnight UTC.
func parseDate(s string, order config.DateOrder) (time.Time, error) {
	t, err := sheet.ParseTimestamp(s, order, time.UTC)
	if te, ok := errors.AsType[*sheet.TimestampError](err); ok {
		example := "9/30/2026"
		if order == config.DayFirst {
			example = "30/9/2026"
		}
		msg := fmt.Sprintf("%q is not a date (2026-09-30 or %s)", te.Value, example)
		if te.OtherOrder {
			msg += fmt.Sprintf("; it reads as one with the other order of day and month (sheet.date_order is %q)", cmp.Or(order, config.MonthFirst))
		}
		return time.Time{}, errors.New(msg)
	}
	y, m, d := t.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC), nil
}
