package keyring_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/kaizen-onboard/kaizen/internal/keyring"
)

var (
	keyA = []byte(strings.Repeat("a", 32))
	keyB = []byte("bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb")
	keyC = []byte(strings.Repeat("c", 64))
)

const label = "kaizen v1 test value"

func ring(t *testing.T, keys ...[]byte) *keyring.Keyring {
	t.Helper()
	k, err := keyring.New(rand.Reader, keys...)
	if err != nil {
		t.Fatalf("keyring.New: %v", err)
	}
	return k
}

func box(t *testing.T, k *keyring.Keyring, label string) *keyring.Box {
	t.Helper()
	b, err := k.Box(label)
	if err != nil {
		t.Fatalf("Box(%q): %v", label, err)
	}
	return b
}

func TestNew(t *testing.T) {
	tests := []struct {
		name    string
		random  io.Reader
		keys    [][]byte
		wantErr string
	}{
		{"one key", rand.Reader, [][]byte{keyA}, ""},
		{"three keys", rand.Reader, [][]byte{keyA, keyB, keyC}, ""},
		{"no key", rand.Reader, nil, "no secret keys"},
		{"short key", rand.Reader, [][]byte{keyA, []byte(strings.Repeat("x", 31))}, "key 2 is shorter than 32"},
		{"repeated key", rand.Reader, [][]byte{keyA, keyB, []byte(string(keyA))}, "key 3 repeats key 1"},
		{"no randomness", nil, [][]byte{keyA}, "randomness"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := keyring.New(tt.random, tt.keys...)
			if tt.wantErr == "" {
				if err != nil || k.Len() != len(tt.keys) {
					t.Fatalf("New = (%v, %v), want %d keys", k, err, len(tt.keys))
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("New error = %v, want one containing %q", err, tt.wantErr)
			}
			for _, key := range tt.keys {
				if len(key) > 0 && strings.Contains(err.Error(), string(key)) {
					t.Errorf("error reveals a key: %v", err)
				}
			}
		})
	}
}

func TestNewCopiesKeys(t *testing.T) {
	key := bytes.Clone(keyA)
	k := ring(t, key)
	sealed, err := box(t, k, label).Seal([]byte("v"), nil)
	if err != nil {
		t.Fatal(err)
	}
	key[0] ^= 0xff // the caller reusing its buffer must not change the ring
	if _, err := box(t, k, label).Open(sealed, nil); err != nil {
		t.Fatalf("Open after the caller changed its key slice: %v", err)
	}
}

func TestSealOpen(t *testing.T) {
	plain := []byte("From: a@example.org\r\n\r\nhttps://setpass.example.org/?token=abc\r\n")
	ad := keyring.Bind("welcome:u1", "welcome")
	tests := []struct {
		name    string
		sealer  [][]byte // keys sealing
		opener  [][]byte // keys opening
		openAD  []byte
		openLbl string
		wantErr bool
	}{
		{"same key", [][]byte{keyA}, [][]byte{keyA}, ad, label, false},
		{"rotated: old value, new key first", [][]byte{keyA}, [][]byte{keyB, keyA}, ad, label, false},
		{"rotated: old value, old key last of three", [][]byte{keyA}, [][]byte{keyC, keyB, keyA}, ad, label, false},
		{"new value under the new key alone", [][]byte{keyB, keyA}, [][]byte{keyB}, ad, label, false},
		{"new value not under the old key", [][]byte{keyB, keyA}, [][]byte{keyA}, ad, label, true},
		{"dropped key", [][]byte{keyA}, [][]byte{keyB}, ad, label, true},
		{"other record", [][]byte{keyA}, [][]byte{keyA}, keyring.Bind("welcome:u2", "welcome"), label, true},
		{"fields shifted", [][]byte{keyA}, [][]byte{keyA}, keyring.Bind("welcome:u1w", "elcome"), label, true},
		{"no additional data", [][]byte{keyA}, [][]byte{keyA}, nil, label, true},
		{"other purpose", [][]byte{keyA}, [][]byte{keyA}, ad, "kaizen v1 other", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sealed, err := box(t, ring(t, tt.sealer...), label).Seal(plain, ad)
			if err != nil {
				t.Fatalf("Seal: %v", err)
			}
			if sealed[0] != keyring.Version || len(sealed) != len(plain)+keyring.Overhead || !keyring.IsSealed(sealed) {
				t.Fatalf("sealed value: version %d, %d bytes for %d; want version %d, %d more bytes",
					sealed[0], len(sealed), len(plain), keyring.Version, keyring.Overhead)
			}
			if bytes.Contains(sealed, []byte("token=abc")) || bytes.Contains(sealed, []byte("example.org")) {
				t.Fatal("the sealed value contains the plaintext")
			}
			got, err := box(t, ring(t, tt.opener...), tt.openLbl).Open(sealed, tt.openAD)
			if tt.wantErr {
				if !errors.Is(err, keyring.ErrOpen) || got != nil {
					t.Fatalf("Open = (%q, %v), want ErrOpen", got, err)
				}
				return
			}
			if err != nil || !bytes.Equal(got, plain) {
				t.Fatalf("Open = (%q, %v), want the plaintext", got, err)
			}
		})
	}
}

func TestSealUsesInjectedRandomness(t *testing.T) {
	nonce := bytes.Repeat([]byte{7}, 12)
	k, err := keyring.New(bytes.NewReader(append(bytes.Clone(nonce), nonce...)), keyA)
	if err != nil {
		t.Fatal(err)
	}
	b := box(t, k, label)
	s1, err := b.Seal([]byte("same"), nil)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := b.Seal([]byte("same"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(s1[1:13], nonce) || !bytes.Equal(s1, s2) {
		t.Errorf("nonces not drawn from the injected reader: %x, %x", s1[1:13], s2[1:13])
	}
	if _, err := b.Seal([]byte("x"), nil); err == nil {
		t.Error("Seal with the randomness exhausted succeeded")
	}
	k, _ = keyring.New(iotest.ErrReader(errors.New("no entropy")), keyA)
	if _, err := box(t, k, label).Seal([]byte("x"), nil); err == nil || !strings.Contains(err.Error(), "no entropy") {
		t.Errorf("Seal with a failing reader: %v", err)
	}
}

func TestOpenRejectsAlteredValues(t *testing.T) {
	b := box(t, ring(t, keyA), label)
	ad := keyring.Bind("k")
	sealed, err := b.Seal([]byte("secret body"), ad)
	if err != nil {
		t.Fatal(err)
	}
	for i := range sealed {
		t.Run("byte "+strconv.Itoa(i), func(t *testing.T) {
			bad := bytes.Clone(sealed)
			bad[i] ^= 0x01
			if got, err := b.Open(bad, ad); !errors.Is(err, keyring.ErrOpen) {
				t.Fatalf("Open with byte %d flipped = (%q, %v), want ErrOpen", i, got, err)
			}
		})
	}
	for _, n := range []int{0, 1, keyring.Overhead - 1, len(sealed) - 1} {
		if _, err := b.Open(sealed[:n], ad); !errors.Is(err, keyring.ErrOpen) {
			t.Errorf("Open of the first %d bytes: %v, want ErrOpen", n, err)
		}
	}
	if _, err := b.Open(append(bytes.Clone(sealed), 0), ad); !errors.Is(err, keyring.ErrOpen) {
		t.Errorf("Open with a byte appended: %v, want ErrOpen", err)
	}
}

func TestIsSealed(t *testing.T) {
	for _, tt := range []struct {
		name string
		v    []byte
		want bool
	}{
		{"empty", nil, false},
		{"a mail", []byte("Date: Mon, 1 Jan 2031 00:00:00 +0000\r\nFrom: x@example.org\r\n\r\nhello"), false},
		{"too short", append([]byte{keyring.Version}, make([]byte, 27)...), false},
		{"shape of a sealed value", append([]byte{keyring.Version}, make([]byte, 28)...), true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := keyring.IsSealed(tt.v); got != tt.want {
				t.Errorf("IsSealed = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestMACVerify(t *testing.T) {
	msg := []byte("kaizen setpass v1 pin|user|1234")
	tests := []struct {
		name   string
		signer [][]byte
		verify [][]byte
		msg    []byte
		want   bool
	}{
		{"same key", [][]byte{keyA}, [][]byte{keyA}, msg, true},
		{"old MAC after rotation", [][]byte{keyA}, [][]byte{keyB, keyA}, msg, true},
		{"new MAC, old key only", [][]byte{keyB, keyA}, [][]byte{keyA}, msg, false},
		{"dropped key", [][]byte{keyA}, [][]byte{keyB, keyC}, msg, false},
		{"other message", [][]byte{keyA}, [][]byte{keyA}, []byte("kaizen setpass v1 pin|user|1235"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sum := ring(t, tt.signer...).MAC(msg)
			if got := ring(t, tt.verify...).Verify(tt.msg, sum); got != tt.want {
				t.Errorf("Verify = %v, want %v", got, tt.want)
			}
		})
	}
	t.Run("first key signs", func(t *testing.T) {
		if !bytes.Equal(ring(t, keyB, keyA).MAC(msg), ring(t, keyB).MAC(msg)) {
			t.Error("MAC is not the first key's")
		}
	})
	t.Run("empty or truncated sum", func(t *testing.T) {
		k := ring(t, keyA)
		sum := k.MAC(msg)
		for _, s := range [][]byte{nil, {}, sum[:31]} {
			if k.Verify(msg, s) {
				t.Errorf("Verify(%x) = true", s)
			}
		}
	})
}

func TestBind(t *testing.T) {
	seen := map[string][]string{}
	for _, fields := range [][]string{{}, {""}, {"", ""}, {"ab", "c"}, {"a", "bc"}, {"abc"}, {"a", "b", "c"}} {
		k := string(keyring.Bind(fields...))
		if other, dup := seen[k]; dup {
			t.Errorf("Bind(%q) = Bind(%q)", fields, other)
		}
		seen[k] = fields
	}
}

func TestBoxNeedsLabel(t *testing.T) {
	if _, err := ring(t, keyA).Box(""); err == nil {
		t.Error("Box(\"\") succeeded")
	}
}

// FuzzOpen feeds outside input to Open: it must never panic, and nothing but
// a value sealed under the keyring, for this record, opens.
func FuzzOpen(f *testing.F) {
	// Deterministic (fixed keys, a zero nonce): the fuzzing workers rebuild
	// this in processes of their own and must agree on the one good value.
	k, err := keyring.New(bytes.NewReader(make([]byte, 12)), keyA, keyB)
	if err != nil {
		f.Fatal(err)
	}
	b, err := k.Box(label)
	if err != nil {
		f.Fatal(err)
	}
	good, err := b.Seal([]byte("body"), []byte("ad"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good, []byte("ad"))
	f.Add([]byte{}, []byte{})
	f.Add([]byte{keyring.Version}, []byte("ad"))
	f.Add(bytes.Repeat([]byte{keyring.Version}, 64), []byte("ad"))
	f.Fuzz(func(t *testing.T, sealed, ad []byte) {
		plain, err := b.Open(sealed, ad)
		if err != nil {
			if !errors.Is(err, keyring.ErrOpen) || plain != nil {
				t.Fatalf("Open = (%q, %v), want (nil, ErrOpen)", plain, err)
			}
			return
		}
		// Forging GCM is out of reach: only the seeded value opens.
		if !bytes.Equal(sealed, good) || !bytes.Equal(ad, []byte("ad")) || string(plain) != "body" {
			t.Fatalf("Open accepted an outside value %x (ad %q) as %q", sealed, ad, plain)
		}
	})
}
