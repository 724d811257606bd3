// Package signup turns the rows of the sign-up sheet into validated
// sign-up requests.
//
// Its input is a plain table: a header row and numbered rows of cells, as
// read from a Google Sheet or a CSV file; it knows nothing of either. Columns
// are found by header, compared as config.HeaderKey does (trimmed, inner
// whitespace collapsed, case-insensitive), never by position.
//
// Every row lands in exactly one of Result.Requests (approved and valid),
// Result.Invalid (approved, with at least one problem) or Result.Skipped
// (not approved). Rows whose Status is "done" were processed by an earlier
// run; they stay in Requests with Done set, so a re-run can skip or
// re-verify them. Nothing here touches the cloud: an Existing Project that
// does not exist, for one, is for the onboarding step to find.
package signup

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/kaizen-onboard/kaizen/internal/config"
	"github.com/kaizen-onboard/kaizen/internal/sheet"
)

// Row is one data row of the sheet, as the sheet package reads it. Number
// is its row number in the sheet (the header is row 1 in a Google Sheet);
// it names the row in errors.
type Row = sheet.Row

// Columns is the header of each column, as in settings [sheet.columns].
// An empty field means the default header (Columns.Resolved).
type Columns = config.SheetColumns

// DefaultColumns are the headers of Kaizen's Google Form export.
func DefaultColumns() Columns { return config.DefaultSheetColumns() }

// RAMGB is the quota-column target for RAM asked in GB; the override is
// stored under "ram" in MiB.
const RAMGB = config.QuotaColumnRAMGB

// StatusDone is the Status of a row an earlier run has processed.
const StatusDone = "done"

// Options say how to read and check the rows. Zero fields take defaults:
// DefaultColumns (for each empty header), config.DefaultProjectNamePattern and the settings' default
// approved values ("approved", "yes", "true").
type Options struct {
	Columns Columns
	// QuotaColumns maps a header to a quota key, or RAMGB. Quota columns
	// are optional in the sheet.
	QuotaColumns   map[string]string
	ApprovedValues []string
	// RejectedValues in the Approved column mark a row turned down: it is
	// counted in Result.Rejected and nothing else, with AllApproved too.
	RejectedValues []string
	// AllApproved takes every row as approved (a worksheet of approved
	// requests); the Approved column is then optional and ignored.
	AllApproved        bool
	ProjectNamePattern *regexp.Regexp
	// DateOrder is how Timestamp cells write slash dates with the year
	// last (sheet.date_order); "" is month first.
	DateOrder config.DateOrder
	// DefaultDomain and DefaultPreset fill a row's empty Domain and Quota
	// Preset cells.
	DefaultDomain string
	DefaultPreset string
	// Presets are the preset names a row may ask for (matched
	// case-insensitively); nil accepts any name.
	Presets []string
}

// OptionsFromConfig builds Options from the loaded settings.
func OptionsFromConfig(cfg *config.Config) (Options, error) {
	pat, err := regexp.Compile(cfg.Sheet.ProjectNamePattern)
	if err != nil {
		return Options{}, fmt.Errorf("sheet.project_name_pattern: %w", err)
	}
	presets := make([]string, 0, len(cfg.Quotas.Presets))
	for name := range cfg.Quotas.Presets {
		presets = append(presets, name)
	}
	return Options{
		Columns:            cfg.Sheet.Columns,
		DateOrder:          cfg.Sheet.DateOrder,
		QuotaColumns:       cfg.Sheet.QuotaColumns,
		ApprovedValues:     cfg.Sheet.ApprovedValues,
		RejectedValues:     cfg.Sheet.RejectedValues,
		AllApproved:        cfg.Sheet.AllApproved,
		ProjectNamePattern: pat,
		DefaultDomain:      cfg.OpenStack.Domain,
		DefaultPreset:      cfg.Quotas.DefaultPreset,
		Presets:            presets,
	}, nil
}

// Identity is what a row said when it was read, to find the same row again
// before writing back: the exact Timestamp and Email cells, untrimmed.
type Identity = sheet.Identity

// Request is one approved, valid sign-up row. Strings are trimmed.
type Request struct {
	Row      int
	Identity Identity
	// Submitted is the Timestamp cell read (sheet.ParseTimestamp). A stamp
	// without a zone is read as UTC, so its date is the one the sheet shows.
	Submitted time.Time
	// Email is lower-cased.
	Email        string
	FirstName    string
	LastName     string
	FullName     string
	Organization string
	Role         string
	Phone        string
	Sponsor      string
	PIN          PIN
	// PINRegistered: the PIN cell holds PINRegistered, because the request
	// was registered with setpass and its PIN removed from the sheet.
	PINRegistered      bool
	Comment            string
	ExistingAccount    bool
	ProjectName        string
	ProjectDescription string
	// ExistingProject asks to join ProjectName rather than create it;
	// whether it exists is checked by the onboarding step.
	ExistingProject bool
	// AdditionalUsers are lower-cased, deduplicated addresses, without the
	// requester's own.
	AdditionalUsers []string
	Domain          string
	// DomainManager asks to make the requester the manager of Domain.
	DomainManager bool
	QuotaPreset   string
	// QuotaOverrides replace single quotas of the preset; "ram" is in MiB.
	QuotaOverrides map[string]int64
	// Status is the Status cell as read; Done reports it is "done" (an
	// earlier run processed the row; it was validated all the same).
	Status string
	Done   bool
}

// PINRegistered is what replaces a PIN in the sheet once the user is
// registered with setpass, so that PINs do not stay in the spreadsheet.
const PINRegistered = "(registered)"

// PIN is the 4-digit PIN a requester chose. It prints and encodes as
// "[redacted]", so logging a Request cannot leak it; Reveal is the way out.
type PIN string

func (PIN) String() string               { return "[redacted]" }
func (PIN) GoString() string             { return `signup.PIN("[redacted]")` }
func (PIN) MarshalText() ([]byte, error) { return []byte("[redacted]"), nil }

// Reveal returns the PIN itself, for the one call that needs it.
func (p PIN) Reveal() string { return string(p) }

// WriteBack holds the columns on which the tool writes back its outcome, as
// 0-based cell indexes.
type WriteBack struct {
	Status, ProcessedAt, UserID, ProjectID int
}

// Result sorts the rows.
type Result struct {
	Requests []Request
	Invalid  []RowError
	// Skipped holds the numbers of rows not approved (blank rows included).
	Skipped []int
	// Rejected holds the numbers of rows whose Approved cell is one of
	// Options.RejectedValues.
	Rejected  []int
	WriteBack WriteBack
}

// FieldError is one problem in one cell.
type FieldError struct {
	Row   int
	Field string // the column's header
	// Value is the trimmed cell, or "" when it must not be shown (the PIN).
	Value   string
	Message string
}

func (e FieldError) text() string {
	if e.Value == "" {
		return e.Field + ": " + e.Message
	}
	v := e.Value
	if r := []rune(v); len(r) > 80 {
		v = string(r[:80]) + "..."
	}
	return e.Field + ": " + strconv.Quote(v) + " " + e.Message
}

// Error never includes a PIN.
func (e FieldError) Error() string { return fmt.Sprintf("row %d: %s", e.Row, e.text()) }

// RowError lists every problem of one row, and what the row says, so that
// callers report and write back an invalid row without reading its cells
// again.
type RowError struct {
	Row int
	// ID is the row's identity (its exact Timestamp and Email cells), to
	// find it again before writing back.
	ID Identity
	// Email, Project and Status are the trimmed Email, Project Name and
	// Status cells as written (the email not lower-cased: it may not be
	// one).
	Email, Project, Status string
	Errors                 []FieldError
}

// Error reads like `row 7: Email: "bob@" is not an email address; PIN: must
// be exactly 4 digits`.
func (e RowError) Error() string {
	parts := make([]string, len(e.Errors))
	for i, fe := range e.Errors {
		parts[i] = fe.text()
	}
	return fmt.Sprintf("row %d: %s", e.Row, strings.Join(parts, "; "))
}

// HeaderError says why the table cannot be used at all.
type HeaderError struct {
	Missing   []string // required headers not found
	Ambiguous []string // headers found more than once
}

func (e *HeaderError) Error() string {
	var parts []string
	if len(e.Missing) > 0 {
		parts = append(parts, "missing required column(s): "+quoteAll(e.Missing))
	}
	if len(e.Ambiguous) > 0 {
		parts = append(parts, "column(s) appearing more than once: "+quoteAll(e.Ambiguous))
	}
	return "sheet header: " + strings.Join(parts, "; ")
}

func quoteAll(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = strconv.Quote(s)
	}
	return strings.Join(q, ", ")
}
