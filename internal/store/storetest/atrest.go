package storetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/kaizen-onboard/kaizen/internal/store"
)

// testBodyDeleted: a message's body goes when it is sent or abandoned, by
// every read path; its metadata stays, and so does the body of any message
// still to be delivered.
func testBodyDeleted(t *testing.T, s store.Store) {
	c := ctx(t)
	now := base()
	type finish func(id int64, claim string) error
	sent := func(id int64, claim string) error {
		lost, err := s.MarkSent(c, claim, now.Add(time.Second), id)
		if err == nil && len(lost) > 0 {
			err = fmt.Errorf("lost %v", lost)
		}
		return err
	}
	failed := func(abandon bool) finish {
		return func(id int64, claim string) error {
			return s.MarkFailed(c, id, claim, now.Add(time.Second), "550 no such user", now.Add(time.Hour), abandon)
		}
	}
	tests := []struct {
		name     string
		finish   finish
		status   store.MessageStatus
		keepBody bool
	}{
		{"sent", sent, store.StatusSent, false},
		{"abandoned", failed(true), store.StatusAbandoned, false},
		{"failed, to be retried", failed(false), store.StatusPending, true},
	}
	// Not due during the test, so no claim below takes it.
	by := message("bystander", now)
	by.NextAttemptAt = now.Add(365 * 24 * time.Hour)
	bystander := enqueue(t, s, by)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := message("body-"+tc.name, now)
			id := enqueue(t, s, m)
			claim := "sender-" + tc.name
			claimOne(t, s, now, time.Minute, claim, id)
			ok(t, "finishing", tc.finish(id, claim))

			var reads []store.Message
			reads = append(reads, must(s.GetMessage(c, id))(t, "GetMessage"))
			reads = append(reads, must(s.MessageByKey(c, m.Key))(t, "MessageByKey"))
			for _, l := range must(s.Messages(c, 0))(t, "Messages") {
				if l.ID == id {
					reads = append(reads, l)
				}
			}
			if len(reads) != 3 {
				t.Fatalf("Messages does not list message %d", id)
			}
			for i, got := range reads {
				if tc.keepBody != (string(got.Body) == string(m.Body)) || (!tc.keepBody && len(got.Body) != 0) {
					t.Errorf("read %d: body %q; want kept: %v", i, got.Body, tc.keepBody)
				}
				// The metadata the idempotency check and the audit need.
				if got.Key != m.Key || got.Kind != m.Kind || got.From != m.From || !slices.Equal(got.To, m.To) ||
					got.Status != tc.status || got.Attempts != 1 || !got.CreatedAt.Equal(m.CreatedAt) {
					t.Errorf("read %d: metadata %+v lost", i, got)
				}
			}
			if !tc.keepBody && tc.status == store.StatusAbandoned && reads[0].LastError != "550 no such user" {
				t.Errorf("last error %q lost", reads[0].LastError)
			}
			if tc.status == store.StatusSent && (reads[0].SentAt == nil || !reads[0].SentAt.Equal(now.Add(time.Second))) {
				t.Errorf("sent time %v lost", reads[0].SentAt)
			}
			// Still the message of its key: queuing it again does nothing.
			if id2, created := must2(s.Enqueue(c, message(m.Key, now.Add(time.Hour))))(t, "Enqueue again"); created || id2 != id {
				t.Errorf("Enqueue of a finished key = (%d, %v), want (%d, false)", id2, created, id)
			}
		})
	}
	if got := must(s.GetMessage(c, bystander))(t, "GetMessage"); string(got.Body) != string(message("bystander", now).Body) {
		t.Errorf("a pending message's body is now %q", got.Body)
	}
}

// testPurgeMessages: finished messages older than the cutoff go, metadata
// and all; unfinished ones stay whatever their age.
func testPurgeMessages(t *testing.T, s store.Store) {
	c := ctx(t)
	now := base()
	old, recent := now.Add(-100*24*time.Hour), now.Add(-time.Hour)
	finished := func(key string, at time.Time, abandon bool) int64 {
		id := enqueue(t, s, message(key, at))
		claimOne(t, s, at, time.Minute, "sender-"+key, id)
		if abandon {
			ok(t, "MarkFailed", s.MarkFailed(c, id, "sender-"+key, at, "550 refused", at, true))
		} else {
			lostIDs(t, "MarkSent", s, "sender-"+key, at, nil, id)
		}
		return id
	}
	oldSent := finished("old-sent", old, false)
	oldAbandoned := finished("old-abandoned", old, true)
	recentSent := finished("recent-sent", recent, false)
	pending := message("old-pending", old)
	pending.NextAttemptAt = now.Add(time.Hour) // not due for the claims below
	oldPending := enqueue(t, s, pending)
	oldRetrying := enqueue(t, s, message("old-retrying", old))
	claimOne(t, s, old, time.Minute, "retrier", oldRetrying)
	ok(t, "MarkFailed", s.MarkFailed(c, oldRetrying, "retrier", old, "450 later", now.Add(time.Hour), false))
	oldSending := enqueue(t, s, message("old-sending", old))
	claimOne(t, s, old, 365*24*time.Hour, "slow", oldSending)

	cutoff := now.Add(-90 * 24 * time.Hour)
	if n := must(s.PurgeMessages(c, cutoff))(t, "PurgeMessages"); n != 2 {
		t.Errorf("PurgeMessages purged %d, want 2", n)
	}
	for _, id := range []int64{oldSent, oldAbandoned} {
		_, err := s.GetMessage(c, id)
		isErr(t, fmt.Sprintf("GetMessage(%d) after purge", id), err, store.ErrNotFound)
	}
	_, err := s.MessageByKey(c, "old-sent")
	isErr(t, "MessageByKey after purge", err, store.ErrNotFound)
	for _, id := range []int64{recentSent, oldPending, oldRetrying, oldSending} {
		must(s.GetMessage(c, id))(t, fmt.Sprintf("GetMessage(%d), not to be purged", id))
	}
	counts := must(s.OutboxCounts(c))(t, "OutboxCounts")
	if counts[store.StatusSent] != 1 || counts[store.StatusAbandoned] != 0 || counts[store.StatusPending] != 2 || counts[store.StatusSending] != 1 {
		t.Errorf("counts after purge = %v", counts)
	}
	t.Run("cutoff is exclusive", func(t *testing.T) {
		if n := must(s.PurgeMessages(c, recent))(t, "PurgeMessages"); n != 0 {
			t.Errorf("purged %d messages changed exactly at the cutoff", n)
		}
		if n := must(s.PurgeMessages(c, recent.Add(time.Microsecond)))(t, "PurgeMessages"); n != 1 {
			t.Errorf("purged %d, want the recent sent one", n)
		}
	})
	t.Run("nothing to purge", func(t *testing.T) {
		if n := must(s.PurgeMessages(c, now))(t, "PurgeMessages"); n != 0 {
			t.Errorf("purged %d", n)
		}
	})
	t.Run("a purged key can be queued again", func(t *testing.T) {
		if _, created := must2(s.Enqueue(c, message("old-sent", now)))(t, "Enqueue"); !created {
			t.Error("the purged key is still taken")
		}
	})
}
