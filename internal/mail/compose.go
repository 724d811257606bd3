package mail

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/mail"
	"net/textproto"
	"strings"
	"sync"
	"time"

	"github.com/jordan-wright/email"
)

// maxHeaderLine is where header lines are folded (RFC 5322 section 2.1.1).
const maxHeaderLine = 78

// Composer turns a Rendered message into RFC 5322 bytes. It is safe for
// concurrent use.
type Composer struct {
	from    mail.Address
	replyTo *mail.Address
	domain  string // of From, for Message-IDs
	now     func() time.Time

	mu     sync.Mutex // guards random, which need not be concurrency-safe
	random io.Reader
}

// NewComposer sends as from (e.g. "Kaizen Cloud <kaizen@example.org>") and,
// when replyTo is not empty, asks replies to go there. now dates messages
// and random makes Message-IDs and MIME boundaries (crypto/rand.Reader in
// production; a seeded source makes the bytes reproducible in tests).
func NewComposer(from, replyTo string, now func() time.Time, random io.Reader) (*Composer, error) {
	f, err := mail.ParseAddress(from)
	if err != nil {
		return nil, fmt.Errorf("mail: sender %q: %w", from, err)
	}
	_, domain, ok := strings.Cut(f.Address, "@")
	if !ok || domain == "" {
		return nil, fmt.Errorf("mail: sender %q has no domain", from)
	}
	c := &Composer{from: *f, domain: domain, now: now, random: random}
	if replyTo != "" {
		if c.replyTo, err = mail.ParseAddress(replyTo); err != nil {
			return nil, fmt.Errorf("mail: reply-to %q: %w", replyTo, err)
		}
	}
	return c, nil
}

// Sender is the bare From address, for the SMTP envelope.
func (c *Composer) Sender() string { return c.from.Address }

// Compose builds a multipart/alternative message (text, then HTML) to the
// given recipients, whose Address must be a bare address.
func (c *Composer) Compose(to []mail.Address, r Rendered) ([]byte, error) {
	if len(to) == 0 {
		return nil, errors.New("mail: compose: no recipients")
	}
	subject := oneLine(r.Subject) // Rendered may have been built by hand
	if subject == "" || r.Text == "" || r.HTML == "" {
		return nil, errors.New("mail: compose: subject, text and HTML are all required")
	}
	rcpts := make([]string, len(to))
	for i, a := range to {
		p, err := mail.ParseAddress(a.Address)
		if err != nil || p.Address != a.Address {
			return nil, fmt.Errorf("mail: compose: recipient %q is not a plain address", a.Address)
		}
		rcpts[i] = (&mail.Address{Name: oneLine(a.Name), Address: a.Address}).String()
	}
	var rnd [32]byte
	if err := c.read(rnd[:]); err != nil {
		return nil, err
	}
	msgID := "<" + hex.EncodeToString(rnd[:16]) + "@" + c.domain + ">"
	// "=_" cannot occur in quoted-printable text, so the boundary cannot
	// clash with the bodies.
	boundary := "=_" + hex.EncodeToString(rnd[16:])
	date := c.now().Format(time.RFC1123Z)

	e := email.NewEmail()
	e.From = c.from.String()
	e.To = rcpts
	e.Subject = subject
	e.Text = []byte(r.Text)
	e.HTML = []byte(r.HTML)
	e.Headers.Set("Date", date)
	e.Headers.Set("Message-Id", msgID)
	raw, err := e.Bytes()
	if err != nil {
		return nil, fmt.Errorf("mail: compose: %w", err)
	}
	body, err := rebound(raw, boundary)
	if err != nil {
		return nil, err
	}

	// jordan-wright writes headers in map order, splits display names at
	// commas and picks a random boundary; the top-level header is written
	// here instead, in a fixed order, so identical input gives identical
	// bytes.
	var b bytes.Buffer
	writeHeader(&b, "Date", date)
	writeHeader(&b, "From", c.from.String())
	writeHeader(&b, "To", strings.Join(rcpts, ", "))
	if c.replyTo != nil {
		writeHeader(&b, "Reply-To", c.replyTo.String())
	}
	writeHeader(&b, "Subject", mime.QEncoding.Encode("utf-8", subject))
	writeHeader(&b, "Message-ID", msgID)
	writeHeader(&b, "MIME-Version", "1.0")
	// RFC 3834: keeps vacation responders from answering.
	writeHeader(&b, "Auto-Submitted", "auto-generated")
	writeHeader(&b, "Content-Type", mime.FormatMediaType("multipart/alternative", map[string]string{"boundary": boundary}))
	b.WriteString("\r\n")
	b.Write(body)
	return b.Bytes(), nil
}

func (c *Composer) read(p []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, err := io.ReadFull(c.random, p); err != nil {
		return fmt.Errorf("mail: compose: reading random source: %w", err)
	}
	return nil
}

// rebound returns the body of jordan-wright's message with its boundary
// replaced by ours.
func rebound(raw []byte, boundary string) ([]byte, error) {
	tp := textproto.NewReader(bufio.NewReader(bytes.NewReader(raw)))
	h, err := tp.ReadMIMEHeader()
	if err != nil {
		return nil, fmt.Errorf("mail: compose: reading built header: %w", err)
	}
	mt, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil || mt != "multipart/alternative" || params["boundary"] == "" {
		return nil, fmt.Errorf("mail: compose: unexpected built content type %q", h.Get("Content-Type"))
	}
	_, body, ok := bytes.Cut(raw, []byte("\r\n\r\n"))
	if !ok {
		return nil, errors.New("mail: compose: built message has no body")
	}
	return bytes.ReplaceAll(body, []byte("--"+params["boundary"]), []byte("--"+boundary)), nil
}

// writeHeader writes one field, folded at spaces to keep lines short.
func writeHeader(b *bytes.Buffer, name, value string) {
	line := name + ": " + value
	for len(line) > maxHeaderLine {
		// The last space that fits, else the first one after; index 0 is
		// the space a continuation line starts with.
		i := strings.LastIndexByte(line[:maxHeaderLine], ' ')
		if i <= 0 {
			j := strings.IndexByte(line[maxHeaderLine:], ' ')
			if j < 0 {
				break
			}
			i = maxHeaderLine + j
		}
		b.WriteString(line[:i])
		b.WriteString("\r\n")
		line = line[i:]
	}
	b.WriteString(line)
	b.WriteString("\r\n")
}
