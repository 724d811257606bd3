package onboard

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/kaizen-onboard/kaizen/internal/sheet"
)

// ErrOtherStore: the sheet is marked as imported with another state store.
var ErrOtherStore = errors.New("the sheet is imported with another state store")

// StoreMarker is a sheet that records which store imports it (sheet.Google
// in a hidden worksheet, sheet.CSV in a sidecar file).
type StoreMarker interface {
	StoreMarker(ctx context.Context) (sheet.StoreMarker, bool, error)
	SetStoreMarker(ctx context.Context, m sheet.StoreMarker) error
}

// claimSheet makes sure the sheet is this store's: a sheet without a
// marker is claimed; one marked with another store stops the run, naming
// both, unless opts.TakeOver moves it here. A dry run only checks. Without
// opts.StoreID, or a sheet that cannot carry a marker, nothing is checked.
//
// Two stores claiming an unmarked sheet at the same moment can both win;
// the re-read after writing narrows that to the two runs' reads and writes
// interleaving exactly (a window of one API call).
func claimSheet(ctx context.Context, s Sheet, opts Options) error {
	mk, ok := s.(StoreMarker)
	if !ok || opts.StoreID == "" {
		return nil
	}
	cur, found, err := mk.StoreMarker(ctx)
	if err != nil {
		return fmt.Errorf("reading the sheet's store marker: %w", err)
	}
	if found && cur.StoreID == opts.StoreID {
		return nil
	}
	if found && !opts.TakeOver {
		return otherStore(opts, cur)
	}
	if opts.DryRun {
		return nil
	}
	if found {
		opts.Logger.Warn("taking the sheet over from another state store", "source", opts.Source,
			"from_store", cur.Store, "from_store_id", cur.StoreID, "to_store", opts.StoreDesc, "to_store_id", opts.StoreID)
	}
	mine := sheet.StoreMarker{StoreID: opts.StoreID, Store: opts.StoreDesc, At: opts.Now().UTC()}
	if err := mk.SetStoreMarker(ctx, mine); err != nil {
		return fmt.Errorf("marking the sheet with this run's state store: %w", err)
	}
	after, found, err := mk.StoreMarker(ctx)
	if err != nil {
		return fmt.Errorf("reading the sheet's store marker back: %w", err)
	}
	if found && after.StoreID != opts.StoreID {
		return otherStore(opts, after) // another store claimed it at the same moment
	}
	return nil
}

func otherStore(opts Options, cur sheet.StoreMarker) error {
	when := ""
	if !cur.At.IsZero() {
		when = ", marked " + cur.At.UTC().Format("2006-01-02 15:04 UTC")
	}
	return fmt.Errorf("%w: %s is marked as imported with the store %s (ID %s%s), and this run uses %s (ID %s). "+
		"Two stores mean two locks and two outboxes, and users mailed two links: use the same [store] url everywhere "+
		"(config check prints it), or run import --take-over to move the sheet to this store",
		ErrOtherStore, opts.Source, cur.Store, cur.StoreID, when, opts.StoreDesc, opts.StoreID)
}

// DescribeStore names a store URL for a person and the sheet marker: a
// SQLite file by its path and this host's name, a database by its host and
// name, never its user, password or parameters.
func DescribeStore(rawURL string) string {
	scheme, rest, ok := strings.Cut(rawURL, "://")
	if !ok {
		return "an unnamed store"
	}
	if scheme == "sqlite" {
		host, _ := os.Hostname()
		path, _, _ := strings.Cut(rest, "?")
		return "sqlite://" + path + " on host " + host
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return scheme + " database"
	}
	return u.Scheme + "://" + u.Host + u.Path
}
