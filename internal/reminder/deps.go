package reminder

import (
	"context"
	netmail "net/mail"
	"time"

	"github.com/kaizen-onboard/kaizen/internal/sheet"
)

// The small interfaces jobs share. Each job kind declares whatever else it
// needs next to its constructor.

// Mailer queues a message under an idempotency key (mail.Outbox).
type Mailer interface {
	Queue(ctx context.Context, key, kind string, to []netmail.Address, data any) (id int64, created bool, err error)
}

// Sheet is the sign-up worksheet (sheet.Google or sheet.CSV).
type Sheet interface {
	Read(ctx context.Context) (*sheet.Table, error)
	WriteBatch(ctx context.Context, writes []sheet.Write) ([]sheet.WriteResult, error)
}

// Ledger records each reminder once (store.Ledger).
type Ledger interface {
	RecordOnce(ctx context.Context, key string, now time.Time) (bool, error)
	Recorded(ctx context.Context, key string) (time.Time, bool, error)
	Forget(ctx context.Context, key string) error
}
