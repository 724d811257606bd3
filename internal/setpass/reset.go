package setpass

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/kaizen-onboard/kaizen/internal/setpass/client"
	"github.com/kaizen-onboard/kaizen/internal/store"
)

// Token purposes.
const (
	purposeWelcome = "welcome"
	purposeReset   = "reset"
)

var (
	// errNoPIN: a reset without a PIN for a user with no PIN on file.
	errNoPIN = errors.New("no PIN on file for this user: verify the person and send a PIN")
	// errPINLocked: a reset without a PIN for a user whose PIN on file is
	// locked after too many wrong PINs.
	errPINLocked = errors.New("the PIN on file is locked after too many wrong PINs: " +
		"verify the person and send a new PIN, which unlocks it")
	// errNoResetCredential: a reset without a temporary password while
	// setpass has no reset credential.
	errNoResetCredential = errors.New(`setpass has no reset credential (setpass.reset_user): ` +
		`set a temporary password in Keystone and send it as "password"`)
)

// issueReset is PUT /reset/<user_id>: a password-reset link, for the
// helpdesk (addusers reset-password). The body is that of PUT /token, both
// fields optional:
//
//   - "pin": the PIN the link asks for, after the helpdesk verified the
//     person; it also replaces the user's PIN on file. Omitted: the PIN on
//     file (409 when there is none).
//   - "password": a temporary password the caller has already set in
//     Keystone (the fallback when setpass has no reset credential: the old
//     password is then gone already). Omitted: the link sets the password
//     with setpass's reset credential, so the current password keeps
//     working until the link is used (501 without a reset credential).
//
// The PIN is checked before the credential, so a 501 means the PIN is
// there and the caller may fall back.
func (h *handler) issueReset(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	actor, ok := h.adminCaller(w, r, "reset issue")
	if !ok {
		return
	}
	userID, req, ok := h.issueRequest(w, r)
	if !ok {
		return
	}
	issued, err := h.helpdeskReset(ctx, userID, req)
	switch {
	case errors.Is(err, errNoPIN), errors.Is(err, errPINLocked):
		apiError(w, http.StatusConflict, err.Error())
		return
	case errors.Is(err, errNoResetCredential):
		apiError(w, http.StatusNotImplemented, errNoResetCredential.Error())
		return
	case err != nil:
		h.Logger.Error("issuing a reset link", "user_id", userID, "err", err)
		apiError(w, http.StatusInternalServerError, "internal error")
		return
	}
	h.Metrics.resetsIssued.Inc()
	if issued.unlocked {
		h.audit(ctx, actor, "setpass.pin.unlock", userID)
		h.Logger.Info("PIN unlocked by the helpdesk with a new PIN", "user_id", userID, "actor", actor)
	}
	h.audit(ctx, actor, "setpass.reset.issue", userID)
	h.Logger.Info("reset link issued", "user_id", userID, "actor", actor, "expires_at", issued.ExpiresAt,
		"pin_replaced", req.PIN != nil, "temporary_password", req.Password != nil)
	if wantsJSON(r) {
		writeJSON(w, http.StatusOK, issued.Issued)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, issued.Token)
}

// helpdeskIssued is a reset link the helpdesk asked for; unlocked says
// that its new PIN lifted a PIN lock.
type helpdeskIssued struct {
	client.Issued
	unlocked bool
}

// helpdeskReset resolves the PIN, checks that the link will be able to set
// a password, replaces the PIN on file when one was given (which also
// lifts a PIN lock and clears the wrong-PIN count: the helpdesk verified
// the person), and stores the link.
func (h *handler) helpdeskReset(ctx context.Context, userID string, req client.IssueRequest) (helpdeskIssued, error) {
	locked, err := h.pinLocked(ctx, userID)
	if err != nil {
		return helpdeskIssued{}, err
	}
	var pinHMAC []byte
	if req.PIN != nil {
		pinHMAC = pinMAC(h.Settings.Keys, userID, *req.PIN)
	} else {
		pinHMAC, err = h.Store.GetPIN(ctx, userID)
		if errors.Is(err, store.ErrNotFound) {
			return helpdeskIssued{}, errNoPIN
		}
		if err != nil {
			return helpdeskIssued{}, fmt.Errorf("reading the PIN on file: %w", err)
		}
		if locked {
			return helpdeskIssued{}, errPINLocked
		}
	}
	if req.Password == nil && h.Resetter == nil {
		return helpdeskIssued{}, errNoResetCredential
	}
	if req.PIN != nil {
		if err := h.Store.ResetPIN(ctx, userID, pinHMAC, h.Now()); err != nil {
			return helpdeskIssued{}, fmt.Errorf("replacing the PIN on file: %w", err)
		}
	}
	temp := ""
	if req.Password != nil {
		temp = *req.Password
	}
	issued, err := h.putResetToken(ctx, userID, pinHMAC, temp)
	return helpdeskIssued{Issued: issued, unlocked: locked && req.PIN != nil}, err
}

// putResetToken stores a reset link for the user, replacing any earlier
// link. With temp "" the link sets the password with the reset credential;
// otherwise as the user, with temp as the original password.
func (h *handler) putResetToken(ctx context.Context, userID string, pinHMAC []byte, temp string) (client.Issued, error) {
	token, err := newToken(h.Random)
	if err != nil {
		return client.Issued{}, err
	}
	var sealed []byte
	if temp != "" {
		if sealed, err = seal(h.Random, token, userID, temp); err != nil {
			return client.Issued{}, err
		}
	}
	now := h.Now()
	t := store.Token{
		Hash: tokenHash(token), UserID: userID, PINHMAC: pinHMAC, SealedPassword: sealed,
		Purpose: purposeReset, CreatedAt: now, ExpiresAt: now.Add(h.Settings.Reset.TokenTTL),
	}
	if err := h.Store.PutToken(ctx, t); err != nil {
		return client.Issued{}, fmt.Errorf("storing the reset link: %w", err)
	}
	return client.Issued{Token: token, URL: linkURL(h.Settings.BaseURL, token), ExpiresAt: t.ExpiresAt}, nil
}

// reset completes a reset link that holds no temporary password: it sets
// the password with the reset credential. Like change, it consumes the
// link first, and reopens it when nothing changed for a reason the user
// or the operator can fix.
func (h *handler) reset(w http.ResponseWriter, r *http.Request, f Form, t store.Token) {
	kctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), keystoneTimeout)
	defer cancel()
	usedAt, ok := h.consume(kctx, w, t)
	if !ok {
		return
	}
	err := h.Resetter.SetPassword(kctx, t.UserID, f.Password)
	var refused *PasswordRefusedError
	switch {
	case err == nil:
		h.passwordSet(kctx, resigned(h.Settings.Keys, t, f.PIN), "user.password.reset")
		h.page(w, http.StatusOK, pageDone, pageData{})
	case errors.As(err, &refused):
		h.restore(kctx, t, usedAt)
		h.form(w, http.StatusBadRequest, f.Token, true, map[string]string{"password": refused.Reason})
	case errors.Is(err, ErrResetDenied):
		// Nothing changed: the operator must fix the credential.
		h.restore(kctx, t, usedAt)
		h.keystoneFailed("reset-password", err)
		h.Logger.Error("Keystone refused setpass's reset credential; check setpass.reset_user and its role", "user_id", t.UserID)
		h.problem(w, http.StatusServiceUnavailable, "Please try again later",
			"We cannot set your password right now. Your password has not been changed and this link still works; try again later or write to us.")
	case errors.Is(err, ErrUnknownUser):
		h.Logger.Warn("reset link of a user Keystone no longer has", "user_id", t.UserID)
		h.invalidLink(w)
	default:
		h.keystoneFailed("reset-password", err)
		h.problem(w, http.StatusBadGateway, "We could not confirm the change",
			"The cloud's identity service did not answer in time. Try to log in with your new password; if that fails, ask for a new link.")
	}
}

// passwordSet records a password set through link t: metrics, audit, the
// PIN on file and, for a reset, the optional token revocation.
func (h *handler) passwordSet(ctx context.Context, t store.Token, action string) {
	h.Metrics.consumed.Inc()
	h.audit(ctx, "setpass", action, t.UserID)
	h.Logger.Info("password set", "user_id", t.UserID, "purpose", t.Purpose)
	if len(t.PINHMAC) > 0 {
		if err := h.Store.PutPIN(ctx, t.UserID, t.PINHMAC, h.Now()); err != nil {
			h.Logger.Error("keeping the PIN on file", "user_id", t.UserID, "err", err)
		}
	}
	if t.Purpose != purposeReset || !h.Settings.Reset.RevokeTokens {
		return
	}
	if h.Resetter == nil {
		h.Logger.Warn("setpass.reset_revoke_tokens is set but there is no reset credential: tokens not revoked", "user_id", t.UserID)
		return
	}
	if err := h.Resetter.RevokeTokens(ctx, t.UserID); err != nil {
		h.keystoneFailed("revoke-tokens", err)
		h.Logger.Error("revoking the user's tokens after a reset", "user_id", t.UserID, "err", err)
		return
	}
	h.audit(ctx, "setpass", "user.tokens.revoke", t.UserID)
}

// resetDefaults fills the zero values of the reset settings and checks
// them.
func (d *Deps) resetDefaults() error {
	d.Settings.PINGuard.defaults()
	rs := &d.Settings.Reset
	if rs.Mode == "" {
		rs.Mode = ResetLink
	}
	switch rs.Mode {
	case ResetLink, ResetHelpdesk, ResetOff:
	default:
		return fmt.Errorf("setpass: reset mode %q is not %s, %s or %s", rs.Mode, ResetLink, ResetHelpdesk, ResetOff)
	}
	if rs.TokenTTL <= 0 {
		rs.TokenTTL = d.Settings.TokenTTL
	}
	if rs.MinTime <= 0 {
		rs.MinTime = defaultResetMinTime
	}
	if rs.AccountLimit <= 0 {
		rs.AccountLimit = defaultResetAccountLimit
	}
	if d.Sleep == nil {
		d.Sleep = sleepCtx
	}
	if d.Go == nil {
		d.Go = func(f func()) { go f() }
	}
	if d.Mail == nil || d.Directory == nil || rs.Mode == ResetOff {
		return nil
	}
	if (rs.Mode == ResetHelpdesk || d.Resetter == nil) && rs.Helpdesk == "" {
		d.Logger.Warn("the /reset page is off: it would report to the helpdesk, but mail.helpdesk is not set")
		rs.Mode = ResetOff
		return nil
	}
	if rs.Mode == ResetLink && d.Resetter == nil {
		d.Logger.Warn("no reset credential (setpass.reset_user): the /reset page only tells the helpdesk")
	}
	return nil
}

// selfService reports whether the /reset page is served.
func (h *handler) selfService() bool {
	return h.Mail != nil && h.Directory != nil && h.Settings.Reset.Mode != ResetOff
}

// resetByHelpdesk reports whether /reset requests go to the helpdesk
// rather than mail a link.
func (h *handler) resetByHelpdesk() bool {
	return h.Settings.Reset.Mode == ResetHelpdesk || h.Resetter == nil
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
