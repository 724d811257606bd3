package sheet

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

var writeBack = []string{"Status", "Processed At", "User ID", "Project ID"}

// wideHeader is a form's header of n columns, "Q1".."Qn".
func wideHeader(n int) []string {
	h := make([]string, n)
	for i := range h {
		h[i] = "Q" + strconv.Itoa(i+1)
	}
	return h
}

func TestGoogleAddColumns(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		grid       [][]string
		names      []string
		wantAdded  []string
		wantHeader []string
		wantResize bool
	}{
		{name: "form sheet gets all four after its last column",
			grid:      [][]string{{"Timestamp", "Email Address", "PIN"}, {"3/1/2026 10:00:00", "a@example.org", "1234"}},
			names:     writeBack,
			wantAdded: writeBack, wantHeader: []string{"Timestamp", "Email Address", "PIN", "Status", "Processed At", "User ID", "Project ID"}},
		{name: "only the missing ones, compared as headers are",
			grid:      [][]string{{"Timestamp", " status ", "Email"}},
			names:     writeBack,
			wantAdded: []string{"Processed At", "User ID", "Project ID"}, wantHeader: []string{"Timestamp", " status ", "Email", "Processed At", "User ID", "Project ID"}},
		{name: "nothing missing writes nothing",
			grid:  [][]string{{"Status", "Processed At", "User ID", "Project ID"}},
			names: writeBack, wantHeader: []string{"Status", "Processed At", "User ID", "Project ID"}},
		{name: "a full-width grid is widened",
			grid:      [][]string{wideHeader(26)},
			names:     writeBack,
			wantAdded: writeBack, wantHeader: append(wideHeader(26), writeBack...), wantResize: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fx := newGFix(t, tab, tc.grid)
			added, err := fx.g.AddColumns(t.Context(), tc.names)
			if err != nil {
				t.Fatalf("AddColumns: %v", err)
			}
			if !slices.Equal(added, tc.wantAdded) {
				t.Errorf("added %q, want %q", added, tc.wantAdded)
			}
			got := fx.fake.Rows(book, tab)[0]
			for len(got) > 0 && got[len(got)-1] == "" {
				got = got[:len(got)-1]
			}
			if !slices.Equal(got, tc.wantHeader) {
				t.Errorf("header row = %q, want %q", got, tc.wantHeader)
			}
			if n := fx.ops("spreadsheets.batchUpdate"); (n > 0) != tc.wantResize {
				t.Errorf("%d resizes, want resize %v", n, tc.wantResize)
			}
			if tc.wantAdded == nil && fx.ops("values.update") != 0 {
				t.Errorf("wrote the header although nothing was missing")
			}
			// The data rows are untouched, and a second call adds nothing.
			if len(tc.grid) > 1 && !slices.Equal(fx.fake.Rows(book, tab)[1][:len(tc.grid[1])], tc.grid[1]) {
				t.Errorf("data row changed: %q", fx.fake.Rows(book, tab)[1])
			}
			again, err := fx.g.AddColumns(t.Context(), tc.names)
			if err != nil || len(again) != 0 {
				t.Errorf("second AddColumns = %q, %v; want nothing added", again, err)
			}
			// Read sees the new columns.
			tbl, err := fx.g.Read(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if err := tbl.Require(tc.names...); err != nil {
				t.Errorf("after AddColumns: %v", err)
			}
		})
	}
}

func TestCSVAddColumns(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
		wantAdded      []string
	}{
		{name: "form export", in: "Timestamp,Email,PIN\r\n3/1/2026,a@example.org,1234\r\n",
			want: "Timestamp,Email,PIN,Status,Processed At,User ID,Project ID\r\n3/1/2026,a@example.org,1234\r\n", wantAdded: writeBack},
		{name: "after the last used cell", in: "\ufeffTimestamp,Email,,\nx,y,,z\n",
			want: "\ufeffTimestamp,Email,Status,Processed At,User ID,Project ID\nx,y,,z\n", wantAdded: writeBack},
		{name: "nothing missing", in: "Status,Processed At,User ID,Project ID\n", want: "Status,Processed At,User ID,Project ID\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "signups.csv")
			if err := os.WriteFile(path, []byte(tc.in), 0o640); err != nil {
				t.Fatal(err)
			}
			added, err := NewCSV(path).AddColumns(t.Context(), writeBack)
			if err != nil {
				t.Fatalf("AddColumns: %v", err)
			}
			if !slices.Equal(added, tc.wantAdded) {
				t.Errorf("added %q, want %q", added, tc.wantAdded)
			}
			got, _ := os.ReadFile(path)
			if string(got) != tc.want {
				t.Errorf("file =\n%q\nwant\n%q", got, tc.want)
			}
			if st, _ := os.Stat(path); st.Mode().Perm() != 0o640 {
				t.Errorf("mode %v, want 0640 kept", st.Mode().Perm())
			}
			if !strings.HasPrefix(tc.want, "\ufeff") && strings.HasPrefix(string(got), "\ufeff") {
				t.Error("a BOM appeared")
			}
		})
	}
}
