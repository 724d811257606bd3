package mail

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kaizen-onboard/kaizen/internal/config"
	"github.com/kaizen-onboard/kaizen/internal/testenv"
)

const (
	testSender = "cloud@example.org"
	testRcpt   = "ada@example.edu"
)

func testMessage(subject string) []byte {
	return []byte("From: " + testSender + "\r\nTo: " + testRcpt + "\r\nSubject: " + subject + "\r\n\r\nHello.\r\n")
}

// smtpConfigFor points the default settings at s with its credentials.
func smtpConfigFor(s *testenv.SMTPServer) config.SMTP {
	c := config.Defaults().Mail.SMTP
	c.Host, c.Port = s.Host(), s.Port()
	c.Username, c.Password = s.Username(), config.NewSecret(s.Password(), "test")
	c.EHLOName = "kaizen.test"
	c.Timeout = config.Dur(10 * time.Second)
	return c
}

// trusting returns options that trust s's test CA.
func trusting(s *testenv.SMTPServer) SMTPOptions { return SMTPOptions{RootCAs: s.RootCAs()} }

func newTestSMTP(t *testing.T, cfg config.SMTP, opts SMTPOptions) *SMTP {
	t.Helper()
	opts.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	tr, err := NewSMTP(cfg, opts)
	if err != nil {
		t.Fatalf("NewSMTP: %v", err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	return tr
}

func TestSMTPSecurity(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		server    []testenv.SMTPOption
		configure func(*config.SMTP)
		untrusted bool // keep the system roots, which do not know the test CA
		wantErr   error
		wantErrIn string
		wantTLS   bool
		wantAuth  bool
	}{
		{name: "STARTTLS and AUTH", wantTLS: true, wantAuth: true},
		{name: "no STARTTLS is refused", server: []testenv.SMTPOption{testenv.WithoutSTARTTLS()}, wantErr: ErrNoSTARTTLS},
		{name: "no STARTTLS allowed by allow_insecure", server: []testenv.SMTPOption{testenv.WithoutSTARTTLS()},
			configure: func(c *config.SMTP) { c.AllowInsecure = true }, wantAuth: true},
		{name: "credentials but no AUTH is refused", server: []testenv.SMTPOption{testenv.WithoutAuth()}, wantErr: ErrNoAuth},
		{name: "relay without credentials", server: []testenv.SMTPOption{testenv.WithoutAuth()},
			configure: func(c *config.SMTP) { c.Username, c.Password = "", config.Secret{} }, wantTLS: true},
		{name: "implicit TLS", server: []testenv.SMTPOption{testenv.WithImplicitTLS()},
			configure: func(c *config.SMTP) { c.TLS = "implicit" }, wantTLS: true, wantAuth: true},
		{name: "tls none", server: []testenv.SMTPOption{testenv.WithoutSTARTTLS()},
			configure: func(c *config.SMTP) { c.TLS, c.AllowInsecure = "none", true }, wantAuth: true},
		{name: "untrusted certificate", untrusted: true, wantErrIn: "certificate"},
		{name: "untrusted certificate, implicit TLS", server: []testenv.SMTPOption{testenv.WithImplicitTLS()},
			configure: func(c *config.SMTP) { c.TLS = "implicit" }, untrusted: true, wantErrIn: "certificate"},
		{name: "wrong password", configure: func(c *config.SMTP) { c.Password = config.NewSecret("hunter2-wrong", "test") },
			wantErrIn: "535"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := testenv.NewSMTP(t, tt.server...)
			cfg := smtpConfigFor(s)
			if tt.configure != nil {
				tt.configure(&cfg)
			}
			opts := trusting(s)
			if tt.untrusted {
				opts = SMTPOptions{}
			}
			tr := newTestSMTP(t, cfg, opts)
			err := tr.Send(t.Context(), testSender, []string{testRcpt}, testMessage(tt.name))

			if tt.wantErr != nil || tt.wantErrIn != "" {
				if err == nil {
					t.Fatal("Send succeeded, want an error")
				}
				t.Logf("error: %v", err)
				if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
					t.Errorf("error = %v, want %v", err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErrIn) {
					t.Errorf("error = %v, want it to mention %q", err, tt.wantErrIn)
				}
				if IsPermanent(err) {
					t.Errorf("IsPermanent(%v) = true; a session failure is not the message's fault", err)
				}
				if pw := cfg.Password.Reveal(); pw != "" && strings.Contains(err.Error(), pw) {
					t.Errorf("error reveals the password: %v", err)
				}
				if n := len(s.Messages()); n != 0 {
					t.Errorf("server recorded %d messages, want none", n)
				}
				return
			}
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			msgs := s.Messages()
			if len(msgs) != 1 {
				t.Fatalf("server recorded %d messages, want 1", len(msgs))
			}
			m := msgs[0]
			if m.TLS != tt.wantTLS {
				t.Errorf("TLS = %v, want %v", m.TLS, tt.wantTLS)
			}
			wantUser := ""
			if tt.wantAuth {
				wantUser = s.Username()
			}
			if m.AuthUser != wantUser {
				t.Errorf("AuthUser = %q, want %q", m.AuthUser, wantUser)
			}
			if m.Helo != "kaizen.test" || m.From != testSender || !slices.Equal(m.To, []string{testRcpt}) {
				t.Errorf("session = EHLO %q, MAIL FROM %q, RCPT TO %q", m.Helo, m.From, m.To)
			}
		})
	}
}

func TestSMTPReplies(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		inject        func(*testenv.SMTPServer)
		wantPermanent bool
		wantCode      string
	}{
		{name: "451 at MAIL is temporary", inject: func(s *testenv.SMTPServer) { s.FailNext(1, 451, "Try again later") }, wantCode: "451"},
		{name: "550 at MAIL is permanent", inject: func(s *testenv.SMTPServer) { s.FailNext(1, 550, "Sender refused") }, wantPermanent: true, wantCode: "550"},
		{name: "452 after DATA is temporary", inject: func(s *testenv.SMTPServer) { s.FailNextData(1, 452, "Out of space") }, wantCode: "452"},
		{name: "554 after DATA is permanent", inject: func(s *testenv.SMTPServer) { s.FailNextData(1, 554, "Looks like spam") }, wantPermanent: true, wantCode: "554"},
		{name: "server down is temporary", inject: func(s *testenv.SMTPServer) { s.SetDown(true) }, wantCode: "421"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := testenv.NewSMTP(t)
			tr := newTestSMTP(t, smtpConfigFor(s), trusting(s))
			tt.inject(s)
			err := tr.Send(t.Context(), testSender, []string{testRcpt}, testMessage("first"))
			if err == nil {
				t.Fatal("Send succeeded, want an error")
			}
			if !strings.Contains(err.Error(), tt.wantCode) {
				t.Errorf("error = %v, want code %s", err, tt.wantCode)
			}
			if got := IsPermanent(err); got != tt.wantPermanent {
				t.Errorf("IsPermanent(%v) = %v, want %v", err, got, tt.wantPermanent)
			}
			if n := len(s.Messages()); n != 0 {
				t.Fatalf("server recorded %d messages, want none", n)
			}

			s.SetDown(false)
			if err := tr.Send(t.Context(), testSender, []string{testRcpt}, testMessage("second")); err != nil {
				t.Fatalf("Send after the failure: %v", err)
			}
		})
	}
}

func TestSMTPNetworkErrors(t *testing.T) {
	t.Parallel()
	s := testenv.NewSMTP(t)
	refused := func(context.Context, string, string) (net.Conn, error) {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	}
	tests := []struct {
		name string
		dial DialFunc
		ctx  func(*testing.T) context.Context
	}{
		{name: "connection refused", dial: refused, ctx: func(t *testing.T) context.Context { return t.Context() }},
		{name: "context cancelled", ctx: func(t *testing.T) context.Context {
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			return ctx
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tr := newTestSMTP(t, smtpConfigFor(s), SMTPOptions{RootCAs: s.RootCAs(), Dial: tt.dial})
			err := tr.Send(tt.ctx(t), testSender, []string{testRcpt}, testMessage(tt.name))
			if err == nil {
				t.Fatal("Send succeeded, want an error")
			}
			if IsPermanent(err) {
				t.Errorf("IsPermanent(%v) = true, want false", err)
			}
		})
	}
}

func TestSMTPRecipients(t *testing.T) {
	t.Parallel()
	const (
		good1 = "good1@example.edu"
		good2 = "good2@example.edu"
		bad1  = "bad1@example.edu"
		bad2  = "bad2@example.edu"
	)
	tests := []struct {
		name          string
		reject        map[string]int
		to            []string
		wantRefused   []string
		wantDelivered []string // nil: nothing delivered
		wantPermanent bool
	}{
		{name: "one of three refused", reject: map[string]int{bad1: 550}, to: []string{good1, bad1, good2},
			wantRefused: []string{bad1}, wantDelivered: []string{good1, good2}, wantPermanent: true},
		{name: "one refused for now", reject: map[string]int{bad1: 450}, to: []string{good1, bad1},
			wantRefused: []string{bad1}, wantDelivered: []string{good1}},
		{name: "every one refused", reject: map[string]int{bad1: 550, bad2: 551}, to: []string{bad1, bad2},
			wantRefused: []string{bad1, bad2}, wantPermanent: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := testenv.NewSMTP(t)
			for a, code := range tt.reject {
				s.RejectRecipient(a, code)
			}
			tr := newTestSMTP(t, smtpConfigFor(s), trusting(s))
			err := tr.Send(t.Context(), testSender, tt.to, testMessage(tt.name))
			var re *RecipientError
			if !errors.As(err, &re) {
				t.Fatalf("error = %v, want a *RecipientError", err)
			}
			var refused []string
			for _, r := range RefusedRecipients(err) {
				refused = append(refused, r.Address)
				if r.Code != tt.reject[r.Address] || r.Message == "" {
					t.Errorf("refusal of %s = %d %q, want code %d and a message", r.Address, r.Code, r.Message, tt.reject[r.Address])
				}
			}
			if !slices.Equal(refused, tt.wantRefused) {
				t.Errorf("refused = %v, want %v", refused, tt.wantRefused)
			}
			if got := IsPermanent(err); got != tt.wantPermanent {
				t.Errorf("IsPermanent = %v, want %v", got, tt.wantPermanent)
			}
			var delivered []string
			for _, m := range s.Messages() {
				delivered = append(delivered, m.To...)
			}
			if !slices.Equal(delivered, tt.wantDelivered) {
				t.Errorf("delivered to %v, want %v", delivered, tt.wantDelivered)
			}
			// The connection is still good for the next message.
			if err := tr.Send(t.Context(), testSender, []string{good1}, testMessage("next")); err != nil {
				t.Fatalf("next Send: %v", err)
			}
			if n := s.Connections(); n != 1 {
				t.Errorf("connections = %d, want 1", n)
			}
		})
	}
}

func TestSMTPInvalidEnvelope(t *testing.T) {
	t.Parallel()
	s := testenv.NewSMTP(t)
	tr := newTestSMTP(t, smtpConfigFor(s), trusting(s))
	tests := []struct {
		name string
		from string
		to   []string
	}{
		{name: "no recipients", from: testSender},
		{name: "line break in recipient", from: testSender, to: []string{"a@example.org\r\nRCPT TO:<b@example.org>"}},
		{name: "empty sender", to: []string{testRcpt}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tr.Send(t.Context(), tt.from, tt.to, testMessage(tt.name))
			if err == nil || !IsPermanent(err) {
				t.Fatalf("Send error = %v, want a permanent error", err)
			}
		})
	}
	if n := s.Connections(); n != 0 {
		t.Errorf("connections = %d, want none for invalid envelopes", n)
	}
}

func TestNewSMTPConfig(t *testing.T) {
	t.Parallel()
	base := config.Defaults().Mail.SMTP
	base.Host = "mail.example.org"
	tests := []struct {
		name      string
		configure func(*config.SMTP)
		wantErr   string
	}{
		{name: "defaults with a host"},
		{name: "no host", configure: func(c *config.SMTP) { c.Host = "" }, wantErr: "host"},
		{name: "bad port", configure: func(c *config.SMTP) { c.Port = 0 }, wantErr: "port"},
		{name: "unknown tls", configure: func(c *config.SMTP) { c.TLS = "ssl" }, wantErr: "tls"},
		{name: "none without allow_insecure", configure: func(c *config.SMTP) { c.TLS = "none" }, wantErr: "allow_insecure"},
		{name: "username without password", configure: func(c *config.SMTP) { c.Username = "kaizen" }, wantErr: "password"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := base
			if tt.configure != nil {
				tt.configure(&cfg)
			}
			_, err := NewSMTP(cfg, SMTPOptions{})
			if (err != nil) != (tt.wantErr != "") || err != nil && !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("NewSMTP error = %v, want one mentioning %q", err, tt.wantErr)
			}
		})
	}
}

func TestSMTPAfterClose(t *testing.T) {
	t.Parallel()
	s := testenv.NewSMTP(t)
	tr := newTestSMTP(t, smtpConfigFor(s), trusting(s))
	if err := tr.Send(t.Context(), testSender, []string{testRcpt}, testMessage("before")); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if err := tr.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	err := tr.Send(t.Context(), testSender, []string{testRcpt}, testMessage("after"))
	if !errors.Is(err, errClosed) {
		t.Fatalf("Send after Close = %v, want %v", err, errClosed)
	}
}

// sendN sends n messages, concurrently when parallel is set.
func sendN(t *testing.T, tr Transport, n int, parallel bool) {
	t.Helper()
	errs := make(chan error, n)
	send := func(i int) {
		errs <- tr.Send(t.Context(), testSender, []string{testRcpt}, testMessage(fmt.Sprint("message ", i)))
	}
	for i := range n {
		if parallel {
			go send(i)
		} else {
			send(i)
		}
	}
	for range n {
		if err := <-errs; err != nil {
			t.Errorf("Send: %v", err)
		}
	}
}

// hidePipelining relays between a client and server, renaming the
// server's PIPELINING capability so the client talks one command at a time
// (plaintext only: it must read the EHLO reply).
func hidePipelining(t *testing.T, server string) (addr string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", server)
			if err != nil {
				client.Close()
				continue
			}
			go func() { io.Copy(up, client); up.Close() }()
			go func() {
				r := bufio.NewReader(up)
				for {
					line, err := r.ReadString('\n')
					line = strings.Replace(line, "PIPELINING", "XPIPELINX", 1)
					if _, werr := client.Write([]byte(line)); werr != nil || err != nil {
						client.Close()
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// TestSMTPWithoutPipelining runs the transaction one command at a time and
// checks that failures leave the pooled session usable.
func TestSMTPWithoutPipelining(t *testing.T) {
	t.Parallel()
	srv := testenv.NewSMTP(t, testenv.WithoutSTARTTLS(), testenv.WithoutAuth())
	host, port, _ := net.SplitHostPort(hidePipelining(t, srv.Addr()))
	cfg := config.Defaults().Mail.SMTP
	cfg.Host, cfg.TLS, cfg.AllowInsecure, cfg.PoolSize = host, "none", true, 1
	fmt.Sscan(port, &cfg.Port)
	tr := newTestSMTP(t, cfg, SMTPOptions{})
	ctx := t.Context()
	send := func(to ...string) error { return tr.Send(ctx, testSender, to, testMessage("hi")) }

	if err := send(testRcpt); err != nil {
		t.Fatalf("plain send: %v", err)
	}
	if c := tr.pool.take(); c == nil || c.pipelining {
		t.Fatal("the session should exist and not pipeline")
	} else {
		tr.pool.put(c, nil)
	}
	srv.FailNext(1, 451, "busy")
	if err := send(testRcpt); err == nil || IsPermanent(err) {
		t.Fatalf("MAIL refused with 451: got %v, want a temporary error", err)
	}
	srv.RejectRecipient("nobody@example.edu", 550)
	err := send("nobody@example.edu")
	if err == nil || !IsPermanent(err) {
		t.Fatalf("every recipient refused: got %v, want a permanent error", err)
	}
	err = send(testRcpt, "nobody@example.edu")
	if refused := RefusedRecipients(err); len(refused) != 1 || refused[0].Address != "nobody@example.edu" {
		t.Fatalf("one of two refused: got %v", err)
	}
	if err := send(testRcpt); err != nil {
		t.Fatalf("send after the failures: %v", err)
	}
	if got := len(srv.Messages()); got != 3 {
		t.Errorf("server received %d messages, want 3", got)
	}
	if got := srv.Connections(); got != 1 {
		t.Errorf("%d connections, want the one session reused throughout", got)
	}
}

func TestSMTPPipelinesWhenOffered(t *testing.T) {
	t.Parallel()
	srv := testenv.NewSMTP(t)
	tr := newTestSMTP(t, smtpConfigFor(srv), trusting(srv))
	if err := tr.Send(t.Context(), testSender, []string{testRcpt}, testMessage("hi")); err != nil {
		t.Fatal(err)
	}
	c := tr.pool.take()
	if c == nil || !c.pipelining {
		t.Fatal("the session should pipeline: the server offers PIPELINING")
	}
	tr.pool.put(c, nil)
}

func TestSMTPCAFile(t *testing.T) {
	t.Parallel()
	srv := testenv.NewSMTP(t)
	cfg := smtpConfigFor(srv)
	send := func(cfg config.SMTP) error {
		tr := newTestSMTP(t, cfg, SMTPOptions{})
		return tr.Send(t.Context(), testSender, []string{testRcpt}, testMessage("ca"))
	}
	// Without the test CA the server's certificate is not trusted.
	if err := send(cfg); err == nil {
		t.Fatal("sent to a server whose certificate is not trusted")
	}
	cfg.CAFile = filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(cfg.CAFile, srv.CACertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := send(cfg); err != nil {
		t.Fatalf("with mail.smtp.ca_file: %v", err)
	}
	cfg.CAFile = filepath.Join(t.TempDir(), "empty.pem")
	os.WriteFile(cfg.CAFile, []byte("not a certificate"), 0o600)
	if _, err := NewSMTP(cfg, SMTPOptions{}); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Errorf("a CA file without certificates: %v", err)
	}
}

// TestSMTPSendAfter: the server takes a message only after ready returns
// nil; when ready fails, the message is dropped with its session and the
// next message goes out on a new one.
func TestSMTPSendAfter(t *testing.T) {
	t.Parallel()
	s := testenv.NewSMTP(t)
	tr := newTestSMTP(t, smtpConfigFor(s), trusting(s))
	ctx := t.Context()

	calls := 0
	err := tr.SendAfter(ctx, testSender, []string{testRcpt}, testMessage("held"), func() error {
		calls++
		if n := len(s.Messages()); n != 0 {
			t.Errorf("the server took %d message(s) before ready returned", n)
		}
		return nil
	})
	if err != nil || calls != 1 {
		t.Fatalf("SendAfter = %v with ready called %d times, want nil and once", err, calls)
	}
	if n := len(s.Messages()); n != 1 {
		t.Fatalf("the server has %d messages after ready returned nil, want 1", n)
	}

	notReady := errors.New("previous delivery not recorded")
	err = tr.SendAfter(ctx, testSender, []string{testRcpt}, testMessage("dropped"), func() error { return notReady })
	if !errors.Is(err, notReady) || IsPermanent(err) {
		t.Fatalf("SendAfter with a failing ready = %v, want a temporary error wrapping %v", err, notReady)
	}
	if err := tr.Send(ctx, testSender, []string{testRcpt}, testMessage("next")); err != nil {
		t.Fatalf("Send after a dropped message: %v", err)
	}
	var subjects []string
	for _, m := range s.Messages() {
		h, err := m.Header()
		if err != nil {
			t.Fatal(err)
		}
		subjects = append(subjects, h.Get("Subject"))
	}
	if fmt.Sprint(subjects) != "[held next]" {
		t.Errorf("the server took %v, want [held next]", subjects)
	}
	if n := s.Connections(); n != 2 {
		t.Errorf("%d connections, want 2: the session of the dropped message is not reused", n)
	}
}
