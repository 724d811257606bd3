package reminder

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	netmail "net/mail"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/kaizen-onboard/kaizen/internal/config"
	"github.com/kaizen-onboard/kaizen/internal/sheet"
	"github.com/kaizen-onboard/kaizen/internal/signup"
	"github.com/kaizen-onboard/kaizen/internal/store"
)

// SheetJobDeps are what the two sheet jobs (approver-digest and
// helpdesk-notify) need.
type SheetJobDeps struct {
	Sheet  Sheet
	Ledger Ledger
	Mail   Mailer
	// Columns are the sheet's headers; empty fields take
	// config.DefaultSheetColumns.
	Columns config.SheetColumns
	// DateOrder is how Timestamp cells write slash dates with the year
	// last (sheet.date_order); "" is month first.
	DateOrder config.DateOrder
	// ApprovedValues are the Approved cells that mean approved (compared as
	// config.HeaderKey does); empty takes the settings' defaults.
	ApprovedValues []string
	// AllApproved takes every row as approved (sheet.all_approved).
	AllApproved bool
	// Helpdesk is the default recipient of helpdesk-notify (mail.helpdesk).
	Helpdesk string
	// SheetURL is the sheet's link in the mails; "" leaves it out. See
	// SpreadsheetURL.
	SheetURL string
	// Location is where the form's Timestamp cells are read when they carry
	// no zone, and where stamps are written; nil means UTC.
	Location *time.Location
}

// SpreadsheetURL is the browser link of a Google spreadsheet; "" for an
// empty id (a CSV sheet has no link).
func SpreadsheetURL(spreadsheetID string) string {
	id := strings.TrimSpace(spreadsheetID)
	if id == "" {
		return ""
	}
	return "https://docs.google.com/spreadsheets/d/" + url.PathEscape(id) + "/edit"
}

// SheetJobDepsFromConfig takes the sheet jobs' settings from cfg: the
// columns and approved values of [sheet], the helpdesk of [mail], the link
// from sheet.spreadsheet_id, and reminders.timezone as the location of the
// form's timestamps.
func SheetJobDepsFromConfig(cfg *config.Config, sh Sheet, ledger Ledger, m Mailer) (SheetJobDeps, error) {
	loc := time.UTC
	if tz := strings.TrimSpace(cfg.Reminders.Timezone); tz != "" {
		var err error
		if loc, err = time.LoadLocation(tz); err != nil {
			return SheetJobDeps{}, fmt.Errorf("reminders.timezone: %w", err)
		}
	}
	return SheetJobDeps{
		Sheet: sh, Ledger: ledger, Mail: m,
		Columns:        cfg.Sheet.Columns,
		DateOrder:      cfg.Sheet.DateOrder,
		ApprovedValues: cfg.Sheet.ApprovedValues,
		AllApproved:    cfg.Sheet.AllApproved,
		Helpdesk:       cfg.Mail.Helpdesk,
		SheetURL:       SpreadsheetURL(cfg.Sheet.SpreadsheetID),
		Location:       loc,
	}, nil
}

// signupRowKey is a row's stable subject in ledger keys: a hash of its
// identity (timestamp and email, compared as the sheet package does:
// trimmed, email case-insensitive). Never the row number: rows move.
func signupRowKey(id sheet.Identity) string {
	sum := sha256.Sum256([]byte(strings.TrimSpace(id.Timestamp) + "\x00" + strings.ToLower(strings.TrimSpace(id.Email))))
	return "row-" + hex.EncodeToString(sum[:12])
}

// signupSetKey names a set of ledger keys independently of their order: the
// subject of the one mail that covers them.
func signupSetKey(keys []string) string {
	sorted := slices.Sorted(slices.Values(keys))
	sum := sha256.Sum256([]byte(strings.Join(sorted, "\n")))
	return hex.EncodeToString(sum[:12])
}

// signupRow is one sign-up row as the sheet jobs see it. Cells are trimmed,
// except in id (the exact cells, to find the row again when stamping).
type signupRow struct {
	number    int
	id        sheet.Identity
	name      string
	email     string
	project   string
	comment   string
	submitted time.Time // zero when the Timestamp cell could not be read
	approval  string    // the Approved cell
	approved  bool
	status    string
	stamp     string // the job's stamp cell ("" when absent)
}

func (r signupRow) String() string {
	var parts []string
	if r.name != "" {
		parts = append(parts, r.name)
	}
	if r.email != "" {
		parts = append(parts, "<"+r.email+">")
	}
	if r.project != "" {
		parts = append(parts, "("+r.project+")")
	}
	return fmt.Sprintf("row %d: %s", r.number, strings.Join(parts, " "))
}

// signupJob is what the sheet jobs share: settings, the rows they read and
// how they record, mail and stamp the rows picked.
type signupJob struct {
	name     string
	kind     string // mail kind
	to       []netmail.Address
	column   string // stamped with the run's time
	deps     SheetJobDeps
	cols     config.SheetColumns
	approved map[string]bool
}

func newSignupJob(j config.Job, d SheetJobDeps, mailKind, defaultColumn string, to []string) (*signupJob, error) {
	if strings.TrimSpace(j.Name) == "" {
		return nil, fmt.Errorf("%s job: name is required", j.Kind)
	}
	var missing []string
	if d.Sheet == nil {
		missing = append(missing, "sheet")
	}
	if d.Ledger == nil {
		missing = append(missing, "ledger")
	}
	if d.Mail == nil {
		missing = append(missing, "mailer")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("job %q: no %s given", j.Name, strings.Join(missing, ", "))
	}
	s := &signupJob{name: j.Name, kind: mailKind, column: strings.TrimSpace(j.Column), deps: d}
	if s.column == "" {
		s.column = defaultColumn
	}
	if s.deps.Location == nil {
		s.deps.Location = time.UTC
	}
	for i, a := range to {
		list, err := netmail.ParseAddressList(a)
		if err != nil {
			return nil, fmt.Errorf("job %q: to[%d] %q: %w", j.Name, i, a, err)
		}
		s.to = append(s.to, signupAddrs(list)...)
	}
	// Empty column names take the defaults, as signup.Parse does.
	s.cols = d.Columns.Resolved()
	values := d.ApprovedValues
	if len(values) == 0 {
		values = config.Defaults().Sheet.ApprovedValues
	}
	s.approved = map[string]bool{}
	for _, a := range values {
		if k := config.HeaderKey(a); k != "" {
			s.approved[k] = true
		}
	}
	return s, nil
}

func signupAddrs(list []*netmail.Address) []netmail.Address {
	out := make([]netmail.Address, len(list))
	for i, a := range list {
		out[i] = *a
	}
	return out
}

func (s *signupJob) recipients() string {
	parts := make([]string, len(s.to))
	for i, a := range s.to {
		parts[i] = a.Address
	}
	return strings.Join(parts, ", ")
}

func (s *signupJob) logger(rc RunContext) *slog.Logger {
	l := rc.Logger
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	return l.With("job", s.name)
}

// read reads the sheet and returns its identifiable rows and whether the
// stamp column exists. Rows with neither timestamp nor email cannot be
// keyed or stamped and are left out (with a warning).
func (s *signupJob) read(ctx context.Context, log *slog.Logger) ([]signupRow, bool, error) {
	t, err := s.deps.Sheet.Read(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("reading the sign-up sheet: %w", err)
	}
	required := []string{s.cols.Timestamp, s.cols.Email}
	if !s.deps.AllApproved {
		required = append(required, s.cols.Approved)
	}
	if err := t.Require(required...); err != nil {
		return nil, false, err
	}
	_, stampable := t.Index(s.column)
	c := s.cols
	var rows []signupRow
	for _, r := range t.Rows {
		get := func(h string) string { return strings.TrimSpace(t.Get(r, h)) }
		row := signupRow{
			number:   r.Number,
			id:       sheet.Identity{Timestamp: t.Get(r, c.Timestamp), Email: t.Get(r, c.Email)},
			name:     strings.TrimSpace(get(c.FirstName) + " " + get(c.LastName)),
			email:    get(c.Email),
			project:  get(c.ProjectName),
			comment:  get(c.Comment),
			approval: get(c.Approved),
			status:   get(c.Status),
			stamp:    get(s.column),
		}
		if strings.TrimSpace(row.id.Timestamp) == "" && row.email == "" {
			log.Warn("sign-up row has neither timestamp nor email; left out", "row", r.Number)
			continue
		}
		row.approved = s.deps.AllApproved || s.approved[config.HeaderKey(row.approval)]
		// An unreadable stamp leaves submitted zero: the row is still
		// mailed about (these jobs tell people; import refuses the row).
		if ts, err := sheet.ParseTimestamp(row.id.Timestamp, s.deps.DateOrder, s.deps.Location); err == nil {
			row.submitted = ts
		}
		rows = append(rows, row)
	}
	return rows, stampable, nil
}

// signupPick is a row chosen for this run's mail, with its ledger key.
type signupPick struct {
	row signupRow
	key string
}

// deliver records each pick's ledger key, queues one mail covering those
// newly recorded, and stamps their rows; it fills res. subject names the
// mail in its outbox key, LedgerKey(job, subject, hash of the row keys), so
// a run retried for the same rows (after an error from Queue whose message
// was in fact stored) queues no second mail. build makes the mail's data
// from the rows recorded.
//
// Keys are recorded before the mail is queued, so two replicas or
// overlapping runs never mail a row twice. If Queue fails, the keys
// recorded by this run are forgotten, so the next run tries again; a
// process that dies between the two leaves its rows recorded without mail,
// and they are mailed again only in a later period (approver-digest) or not
// at all (helpdesk-notify): at most once, as the ledger promises.
//
// In a dry run, keys are only looked up (Recorded), and nothing is queued
// or stamped.
func (s *signupJob) deliver(ctx context.Context, rc RunContext, log *slog.Logger, picks []signupPick, stampable bool,
	subject, what string, build func([]signupRow) any, res *Result) error {
	var (
		rows     []signupRow
		recorded []string
	)
	verb := "include"
	if rc.DryRun {
		verb = "would include"
	}
	for _, p := range picks {
		var fresh bool
		var err error
		if rc.DryRun {
			var done bool
			_, done, err = s.deps.Ledger.Recorded(ctx, p.key)
			fresh = !done
		} else {
			fresh, err = s.deps.Ledger.RecordOnce(ctx, p.key, rc.Now)
		}
		if err != nil {
			err = fmt.Errorf("recording %s in the ledger: %w", p.row, err)
			return errors.Join(err, s.forget(ctx, log, recorded))
		}
		if !fresh {
			res.Skipped++
			continue
		}
		if !rc.DryRun {
			recorded = append(recorded, p.key)
		}
		rows = append(rows, p.row)
		res.Lines = append(res.Lines, fmt.Sprintf("%s: %s %s", s.name, verb, p.row))
	}
	if len(rows) == 0 {
		return nil
	}
	if rc.DryRun {
		res.Sent++
		res.Lines = append(res.Lines, fmt.Sprintf("%s: would queue the %s of %d row(s) to %s", s.name, what, len(rows), s.recipients()))
		return nil
	}

	mailKey := LedgerKey(s.name, subject, signupSetKey(recorded))
	_, created, err := s.deps.Mail.Queue(ctx, mailKey, s.kind, s.to, build(rows))
	if err != nil {
		err = fmt.Errorf("queuing %s: %w", what, err)
		return errors.Join(err, s.forget(ctx, log, recorded))
	}
	if created {
		res.Sent++
		res.Lines = append(res.Lines, fmt.Sprintf("%s: queued the %s of %d row(s) to %s", s.name, what, len(rows), s.recipients()))
	} else {
		res.Lines = append(res.Lines, fmt.Sprintf("%s: the %s of %d row(s) to %s was already queued", s.name, what, len(rows), s.recipients()))
	}
	s.stamp(ctx, rc, log, rows, stampable, res)
	return nil
}

// forget undoes this run's ledger records, even when ctx has ended (that
// may be why Queue failed).
func (s *signupJob) forget(ctx context.Context, log *slog.Logger, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	var errs []error
	for _, k := range keys {
		if err := s.deps.Ledger.Forget(ctx, k); err != nil && !errors.Is(err, store.ErrNotFound) {
			errs = append(errs, fmt.Errorf("forgetting ledger key %s (its row counts as mailed until the key's period ends): %w", k, err))
		}
	}
	if len(errs) > 0 {
		log.Error("could not forget ledger keys after failing to queue mail", "keys", len(errs))
	}
	return errors.Join(errs...)
}

// stamp writes the run's time into the job's column of rows, in one batch.
// The stamp is for people: the ledger is what prevents repeats, so a
// missing column or a failed write is logged (and listed in res.Lines) but
// does not fail the run.
func (s *signupJob) stamp(ctx context.Context, rc RunContext, log *slog.Logger, rows []signupRow, stampable bool, res *Result) {
	if !stampable {
		log.Warn("the sheet has no column to stamp; rows not stamped (the ledger still records them)", "column", s.column)
		res.Lines = append(res.Lines, fmt.Sprintf("%s: not stamped: the sheet has no %q column", s.name, s.column))
		return
	}
	value := rc.Now.In(s.deps.Location).Format(time.RFC3339)
	writes := make([]sheet.Write, len(rows))
	for i, r := range rows {
		writes[i] = sheet.Write{Row: r.number, ID: r.id, Values: map[string]string{s.column: value}}
	}
	results, err := s.deps.Sheet.WriteBatch(ctx, writes)
	if err != nil {
		log.Warn("could not stamp the sheet (the ledger still records the rows)", "column", s.column, "rows", len(rows), "err", err)
		res.Lines = append(res.Lines, fmt.Sprintf("%s: not stamped: %v", s.name, err))
		return
	}
	for i, wr := range results {
		if wr.Err != nil && i < len(rows) {
			log.Warn("could not stamp a row (the ledger still records it)", "row", rows[i].number, "column", s.column, "err", wr.Err)
			res.Lines = append(res.Lines, fmt.Sprintf("%s: %s not stamped: %v", s.name, rows[i], wr.Err))
		}
	}
}

// signupDone reports a Status that addusers wrote for a processed row.
func signupDone(status string) bool {
	return strings.EqualFold(strings.TrimSpace(status), signup.StatusDone)
}
