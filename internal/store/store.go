// Package store keeps Kaizen's state: set-password tokens, the mail outbox,
// the reminders ledger, the audit trail, named locks and each project's
// quota record. Two backends sit behind one interface — a SQLite file (the
// single-host default) and PostgreSQL (for several setpass or reminders
// hosts on one database) — and one conformance suite (storetest) holds both
// to the same behaviour.
//
// The store never reads a clock: callers pass "now", so expiry, leases and
// backoff are testable with an injected clock.
package store

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors. Both backends map their driver errors onto these.
var (
	// ErrNotFound: no such token, message or ledger key. (Locks report a
	// missing lock as ErrConflict: it is not held by the caller.)
	ErrNotFound = errors.New("store: not found")
	// ErrConflict: the change lost a race or breaks a uniqueness rule
	// (token already used, lock held by another owner, lease lost).
	ErrConflict = errors.New("store: conflict")
)

// Store is everything Kaizen persists. Implementations are safe for
// concurrent use by many goroutines and by several processes.
type Store interface {
	Tokens
	PINs
	Outbox
	Ledger
	Audit
	Locks
	QuotaRecords
	Identity
	WriteBacks
	// Ping checks that the database answers (for /healthz).
	Ping(ctx context.Context) error
	Close() error
}

// Token is a set-password link as stored. Nothing in it is a usable
// credential on its own: the link's token is kept only as a hash, the
// temporary password only sealed under a key derived from that token, and
// the PIN only as a keyed HMAC.
type Token struct {
	Hash           []byte // SHA-256 of the token in the link; the key
	UserID         string // Keystone user ID; at most one live token per user
	PINHMAC        []byte
	SealedPassword []byte // may be empty (password reset without a temporary password)
	Purpose        string // e.g. "welcome", "reset"
	CreatedAt      time.Time
	ExpiresAt      time.Time
	Attempts       int        // PIN attempts counted since issue or the last correct PIN
	LockedAt       *time.Time // set by LockToken after the last allowed attempt failed
	UsedAt         *time.Time
}

// Tokens stores set-password tokens.
type Tokens interface {
	// PutToken stores t as the user's only token: any earlier token of the
	// same user is deleted, so re-issuing invalidates the old link and resets
	// the attempt counter.
	PutToken(ctx context.Context, t Token) error
	// GetToken returns the token with this hash, used or not; ErrNotFound.
	GetToken(ctx context.Context, hash []byte) (Token, error)
	// GetTokenByUser returns the user's token; ErrNotFound.
	GetTokenByUser(ctx context.Context, userID string) (Token, error)
	// RecordAttempt atomically counts one PIN attempt on a live token (not
	// used, not expired at now, not locked) that has had fewer than max
	// attempts, before the PIN is checked. It returns the count after this
	// attempt and whether this is the last one allowed; if its PIN is wrong
	// the caller locks the token with LockToken. ErrNotFound for an unknown
	// hash; ErrConflict for a token that is used, expired, locked or out of
	// attempts — so no attempt past max is ever counted, even if the caller
	// died before locking.
	RecordAttempt(ctx context.Context, hash []byte, now time.Time, max int) (attempts int, last bool, err error)
	// LockToken locks a token at now after its last attempt failed. Locking
	// a locked token keeps the first time. ErrNotFound for an unknown hash.
	LockToken(ctx context.Context, hash []byte, now time.Time) error
	// ResetAttempts sets the count back to zero after a correct PIN, for
	// the paths that stop before ConsumeToken (which clears it itself).
	// It leaves a lock in place. ErrNotFound for an unknown hash.
	ResetAttempts(ctx context.Context, hash []byte) error
	// ConsumeToken marks a live token used at now and clears its attempt
	// count (the PIN was right). Exactly one of any number
	// of concurrent callers succeeds; the others get ErrConflict (also for a
	// token already used, expired or locked). ErrNotFound for an unknown hash.
	ConsumeToken(ctx context.Context, hash []byte, now time.Time) error
	// ReleaseToken undoes ConsumeToken: the token consumed at usedAt becomes
	// live again with no attempts counted, for when the password could not be
	// set for a reason the user can fix. It succeeds only while the token is
	// still the one consumed at that instant; ErrConflict otherwise (and
	// ErrNotFound when a re-issue has replaced it).
	ReleaseToken(ctx context.Context, hash []byte, usedAt time.Time) error
	// PurgeTokens deletes tokens that expired or were used before cutoff and
	// returns how many.
	PurgeTokens(ctx context.Context, cutoff time.Time) (int, error)
	// PendingTokens lists unused, unlocked tokens created before
	// createdBefore, oldest first, at most limit (0: no limit), for the link
	// reminders.
	PendingTokens(ctx context.Context, createdBefore time.Time, limit int) ([]Token, error)
}

// PINs keeps each user's PIN on file: after a user's first password is set
// through a link, setpass keeps that link's PIN HMAC (keyed by the server
// secret and the user ID, never the PIN itself), so that later password
// resets are PIN-gated without the sign-up sheet. A helpdesk that has
// verified the person may replace it.
type PINs interface {
	// PutPIN stores pinHMAC as the user's PIN on file at now, replacing any
	// earlier one (the last writer wins).
	PutPIN(ctx context.Context, userID string, pinHMAC []byte, now time.Time) error
	// GetPIN returns the user's PIN HMAC on file; ErrNotFound when none.
	GetPIN(ctx context.Context, userID string) ([]byte, error)

	// Guessing is bounded per user, across all their links (pinguard.go).

	// RecordPINFailure counts a wrong PIN for the user at now, whichever
	// link it was typed on, and returns how many were counted in the
	// window (now-window, now], this one included. Concurrent callers, in
	// any process, get distinct counts.
	RecordPINFailure(ctx context.Context, userID string, now time.Time, window time.Duration) (int, error)
	// LockPIN locks the user's PIN at now. It returns when the PIN was
	// locked and whether this call locked it: a PIN locked already keeps
	// its first time, so exactly one of concurrent lockers gets true.
	LockPIN(ctx context.Context, userID string, now time.Time) (lockedAt time.Time, locked bool, err error)
	// PINLock reports whether the user's PIN is locked, and since when.
	PINLock(ctx context.Context, userID string) (lockedAt time.Time, locked bool, err error)
	// ResetPIN is the helpdesk's unlock: in one write it stores pinHMAC as
	// the user's PIN on file at now, and clears the lock and the count.
	ResetPIN(ctx context.Context, userID string, pinHMAC []byte, now time.Time) error
}

// MessageStatus is where a queued message stands.
type MessageStatus string

const (
	StatusPending   MessageStatus = "pending"   // waiting for its next attempt
	StatusSending   MessageStatus = "sending"   // claimed by a sender under a lease
	StatusSent      MessageStatus = "sent"      // delivered to the mail server
	StatusAbandoned MessageStatus = "abandoned" // gave up: max attempts or a permanent failure
)

// Message is one queued mail.
type Message struct {
	ID   int64
	Key  string // idempotency key, e.g. "welcome:<user-id>"; unique
	Kind string // template kind, e.g. "welcome"
	From string
	To   []string
	// Body is the message as the mail layer stored it (sealed there, never
	// plaintext); the store deletes it when the message is sent or
	// abandoned, and then returns it empty.
	Body          []byte
	Status        MessageStatus
	Attempts      int // delivery attempts: Claim counts one each time it leases the message
	NextAttemptAt time.Time
	LeaseUntil    *time.Time
	Claim         string // who holds the lease; changes on every claim
	LastError     string // never holds a secret: mail server replies only
	CreatedAt     time.Time
	SentAt        *time.Time
}

// Outbox queues mail so that none is lost: enqueue, claim under a lease,
// then mark sent or failed. A sender that dies after claiming leaves the
// message to be claimed again when the lease expires (at-least-once).
type Outbox interface {
	// Enqueue stores m (Key, Kind, From, To, Body; NextAttemptAt defaults to
	// CreatedAt) unless a message with the same Key exists. It returns the
	// message's ID and whether it was created now.
	Enqueue(ctx context.Context, m Message) (id int64, created bool, err error)
	// Claim takes up to limit messages that are due at now — pending with
	// NextAttemptAt <= now, or sending with an expired lease — and leases
	// them to claim until now+lease. Concurrent claimers never get the same
	// message under the same lease.
	Claim(ctx context.Context, now time.Time, lease time.Duration, claim string, limit int) ([]Message, error)
	// MarkSent records the delivery of the given messages, deleting their
	// bodies (the metadata stays), in one write, so
	// a bulk sender need not pay a commit per message. It returns the IDs it
	// did not mark because they are no longer leased to claim (the lease
	// ran out and another sender took them, they were already marked, or
	// they do not exist); err is for database failures only.
	MarkSent(ctx context.Context, claim string, now time.Time, ids ...int64) (lost []int64, err error)
	// MarkFailed records a failed attempt with the server's reply. With
	// abandon, the message is given up and its body deleted; otherwise it
	// waits until next. ErrConflict when the lease was lost.
	MarkFailed(ctx context.Context, id int64, claim string, now time.Time, lastError string, next time.Time, abandon bool) error
	// GetMessage returns one message by ID; ErrNotFound.
	GetMessage(ctx context.Context, id int64) (Message, error)
	// MessageByKey returns the message queued under key (compared exactly:
	// case-sensitive, no prefix match), or an error wrapping ErrNotFound.
	MessageByKey(ctx context.Context, key string) (Message, error)
	// Messages lists messages in the given statuses (all when none), oldest
	// first, at most limit (0: no limit).
	Messages(ctx context.Context, limit int, statuses ...MessageStatus) ([]Message, error)
	// OutboxCounts counts messages by status.
	OutboxCounts(ctx context.Context) (map[MessageStatus]int, error)
	// PurgeMessages deletes sent and abandoned messages last changed
	// before cutoff and returns how many. Their keys may then be queued
	// again, so cutoff must lie past any re-run that relies on them.
	PurgeMessages(ctx context.Context, cutoff time.Time) (int, error)
}

// Ledger remembers which reminders were sent, so that none goes out twice.
type Ledger interface {
	// RecordOnce stores key (job, subject, period joined by the caller) at
	// now. It returns true the first time and false for a key already
	// recorded, across processes.
	RecordOnce(ctx context.Context, key string, now time.Time) (bool, error)
	// Recorded reports whether key is recorded and when.
	Recorded(ctx context.Context, key string) (time.Time, bool, error)
	// Forget removes key (to undo a reservation whose mail could not even
	// be queued). ErrNotFound when absent.
	Forget(ctx context.Context, key string) error
}

// Event is one audit record: who changed what, when, for which row.
type Event struct {
	ID      int64
	At      time.Time
	Actor   string            // the admin or service account
	Action  string            // e.g. "project.create", "role.assign"
	Target  string            // e.g. the project or user ID
	Source  string            // e.g. "sheet:<id>/<worksheet> row <timestamp>|<email>"
	Details map[string]string // never secrets
}

// Audit is the append-only audit trail.
type Audit interface {
	AppendEvent(ctx context.Context, e Event) (int64, error)
	// Events lists events at or after since, oldest first, at most limit
	// (0: no limit), optionally only for one target ("" for all).
	Events(ctx context.Context, since time.Time, target string, limit int) ([]Event, error)
}

// Locks are named leases that keep two runs off the same work (two
// addusers imports of one sheet, two replicas running one job).
type Locks interface {
	// AcquireLock takes name for owner until now+ttl. It succeeds when the
	// lock is free, expired, or already held by owner (which extends it);
	// ErrConflict when another owner holds it.
	AcquireLock(ctx context.Context, name, owner string, now time.Time, ttl time.Duration) error
	// ReleaseLock frees name if owner holds it; ErrConflict otherwise.
	ReleaseLock(ctx context.Context, name, owner string) error
	// LockHolder is name's owner and the end of its lease (which may have
	// passed); ErrNotFound when nobody holds it.
	LockHolder(ctx context.Context, name string) (owner string, until time.Time, err error)
}
