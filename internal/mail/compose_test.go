package mail

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// recipients of each kind's golden message.
func goldenRecipients(kind string) []mail.Address {
	switch kind {
	case KindApproverDigest:
		return []mail.Address{addr("Approver One", "approver1@example.org"), addr("", "approver2@example.org")}
	case KindHelpdeskNotify, KindPINLocked:
		return []mail.Address{addr("Helpdesk", "helpdesk@example.org")}
	case KindAddedToProject:
		return []mail.Address{addr("Charles Babbage", "cb@example.edu")}
	}
	return []mail.Address{addr("Ada Lovelace", "ada@example.edu")}
}

func TestGolden(t *testing.T) {
	r := newTestRenderer(t, testCommon())
	for _, kind := range Kinds() {
		t.Run(kind, func(t *testing.T) {
			data, err := Example(kind)
			if err != nil {
				t.Fatal(err)
			}
			rendered, err := r.Render(kind, data)
			if err != nil {
				t.Fatalf("Render: %v", err)
			}
			got, err := newTestComposer(t).Compose(goldenRecipients(kind), rendered)
			if err != nil {
				t.Fatalf("Compose: %v", err)
			}
			golden := filepath.Join("testdata", "golden", kind+".eml")
			if *update {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./internal/mail -run TestGolden -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from the golden file; inspect and rerun with -update if intended\n--- got ---\n%s", golden, got)
			}
		})
	}
}

// parsed is a composed message read back with net/mail and mime/multipart.
type parsed struct {
	header  mail.Header
	subject string
	to      []*mail.Address
	parts   map[string]string // media type -> decoded body
}

func parseComposed(t *testing.T, raw []byte) parsed {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("net/mail cannot read the message: %v", err)
	}
	p := parsed{header: msg.Header, parts: map[string]string{}}
	if p.subject, err = new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject")); err != nil {
		t.Fatalf("Subject: %v", err)
	}
	if p.to, err = msg.Header.AddressList("To"); err != nil {
		t.Fatalf("To: %v", err)
	}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/alternative" {
		t.Fatalf("Content-Type = %q (%v), want multipart/alternative", msg.Header.Get("Content-Type"), err)
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		part, err := mr.NextPart() // decodes quoted-printable
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("multipart: %v", err)
		}
		pt, pp, _ := mime.ParseMediaType(part.Header.Get("Content-Type"))
		if pp["charset"] != "UTF-8" {
			t.Errorf("%s part charset = %q, want UTF-8", pt, pp["charset"])
		}
		body, err := io.ReadAll(part)
		if err != nil {
			t.Fatalf("reading %s part: %v", pt, err)
		}
		p.parts[pt] = string(body)
	}
	return p
}

func TestComposeParses(t *testing.T) {
	t.Parallel()
	common := testCommon()
	common.CloudName = "Nuage de Montréal"
	r := newTestRenderer(t, common)
	data, _ := Example(KindWelcome)
	w := data.(WelcomeData)
	w.Name = "Zoë Ångström, PhD"
	rendered, err := r.Render(KindWelcome, w)
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	to := []mail.Address{addr(w.Name, "zoe@example.edu"), addr("Plain, Name", "plain@example.edu")}
	raw, err := newTestComposer(t).Compose(to, rendered)
	if err != nil {
		t.Fatalf("Compose: %v", err)
	}
	if !utf8ASCII(headerBlock(raw)) {
		t.Errorf("header is not pure ASCII:\n%s", headerBlock(raw))
	}
	p := parseComposed(t, raw)

	if want := "Your Nuage de Montréal account is ready: set your password"; p.subject != want {
		t.Errorf("Subject = %q, want %q", p.subject, want)
	}
	if len(p.to) != 2 || *p.to[0] != to[0] || *p.to[1] != to[1] {
		t.Errorf("To = %v, want %v", p.to, to)
	}
	if d, err := p.header.Date(); err != nil || !d.Equal(testNow) {
		t.Errorf("Date = %v (%v), want %v", d, err, testNow)
	}
	if id := p.header.Get("Message-ID"); !regexp.MustCompile(`^<[0-9a-f]{32}@example\.org>$`).MatchString(id) {
		t.Errorf("Message-ID = %q", id)
	}
	if f, err := mail.ParseAddress(p.header.Get("From")); err != nil || f.Address != "cloud@example.org" {
		t.Errorf("From = %q (%v)", p.header.Get("From"), err)
	}
	if got := p.header.Get("MIME-Version"); got != "1.0" {
		t.Errorf("MIME-Version = %q", got)
	}
	if !strings.Contains(p.parts["text/plain"], "Hello Zoë Ångström, PhD,") || !strings.Contains(p.parts["text/html"], "Hello Zoë Ångström, PhD,") {
		t.Errorf("parts = %q, want both bodies to greet the name", p.parts)
	}
	if len(p.parts) != 2 {
		t.Errorf("parts %v, want text/plain and text/html", p.parts)
	}
}

func TestComposeHeaderInjection(t *testing.T) {
	t.Parallel()
	r := newTestRenderer(t, testCommon())
	rendered, err := r.Render(KindNewProject, NewProjectData{Name: "Eve", Project: "p\r\nBcc: victim@example.com\n\tx\x00y"})
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	if want := "Your project p Bcc: victim@example.com x y on Example Research Cloud is ready"; rendered.Subject != want {
		t.Errorf("Subject = %q, want %q", rendered.Subject, want)
	}
	raw, err := newTestComposer(t).Compose([]mail.Address{addr("Eve\r\nBcc: victim@example.com", "eve@example.org")}, rendered)
	if err != nil {
		t.Fatalf("Compose: %v", err)
	}
	p := parseComposed(t, raw)
	if _, ok := p.header["Bcc"]; ok {
		t.Errorf("a Bcc header was injected:\n%s", headerBlock(raw))
	}
	if len(p.to) != 1 || p.to[0].Address != "eve@example.org" {
		t.Errorf("To = %v", p.to)
	}
}

func TestComposeFoldsLongHeaders(t *testing.T) {
	t.Parallel()
	subject := strings.Repeat("Ünïcödé subject words ", 12)
	var to []mail.Address
	for i := range 8 {
		to = append(to, addr(fmt.Sprintf("Recipient Number %d", i), fmt.Sprintf("r%d@example.org", i)))
	}
	raw, err := newTestComposer(t).Compose(to, Rendered{Subject: subject, Text: "t", HTML: "<p>h</p>"})
	if err != nil {
		t.Fatalf("Compose: %v", err)
	}
	for _, line := range strings.Split(headerBlock(raw), "\r\n") {
		if len(line) > maxHeaderLine {
			t.Errorf("header line longer than %d: %q", maxHeaderLine, line)
		}
	}
	p := parseComposed(t, raw)
	if want := strings.TrimSpace(subject); p.subject != want {
		t.Errorf("Subject = %q, want %q", p.subject, want)
	}
	if len(p.to) != len(to) {
		t.Errorf("To has %d addresses, want %d", len(p.to), len(to))
	}
}

func TestComposeUniqueIDs(t *testing.T) {
	t.Parallel()
	c := newTestComposer(t)
	seen := map[string]bool{}
	for range 20 {
		raw, err := c.Compose([]mail.Address{addr("", testRcpt)}, Rendered{Subject: "s", Text: "t", HTML: "h"})
		if err != nil {
			t.Fatalf("Compose: %v", err)
		}
		id := parseComposed(t, raw).header.Get("Message-ID")
		if seen[id] {
			t.Fatalf("Message-ID %s repeated", id)
		}
		seen[id] = true
	}
}

func TestComposeErrors(t *testing.T) {
	t.Parallel()
	ok := Rendered{Subject: "s", Text: "t", HTML: "h"}
	tests := []struct {
		name     string
		to       []mail.Address
		rendered Rendered
	}{
		{name: "no recipients", rendered: ok},
		{name: "display name in the address", to: []mail.Address{addr("", "Ada <ada@example.edu>")}, rendered: ok},
		{name: "not an address", to: []mail.Address{addr("", "ada")}, rendered: ok},
		{name: "no HTML", to: []mail.Address{addr("", testRcpt)}, rendered: Rendered{Subject: "s", Text: "t"}},
		{name: "blank subject", to: []mail.Address{addr("", testRcpt)}, rendered: Rendered{Subject: "\r\n", Text: "t", HTML: "h"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := newTestComposer(t).Compose(tt.to, tt.rendered); err == nil {
				t.Fatal("Compose succeeded, want an error")
			}
		})
	}
}

func TestNewComposerErrors(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, from, replyTo string }{
		{name: "bad sender", from: "not an address"},
		{name: "bad reply-to", from: "cloud@example.org", replyTo: "nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewComposer(tt.from, tt.replyTo, fixedClock, seeded(1)); err == nil {
				t.Fatal("NewComposer succeeded, want an error")
			}
		})
	}
}

func headerBlock(raw []byte) string {
	h, _, _ := bytes.Cut(raw, []byte("\r\n\r\n"))
	return string(h)
}

func utf8ASCII(s string) bool {
	for i := range len(s) {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
