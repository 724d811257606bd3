package reminder_test

import (
	"errors"
	"os"
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
)

func sjNotifyJob() config.Job {
	return config.Job{Name: "notify", Kind: "helpdesk-notify", Schedule: "@every 10m"}
}

// sjNoStampHeader lacks the stamp columns, so only the ledger keeps rows
// from being announced twice.
var sjNoStampHeader = []string{"Timestamp", "Email", "First Name", "Last Name", "Project Name", "Comment", "Approved", "Status"}

func TestHelpdeskNotify(t *testing.T) {
	ada := func(e *sjEnv) { e.sheet.add(sjRow("Ada", "ada@example.edu", "approved", time.Hour)) }
	bob := func(e *sjEnv) { e.sheet.add(sjRow("Bob", "bob@example.edu", "", time.Hour)) }
	tests := []sjCase{
		{
			name:  "each approved row is announced once across runs",
			setup: func(e *sjEnv) { ada(e); bob(e) },
			steps: []sjStep{
				{at: 0, want: []string{"ada@example.edu"}, wantSent: 1},
				{at: 10 * time.Minute},
				{at: 20 * time.Minute, before: func(e *sjEnv) { e.sheet.set("bob@example.edu", "Approved", "Yes") },
					want: []string{"bob@example.edu"}, wantSent: 1},
				{at: 30 * time.Minute},
				{at: 30 * sjDay},
			},
		},
		{
			name:   "the ledger alone keeps rows from being announced twice, across restarts",
			header: sjNoStampHeader,
			setup:  func(e *sjEnv) { ada(e); bob(e) },
			steps: []sjStep{
				{at: 0, want: []string{"ada@example.edu"}, wantSent: 1},
				{at: 10 * time.Minute, wantSkipped: 1},
				{at: 20 * time.Minute, restart: true, wantSkipped: 1},
				{at: 30 * time.Minute, restart: true, before: func(e *sjEnv) { e.sheet.set("bob@example.edu", "Approved", "true") },
					want: []string{"bob@example.edu"}, wantSent: 1, wantSkipped: 1},
				{at: 40 * sjDay, restart: true, wantSkipped: 2},
			},
		},
		{
			name:  "rows approved together go into one notice",
			setup: func(e *sjEnv) { ada(e); bob(e); e.sheet.set("bob@example.edu", "Approved", "approved") },
			steps: []sjStep{{at: 0, want: []string{"ada@example.edu", "bob@example.edu"}, wantSent: 1,
				after: func(t *testing.T, e *sjEnv, _ reminder.Result) {
					d := e.mailer.created()[0].data.(mail.HelpdeskNotifyData)
					if d.Summary != "2 new approved sign-ups" {
						t.Errorf("Summary = %q", d.Summary)
					}
				}}},
		},
		{
			name: "done, pending, declined and already stamped rows are not announced",
			setup: func(e *sjEnv) {
				ada(e)
				bob(e)
				e.sheet.add(sjRow("Cy", "cy@example.edu", "no", time.Hour))
				e.sheet.add(sjRow("Di", "di@example.edu", "yes", time.Hour))
				e.sheet.set("di@example.edu", "Status", "Done")
				e.sheet.add(sjRow("Ed", "ed@example.edu", "yes", time.Hour))
				e.sheet.set("ed@example.edu", "Helpdesk Notified", "by hand")
				e.sheet.add(sjRow("Flo", "flo@example.edu", "yes", time.Hour))
				e.sheet.set("flo@example.edu", "Status", "error: quota preset unknown")
			},
			steps: []sjStep{{at: 0, want: []string{"ada@example.edu", "flo@example.edu"}, wantSent: 1}},
		},
		{
			name:  "announced rows are stamped",
			setup: func(e *sjEnv) { ada(e); bob(e) },
			steps: []sjStep{{at: 0, want: []string{"ada@example.edu"}, wantSent: 1,
				after: func(t *testing.T, e *sjEnv, _ reminder.Result) {
					if got := e.sheet.get("ada@example.edu", "Helpdesk Notified"); got != sjBase.Format(time.RFC3339) {
						t.Errorf("Helpdesk Notified = %q", got)
					}
					if got := e.sheet.get("bob@example.edu", "Helpdesk Notified"); got != "" {
						t.Errorf("pending row stamped: %q", got)
					}
					if got := e.sheet.get("ada@example.edu", "Reminder Sent"); got != "" {
						t.Errorf("digest column stamped: %q", got)
					}
				}}},
		},
		{
			name:   "missing stamp column: still announced, nothing stamped",
			header: sjNoStampHeader,
			setup:  ada,
			steps: []sjStep{{at: 0, want: []string{"ada@example.edu"}, wantSent: 1,
				after: func(t *testing.T, e *sjEnv, res reminder.Result) {
					if len(e.sheet.batches) != 0 {
						t.Errorf("WriteBatch called: %v", e.sheet.batches)
					}
					if !strings.Contains(strings.Join(res.Lines, "\n"), `no "Helpdesk Notified" column`) {
						t.Errorf("lines = %q", res.Lines)
					}
				}}},
		},
		{
			name:   "a failing queue forgets the keys and the next run announces",
			header: sjNoStampHeader,
			setup:  ada,
			steps: []sjStep{
				{at: 0, before: func(e *sjEnv) { e.mailer.setFail(errors.New("database is locked"), nil) }, wantErr: "database is locked"},
				{at: 10 * time.Minute, before: func(e *sjEnv) { e.mailer.setFail(nil, nil) }, want: []string{"ada@example.edu"}, wantSent: 1},
				{at: 20 * time.Minute, wantSkipped: 1},
			},
		},
		{
			name:  "dry run reports and changes nothing",
			setup: ada,
			steps: []sjStep{
				{at: 0, dry: true, wantSent: 1, after: func(t *testing.T, e *sjEnv, res reminder.Result) {
					if len(e.mailer.calls) != 0 || len(e.sheet.batches) != 0 {
						t.Errorf("dry run queued %d mails, wrote %d batches", len(e.mailer.calls), len(e.sheet.batches))
					}
					if text := strings.Join(res.Lines, "\n"); !strings.Contains(text, "would queue the helpdesk notice of 1 row(s) to helpdesk@example.org") {
						t.Errorf("lines = %q", res.Lines)
					}
				}},
				{at: time.Minute, want: []string{"ada@example.edu"}, wantSent: 1},
			},
		},
		{
			name:   "all approved: every row is announced, no Approved column needed",
			header: []string{"Timestamp", "Email", "First Name", "Last Name", "Project Name", "Status", "Helpdesk Notified"},
			setup: func(e *sjEnv) {
				for _, who := range []string{"ada", "bob"} {
					r := sjRow(who, who+"@example.edu", "", time.Hour)
					delete(r, "Comment")
					delete(r, "Approved")
					e.sheet.add(r)
				}
			},
			deps: func(d *reminder.SheetJobDeps) { d.AllApproved = true },
			steps: []sjStep{
				{at: 0, want: []string{"ada@example.edu", "bob@example.edu"}, wantSent: 1},
				{at: time.Hour},
			},
		},
		{
			name:   "a row whose identity changed is a new row",
			header: sjNoStampHeader,
			setup:  ada,
			steps: []sjStep{
				{at: 0, want: []string{"ada@example.edu"}, wantSent: 1},
				// Same identity written differently: still the same row.
				{at: time.Minute, before: func(e *sjEnv) { e.sheet.set("ada@example.edu", "Email", " ADA@example.edu ") }, wantSkipped: 1},
				{at: 2 * time.Minute, before: func(e *sjEnv) { e.sheet.set(" ADA@example.edu ", "Email", "ada@example.org") },
					want: []string{"ada@example.org"}, wantSent: 1},
			},
		},
	}
	runSJCases(t, tests, sjNotifyJob, reminder.NewHelpdeskNotify)
}

func TestHelpdeskNotifyMail(t *testing.T) {
	tests := []struct {
		name   string
		to     []string
		wantTo []string
	}{
		{name: "to the helpdesk by default", wantTo: []string{"helpdesk@example.org"}},
		{name: "to the job's addresses", to: []string{"Tickets <tickets@example.org>", "ops@example.org"}, wantTo: []string{"tickets@example.org", "ops@example.org"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := sjNotifyJob()
			j.To = tt.to
			e := newSJEnv(t, newSJSheet(), j, reminder.NewHelpdeskNotify)
			e.sheet.add(sjRow("Ada", "ada@example.edu", "approved", time.Hour))
			e.play([]sjStep{{at: 0, want: []string{"ada@example.edu"}, wantSent: 1}})
			c := e.mailer.created()[0]
			if c.kind != mail.KindHelpdeskNotify || !slices.Equal(c.to, tt.wantTo) {
				t.Errorf("queued %s to %v, want %s to %v", c.kind, c.to, mail.KindHelpdeskNotify, tt.wantTo)
			}
			d := c.data.(mail.HelpdeskNotifyData)
			if want := "New approved sign-up: Ada Tester <ada@example.edu> (Ada-project)"; d.Summary != want {
				t.Errorf("Summary = %q, want %q", d.Summary, want)
			}
			if d.SheetURL != sjSheetURL || len(d.Items) != 1 || d.Items[0] != (mail.HelpdeskItem{Name: "Ada Tester", Email: "ada@example.edu", Project: "Ada-project"}) {
				t.Errorf("data = %+v", d)
			}
			if !strings.Contains(c.rendered.Subject, "New approved sign-up: Ada Tester") || !strings.Contains(c.rendered.Text, sjSheetURL) {
				t.Errorf("rendered:\n%s\n%s", c.rendered.Subject, c.rendered.Text)
			}
		})
	}
}

// Two replicas (two job instances on one store) running at once announce
// each row exactly once between them.
func TestHelpdeskNotifyConcurrentInstances(t *testing.T) {
	e := newSJEnv(t, newSJSheet(sjNoStampHeader...), sjNotifyJob(), reminder.NewHelpdeskNotify)
	var emails []string
	for _, who := range []string{"a", "b", "c", "d", "e", "f"} {
		e.sheet.add(sjRow(who, who+"@example.edu", "yes", time.Hour))
		emails = append(emails, who+"@example.edu")
	}
	jobs := make([]reminder.Job, 2)
	for i := range jobs {
		j, err := reminder.NewHelpdeskNotify(e.job, e.deps)
		if err != nil {
			t.Fatal(err)
		}
		jobs[i] = j
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2*5)
	for i := range 5 {
		for _, j := range jobs {
			wg.Go(func() {
				_, err := j.Run(t.Context(), reminder.RunContext{Now: sjBase.Add(time.Duration(i) * time.Minute)})
				errs <- err
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("run: %v", err)
		}
	}
	var got []string
	for _, c := range e.mailer.created() {
		got = append(got, c.emails()...)
	}
	slices.Sort(got)
	if !slices.Equal(got, emails) {
		t.Errorf("rows announced %q, want each of %q once", got, emails)
	}
}

// The job works against the real CSV sheet: the row is stamped in the file.
func TestHelpdeskNotifyCSVSheet(t *testing.T) {
	path := filepath.Join(t.TempDir(), "signups.csv")
	csv := "Timestamp,Email,First Name,Last Name,Project Name,Approved,Status,Helpdesk Notified\r\n" +
		"3/9/2026 08:00:00,ada@example.edu,Ada,Lovelace,engine,yes,,\r\n" +
		"3/9/2026 08:05:00,bob@example.edu,Bob,Babbage,mill,,,\r\n"
	if err := os.WriteFile(path, []byte(csv), 0o600); err != nil {
		t.Fatal(err)
	}
	e := newSJEnv(t, newSJSheet(), sjNotifyJob(), reminder.NewHelpdeskNotify)
	e.deps.Sheet = sheet.NewCSV(path)
	e.play([]sjStep{
		{at: 0, want: []string{"ada@example.edu"}, wantSent: 1},
		{at: time.Hour},
	})
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := "3/9/2026 08:00:00,ada@example.edu,Ada,Lovelace,engine,yes,," + sjBase.Format(time.RFC3339) + "\r\n"; !strings.Contains(string(b), want) {
		t.Errorf("CSV after the run:\n%s\nwant a line %q", b, want)
	}
}

func TestHelpdeskNotifyConfig(t *testing.T) {
	st := sjOpenStore(t)
	deps := reminder.SheetJobDeps{Sheet: newSJSheet(), Ledger: st, Mail: &sjMailer{}, Helpdesk: "helpdesk@example.org"}
	tests := []sjConfigCase{
		{name: "helpdesk by default"},
		{name: "own recipients", job: func(j *config.Job) { j.To = []string{"tickets@example.org"} }, deps: func(d *reminder.SheetJobDeps) { d.Helpdesk = "" }},
		{name: "all approved is fine", deps: func(d *reminder.SheetJobDeps) { d.AllApproved = true }},
		{name: "no recipient at all", deps: func(d *reminder.SheetJobDeps) { d.Helpdesk = "" }, wantErr: `job "notify": helpdesk-notify needs "to" or mail.helpdesk`},
		{name: "no sheet", deps: func(d *reminder.SheetJobDeps) { d.Sheet = nil }, wantErr: `job "notify": no sheet`},
	}
	runSJConfigCases(t, tests, sjNotifyJob, deps, reminder.NewHelpdeskNotify)
}
