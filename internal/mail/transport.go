package mail

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/textproto"
	"strings"
	"time"

	"github.com/kaizen-onboard/kaizen/internal/config"
)

// Transport delivers one composed message to the envelope recipients.
// The transports of this package also implement io.Closer.
type Transport interface {
	Send(ctx context.Context, from string, to []string, msg []byte) error
}

var (
	_ io.Closer = (*SMTP)(nil)
	_ io.Closer = (*Maildir)(nil)
)

// NewTransport returns the transport cfg.Transport names. now and random
// serve the maildir transport's file names and the SMTP pool's idle limit;
// opts configure the smtp transport.
func NewTransport(cfg config.Mail, now func() time.Time, random io.Reader, opts SMTPOptions) (Transport, error) {
	switch cfg.Transport {
	case "maildir":
		return NewMaildir(cfg.Maildir, now, random)
	case "smtp":
		if opts.Now == nil {
			opts.Now = now
		}
		return NewSMTP(cfg.SMTP, opts)
	}
	return nil, fmt.Errorf("mail: unknown transport %q (want maildir or smtp)", cfg.Transport)
}

// Errors refusing an SMTP server that would lower security below what the
// configuration asks for.
var (
	ErrNoSTARTTLS = errors.New("SMTP server does not offer STARTTLS")
	ErrNoAuth     = errors.New("SMTP server does not offer AUTH")
)

// RecipientError is one recipient the server refused. It does not affect
// the other recipients, which received the message unless every one of
// them was refused.
type RecipientError struct {
	Address string
	Code    int // the SMTP reply code: 5xx permanent, 4xx temporary
	Message string
}

func (e *RecipientError) Error() string {
	return fmt.Sprintf("recipient <%s> refused: %d %s", e.Address, e.Code, e.Message)
}

// RefusedRecipients returns every RecipientError in err's tree.
func RefusedRecipients(err error) []*RecipientError {
	var out []*RecipientError
	walk(err, func(e error) {
		if re, ok := e.(*RecipientError); ok {
			out = append(out, re)
		}
	})
	return out
}

func walk(err error, visit func(error)) {
	if err == nil {
		return
	}
	visit(err)
	switch e := err.(type) {
	case interface{ Unwrap() []error }:
		for _, x := range e.Unwrap() {
			walk(x, visit)
		}
	case interface{ Unwrap() error }:
		walk(e.Unwrap(), visit)
	}
}

// IsPermanent reports whether sending the same message again cannot
// succeed: a 5xx reply to the message or to every recipient it lists, or a
// message the transport cannot express. Network errors, timeouts, 4xx
// replies and failures setting up the session (TLS, authentication) are
// temporary: the message itself is fine and may go through once the server
// or the configuration is.
func IsPermanent(err error) bool {
	switch e := err.(type) {
	case nil:
		return false
	case *RecipientError:
		return e.Code >= 500
	case *textproto.Error:
		// 530 "authentication required" is the configuration's fault.
		return e.Code >= 500 && e.Code != 530
	case *sessionError:
		return false
	case *permanentError:
		return true
	case interface{ Unwrap() []error }:
		errs := e.Unwrap()
		for _, x := range errs {
			if !IsPermanent(x) {
				return false
			}
		}
		return len(errs) > 0
	case interface{ Unwrap() error }:
		return IsPermanent(e.Unwrap())
	}
	return false
}

// sessionError marks a failure to connect, secure or authenticate: never
// the message's fault.
type sessionError struct{ err error }

func (e *sessionError) Error() string { return e.err.Error() }
func (e *sessionError) Unwrap() error { return e.err }

func sessionErrorf(format string, args ...any) error {
	return &sessionError{fmt.Errorf(format, args...)}
}

// permanentError marks a message no transport can send as given.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// checkEnvelope refuses envelope addresses that would break the protocol
// line or a header they are copied into.
func checkEnvelope(from string, to []string) error {
	if len(to) == 0 {
		return &permanentError{errors.New("mail: no recipients")}
	}
	for _, a := range append([]string{from}, to...) {
		if a == "" || strings.ContainsAny(a, "\r\n<> ") {
			return &permanentError{fmt.Errorf("mail: invalid envelope address %q", a)}
		}
	}
	return nil
}
