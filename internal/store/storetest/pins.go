package storetest

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/kaizen-onboard/kaizen/internal/store"
)

func testPINPutGet(t *testing.T, s store.Store) {
	c := ctx(t)
	ok(t, "PutPIN alice", s.PutPIN(c, "alice", []byte("hmac-alice"), base()))
	ok(t, "PutPIN bob", s.PutPIN(c, "bob", []byte("hmac-bob"), base()))
	for user, want := range map[string]string{"alice": "hmac-alice", "bob": "hmac-bob"} {
		if got := must(s.GetPIN(c, user))(t, "GetPIN "+user); !bytes.Equal(got, []byte(want)) {
			t.Errorf("GetPIN(%s) = %q, want %q", user, got, want)
		}
	}
	// Binary HMACs, zero bytes included, come back intact.
	raw := []byte{0, 1, 2, 0xff, 0, 0x80}
	ok(t, "PutPIN binary", s.PutPIN(c, "carol", raw, base()))
	if got := must(s.GetPIN(c, "carol"))(t, "GetPIN carol"); !bytes.Equal(got, raw) {
		t.Errorf("GetPIN(carol) = %x, want %x", got, raw)
	}
}

func testPINReplace(t *testing.T, s store.Store) {
	c := ctx(t)
	ok(t, "PutPIN", s.PutPIN(c, "alice", []byte("first"), base()))
	ok(t, "PutPIN again", s.PutPIN(c, "alice", []byte("second"), base().Add(time.Hour)))
	if got := must(s.GetPIN(c, "alice"))(t, "GetPIN"); string(got) != "second" {
		t.Errorf("GetPIN after a replacement = %q, want %q", got, "second")
	}
	// A PIN on file outlives the user's tokens: purging or replacing them
	// leaves it alone.
	tok := tokenFor("alice", base())
	ok(t, "PutToken", s.PutToken(c, tok))
	ok(t, "ConsumeToken", s.ConsumeToken(c, tok.Hash, base()))
	_ = must(s.PurgeTokens(c, base().Add(30*24*time.Hour)))(t, "PurgeTokens")
	if got := must(s.GetPIN(c, "alice"))(t, "GetPIN after a purge"); string(got) != "second" {
		t.Errorf("GetPIN after the tokens were purged = %q, want %q", got, "second")
	}
}

func testPINNotFound(t *testing.T, s store.Store) {
	c := ctx(t)
	_, err := s.GetPIN(c, "nobody")
	isErr(t, "GetPIN", err, store.ErrNotFound)
	// A token's PIN is not a PIN on file.
	ok(t, "PutToken", s.PutToken(c, tokenFor("dave", base())))
	_, err = s.GetPIN(c, "dave")
	isErr(t, "GetPIN of a user with a token only", err, store.ErrNotFound)
	if err := s.PutPIN(c, "", []byte("x"), base()); err == nil {
		t.Error("PutPIN accepted an empty user ID")
	}
	if err := s.PutPIN(c, "erin", nil, base()); err == nil {
		t.Error("PutPIN accepted an empty HMAC")
	}
}

// testRacePutPIN: concurrent writers for one user all succeed and leave
// exactly one of their values.
func testRacePutPIN(t *testing.T, s store.Store) {
	c := ctx(t)
	vals := make([][]byte, racers)
	for i := range vals {
		vals[i] = []byte(fmt.Sprintf("hmac-%02d", i))
	}
	for i, err := range race(racers, func(i int) error { return s.PutPIN(c, "alice", vals[i], base()) }) {
		if err != nil {
			t.Errorf("PutPIN %d: %v", i, err)
		}
	}
	got := must(s.GetPIN(c, "alice"))(t, "GetPIN")
	for _, v := range vals {
		if bytes.Equal(got, v) {
			return
		}
	}
	t.Errorf("GetPIN after the race = %q, which no racer wrote", got)
}
