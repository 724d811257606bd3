package e2e

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite" // the attacker's SQLite reader
)

// dump is everything the attacker has: the database and nothing else.
type dump struct {
	// blobs are whole files: the SQLite files, or pg_dump's output.
	blobs []source
	// cells are the values of every column of every row, as read back
	// from the copy (SQL on SQLite, pg_dump's COPY data on PostgreSQL):
	// long SQLite values straddle pages, so the file alone can hide them.
	cells []source
	// tokens are the rows of the tokens table.
	tokens []tokenRow
}

// source is one piece of the dump, named for messages.
type source struct {
	name string
	data []byte
}

type tokenRow struct {
	hash, sealed []byte
	userID       string
}

// sqliteDump copies the store's directory (the .db file with its -wal
// and -shm, if any are left after every program closed it) and reads the
// copy.
func sqliteDump(t *testing.T, dbPath string) dump {
	t.Helper()
	var d dump
	loot := t.TempDir()
	entries, err := os.ReadDir(filepath.Dir(dbPath))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(filepath.Dir(dbPath), e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(loot, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
		d.blobs = append(d.blobs, source{name: "file " + e.Name(), data: b})
	}
	if len(d.blobs) == 0 {
		t.Fatal("the store's directory is empty")
	}
	copyPath := filepath.Join(loot, filepath.Base(dbPath))
	db, err := sql.Open("sqlite", "file:"+copyPath+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := t.Context()
	var tables []string
	rows, err := db.QueryContext(ctx, `SELECT name FROM sqlite_master WHERE type = 'table'`)
	if err != nil {
		t.Fatalf("reading the copy: %v", err)
	}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, n)
	}
	rows.Close()
	for _, table := range tables {
		d.readTable(ctx, t, db, table)
	}
	return d
}

func (d *dump) readTable(ctx context.Context, t *testing.T, db *sql.DB, table string) {
	t.Helper()
	rows, err := db.QueryContext(ctx, `SELECT * FROM "`+strings.ReplaceAll(table, `"`, `""`)+`"`)
	if err != nil {
		t.Fatalf("reading table %s: %v", table, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	for n := 1; rows.Next(); n++ {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		row := map[string][]byte{}
		for i, v := range vals {
			var b []byte
			switch v := v.(type) {
			case nil:
				continue
			case []byte:
				b = v
			case string:
				b = []byte(v)
			case time.Time:
				b = []byte(v.Format(time.RFC3339Nano))
			default:
				b = fmt.Append(nil, v)
			}
			row[cols[i]] = b
			d.cells = append(d.cells, source{name: fmt.Sprintf("%s.%s, row %d", table, cols[i], n), data: b})
		}
		if table == "tokens" {
			d.tokens = append(d.tokens, tokenRow{hash: row["hash"], sealed: row["sealed_password"], userID: string(row["user_id"])})
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
}

// postgresDump runs Debian's pg_dump on the test's database and reads its
// plain-SQL output, COPY data included.
func postgresDump(t *testing.T, dbURL string) dump {
	t.Helper()
	pgDump, err := exec.LookPath("pg_dump")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("pg_dump is not installed (apt-get install postgresql-client); CI=true, so this fails instead of skipping")
		}
		t.Skip("pg_dump is not installed (apt-get install postgresql-client)")
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, pgDump, "--format=plain", "--no-owner", "--no-privileges", "--dbname="+dbURL)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("pg_dump: %v\n%s", err, stderr.String())
	}
	d := dump{blobs: []source{{name: "pg_dump", data: out}}}
	d.parseCopy(t, out)
	if !bytes.Contains(out, []byte("COPY public.tokens")) {
		t.Fatalf("pg_dump's output has no tokens table:\n%s", out)
	}
	return d
}

// parseCopy reads the COPY blocks of a plain pg_dump: each field a cell,
// bytea ("\x…" hex) decoded.
func (d *dump) parseCopy(t *testing.T, out []byte) {
	t.Helper()
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	var table string
	var cols []string
	n := 0
	for sc.Scan() {
		line := sc.Text()
		if table == "" {
			if rest, ok := strings.CutPrefix(line, "COPY "); ok {
				name, colList, _ := strings.Cut(rest, " (")
				colList, _, _ = strings.Cut(colList, ") FROM stdin;")
				table, n = strings.TrimPrefix(name, "public."), 0
				cols = strings.Split(colList, ", ")
			}
			continue
		}
		if line == `\.` {
			table = ""
			continue
		}
		n++
		row := map[string][]byte{}
		for i, f := range strings.Split(line, "\t") {
			if f == `\N` || i >= len(cols) {
				continue
			}
			v := []byte(copyUnescape(f))
			if h, ok := strings.CutPrefix(string(v), `\x`); ok {
				if b, err := hex.DecodeString(h); err == nil {
					v = b
				}
			}
			row[cols[i]] = v
			d.cells = append(d.cells, source{name: fmt.Sprintf("%s.%s, row %d", table, cols[i], n), data: v})
		}
		if table == "tokens" {
			d.tokens = append(d.tokens, tokenRow{hash: row["hash"], sealed: row["sealed_password"], userID: string(row["user_id"])})
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
}

// copyUnescape undoes COPY's text-format escapes.
func copyUnescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		i++
		switch s[i] {
		case 'n':
			b.WriteByte('\n')
		case 't':
			b.WriteByte('\t')
		case 'r':
			b.WriteByte('\r')
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'v':
			b.WriteByte('\v')
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

// sources is every piece of the dump.
func (d dump) sources() []source { return slices.Concat(d.blobs, d.cells) }
