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

// The decoders scan by hand rather than with regular expressions: the
// views of a dump are megabytes, and the race detector slows regexp ten
// times over.

func isHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

func isB64(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '/' || c == '-' || c == '_'
}

func isTokenChar(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_'
}

func isAlnum(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9'
}

// runs calls fn for each maximal run of bytes in the class of at least
// minLen, in order.
func runs(b []byte, in func(byte) bool, minLen int, fn func(from, to int)) {
	for i := 0; i < len(b); {
		if !in(b[i]) {
			i++
			continue
		}
		j := i
		for j < len(b) && in(b[j]) {
			j++
		}
		if j-i >= minLen {
			fn(i, j)
		}
		i = j
	}
}

// replaceRuns rewrites each run that decode accepts.
func replaceRuns(b []byte, in func(byte) bool, minLen int, decode func([]byte) ([]byte, bool)) []byte {
	var out []byte
	last := 0
	runs(b, in, minLen, func(from, to int) {
		if dec, ok := decode(b[from:to]); ok {
			out = append(append(out, b[last:from]...), dec...)
			last = to
		}
	})
	if out == nil {
		return b
	}
	return append(out, b[last:]...)
}

type decoder struct {
	name   string
	decode func([]byte) []byte
}

var decoders = []decoder{
	{"hex", func(b []byte) []byte {
		return replaceRuns(b, isHex, 24, func(run []byte) ([]byte, bool) {
			out, err := hex.DecodeString(string(run[:len(run)&^1]))
			return out, err == nil
		})
	}},
	{"base64", func(b []byte) []byte {
		return replaceRuns(b, isB64, 16, func(run []byte) ([]byte, bool) {
			for _, enc := range []*base64.Encoding{base64.RawStdEncoding, base64.RawURLEncoding} {
				if out, err := enc.DecodeString(string(run)); err == nil {
					return out, true
				}
			}
			return nil, false
		})
	}},
	{"quoted-printable", func(b []byte) []byte {
		// Soft line breaks go; =XX becomes the byte.
		out := make([]byte, 0, len(b))
		for i := 0; i < len(b); i++ {
			switch {
			case b[i] != '=':
				out = append(out, b[i])
			case i+1 < len(b) && b[i+1] == '\n':
				i++
			case i+2 < len(b) && b[i+1] == '\r' && b[i+2] == '\n':
				i += 2
			case i+2 < len(b) && isHex(b[i+1]) && isHex(b[i+2]):
				x, _ := hex.DecodeString(string(b[i+1 : i+3]))
				out = append(out, x...)
				i += 2
			default:
				out = append(out, b[i])
			}
		}
		return out
	}},
	{"URL", func(b []byte) []byte {
		out := make([]byte, 0, len(b))
		for i := 0; i < len(b); i++ {
			if b[i] == '%' && i+2 < len(b) && isHex(b[i+1]) && isHex(b[i+2]) {
				x, _ := hex.DecodeString(string(b[i+1 : i+3]))
				out = append(out, x...)
				i += 2
				continue
			}
			out = append(out, b[i])
		}
		return out
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

// pinAt returns where pin is stored as a PIN in b, or -1. PINs are four
// digits, so a bare search would hit dates, counters and any hex or base64
// text, and now and then random bytes of ciphertext. What a stored PIN
// looks like is a number that stands alone (no letter or digit either
// side) or follows the word "pin" within three characters, next to text:
// four printable characters on one side at least, or the start or end of
// the piece (a cell that holds just the PIN). Random bytes pass that in
// about one case in 10^11 per position. The decoded views turn hex, base64 and
// quoted-printable back into text first. Encoded forms of the PIN alone
// are not searched: four characters of base64 or eight of hex occur by
// chance in ciphertext.
func pinAt(b []byte, pin string) int {
	p := []byte(pin)
	for from := 0; ; {
		i := bytes.Index(b[from:], p)
		if i < 0 {
			return -1
		}
		i += from
		end := i + len(p)
		alone := (end == len(b) || !isAlnum(b[end])) && (i == 0 || !isAlnum(b[i-1]) || afterWordPIN(b, i))
		if alone && (printable(b[max(0, i-4):i]) || printable(b[end:min(len(b), end+4)])) {
			return i
		}
		from = i + 1
	}
}

func printable(b []byte) bool {
	for _, c := range b {
		if (c < 0x20 || c > 0x7e) && c != '\n' && c != '\r' && c != '\t' {
			return false
		}
	}
	return true
}

// afterWordPIN: b[:i] ends in "pin" and up to three non-word characters.
func afterWordPIN(b []byte, i int) bool {
	for gap := 0; gap <= 3 && i-gap >= 3; gap++ {
		if gap > 0 && (isAlnum(b[i-gap]) || b[i-gap] == '_') {
			return false
		}
		if bytes.EqualFold(b[i-gap-3:i-gap], []byte("pin")) {
			return true
		}
	}
	return false
}

// allViews is every view of every piece of d.
func allViews(d dump) []view {
	var out []view
	for _, src := range d.sources() {
		out = append(out, viewsOf(src)...)
	}
	return out
}

// search finds every secret in every view.
func search(views []view, secrets []*secret) []hit {
	idx := buildIndex(secrets)
	var pins []*secret
	for _, s := range secrets {
		if s.kind == kindPIN {
			pins = append(pins, s)
		}
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
	for _, v := range views {
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
		for _, p := range pins {
			if i := pinAt(b, p.value); i >= 0 {
				report(hit{secret: p, encoding: "standalone number", view: v.name, context: around(b, i, len(p.value))})
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

// An attacker tries as a link token every 43-character window of every
// run of the link alphabet (base64url) in every view: a token may sit
// inside a longer run, glued to other text or to encoded data.
// candidates is every string of the dump an attacker would try as a key:
// every column value whole, and every 43-character window of every run of
// the link alphabet (base64url) in every view, since a token may sit
// inside a longer run, glued to other text or to encoded data.
func candidates(d dump, views []view) map[string]string {
	out := map[string]string{} // candidate -> where
	add := func(s, where string) {
		if _, ok := out[s]; !ok {
			out[s] = where
		}
	}
	for _, c := range d.cells {
		add(strings.TrimSpace(string(c.data)), c.name)
	}
	for _, v := range views {
		runs(v.data, isTokenChar, 43, func(from, to int) {
			for i := from; i+43 <= to; i++ {
				add(string(v.data[i:i+43]), v.name)
			}
		})
	}
	return out
}
