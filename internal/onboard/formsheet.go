package onboard

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/kaizen-onboard/kaizen/internal/config"
	"github.com/kaizen-onboard/kaizen/internal/sheet"
)

// ColumnAdder is a sheet that can add missing columns to its header row
// (sheet.Google, sheet.CSV).
type ColumnAdder interface {
	AddColumns(ctx context.Context, names []string) ([]string, error)
}

// addWriteBackColumns gives a sheet without them (a Google Form's
// response sheet) the columns kaizen writes outcomes to: Status, Processed
// At, User ID and Project ID, after the last used column. It returns the
// table to work on: re-read once columns were added; in a dry run, t with
// the columns it would add appended in memory only. A sheet that cannot
// add columns is left as it is (parsing then names what is missing).
func addWriteBackColumns(ctx context.Context, s Sheet, t *sheet.Table, opts Options, sum *Summary) (*sheet.Table, error) {
	c := opts.Request.Columns
	var missing []string
	for _, name := range []string{c.Status, c.ProcessedAt, c.UserID, c.ProjectID} {
		if _, ok := t.Index(name); !ok && !slices.ContainsFunc(missing, func(m string) bool { return config.HeaderKey(m) == config.HeaderKey(name) }) {
			missing = append(missing, name)
		}
	}
	adder, ok := s.(ColumnAdder)
	if len(missing) == 0 || !ok || len(t.Header) == 0 {
		return t, nil
	}
	if opts.DryRun {
		header := slices.Clone(t.Header)
		for len(header) > 0 && strings.TrimSpace(header[len(header)-1]) == "" {
			header = header[:len(header)-1]
		}
		sum.AddedColumns = missing
		return &sheet.Table{Header: append(header, missing...), Rows: t.Rows}, nil
	}
	added, err := adder.AddColumns(ctx, missing)
	if err != nil {
		return nil, fmt.Errorf("adding the write-back columns: %w", err)
	}
	sum.AddedColumns = added
	opts.Logger.Info("added write-back columns to the header row", "columns", added)
	nt, err := s.Read(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the requests after adding columns: %w", err)
	}
	return nt, nil
}
