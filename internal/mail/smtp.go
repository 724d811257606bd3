package mail

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/smtp"
	"net/textproto"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kaizen-onboard/kaizen/internal/config"
)

// DialFunc opens a network connection, like net.Dialer.DialContext.
type DialFunc func(ctx context.Context, network, address string) (net.Conn, error)

// SMTPOptions are the smtp transport's dependencies; zero values take the
// defaults.
type SMTPOptions struct {
	RootCAs *x509.CertPool   // CAs trusted for the server certificate; nil: the system's
	Dial    DialFunc         // nil: a net.Dialer
	Logger  *slog.Logger     // nil: no logging
	Now     func() time.Time // nil: time.Now; ages idle connections
}

// SMTP sends over pooled SMTP connections. It is safe for concurrent use.
//
// It is written on net/smtp rather than jordan-wright/email's senders,
// which quietly fall back to plaintext when STARTTLS is missing and to no
// authentication when AUTH is: here both are errors unless allowed.
type SMTP struct {
	cfg     config.SMTP
	addr    string
	ehlo    string
	tls     *tls.Config
	dial    DialFunc
	log     *slog.Logger
	timeout time.Duration
	pool    pool
}

// NewSMTP checks cfg and returns a transport; it connects on first use.
func NewSMTP(cfg config.SMTP, opts SMTPOptions) (*SMTP, error) {
	switch {
	case cfg.Host == "":
		return nil, errors.New("mail: mail.smtp.host is empty")
	case cfg.Port < 1 || cfg.Port > 65535:
		return nil, fmt.Errorf("mail: mail.smtp.port %d is not a port number", cfg.Port)
	case !slices.Contains([]string{"starttls", "implicit", "none"}, cfg.TLS):
		return nil, fmt.Errorf("mail: mail.smtp.tls %q is not starttls, implicit or none", cfg.TLS)
	case cfg.TLS == "none" && !cfg.AllowInsecure:
		return nil, errors.New(`mail: mail.smtp.tls "none" needs mail.smtp.allow_insecure`)
	case cfg.Username != "" && !cfg.Password.IsSet():
		return nil, errors.New("mail: mail.smtp.username is set but no password is")
	}
	roots := opts.RootCAs
	if roots == nil && cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("mail: reading mail.smtp.ca_file: %w", err)
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("mail: mail.smtp.ca_file %s holds no PEM certificate", cfg.CAFile)
		}
	}
	s := &SMTP{
		cfg:     cfg,
		addr:    net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port)),
		ehlo:    cfg.EHLOName,
		tls:     &tls.Config{ServerName: cfg.Host, RootCAs: roots, MinVersion: tls.VersionTLS12},
		dial:    opts.Dial,
		log:     opts.Logger,
		timeout: cfg.Timeout.D,
	}
	if s.ehlo == "" {
		if s.ehlo, _ = os.Hostname(); s.ehlo == "" {
			s.ehlo = "localhost"
		}
	}
	if s.dial == nil {
		s.dial = (&net.Dialer{}).DialContext
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.timeout <= 0 {
		s.timeout = 30 * time.Second
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	s.pool = newPool(max(cfg.PoolSize, 1), now)
	return s, nil
}

// Send delivers msg. When only some recipients are refused the others get
// the message and the error lists the refused as *RecipientError.
func (s *SMTP) Send(ctx context.Context, from string, to []string, msg []byte) error {
	return s.SendAfter(ctx, from, to, msg, nil)
}

// SendAfter is Send, except that the message is ended — the final dot
// that makes the server take it — only once ready has returned nil. The
// envelope and the text go out first, so a caller can finish recording
// the message before it (in parallel with this one's round trips) and
// still never have two messages taken by a server and unrecorded. When
// ready fails, the session is dropped, so the server discards the
// message, and SendAfter returns ready's error, wrapped. A failure before
// the text is sent returns without calling ready.
func (s *SMTP) SendAfter(ctx context.Context, from string, to []string, msg []byte, ready func() error) error {
	if err := checkEnvelope(from, to); err != nil {
		return err
	}
	release, err := s.pool.acquire(ctx)
	if err != nil {
		return err
	}
	defer release()

	c, refused, err := s.begin(ctx, from, to)
	if err != nil {
		return err
	}
	err = c.body(msg, len(to), refused, ready)
	s.pool.put(c, err)
	return err
}

// Close ends the idle connections; connections in use end when their
// message is sent.
func (s *SMTP) Close() error {
	for _, c := range s.pool.close() {
		c.quit()
	}
	return nil
}

// begin returns a session whose server accepted the envelope and waits
// for the message (DATA answered 354), with the recipients it refused.
// Nothing has been delivered yet, so when a reused idle session turns out
// to be dead, retrying on a fresh one is safe.
func (s *SMTP) begin(ctx context.Context, from string, to []string) (*smtpConn, []error, error) {
	if c := s.pool.take(); c != nil {
		c.arm(ctx, s.timeout)
		// After a clean transaction no RSET is needed first (a round trip
		// per message saved); the envelope also tells a dead session apart.
		var err error
		var refused []error
		if c.dirty {
			err = c.reset()
		}
		if err == nil {
			refused, err = c.envelope(from, to)
		}
		if err == nil {
			return c, refused, nil
		}
		if !isBroken(err) {
			s.pool.put(c, err)
			return nil, nil, err
		}
		c.close()
		s.log.Debug("reconnecting to SMTP server", "server", s.addr, "error", err)
	}
	c, err := s.connect(ctx)
	if err != nil {
		return nil, nil, err
	}
	refused, err := c.envelope(from, to)
	if err != nil {
		s.pool.put(c, err)
		return nil, nil, err
	}
	return c, refused, nil
}

// connect dials, secures and authenticates a new session.
func (s *SMTP) connect(ctx context.Context) (*smtpConn, error) {
	dctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	raw, err := s.dial(dctx, "tcp", s.addr)
	if err != nil {
		return nil, sessionErrorf("mail: connecting to SMTP server %s: %w", s.addr, err)
	}
	c := &smtpConn{raw: raw}
	c.arm(ctx, s.timeout)
	if err := s.handshake(dctx, c); err != nil {
		c.close()
		return nil, &sessionError{err}
	}
	s.log.Debug("connected to SMTP server", "server", s.addr, "tls", c.tls, "auth", s.cfg.Username != "")
	return c, nil
}

func (s *SMTP) handshake(ctx context.Context, c *smtpConn) error {
	conn := c.raw
	if s.cfg.TLS == "implicit" {
		tc := tls.Client(c.raw, s.tls.Clone())
		if err := tc.HandshakeContext(ctx); err != nil {
			return fmt.Errorf("mail: TLS with SMTP server %s: %w", s.addr, err)
		}
		conn = tc
	}
	var err error
	if c.c, err = smtp.NewClient(conn, s.cfg.Host); err != nil {
		return fmt.Errorf("mail: SMTP server %s greeting: %w", s.addr, err)
	}
	if err := c.c.Hello(s.ehlo); err != nil {
		return fmt.Errorf("mail: SMTP EHLO to %s: %w", s.addr, err)
	}
	if s.cfg.TLS == "starttls" {
		if ok, _ := c.c.Extension("STARTTLS"); ok {
			if err := c.c.StartTLS(s.tls.Clone()); err != nil {
				return fmt.Errorf("mail: STARTTLS with SMTP server %s: %w", s.addr, err)
			}
		} else if !s.cfg.AllowInsecure {
			return fmt.Errorf("mail: %s: %w; refusing to send in plaintext (mail.smtp.allow_insecure permits it)", s.addr, ErrNoSTARTTLS)
		} else {
			s.log.Warn("SMTP server offers no STARTTLS; sending in plaintext because mail.smtp.allow_insecure is set", "server", s.addr)
		}
	}
	_, c.tls = c.c.TLSConnectionState()
	c.pipelining, _ = c.c.Extension("PIPELINING")
	if s.cfg.Username == "" {
		return nil
	}
	if ok, _ := c.c.Extension("AUTH"); !ok {
		return fmt.Errorf("mail: %s: %w although mail.smtp.username is set; refusing to send unauthenticated", s.addr, ErrNoAuth)
	}
	auth := plainAuth{username: s.cfg.Username, password: s.cfg.Password.Reveal(), insecure: s.cfg.AllowInsecure}
	if err := c.c.Auth(auth); err != nil {
		return fmt.Errorf("mail: SMTP authentication as %q at %s: %w", s.cfg.Username, s.addr, err)
	}
	return nil
}

// isBroken reports whether a connection that failed with err cannot be
// used again: anything but an SMTP reply, or 421 (server closing).
func isBroken(err error) bool {
	if len(RefusedRecipients(err)) > 0 {
		return false
	}
	var te *textproto.Error
	return !errors.As(err, &te) || te.Code == 421
}

// smtpConn is one SMTP session.
type smtpConn struct {
	raw       net.Conn // under TLS, for deadlines
	c         *smtp.Client
	tls       bool
	idleSince time.Time
	stop      func() bool // ends the context watch started by arm
	// dirty marks a session whose last transaction ended in an error and
	// may still be open on the server; it needs RSET before the next one.
	dirty bool
	// pipelining: the server takes MAIL, RCPT and DATA in one write.
	pipelining bool
}

// arm bounds the coming exchange by timeout and by ctx.
func (c *smtpConn) arm(ctx context.Context, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = c.raw.SetDeadline(deadline)
	c.stop = context.AfterFunc(ctx, func() { _ = c.raw.SetDeadline(time.Unix(1, 0)) })
}

func (c *smtpConn) disarm() {
	if c.stop != nil {
		c.stop()
		c.stop = nil
	}
}

func (c *smtpConn) reset() error {
	if err := c.c.Reset(); err != nil {
		return fmt.Errorf("mail: SMTP RSET: %w", err)
	}
	return nil
}

// envelope sends MAIL FROM, one RCPT TO per recipient and DATA, all in one
// write when the server offers PIPELINING (RFC 2920), and reads the
// replies in order. Refused recipients are collected rather than ending the
// transaction; an error means the server will not take the message.
func (c *smtpConn) envelope(from string, to []string) (refused []error, err error) {
	if c.pipelining {
		w := c.c.Text.W
		fmt.Fprintf(w, "MAIL FROM:<%s>\r\n", from)
		for _, rcpt := range to {
			fmt.Fprintf(w, "RCPT TO:<%s>\r\n", rcpt)
		}
		w.WriteString("DATA\r\n")
		if err := w.Flush(); err != nil {
			return nil, fmt.Errorf("mail: SMTP sending envelope: %w", err)
		}
	}
	// Pipelined, every reply is read even after a failure, so the session
	// stays in step; one at a time, the transaction stops at the failure.
	mailErr := c.reply(250, "MAIL FROM:<%s>", from)
	var te *textproto.Error
	if mailErr != nil && (!c.pipelining || !errors.As(mailErr, &te)) {
		return nil, fmt.Errorf("mail: SMTP MAIL FROM:<%s>: %w", from, mailErr)
	}
	for _, rcpt := range to {
		err := c.reply(25, "RCPT TO:<%s>", rcpt)
		var te *textproto.Error
		switch {
		case err == nil:
		case mailErr == nil && errors.As(err, &te) && te.Code != 421:
			refused = append(refused, &RecipientError{Address: rcpt, Code: te.Code, Message: te.Msg})
		case !errors.As(err, &te):
			return nil, fmt.Errorf("mail: SMTP RCPT TO:<%s>: %w", rcpt, err) // connection lost
		default:
			refused = append(refused, fmt.Errorf("mail: SMTP RCPT TO:<%s>: %w", rcpt, err))
		}
	}
	if !c.pipelining && len(refused) == len(to) {
		return nil, fmt.Errorf("mail: SMTP server refused every recipient: %w", errors.Join(refused...))
	}
	dataErr := c.reply(354, "DATA")
	if dataErr != nil && !errors.As(dataErr, &te) {
		return nil, fmt.Errorf("mail: SMTP DATA: %w", dataErr) // connection lost
	}
	if dataErr == nil && (mailErr != nil || len(refused) == len(to)) {
		// The server wants a message we will not send: end it empty.
		c.dirty = true
		if err := c.end(); err != nil {
			return nil, err
		}
	}
	switch {
	case mailErr != nil:
		return nil, fmt.Errorf("mail: SMTP MAIL FROM:<%s>: %w", from, mailErr)
	case len(refused) == len(to):
		return nil, fmt.Errorf("mail: SMTP server refused every recipient: %w", errors.Join(refused...))
	case dataErr != nil:
		return nil, fmt.Errorf("mail: SMTP DATA: %w", dataErr)
	}
	return refused, nil
}

// reply sends the command (unless it went out pipelined) and reads its
// reply, expecting the code (or code class, e.g. 25).
func (c *smtpConn) reply(expect int, format string, args ...any) error {
	if !c.pipelining {
		if err := c.c.Text.PrintfLine(format, args...); err != nil {
			return err
		}
	}
	_, _, err := c.c.Text.ReadResponse(expect)
	return err
}

// end finishes a DATA the server accepted but we will not fill.
func (c *smtpConn) end() error {
	if err := c.c.Text.PrintfLine("."); err != nil {
		return fmt.Errorf("mail: SMTP ending empty DATA: %w", err)
	}
	_, _, _ = c.c.Text.ReadResponse(250)
	return nil
}

// body sends the message after an accepted envelope and reads the final
// reply. refused are the recipients the envelope lost, of total. When
// ready is set, the text is flushed and the message ended only once ready
// returns nil.
func (c *smtpConn) body(msg []byte, total int, refused []error, ready func() error) error {
	w := c.c.Text.DotWriter()
	if _, err := w.Write(msg); err != nil {
		_ = w.Close()
		return fmt.Errorf("mail: SMTP sending message: %w", err)
	}
	if ready != nil {
		if err := c.c.Text.W.Flush(); err != nil {
			return fmt.Errorf("mail: SMTP sending message: %w", err)
		}
		if err := ready(); err != nil {
			// Not an SMTP reply, so put drops the session mid-DATA.
			return fmt.Errorf("mail: message not ended, so the server drops it: %w", err)
		}
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("mail: SMTP sending message: %w", err)
	}
	if _, _, err := c.c.Text.ReadResponse(250); err != nil {
		return fmt.Errorf("mail: SMTP server did not accept the message: %w", err)
	}
	if len(refused) > 0 {
		return fmt.Errorf("mail: sent to %d of %d recipients: %w", total-len(refused), total, errors.Join(refused...))
	}
	return nil
}

// quit ends the session politely, but without waiting long.
func (c *smtpConn) quit() {
	c.disarm()
	_ = c.raw.SetDeadline(time.Now().Add(2 * time.Second))
	_ = c.c.Quit()
	c.close()
}

func (c *smtpConn) close() {
	c.disarm()
	_ = c.raw.Close()
}

// plainAuth is AUTH PLAIN. Unlike net/smtp's PlainAuth it sends over
// plaintext to any host when allow_insecure says so, and to none otherwise.
type plainAuth struct {
	username, password string
	insecure           bool
}

func (a plainAuth) Start(server *smtp.ServerInfo) (string, []byte, error) {
	if !server.TLS && !a.insecure {
		return "", nil, errors.New("refusing to send the password over an unencrypted connection")
	}
	if !slices.Contains(server.Auth, "PLAIN") {
		return "", nil, fmt.Errorf("server offers AUTH %s but not PLAIN", strings.Join(server.Auth, " "))
	}
	return "PLAIN", []byte("\x00" + a.username + "\x00" + a.password), nil
}

func (a plainAuth) Next(_ []byte, more bool) ([]byte, error) {
	if more {
		return nil, errors.New("unexpected AUTH PLAIN challenge")
	}
	return nil, nil
}
