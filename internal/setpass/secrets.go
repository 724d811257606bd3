package setpass

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/kaizen-onboard/kaizen/internal/keyring"
	"github.com/kaizen-onboard/kaizen/internal/store"
)

const (
	tokenBytes = 32 // 256 bits
	// tokenLen is the length of a token in a link: 32 bytes, unpadded base64url.
	tokenLen = 43

	// Versioned so that a later scheme can tell old records apart.
	sealInfo    = "kaizen setpass v1 temporary password"
	sealVersion = 1
	pinInfo     = "kaizen setpass v1 pin"
)

// errSealed means a sealed password could not be opened: the record was
// altered or belongs to another token or user.
var errSealed = errors.New("setpass: sealed password does not open")

// newToken draws a fresh link token from random.
func newToken(random io.Reader) (string, error) {
	var b [tokenBytes]byte
	if _, err := io.ReadFull(random, b[:]); err != nil {
		return "", fmt.Errorf("drawing a token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// tokenHash is what the store keeps instead of the token.
func tokenHash(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// wellFormedToken reports whether s can be a token we issued, so that junk
// never reaches the store.
func wellFormedToken(s string) bool {
	if len(s) != tokenLen {
		return false
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	return err == nil && len(b) == tokenBytes
}

// sealKey derives the password key from the token itself, so the database
// alone (which holds only the token's hash) cannot open the password.
func sealKey(token string) ([]byte, error) {
	raw, err := base64.RawURLEncoding.Strict().DecodeString(token)
	if err != nil {
		return nil, fmt.Errorf("deriving the sealing key: malformed token")
	}
	key, err := hkdf.Key(sha256.New, raw, nil, sealInfo, 32)
	if err != nil {
		return nil, fmt.Errorf("deriving the sealing key: %w", err)
	}
	return key, nil
}

func sealAEAD(token string) (cipher.AEAD, error) {
	key, err := sealKey(token)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("sealing: %w", err)
	}
	return cipher.NewGCM(block)
}

// seal encrypts password with AES-256-GCM under a key derived from token;
// the user ID is additional data, so a record moved to another user fails
// to open. Layout: version byte, nonce, ciphertext.
func seal(random io.Reader, token, userID, password string) ([]byte, error) {
	aead, err := sealAEAD(token)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 1+aead.NonceSize(), 1+aead.NonceSize()+len(password)+aead.Overhead())
	out[0] = sealVersion
	if _, err := io.ReadFull(random, out[1:]); err != nil {
		return nil, fmt.Errorf("sealing: drawing a nonce: %w", err)
	}
	return aead.Seal(out, out[1:], []byte(password), []byte(userID)), nil
}

// unseal reverses seal.
func unseal(token, userID string, sealed []byte) (string, error) {
	aead, err := sealAEAD(token)
	if err != nil {
		return "", err
	}
	n := aead.NonceSize()
	if len(sealed) < 1+n+aead.Overhead() || sealed[0] != sealVersion {
		return "", errSealed
	}
	plain, err := aead.Open(nil, sealed[1:1+n], sealed[1+n:], []byte(userID))
	if err != nil {
		return "", errSealed
	}
	return string(plain), nil
}

// pinMAC is the stored form of a PIN: HMAC-SHA256 under the current secret
// key over the user ID and the PIN, length-prefixed so no two inputs
// collide. With a single key it is the MAC earlier versions stored under
// setpass.secret_key, so PINs on file keep verifying.
func pinMAC(keys *keyring.Keyring, userID, pin string) []byte {
	return keys.MAC(pinMessage(userID, pin))
}

// pinMatches compares in constant time, under every key, so PINs signed
// before a key rotation still match.
func pinMatches(keys *keyring.Keyring, userID, pin string, stored []byte) bool {
	return keys.Verify(pinMessage(userID, pin), stored)
}

func pinMessage(userID, pin string) []byte {
	msg := []byte(pinInfo)
	msg = binary.BigEndian.AppendUint64(msg, uint64(len(userID)))
	msg = append(msg, userID...)
	return append(msg, pin...)
}

// resigned returns t with its PIN HMAC signed anew under the current key,
// from the PIN the user just proved: the PIN on file (kept from t) then
// survives dropping the key it was first signed under.
func resigned(keys *keyring.Keyring, t store.Token, pin string) store.Token {
	if len(t.PINHMAC) > 0 && pin != "" {
		t.PINHMAC = pinMAC(keys, t.UserID, pin)
	}
	return t
}
