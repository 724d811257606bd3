package sheet

import (
	"bytes"
	"encoding/csv"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "signups.csv")
	if err := os.WriteFile(p, []byte(content), 0o640); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCSVRead(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		content    string
		wantHeader []string
		wantRows   []Row
		wantErr    bool
	}{
		{
			name:       "BOM, CRLF, ragged, blank row",
			content:    "\ufeffTimestamp,Email,Name\r\n2024-01-01,a@x,Alice\r\n2024-01-02,b@x\r\n,,\r\n2024-01-03,c@x,Carol,extra\r\n",
			wantHeader: []string{"Timestamp", "Email", "Name"},
			wantRows: []Row{
				{2, []string{"2024-01-01", "a@x", "Alice"}},
				{3, []string{"2024-01-02", "b@x"}},
				{5, []string{"2024-01-03", "c@x", "Carol", "extra"}},
			},
		},
		{
			name:       "quoted newline counts as one record",
			content:    "Timestamp,Notes\n\"t1\",\"line1\nline2\"\nt2,x\n",
			wantHeader: []string{"Timestamp", "Notes"},
			wantRows:   []Row{{2, []string{"t1", "line1\nline2"}}, {3, []string{"t2", "x"}}},
		},
		{name: "empty file", content: ""},
		{name: "header only", content: "\ufeffA,B\n", wantHeader: []string{"A", "B"}},
		{name: "bare quote refused", content: "A,B\nsay \"hi\",x\n", wantErr: true},
		{name: "unterminated quote", content: "A,B\n\"oops,x\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := NewCSV(writeFile(t, tt.content))
			tbl, err := c.Read(t.Context())
			if tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), c.Path()) {
					t.Fatalf("Read = %v, want an error naming the file", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(tbl.Header, tt.wantHeader) {
				t.Errorf("Header = %q, want %q", tbl.Header, tt.wantHeader)
			}
			if !slices.EqualFunc(tbl.Rows, tt.wantRows, func(a, b Row) bool {
				return a.Number == b.Number && slices.Equal(a.Cells, b.Cells)
			}) {
				t.Errorf("Rows = %+v, want %+v", tbl.Rows, tt.wantRows)
			}
		})
	}
	t.Run("missing file", func(t *testing.T) {
		t.Parallel()
		_, err := NewCSV(filepath.Join(t.TempDir(), "nope.csv")).Read(t.Context())
		if !errors.Is(err, os.ErrNotExist) {
			t.Errorf("Read = %v", err)
		}
	})
}

func TestCSVWriteChecked(t *testing.T) {
	t.Parallel()
	const orig = "\ufeffTimestamp,Email,Status\r\nt1,a@x\r\nt2,b@x,\r\n"
	tests := []struct {
		name     string
		content  string // file content at write time ("" = orig)
		row      int
		id       Identity
		values   map[string]string
		wantRow  int
		want     string // file after; "" = unchanged
		wantErr  error
		wantText string
	}{
		{
			name: "sets cells, keeps BOM and CRLF, extends ragged row", row: 2,
			id: Identity{"t1", "A@X"}, values: map[string]string{"status": "=1+1, \"ok\""},
			wantRow: 2,
			want:    "\ufeffTimestamp,Email,Status\r\nt1,a@x,\"=1+1, \"\"ok\"\"\"\r\nt2,b@x,\r\n",
		},
		{
			name:    "row moved: follows it",
			content: "Timestamp,Email,Status\nt0,z@x,\nt1,a@x,\nt2,b@x,\n",
			row:     2, id: Identity{"t1", "a@x"}, values: map[string]string{"Status": "done"},
			wantRow: 3,
			want:    "Timestamp,Email,Status\nt0,z@x,\nt1,a@x,done\nt2,b@x,\n",
		},
		{
			name:    "row deleted: refused",
			content: "Timestamp,Email,Status\nt2,b@x,\n",
			row:     2, id: Identity{"t1", "a@x"}, values: map[string]string{"Status": "done"},
			wantErr: ErrRowNotFound,
		},
		{
			name: "unknown column", row: 2, id: Identity{"t1", "a@x"},
			values: map[string]string{"Bogus": "1"}, wantText: `"Bogus"`,
		},
		{
			name: "no identity columns", content: "Name,Status\nAlice,\n", row: 2, id: Identity{"t1", "a@x"},
			values: map[string]string{"Status": "1"}, wantText: `"Timestamp", "Email"`,
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
			c := NewCSV(p)
			got, err := c.WriteChecked(t.Context(), tt.row, tt.id, tt.values)
			failing := tt.wantErr != nil || tt.wantText != ""
			switch {
			case !failing && err != nil:
				t.Fatalf("WriteChecked: %v", err)
			case failing && err == nil:
				t.Fatal("WriteChecked succeeded, want error")
			case tt.wantErr != nil && !errors.Is(err, tt.wantErr):
				t.Errorf("error = %v, want %v", err, tt.wantErr)
			case tt.wantText != "" && !strings.Contains(err.Error(), tt.wantText):
				t.Errorf("error = %v, want it to mention %q", err, tt.wantText)
			}
			if !failing && got != tt.wantRow {
				t.Errorf("wrote row %d, want %d", got, tt.wantRow)
			}
			want := tt.want
			if want == "" {
				want = content
			}
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != want {
				t.Errorf("file = %q, want %q", b, want)
			}
			ents, _ := os.ReadDir(filepath.Dir(p))
			if len(ents) != 1 {
				t.Errorf("directory holds %d entries, want only the CSV (temp file left?)", len(ents))
			}
			if st, _ := os.Stat(p); st.Mode().Perm() != 0o640 {
				t.Errorf("mode = %v, want 0640 kept", st.Mode().Perm())
			}
			// Read back through the package.
			if !failing {
				tbl, err := c.Read(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				r, _ := tbl.Row(got)
				for k, v := range tt.values {
					if tbl.Get(r, k) != v {
						t.Errorf("read back %s = %q, want %q", k, tbl.Get(r, k), v)
					}
				}
			}
		})
	}
}

func TestCSVWriteIsAtomicRename(t *testing.T) {
	t.Parallel()
	p := writeFile(t, "Timestamp,Email,Status\nt1,a@x,\n")
	// A reader holding the old file keeps seeing the old content: the file
	// is replaced by rename, not rewritten in place.
	old, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	if _, err := NewCSV(p).WriteChecked(t.Context(), 2, Identity{"t1", "a@x"}, map[string]string{"Status": "ok"}); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 100)
	n, _ := old.Read(b)
	if string(b[:n]) != "Timestamp,Email,Status\nt1,a@x,\n" {
		t.Errorf("old handle sees %q: file was modified in place", b[:n])
	}
}

func FuzzReadCSV(f *testing.F) {
	for _, s := range []string{
		"\ufeffTimestamp,Email\r\nt,e\r\n",
		"A,B\n\"x\ny\",z\n\n,,\nq\n",
		"a\"b,c\n",
		"",
		"\"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		tbl, err := ReadCSV(data)
		if err != nil {
			return
		}
		prev := 1
		for _, r := range tbl.Rows {
			if r.Number <= prev {
				t.Fatalf("row numbers not increasing after the header: %d after %d", r.Number, prev)
			}
			prev = r.Number
			if blank(r.Cells) {
				t.Fatalf("blank row %d kept", r.Number)
			}
			for _, h := range tbl.Header {
				tbl.Get(r, h) // never panics
			}
			_ = r.At(len(r.Cells) + 3)
		}
		// Numbers are record numbers: re-parsing finds the same cells there.
		recs, err := parseCSV(data)
		if err != nil {
			t.Fatalf("second parse failed: %v", err)
		}
		for _, r := range tbl.Rows {
			if !slices.Equal(recs[r.Number-1], r.Cells) {
				t.Fatalf("row %d = %q, record is %q", r.Number, r.Cells, recs[r.Number-1])
			}
		}
		// What WriteChecked writes back reads back the same (modulo CR in
		// cells, which encoding/csv normalises).
		var buf bytes.Buffer
		w := csv.NewWriter(&buf)
		if err := w.WriteAll(recs); err != nil {
			t.Fatalf("writing back: %v", err)
		}
		again, err := parseCSV(buf.Bytes())
		if err != nil {
			t.Fatalf("re-reading written CSV: %v", err)
		}
		norm := func(rs [][]string) string {
			var b strings.Builder
			for _, r := range rs {
				if len(r) == 1 && r[0] == "" {
					continue // a lone empty field is written as a blank line, which readers skip
				}
				for _, c := range r {
					b.WriteString(strings.ReplaceAll(c, "\r", ""))
					b.WriteByte(0)
				}
				b.WriteByte(1)
			}
			return b.String()
		}
		if norm(again) != norm(recs) {
			t.Fatalf("round trip changed records:\n%q\n%q", recs, again)
		}
	})
}
