package reminder_test

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	netmail "net/mail"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kaizen-onboard/kaizen/internal/config"
	"github.com/kaizen-onboard/kaizen/internal/mail"
	"github.com/kaizen-onboard/kaizen/internal/reminder"
	"github.com/kaizen-onboard/kaizen/internal/sheet"
	"github.com/kaizen-onboard/kaizen/internal/store"
	"github.com/kaizen-onboard/kaizen/internal/testenv/mailtest"
	"github.com/kaizen-onboard/kaizen/templates"
)

// Test helpers of the sheet jobs (approver-digest and helpdesk-notify) are
// prefixed sj, to keep clear of other jobs' test helpers in this package.

// sjBase is the first run's time in the tables: 09:00 UTC, mid-period for
// daily intervals.
var sjBase = time.Date(2026, time.March, 10, 9, 0, 0, 0, time.UTC)

const sjSheetURL = "https://docs.google.com/spreadsheets/d/1AbC/edit"

// sjHeader is a sign-up sheet header with both stamp columns.
var sjHeader = []string{"Timestamp", "Email", "First Name", "Last Name", "Project Name", "Comment",
	"Approved", "Status", "Reminder Sent", "Helpdesk Notified"}

// sjSheet is an in-memory sign-up sheet: Read returns a copy of the table;
// WriteBatch locates rows by identity (timestamp and email) as the real
// sheets do, and reports unknown columns and lost rows per write.
type sjSheet struct {
	mu       sync.Mutex
	t        sheet.Table
	batches  [][]sheet.Write
	readErr  error
	writeErr error
	// tsCol and emailCol are the identity headers; "" means the defaults.
	tsCol, emailCol string
}

func (s *sjSheet) idCols() (ts, email int) {
	tsName, emailName := cmp.Or(s.tsCol, "Timestamp"), cmp.Or(s.emailCol, "Email")
	ts, _ = s.t.Index(tsName)
	email, _ = s.t.Index(emailName)
	return ts, email
}

func newSJSheet(header ...string) *sjSheet {
	if len(header) == 0 {
		header = sjHeader
	}
	return &sjSheet{t: sheet.Table{Header: slices.Clone(header)}}
}

func (s *sjSheet) Read(ctx context.Context) (*sheet.Table, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.readErr != nil {
		return nil, s.readErr
	}
	t := &sheet.Table{Header: slices.Clone(s.t.Header)}
	for _, r := range s.t.Rows {
		t.Rows = append(t.Rows, sheet.Row{Number: r.Number, Cells: slices.Clone(r.Cells)})
	}
	return t, nil
}

func (s *sjSheet) WriteBatch(ctx context.Context, writes []sheet.Write) ([]sheet.WriteResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.writeErr != nil {
		return nil, s.writeErr
	}
	s.batches = append(s.batches, slices.Clone(writes))
	ts, em := s.idCols()
	res := make([]sheet.WriteResult, len(writes))
	for i, w := range writes {
		at := -1
		for k, r := range s.t.Rows {
			if strings.TrimSpace(r.At(ts)) == strings.TrimSpace(w.ID.Timestamp) && strings.EqualFold(strings.TrimSpace(r.At(em)), strings.TrimSpace(w.ID.Email)) {
				at = k
				break
			}
		}
		if at < 0 {
			res[i].Err = fmt.Errorf("row %d (%s): %w", w.Row, w.ID, sheet.ErrRowNotFound)
			continue
		}
		for h := range w.Values {
			if _, ok := s.t.Index(h); !ok {
				res[i].Err = fmt.Errorf("unknown column %q", h)
			}
		}
		if res[i].Err != nil {
			continue
		}
		for h, v := range w.Values {
			c, _ := s.t.Index(h)
			for len(s.t.Rows[at].Cells) <= c {
				s.t.Rows[at].Cells = append(s.t.Rows[at].Cells, "")
			}
			s.t.Rows[at].Cells[c] = v
		}
		res[i].Row = s.t.Rows[at].Number
	}
	return res, nil
}

// add appends a row given by header → value.
func (s *sjSheet) add(cells map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	row := make([]string, len(s.t.Header))
	for h, v := range cells {
		i, ok := s.t.Index(h)
		if !ok {
			panic("sjSheet.add: no column " + h)
		}
		row[i] = v
	}
	s.t.Rows = append(s.t.Rows, sheet.Row{Number: len(s.t.Rows) + 2, Cells: row})
}

// set sets the cell of the row with this email.
func (s *sjSheet) set(email, header, value string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, em := s.idCols()
	c, ok := s.t.Index(header)
	if !ok {
		panic("sjSheet.set: no column " + header)
	}
	for k, r := range s.t.Rows {
		if strings.EqualFold(r.At(em), email) {
			for len(s.t.Rows[k].Cells) <= c {
				s.t.Rows[k].Cells = append(s.t.Rows[k].Cells, "")
			}
			s.t.Rows[k].Cells[c] = value
			return
		}
	}
	panic("sjSheet.set: no row " + email)
}

// get is the cell of the row with this email.
func (s *sjSheet) get(email, header string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, em := s.idCols()
	for _, r := range s.t.Rows {
		if strings.EqualFold(r.At(em), email) {
			return s.t.Get(r, header)
		}
	}
	return ""
}

// moveToTop reorders the rows so that the row with this email comes first
// (someone sorted the sheet): row numbers change, identities do not.
func (s *sjSheet) moveToTop(email string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, em := s.idCols()
	i := slices.IndexFunc(s.t.Rows, func(r sheet.Row) bool { return strings.EqualFold(r.At(em), email) })
	r := s.t.Rows[i]
	s.t.Rows = slices.Insert(slices.Delete(s.t.Rows, i, i+1), 0, r)
	for k := range s.t.Rows {
		s.t.Rows[k].Number = k + 2
	}
}

// sjCall is one Queue call.
type sjCall struct {
	key, kind string
	to        []string
	data      any
	rendered  mail.Rendered
	created   bool
}

// emails lists the rows a digest or notice is about.
func (c sjCall) emails() []string {
	var out []string
	switch d := c.data.(type) {
	case mail.ApproverDigestData:
		for _, r := range d.Requests {
			out = append(out, r.Email)
		}
	case mail.HelpdeskNotifyData:
		for _, it := range d.Items {
			out = append(out, it.Email)
		}
	}
	return out
}

// sjMailer queues into a real outbox (store-backed, so a repeated key is
// not queued twice) with the real templates, and records each call. fail
// makes Queue fail before queuing; failAfter makes it fail after the
// message is stored (a lost reply).
type sjMailer struct {
	mu        sync.Mutex
	out       *mail.Outbox
	r         *mail.Renderer
	calls     []sjCall
	fail      error
	failAfter error
}

func (m *sjMailer) Queue(ctx context.Context, key, kind string, to []netmail.Address, data any) (int64, bool, error) {
	m.mu.Lock()
	fail, failAfter := m.fail, m.failAfter
	m.mu.Unlock()
	if fail != nil {
		return 0, false, fail
	}
	rendered, err := m.r.Render(kind, data)
	if err != nil {
		return 0, false, err
	}
	id, created, err := m.out.Queue(ctx, key, kind, to, data)
	if err != nil {
		return 0, false, err
	}
	rcpts := make([]string, len(to))
	for i, a := range to {
		rcpts[i] = a.Address
	}
	m.mu.Lock()
	m.calls = append(m.calls, sjCall{key: key, kind: kind, to: rcpts, data: data, rendered: rendered, created: created})
	m.mu.Unlock()
	if failAfter != nil {
		return 0, false, failAfter
	}
	return id, created, nil
}

func (m *sjMailer) setFail(before, after error) {
	m.mu.Lock()
	m.fail, m.failAfter = before, after
	m.mu.Unlock()
}

// created are the calls that queued a new message.
func (m *sjMailer) created() []sjCall {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []sjCall
	for _, c := range m.calls {
		if c.created {
			out = append(out, c)
		}
	}
	return out
}

// sjEnv is one scenario's sheet, store, mailer and job.
type sjEnv struct {
	t      *testing.T
	sheet  *sjSheet
	store  store.Store
	mailer *sjMailer
	deps   reminder.SheetJobDeps
	job    config.Job
	build  func(config.Job, reminder.SheetJobDeps) (reminder.Job, error)
	cur    reminder.Job
}

func sjOpenStore(t *testing.T) store.Store {
	t.Helper()
	s, err := store.Open(t.Context(), "sqlite://"+t.TempDir()+"/s.db", nil)
	if err != nil {
		t.Fatalf("store.Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newSJEnv(t *testing.T, sh *sjSheet, job config.Job, build func(config.Job, reminder.SheetJobDeps) (reminder.Job, error)) *sjEnv {
	t.Helper()
	st := sjOpenStore(t)
	r, err := mail.NewRenderer(templates.FS, "", mail.Common{CloudName: "Example Cloud", From: "Example Cloud <cloud@example.org>",
		Support: "support@example.org", Helpdesk: "helpdesk@example.org"})
	if err != nil {
		t.Fatalf("NewRenderer: %v", err)
	}
	c, err := mail.NewComposer("Example Cloud <cloud@example.org>", "", time.Now, rand.Reader)
	if err != nil {
		t.Fatalf("NewComposer: %v", err)
	}
	md, err := mail.NewMaildir(filepath.Join(t.TempDir(), "mail"), time.Now, rand.Reader)
	if err != nil {
		t.Fatalf("NewMaildir: %v", err)
	}
	m := &sjMailer{out: mail.NewOutbox(st, r, c, md, mail.OutboxOptions{Keys: mailtest.Keys(t)}), r: r}
	e := &sjEnv{t: t, sheet: sh, store: st, mailer: m, job: job, build: build,
		deps: reminder.SheetJobDeps{Sheet: sh, Ledger: st, Mail: m, Helpdesk: "helpdesk@example.org", SheetURL: sjSheetURL}}
	return e
}

// instance returns the current job, building it on first use or after a
// restart.
func (e *sjEnv) instance() reminder.Job {
	e.t.Helper()
	if e.cur == nil {
		j, err := e.build(e.job, e.deps)
		if err != nil {
			e.t.Fatalf("building job: %v", err)
		}
		e.cur = j
	}
	return e.cur
}

func (e *sjEnv) run(at time.Time, dry bool) (reminder.Result, error) {
	logger := slog.New(slog.NewTextHandler(e.t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	return e.instance().Run(e.t.Context(), reminder.RunContext{Now: at, DryRun: dry, Logger: logger})
}

// sjStep is one run of a scenario and what it must do.
type sjStep struct {
	at      time.Duration // after sjBase
	before  func(*sjEnv)  // changes to the sheet or mailer first
	dry     bool
	restart bool // a new job instance (the daemon restarted)
	// want lists the emails of the mail this run newly queues, in order;
	// nil: no new mail.
	want        []string
	wantSent    int
	wantSkipped int
	wantErr     string // substring of the run's error; "" for none
	after       func(*testing.T, *sjEnv, reminder.Result)
}

func (e *sjEnv) play(steps []sjStep) {
	t := e.t
	for i, s := range steps {
		if s.before != nil {
			s.before(e)
		}
		if s.restart {
			e.cur = nil
		}
		before := len(e.mailer.created())
		res, err := e.run(sjBase.Add(s.at), s.dry)
		switch {
		case s.wantErr == "" && err != nil:
			t.Fatalf("step %d (+%v): unexpected error: %v", i, s.at, err)
		case s.wantErr != "" && (err == nil || !strings.Contains(err.Error(), s.wantErr)):
			t.Fatalf("step %d (+%v): error = %v, want one containing %q", i, s.at, err, s.wantErr)
		}
		created := e.mailer.created()[before:]
		var got []string
		switch len(created) {
		case 0:
		case 1:
			got = created[0].emails()
		default:
			t.Fatalf("step %d (+%v): %d mails queued in one run, want at most one", i, s.at, len(created))
		}
		if !slices.Equal(got, s.want) {
			t.Errorf("step %d (+%v): mail lists %q, want %q\nlines: %q", i, s.at, got, s.want, res.Lines)
		}
		if res.Sent != s.wantSent || res.Skipped != s.wantSkipped {
			t.Errorf("step %d (+%v): Sent, Skipped = %d, %d; want %d, %d\nlines: %q", i, s.at, res.Sent, res.Skipped, s.wantSent, s.wantSkipped, res.Lines)
		}
		if s.after != nil {
			s.after(t, e, res)
		}
	}
}

// sjRow is a sign-up row submitted at sjBase-age.
func sjRow(first, email, approved string, age time.Duration) map[string]string {
	return map[string]string{
		"Timestamp":    sjBase.Add(-age).Format("1/2/2006 15:04:05"),
		"Email":        email,
		"First Name":   first,
		"Last Name":    "Tester",
		"Project Name": first + "-project",
		"Comment":      "Comment of " + first,
		"Approved":     approved,
	}
}

func sjDigestJob() config.Job {
	return config.Job{Name: "digest", Kind: "approver-digest", Schedule: "@daily", To: []string{"Approvers <approvers@example.org>"}}
}

const sjDay = 24 * time.Hour

// sjCase is a run of a sheet job over a sheet, step by step.
type sjCase struct {
	name   string
	header []string
	setup  func(*sjEnv)
	job    func(*config.Job)
	deps   func(*reminder.SheetJobDeps)
	steps  []sjStep
}

// runSJCases plays each case on a job from newJob built by build.
func runSJCases(t *testing.T, tests []sjCase, newJob func() config.Job, build func(config.Job, reminder.SheetJobDeps) (reminder.Job, error)) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			job := newJob()
			if tt.job != nil {
				tt.job(&job)
			}
			e := newSJEnv(t, newSJSheet(tt.header...), job, build)
			if tt.deps != nil {
				tt.deps(&e.deps)
			}
			if tt.setup != nil {
				tt.setup(e)
			}
			e.play(tt.steps)
		})
	}
}

// sjConfigCase is a job and its dependencies, changed, and the error
// building the job should give ("": none).
type sjConfigCase struct {
	name    string
	job     func(*config.Job)
	deps    func(*reminder.SheetJobDeps)
	wantErr string
}

// runSJConfigCases builds each case's job from newJob and deps.
func runSJConfigCases(t *testing.T, tests []sjConfigCase, newJob func() config.Job, deps reminder.SheetJobDeps, build func(config.Job, reminder.SheetJobDeps) (reminder.Job, error)) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j, d := newJob(), deps
			if tt.job != nil {
				tt.job(&j)
			}
			if tt.deps != nil {
				tt.deps(&d)
			}
			_, err := build(j, d)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("error = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestApproverDigest(t *testing.T) {
	ada := func(e *sjEnv) { e.sheet.add(sjRow("Ada", "ada@example.edu", "", 2*sjDay)) }
	bob := func(e *sjEnv) { e.sheet.add(sjRow("Bob", "bob@example.edu", "", 3*sjDay)) }
	both := func(e *sjEnv) { ada(e); bob(e) }
	stamped := func(email string, at time.Time) func(*testing.T, *sjEnv, reminder.Result) {
		return func(t *testing.T, e *sjEnv, _ reminder.Result) {
			if got, want := e.sheet.get(email, "Reminder Sent"), at.Format(time.RFC3339); got != want {
				t.Errorf("Reminder Sent of %s = %q, want %q", email, got, want)
			}
		}
	}
	tests := []sjCase{
		{
			name:  "rows younger than start are not sent until due",
			setup: func(e *sjEnv) { e.sheet.add(sjRow("Ada", "ada@example.edu", "", 2*time.Hour)) },
			steps: []sjStep{
				{at: 0, wantSkipped: 1},
				{at: 21 * time.Hour, wantSkipped: 1},
				{at: 22 * time.Hour, want: []string{"ada@example.edu"}, wantSent: 1},
			},
		},
		{
			name:  "custom start",
			setup: func(e *sjEnv) { e.sheet.add(sjRow("Ada", "ada@example.edu", "", 2*time.Hour)) },
			job:   func(j *config.Job) { j.Start = config.Dur(time.Hour) },
			steps: []sjStep{{at: 0, want: []string{"ada@example.edu"}, wantSent: 1}},
		},
		{
			name:  "sent once in one digest, not repeated within the interval, repeated after it",
			setup: both,
			steps: []sjStep{
				{at: 0, want: []string{"ada@example.edu", "bob@example.edu"}, wantSent: 1},
				{at: time.Hour, wantSkipped: 2},
				{at: 14 * time.Hour, wantSkipped: 2}, // 23:00, same UTC day
				{at: sjDay, want: []string{"ada@example.edu", "bob@example.edu"}, wantSent: 1},
				{at: sjDay + time.Minute, wantSkipped: 2},
				{at: 2 * sjDay, want: []string{"ada@example.edu", "bob@example.edu"}, wantSent: 1},
			},
		},
		{
			name:  "custom interval",
			setup: ada,
			job:   func(j *config.Job) { j.Interval = config.Dur(72 * time.Hour) },
			steps: []sjStep{
				{at: 0, want: []string{"ada@example.edu"}, wantSent: 1},
				{at: sjDay, wantSkipped: 1},
				{at: 2 * sjDay, wantSkipped: 1},
				{at: 3 * sjDay, want: []string{"ada@example.edu"}, wantSent: 1},
			},
		},
		{
			name:  "rows that got approved, declined or processed drop out",
			setup: both,
			steps: []sjStep{
				{at: 0, want: []string{"ada@example.edu", "bob@example.edu"}, wantSent: 1},
				{at: sjDay, before: func(e *sjEnv) { e.sheet.set("ada@example.edu", "Approved", " YES ") },
					want: []string{"bob@example.edu"}, wantSent: 1},
				{at: 2 * sjDay, before: func(e *sjEnv) { e.sheet.set("bob@example.edu", "Approved", "no") }},
				{at: 3 * sjDay, before: func(e *sjEnv) {
					e.sheet.set("bob@example.edu", "Approved", "")
					e.sheet.set("bob@example.edu", "Status", "error: something")
				}},
			},
		},
		{
			name:  "new rows join later digests; each row is spaced by the interval",
			setup: ada,
			steps: []sjStep{
				{at: 0, want: []string{"ada@example.edu"}, wantSent: 1},
				{at: 2 * time.Hour, before: bob, want: []string{"bob@example.edu"}, wantSent: 1, wantSkipped: 1},
				// A new period, but Bob was mailed only 22 hours ago.
				{at: sjDay, want: []string{"ada@example.edu"}, wantSent: 1, wantSkipped: 1},
				{at: sjDay + 30*time.Minute, wantSkipped: 2}, // 22h30m: less than the interval less its slack (1h)
				{at: sjDay + 2*time.Hour, want: []string{"bob@example.edu"}, wantSent: 1, wantSkipped: 1},
				{at: 2 * sjDay, want: []string{"ada@example.edu"}, wantSent: 1, wantSkipped: 1},
			},
		},
		{
			name:  "the rows included are stamped in one batch",
			setup: both,
			steps: []sjStep{{
				at: 0, want: []string{"ada@example.edu", "bob@example.edu"}, wantSent: 1,
				after: func(t *testing.T, e *sjEnv, res reminder.Result) {
					stamped("ada@example.edu", sjBase)(t, e, res)
					stamped("bob@example.edu", sjBase)(t, e, res)
					if len(e.sheet.batches) != 1 || len(e.sheet.batches[0]) != 2 {
						t.Errorf("write batches = %v, want one batch of two writes", e.sheet.batches)
					}
				},
			}, {
				at: sjDay, want: []string{"bob@example.edu", "ada@example.edu"}, wantSent: 1, // in the sheet's order
				before: func(e *sjEnv) { e.sheet.moveToTop("bob@example.edu") }, // rows moved
				after:  stamped("ada@example.edu", sjBase.Add(sjDay)),
			}},
		},
		{
			name:  "stamps are written in the sheet's location",
			setup: ada,
			deps:  func(d *reminder.SheetJobDeps) { d.Location = time.FixedZone("X", -4*3600) },
			steps: []sjStep{{at: 0, want: []string{"ada@example.edu"}, wantSent: 1,
				after: func(t *testing.T, e *sjEnv, _ reminder.Result) {
					if got := e.sheet.get("ada@example.edu", "Reminder Sent"); got != "2026-03-10T05:00:00-04:00" {
						t.Errorf("Reminder Sent = %q", got)
					}
				}}},
		},
		{
			name: "timestamps without a zone are read in the sheet's location",
			setup: func(e *sjEnv) {
				r := sjRow("Ada", "ada@example.edu", "", 0)
				r["Timestamp"] = "3/9/2026 08:00:00" // 12:00 UTC in New York (EDT)
				e.sheet.add(r)
			},
			deps: func(d *reminder.SheetJobDeps) {
				loc, err := time.LoadLocation("America/New_York")
				if err != nil {
					panic(err)
				}
				d.Location = loc
			},
			steps: []sjStep{
				{at: 2*time.Hour + 59*time.Minute, wantSkipped: 1}, // 11:59 UTC
				{at: 3 * time.Hour, want: []string{"ada@example.edu"}, wantSent: 1},
			},
		},
		{
			name: "RFC 3339 and ISO timestamps; unreadable ones are included",
			setup: func(e *sjEnv) {
				for _, r := range []struct{ first, ts string }{
					{"Rfc", sjBase.Add(-sjDay).Format(time.RFC3339)},
					{"Iso", sjBase.Add(-sjDay).Format("2006-01-02 15:04:05")},
					{"Young", sjBase.Add(-time.Hour).Format(time.RFC3339)},
					{"Bad", "yesterday-ish"},
				} {
					row := sjRow(r.first, strings.ToLower(r.first)+"@example.edu", "", 0)
					row["Timestamp"] = r.ts
					e.sheet.add(row)
				}
			},
			steps: []sjStep{{at: 0, want: []string{"rfc@example.edu", "iso@example.edu", "bad@example.edu"}, wantSent: 1, wantSkipped: 1}},
		},
		{
			name:  "dry run reports and changes nothing",
			setup: both,
			steps: []sjStep{
				{at: 0, dry: true, wantSent: 1, after: func(t *testing.T, e *sjEnv, res reminder.Result) {
					text := strings.Join(res.Lines, "\n")
					for _, s := range []string{"would include", "ada@example.edu", "bob@example.edu", "would queue", "approvers@example.org"} {
						if !strings.Contains(text, s) {
							t.Errorf("dry-run lines lack %q:\n%s", s, text)
						}
					}
					if len(e.sheet.batches) != 0 || e.sheet.get("ada@example.edu", "Reminder Sent") != "" {
						t.Errorf("dry run stamped the sheet: %v", e.sheet.batches)
					}
					if len(e.mailer.calls) != 0 {
						t.Errorf("dry run queued %d mails", len(e.mailer.calls))
					}
				}},
				{at: 0, want: []string{"ada@example.edu", "bob@example.edu"}, wantSent: 1},
				{at: time.Hour, dry: true, wantSkipped: 2},
			},
		},
		{
			name:  "a failing queue forgets the keys and the next run sends",
			setup: both,
			steps: []sjStep{
				{at: 0, before: func(e *sjEnv) { e.mailer.setFail(errors.New("store unreachable"), nil) }, wantErr: "store unreachable",
					after: func(t *testing.T, e *sjEnv, _ reminder.Result) {
						if len(e.sheet.batches) != 0 {
							t.Errorf("rows stamped though nothing was queued")
						}
					}},
				{at: time.Hour, before: func(e *sjEnv) { e.mailer.setFail(nil, nil) },
					want: []string{"ada@example.edu", "bob@example.edu"}, wantSent: 1, after: stamped("ada@example.edu", sjBase.Add(time.Hour))},
				{at: 2 * time.Hour, wantSkipped: 2},
			},
		},
		{
			name:  "a queue error after the mail was stored sends no second digest",
			setup: both,
			steps: []sjStep{
				{at: 0, before: func(e *sjEnv) { e.mailer.setFail(nil, errors.New("connection reset")) }, wantErr: "connection reset",
					want: []string{"ada@example.edu", "bob@example.edu"}},
				{at: time.Hour, before: func(e *sjEnv) { e.mailer.setFail(nil, nil) },
					after: func(t *testing.T, e *sjEnv, res reminder.Result) {
						if !strings.Contains(strings.Join(res.Lines, "\n"), "already queued") {
							t.Errorf("lines = %q, want the digest reported as already queued", res.Lines)
						}
						if len(e.mailer.calls) != 2 || e.mailer.calls[0].key != e.mailer.calls[1].key {
							t.Errorf("calls = %+v, want two under one key", e.mailer.calls)
						}
						stamped("bob@example.edu", sjBase.Add(time.Hour))(t, e, res)
					}},
				{at: 2 * time.Hour, wantSkipped: 2},
			},
		},
		{
			name:  "a restarted job does not repeat the digest within the interval",
			setup: both,
			steps: []sjStep{
				{at: 0, want: []string{"ada@example.edu", "bob@example.edu"}, wantSent: 1},
				{at: time.Hour, restart: true, wantSkipped: 2},
				{at: sjDay, restart: true, want: []string{"ada@example.edu", "bob@example.edu"}, wantSent: 1},
			},
		},
		{
			name:   "missing stamp column: sent all the same, nothing stamped",
			header: []string{"Timestamp", "Email", "First Name", "Last Name", "Project Name", "Approved", "Status"},
			setup: func(e *sjEnv) {
				r := sjRow("Ada", "ada@example.edu", "", 2*sjDay)
				delete(r, "Comment")
				e.sheet.add(r)
			},
			steps: []sjStep{
				{at: 0, want: []string{"ada@example.edu"}, wantSent: 1, after: func(t *testing.T, e *sjEnv, res reminder.Result) {
					if len(e.sheet.batches) != 0 {
						t.Errorf("WriteBatch called: %v", e.sheet.batches)
					}
					if !strings.Contains(strings.Join(res.Lines, "\n"), `no "Reminder Sent" column`) {
						t.Errorf("lines = %q, want the missing column reported", res.Lines)
					}
				}},
				{at: time.Hour, wantSkipped: 1},
			},
		},
		{
			name:  "a failing stamp write does not fail the run",
			setup: ada,
			steps: []sjStep{
				{at: 0, before: func(e *sjEnv) { e.sheet.writeErr = errors.New("quota exceeded") },
					want: []string{"ada@example.edu"}, wantSent: 1},
				{at: time.Hour, wantSkipped: 1},
			},
		},
		{
			name:  "an unreadable sheet fails the run",
			setup: func(e *sjEnv) { ada(e); e.sheet.readErr = errors.New("503 backend error") },
			steps: []sjStep{{at: 0, wantErr: "503 backend error"}},
		},
		{
			name:   "a sheet without the Approved column fails the run",
			header: []string{"Timestamp", "Email", "First Name"},
			steps:  []sjStep{{at: 0, wantErr: `"Approved"`}},
		},
		{
			name: "custom column headers and approved values",
			header: []string{"Submitted", "E-mail address", "First Name", "Last Name", "Project Name", "Comment",
				"OK?", "Status", "Digest Sent"},
			setup: func(e *sjEnv) {
				e.sheet.tsCol, e.sheet.emailCol = "Submitted", "E-mail address"
				e.sheet.add(map[string]string{"Submitted": sjBase.Add(-2 * sjDay).Format(time.RFC3339), "E-mail address": "ada@example.edu", "First Name": "Ada"})
				e.sheet.add(map[string]string{"Submitted": sjBase.Add(-2 * sjDay).Format(time.RFC3339), "E-mail address": "bob@example.edu", "First Name": "Bob", "OK?": "granted"})
			},
			job: func(j *config.Job) { j.Column = "digest sent" },
			deps: func(d *reminder.SheetJobDeps) {
				d.Columns = config.SheetColumns{Timestamp: "Submitted", Email: "E-mail Address", Approved: "OK?"}
				d.ApprovedValues = []string{"Granted"}
			},
			steps: []sjStep{{at: 0, want: []string{"ada@example.edu"}, wantSent: 1, after: func(t *testing.T, e *sjEnv, _ reminder.Result) {
				if e.sheet.get("ada@example.edu", "Digest Sent") == "" {
					t.Errorf("Digest Sent not stamped")
				}
			}}},
		},
	}
	runSJCases(t, tests, sjDigestJob, reminder.NewApproverDigest)
}

func TestApproverDigestMail(t *testing.T) {
	e := newSJEnv(t, newSJSheet(), sjDigestJob(), reminder.NewApproverDigest)
	e.sheet.add(sjRow("Ada", "ada@example.edu", "", 2*sjDay))
	e.sheet.add(sjRow("Bob", "bob@example.edu", "yes", 2*sjDay))
	e.play([]sjStep{{at: 0, want: []string{"ada@example.edu"}, wantSent: 1}})
	c := e.mailer.created()[0]
	if c.kind != mail.KindApproverDigest || !slices.Equal(c.to, []string{"approvers@example.org"}) {
		t.Errorf("queued %s to %v", c.kind, c.to)
	}
	if !strings.HasPrefix(c.key, reminder.LedgerKey("digest", "digest", "")) {
		t.Errorf("outbox key %q", c.key)
	}
	d := c.data.(mail.ApproverDigestData)
	want := mail.PendingRequest{Name: "Ada Tester", Email: "ada@example.edu", Project: "Ada-project", Comment: "Comment of Ada",
		SubmittedAt: sjBase.Add(-2 * sjDay)}
	if len(d.Requests) != 1 || d.Requests[0] != want || d.SheetURL != sjSheetURL {
		t.Errorf("data = %+v, want one request %+v and the sheet link", d, want)
	}
	for _, s := range []string{"Ada Tester", "ada@example.edu", "Ada-project", "Comment of Ada", sjSheetURL} {
		if !strings.Contains(c.rendered.Text, s) || !strings.Contains(c.rendered.HTML, s) {
			t.Errorf("rendered digest lacks %q:\n%s", s, c.rendered.Text)
		}
	}
	if !strings.Contains(c.rendered.Subject, "1 sign-up request waiting") {
		t.Errorf("subject %q", c.rendered.Subject)
	}
}

func TestApproverDigestConfig(t *testing.T) {
	sh := newSJSheet()
	st := sjOpenStore(t)
	deps := reminder.SheetJobDeps{Sheet: sh, Ledger: st, Mail: &sjMailer{}}
	tests := []sjConfigCase{
		{name: "valid"},
		{name: "no recipients", job: func(j *config.Job) { j.To = nil }, wantErr: `job "digest": approver-digest needs "to"`},
		{name: "bad recipient", job: func(j *config.Job) { j.To = []string{"not an address"} }, wantErr: `job "digest": to[0]`},
		{name: "all approved", deps: func(d *reminder.SheetJobDeps) { d.AllApproved = true }, wantErr: "all_approved"},
		{name: "no ledger", deps: func(d *reminder.SheetJobDeps) { d.Ledger = nil }, wantErr: `job "digest": no ledger`},
		{name: "negative interval", job: func(j *config.Job) { j.Interval = config.Dur(-time.Hour) }, wantErr: "negative"},
	}
	runSJConfigCases(t, tests, sjDigestJob, deps, reminder.NewApproverDigest)
}

func TestSheetJobDepsFromConfig(t *testing.T) {
	cfg := config.Defaults()
	cfg.Sheet.SpreadsheetID = "1AbC"
	cfg.Reminders.Timezone = "Europe/Berlin"
	d, err := reminder.SheetJobDepsFromConfig(&cfg, newSJSheet(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d.SheetURL != sjSheetURL || d.Location.String() != "Europe/Berlin" || d.Helpdesk != cfg.Mail.Helpdesk ||
		!slices.Equal(d.ApprovedValues, cfg.Sheet.ApprovedValues) {
		t.Errorf("deps = %+v", d)
	}
	if reminder.SpreadsheetURL("") != "" {
		t.Errorf("a sheet without id has a link")
	}
}
