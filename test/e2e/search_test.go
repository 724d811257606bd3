package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"html"
	"mime/quotedprintable"
	"net/url"
	"regexp"
	"strings"
)

// The search: every secret, in every encoding, in every view of every
// piece of the dump. A view is the piece as stored, or with one or two
// layers of encoding undone (hex, as pg_dump writes bytea; base64, as a
// MIME body or a JSON byte slice may be; quoted-printable, soft line breaks
// and all, as mail bodies are; URL escapes), so that a link split by a soft
// line break inside a hex-encoded body is still found.

// view is a decoded form of a source.
type view struct {
	name string // "<source>" or "<source> (hex, quoted-printable)"
	data []byte
}

var (
	hexRunRE = regexp.MustCompile(`(?:[0-9a-fA-F]{2}){12,}`)
	b64RunRE = regexp.MustCompile(`[A-Za-z0-9+/_-]{16,}={0,2}`)
	qpRE     = regexp.MustCompile(`=(?:\r?\n|[0-9A-Fa-f]{2})`)
	pctRE    = regexp.MustCompile(`%[0-9A-Fa-f]{2}`)
)

type decoder struct {
	name   string
	decode func([]byte) []byte
}

var decoders = []decoder{
	{"hex", func(b []byte) []byte {
		return hexRunRE.ReplaceAllFunc(b, func(run []byte) []byte {
			out, err := hex.DecodeString(string(run))
			if err != nil {
				return run
			}
			return out
		})
	}},
	{"base64", func(b []byte) []byte {
		return b64RunRE.ReplaceAllFunc(b, func(run []byte) []byte {
			s := strings.TrimRight(string(run), "=")
			for _, enc := range []*base64.Encoding{base64.RawStdEncoding, base64.RawURLEncoding} {
				if out, err := enc.DecodeString(s); err == nil {
					return out
				}
			}
			return run
		})
	}},
	{"quoted-printable", func(b []byte) []byte {
		return qpRE.ReplaceAllFunc(b, func(m []byte) []byte {
			if m[1] == '\r' || m[1] == '\n' {
				return nil // soft line break
			}
			out, _ := hex.DecodeString(string(m[1:]))
			return out
		})
	}},
	{"URL", func(b []byte) []byte {
		return pctRE.ReplaceAllFunc(b, func(m []byte) []byte {
			out, _ := hex.DecodeString(string(m[1:]))
			return out
		})
	}},
}

// viewsOf is s and its decodings, two layers deep, without repeats.
func viewsOf(s source) []view {
	out := []view{{name: s.name, data: s.data}}
	seen := map[[32]byte]bool{sha256.Sum256(s.data): true}
	layer := out
	for range 2 {
		var next []view
		for _, v := range layer {
			for _, d := range decoders {
				b := d.decode(v.data)
				h := sha256.Sum256(b)
				if seen[h] {
					continue
				}
				seen[h] = true
				name := v.name + " (" + d.name + ")"
				if strings.HasSuffix(v.name, ")") {
					name = strings.TrimSuffix(v.name, ")") + ", " + d.name + ")"
				}
				next = append(next, view{name: name, data: b})
			}
		}
		out = append(out, next...)
		layer = next
	}
	return out
}

// encodings are the forms of value searched for, by name. Base64 is
// searched at all three byte alignments: for each, only the characters
// that depend on value's bytes alone, so that a secret in the middle of a
// longer encoded text is found whatever precedes it.
func encodings(value string) map[string][]byte {
	v := []byte(value)
	out := map[string][]byte{
		"raw":              v,
		"hex":              []byte(hex.EncodeToString(v)),
		"HEX":              []byte(strings.ToUpper(hex.EncodeToString(v))),
		"URL-encoded":      []byte(url.QueryEscape(value)),
		"URL path-encoded": []byte(url.PathEscape(value)),
		"HTML-escaped":     []byte(html.EscapeString(value)),
	}
	if j, err := json.Marshal(value); err == nil {
		out["JSON-escaped"] = bytes.Trim(j, `"`)
	}
	var qp bytes.Buffer
	w := quotedprintable.NewWriter(&qp)
	w.Write(v)
	w.Close()
	// Soft line breaks are where the encoder chose; the decoded views find
	// those, this finds the rest.
	out["quoted-printable"] = bytes.ReplaceAll(bytes.ReplaceAll(qp.Bytes(), []byte("=\r\n"), nil), []byte("=\n"), nil)
	for _, enc := range []struct {
		name string
		e    *base64.Encoding
	}{{"base64", base64.StdEncoding}, {"base64url", base64.URLEncoding}} {
		for k := range 3 {
			full := enc.e.EncodeToString(append(make([]byte, k), v...))
			from, to := (8*k+5)/6, (8*k+8*len(v))/6
			if to-from >= 8 {
				out[enc.name+" (offset "+string(rune('0'+k))+")"] = []byte(full[from:to])
			}
		}
	}
	for name, b := range out {
		switch {
		case len(b) < 8:
			delete(out, name) // too short to mean anything (PINs are searched apart)
		case name != "raw" && bytes.Equal(b, v):
			delete(out, name) // the same bytes as raw: reported as raw
		}
	}
	return out
}

// hit is a secret found in the dump.
type hit struct {
	secret   *secret
	encoding string
	view     string
	context  string // the bytes around it, the secret itself masked
}

// needleIndex finds many needles in one pass: needles by their first 8
// bytes.
type needle struct {
	b        []byte
	secret   *secret
	encoding string
}

func buildIndex(secrets []*secret) map[uint64][]needle {
	idx := map[uint64][]needle{}
	for _, s := range secrets {
		if s.kind == kindPIN {
			continue
		}
		for enc, b := range encodings(s.value) {
			k := binary.LittleEndian.Uint64(b[:8])
			idx[k] = append(idx[k], needle{b: b, secret: s, encoding: enc})
		}
	}
	return idx
}

// pinPattern matches a PIN only where it stands alone or follows "pin".
// PINs are four digits, so a bare search would hit dates, counters and
// any hex or base64 text; a number that is not part of a longer run of
// letters and digits, or one written right after the word PIN, is what a
// stored PIN looks like in any text, and the decoded views turn hex,
// base64 and quoted-printable back into text first. Encoded forms of the
// PIN alone are not searched: four characters of base64 or eight of hex
// occur by chance in ciphertext.
func pinPattern(pin string) *regexp.Regexp {
	q := regexp.QuoteMeta(pin)
	return regexp.MustCompile(`(?i)(?:^|[^0-9A-Za-z])` + q + `(?:$|[^0-9A-Za-z])|pin\W{0,3}` + q)
}

// search finds every secret in every view of every source of d.
func search(d dump, secrets []*secret) []hit {
	idx := buildIndex(secrets)
	var pins []*secret
	for _, s := range secrets {
		if s.kind == kindPIN {
			pins = append(pins, s)
		}
	}
	pinREs := make([]*regexp.Regexp, len(pins))
	for i, p := range pins {
		pinREs[i] = pinPattern(p.value)
	}
	var hits []hit
	seen := map[string]bool{}
	report := func(h hit) {
		key := h.secret.value + "\x00" + h.view
		if !seen[key] {
			seen[key] = true
			hits = append(hits, h)
		}
	}
	for _, src := range d.sources() {
		for _, v := range viewsOf(src) {
			b := v.data
			for i := 0; i+8 <= len(b); i++ {
				ns, ok := idx[binary.LittleEndian.Uint64(b[i:i+8])]
				if !ok {
					continue
				}
				for _, n := range ns {
					if bytes.HasPrefix(b[i:], n.b) {
						report(hit{secret: n.secret, encoding: n.encoding, view: v.name, context: around(b, i, len(n.b))})
					}
				}
			}
			for j, re := range pinREs {
				if loc := re.FindIndex(b); loc != nil {
					report(hit{secret: pins[j], encoding: "standalone number", view: v.name, context: around(b, loc[0], loc[1]-loc[0])})
				}
			}
		}
	}
	return hits
}

// around is up to 40 printable bytes either side of b[i:i+n], with the
// match itself masked.
func around(b []byte, i, n int) string {
	from, to := max(0, i-40), min(len(b), i+n+40)
	printable := func(x []byte) string {
		return strings.Map(func(r rune) rune {
			if r < 0x20 || r > 0x7e {
				return '.'
			}
			return r
		}, string(x))
	}
	return printable(b[from:i]) + "[" + strings.Repeat("*", min(n, 12)) + "]" + printable(b[i+n:to])
}

// tokenLike is what an attacker tries as a link token: every run of the
// link alphabet between 43 and 128 characters long, each 43-character
// window of it, in every view; longer runs are encoded data, which the
// views decode.
var tokenRunRE = regexp.MustCompile(`[A-Za-z0-9_-]{43,128}`)

// candidates is every string of the dump an attacker would try as a key:
// every column value whole, and every token-looking substring of every
// view of every piece.
func candidates(d dump) map[string]string {
	out := map[string]string{} // candidate -> where
	add := func(s, where string) {
		if _, ok := out[s]; !ok {
			out[s] = where
		}
	}
	for _, c := range d.cells {
		add(strings.TrimSpace(string(c.data)), c.name)
	}
	for _, src := range d.sources() {
		for _, v := range viewsOf(src) {
			for _, run := range tokenRunRE.FindAll(v.data, -1) {
				for i := 0; i+43 <= len(run); i++ {
					add(string(run[i:i+43]), v.name)
				}
			}
		}
	}
	return out
}
