// Package storetest is the conformance suite for store.Store backends: every
// backend runs [Run] (behaviour, and races between goroutines) and
// [RunProcesses] (races between OS processes) and must pass them unchanged.
//
// RunProcesses re-executes the test binary, so the backend's test package
// must also declare
//
//	func TestHelperProcess(t *testing.T) { storetest.HelperProcess(t) }
package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/kaizen-onboard/kaizen/internal/store"
)

// Run runs every conformance test, each in a parallel subtest on a fresh,
// empty store from open. Run closes the stores.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"Token/PutGet", testTokenPutGet},
		{"Token/Replace", testTokenReplace},
		{"Token/NotFound", testTokenNotFound},
		{"Token/RecordAttempt", testRecordAttempt},
		{"Token/ResetAttempts", testResetAttempts},
		{"Token/Consume", testConsume},
		{"Token/Purge", testPurge},
		{"Token/Pending", testPending},
		{"PIN/PutGet", testPINPutGet},
		{"PIN/Replace", testPINReplace},
		{"PIN/NotFound", testPINNotFound},
		{"PIN/FailureWindow", testPINFailureWindow},
		{"PIN/Lock", testPINLock},
		{"Outbox/Enqueue", testEnqueue},
		{"Outbox/Claim", testClaim},
		{"Outbox/ClaimLimitOrder", testClaimLimitOrder},
		{"Outbox/MarkSent", testMarkSent},
		{"Outbox/MarkSentBatch", testMarkSentBatch},
		{"Outbox/LostLease", testLostLease},
		{"Outbox/MarkFailed", testMarkFailed},
		{"Outbox/MessagesCounts", testMessagesCounts},
		{"Outbox/BodyDeleted", testBodyDeleted},
		{"Outbox/PurgeMessages", testPurgeMessages},
		{"Ledger", testLedger},
		{"Audit", testAudit},
		{"Locks", testLocks},
		{"Locks/Holder", testLockHolder},
		{"Lease/Renewed", testLeaseRenewed},
		{"Lease/Stolen", testLeaseStolen},
		{"Lease/Lapsed", testLeaseLapsed},
		{"Lease/RenewalsFail", testLeaseRenewalsFail},
		{"Lease/ParentCancelled", testLeaseParentCancelled},
		{"Lease/HeldElsewhere", testLeaseHeldElsewhere},
		{"Lease/Keeping", testLeaseKeeping},
		{"QuotaRecord/PutGet", testQuotaRecordPutGet},
		{"QuotaRecord/Ended", testQuotaRecordEnded},
		{"WriteBacks", testWriteBacks},
		{"Ping", testPing},
		{"StoreID", testStoreID},
		{"Race/StoreID", testRaceStoreID},
		{"Race/ConsumeToken", testRaceConsume},
		{"Race/RecordAttempt", testRaceRecordAttempt},
		{"Race/PutToken", testRacePutToken},
		{"Race/PutPIN", testRacePutPIN},
		{"Race/RecordPINFailure", testRaceRecordPINFailure},
		{"Race/LockPIN", testRaceLockPIN},
		{"Race/Enqueue", testRaceEnqueue},
		{"Race/Claim", testRaceClaim},
		{"Race/RecordOnce", testRaceRecordOnce},
		{"Race/AcquireLock", testRaceAcquireLock},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := open(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("closing store: %v", err)
				}
			})
			tc.fn(t, s)
		})
	}
}

// base is the suite's "now": in the future, with microseconds, so that a
// backend that drops sub-second precision or reads the clock is caught.
func base() time.Time { return time.Date(2031, 3, 4, 5, 6, 7, 891234000, time.UTC) }

// tokenFor returns a token for user created at created and valid for a day.
func tokenFor(user string, created time.Time) store.Token {
	h := sha256.Sum256([]byte("token of " + user + " at " + created.String()))
	return store.Token{
		Hash:           h[:],
		UserID:         user,
		PINHMAC:        []byte("hmac-" + user),
		SealedPassword: []byte("sealed-" + user),
		Purpose:        "welcome",
		CreatedAt:      created,
		ExpiresAt:      created.Add(24 * time.Hour),
	}
}

func message(key string, created time.Time) store.Message {
	return store.Message{
		Key:       key,
		Kind:      "welcome",
		From:      "Cloud Support <support@example.org>",
		To:        []string{key + "@example.org", "copy@example.org"},
		Body:      []byte("Subject: " + key + "\r\n\r\nHello.\r\n"),
		CreatedAt: created,
	}
}

// must(f())(t, what) returns f's value, or fails the test with what and f's
// error.
func must[T any](v T, err error) func(t *testing.T, what string) T {
	return func(t *testing.T, what string) T {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return v
	}
}

func ok(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// isErr fails unless err is (wraps) want.
func isErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: error %v, want %v", what, err, want)
	}
}

// micro is how the store returns t: UTC, truncated to microseconds.
func micro(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

func checkTime(t *testing.T, what string, got, want time.Time) {
	t.Helper()
	if !got.Equal(micro(want)) || got.Location() != time.UTC {
		t.Errorf("%s = %v, want %v (UTC)", what, got, micro(want))
	}
}

func checkTimePtr(t *testing.T, what string, got, want *time.Time) {
	t.Helper()
	switch {
	case got == nil && want == nil:
	case got == nil || want == nil:
		t.Errorf("%s = %v, want %v", what, fmtPtr(got), fmtPtr(want))
	default:
		checkTime(t, what, *got, *want)
	}
}

func fmtPtr(p *time.Time) string {
	if p == nil {
		return "nil"
	}
	return p.String()
}

func ptr(t time.Time) *time.Time { return &t }

func checkToken(t *testing.T, got, want store.Token) {
	t.Helper()
	for _, f := range []struct {
		name      string
		got, want []byte
	}{
		{"Hash", got.Hash, want.Hash},
		{"PINHMAC", got.PINHMAC, want.PINHMAC},
		{"SealedPassword", got.SealedPassword, want.SealedPassword},
	} {
		if !bytes.Equal(f.got, f.want) {
			t.Errorf("token %s = %x, want %x", f.name, f.got, f.want)
		}
	}
	if got.UserID != want.UserID || got.Purpose != want.Purpose || got.Attempts != want.Attempts {
		t.Errorf("token (user, purpose, attempts) = (%q, %q, %d), want (%q, %q, %d)",
			got.UserID, got.Purpose, got.Attempts, want.UserID, want.Purpose, want.Attempts)
	}
	checkTime(t, "token CreatedAt", got.CreatedAt, want.CreatedAt)
	checkTime(t, "token ExpiresAt", got.ExpiresAt, want.ExpiresAt)
	checkTimePtr(t, "token LockedAt", got.LockedAt, want.LockedAt)
	checkTimePtr(t, "token UsedAt", got.UsedAt, want.UsedAt)
}

// race runs fn(i) for i in [0, n) in goroutines released together, and
// returns the errors by i.
func race(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	start := make(chan struct{})
	done := make(chan struct{})
	for i := range n {
		go func() {
			defer func() { done <- struct{}{} }()
			<-start
			errs[i] = fn(i)
		}()
	}
	close(start)
	for range n {
		<-done
	}
	return errs
}

// ctx is the test's context, with a deadline so that a wedged backend
// fails the test instead of hanging it.
func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

func userN(i int) string { return fmt.Sprintf("user-%03d", i) }
