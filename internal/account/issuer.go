package account

import (
	"context"
	"errors"
	"fmt"
	"io"
	netmail "net/mail"
	"time"

	"github.com/kaizen-onboard/kaizen/internal/cloud"
	"github.com/kaizen-onboard/kaizen/internal/mail"
	"github.com/kaizen-onboard/kaizen/internal/setpass/client"
	"github.com/kaizen-onboard/kaizen/internal/store"
)

// PasswordSetter sets a user's password as the admin (cloud.Identity).
type PasswordSetter interface {
	SetPassword(ctx context.Context, userID, password string) error
}

// LinkIssuer asks setpass for a new link (client.Client.Issue): pin ""
// keeps the PIN on file.
type LinkIssuer interface {
	Issue(ctx context.Context, userID, tempPassword, pin string) (client.Issued, error)
}

// Outbox queues mail under an idempotency key (mail.Outbox): created
// false means a message with that key was queued before.
type Outbox interface {
	Queue(ctx context.Context, key, kind string, to []netmail.Address, data any) (id int64, created bool, err error)
}

// Messages finds queued mail by key (store.Outbox); a missing one wraps
// store.ErrNotFound.
type Messages interface {
	MessageByKey(ctx context.Context, key string) (store.Message, error)
}

// Purpose says which mail carries a link.
type Purpose int

const (
	// Welcome: the first link of a new account, mailed once under
	// [WelcomeKey], whatever the command.
	Welcome Purpose = iota
	// Reminder: a fresh link for an account whose link went unused,
	// mailed under [ReminderKey].
	Reminder
)

// LinkRequest is one link to give one account kaizen created.
type LinkRequest struct {
	// User is the account: ID and Name are required; an account without
	// Owner (cloud.OwnerAttr) was not created by kaizen and is never
	// touched.
	User    cloud.User
	Purpose Purpose
	// TempPassword is the password the account was created with in this
	// run. "" (an earlier run created it, and its password is gone with
	// that run) draws a fresh one and sets it first.
	TempPassword string
	// PIN the link asks for; "" keeps the PIN on file.
	PIN string
	// To is the address; zero means User.Email, else User.Name.
	To netmail.Address
	// Welcome is the welcome mail (Purpose Welcome); Link and ExpiresAt
	// are filled in.
	Welcome mail.WelcomeData
	// Reminder is the reminder mail (Purpose Reminder); Link and
	// ExpiresAt are filled in.
	Reminder mail.LinkReminderData
	// ReminderLedgerKey names the reminded link generation (Purpose
	// Reminder, required): see [ReminderKey].
	ReminderLedgerKey string
	// Audit records the changes; nil: the Issuer's.
	Audit Auditor
}

// LinkOutcome is what IssueLink did.
type LinkOutcome int

const (
	// Issued: a link was issued and its mail queued.
	Issued LinkOutcome = iota
	// AlreadyWelcomed: the welcome was queued before; nothing was done.
	AlreadyWelcomed
	// NotKaizens: the account was not created by kaizen; nothing was done.
	NotKaizens
)

// Link is the result of IssueLink; on an error, what was done before it.
type Link struct {
	Outcome LinkOutcome
	// PasswordReplaced: a fresh temporary password was set (the request
	// had none).
	PasswordReplaced bool
	Issued           client.Issued // zero until setpass issued it
	MailKey          string        // set once the mail is in the outbox
	// Queued: the mail is new in the outbox (false: queued before under
	// the same key).
	Queued bool
	To     netmail.Address
}

// Issuer gives accounts kaizen created a set-password link: a temporary
// password when the account's is gone, the link from setpass, the mail in
// the outbox, each change audited.
type Issuer struct {
	passwords PasswordSetter
	setpass   LinkIssuer
	outbox    Outbox
	messages  Messages
	audit     Auditor
	random    io.Reader
}

// NewIssuer builds an Issuer. messages may be nil when no welcome is ever
// issued (it finds earlier welcomes); random draws temporary passwords
// (crypto/rand.Reader outside tests).
func NewIssuer(passwords PasswordSetter, sp LinkIssuer, outbox Outbox, messages Messages, audit Auditor, random io.Reader) *Issuer {
	return &Issuer{passwords: passwords, setpass: sp, outbox: outbox, messages: messages, audit: audit, random: random}
}

// Welcomed reports whether user userID's welcome was queued before.
func (s *Issuer) Welcomed(ctx context.Context, userID string) (bool, error) {
	if s.messages == nil {
		return false, errors.New("account issuer: no message store to look for earlier welcomes in")
	}
	_, err := s.messages.MessageByKey(ctx, WelcomeKey(userID))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, store.ErrNotFound):
		return false, nil
	default:
		return false, err
	}
}

// IssueLink gives req.User a set-password link and queues its mail. A
// welcome is given once: when [WelcomeKey] was queued before, nothing is
// done (AlreadyWelcomed). The password is set before the link is issued
// and the mail queued last, so a failure at any step leaves at worst an
// account whose link is re-issued by the next call.
func (s *Issuer) IssueLink(ctx context.Context, req LinkRequest) (Link, error) {
	u := req.User
	audit := req.Audit
	if audit == nil {
		audit = s.audit
	}
	if audit == nil {
		audit = nopAuditor{}
	}
	var link Link
	if u.Owner == "" {
		link.Outcome = NotKaizens
		return link, nil
	}
	if u.ID == "" || u.Name == "" {
		return link, errors.New("account issuer: the user's ID and name are required")
	}
	if req.Purpose == Welcome {
		done, err := s.Welcomed(ctx, u.ID)
		if err != nil {
			return link, fmt.Errorf("checking for %s's welcome mail: %w", u.Name, err)
		}
		if done {
			link.Outcome = AlreadyWelcomed
			return link, nil
		}
	} else if req.ReminderLedgerKey == "" {
		return link, errors.New("account issuer: a reminder needs its ledger key")
	}
	link.To = req.To
	if link.To.Address == "" {
		link.To.Address = u.Email
		if link.To.Address == "" {
			link.To.Address = u.Name
		}
	}

	temp := req.TempPassword
	if temp == "" {
		t, err := s.replacePassword(ctx, audit, u, "user.password.unused-reset")
		if err != nil {
			return link, err
		}
		temp, link.PasswordReplaced = t, true
	}
	issued, err := s.setpass.Issue(ctx, u.ID, temp, req.PIN)
	if err != nil {
		return link, fmt.Errorf("registering %s with setpass: %w", u.Name, err)
	}
	link.Issued = issued
	audit.Record(ctx, "setpass.issue", u.ID, map[string]string{"name": u.Name, "expires_at": issued.ExpiresAt.UTC().Format(time.RFC3339)})

	var kind, key string
	var data any
	switch req.Purpose {
	case Welcome:
		d := req.Welcome
		d.Link, d.ExpiresAt = issued.URL, issued.ExpiresAt
		kind, data, key = mail.KindWelcome, d, WelcomeKey(u.ID)
	default:
		d := req.Reminder
		d.Link, d.ExpiresAt = issued.URL, issued.ExpiresAt
		kind, data, key = mail.KindLinkReminder, d, ReminderKey(req.ReminderLedgerKey, issued.ExpiresAt)
	}
	if link.Queued, err = queue(ctx, s.outbox, audit, u.ID, key, kind, link.To, data); err != nil {
		return link, err
	}
	link.MailKey = key
	return link, nil
}

// replacePassword gives u a fresh random temporary password, audited as
// action, and returns it. Only for accounts whose owner never knew their
// password, or whose reset the helpdesk asked for.
func (s *Issuer) replacePassword(ctx context.Context, audit Auditor, u cloud.User, action string) (string, error) {
	return replacePassword(ctx, s.passwords, s.random, audit, u, action)
}

func replacePassword(ctx context.Context, ps PasswordSetter, random io.Reader, audit Auditor, u cloud.User, action string) (string, error) {
	if random == nil {
		return "", errors.New("account: no source of randomness for temporary passwords")
	}
	t, err := cloud.TempPassword(random)
	if err != nil {
		return "", err
	}
	if err := ps.SetPassword(ctx, u.ID, t); err != nil {
		return "", fmt.Errorf("setting a temporary password for %s: %w", u.Name, err)
	}
	audit.Record(ctx, action, u.ID, map[string]string{"name": u.Name})
	return t, nil
}

// queue queues one mail to user userID and audits it when it is new.
func queue(ctx context.Context, ob Outbox, audit Auditor, userID, key, kind string, to netmail.Address, data any) (bool, error) {
	_, created, err := ob.Queue(ctx, key, kind, []netmail.Address{to}, data)
	if err != nil {
		return false, fmt.Errorf("queuing the %s mail for %s: %w", kind, to.Address, err)
	}
	if created {
		audit.Record(ctx, "mail.queue", userID, map[string]string{"kind": kind, "key": key})
	}
	return created, nil
}

type nopAuditor struct{}

func (nopAuditor) Record(context.Context, string, string, map[string]string) {}
