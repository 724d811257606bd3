package sheet

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	kbackoff "github.com/kaizen-onboard/kaizen/internal/backoff"
	"github.com/kaizen-onboard/kaizen/internal/testenv/sheetsfake"
	"google.golang.org/api/sheets/v4"
)

const (
	book = "book-1"
	tab  = "Form Responses 1"
)

var signups = [][]string{
	{"Timestamp", " email ", "Name", "Approved", "Status", "Notes"},
	{"2024-01-01 10:00", "alice@example.com", "Alice", "yes"},
	{"2024-01-02 11:00", "bob@example.com"},
	{},
	{"2024-01-03 12:00", "carol@example.com", "Carol", "", "", "late"},
}

type gfix struct {
	fake *sheetsfake.Fake
	g    *Google

	mu     sync.Mutex
	sleeps []time.Duration
}

func (fx *gfix) slept() []time.Duration {
	fx.mu.Lock()
	defer fx.mu.Unlock()
	return slices.Clone(fx.sleeps)
}

func newGFix(t *testing.T, sheetName string, rows [][]string, mod ...func(*Options)) *gfix {
	t.Helper()
	fx := &gfix{fake: sheetsfake.New(t)}
	fx.fake.AddSpreadsheet(book, "Sign-ups")
	fx.fake.AddSheet(book, sheetName, rows)
	opts := Options{
		SpreadsheetID:   book,
		Worksheet:       sheetName,
		CredentialsJSON: fx.fake.ServiceAccountJSON(),
		Endpoint:        fx.fake.Endpoint(),
		Retry: RetryPolicy{Attempts: 4, Base: time.Second, Max: 3 * time.Second,
			Jitter: func(d time.Duration) time.Duration { return d }, // exact waits to assert
			Sleep: func(ctx context.Context, d time.Duration) error {
				fx.mu.Lock()
				defer fx.mu.Unlock()
				fx.sleeps = append(fx.sleeps, d)
				return ctx.Err()
			}},
	}
	for _, m := range mod {
		m(&opts)
	}
	g, err := NewGoogle(t.Context(), opts)
	if err != nil {
		t.Fatalf("NewGoogle: %v", err)
	}
	fx.g = g
	return fx
}

// ops counts the fake's served requests by operation.
func (fx *gfix) ops(op string) int {
	n := 0
	for _, r := range fx.fake.Requests() {
		if r.Op == op {
			n++
		}
	}
	return n
}

// replaceGrid overwrites the worksheet out of band, as a person sorting,
// inserting or deleting rows would.
func replaceGrid(t *testing.T, fx *gfix, sheetName string, rows [][]string) {
	t.Helper()
	svc := fx.fake.Service(t.Context(), t)
	rng := quoteSheet(sheetName)
	if _, err := svc.Spreadsheets.Values.Clear(book, rng, &sheets.ClearValuesRequest{}).Context(t.Context()).Do(); err != nil {
		t.Fatalf("clear: %v", err)
	}
	vals := make([][]any, len(rows))
	for i, r := range rows {
		for _, c := range r {
			vals[i] = append(vals[i], c)
		}
	}
	if _, err := svc.Spreadsheets.Values.Update(book, rng+"!A1", &sheets.ValueRange{Values: vals}).
		ValueInputOption("RAW").Context(t.Context()).Do(); err != nil {
		t.Fatalf("update: %v", err)
	}
}

func TestGoogleRead(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		sheet string
	}{
		{"spaces in name", "Form Responses 1"},
		{"single quote in name", "Bob's 'list'"},
		{"looks like a range", "A1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fx := newGFix(t, tt.sheet, signups)
			tbl, err := fx.g.Read(t.Context())
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			if !slices.Equal(tbl.Header, signups[0]) {
				t.Errorf("Header = %q", tbl.Header)
			}
			var nums []int
			for _, r := range tbl.Rows {
				nums = append(nums, r.Number)
			}
			if want := []int{2, 3, 5}; !slices.Equal(nums, want) {
				t.Errorf("row numbers = %v, want %v (blank row 4 dropped)", nums, want)
			}
			bob, _ := tbl.Row(3)
			for col, want := range map[string]string{"EMAIL": "bob@example.com", " name": "", "Notes": ""} {
				got, ok := tbl.Value(bob, col)
				if !ok || got != want {
					t.Errorf("Value(bob, %q) = %q, %v; want %q", col, got, ok, want)
				}
			}
			if got := tbl.Get(tbl.Rows[2], "notes"); got != "late" {
				t.Errorf("carol notes = %q", got)
			}
			if _, ok := tbl.Value(bob, "Project"); ok {
				t.Error("Value of a missing column reported found")
			}
		})
	}
}

func TestGoogleWriteChecked(t *testing.T) {
	t.Parallel()
	alice := Identity{Timestamp: "2024-01-01 10:00", Email: "Alice@Example.com "}
	tests := []struct {
		name     string
		row      int
		id       Identity
		values   map[string]string
		change   [][]string // grid replacing the sheet after the caller's read
		wantRow  int
		wantErr  error  // errors.Is target
		wantText string // substring of the error
		cells    map[string]string
	}{
		{
			name: "raw text, never formulas", row: 2, id: alice,
			values:  map[string]string{"status": "=1+1", "NOTES": "0012"},
			wantRow: 2, cells: map[string]string{"E2": "=1+1", "F2": "0012", "B2": "alice@example.com"},
		},
		{
			name: "rows inserted above: follows the row", row: 2, id: alice,
			values: map[string]string{"Status": "done"},
			change: append([][]string{signups[0],
				{"2024-02-01 09:00", "dave@example.com"},
				{"2024-02-02 09:00", "erin@example.com"}}, signups[1:]...),
			wantRow: 4, cells: map[string]string{"E4": "done", "E2": "", "B4": "alice@example.com"},
		},
		{
			name: "row deleted: refused", row: 2, id: alice,
			values:  map[string]string{"Status": "done"},
			change:  [][]string{signups[0], signups[2], signups[4]},
			wantErr: ErrRowNotFound, wantText: "row 2",
			cells: map[string]string{"E2": "", "E3": ""},
		},
		{
			name: "row duplicated elsewhere after a move: refused", row: 3, id: alice,
			values:  map[string]string{"Status": "done"},
			change:  [][]string{signups[0], signups[1], signups[2], signups[1]},
			wantErr: ErrAmbiguousRow,
			cells:   map[string]string{"E2": "", "E4": ""},
		},
		{
			name: "unknown columns named", row: 2, id: alice,
			values:   map[string]string{"Status": "x", "Projekt": "p", "PIN": "1"},
			wantText: `unknown column(s) "PIN", "Projekt"`,
			cells:    map[string]string{"E2": ""},
		},
		{
			name: "empty identity refused", row: 2, id: Identity{},
			values: map[string]string{"Status": "x"}, wantText: "identity",
			cells: map[string]string{"E2": ""},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fx := newGFix(t, tab, signups)
			if _, err := fx.g.Read(t.Context()); err != nil {
				t.Fatal(err)
			}
			if tt.change != nil {
				replaceGrid(t, fx, tab, tt.change)
			}
			got, err := fx.g.WriteChecked(t.Context(), tt.row, tt.id, tt.values)
			failing := tt.wantErr != nil || tt.wantText != ""
			switch {
			case !failing && err != nil:
				t.Fatalf("WriteChecked: %v", err)
			case failing && err == nil:
				t.Fatalf("WriteChecked succeeded (row %d), want error", got)
			case tt.wantErr != nil && !errors.Is(err, tt.wantErr):
				t.Errorf("error = %v, want %v", err, tt.wantErr)
			case tt.wantText != "" && !strings.Contains(err.Error(), tt.wantText):
				t.Errorf("error = %v, want it to mention %q", err, tt.wantText)
			}
			if err == nil && got != tt.wantRow {
				t.Errorf("wrote row %d, want %d", got, tt.wantRow)
			}
			wantWrites := 1
			if failing {
				wantWrites = 0
			}
			if n := fx.ops("values.batchUpdateByDataFilter"); n != wantWrites {
				t.Errorf("%d values.batchUpdate calls, want %d", n, wantWrites)
			}
			if n := fx.ops("values.update") - btoi(tt.change != nil); n != 0 {
				t.Errorf("%d unexpected values.update calls", n)
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

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestGoogleRetry(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		code      int
		fails     int
		wantCalls int
		wantErr   []string // substrings; nil means success
		wantSleep []time.Duration
	}{
		{name: "429 retried", code: 429, fails: 2, wantCalls: 3, wantSleep: []time.Duration{time.Second, 2 * time.Second}},
		{name: "503 retried", code: 503, fails: 1, wantCalls: 2, wantSleep: []time.Duration{time.Second}},
		{name: "500 retried", code: 500, fails: 1, wantCalls: 2, wantSleep: []time.Duration{time.Second}},
		{name: "502 retried", code: 502, fails: 1, wantCalls: 2, wantSleep: []time.Duration{time.Second}},
		{name: "504 retried", code: 504, fails: 1, wantCalls: 2, wantSleep: []time.Duration{time.Second}},
		{name: "gives up after attempts, backoff capped", code: 503, fails: 10, wantCalls: 4,
			wantErr: []string{"503", book}, wantSleep: []time.Duration{time.Second, 2 * time.Second, 3 * time.Second}},
		{name: "403 not retried", code: 403, fails: 1, wantCalls: 1,
			wantErr: []string{"share the spreadsheet with kaizen-test@kaizen-test.iam.gserviceaccount.com", book}},
		{name: "404 not retried", code: 404, fails: 1, wantCalls: 1,
			wantErr: []string{"not found", "spreadsheet_id", book}},
		{name: "400 not retried", code: 400, fails: 1, wantCalls: 1,
			wantErr: []string{"worksheet", tab}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fx := newGFix(t, tab, signups)
			fx.fake.FailNext(tt.fails, tt.code)
			tbl, err := fx.g.Read(t.Context())
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Read: %v", err)
				}
				if len(tbl.Rows) != 3 {
					t.Errorf("%d rows after retries, want 3", len(tbl.Rows))
				}
			} else {
				if err == nil {
					t.Fatal("Read succeeded, want error")
				}
				for _, s := range tt.wantErr {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not mention %q", err, s)
					}
				}
			}
			if n := fx.ops("values.get"); n != tt.wantCalls {
				t.Errorf("%d values.get calls, want %d", n, tt.wantCalls)
			}
			if got := fx.slept(); !slices.Equal(got, tt.wantSleep) {
				t.Errorf("slept %v, want %v", got, tt.wantSleep)
			}
		})
	}
}

func TestGoogleRealErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		mod     func(*Options)
		setup   func(*sheetsfake.Fake)
		wantErr []string
	}{
		{name: "not shared", setup: func(f *sheetsfake.Fake) { f.Revoke(book) },
			wantErr: []string{"permission denied", book, "kaizen-test@kaizen-test.iam.gserviceaccount.com"}},
		{name: "unknown spreadsheet", mod: func(o *Options) { o.SpreadsheetID = "nope" },
			wantErr: []string{`spreadsheet "nope" not found`}},
		{name: "unknown worksheet", mod: func(o *Options) { o.Worksheet = "Sheet9" },
			wantErr: []string{`worksheet "Sheet9"`, "'Sheet9'", book}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			mods := []func(*Options){}
			if tt.mod != nil {
				mods = append(mods, tt.mod)
			}
			fx := newGFix(t, tab, signups, mods...)
			if tt.setup != nil {
				tt.setup(fx.fake)
			}
			_, err := fx.g.Read(t.Context())
			if err == nil {
				t.Fatal("Read succeeded")
			}
			for _, s := range tt.wantErr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
			if n := fx.ops("values.get"); n != 1 {
				t.Errorf("%d values.get calls, want 1 (no retry)", n)
			}
			if len(fx.slept()) != 0 {
				t.Errorf("slept %v", fx.slept())
			}
		})
	}
}

func TestGoogleRetriedWrite(t *testing.T) {
	t.Parallel()
	fx := newGFix(t, tab, signups)
	fx.fake.FailNext(1, 429) // the re-read inside WriteChecked
	row, err := fx.g.WriteChecked(t.Context(), 5, Identity{"2024-01-03 12:00", "carol@example.com"}, map[string]string{"Status": "ok"})
	if err != nil || row != 5 {
		t.Fatalf("WriteChecked = %d, %v", row, err)
	}
	if v, _ := fx.fake.Cell(book, tab, "E5"); v != "ok" {
		t.Errorf("E5 = %q", v)
	}
}

func TestGoogleHTTPClientAndIdentityColumns(t *testing.T) {
	t.Parallel()
	rows := [][]string{{"Submitted", "Mail", "Status"}, {"t1", "a@x"}}
	fx := newGFix(t, tab, rows, func(o *Options) {
		o.HTTPClient = &http.Client{Timeout: 10 * time.Second}
		o.TimestampColumn, o.EmailColumn = "submitted", "MAIL"
	})
	if _, err := fx.g.WriteChecked(t.Context(), 2, Identity{"t1", "a@x"}, map[string]string{"status": "ok"}); err != nil {
		t.Fatal(err)
	}
	if v, _ := fx.fake.Cell(book, tab, "C2"); v != "ok" {
		t.Errorf("C2 = %q", v)
	}
	if fx.fake.TokenExchanges() < 1 {
		t.Error("no token exchange through the custom client")
	}
	if fx.g.ServiceAccountEmail() != fx.fake.ServiceAccountEmail() {
		t.Errorf("ServiceAccountEmail = %q", fx.g.ServiceAccountEmail())
	}
}

func TestNewGoogleInvalid(t *testing.T) {
	t.Parallel()
	secret := []byte(`{"private_key": "-----BEGIN SECRET-----`)
	tests := []struct {
		name    string
		opts    Options
		wantErr []string
	}{
		{"all missing", Options{}, []string{"spreadsheet ID is empty", "worksheet name is empty", "credentials are empty"}},
		{"bad json", Options{SpreadsheetID: "x", Worksheet: "y", CredentialsJSON: secret}, []string{"not valid JSON"}},
		{"not a service account", Options{SpreadsheetID: "x", Worksheet: "y", CredentialsJSON: []byte(`{"type":"authorized_user"}`)}, []string{"credentials"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := NewGoogle(t.Context(), tt.opts)
			if err == nil {
				t.Fatal("NewGoogle succeeded")
			}
			for _, s := range tt.wantErr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
			if strings.Contains(err.Error(), "SECRET") {
				t.Errorf("error leaks credentials: %v", err)
			}
		})
	}
}

func TestHelpers(t *testing.T) {
	t.Parallel()
	t.Run("columnName", func(t *testing.T) {
		t.Parallel()
		for i, want := range map[int]string{0: "A", 25: "Z", 26: "AA", 51: "AZ", 52: "BA", 701: "ZZ", 702: "AAA"} {
			if got := columnName(i); got != want {
				t.Errorf("columnName(%d) = %q, want %q", i, got, want)
			}
		}
	})
	t.Run("quoteSheet", func(t *testing.T) {
		t.Parallel()
		for in, want := range map[string]string{"Form Responses 1": "'Form Responses 1'", "Bob's": "'Bob''s'", "''": "''''''"} {
			if got := quoteSheet(in); got != want {
				t.Errorf("quoteSheet(%q) = %q, want %q", in, got, want)
			}
		}
	})
	t.Run("delay", func(t *testing.T) {
		t.Parallel()
		p := RetryPolicy{Base: 100 * time.Millisecond, Max: time.Second}.withDefaults()
		var got []time.Duration
		for n := range 6 {
			got = append(got, p.delay(n))
		}
		want := []time.Duration{100e6, 200e6, 400e6, 800e6, 1e9, 1e9}
		if !slices.Equal(got, want) {
			t.Errorf("delays = %v, want %v", got, want)
		}
	})
	t.Run("sleep honours cancellation", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if err := kbackoff.Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
			t.Errorf("Sleep = %v", err)
		}
	})
}

func TestRequire(t *testing.T) {
	t.Parallel()
	tbl := &Table{Header: []string{"Timestamp", " Email ", "Name", "Processed  At"}}
	tests := []struct {
		name    string
		names   []string
		wantErr []string
	}{
		{"all present, any case", []string{"timestamp", "EMAIL", " name "}, nil},
		{"inner whitespace collapsed, as request reads headers", []string{"processed at", "Processed\tAt"}, nil},
		{"two missing, listed together", []string{"Email", "Project", "PIN"}, []string{`"Project", "PIN"`, "2 required"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tbl.Require(tt.names...)
			if (err != nil) != (tt.wantErr != nil) {
				t.Fatalf("Require = %v", err)
			}
			for _, s := range tt.wantErr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
		})
	}
}

func TestGoogleRequireMissingHeaders(t *testing.T) {
	t.Parallel()
	fx := newGFix(t, tab, signups)
	tbl, err := fx.g.Read(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	err = tbl.Require("Timestamp", "Email", "Project Name", "PIN")
	if err == nil || !strings.Contains(err.Error(), `"Project Name", "PIN"`) {
		t.Errorf("Require = %v", err)
	}
}

func TestGoogleNetworkErrors(t *testing.T) {
	t.Parallel()
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	tests := []struct {
		name      string
		endpoint  string
		wantSleep int
	}{
		{"connection refused is retried", closed.URL + "/", 3},
		{"malformed endpoint is not", "ftp://example.invalid/", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fx := newGFix(t, tab, signups, func(o *Options) { o.Endpoint = tt.endpoint })
			if _, err := fx.g.Read(t.Context()); err == nil {
				t.Fatal("Read succeeded")
			}
			if n := len(fx.slept()); n != tt.wantSleep {
				t.Errorf("slept %d times, want %d", n, tt.wantSleep)
			}
		})
	}
}
