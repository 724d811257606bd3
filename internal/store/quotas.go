package store

import (
	"context"
	"time"
)

// QuotaRecord is what one project's quotas should be, as kaizen last set
// them: by import (preset and overrides), by an approved quota request, or
// by reverting a temporary quota. addusers validate compares the cloud
// with Quotas; addusers quotas --revert-expired returns a project whose
// EndsOn has passed to Previous.
type QuotaRecord struct {
	ProjectID string
	// Quotas are the values kaizen set, by preset key ("cores", "ram" in
	// MiB, ...; -1 unlimited). Keys it never set are not kaizen's to check.
	Quotas map[string]int64
	// Preset names the preset Quotas started from (an import row's preset,
	// a request's), "" for none; overrides may differ from it.
	Preset string
	// EndsOn is a temporary quota's last day (midnight UTC); nil for a
	// permanent one. Previous holds the quotas it returns to after that
	// day; nil when permanent.
	EndsOn   *time.Time
	Previous map[string]int64
	// ChangedAt is when Quotas last changed (auto-approval waits
	// days_between_autoapprove after it).
	ChangedAt time.Time
	// Change identifies the change that set Quotas (e.g. the request row's
	// key), and Before the quotas before it: a run that died after the
	// change finds both again.
	Change string
	Before map[string]int64
}

// QuotaRecords keeps one QuotaRecord per project.
type QuotaRecords interface {
	// PutQuotaRecord stores r as the project's record, replacing any
	// earlier one (the last writer wins).
	PutQuotaRecord(ctx context.Context, r QuotaRecord) error
	// GetQuotaRecord returns the project's record; ErrNotFound when none.
	GetQuotaRecord(ctx context.Context, projectID string) (QuotaRecord, error)
	// DeleteQuotaRecord removes the project's record; ErrNotFound when
	// none.
	DeleteQuotaRecord(ctx context.Context, projectID string) error
	// EndedQuotaRecords lists the temporary records whose EndsOn is before
	// day (the first day they no longer hold), earliest end first.
	EndedQuotaRecords(ctx context.Context, day time.Time) ([]QuotaRecord, error)
}
