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
)

// ResetIdentity is what a password reset reads and changes in Keystone
// (cloud.Ops).
type ResetIdentity interface {
	GetUser(ctx context.Context, id string) (cloud.User, error)
	FindDomain(ctx context.Context, name string) (cloud.Domain, error)
	FindUser(ctx context.Context, domainID, name string) (cloud.User, error)
	SetPassword(ctx context.Context, userID, password string) error
}

// ResetIssuer asks setpass for a password-reset link (client.Client.Reset):
// pin "" keeps the PIN on file; tempPassword "" uses setpass's reset
// credential, which setpass may lack (client.ErrResetUnsupported).
type ResetIssuer interface {
	Reset(ctx context.Context, userID, pin, tempPassword string) (client.Issued, error)
}

// Resetter is the helpdesk's password reset (MOC's reset-password.py).
type Resetter struct {
	ids           ResetIdentity
	setpass       ResetIssuer
	outbox        Outbox
	audit         Auditor
	random        io.Reader
	defaultDomain string
}

// NewResetter builds a Resetter; defaultDomain is where users given by
// name are looked up when the request names no domain (openstack.domain).
func NewResetter(ids ResetIdentity, sp ResetIssuer, outbox Outbox, audit Auditor, random io.Reader, defaultDomain string) *Resetter {
	return &Resetter{ids: ids, setpass: sp, outbox: outbox, audit: audit, random: random, defaultDomain: defaultDomain}
}

// ResetRequest is one reset.
type ResetRequest struct {
	// User is a Keystone user ID, or a name (matched ignoring case) in
	// Domain.
	User   string
	Domain string // "" for the default domain
	// PIN replaces the PIN on file when set (the helpdesk verified the
	// person); it is how a locked PIN is unlocked.
	PIN string
}

// ResetResult is what Reset did; on an error, what was done before it.
type ResetResult struct {
	User  cloud.User // zero until found
	Found bool
	To    string // the address Keystone holds
	// TemporaryPassword: setpass has no reset credential, so the user's
	// password was replaced by a random temporary one (the old one no
	// longer works).
	TemporaryPassword bool
	Issued            client.Issued // zero until issued
	PINReplaced       bool
	MailKey           string // set once the mail is in the outbox
	Queued            bool   // the mail is new there
}

// Reset asks setpass for a password-reset link for the user and mails it
// to the address Keystone holds for them, never another. Without a reset
// credential in setpass it falls back to MOC's behaviour: a temporary
// password replaces the user's now (TemporaryPassword).
func (r *Resetter) Reset(ctx context.Context, req ResetRequest) (ResetResult, error) {
	var res ResetResult
	u, err := r.findUser(ctx, req)
	if err != nil {
		return res, err
	}
	res.User, res.Found = u, true
	res.To = ResetAddress(u)
	if res.To == "" {
		return res, fmt.Errorf("keystone holds no email address for %s (%s): set its email attribute first; "+
			"nothing was changed", u.Name, u.ID)
	}
	issued, err := r.setpass.Reset(ctx, u.ID, req.PIN, "")
	switch {
	case errors.Is(err, client.ErrResetNoPIN):
		// 409: no PIN on file, or it is locked after too many wrong PINs
		// (setpass's message says which).
		return res, fmt.Errorf("%s has no PIN on file, or setpass locked it after too many wrong PINs (%v): "+
			"verify the person, agree a new 4-digit PIN with them and run again with --pin NNNN; nothing was changed", u.Name, err)
	case errors.Is(err, client.ErrResetUnsupported):
		temp, err := replacePassword(ctx, r.ids, r.random, r.audit, u, "user.password.reset-temporary")
		if err != nil {
			return res, err
		}
		res.TemporaryPassword = true
		if issued, err = r.setpass.Reset(ctx, u.ID, req.PIN, temp); err != nil {
			return res, fmt.Errorf("asking setpass for a reset link for %s after replacing the password "+
				"(the account now has a temporary password no one knows; run the command again): %w", u.Name, err)
		}
	case err != nil:
		return res, fmt.Errorf("asking setpass for a reset link for %s: %w", u.Name, err)
	}
	res.Issued, res.PINReplaced = issued, req.PIN != ""
	r.audit.Record(ctx, "setpass.reset", u.ID, map[string]string{"name": u.Name, "expires_at": issued.ExpiresAt.UTC().Format(time.RFC3339),
		"pin_replaced": fmt.Sprint(req.PIN != ""), "temporary_password": fmt.Sprint(res.TemporaryPassword)})

	key := PasswordResetKey(u.ID, issued.ExpiresAt)
	data := mail.PasswordResetData{Name: u.Name, Username: u.Name, Link: issued.URL, ExpiresAt: issued.ExpiresAt}
	if res.Queued, err = queue(ctx, r.outbox, r.audit, u.ID, key, mail.KindPasswordReset, netmail.Address{Address: res.To}, data); err != nil {
		return res, err
	}
	res.MailKey = key
	return res, nil
}

// findUser takes req.User as a user ID first (when it can be one), then as
// a name in req.Domain, matched ignoring case.
func (r *Resetter) findUser(ctx context.Context, req ResetRequest) (cloud.User, error) {
	if looksLikeID(req.User) {
		u, err := r.ids.GetUser(ctx, req.User)
		if err == nil || !errors.Is(err, cloud.ErrNoUser) {
			return u, err
		}
	}
	domain := req.Domain
	if domain == "" {
		domain = r.defaultDomain
	}
	d, err := r.ids.FindDomain(ctx, domain)
	if err != nil {
		return cloud.User{}, err
	}
	u, err := r.ids.FindUser(ctx, d.ID, req.User)
	if errors.Is(err, cloud.ErrNoUser) {
		return cloud.User{}, fmt.Errorf("no user %q in domain %q (nor a user with that ID): %w", req.User, d.Name, err)
	}
	return u, err
}

// looksLikeID: Keystone IDs are 32 hex digits (or, from LDAP, letters,
// digits, '-' and '_'); a name with '@' or '.' is never tried as one.
func looksLikeID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// ResetAddress is where a user's reset mail goes: the address Keystone
// holds (the email attribute), else the name when it is an address; ""
// when neither is one.
func ResetAddress(u cloud.User) string {
	for _, s := range []string{u.Email, u.Name} {
		if a, err := netmail.ParseAddress(s); err == nil && a.Address == s {
			return s
		}
	}
	return ""
}
