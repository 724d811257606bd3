package storetest

import (
	"testing"
	"time"

	"github.com/kaizen-onboard/kaizen/internal/store"
)

func testTokenPutGet(t *testing.T, s store.Store) {
	c := ctx(t)
	// Nanoseconds and a non-UTC zone in, UTC microseconds out.
	zone := time.FixedZone("UTC-5", -5*3600)
	created := base().Add(789 * time.Nanosecond).In(zone)
	tests := []struct {
		name string
		tok  store.Token
	}{
		{"full", tokenFor("alice", created)},
		{"no sealed password", func() store.Token {
			tk := tokenFor("bob", created)
			tk.SealedPassword, tk.Purpose = nil, "reset"
			return tk
		}()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ok(t, "PutToken", s.PutToken(c, tc.tok))
			checkToken(t, must(s.GetToken(c, tc.tok.Hash))(t, "GetToken"), tc.tok)
			checkToken(t, must(s.GetTokenByUser(c, tc.tok.UserID))(t, "GetTokenByUser"), tc.tok)
		})
	}
}

func testTokenReplace(t *testing.T, s store.Store) {
	c := ctx(t)
	now := base()
	old := tokenFor("alice", now)
	other := tokenFor("bob", now)
	ok(t, "PutToken old", s.PutToken(c, old))
	ok(t, "PutToken other user", s.PutToken(c, other))
	for range 2 {
		_, _, err := s.RecordAttempt(c, old.Hash, now, 5)
		ok(t, "RecordAttempt", err)
	}

	reissued := tokenFor("alice", now.Add(time.Minute))
	ok(t, "PutToken reissued", s.PutToken(c, reissued))

	_, err := s.GetToken(c, old.Hash)
	isErr(t, "GetToken of the replaced token", err, store.ErrNotFound)
	got := must(s.GetTokenByUser(c, "alice"))(t, "GetTokenByUser")
	checkToken(t, got, reissued) // attempts back to 0
	checkToken(t, must(s.GetToken(c, other.Hash))(t, "GetToken other user"), other)

	// Re-issuing the same link (same hash) also works.
	again := reissued
	again.ExpiresAt = reissued.ExpiresAt.Add(time.Hour)
	ok(t, "PutToken same hash", s.PutToken(c, again))
	checkToken(t, must(s.GetToken(c, again.Hash))(t, "GetToken"), again)
}

func testTokenNotFound(t *testing.T, s store.Store) {
	c := ctx(t)
	unknown := tokenFor("nobody", base()).Hash
	_, err := s.GetToken(c, unknown)
	isErr(t, "GetToken", err, store.ErrNotFound)
	_, err = s.GetTokenByUser(c, "nobody")
	isErr(t, "GetTokenByUser", err, store.ErrNotFound)
	_, _, err = s.RecordAttempt(c, unknown, base(), 3)
	isErr(t, "RecordAttempt", err, store.ErrNotFound)
	isErr(t, "ResetAttempts", s.ResetAttempts(c, unknown), store.ErrNotFound)
	isErr(t, "ConsumeToken", s.ConsumeToken(c, unknown, base()), store.ErrNotFound)
}

func testRecordAttempt(t *testing.T, s store.Store) {
	c := ctx(t)
	now := base()
	tok := tokenFor("alice", now)
	ok(t, "PutToken", s.PutToken(c, tok))

	for _, want := range []struct {
		attempts int
		last     bool
	}{{1, false}, {2, false}, {3, true}} {
		n, last, err := s.RecordAttempt(c, tok.Hash, now.Add(time.Duration(want.attempts)*time.Second), 3)
		ok(t, "RecordAttempt", err)
		if n != want.attempts || last != want.last {
			t.Fatalf("RecordAttempt = (%d, %v), want (%d, %v)", n, last, want.attempts, want.last)
		}
	}
	got := must(s.GetToken(c, tok.Hash))(t, "GetToken")
	if got.Attempts != 3 || got.LockedAt != nil {
		t.Errorf("after the last attempt: Attempts = %d, LockedAt = %v; want 3, not locked yet", got.Attempts, got.LockedAt)
	}
	// No attempt past max is counted, locked or not.
	_, _, err := s.RecordAttempt(c, tok.Hash, now, 3)
	isErr(t, "RecordAttempt past max", err, store.ErrConflict)

	// The last attempt failed: lock. Locking again keeps the first time.
	ok(t, "LockToken", s.LockToken(c, tok.Hash, now.Add(4*time.Second)))
	ok(t, "LockToken again", s.LockToken(c, tok.Hash, now.Add(time.Hour)))
	checkTimePtr(t, "LockedAt", must(s.GetToken(c, tok.Hash))(t, "GetToken").LockedAt, ptr(now.Add(4*time.Second)))
	isErr(t, "LockToken of an unknown token", s.LockToken(c, []byte("no-such-hash-0123456789abcdef0123"), now), store.ErrNotFound)
	isErr(t, "ConsumeToken on a locked token", s.ConsumeToken(c, tok.Hash, now), store.ErrConflict)
	// A locked token stays locked when the counter is reset.
	ok(t, "ResetAttempts", s.ResetAttempts(c, tok.Hash))
	_, _, err = s.RecordAttempt(c, tok.Hash, now, 3)
	isErr(t, "RecordAttempt after reset of a locked token", err, store.ErrConflict)

	// Releasing undoes a consume, once, and only for the same consume.
	t.Run("release", func(t *testing.T) {
		tk := tokenFor("release", now)
		ok(t, "PutToken", s.PutToken(c, tk))
		_, _, err := s.RecordAttempt(c, tk.Hash, now, 3)
		ok(t, "RecordAttempt", err)
		used := now.Add(time.Second)
		ok(t, "ConsumeToken", s.ConsumeToken(c, tk.Hash, used))
		isErr(t, "ReleaseToken of another consume", s.ReleaseToken(c, tk.Hash, used.Add(time.Second)), store.ErrConflict)
		ok(t, "ReleaseToken", s.ReleaseToken(c, tk.Hash, used))
		got := must(s.GetToken(c, tk.Hash))(t, "GetToken")
		if got.UsedAt != nil || got.Attempts != 0 {
			t.Errorf("after release: UsedAt %v, Attempts %d; want live with no attempts", got.UsedAt, got.Attempts)
		}
		isErr(t, "ReleaseToken twice", s.ReleaseToken(c, tk.Hash, used), store.ErrConflict)
		ok(t, "ConsumeToken again", s.ConsumeToken(c, tk.Hash, used.Add(time.Minute)))
		// A re-issue replaces the token: the old one cannot come back.
		reissued := tokenFor("release", now)
		reissued.Hash = []byte("reissued-hash-0123456789abcdef012")
		ok(t, "PutToken (re-issue)", s.PutToken(c, reissued))
		isErr(t, "ReleaseToken after re-issue", s.ReleaseToken(c, tk.Hash, used.Add(time.Minute)), store.ErrNotFound)
	})

	// The last allowed attempt with the right PIN still succeeds.
	t.Run("right PIN on the last attempt", func(t *testing.T) {
		tk := tokenFor("last-chance", now)
		ok(t, "PutToken", s.PutToken(c, tk))
		for range 3 {
			_, _, err := s.RecordAttempt(c, tk.Hash, now, 3)
			ok(t, "RecordAttempt", err)
		}
		ok(t, "ConsumeToken after the last attempt", s.ConsumeToken(c, tk.Hash, now))
		// The right PIN's attempts no longer count: consuming clears them.
		if got := must(s.GetToken(c, tk.Hash))(t, "GetToken"); got.Attempts != 0 {
			t.Errorf("Attempts = %d after ConsumeToken, want 0", got.Attempts)
		}
	})

	tests := []struct {
		name string
		prep func(tk *store.Token)
		at   time.Time
	}{
		{"expired", func(*store.Token) {}, now.Add(24 * time.Hour)},
		{"used", func(tk *store.Token) { tk.UsedAt = ptr(now) }, now.Add(time.Minute)},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tk := tokenFor(userN(i), now)
			tc.prep(&tk)
			ok(t, "PutToken", s.PutToken(c, tk))
			_, _, err := s.RecordAttempt(c, tk.Hash, tc.at, 3)
			isErr(t, "RecordAttempt", err, store.ErrConflict)
			if got := must(s.GetToken(c, tk.Hash))(t, "GetToken"); got.Attempts != 0 {
				t.Errorf("Attempts = %d after a refused attempt, want 0", got.Attempts)
			}
		})
	}
	t.Run("max below one", func(t *testing.T) {
		if _, _, err := s.RecordAttempt(c, tok.Hash, now, 0); err == nil {
			t.Error("RecordAttempt with max 0 succeeded")
		}
	})
}

func testResetAttempts(t *testing.T, s store.Store) {
	c := ctx(t)
	now := base()
	tok := tokenFor("alice", now)
	ok(t, "PutToken", s.PutToken(c, tok))
	for range 2 {
		_, _, err := s.RecordAttempt(c, tok.Hash, now, 3)
		ok(t, "RecordAttempt", err)
	}
	ok(t, "ResetAttempts", s.ResetAttempts(c, tok.Hash))
	n, locked, err := s.RecordAttempt(c, tok.Hash, now, 3)
	ok(t, "RecordAttempt", err)
	if n != 1 || locked {
		t.Errorf("RecordAttempt after reset = (%d, %v), want (1, false)", n, locked)
	}
}

func testConsume(t *testing.T, s store.Store) {
	c := ctx(t)
	now := base()
	tests := []struct {
		name string
		prep func(tk *store.Token)
		at   time.Time
		want error
	}{
		{"live", func(*store.Token) {}, now, nil},
		{"just before expiry", func(*store.Token) {}, now.Add(24*time.Hour - time.Microsecond), nil},
		{"at expiry", func(*store.Token) {}, now.Add(24 * time.Hour), store.ErrConflict},
		{"used", func(tk *store.Token) { tk.UsedAt = ptr(now) }, now, store.ErrConflict},
		{"locked", func(tk *store.Token) { tk.Attempts, tk.LockedAt = 3, ptr(now) }, now, store.ErrConflict},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tk := tokenFor(userN(i), now)
			tc.prep(&tk)
			ok(t, "PutToken", s.PutToken(c, tk))
			err := s.ConsumeToken(c, tk.Hash, tc.at)
			isErr(t, "ConsumeToken", err, tc.want)
			if tc.want != nil {
				checkToken(t, must(s.GetToken(c, tk.Hash))(t, "GetToken"), tk) // unchanged
				return
			}
			want := tk
			want.UsedAt = &tc.at
			checkToken(t, must(s.GetToken(c, tk.Hash))(t, "GetToken"), want)
			isErr(t, "second ConsumeToken", s.ConsumeToken(c, tk.Hash, tc.at), store.ErrConflict)
		})
	}
}

func testPurge(t *testing.T, s store.Store) {
	c := ctx(t)
	cutoff := base()
	day := 24 * time.Hour
	tests := []struct {
		name string
		tok  store.Token
		gone bool
	}{
		{"expired before cutoff", tokenFor("a", cutoff.Add(-day-time.Second)), true},
		{"used before cutoff", func() store.Token {
			tk := tokenFor("b", cutoff.Add(-time.Hour))
			tk.UsedAt = ptr(cutoff.Add(-time.Minute))
			return tk
		}(), true},
		{"expires at cutoff", tokenFor("c", cutoff.Add(-day)), false},
		{"live", tokenFor("d", cutoff), false},
		{"used after cutoff", func() store.Token {
			tk := tokenFor("e", cutoff.Add(-time.Hour))
			tk.UsedAt = ptr(cutoff.Add(time.Minute))
			return tk
		}(), false},
	}
	wantN := 0
	for _, tc := range tests {
		ok(t, "PutToken "+tc.name, s.PutToken(c, tc.tok))
		if tc.gone {
			wantN++
		}
	}
	n := must(s.PurgeTokens(c, cutoff))(t, "PurgeTokens")
	if n != wantN {
		t.Errorf("PurgeTokens = %d, want %d", n, wantN)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.GetToken(c, tc.tok.Hash)
			switch {
			case tc.gone:
				isErr(t, "GetToken", err, store.ErrNotFound)
			case err != nil:
				t.Errorf("GetToken: %v; want it kept", err)
			}
		})
	}
}

func testPending(t *testing.T, s store.Store) {
	c := ctx(t)
	now := base()
	// Put out of order; want oldest first.
	toks := map[string]store.Token{
		"third":  tokenFor("u3", now.Add(-1*time.Hour)),
		"first":  tokenFor("u1", now.Add(-3*time.Hour)),
		"second": tokenFor("u2", now.Add(-2*time.Hour)),
		"new":    tokenFor("u4", now),
		"used": func() store.Token {
			tk := tokenFor("u5", now.Add(-4*time.Hour))
			tk.UsedAt = ptr(now)
			return tk
		}(),
		"locked": func() store.Token {
			tk := tokenFor("u6", now.Add(-4*time.Hour))
			tk.LockedAt = ptr(now)
			return tk
		}(),
	}
	for name, tk := range toks {
		ok(t, "PutToken "+name, s.PutToken(c, tk))
	}
	tests := []struct {
		name  string
		limit int
		want  []string
	}{
		{"no limit", 0, []string{"first", "second", "third"}},
		{"limit", 2, []string{"first", "second"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := must(s.PendingTokens(c, now, tc.limit))(t, "PendingTokens")
			if len(got) != len(tc.want) {
				t.Fatalf("PendingTokens returned %d tokens, want %d", len(got), len(tc.want))
			}
			for i, name := range tc.want {
				checkToken(t, got[i], toks[name])
			}
		})
	}
}
