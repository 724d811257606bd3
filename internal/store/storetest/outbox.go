package storetest

import (
	"bytes"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/kaizen-onboard/kaizen/internal/store"
)

// enqueue queues m and fails unless it was created.
func enqueue(t *testing.T, s store.Store, m store.Message) int64 {
	t.Helper()
	id, created, err := s.Enqueue(ctx(t), m)
	ok(t, "Enqueue "+m.Key, err)
	if !created {
		t.Fatalf("Enqueue %s: created = false for a new key", m.Key)
	}
	return id
}

// claimOne claims at now and fails unless exactly the message id comes back.
func claimOne(t *testing.T, s store.Store, now time.Time, lease time.Duration, claim string, id int64) store.Message {
	t.Helper()
	got := must(s.Claim(ctx(t), now, lease, claim, 10))(t, "Claim")
	if len(got) != 1 || got[0].ID != id {
		t.Fatalf("Claim by %s at %v returned %v, want message %d", claim, now, ids(got), id)
	}
	return got[0]
}

func ids(ms []store.Message) []int64 {
	out := make([]int64, len(ms))
	for i, m := range ms {
		out[i] = m.ID
	}
	return out
}

func checkMessage(t *testing.T, got, want store.Message) {
	t.Helper()
	if got.ID != want.ID || got.Key != want.Key || got.Kind != want.Kind || got.From != want.From ||
		!slices.Equal(got.To, want.To) || !bytes.Equal(got.Body, want.Body) {
		t.Errorf("message = %d %q %q %q %q %q, want %d %q %q %q %q %q",
			got.ID, got.Key, got.Kind, got.From, got.To, got.Body,
			want.ID, want.Key, want.Kind, want.From, want.To, want.Body)
	}
	if got.Status != want.Status || got.Attempts != want.Attempts || got.Claim != want.Claim ||
		got.LastError != want.LastError {
		t.Errorf("message %d (status, attempts, claim, error) = (%s, %d, %q, %q), want (%s, %d, %q, %q)",
			got.ID, got.Status, got.Attempts, got.Claim, got.LastError,
			want.Status, want.Attempts, want.Claim, want.LastError)
	}
	checkTime(t, "message NextAttemptAt", got.NextAttemptAt, want.NextAttemptAt)
	checkTime(t, "message CreatedAt", got.CreatedAt, want.CreatedAt)
	checkTimePtr(t, "message LeaseUntil", got.LeaseUntil, want.LeaseUntil)
	checkTimePtr(t, "message SentAt", got.SentAt, want.SentAt)
}

func testEnqueue(t *testing.T, s store.Store) {
	c := ctx(t)
	now := base()
	m := message("welcome:alice", now.Add(time.Nanosecond))
	id := enqueue(t, s, m)
	want := m
	want.ID, want.Status, want.NextAttemptAt = id, store.StatusPending, m.CreatedAt
	checkMessage(t, must(s.GetMessage(c, id))(t, "GetMessage"), want)

	t.Run("same key", func(t *testing.T) {
		dup := message("welcome:alice", now.Add(time.Hour))
		dup.Body = []byte("different")
		id2, created, err := s.Enqueue(c, dup)
		ok(t, "Enqueue", err)
		if id2 != id || created {
			t.Errorf("Enqueue of a queued key = (%d, %v), want (%d, false)", id2, created, id)
		}
		checkMessage(t, must(s.GetMessage(c, id))(t, "GetMessage"), want) // unchanged
	})
	t.Run("explicit next attempt", func(t *testing.T) {
		m := message("welcome:bob", now)
		m.NextAttemptAt = now.Add(time.Hour)
		id := enqueue(t, s, m)
		got := must(s.GetMessage(c, id))(t, "GetMessage")
		checkTime(t, "NextAttemptAt", got.NextAttemptAt, m.NextAttemptAt)
	})
	t.Run("invalid", func(t *testing.T) {
		for _, m := range []store.Message{{}, {Key: "k", Kind: "welcome"}} {
			if _, _, err := s.Enqueue(c, m); err == nil {
				t.Errorf("Enqueue(%+v) succeeded", m)
			}
		}
	})
	t.Run("unknown ID", func(t *testing.T) {
		_, err := s.GetMessage(c, id+1000)
		isErr(t, "GetMessage", err, store.ErrNotFound)
	})
	t.Run("by key", func(t *testing.T) {
		got := must(s.MessageByKey(c, "welcome:alice"))(t, "MessageByKey")
		checkMessage(t, got, want)
		checkMessage(t, got, must(s.GetMessage(c, id))(t, "GetMessage"))
	})
	t.Run("by key is exact", func(t *testing.T) {
		longer := message("welcome:alice-2", now)
		longerID := enqueue(t, s, longer)
		if got := must(s.MessageByKey(c, "welcome:alice"))(t, "MessageByKey"); got.ID != id {
			t.Errorf("MessageByKey(welcome:alice) = message %d, want %d", got.ID, id)
		}
		if got := must(s.MessageByKey(c, "welcome:alice-2"))(t, "MessageByKey"); got.ID != longerID {
			t.Errorf("MessageByKey(welcome:alice-2) = message %d, want %d", got.ID, longerID)
		}
		for _, key := range []string{"", "welcome:", "welcome:ali", "welcome:%", "welcome:alice_", "welcome:alice ",
			" welcome:alice", "WELCOME:ALICE", "welcome:nobody"} {
			m, err := s.MessageByKey(c, key)
			isErr(t, fmt.Sprintf("MessageByKey(%q) (got message %d)", key, m.ID), err, store.ErrNotFound)
		}
	})
}

func testClaim(t *testing.T, s store.Store) {
	c := ctx(t)
	now := base()
	lease := 5 * time.Minute
	due := enqueue(t, s, message("due", now))
	later := message("later", now)
	later.NextAttemptAt = now.Add(time.Hour)
	laterID := enqueue(t, s, later)

	got := claimOne(t, s, now, lease, "sender-1", due)
	want := message("due", now)
	want.ID, want.Status, want.Attempts, want.Claim = due, store.StatusSending, 1, "sender-1"
	want.NextAttemptAt, want.LeaseUntil = now, ptr(now.Add(lease))
	checkMessage(t, got, want)
	checkMessage(t, must(s.GetMessage(c, due))(t, "GetMessage"), want)

	t.Run("leased is not due", func(t *testing.T) {
		if got := must(s.Claim(c, now.Add(lease-time.Microsecond), lease, "sender-2", 10))(t, "Claim"); len(got) != 0 {
			t.Errorf("Claim during the lease returned %v, want none", ids(got))
		}
	})
	t.Run("expired lease is claimed again", func(t *testing.T) {
		at := now.Add(lease)
		got := claimOne(t, s, at, 2*time.Hour, "sender-2", due) // held past "later"
		if got.Attempts != 2 || got.Claim != "sender-2" {
			t.Errorf("re-claimed message: attempts %d, claim %q; want 2, sender-2", got.Attempts, got.Claim)
		}
		checkTimePtr(t, "LeaseUntil", got.LeaseUntil, ptr(at.Add(2*time.Hour)))
	})
	t.Run("not due until next attempt", func(t *testing.T) {
		claimOne(t, s, later.NextAttemptAt, lease, "sender-3", laterID)
	})
	t.Run("invalid", func(t *testing.T) {
		for _, limit := range []int{0, -1} {
			if _, err := s.Claim(c, now, lease, "x", limit); err == nil {
				t.Errorf("Claim with limit %d succeeded", limit)
			}
		}
		if _, err := s.Claim(c, now, 0, "x", 1); err == nil {
			t.Error("Claim with no lease succeeded")
		}
	})
}

func testClaimLimitOrder(t *testing.T, s store.Store) {
	c := ctx(t)
	now := base()
	var want []int64
	byAge := make(map[int]int64)
	for _, age := range []int{3, 1, 5, 2, 4} { // minutes overdue, enqueued out of order
		m := message(fmt.Sprintf("overdue-%d", age), now.Add(-time.Hour))
		m.NextAttemptAt = now.Add(-time.Duration(age) * time.Minute)
		byAge[age] = enqueue(t, s, m)
	}
	for age := 5; age >= 1; age-- {
		want = append(want, byAge[age])
	}
	first := must(s.Claim(c, now, time.Minute, "a", 3))(t, "Claim")
	rest := must(s.Claim(c, now, time.Minute, "b", 3))(t, "Claim")
	if got := append(ids(first), ids(rest)...); !slices.Equal(got, want) || len(first) != 3 {
		t.Errorf("Claim (limit 3) twice = %v then %v, want the most overdue first: %v",
			ids(first), ids(rest), want)
	}
}

func testMarkSent(t *testing.T, s store.Store) {
	c := ctx(t)
	now := base()
	id := enqueue(t, s, message("m", now))
	claimOne(t, s, now, time.Minute, "sender", id)

	lostIDs(t, "MarkSent with another claim", s, "intruder", now, []int64{id}, id)
	lostIDs(t, "MarkSent", s, "sender", now.Add(time.Second), nil, id)
	want := message("m", now)
	want.ID, want.Status, want.Attempts, want.Claim = id, store.StatusSent, 1, "sender"
	want.NextAttemptAt, want.SentAt = now, ptr(now.Add(time.Second))
	want.Body = nil // deleted on delivery
	checkMessage(t, must(s.GetMessage(c, id))(t, "GetMessage"), want)

	lostIDs(t, "MarkSent twice", s, "sender", now, []int64{id}, id)
	isErr(t, "MarkFailed after sent", s.MarkFailed(c, id, "sender", now, "x", now, false), store.ErrConflict)
	lostIDs(t, "MarkSent of an unknown ID", s, "sender", now, []int64{id + 1000}, id+1000)
	lostIDs(t, "MarkSent of no ID", s, "sender", now, nil)
	isErr(t, "MarkFailed of an unknown ID", s.MarkFailed(c, id+1000, "sender", now, "x", now, false), store.ErrNotFound)
	if got := must(s.Claim(c, now.Add(time.Hour), time.Minute, "again", 10))(t, "Claim"); len(got) != 0 {
		t.Errorf("Claim of a sent message returned %v", ids(got))
	}
}

func testLostLease(t *testing.T, s store.Store) {
	c := ctx(t)
	now := base()
	id := enqueue(t, s, message("m", now))
	claimOne(t, s, now, time.Minute, "slow", id)
	later := now.Add(time.Minute)
	claimOne(t, s, later, time.Minute, "fast", id)

	lostIDs(t, "MarkSent by the old claim", s, "slow", later, []int64{id}, id)
	isErr(t, "MarkFailed by the old claim",
		s.MarkFailed(c, id, "slow", later, "421 try later", later, false), store.ErrConflict)
	lostIDs(t, "MarkSent by the new claim", s, "fast", later, nil, id)
}

// testMarkSentBatch marks several messages at once; only those still
// leased to the claim are marked.
func testMarkSentBatch(t *testing.T, s store.Store) {
	c := ctx(t)
	now := base()
	var mine []int64
	for i := range 5 {
		mine = append(mine, enqueue(t, s, message(fmt.Sprintf("m%d", i), now)))
	}
	claimed := must(s.Claim(c, now, time.Minute, "sender", 5))(t, "Claim")
	if len(claimed) != 5 {
		t.Fatalf("claimed %d, want 5", len(claimed))
	}
	other := enqueue(t, s, message("other", now))
	claimOne(t, s, now, time.Minute, "someone-else", other)

	lostIDs(t, "MarkSent of five and a stranger's", s, "sender", now, []int64{other}, append(slices.Clone(mine), other)...)
	for _, id := range mine {
		if m := must(s.GetMessage(c, id))(t, "GetMessage"); m.Status != store.StatusSent {
			t.Errorf("message %d is %s, want sent", id, m.Status)
		}
	}
	if m := must(s.GetMessage(c, other))(t, "GetMessage"); m.Status != store.StatusSending {
		t.Errorf("the stranger's message is %s, want still sending", m.Status)
	}
}

// lostIDs calls MarkSent and checks which IDs it reports lost.
func lostIDs(t *testing.T, what string, s store.Store, claim string, now time.Time, want []int64, ids ...int64) {
	t.Helper()
	lost, err := s.MarkSent(ctx(t), claim, now, ids...)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if !slices.Equal(lost, want) {
		t.Errorf("%s: lost %v, want %v", what, lost, want)
	}
}

func testMarkFailed(t *testing.T, s store.Store) {
	c := ctx(t)
	now := base()
	tests := []struct {
		name    string
		abandon bool
		status  store.MessageStatus
	}{
		{"retry", false, store.StatusPending},
		{"abandon", true, store.StatusAbandoned},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id := enqueue(t, s, message(tc.name, now))
			claimOne(t, s, now, time.Minute, "sender-"+tc.name, id)
			next := now.Add(10 * time.Minute)
			ok(t, "MarkFailed", s.MarkFailed(c, id, "sender-"+tc.name, now.Add(time.Second),
				"450 mailbox busy", next, tc.abandon))
			want := message(tc.name, now)
			want.ID, want.Status, want.Attempts, want.Claim = id, tc.status, 1, "sender-"+tc.name
			want.NextAttemptAt, want.LastError = next, "450 mailbox busy"
			if tc.abandon {
				want.Body = nil // deleted when given up
			}
			checkMessage(t, must(s.GetMessage(c, id))(t, "GetMessage"), want)

			claimed := func(at time.Time) bool {
				return slices.Contains(ids(must(s.Claim(c, at, time.Minute, "retrier-"+tc.name, 10))(t, "Claim")), id)
			}
			if claimed(next.Add(-time.Microsecond)) {
				t.Error("claimed before its next attempt")
			}
			if got := claimed(next); got != !tc.abandon {
				t.Errorf("claimed at its next attempt: %v, want %v", got, !tc.abandon)
			}
		})
	}
}

func testMessagesCounts(t *testing.T, s store.Store) {
	c := ctx(t)
	now := base()
	sent := enqueue(t, s, message("sent", now.Add(1*time.Second)))
	sending := enqueue(t, s, message("sending", now.Add(2*time.Second)))
	pending := enqueue(t, s, message("pending", now.Add(3*time.Second)))
	claimed := must(s.Claim(c, now.Add(2*time.Second), time.Hour, "sender", 10))(t, "Claim")
	if !slices.Equal(ids(claimed), []int64{sent, sending}) {
		t.Fatalf("Claim = %v, want %v", ids(claimed), []int64{sent, sending})
	}
	lostIDs(t, "MarkSent", s, "sender", now, nil, sent)

	tests := []struct {
		name     string
		limit    int
		statuses []store.MessageStatus
		want     []int64
	}{
		{"all", 0, nil, []int64{sent, sending, pending}},
		{"limit", 2, nil, []int64{sent, sending}},
		{"one status", 0, []store.MessageStatus{store.StatusSending}, []int64{sending}},
		{"two statuses", 0, []store.MessageStatus{store.StatusPending, store.StatusSent}, []int64{sent, pending}},
		{"none in status", 0, []store.MessageStatus{store.StatusAbandoned}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := must(s.Messages(c, tc.limit, tc.statuses...))(t, "Messages")
			if !slices.Equal(ids(got), tc.want) {
				t.Errorf("Messages(%d, %v) = %v, want %v", tc.limit, tc.statuses, ids(got), tc.want)
			}
		})
	}
	wantCounts := map[store.MessageStatus]int{
		store.StatusPending: 1, store.StatusSending: 1, store.StatusSent: 1, store.StatusAbandoned: 0,
	}
	got := must(s.OutboxCounts(c))(t, "OutboxCounts")
	for st, n := range wantCounts { // a missing status counts as zero
		if got[st] != n {
			t.Errorf("OutboxCounts = %v, want %v", got, wantCounts)
			break
		}
	}
}
