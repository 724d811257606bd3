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
	s := &SMTP{
		cfg:     cfg,
		addr:    net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port)),
		ehlo:    cfg.EHLOName,
		tls:     &tls.Config{ServerName: cfg.Host, RootCAs: opts.RootCAs, MinVersion: tls.VersionTLS12},
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
	if err := checkEnvelope(from, to); err != nil {
		return err
	}
	release, err := s.pool.acquire(ctx)
	if err != nil {
		return err
	}
	defer release()

	c, err := s.begin(ctx, from)
	if err != nil {
		return err
	}
	err = c.deliver(to, msg)
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

// begin returns a connection on which MAIL FROM was accepted, reusing an
// idle one when it still works; nothing has been sent to anyone yet, so
// retrying on a fresh connection is safe.
func (s *SMTP) begin(ctx context.Context, from string) (*smtpConn, error) {
	if c := s.pool.take(); c != nil {
		c.arm(ctx, s.timeout)
		// After a clean transaction MAIL FROM needs no RSET first (a round
		// trip per message saved); it also tells a dead session apart.
		var err error
		if c.dirty {
			err = c.reset()
		}
		if err == nil {
			err = c.mail(from)
		}
		if err == nil {
			return c, nil
		}
		if !isBroken(err) {
			s.pool.put(c, err)
			return nil, err
		}
		c.close()
		s.log.Debug("reconnecting to SMTP server", "server", s.addr, "error", err)
	}
	c, err := s.connect(ctx)
	if err != nil {
		return nil, err
	}
	if err := c.mail(from); err != nil {
		s.pool.put(c, err)
		return nil, err
	}
	return c, nil
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

func (c *smtpConn) mail(from string) error {
	if err := c.c.Mail(from); err != nil {
		return fmt.Errorf("mail: SMTP MAIL FROM:<%s>: %w", from, err)
	}
	return nil
}

// deliver names the recipients and sends the message. Refused recipients
// are collected rather than ending the transaction.
func (c *smtpConn) deliver(to []string, msg []byte) error {
	var refused []error
	for _, rcpt := range to {
		err := c.c.Rcpt(rcpt)
		var te *textproto.Error
		switch {
		case err == nil:
		case errors.As(err, &te) && te.Code != 421:
			refused = append(refused, &RecipientError{Address: rcpt, Code: te.Code, Message: te.Msg})
		default:
			return fmt.Errorf("mail: SMTP RCPT TO:<%s>: %w", rcpt, err)
		}
	}
	if len(refused) == len(to) {
		return fmt.Errorf("mail: SMTP server refused every recipient: %w", errors.Join(refused...))
	}
	w, err := c.c.Data()
	if err != nil {
		return fmt.Errorf("mail: SMTP DATA: %w", err)
	}
	if _, err := w.Write(msg); err != nil {
		_ = w.Close()
		return fmt.Errorf("mail: SMTP sending message: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("mail: SMTP server did not accept the message: %w", err)
	}
	if len(refused) > 0 {
		return fmt.Errorf("mail: sent to %d of %d recipients: %w", len(to)-len(refused), len(to), errors.Join(refused...))
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
