package testenv

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"mime/multipart"
	"net"
	"net/mail"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// SMTPOption configures NewSMTP.
type SMTPOption func(*smtpConfig)

type smtpConfig struct {
	plaintext   bool
	implicitTLS bool
	noAuth      bool
	username    string
	password    string
}

// WithoutSTARTTLS serves plaintext only and never offers STARTTLS. AUTH is
// then offered in plaintext (unless WithoutAuth), as some legacy relays do.
func WithoutSTARTTLS() SMTPOption {
	return func(c *smtpConfig) { c.plaintext = true }
}

// WithoutAuth never advertises AUTH and accepts mail unauthenticated, like a
// local Postfix relay that trusts its network.
func WithoutAuth() SMTPOption {
	return func(c *smtpConfig) { c.noAuth = true }
}

// WithImplicitTLS speaks TLS from the first byte (SMTPS, port 465 style);
// STARTTLS is then not offered because the session is already encrypted.
func WithImplicitTLS() SMTPOption {
	return func(c *smtpConfig) { c.implicitTLS = true }
}

// WithCredentials replaces the generated AUTH PLAIN username and password.
func WithCredentials(username, password string) SMTPOption {
	return func(c *smtpConfig) { c.username, c.password = username, password }
}

// ReceivedMessage is one message the server accepted (DATA answered 250).
type ReceivedMessage struct {
	// ConnID identifies the TCP connection the message arrived on; it is
	// unique within one SMTPServer and survives STARTTLS.
	ConnID   uint64
	Helo     string // EHLO/HELO argument of the session
	From     string // MAIL FROM reverse path, without angle brackets
	To       []string
	Data     []byte // as received: CRLF line endings, dot-stuffing removed
	TLS      bool   // the transaction ran over TLS (STARTTLS or implicit)
	AuthUser string // AUTH username, empty when unauthenticated
	Received time.Time
}

// Parsed parses Data with net/mail. Each call returns an independent body
// reader.
func (m ReceivedMessage) Parsed() (*mail.Message, error) {
	return mail.ReadMessage(bytes.NewReader(m.Data))
}

// Header returns the parsed message header.
func (m ReceivedMessage) Header() (mail.Header, error) {
	msg, err := m.Parsed()
	if err != nil {
		return nil, err
	}
	return msg.Header, nil
}

// SMTPServer is an in-process SMTP server for tests. All methods are safe for
// concurrent use, including while clients are connected.
type SMTPServer struct {
	t         testing.TB
	cfg       smtpConfig
	pki       *testPKI
	serverTLS *tls.Config
	srv       *smtp.Server
	ln        net.Listener
	port      int
	serveDone chan struct{}
	refuseWG  sync.WaitGroup // goroutines answering 421 while down

	mu          sync.Mutex
	closed      bool
	down        bool
	conns       map[*smtpConn]struct{}
	lastConnID  uint64
	connections int
	refused     int
	messages    []ReceivedMessage
	changed     chan struct{} // closed and replaced whenever messages grows
	failMail    injectedFailure
	failData    injectedFailure
	rejectRcpt  map[string]int // lower-cased address -> reply code
}

type injectedFailure struct {
	remaining int
	err       *smtp.SMTPError
}

// NewSMTP starts a server on 127.0.0.1 with a random port and stops it when
// the test ends. By default it offers STARTTLS and requires AUTH PLAIN with
// generated credentials; AUTH is advertised only after STARTTLS.
func NewSMTP(t testing.TB, opts ...SMTPOption) *SMTPServer {
	t.Helper()

	cfg := smtpConfig{
		username: "kaizen-" + strings.ToLower(rand.Text()[:8]),
		password: rand.Text(),
	}
	for _, opt := range opts {
		opt(&cfg)
	}
	if cfg.implicitTLS && cfg.plaintext {
		t.Fatal("testenv: WithImplicitTLS and WithoutSTARTTLS are contradictory")
	}
	if !cfg.noAuth && (cfg.username == "" || cfg.password == "") {
		t.Fatal("testenv: SMTP credentials must not be empty")
	}

	pki, err := newTestPKI()
	if err != nil {
		t.Fatalf("testenv: SMTP certificates: %v", err)
	}

	s := &SMTPServer{
		t:          t,
		cfg:        cfg,
		pki:        pki,
		serverTLS:  pki.serverConfig(),
		serveDone:  make(chan struct{}),
		conns:      make(map[*smtpConn]struct{}),
		changed:    make(chan struct{}),
		rejectRcpt: make(map[string]int),
	}

	srv := smtp.NewServer(smtp.BackendFunc(s.newSession))
	srv.Domain = "localhost"
	srv.ErrorLog = smtpLogger{t: t}
	// Generous, but bounded, so a wedged client cannot hang a test forever.
	srv.ReadTimeout = time.Minute
	srv.WriteTimeout = time.Minute
	// go-smtp offers STARTTLS iff TLSConfig is set and the connection is
	// not yet encrypted, so implicit TLS needs no special case.
	if !cfg.plaintext {
		srv.TLSConfig = s.serverTLS
	}
	// Real servers never offer AUTH in plaintext when TLS is available; with
	// no TLS at all the only way to authenticate is in plaintext.
	srv.AllowInsecureAuth = cfg.plaintext
	s.srv = srv

	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: SMTP listen: %v", err)
	}
	s.port = raw.Addr().(*net.TCPAddr).Port
	s.ln = &smtpListener{Listener: raw, s: s}

	go func() {
		defer close(s.serveDone)
		_ = srv.Serve(s.ln) // returns once the listener is closed
	}()
	t.Cleanup(s.close)
	return s
}

// Addr returns host:port to dial.
func (s *SMTPServer) Addr() string { return net.JoinHostPort(s.Host(), strconv.Itoa(s.port)) }

// Host returns the IP address the server listens on.
func (s *SMTPServer) Host() string { return "127.0.0.1" }

// Port returns the TCP port the server listens on.
func (s *SMTPServer) Port() int { return s.port }

// Username returns the AUTH PLAIN username.
func (s *SMTPServer) Username() string { return s.cfg.username }

// Password returns the AUTH PLAIN password.
func (s *SMTPServer) Password() string { return s.cfg.password }

// RootCAs returns a pool trusting only this server's test CA. The server
// certificate is valid for 127.0.0.1, ::1 and localhost.
func (s *SMTPServer) RootCAs() *x509.CertPool { return s.pki.roots.Clone() }

// CACertPEM is the test CA's certificate in PEM, for clients that read
// their trusted CAs from a file (mail.smtp.ca_file).
func (s *SMTPServer) CACertPEM() []byte { return bytes.Clone(s.pki.caPEM) }

// CAFile writes CACertPEM to a new file in t's temporary directory and
// returns its path, for mail.smtp.ca_file.
func (s *SMTPServer) CAFile(t testing.TB) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "smtp-ca.pem")
	if err := os.WriteFile(p, s.CACertPEM(), 0o600); err != nil {
		t.Fatalf("testenv: writing the SMTP CA: %v", err)
	}
	return p
}

// TLSConfig returns a new client configuration that verifies the server as
// Host(); set ServerName to "localhost" when dialing by name.
func (s *SMTPServer) TLSConfig() *tls.Config { return s.pki.clientConfig(s.Host()) }

// FailNext makes the next n transactions fail at MAIL FROM with code (4xx is
// a temporary, 5xx a permanent failure) and msg. n <= 0 cancels. It panics
// unless code is 4xx or 5xx.
func (s *SMTPServer) FailNext(n, code int, msg string) {
	s.setFailure(&s.failMail, n, code, msg)
}

// FailNextData makes the next n transactions fail after the message body was
// transferred (the reply to the final "."), so nothing is recorded. n <= 0
// cancels. It panics unless code is 4xx or 5xx.
func (s *SMTPServer) FailNextData(n, code int, msg string) {
	s.setFailure(&s.failData, n, code, msg)
}

func (s *SMTPServer) setFailure(f *injectedFailure, n, code int, msg string) {
	mustReplyCode(code)
	if msg == "" {
		msg = "Injected failure"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	*f = injectedFailure{remaining: max(n, 0), err: &smtp.SMTPError{Code: code, Message: msg}}
}

// takeFailure consumes one injected failure, if any is pending.
func (s *SMTPServer) takeFailure(f *injectedFailure) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f.remaining <= 0 {
		return nil
	}
	f.remaining--
	return f.err
}

// RejectRecipient makes RCPT TO for addr (case-insensitive) fail with code,
// typically 550 (or 4xx for a temporary per-recipient failure); other
// recipients are still accepted. code 0 removes the rejection.
func (s *SMTPServer) RejectRecipient(addr string, code int) {
	key := strings.ToLower(addr)
	s.mu.Lock()
	defer s.mu.Unlock()
	if code == 0 {
		delete(s.rejectRcpt, key)
		return
	}
	mustReplyCode(code)
	s.rejectRcpt[key] = code
}

func mustReplyCode(code int) {
	if code < 400 || code > 599 {
		panic(fmt.Sprintf("testenv: SMTP failure code %d is not a 4xx or 5xx reply", code))
	}
}

// SetDown(true) simulates an outage: open connections are dropped and new ones
// are greeted with 421 and closed (over TLS when WithImplicitTLS). SetDown(false)
// recovers.
func (s *SMTPServer) SetDown(down bool) {
	s.mu.Lock()
	s.down = down
	var drop []*smtpConn
	if down {
		drop = slices.Collect(maps.Keys(s.conns))
	}
	s.mu.Unlock()
	for _, c := range drop {
		_ = c.Close()
	}
}

// Messages returns a copy of the accepted messages in arrival order.
func (s *SMTPServer) Messages() []ReceivedMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return cloneMessages(s.messages)
}

// WaitForMessages blocks until at least n messages were accepted and returns
// them all. If ctx ends first it returns what arrived so far and an error.
func (s *SMTPServer) WaitForMessages(ctx context.Context, n int) ([]ReceivedMessage, error) {
	for {
		s.mu.Lock()
		msgs, changed := s.messages, s.changed
		if len(msgs) >= n {
			out := cloneMessages(msgs)
			s.mu.Unlock()
			return out, nil
		}
		s.mu.Unlock()

		select {
		case <-changed:
		case <-ctx.Done():
			got := s.Messages()
			return got, fmt.Errorf("testenv: waiting for %d SMTP messages, got %d: %w", n, len(got), context.Cause(ctx))
		}
	}
}

// Connections returns how many connections were accepted and served (not
// counting those refused while down) since start or the last Reset.
func (s *SMTPServer) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.connections
}

// RefusedConnections returns how many connections were refused with 421
// while down since start or the last Reset.
func (s *SMTPServer) RefusedConnections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refused
}

// Reset forgets recorded messages and connection counts and clears injected
// faults (FailNext, FailNextData, RejectRecipient, SetDown). Open connections
// stay open.
func (s *SMTPServer) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.messages = nil
	s.connections = 0
	s.refused = 0
	s.failMail = injectedFailure{}
	s.failData = injectedFailure{}
	clear(s.rejectRcpt)
	s.down = false
}

func (s *SMTPServer) record(m ReceivedMessage) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.messages = append(s.messages, m)
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *SMTPServer) isDown() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.down
}

func (s *SMTPServer) rejection(rcpt string) (int, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	code, ok := s.rejectRcpt[strings.ToLower(rcpt)]
	return code, ok
}

// close stops accepting, drops every connection and waits for all handler
// goroutines, so none of them logs through t after the test has finished.
func (s *SMTPServer) close() {
	s.mu.Lock()
	s.closed = true
	conns := slices.Collect(maps.Keys(s.conns))
	s.mu.Unlock()

	_ = s.ln.Close()
	for _, c := range conns {
		_ = c.Close()
	}
	<-s.serveDone // after this Serve starts no more handlers

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Shutdown (not Close) because it waits for the handlers; it reports
	// the already-closed listener, which is expected.
	if err := s.srv.Shutdown(ctx); errors.Is(err, context.DeadlineExceeded) {
		s.t.Errorf("testenv: SMTP server handlers did not stop: %v", err)
	}
	s.refuseWG.Wait()
}

// smtpListener counts and tracks connections and refuses them while down;
// doing it here rather than in the backend is necessary because go-smtp only
// creates a session at EHLO and always greets with 220.
type smtpListener struct {
	net.Listener
	s *SMTPServer
}

func (l *smtpListener) Accept() (net.Conn, error) {
	s := l.s
	for {
		raw, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}

		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			_ = raw.Close()
			return nil, net.ErrClosed
		}
		s.lastConnID++
		c := &smtpConn{Conn: raw, id: s.lastConnID, s: s}
		s.conns[c] = struct{}{}
		down := s.down
		if down {
			s.refused++
			// Add under mu while !closed, so it happens before close's Wait.
			s.refuseWG.Add(1)
		} else {
			s.connections++
		}
		s.mu.Unlock()

		if down {
			go s.refuse(c)
			continue
		}
		if s.cfg.implicitTLS {
			// go-smtp recognises *tls.Conn and handshakes before greeting.
			return tls.Server(c, s.serverTLS), nil
		}
		return c, nil
	}
}

// refuse answers 421 at the greeting, as an overloaded or restarting server
// does, so clients see a transient failure.
func (s *SMTPServer) refuse(c *smtpConn) {
	defer s.refuseWG.Done()
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	var w io.Writer = c
	if s.cfg.implicitTLS {
		tc := tls.Server(c, s.serverTLS)
		if err := tc.Handshake(); err != nil {
			return
		}
		defer tc.Close() // sends close_notify before the TCP close
		w = tc
	}
	_, _ = io.WriteString(w, "421 localhost Service not available, closing transmission channel\r\n")
}

// smtpConn is the raw TCP connection; it stays reachable under a *tls.Conn
// via NetConn, which is how a session finds its connection ID.
type smtpConn struct {
	net.Conn
	id uint64
	s  *SMTPServer
}

func (c *smtpConn) Close() error {
	c.s.mu.Lock()
	delete(c.s.conns, c)
	c.s.mu.Unlock()
	return c.Conn.Close()
}

func connID(nc net.Conn) uint64 {
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	if c, ok := nc.(*smtpConn); ok {
		return c.id
	}
	return 0
}

// smtpSession is one go-smtp session: it starts at EHLO and is replaced after
// STARTTLS. go-smtp calls its methods from the connection's goroutine only.
type smtpSession struct {
	s        *SMTPServer
	connID   uint64
	helo     string
	tls      bool
	authUser string
	from     string
	to       []string
}

var _ smtp.AuthSession = (*smtpSession)(nil)

func (s *SMTPServer) newSession(c *smtp.Conn) (smtp.Session, error) {
	_, isTLS := c.TLSConnectionState()
	return &smtpSession{
		s:      s,
		connID: connID(c.Conn()),
		helo:   c.Hostname(),
		tls:    isTLS,
	}, nil
}

var (
	errAuthRequired = &smtp.SMTPError{
		Code:         530,
		EnhancedCode: smtp.EnhancedCode{5, 7, 0},
		Message:      "Authentication required",
	}
	errServiceDown = &smtp.SMTPError{
		Code:         421,
		EnhancedCode: smtp.EnhancedCode{4, 3, 2},
		Message:      "Service not available, closing transmission channel",
	}
)

// AuthMechanisms returns nothing without auth, so go-smtp omits the AUTH
// extension entirely.
func (ss *smtpSession) AuthMechanisms() []string {
	if ss.s.cfg.noAuth {
		return nil
	}
	return []string{sasl.Plain}
}

func (ss *smtpSession) Auth(mech string) (sasl.Server, error) {
	if ss.s.cfg.noAuth {
		return nil, smtp.ErrAuthUnsupported
	}
	if mech != sasl.Plain {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if identity != "" && identity != username {
			return smtp.ErrAuthFailed
		}
		userOK := subtle.ConstantTimeCompare([]byte(username), []byte(ss.s.cfg.username))
		passOK := subtle.ConstantTimeCompare([]byte(password), []byte(ss.s.cfg.password))
		if userOK&passOK != 1 {
			return smtp.ErrAuthFailed
		}
		ss.authUser = username
		return nil
	}), nil
}

func (ss *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	if ss.s.isDown() {
		return errServiceDown
	}
	if !ss.s.cfg.noAuth && ss.authUser == "" {
		return errAuthRequired
	}
	if err := ss.s.takeFailure(&ss.s.failMail); err != nil {
		return err
	}
	ss.from = from
	ss.to = nil
	return nil
}

func (ss *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if code, ok := ss.s.rejection(to); ok {
		return &smtp.SMTPError{Code: code, Message: fmt.Sprintf("<%s>: Recipient address rejected", to)}
	}
	ss.to = append(ss.to, to)
	return nil
}

func (ss *smtpSession) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if err := ss.s.takeFailure(&ss.s.failData); err != nil {
		return err
	}
	ss.s.record(ReceivedMessage{
		ConnID:   ss.connID,
		Helo:     ss.helo,
		From:     ss.from,
		To:       slices.Clone(ss.to),
		Data:     data,
		TLS:      ss.tls,
		AuthUser: ss.authUser,
		Received: time.Now(),
	})
	return nil
}

// Reset ends the transaction (RSET, after DATA, or a repeated EHLO); the
// authentication state belongs to the session and is kept.
func (ss *smtpSession) Reset() {
	ss.from = ""
	ss.to = nil
}

func (ss *smtpSession) Logout() error { return nil }

func cloneMessages(in []ReceivedMessage) []ReceivedMessage {
	out := make([]ReceivedMessage, len(in))
	for i, m := range in {
		m.To = slices.Clone(m.To)
		m.Data = bytes.Clone(m.Data)
		out[i] = m
	}
	return out
}

// smtpLogger routes go-smtp's internal errors to the test log, dropping the
// "use of closed connection" noise that SetDown and shutdown cause on purpose.
type smtpLogger struct{ t testing.TB }

func (l smtpLogger) Printf(format string, v ...any) {
	if closedConnNoise(v) {
		return
	}
	l.t.Logf("smtp server: "+format, v...)
}

func (l smtpLogger) Println(v ...any) {
	if closedConnNoise(v) {
		return
	}
	l.t.Log(append([]any{"smtp server:"}, v...)...)
}

func closedConnNoise(v []any) bool {
	for _, a := range v {
		if err, ok := a.(error); ok && errors.Is(err, net.ErrClosed) {
			return true
		}
	}
	return false
}

// TextPart is the decoded text/plain part of the multipart message raw
// (as the SMTP server received it, or as a Maildir file holds it); it
// fails the test when there is none.
func TextPart(t testing.TB, raw []byte) string {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("testenv: parsing a message: %v", err)
	}
	_, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		t.Fatalf("testenv: the message's Content-Type: %v", err)
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		p, err := mr.NextPart() // undoes quoted-printable
		if err != nil {
			t.Fatalf("testenv: no text/plain part: %v", err)
		}
		if strings.HasPrefix(p.Header.Get("Content-Type"), "text/plain") {
			b, err := io.ReadAll(p)
			if err != nil {
				t.Fatalf("testenv: reading the text/plain part: %v", err)
			}
			return string(b)
		}
	}
}
