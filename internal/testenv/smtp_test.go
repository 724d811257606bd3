package testenv

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	netsmtp "net/smtp"
	"net/textproto"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jordan-wright/email"
)

const (
	testFrom = "kaizen@example.org"
	testTo   = "new.user@example.org"
)

func TestSMTPSend(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		opts         []SMTPOption
		implicitTLS  bool // dial with TLS from the first byte
		wantSTARTTLS bool
		wantAuth     bool // AUTH advertised once the session is as secure as it gets
		wantTLS      bool
	}{
		{name: "default STARTTLS and AUTH", wantSTARTTLS: true, wantAuth: true, wantTLS: true},
		{name: "custom credentials", opts: []SMTPOption{WithCredentials("alice", "s3cret")}, wantSTARTTLS: true, wantAuth: true, wantTLS: true},
		{name: "implicit TLS", opts: []SMTPOption{WithImplicitTLS()}, implicitTLS: true, wantAuth: true, wantTLS: true},
		{name: "without STARTTLS", opts: []SMTPOption{WithoutSTARTTLS()}, wantAuth: true},
		{name: "without auth", opts: []SMTPOption{WithoutAuth()}, wantSTARTTLS: true, wantTLS: true},
		{name: "plaintext relay", opts: []SMTPOption{WithoutAuth(), WithoutSTARTTLS()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := NewSMTP(t, tt.opts...)
			c := dialSMTP(t, s, tt.implicitTLS)

			if got, _ := c.Extension("STARTTLS"); got != tt.wantSTARTTLS {
				t.Fatalf("STARTTLS offered = %v, want %v", got, tt.wantSTARTTLS)
			}
			if tt.wantSTARTTLS {
				if got, _ := c.Extension("AUTH"); got {
					t.Fatal("AUTH offered before STARTTLS")
				}
				if err := c.StartTLS(s.TLSConfig()); err != nil {
					t.Fatalf("StartTLS: %v", err)
				}
			}
			gotAuth, mechs := c.Extension("AUTH")
			if gotAuth != tt.wantAuth {
				t.Fatalf("AUTH offered = %v, want %v", gotAuth, tt.wantAuth)
			}
			wantUser := ""
			if tt.wantAuth {
				if !slices.Contains(strings.Fields(mechs), "PLAIN") {
					t.Fatalf("AUTH mechanisms = %q, want PLAIN", mechs)
				}
				if err := c.Auth(netsmtp.PlainAuth("", s.Username(), s.Password(), s.Host())); err != nil {
					t.Fatalf("Auth: %v", err)
				}
				wantUser = s.Username()
			}

			if err := sendMail(c, testFrom, []string{testTo}, testMessage("Welcome")); err != nil {
				t.Fatalf("send: %v", err)
			}
			if err := c.Quit(); err != nil {
				t.Fatalf("Quit: %v", err)
			}

			msgs := waitMessages(t, s, 1)
			m := msgs[0]
			if m.From != testFrom || !slices.Equal(m.To, []string{testTo}) {
				t.Errorf("envelope = %q -> %q, want %q -> [%q]", m.From, m.To, testFrom, testTo)
			}
			if m.TLS != tt.wantTLS {
				t.Errorf("TLS = %v, want %v", m.TLS, tt.wantTLS)
			}
			if m.AuthUser != wantUser {
				t.Errorf("AuthUser = %q, want %q", m.AuthUser, wantUser)
			}
			if m.Helo != "client.test" || m.ConnID == 0 {
				t.Errorf("Helo = %q, ConnID = %d", m.Helo, m.ConnID)
			}
			h, err := m.Header()
			if err != nil {
				t.Fatalf("Header: %v", err)
			}
			if got := h.Get("Subject"); got != "Welcome" {
				t.Errorf("Subject = %q, want %q", got, "Welcome")
			}
		})
	}
}

func TestSMTPAuthFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		run      func(*SMTPServer, *netsmtp.Client) error
		wantCode int
	}{
		{
			name: "wrong password",
			run: func(s *SMTPServer, c *netsmtp.Client) error {
				if err := c.StartTLS(s.TLSConfig()); err != nil {
					return fmt.Errorf("StartTLS: %w", err)
				}
				return c.Auth(netsmtp.PlainAuth("", s.Username(), "wrong", s.Host()))
			},
			wantCode: 535,
		},
		{
			name: "wrong username",
			run: func(s *SMTPServer, c *netsmtp.Client) error {
				if err := c.StartTLS(s.TLSConfig()); err != nil {
					return fmt.Errorf("StartTLS: %w", err)
				}
				return c.Auth(netsmtp.PlainAuth("", "mallory", s.Password(), s.Host()))
			},
			wantCode: 535,
		},
		{
			// net/smtp allows PLAIN in clear to 127.0.0.1, so this reaches
			// the server, which must insist on TLS first.
			name: "AUTH before STARTTLS",
			run: func(s *SMTPServer, c *netsmtp.Client) error {
				return c.Auth(netsmtp.PlainAuth("", s.Username(), s.Password(), s.Host()))
			},
			wantCode: 523,
		},
		{
			name: "MAIL before STARTTLS",
			run: func(s *SMTPServer, c *netsmtp.Client) error {
				return c.Mail(testFrom)
			},
			wantCode: 530,
		},
		{
			name: "MAIL after STARTTLS without AUTH",
			run: func(s *SMTPServer, c *netsmtp.Client) error {
				if err := c.StartTLS(s.TLSConfig()); err != nil {
					return fmt.Errorf("StartTLS: %w", err)
				}
				return c.Mail(testFrom)
			},
			wantCode: 530,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := NewSMTP(t)
			c := dialSMTP(t, s, false)
			err := tt.run(s, c)
			if got := replyCode(err); got != tt.wantCode {
				t.Fatalf("reply code = %d (err %v), want %d", got, err, tt.wantCode)
			}
			if n := len(s.Messages()); n != 0 {
				t.Errorf("recorded %d messages, want 0", n)
			}
		})
	}
}

func TestSMTPFailureInjection(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		inject func(*SMTPServer)
		code   int
	}{
		{name: "temporary at MAIL", inject: func(s *SMTPServer) { s.FailNext(2, 451, "Try again later") }, code: 451},
		{name: "permanent at MAIL", inject: func(s *SMTPServer) { s.FailNext(2, 554, "Sender rejected") }, code: 554},
		{name: "temporary at DATA", inject: func(s *SMTPServer) { s.FailNextData(2, 451, "Queue full") }, code: 451},
		{name: "permanent at DATA", inject: func(s *SMTPServer) { s.FailNextData(2, 552, "Too big") }, code: 552},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := NewSMTP(t)
			c := dialAuthenticated(t, s)
			tt.inject(s)

			// Retries on the same connection, as a retrying client would.
			for attempt := 1; attempt <= 2; attempt++ {
				err := sendMail(c, testFrom, []string{testTo}, testMessage("Welcome"))
				if got := replyCode(err); got != tt.code {
					t.Fatalf("attempt %d: reply code = %d (err %v), want %d", attempt, got, err, tt.code)
				}
				if err := c.Reset(); err != nil {
					t.Fatalf("RSET: %v", err)
				}
			}
			if err := sendMail(c, testFrom, []string{testTo}, testMessage("Welcome")); err != nil {
				t.Fatalf("attempt 3: %v", err)
			}
			if n := len(s.Messages()); n != 1 {
				t.Errorf("recorded %d messages, want 1", n)
			}
		})
	}

	t.Run("cancel", func(t *testing.T) {
		t.Parallel()
		s := NewSMTP(t)
		c := dialAuthenticated(t, s)
		s.FailNext(5, 451, "")
		s.FailNext(0, 451, "")
		if err := sendMail(c, testFrom, []string{testTo}, testMessage("Welcome")); err != nil {
			t.Fatalf("send after cancel: %v", err)
		}
	})
}

func TestSMTPRejectRecipient(t *testing.T) {
	t.Parallel()
	s := NewSMTP(t)
	c := dialAuthenticated(t, s)
	const bad = "gone@example.org"
	s.RejectRecipient(bad, 550)

	if err := c.Mail(testFrom); err != nil {
		t.Fatalf("MAIL: %v", err)
	}
	rcpts := []struct {
		addr     string
		wantCode int
	}{
		{testTo, 0},
		{bad, 550},
		{"Gone@Example.ORG", 550}, // addresses compare case-insensitively
		{"other@example.org", 0},
	}
	for _, r := range rcpts {
		if got := replyCode(c.Rcpt(r.addr)); got != r.wantCode {
			t.Errorf("RCPT %s: reply code %d, want %d", r.addr, got, r.wantCode)
		}
	}
	w, err := c.Data()
	if err != nil {
		t.Fatalf("DATA: %v", err)
	}
	if _, err := w.Write(testMessage("Partial")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("end of DATA: %v", err)
	}

	msgs := waitMessages(t, s, 1)
	if want := []string{testTo, "other@example.org"}; !slices.Equal(msgs[0].To, want) {
		t.Errorf("To = %q, want %q", msgs[0].To, want)
	}

	s.RejectRecipient(bad, 0)
	if err := sendMail(c, testFrom, []string{bad}, testMessage("Again")); err != nil {
		t.Fatalf("send after lifting rejection: %v", err)
	}
}

func TestSMTPSetDown(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		opts        []SMTPOption
		implicitTLS bool
	}{
		{name: "plain", opts: []SMTPOption{WithoutAuth()}},
		{name: "implicit TLS", opts: []SMTPOption{WithoutAuth(), WithImplicitTLS()}, implicitTLS: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := NewSMTP(t, tt.opts...)
			open := dialSMTP(t, s, tt.implicitTLS)

			s.SetDown(true)
			// An established (e.g. pooled) connection is dropped ...
			if err := sendMail(open, testFrom, []string{testTo}, testMessage("Lost")); err == nil {
				t.Fatal("send on a connection open before SetDown(true) succeeded")
			}
			// ... and a new one is greeted with 421.
			_, err := newSMTPClient(s, tt.implicitTLS)
			if got := replyCode(err); got != 421 {
				t.Fatalf("dial while down: reply code %d (err %v), want 421", got, err)
			}
			if got := s.RefusedConnections(); got != 1 {
				t.Errorf("RefusedConnections = %d, want 1", got)
			}

			s.SetDown(false)
			c := dialSMTP(t, s, tt.implicitTLS)
			if err := sendMail(c, testFrom, []string{testTo}, testMessage("Recovered")); err != nil {
				t.Fatalf("send after recovery: %v", err)
			}
			if got := s.Connections(); got != 2 {
				t.Errorf("Connections = %d, want 2 (refused ones excluded)", got)
			}
			if n := len(s.Messages()); n != 1 {
				t.Errorf("recorded %d messages, want 1", n)
			}
		})
	}
}

func TestSMTPConnectionReuse(t *testing.T) {
	t.Parallel()

	t.Run("several messages over one connection", func(t *testing.T) {
		t.Parallel()
		s := NewSMTP(t)
		c := dialAuthenticated(t, s)
		for i := range 3 {
			if err := sendMail(c, testFrom, []string{testTo}, testMessage(fmt.Sprintf("msg %d", i))); err != nil {
				t.Fatalf("message %d: %v", i, err)
			}
			if err := c.Reset(); err != nil {
				t.Fatalf("RSET: %v", err)
			}
		}
		msgs := waitMessages(t, s, 3)
		if got := s.Connections(); got != 1 {
			t.Errorf("Connections = %d, want 1", got)
		}
		for i, m := range msgs {
			if m.ConnID != msgs[0].ConnID || !m.TLS || m.AuthUser != s.Username() {
				t.Errorf("message %d: ConnID %d (first %d), TLS %v, AuthUser %q", i, m.ConnID, msgs[0].ConnID, m.TLS, m.AuthUser)
			}
		}

		other := dialAuthenticated(t, s)
		if err := sendMail(other, testFrom, []string{testTo}, testMessage("other")); err != nil {
			t.Fatal(err)
		}
		msgs = waitMessages(t, s, 4)
		if msgs[3].ConnID == msgs[0].ConnID {
			t.Error("second connection reused the first connection's ConnID")
		}
		if got := s.Connections(); got != 2 {
			t.Errorf("Connections = %d, want 2", got)
		}
	})

	t.Run("concurrent connections", func(t *testing.T) {
		t.Parallel()
		s := NewSMTP(t)
		const conns, perConn = 8, 5
		clients := make([]*netsmtp.Client, conns)
		for i := range clients {
			clients[i] = dialAuthenticated(t, s)
		}
		var wg sync.WaitGroup
		for i, c := range clients {
			wg.Go(func() {
				for j := range perConn {
					if err := sendMail(c, testFrom, []string{testTo}, testMessage(fmt.Sprintf("%d/%d", i, j))); err != nil {
						t.Errorf("client %d message %d: %v", i, j, err)
						return
					}
				}
			})
		}
		wg.Wait()
		msgs := waitMessages(t, s, conns*perConn)
		perID := map[uint64]int{}
		for _, m := range msgs {
			perID[m.ConnID]++
		}
		if len(perID) != conns || s.Connections() != conns {
			t.Errorf("distinct ConnIDs = %d, Connections = %d, want %d", len(perID), s.Connections(), conns)
		}
	})
}

func TestSMTPWaitForMessages(t *testing.T) {
	t.Parallel()

	t.Run("times out", func(t *testing.T) {
		t.Parallel()
		s := NewSMTP(t)
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		got, err := s.WaitForMessages(ctx, 1)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want DeadlineExceeded", err)
		}
		if len(got) != 0 {
			t.Errorf("got %d messages, want 0", len(got))
		}
	})

	t.Run("wakes on arrival", func(t *testing.T) {
		t.Parallel()
		s := NewSMTP(t, WithoutAuth(), WithoutSTARTTLS())
		done := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err := s.WaitForMessages(ctx, 2)
			done <- err
		}()
		c := dialSMTP(t, s, false)
		for range 2 {
			if err := sendMail(c, testFrom, []string{testTo}, testMessage("x")); err != nil {
				t.Fatal(err)
			}
		}
		if err := <-done; err != nil {
			t.Fatalf("WaitForMessages: %v", err)
		}
	})

	t.Run("reset", func(t *testing.T) {
		t.Parallel()
		s := NewSMTP(t, WithoutAuth())
		c := dialSMTP(t, s, false)
		if err := sendMail(c, testFrom, []string{testTo}, testMessage("x")); err != nil {
			t.Fatal(err)
		}
		waitMessages(t, s, 1)
		s.FailNext(1, 451, "")
		s.Reset()
		if n, conns := len(s.Messages()), s.Connections(); n != 0 || conns != 0 {
			t.Errorf("after Reset: %d messages, %d connections, want 0, 0", n, conns)
		}
		if err := sendMail(c, testFrom, []string{testTo}, testMessage("y")); err != nil {
			t.Fatalf("send after Reset (injected failure should be gone): %v", err)
		}
	})
}

func TestSMTPCertificate(t *testing.T) {
	t.Parallel()
	s := NewSMTP(t, WithImplicitTLS())
	for _, name := range []string{"127.0.0.1", "localhost"} {
		t.Run(name, func(t *testing.T) {
			cfg := &tls.Config{RootCAs: s.RootCAs(), ServerName: name, MinVersion: tls.VersionTLS12}
			conn, err := tls.Dial("tcp", s.Addr(), cfg)
			if err != nil {
				t.Fatalf("TLS dial verifying %s: %v", name, err)
			}
			_ = conn.Close()
		})
	}
	t.Run("untrusted without RootCAs", func(t *testing.T) {
		conn, err := tls.Dial("tcp", s.Addr(), &tls.Config{ServerName: "localhost"})
		if err == nil {
			_ = conn.Close()
			t.Fatal("handshake succeeded against system roots")
		}
	})
}

// TestSMTPJordanWrightEmail proves the mail library Kaizen uses interoperates
// with the server in each mode it can meet.
func TestSMTPJordanWrightEmail(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		opts     []SMTPOption
		wantTLS  bool
		wantAuth bool
	}{
		{name: "STARTTLS and AUTH", wantTLS: true, wantAuth: true},
		{name: "relay without AUTH", opts: []SMTPOption{WithoutAuth()}, wantTLS: true},
		{name: "plaintext AUTH", opts: []SMTPOption{WithoutSTARTTLS()}, wantAuth: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := NewSMTP(t, tt.opts...)
			e := email.NewEmail()
			e.From = "Kaizen <" + testFrom + ">"
			e.To = []string{testTo}
			e.Cc = []string{"ops@example.org"}
			e.Subject = "Your cloud account"
			e.Text = []byte("Welcome aboard.\n.leading dot\n")

			auth := netsmtp.PlainAuth("", s.Username(), s.Password(), s.Host())
			if err := e.SendWithStartTLS(s.Addr(), auth, s.TLSConfig()); err != nil {
				t.Fatalf("SendWithStartTLS: %v", err)
			}

			m := waitMessages(t, s, 1)[0]
			if m.TLS != tt.wantTLS || (m.AuthUser != "") != tt.wantAuth {
				t.Errorf("TLS = %v, AuthUser = %q; want TLS %v, authenticated %v", m.TLS, m.AuthUser, tt.wantTLS, tt.wantAuth)
			}
			if want := []string{testTo, "ops@example.org"}; m.From != testFrom || !slices.Equal(m.To, want) {
				t.Errorf("envelope = %q -> %q, want %q -> %q", m.From, m.To, testFrom, want)
			}
			h, err := m.Header()
			if err != nil {
				t.Fatalf("Header: %v", err)
			}
			if got := h.Get("Subject"); got != e.Subject {
				t.Errorf("Subject = %q, want %q", got, e.Subject)
			}
			if !strings.Contains(string(m.Data), "\r\n.leading dot") {
				t.Errorf("dot-stuffing not undone in body:\n%s", m.Data)
			}
		})
	}
}

// newSMTPClient dials s and reads the greeting; with implicitTLS the TLS
// handshake comes first.
func newSMTPClient(s *SMTPServer, implicitTLS bool) (*netsmtp.Client, error) {
	if !implicitTLS {
		return netsmtp.Dial(s.Addr())
	}
	conn, err := tls.Dial("tcp", s.Addr(), s.TLSConfig())
	if err != nil {
		return nil, err
	}
	c, err := netsmtp.NewClient(conn, s.Host())
	if err != nil {
		_ = conn.Close()
		return nil, err
	}
	return c, nil
}

// dialSMTP connects and sends EHLO, closing the client when the test ends.
func dialSMTP(t *testing.T, s *SMTPServer, implicitTLS bool) *netsmtp.Client {
	t.Helper()
	c, err := newSMTPClient(s, implicitTLS)
	if err != nil {
		t.Fatalf("dial %s: %v", s.Addr(), err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if err := c.Hello("client.test"); err != nil {
		t.Fatalf("EHLO: %v", err)
	}
	return c
}

// dialAuthenticated returns a client past STARTTLS and AUTH on a default server.
func dialAuthenticated(t *testing.T, s *SMTPServer) *netsmtp.Client {
	t.Helper()
	c := dialSMTP(t, s, false)
	if err := c.StartTLS(s.TLSConfig()); err != nil {
		t.Fatalf("StartTLS: %v", err)
	}
	if err := c.Auth(netsmtp.PlainAuth("", s.Username(), s.Password(), s.Host())); err != nil {
		t.Fatalf("Auth: %v", err)
	}
	return c
}

func sendMail(c *netsmtp.Client, from string, to []string, msg []byte) error {
	if err := c.Mail(from); err != nil {
		return err
	}
	for _, rcpt := range to {
		if err := c.Rcpt(rcpt); err != nil {
			return err
		}
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(msg); err != nil {
		return err
	}
	return w.Close()
}

func testMessage(subject string) []byte {
	return []byte("From: " + testFrom + "\r\nTo: " + testTo + "\r\nSubject: " + subject + "\r\n\r\nHello.\r\n")
}

func waitMessages(t *testing.T, s *SMTPServer, n int) []ReceivedMessage {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	msgs, err := s.WaitForMessages(ctx, n)
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}

// replyCode returns the SMTP reply code carried by err, or 0.
func replyCode(err error) int {
	var te *textproto.Error
	if errors.As(err, &te) {
		return te.Code
	}
	return 0
}
