package mail

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kaizen-onboard/kaizen/internal/config"
	"github.com/kaizen-onboard/kaizen/internal/testenv"
)

func TestIsPermanent(t *testing.T) {
	t.Parallel()
	r550 := &RecipientError{Address: "a@example.org", Code: 550, Message: "no such user"}
	r450 := &RecipientError{Address: "b@example.org", Code: 450, Message: "try later"}
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{name: "nil", err: nil},
		{name: "550 reply", err: &textproto.Error{Code: 550, Msg: "no"}, want: true},
		{name: "wrapped 554 reply", err: fmt.Errorf("sending: %w", &textproto.Error{Code: 554, Msg: "spam"}), want: true},
		{name: "451 reply", err: &textproto.Error{Code: 451, Msg: "later"}},
		{name: "530 authentication required", err: &textproto.Error{Code: 530, Msg: "auth"}},
		{name: "535 while authenticating", err: &sessionError{&textproto.Error{Code: 535, Msg: "bad credentials"}}},
		{name: "refused recipient", err: r550, want: true},
		{name: "recipient refused for now", err: r450},
		{name: "all recipients refused", err: fmt.Errorf("x: %w", errors.Join(r550, r550)), want: true},
		{name: "some refused for now", err: errors.Join(r550, r450)},
		{name: "network error", err: &net.OpError{Op: "dial", Err: errors.New("refused")}},
		{name: "timeout", err: context.DeadlineExceeded},
		{name: "EOF", err: io.EOF},
		{name: "no STARTTLS", err: &sessionError{ErrNoSTARTTLS}},
		{name: "invalid envelope", err: checkEnvelope("", nil), want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsPermanent(tt.err); got != tt.want {
				t.Errorf("IsPermanent(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

func TestNewTransport(t *testing.T) {
	t.Parallel()
	s := testenv.NewSMTP(t)
	tests := []struct {
		name      string
		configure func(*config.Mail)
		want      string // %T of the transport, "" for an error
	}{
		{name: "maildir", want: "*mail.Maildir"},
		{name: "smtp", configure: func(m *config.Mail) { m.Transport, m.SMTP = "smtp", smtpConfigFor(s) }, want: "*mail.SMTP"},
		{name: "smtp without host", configure: func(m *config.Mail) { m.Transport = "smtp" }},
		{name: "unknown", configure: func(m *config.Mail) { m.Transport = "pigeon" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := config.Defaults().Mail
			cfg.Maildir = filepath.Join(t.TempDir(), "mail")
			if tt.configure != nil {
				tt.configure(&cfg)
			}
			tr, err := NewTransport(cfg, fixedClock, seeded(3), trusting(s))
			if tt.want == "" {
				if err == nil {
					t.Fatalf("NewTransport succeeded with %T, want an error", tr)
				}
				return
			}
			if err != nil {
				t.Fatalf("NewTransport: %v", err)
			}
			if got := fmt.Sprintf("%T", tr); got != tt.want {
				t.Fatalf("transport is %s, want %s", got, tt.want)
			}
			t.Cleanup(func() { _ = tr.(io.Closer).Close() })
			if err := tr.Send(t.Context(), testSender, []string{testRcpt}, testMessage(tt.name)); err != nil {
				t.Fatalf("Send: %v", err)
			}
		})
	}
}

// Render, compose and send a welcome over SMTP, then read it back as the
// server received it.
func TestEndToEndSMTP(t *testing.T) {
	t.Parallel()
	s := testenv.NewSMTP(t)
	tr := newTestSMTP(t, smtpConfigFor(s), trusting(s))
	data, _ := Example(KindWelcome)
	rendered, err := newTestRenderer(t, testCommon()).Render(KindWelcome, data)
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	c := newTestComposer(t)
	raw, err := c.Compose(goldenRecipients(KindWelcome), rendered)
	if err != nil {
		t.Fatalf("Compose: %v", err)
	}
	if err := tr.Send(t.Context(), c.Sender(), []string{testRcpt}, raw); err != nil {
		t.Fatalf("Send: %v", err)
	}
	msgs := s.Messages()
	if len(msgs) != 1 || msgs[0].From != "cloud@example.org" {
		t.Fatalf("server recorded %+v", msgs)
	}
	if !bytes.Equal(msgs[0].Data, raw) {
		t.Errorf("received bytes differ from those sent")
	}
	p := parseComposed(t, msgs[0].Data)
	lf := strings.NewReplacer("\r\n", "\n") // MIME text has CRLF line breaks
	if p.subject != rendered.Subject || lf.Replace(p.parts["text/plain"]) != rendered.Text || lf.Replace(p.parts["text/html"]) != rendered.HTML {
		t.Errorf("received message does not round-trip:\n%q\n%q", p.parts["text/plain"], rendered.Text)
	}
}
