// Package keyring holds the operator's secret keys (settings [secrets]) and
// what Kaizen does with them: seal values at rest (AES-256-GCM) and
// authenticate short secrets such as PINs (HMAC-SHA256).
//
// Rotation works as in Ory Kratos: the first key seals and signs, and every
// key is tried to open and verify. To rotate, put a new key first and keep
// the old ones until every value sealed or signed under them is gone.
//
// Each purpose (outbox bodies, …) gets its own AES key, derived with
// HKDF-SHA256 from each secret under a label naming the purpose, so a value
// sealed for one purpose never opens as another, and no derived key equals
// the PIN HMAC key.
package keyring

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// MinKeyLen is the shortest secret accepted, in bytes.
const MinKeyLen = 32

// Version is the first byte of every sealed value: a later format can tell
// the values of this one apart.
const Version byte = 1

// ErrOpen means a sealed value opened under no key: it was altered, bound
// to another record, sealed for another purpose, or sealed under a key that
// is no longer in the list. It never says which.
var ErrOpen = errors.New("keyring: sealed value does not open with any configured key")

// Keyring is an ordered list of secrets; the first is current. It is safe
// for concurrent use.
type Keyring struct {
	keys   [][]byte
	random io.Reader
}

// New builds a keyring from secrets, current first. random draws nonces
// (crypto/rand.Reader in production). Each secret must be at least
// MinKeyLen bytes and appear once.
func New(random io.Reader, secrets ...[]byte) (*Keyring, error) {
	if random == nil {
		return nil, errors.New("keyring: no source of randomness")
	}
	if len(secrets) == 0 {
		return nil, errors.New("keyring: no secret keys")
	}
	k := &Keyring{random: random}
	for i, s := range secrets {
		if len(s) < MinKeyLen {
			return nil, fmt.Errorf("keyring: key %d is shorter than %d bytes", i+1, MinKeyLen)
		}
		for j, earlier := range k.keys {
			if hmac.Equal(s, earlier) {
				return nil, fmt.Errorf("keyring: key %d repeats key %d", i+1, j+1)
			}
		}
		k.keys = append(k.keys, append([]byte(nil), s...))
	}
	return k, nil
}

// Len is the number of keys.
func (k *Keyring) Len() int { return len(k.keys) }

// MAC signs msg with the current key: HMAC-SHA256 keyed by the secret
// itself. The caller puts a label for its purpose into msg.
func (k *Keyring) MAC(msg []byte) []byte { return mac(k.keys[0], msg) }

// Verify reports whether sum is msg's MAC under any key, comparing in
// constant time per key.
func (k *Keyring) Verify(msg, sum []byte) bool {
	ok := false
	for _, key := range k.keys {
		// No early exit: the time taken does not tell which key matched.
		if hmac.Equal(mac(key, msg), sum) {
			ok = true
		}
	}
	return ok
}

func mac(key, msg []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	return m.Sum(nil)
}

// Box seals and opens values for one purpose. label names the purpose and
// must differ between purposes (e.g. "kaizen v1 outbox body").
func (k *Keyring) Box(label string) (*Box, error) {
	if label == "" {
		return nil, errors.New("keyring: a box needs a label")
	}
	b := &Box{label: label, random: k.random}
	for i, key := range k.keys {
		sub, err := hkdf.Key(sha256.New, key, nil, label, 32)
		if err != nil {
			return nil, fmt.Errorf("keyring: deriving the %q key from key %d: %w", label, i+1, err)
		}
		block, err := aes.NewCipher(sub)
		if err != nil {
			return nil, fmt.Errorf("keyring: %w", err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("keyring: %w", err)
		}
		b.aeads = append(b.aeads, aead)
	}
	return b, nil
}

// Box is a keyring's AES-256-GCM for one purpose. It is safe for
// concurrent use.
type Box struct {
	label  string
	aeads  []cipher.AEAD // one per key, current first
	random io.Reader
}

// nonceSize and overhead are GCM's standard sizes.
const (
	nonceSize = 12
	overhead  = 16
)

// Overhead is how many bytes sealing adds to a value.
const Overhead = 1 + nonceSize + overhead

// Seal encrypts plaintext under the current key. ad (additional data) is
// authenticated but not stored: pass what identifies the record the value
// belongs to, and Open succeeds only with the same ad. Layout: Version,
// a random 12-byte nonce, ciphertext and tag.
func (b *Box) Seal(plaintext, ad []byte) ([]byte, error) {
	out := make([]byte, 1+nonceSize, Overhead+len(plaintext))
	out[0] = Version
	if _, err := io.ReadFull(b.random, out[1:]); err != nil {
		return nil, fmt.Errorf("keyring: sealing: drawing a nonce: %w", err)
	}
	return b.aeads[0].Seal(out, out[1:], plaintext, b.ad(ad)), nil
}

// Open decrypts a value Seal returned, trying every key; ErrOpen when none
// opens it with this ad.
func (b *Box) Open(sealed, ad []byte) ([]byte, error) {
	if !IsSealed(sealed) {
		return nil, ErrOpen
	}
	nonce, ct := sealed[1:1+nonceSize], sealed[1+nonceSize:]
	full := b.ad(ad)
	for _, aead := range b.aeads {
		if plain, err := aead.Open(nil, nonce, ct, full); err == nil {
			return plain, nil
		}
	}
	return nil, ErrOpen
}

// ad binds the format version to the caller's additional data.
func (b *Box) ad(ad []byte) []byte {
	return append([]byte{Version}, ad...)
}

// IsSealed reports whether v has the shape of a sealed value (version byte
// and room for nonce and tag); it says nothing of whether it opens.
func IsSealed(v []byte) bool {
	return len(v) >= Overhead && v[0] == Version
}

// Bind joins the fields that identify a record into additional data for
// Seal and Open, each length-prefixed so that no two field lists collide
// ("ab","c" and "a","bc" differ).
func Bind(fields ...string) []byte {
	var out []byte
	for _, f := range fields {
		out = binary.BigEndian.AppendUint64(out, uint64(len(f)))
		out = append(out, f...)
	}
	return out
}
