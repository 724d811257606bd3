package app

import (
	"context"
	"errors"
	"time"

	"github.com/kaizen-onboard/kaizen/internal/store"
)

// errNoStoreWrite: a dry run without a store tried to write.
var errNoStoreWrite = errors.New("no state store yet, and a dry run creates none")

// noStore is the state store of a dry run when none exists yet: it holds
// no record, no event and no lock, and refuses writes (a dry run makes
// none). It answers exactly as an empty store would.
type noStore struct{}

func (noStore) GetQuotaRecord(context.Context, string) (store.QuotaRecord, error) {
	return store.QuotaRecord{}, store.ErrNotFound
}

func (noStore) EndedQuotaRecords(context.Context, time.Time) ([]store.QuotaRecord, error) {
	return nil, nil
}

func (noStore) Events(context.Context, time.Time, string, int) ([]store.Event, error) {
	return nil, nil
}

func (noStore) PutQuotaRecord(context.Context, store.QuotaRecord) error { return errNoStoreWrite }
func (noStore) DeleteQuotaRecord(context.Context, string) error         { return errNoStoreWrite }
func (noStore) AppendEvent(context.Context, store.Event) (int64, error) { return 0, errNoStoreWrite }
func (noStore) AcquireLock(context.Context, string, string, time.Time, time.Duration) error {
	return errNoStoreWrite
}
func (noStore) ReleaseLock(context.Context, string, string) error { return errNoStoreWrite }

// LockHolder: with no store no lock is held.
func (noStore) LockHolder(context.Context, string) (string, time.Time, error) {
	return "", time.Time{}, store.ErrNotFound
}
