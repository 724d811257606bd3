package sheet

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// CSV is a sign-up table in a CSV file (for example a download of the
// response sheet). It has the same methods as Google.
type CSV struct {
	path string
	// TimestampColumn and EmailColumn name the identity columns;
	// "" means the default header (config.DefaultSheetColumns).
	TimestampColumn string
	EmailColumn     string

	mu sync.Mutex // serialises read-modify-write within this process
}

// NewCSV returns a table backed by the CSV file at path. The file is read on
// each call, not here.
func NewCSV(path string) *CSV { return &CSV{path: path} }

// Path is the file's path.
func (c *CSV) Path() string { return c.path }

var bom = []byte("\ufeff")

// csvFile is a parsed file and the layout to write it back in.
type csvFile struct {
	records [][]string
	bom     bool
	crlf    bool
	mode    os.FileMode
}

func parseCSV(data []byte) ([][]string, error) {
	data = bytes.TrimPrefix(data, bom)
	r := csv.NewReader(bytes.NewReader(data))
	r.FieldsPerRecord = -1 // ragged rows
	// Quotes stay strict: a mis-quoted file would otherwise merge rows
	// silently, and WriteChecked rewrites the whole file.
	return r.ReadAll()
}

func (c *CSV) load() (*csvFile, error) {
	data, err := os.ReadFile(c.path)
	if err != nil {
		return nil, fmt.Errorf("reading sign-up CSV: %w", err)
	}
	st, err := os.Stat(c.path)
	if err != nil {
		return nil, fmt.Errorf("reading sign-up CSV: %w", err)
	}
	recs, err := parseCSV(data)
	if err != nil {
		return nil, fmt.Errorf("parsing sign-up CSV %s: %w", c.path, err)
	}
	return &csvFile{
		records: recs,
		bom:     bytes.HasPrefix(data, bom),
		crlf:    bytes.Contains(data, []byte("\r\n")),
		mode:    st.Mode().Perm(),
	}, nil
}

// ReadCSV parses CSV data into a Table (BOM stripped, CRLF or LF, ragged
// rows allowed). Row numbers count CSV records, header = 1.
func ReadCSV(data []byte) (*Table, error) {
	recs, err := parseCSV(data)
	if err != nil {
		return nil, fmt.Errorf("parsing CSV: %w", err)
	}
	return newTable(recs), nil
}

// Read reads the whole file. Row numbers count CSV records (the header is
// record 1), which differs from line numbers when a cell holds a newline.
func (c *CSV) Read(ctx context.Context) (*Table, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, err := c.load()
	if err != nil {
		return nil, err
	}
	return newTable(f.records), nil
}

// WriteChecked sets the named cells of the row numbered row, after checking
// that it (or, if rows moved, the single row elsewhere) has the identity id.
// It returns the row number actually written. The file is replaced
// atomically (temporary file + rename), keeping its BOM, line endings and
// permissions. It is WriteBatch with one write.
func (c *CSV) WriteChecked(ctx context.Context, row int, id Identity, values map[string]string) (int, error) {
	res, err := c.WriteBatch(ctx, []Write{{Row: row, ID: id, Values: values}})
	if err != nil {
		return 0, err
	}
	return res[0].Row, res[0].Err
}

// WriteBatch reads the file once, locates each write's row by identity as
// WriteChecked does, and writes every located row in one atomic replacement
// of the file. Problems of a single write (row gone or ambiguous, unknown
// column) are reported in that write's WriteResult and do not stop the
// others; several writes that locate the same row all fail with
// ErrAmbiguousRow and none of them is written. Results are in the order of
// writes. When no write is located the file is left untouched.
//
// The error is for the batch as a whole (the file could not be read, parsed
// or replaced, or ctx ended first): then results are nil and the file is
// unchanged.
//
// Calls on one *CSV are serialised, so concurrent WriteBatch and
// WriteChecked calls lose no write. Separate *CSV values or processes
// writing the same file are not coordinated.
func (c *CSV) WriteBatch(ctx context.Context, writes []Write) ([]WriteResult, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(writes) == 0 {
		return []WriteResult{}, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := ctx.Err(); err != nil { // it may have ended while waiting
		return nil, err
	}
	f, err := c.load()
	if err != nil {
		return nil, err
	}
	t := newTable(f.records)
	cols := identityCols{c.TimestampColumn, c.EmailColumn}.orDefault()
	results, targets := plan(t, cols, writes, c.path)
	if len(targets) == 0 {
		return results, nil
	}
	for _, tg := range targets {
		rec := f.records[tg.row-1]
		for i, v := range tg.cells {
			for len(rec) <= i {
				rec = append(rec, "")
			}
			rec[i] = v
		}
		f.records[tg.row-1] = rec
	}
	if err := c.replace(f); err != nil {
		return nil, fmt.Errorf("writing %s of %s: %w", rowsText(targets), c.path, err)
	}
	return results, nil
}

func (c *CSV) replace(f *csvFile) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(c.path), "."+filepath.Base(c.path)+".*.tmp")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if f.bom {
		if _, err := tmp.Write(bom); err != nil {
			return err
		}
	}
	w := csv.NewWriter(tmp)
	w.UseCRLF = f.crlf
	if err := w.WriteAll(f.records); err != nil {
		return err
	}
	if err := tmp.Chmod(f.mode); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), c.path)
}
