package sheet

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// wantResult is what one WriteResult should be: a row, or an error that
// wraps errIs (if set) and mentions text (if set).
type wantResult struct {
	row   int
	errIs error
	text  string
}

func checkResults(t *testing.T, got []WriteResult, want []wantResult) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d results, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		g := got[i]
		failing := w.errIs != nil || w.text != ""
		switch {
		case !failing && g.Err != nil:
			t.Errorf("result #%d: %v, want row %d", i, g.Err, w.row)
		case failing && g.Err == nil:
			t.Errorf("result #%d: wrote row %d, want an error", i, g.Row)
		case w.errIs != nil && !errors.Is(g.Err, w.errIs):
			t.Errorf("result #%d: error %v, want %v", i, g.Err, w.errIs)
		case w.text != "" && !strings.Contains(g.Err.Error(), w.text):
			t.Errorf("result #%d: error %v, want it to mention %q", i, g.Err, w.text)
		}
		if g.Row != w.row {
			t.Errorf("result #%d: Row = %d, want %d", i, g.Row, w.row)
		}
	}
}

var (
	aliceID = Identity{"2024-01-01 10:00", "alice@example.com"}
	bobID   = Identity{"2024-01-02 11:00", "BOB@example.com"}
	carolID = Identity{"2024-01-03 12:00", "carol@example.com"}
)

func TestGoogleWriteBatch(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		change [][]string // grid replacing the sheet before the batch
		writes []Write
		want   []wantResult
		// wantWrites is the number of values.batchUpdate calls (0 or 1).
		wantWrites int
		cells      map[string]string // A1 → text expected afterwards
	}{
		{
			name: "several rows: one read, one write",
			writes: []Write{
				{5, carolID, map[string]string{"Status": "done", "notes": "n3"}},
				{2, aliceID, map[string]string{"Status": "done"}},
				{3, bobID, map[string]string{"approved": "no", "STATUS": "failed"}},
			},
			want:       []wantResult{{row: 5}, {row: 2}, {row: 3}},
			wantWrites: 1,
			cells: map[string]string{"E5": "done", "F5": "n3", "E2": "done", "D2": "yes",
				"D3": "no", "E3": "failed", "F2": "", "B3": "bob@example.com"},
		},
		{
			name: "moved rows are followed",
			change: [][]string{signups[0],
				{"2024-02-01 09:00", "dave@example.com"},
				signups[4], signups[2], signups[1]},
			writes: []Write{
				{2, aliceID, map[string]string{"Status": "a"}},
				{3, bobID, map[string]string{"Status": "b"}},
			},
			want:       []wantResult{{row: 5}, {row: 4}},
			wantWrites: 1,
			cells:      map[string]string{"E5": "a", "E4": "b", "E2": "", "E3": "", "B5": "alice@example.com"},
		},
		{
			name:   "missing row reported, the others written",
			change: [][]string{signups[0], signups[2], signups[4]},
			writes: []Write{
				{2, aliceID, map[string]string{"Status": "a"}},
				{2, bobID, map[string]string{"Status": "b"}},
				{3, carolID, map[string]string{"Status": "c"}},
			},
			want:       []wantResult{{errIs: ErrRowNotFound, text: "row 2"}, {row: 2}, {row: 3}},
			wantWrites: 1,
			cells:      map[string]string{"E2": "b", "E3": "c", "B2": "bob@example.com"},
		},
		{
			name: "two writes locate the same row: neither written",
			writes: []Write{
				{2, aliceID, map[string]string{"Status": "first"}},
				{3, bobID, map[string]string{"Status": "b"}},
				{5, aliceID, map[string]string{"Notes": "second"}}, // row 5 is carol's: follows alice to 2
			},
			want: []wantResult{
				{errIs: ErrAmbiguousRow, text: "#0 (" + aliceID.String() + ") and write(s) #2"},
				{row: 3},
				{errIs: ErrAmbiguousRow, text: "#2 (" + aliceID.String() + ") and write(s) #0"},
			},
			wantWrites: 1,
			cells:      map[string]string{"E2": "", "F2": "", "E3": "b", "F5": "late"},
		},
		{
			name: "RAW: formulas and numbers stay text",
			writes: []Write{
				{2, aliceID, map[string]string{"Status": "=1+1", "Notes": "0012"}},
				{5, carolID, map[string]string{"Status": "'quoted", "Notes": "=A1"}},
			},
			want:       []wantResult{{row: 2}, {row: 5}},
			wantWrites: 1,
			cells:      map[string]string{"E2": "=1+1", "F2": "0012", "E5": "'quoted", "F5": "=A1"},
		},
		{
			name: "per-row problems do not stop the others",
			writes: []Write{
				{2, aliceID, map[string]string{"Status": "x", "Projekt": "p"}},
				{3, Identity{}, map[string]string{"Status": "x"}},
				{3, bobID, nil},
				{5, carolID, map[string]string{"Status": "c"}},
			},
			want: []wantResult{
				{text: `unknown column(s) "Projekt"`},
				{text: "identity"},
				{text: "no values"},
				{row: 5},
			},
			wantWrites: 1,
			cells:      map[string]string{"E2": "", "E3": "", "E5": "c"},
		},
		{
			name:   "nothing locatable: no write call",
			change: [][]string{signups[0], signups[2]},
			writes: []Write{
				{2, aliceID, map[string]string{"Status": "a"}},
				{5, carolID, map[string]string{"Status": "c"}},
			},
			want:  []wantResult{{errIs: ErrRowNotFound}, {errIs: ErrRowNotFound}},
			cells: map[string]string{"E2": ""},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fx := newGFix(t, tab, signups)
			if tt.change != nil {
				replaceGrid(t, fx, tab, tt.change)
			}
			before := len(fx.fake.Requests())
			got, err := fx.g.WriteBatch(t.Context(), tt.writes)
			if err != nil {
				t.Fatalf("WriteBatch: %v", err)
			}
			checkResults(t, got, tt.want)
			var ops []string
			for _, r := range fx.fake.Requests()[before:] {
				if r.Op != "token" {
					ops = append(ops, r.Op)
				}
			}
			wantOps := []string{"values.get"}
			if tt.wantWrites == 1 {
				// Anchor the rows, read the anchored rows, write by anchor,
				// drop the anchors, then read back to check identities.
				wantOps = append(wantOps, "spreadsheets.get", "spreadsheets.batchUpdate", "values.batchGetByDataFilter",
					"values.batchUpdateByDataFilter", "spreadsheets.batchUpdate", "values.get")
			}
			if fmt.Sprint(ops) != fmt.Sprint(wantOps) {
				t.Errorf("Sheets calls = %v, want %v", ops, wantOps)
			}
			for a1, want := range tt.cells {
				v, formula := fx.fake.Cell(book, tab, a1)
				if v != want || formula {
					t.Errorf("%s = %q (formula %v), want text %q", a1, v, formula, want)
				}
			}
		})
	}
}

// roundTripFunc lets a test see (and act on) each request of the client.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestGoogleWriteBatchWholeBatch(t *testing.T) {
	t.Parallel()
	writes := []Write{
		{2, aliceID, map[string]string{"Status": "a"}},
		{3, bobID, map[string]string{"Status": "b"}},
	}
	tests := []struct {
		name      string
		readFails int // FailNext before the call (hits the re-read)
		writeCode int // error injected into each values.batchUpdate; 0 = none
		writeFail int // how many values.batchUpdate calls fail
		wantErr   string
		wantReads int
		wantPuts  int
		wantSleep int
	}{
		{name: "write refused: nothing written, results nil", writeCode: 403, writeFail: 1,
			wantErr: "writing rows 2, 3 of spreadsheet", wantReads: 1, wantPuts: 1},
		{name: "read refused: no write", readFails: 1, wantErr: "permission denied",
			wantReads: 1, wantPuts: 0},
		{name: "write rate-limited: the retry re-locates the rows first", writeCode: 429, writeFail: 1,
			wantReads: 3, wantPuts: 2, wantSleep: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var (
				mu     sync.Mutex
				failed int
				fx     *gfix
			)
			fx = newGFix(t, tab, signups, func(o *Options) {
				o.HTTPClient = &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
					if strings.HasSuffix(r.URL.Path, "values:batchUpdateByDataFilter") {
						mu.Lock()
						if failed < tt.writeFail {
							failed++
							fx.fake.FailNext(1, tt.writeCode)
						}
						mu.Unlock()
					}
					return http.DefaultTransport.RoundTrip(r)
				})}
			})
			if tt.readFails > 0 {
				fx.fake.FailNext(tt.readFails, 403)
			}
			got, err := fx.g.WriteBatch(t.Context(), writes)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("WriteBatch: %v", err)
				}
				checkResults(t, got, []wantResult{{row: 2}, {row: 3}})
			} else {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("WriteBatch error = %v, want it to mention %q", err, tt.wantErr)
				}
				if got != nil {
					t.Errorf("results = %+v with a batch error, want nil", got)
				}
				for _, a1 := range []string{"E2", "E3"} {
					if v, _ := fx.fake.Cell(book, tab, a1); v != "" {
						t.Errorf("%s = %q after a failed batch", a1, v)
					}
				}
			}
			if n := fx.ops("values.get"); n != tt.wantReads {
				t.Errorf("%d values.get calls, want %d", n, tt.wantReads)
			}
			if n := fx.ops("values.batchUpdateByDataFilter"); n != tt.wantPuts {
				t.Errorf("%d values.batchUpdateByDataFilter calls, want %d", n, tt.wantPuts)
			}
			if n := len(fx.slept()); n != tt.wantSleep {
				t.Errorf("slept %d times, want %d", n, tt.wantSleep)
			}
		})
	}
}

func TestGoogleWriteBatchEmpty(t *testing.T) {
	t.Parallel()
	fx := newGFix(t, tab, signups)
	got, err := fx.g.WriteBatch(t.Context(), nil)
	if err != nil || got == nil || len(got) != 0 {
		t.Fatalf("WriteBatch(nil) = %#v, %v; want empty results", got, err)
	}
	if n := len(fx.fake.Requests()); n != 0 {
		t.Errorf("%d requests for an empty batch", n)
	}
}

func TestCSVWriteBatch(t *testing.T) {
	t.Parallel()
	const orig = "\ufeffTimestamp,Email,Status,Notes\r\nt1,a@x\r\nt2,b@x,,\r\nt3,c@x,,keep\r\n"
	a, b, c := Identity{"t1", "A@X"}, Identity{"t2", "b@x"}, Identity{"t3", "c@x"}
	tests := []struct {
		name     string
		content  string // "" = orig
		writes   []Write
		want     []wantResult
		wantFile string // "" = unchanged
	}{
		{
			name: "several rows in one rewrite, BOM and CRLF kept",
			writes: []Write{
				{4, c, map[string]string{"Status": "c"}},
				{2, a, map[string]string{"status": "a", "NOTES": "na"}},
				{3, b, map[string]string{"Notes": "nb"}},
			},
			want:     []wantResult{{row: 4}, {row: 2}, {row: 3}},
			wantFile: "\ufeffTimestamp,Email,Status,Notes\r\nt1,a@x,a,na\r\nt2,b@x,,nb\r\nt3,c@x,c,keep\r\n",
		},
		{
			name:    "moved rows are followed",
			content: "Timestamp,Email,Status\nt3,c@x,\nt0,z@x,\nt1,a@x,\n",
			writes: []Write{
				{2, a, map[string]string{"Status": "a"}},
				{4, c, map[string]string{"Status": "c"}},
			},
			want:     []wantResult{{row: 4}, {row: 2}},
			wantFile: "Timestamp,Email,Status\nt3,c@x,c\nt0,z@x,\nt1,a@x,a\n",
		},
		{
			name:    "missing row reported, the others written",
			content: "Timestamp,Email,Status\nt2,b@x,\nt3,c@x,\n",
			writes: []Write{
				{2, a, map[string]string{"Status": "a"}},
				{2, b, map[string]string{"Status": "b"}},
				{3, c, map[string]string{"Status": "c"}},
			},
			want:     []wantResult{{errIs: ErrRowNotFound, text: "row 2"}, {row: 2}, {row: 3}},
			wantFile: "Timestamp,Email,Status\nt2,b@x,b\nt3,c@x,c\n",
		},
		{
			name: "two writes locate the same row: neither written",
			writes: []Write{
				{3, b, map[string]string{"Status": "first"}},
				{2, a, map[string]string{"Status": "a"}},
				{4, b, map[string]string{"Notes": "second"}},
			},
			want: []wantResult{
				{errIs: ErrAmbiguousRow, text: "and write(s) #2 of the same batch all locate row 3"},
				{row: 2},
				{errIs: ErrAmbiguousRow, text: "and write(s) #0 of the same batch all locate row 3"},
			},
			wantFile: "\ufeffTimestamp,Email,Status,Notes\r\nt1,a@x,a\r\nt2,b@x,,\r\nt3,c@x,,keep\r\n",
		},
		{
			name: "values written verbatim",
			writes: []Write{
				{2, a, map[string]string{"Status": "=1+1", "Notes": "0012"}},
			},
			want:     []wantResult{{row: 2}},
			wantFile: "\ufeffTimestamp,Email,Status,Notes\r\nt1,a@x,=1+1,0012\r\nt2,b@x,,\r\nt3,c@x,,keep\r\n",
		},
		{
			name: "nothing locatable: file untouched",
			writes: []Write{
				{2, Identity{"t9", "a@x"}, map[string]string{"Status": "a"}},
				{3, b, map[string]string{"Bogus": "b"}},
			},
			want: []wantResult{{errIs: ErrRowNotFound}, {text: `"Bogus"`}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			content := tt.content
			if content == "" {
				content = orig
			}
			p := writeFile(t, content)
			st0, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			got, err := NewCSV(p).WriteBatch(t.Context(), tt.writes)
			if err != nil {
				t.Fatalf("WriteBatch: %v", err)
			}
			checkResults(t, got, tt.want)
			want := tt.wantFile
			if want == "" {
				want = content
			}
			data, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if string(data) != want {
				t.Errorf("file = %q, want %q", data, want)
			}
			st1, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if replaced := !os.SameFile(st0, st1); replaced != (tt.wantFile != "") {
				t.Errorf("file replaced = %v, want %v", replaced, tt.wantFile != "")
			}
			if ents, _ := os.ReadDir(filepath.Dir(p)); len(ents) != 1 {
				t.Errorf("directory holds %d entries, want only the CSV", len(ents))
			}
		})
	}
}

func TestCSVWriteBatchWholeBatch(t *testing.T) {
	t.Parallel()
	w := []Write{{2, Identity{"t1", "a@x"}, map[string]string{"Status": "x"}}}
	t.Run("missing file", func(t *testing.T) {
		t.Parallel()
		got, err := NewCSV(filepath.Join(t.TempDir(), "nope.csv")).WriteBatch(t.Context(), w)
		if !errors.Is(err, os.ErrNotExist) || got != nil {
			t.Errorf("WriteBatch = %+v, %v", got, err)
		}
	})
	t.Run("cancelled context", func(t *testing.T) {
		t.Parallel()
		p := writeFile(t, "Timestamp,Email,Status\nt1,a@x,\n")
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		got, err := NewCSV(p).WriteBatch(ctx, w)
		if !errors.Is(err, context.Canceled) || got != nil {
			t.Errorf("WriteBatch = %+v, %v", got, err)
		}
	})
	t.Run("empty batch", func(t *testing.T) {
		t.Parallel()
		got, err := NewCSV(filepath.Join(t.TempDir(), "nope.csv")).WriteBatch(t.Context(), nil)
		if err != nil || got == nil || len(got) != 0 {
			t.Errorf("WriteBatch(nil) = %#v, %v", got, err)
		}
	})
}

func TestCSVWriteBatchConcurrent(t *testing.T) {
	t.Parallel()
	const workers, perWorker = 8, 6
	var sb strings.Builder
	sb.WriteString("Timestamp,Email,Status,Worker\n")
	for w := range workers {
		for i := range perWorker {
			fmt.Fprintf(&sb, "t%d-%d,w%d@x,,\n", w, i, w)
		}
	}
	p := writeFile(t, sb.String())
	c := NewCSV(p)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, workers*perWorker)
	for w := range workers {
		wg.Go(func() {
			// Half of each worker's rows go in one batch, the rest one by
			// one through WriteChecked: both paths share the lock.
			var batch []Write
			for i := range perWorker {
				row := 2 + w*perWorker + i
				id := Identity{fmt.Sprintf("t%d-%d", w, i), fmt.Sprintf("w%d@x", w)}
				vals := map[string]string{"Status": fmt.Sprintf("done %d-%d", w, i), "Worker": fmt.Sprint(w)}
				if i%2 == 0 {
					batch = append(batch, Write{row, id, vals})
					continue
				}
				if _, err := c.WriteChecked(ctx, row, id, vals); err != nil {
					errs <- err
				}
			}
			res, err := c.WriteBatch(ctx, batch)
			if err != nil {
				errs <- err
				return
			}
			for _, r := range res {
				if r.Err != nil {
					errs <- r.Err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	tbl, err := c.Read(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(tbl.Rows) != workers*perWorker {
		t.Fatalf("%d rows after concurrent writes, want %d", len(tbl.Rows), workers*perWorker)
	}
	for _, r := range tbl.Rows {
		ts := tbl.Get(r, "Timestamp")
		var w, i int
		if _, err := fmt.Sscanf(ts, "t%d-%d", &w, &i); err != nil {
			t.Fatalf("row %d: timestamp %q: %v", r.Number, ts, err)
		}
		if got, want := tbl.Get(r, "Status"), fmt.Sprintf("done %d-%d", w, i); got != want {
			t.Errorf("row %d Status = %q, want %q (write lost)", r.Number, got, want)
		}
		if got := tbl.Get(r, "Worker"); got != fmt.Sprint(w) {
			t.Errorf("row %d Worker = %q, want %d", r.Number, got, w)
		}
	}
	if ents, _ := os.ReadDir(filepath.Dir(p)); len(ents) != 1 {
		t.Errorf("directory holds %d entries, want only the CSV", len(ents))
	}
}
