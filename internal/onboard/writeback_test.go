package onboard_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kaizen-onboard/kaizen/internal/onboard"
	"github.com/kaizen-onboard/kaizen/internal/sheet"
	"github.com/kaizen-onboard/kaizen/internal/signup"
	"github.com/kaizen-onboard/kaizen/internal/testenv/sheetsfake"
)

// quotaClock drives the fake's quota minutes; the sheet client's sleeps
// advance it, so backing off a whole minute takes no real time.
type quotaClock struct {
	mu  sync.Mutex
	now time.Time
	// onSleep, when set, runs in each sleep (a person editing the sheet
	// while the client backs off).
	onSleep func()
}

func (c *quotaClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *quotaClock) Sleep(_ context.Context, d time.Duration) error {
	c.mu.Lock()
	c.now = c.now.Add(d)
	fn := c.onSleep
	c.mu.Unlock()
	if fn != nil {
		fn()
	}
	return nil
}

// useSheet replaces the env's sheet client with one retrying as p says.
func (e *env) useSheet(p sheet.RetryPolicy) {
	e.t.Helper()
	g, err := sheet.NewGoogle(e.t.Context(), sheet.Options{
		SpreadsheetID: book, Worksheet: worksheet, Retry: p,
		CredentialsJSON: e.sheets.ServiceAccountJSON(), Endpoint: e.sheets.Endpoint(),
	})
	if err != nil {
		e.t.Fatalf("NewGoogle: %v", err)
	}
	e.sheet = g
}

// cellWrites counts the fake's writes per email and header: which row a
// cell went to, told by the identity of the row it landed in.
func (e *env) cellWrites() map[string]map[string]int {
	e.t.Helper()
	emailCol := slices.Index(header, cols.Email)
	out := map[string]map[string]int{}
	for _, cw := range e.sheets.CellWrites(book) {
		who := ""
		if emailCol < len(cw.RowCells) {
			who = cw.RowCells[emailCol]
		}
		if out[who] == nil {
			out[who] = map[string]int{}
		}
		out[who][header[cw.Col-1]]++
	}
	return out
}

func manyRows(n int) []formRow {
	rows := make([]formRow, n)
	for i := range rows {
		rows[i] = row(fmt.Sprintf("u%03d@example.org", i), fmt.Sprintf("proj-%03d", i),
			cols.Timestamp, fmt.Sprintf("3/14/2026 14:%02d:%02d", i/60, i%60))
	}
	return rows
}

// TestWriteBackUnderQuota: Google's 60 reads and 60 writes a minute per
// user; a 100-row import ends with every outcome written back exactly once.
func TestWriteBackUnderQuota(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const n = 100
	e.write(manyRows(n)...)
	clock := &quotaClock{now: time.Date(2026, 3, 14, 15, 0, 0, 0, time.UTC)}
	e.sheets.SetQuota(sheetsfake.Quota{ReadsPerMinute: 60, WritesPerMinute: 60, Now: clock.Now})
	e.useSheet(sheet.RetryPolicy{Sleep: clock.Sleep}) // the defaults otherwise: 2m budget

	sum := e.mustRun()
	if e.sheets.QuotaRefusals() == 0 {
		t.Fatal("the quota never refused a request; the test proves nothing")
	}
	if len(sum.NotWritten) != 0 || sum.Counts[string(onboard.Created)] != n {
		t.Fatalf("summary: %d not written %+v, counts %v", len(sum.NotWritten), sum.NotWritten, sum.Counts)
	}
	writes := e.cellWrites()
	for i := range n {
		email := fmt.Sprintf("u%03d@example.org", i)
		if got := e.cell(i+2, cols.Status); got != signup.StatusDone {
			t.Errorf("row %d Status = %q", i+2, got)
		}
		if got := e.cell(i+2, cols.PIN); got != signup.PINRegistered {
			t.Errorf("row %d PIN = %q", i+2, got)
		}
		for _, h := range []string{cols.Status, cols.ProcessedAt, cols.UserID, cols.ProjectID, cols.PIN} {
			if c := writes[email][h]; c != 1 {
				t.Errorf("%s %s written %d times, want once", email, h, c)
			}
		}
	}
}

// TestWriteBackPending: outcomes that cannot be written (the write quota
// stays spent past the wait budget) are reported by row and email, the run
// fails, and the next run writes them first without touching the cloud.
func TestWriteBackPending(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const n = 6
	e.write(manyRows(n)...)
	clock := &quotaClock{now: time.Date(2026, 3, 14, 15, 0, 0, 0, time.UTC)}
	// The clock never moves: once the minute's three writes are spent (one
	// batch: anchor, write, drop the anchors), every write is refused
	// until the 3s budget is gone.
	e.sheets.SetQuota(sheetsfake.Quota{WritesPerMinute: 3, Now: clock.Now})
	e.useSheet(sheet.RetryPolicy{MaxWait: 3 * time.Second, Sleep: func(context.Context, time.Duration) error { return nil }})

	first, err := e.run(func(o *onboard.Options) { o.FlushEvery = time.Millisecond; o.FlushRows = 1; o.Workers = 1 })
	if !errors.Is(err, onboard.ErrSomeFailed) {
		t.Fatalf("first run: %v, want ErrSomeFailed for the unwritten rows", err)
	}
	if len(first.NotWritten) == 0 || len(first.NotWritten) == n {
		t.Fatalf("not written: %+v; want some rows written, the others not", first.NotWritten)
	}
	unwritten := map[int]string{}
	for _, u := range first.NotWritten {
		unwritten[u.Row] = u.Email
		if !strings.Contains(u.Reason, "429") && !strings.Contains(strings.ToLower(u.Reason), "quota") {
			t.Errorf("row %d: reason %q does not say why", u.Row, u.Reason)
		}
	}
	for i := range n {
		email, status := fmt.Sprintf("u%03d@example.org", i), e.cell(i+2, cols.Status)
		if got, ok := unwritten[i+2]; ok {
			if got != email || status != "" {
				t.Errorf("row %d: reported as %q, Status %q; want %s, nothing written", i+2, got, status, email)
			}
		} else if status != signup.StatusDone {
			t.Errorf("row %d: not reported, but Status = %q", i+2, status)
		}
		if r := result(t, first, i+2); r.Outcome != onboard.Created {
			t.Errorf("row %d: %+v, want created", i+2, r)
		}
	}
	pending, err := e.store.PendingWriteBacks(t.Context(), e.opts.Source)
	if err != nil || len(pending) != len(unwritten) {
		t.Fatalf("store has %d pending write-backs (%v), want %d", len(pending), err, len(unwritten))
	}

	// The quota is back. The next run writes the recorded outcomes first
	// and does nothing in the cloud for them.
	e.sheets.SetQuota(sheetsfake.Quota{})
	e.counter.reset()
	queued := len(e.queued())
	second := e.mustRun()
	if second.WrittenBack != len(unwritten) {
		t.Errorf("second run wrote %d recorded outcomes back, want %d", second.WrittenBack, len(unwritten))
	}
	if w := e.cloudWrites(); len(w) != 0 {
		t.Errorf("second run wrote to the cloud: %v", w)
	}
	if len(e.queued()) != queued {
		t.Errorf("second run queued mail")
	}
	writes := e.cellWrites()
	for i := range n {
		email := fmt.Sprintf("u%03d@example.org", i)
		if got := e.cell(i+2, cols.Status); got != signup.StatusDone {
			t.Errorf("row %d Status = %q after the second run", i+2, got)
		}
		if r := result(t, second, i+2); r.Outcome != onboard.Unchanged {
			t.Errorf("second run, row %d: %+v", i+2, r)
		}
		if c := writes[email][cols.Status]; c != 1 {
			t.Errorf("%s Status written %d times, want once", email, c)
		}
		if got := len(e.mailsTo(email, subjWelcome)); got != 1 {
			t.Errorf("%s got %d welcome mails", email, got)
		}
	}
	if pending, _ := e.store.PendingWriteBacks(t.Context(), e.opts.Source); len(pending) != 0 {
		t.Errorf("still pending: %+v", pending)
	}
}

// TestWriteBackMovedRows: approvers insert and sort rows while outcomes are
// written; every row ends with its own outcome, and a typed cell that is
// lost is reported by row, mailed to the helpdesk and audited.
func TestWriteBackMovedRows(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// A sign-up not yet approved, typed by a person (it has a PIN).
	waiting := row("zed@example.org", "zproj", cols.Timestamp, "3/20/2026 10:00:00", cols.PIN, "7777", cols.Approved, "")
	waitingCells := func() []string {
		cells := make([]string, len(header))
		for i, h := range header {
			cells[i] = waiting[h]
		}
		return cells
	}()
	const n = 5
	// hookOnce runs fn before the first request of op.
	hookOnce := func(e *env, op string, fn func()) {
		var once sync.Once
		e.sheets.SetHook(func(got string) {
			if got == op {
				once.Do(fn)
			}
		})
	}
	const (
		anchoring = "spreadsheets.batchUpdate"       // right after the write-back's re-read
		writing   = "values.batchUpdateByDataFilter" // after the anchored rows were checked
	)
	insert := func(e *env) { e.sheets.InsertRow(book, worksheet, 2, waitingCells) }
	tests := []struct {
		name string
		// arrange sets up the mutation (hooks).
		arrange  func(e *env, clock *quotaClock)
		inserted bool // the waiting row is typed in during the run
		lost     bool // the waiting row's PIN cannot be known
	}{
		{name: "row inserted above between the re-read and the anchoring", inserted: true,
			arrange: func(e *env, _ *quotaClock) { hookOnce(e, anchoring, func() { insert(e) }) }},
		{name: "row inserted above between the check and the write", inserted: true,
			arrange: func(e *env, _ *quotaClock) { hookOnce(e, writing, func() { insert(e) }) }},
		{name: "row inserted above during a 429 backoff", inserted: true,
			arrange: func(e *env, clock *quotaClock) {
				hookOnce(e, writing, func() { e.sheets.FailNext(1, 429) })
				var ins sync.Once
				clock.onSleep = func() { ins.Do(func() { insert(e) }) }
			}},
		{name: "whole sheet sorted at the write",
			arrange: func(e *env, _ *quotaClock) {
				hookOnce(e, writing, func() { e.sheets.SortRows(book, worksheet, slices.Index(header, cols.Email), true) })
			}},
		{name: "row typed in and the sheet sorted at the write", inserted: true, lost: true,
			arrange: func(e *env, _ *quotaClock) {
				hookOnce(e, writing, func() {
					e.sheets.InsertRow(book, worksheet, n+2, waitingCells)                     // typed in under the rows
					e.sheets.SortRows(book, worksheet, slices.Index(header, cols.Email), true) // zed@ first
				})
			}},
	}
	for ti, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := e.in(t)
			e.sheets = sheetsfake.New(t)
			e.sheets.AddSpreadsheet(book, "Sign-ups")
			rows := manyRows(n)
			for i := range rows {
				rows[i][cols.Email] = fmt.Sprintf("t%d-%03d@example.org", ti, i)
				rows[i][cols.ProjectName] = fmt.Sprintf("t%d-%03d", ti, i)
			}
			if !tt.inserted {
				rows = append(rows, waiting)
			}
			e.write(rows...)
			clock := &quotaClock{now: time.Date(2026, 3, 14, 15, 0, 0, 0, time.UTC)}
			e.useSheet(sheet.RetryPolicy{Sleep: clock.Sleep})
			tt.arrange(e, clock)
			mails := len(e.mailsTo("helpdesk@example.org", "overwritten"))

			sum, err := e.run(func(o *onboard.Options) {
				o.FlushEvery, o.FlushRows = time.Hour, n // one batch of every outcome
				o.Helpdesk = "helpdesk@example.org"
			})
			e.sheets.SetHook(nil)
			if tt.lost != errors.Is(err, onboard.ErrSomeFailed) || (!tt.lost && err != nil) {
				t.Fatalf("Run: %v (lost %v); summary %+v", err, tt.lost, sum.Overwritten)
			}
			// Every row by its email: its own outcome.
			grid := e.sheets.Rows(book, worksheet)
			byEmail := map[string][]string{}
			emailCol := slices.Index(header, cols.Email)
			for _, r := range grid[1:] {
				for len(r) < len(header) {
					r = append(r, "")
				}
				byEmail[r[emailCol]] = r
			}
			at := func(r []string, h string) string { return r[slices.Index(header, h)] }
			for _, q := range rows[:n] {
				r := byEmail[q[cols.Email]]
				u := e.user(q[cols.Email])
				if at(r, cols.Status) != signup.StatusDone || at(r, cols.UserID) != u.ID || at(r, cols.PIN) != signup.PINRegistered {
					t.Errorf("row of %s = %q, want its own outcome (user %s)", q[cols.Email], r, u.ID)
				}
			}
			z := byEmail[waiting[cols.Email]]
			if at(z, cols.Status) != "" || at(z, cols.UserID) != "" {
				t.Errorf("the waiting row kept another's outcome: %q", z)
			}
			var reported []onboard.Overwrite
			for _, o := range sum.Overwritten {
				if strings.EqualFold(o.Email, waiting[cols.Email]) && !o.Restored {
					reported = append(reported, o)
				}
			}
			if !tt.lost {
				if at(z, cols.PIN) != "7777" {
					t.Errorf("the waiting row's PIN = %q, want 7777 kept", at(z, cols.PIN))
				}
				if len(reported) != 0 {
					t.Errorf("reported lost: %+v", reported)
				}
				return
			}
			if len(reported) != 1 || !slices.Contains(reported[0].Columns, cols.PIN) || reported[0].Row != 2 {
				t.Fatalf("overwritten = %+v, want the waiting row 2 reported with its PIN lost", sum.Overwritten)
			}
			if got := len(e.mailsTo("helpdesk@example.org", "overwritten")); got != mails+1 {
				t.Errorf("%d helpdesk mails about it, want 1", got-mails)
			}
			found := false
			for _, ev := range e.events() {
				if ev.Action == "sheet.overwrite" && ev.Details["email"] == waiting[cols.Email] && ev.Details["restored"] == "false" {
					found = true
				}
			}
			if !found {
				t.Error("no sheet.overwrite audit event for the waiting row")
			}
		})
	}
}
