package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"mime/quotedprintable"
	"net/url"
	"strings"
	"testing"
)

// TestSearchFindsEveryEncoding holds the dump search to what the e2e test
// relies on: a secret stored in any of the encodings is found, whatever
// surrounds it, and a PIN only where it stands as a PIN.
func TestSearchFindsEveryEncoding(t *testing.T) {
	token := base64.RawURLEncoding.EncodeToString(randomBytes(32))
	link := "http://127.0.0.1:43459/?token=" + token
	qp := func(s string) []byte {
		var b bytes.Buffer
		w := quotedprintable.NewWriter(&b)
		// 35 characters before the link put the soft line break (after
		// 75) ten characters into its token.
		w.Write([]byte("    " + strings.Repeat("x", 30) + " " + s + "\r\n"))
		w.Close()
		return b.Bytes()
	}
	b64 := func(enc *base64.Encoding, prefix int, s string) []byte {
		return []byte(enc.EncodeToString(append(randomBytes(prefix), []byte(s+" tail")...)))
	}
	junk := []byte("\x00\x01 some row; ")
	tests := []struct {
		name   string
		stored []byte
		secret string
		kind   string
		found  bool
		bare   bool // the cell holds just stored
	}{
		{"raw", []byte(link), link, kindLink, true, false},
		{"hex", []byte(hex.EncodeToString([]byte(link))), link, kindLink, true, false},
		{"HEX", []byte(strings.ToUpper(hex.EncodeToString([]byte(link)))), link, kindLink, true, false},
		{"base64 at offset 0", b64(base64.StdEncoding, 0, token), token, kindToken, true, false},
		{"base64 at offset 1", b64(base64.StdEncoding, 1, token), token, kindToken, true, false},
		{"base64 at offset 2", b64(base64.StdEncoding, 2, token), token, kindToken, true, false},
		{"base64url at offset 1", b64(base64.URLEncoding, 1, token), token, kindToken, true, false},
		{"base64url at offset 2", b64(base64.RawURLEncoding, 2, token), token, kindToken, true, false},
		{"quoted-printable with a soft line break", qp(link), link, kindLink, true, false},
		{"quoted-printable token across a soft break", qp(link), token, kindToken, true, false},
		{"quoted-printable inside hex (bytea)", []byte(`\x` + hex.EncodeToString(qp(link))), link, kindLink, true, false},
		{"URL-encoded", []byte("next=" + url.QueryEscape(link)), link, kindLink, true, false},
		{"JSON-escaped", []byte(`{"link":"` + strings.ReplaceAll(link, "&", `\u0026`) + `"}`), link, kindLink, true, false},
		{"PIN standing alone", []byte(`{"pin":"4821"}`), "4821", kindPIN, true, false},
		{"PIN after the word", []byte("PIN4821"), "4821", kindPIN, true, false},
		{"PIN in a quoted-printable body", qp("Your PIN: 4821."), "4821", kindPIN, true, false},
		{"PIN in hex of a body", []byte(hex.EncodeToString([]byte("Your PIN: 4821."))), "4821", kindPIN, true, false},
		{"a cell holding just the PIN", []byte("4821"), "4821", kindPIN, true, true},
		{"no PIN inside a hex run", []byte("a94821ffe0"), "4821", kindPIN, false, false},
		{"no PIN amid binary bytes", []byte("\x00\x9f\xff.4821.\x00\xfe\x80"), "4821", kindPIN, false, false},
		{"no PIN inside a longer number", []byte("id 148210"), "4821", kindPIN, false, false},
		{"not there", []byte("nothing to see"), token, kindToken, false, false},
	}
	if bytes.Contains(qp(link), []byte(token)) {
		t.Fatal("the quoted-printable case does not split the token")
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stored := bytes.Join([][]byte{junk, tt.stored, junk}, nil)
			if tt.bare {
				stored = tt.stored
			}
			d := dump{cells: []source{{name: "t.c, row 1", data: stored}}}
			hits := search(allViews(d), []*secret{{kind: tt.kind, value: tt.secret, where: "test"}})
			if got := len(hits) > 0; got != tt.found {
				t.Errorf("found = %v, want %v (hits %+v)", got, tt.found, hits)
			}
		})
	}
}

// TestCandidatesIncludeStoredTokens: the attacker's candidates hold a
// token however the dump encodes it.
func TestCandidatesIncludeStoredTokens(t *testing.T) {
	token := base64.RawURLEncoding.EncodeToString(randomBytes(32))
	for name, stored := range map[string]string{
		"whole cell":      token,
		"in a link":       "see http://x/?token=" + token + "\n",
		"URL-encoded":     url.QueryEscape("http://x/?token=" + token),
		"hex of the link": hex.EncodeToString([]byte("http://x/?token=" + token)),
	} {
		t.Run(name, func(t *testing.T) {
			d := dump{cells: []source{{name: "t.c, row 1", data: []byte(stored)}}}
			c := candidates(d, allViews(d))
			if _, ok := c[token]; !ok {
				t.Errorf("the token is not among %d candidates", len(c))
			}
		})
	}
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}
