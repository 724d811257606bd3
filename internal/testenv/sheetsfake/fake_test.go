package sheetsfake

import (
	"context"
	"errors"
	"strings"
	"testing"

	"google.golang.org/api/googleapi"
	"google.golang.org/api/sheets/v4"
)

const testBook = "book-1"

// newFixture starts a fake with one spreadsheet holding three sheets,
// and a real client authenticated through the service-account flow.
func newFixture(t *testing.T) (*Fake, *sheets.Service) {
	t.Helper()
	f := New(t)
	f.AddSpreadsheet(testBook, "Kaizen approvals")
	f.AddSheet(testBook, "Form Responses 1", [][]string{
		{"Timestamp", "Email", "Name", "Approved"},
		{"2024-01-01 10:00", "alice@example.com", "Alice", "yes"},
		{"2024-01-02 11:00", "bob@example.com"},
		{},
		{"2024-01-03 12:00", "", "Carol"},
		{"", "", "", ""},
	})
	f.AddSheet(testBook, "Sheet1", nil)
	f.AddSheet(testBook, "It's", [][]string{{"quoted"}})
	return f, f.Service(t.Context(), t)
}

func rowsOf(v ...[]any) [][]any { return v }

// fixtureCase runs against its own fixture, so cases can write freely.
type fixtureCase struct {
	name string
	run  func(t *testing.T, f *Fake, svc *sheets.Service)
}

func runFixtureCases(t *testing.T, tests []fixtureCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, svc := newFixture(t)
			tt.run(t, f, svc)
			if f.TokenExchanges() < 1 {
				t.Error("no token exchange recorded")
			}
		})
	}
}

func wantAPIError(t *testing.T, err error, code int, msgPart string) {
	t.Helper()
	var gerr *googleapi.Error
	if !errors.As(err, &gerr) {
		t.Fatalf("error = %v (%T), want *googleapi.Error %d", err, err, code)
	}
	if gerr.Code != code || !strings.Contains(gerr.Message, msgPart) {
		t.Errorf("error = %d %q, want %d containing %q", gerr.Code, gerr.Message, code, msgPart)
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	get := func(rng string) func(context.Context, *sheets.Service) error {
		return func(ctx context.Context, svc *sheets.Service) error {
			_, err := svc.Spreadsheets.Values.Get(testBook, rng).Context(ctx).Do()
			return err
		}
	}
	update := func(rng string, input string, vr *sheets.ValueRange) func(context.Context, *sheets.Service) error {
		return func(ctx context.Context, svc *sheets.Service) error {
			call := svc.Spreadsheets.Values.Update(testBook, rng, vr).Context(ctx)
			if input != "" {
				call = call.ValueInputOption(input)
			}
			_, err := call.Do()
			return err
		}
	}
	one := &sheets.ValueRange{Values: [][]any{{"x"}}}
	tests := []struct {
		name      string
		setup     func(*Fake)
		call      func(context.Context, *sheets.Service) error
		code      int
		status    string
		msg       string
		thenWorks bool // the next identical call succeeds
	}{
		{name: "unknown spreadsheet", call: func(ctx context.Context, svc *sheets.Service) error {
			_, err := svc.Spreadsheets.Get("no-such-book").Context(ctx).Do()
			return err
		}, code: 404, status: "NOT_FOUND", msg: "Requested entity was not found."},
		{name: "unknown sheet", call: get("Nope!A1"), code: 400, status: "INVALID_ARGUMENT", msg: "Unable to parse range: Nope!A1"},
		{name: "garbage range", call: get("A1:B2:C3"), code: 400, msg: "Unable to parse range: A1:B2:C3"},
		{name: "unterminated quote", call: get("'Sheet1!A1"), code: 400, msg: "Unable to parse range: 'Sheet1!A1"},
		{name: "beyond grid", call: get("Sheet1!A1001"), code: 400, msg: "Range (Sheet1!A1001) exceeds grid limits. Max rows: 1000, max columns: 26"},
		{name: "bad render option", call: func(ctx context.Context, svc *sheets.Service) error {
			_, err := svc.Spreadsheets.Values.Get(testBook, "Sheet1").ValueRenderOption("PRETTY").Context(ctx).Do()
			return err
		}, code: 400, msg: "value_render_option"},
		{name: "revoked access", setup: func(f *Fake) { f.Revoke(testBook) }, call: get("Sheet1!A1"),
			code: 403, status: "PERMISSION_DENIED", msg: "The caller does not have permission"},
		{name: "429 injected", setup: func(f *Fake) { f.FailNext(1, 429) }, call: get("Sheet1!A1"),
			code: 429, status: "RESOURCE_EXHAUSTED", msg: "Quota exceeded for quota metric 'Read requests'", thenWorks: true},
		{name: "500 injected", setup: func(f *Fake) { f.FailNext(1, 500) }, call: update("Sheet1!A1", "RAW", one),
			code: 500, status: "INTERNAL", msg: "Internal error encountered.", thenWorks: true},
		{name: "503 injected", setup: func(f *Fake) { f.FailNext(1, 503) }, call: get("Sheet1!A1"),
			code: 503, status: "UNAVAILABLE", msg: "The service is currently unavailable.", thenWorks: true},
		{name: "valueInputOption required", call: update("Sheet1!A1", "", one),
			code: 400, msg: "'valueInputOption' is required but not specified"},
		{name: "data taller than range", call: update("Sheet1!A1:B1", "RAW", &sheets.ValueRange{Values: [][]any{{"a"}, {"b"}}}),
			code: 400, msg: "Requested writing within range [Sheet1!A1:B1], but tried writing to row [2]"},
		{name: "data wider than range", call: update("Sheet1!A1:B1", "RAW", &sheets.ValueRange{Values: [][]any{{"a", "b", "c"}}}),
			code: 400, msg: "Requested writing within range [Sheet1!A1:B1], but tried writing to column [C]"},
		{name: "body range differs", call: update("Sheet1!A1", "RAW", &sheets.ValueRange{Range: "Sheet1!A2", Values: [][]any{{"a"}}}),
			code: 400, msg: "Request range[Sheet1!A1] does not match value's range[Sheet1!A2]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, svc := newFixture(t)
			if tt.setup != nil {
				tt.setup(f)
			}
			err := tt.call(t.Context(), svc)
			wantAPIError(t, err, tt.code, tt.msg)
			var gerr *googleapi.Error
			if errors.As(err, &gerr) && tt.status != "" && !strings.Contains(gerr.Body, `"status":"`+tt.status+`"`) {
				t.Errorf("body %s lacks status %s", gerr.Body, tt.status)
			}
			if tt.thenWorks {
				if err := tt.call(t.Context(), svc); err != nil {
					t.Errorf("call after the injected failure: %v", err)
				}
			}
			if f.TokenExchanges() < 1 {
				t.Error("no token exchange recorded")
			}
		})
	}
}
