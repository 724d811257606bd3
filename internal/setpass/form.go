package setpass

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/kaizen-onboard/kaizen/internal/pin"
	"github.com/kaizen-onboard/kaizen/internal/store"
)

// keystoneTimeout bounds the consume, the password change and the reopening
// of a refused link, which run detached from the browser's request.
const keystoneTimeout = 30 * time.Second

// live reports whether t can still be used at now. Expired, used, locked
// and out-of-attempts tokens all look the same to the user.
func (h *handler) live(t store.Token, now time.Time) bool {
	if !now.Before(t.ExpiresAt) && t.UsedAt == nil {
		h.Metrics.expiriesSeen.Inc()
	}
	return t.UsedAt == nil && now.Before(t.ExpiresAt) && t.LockedAt == nil && t.Attempts < h.Settings.MaxAttempts
}

// lookup finds a live token; ok is false for anything the user should be
// told is "no longer valid".
func (h *handler) lookup(ctx context.Context, token string) (t store.Token, ok bool, err error) {
	if !wellFormedToken(token) {
		return store.Token{}, false, nil
	}
	t, err = h.Store.GetToken(ctx, tokenHash(token))
	if errors.Is(err, store.ErrNotFound) {
		return store.Token{}, false, nil
	}
	if err != nil {
		return store.Token{}, false, fmt.Errorf("reading a token: %w", err)
	}
	if !h.live(t, h.Now()) {
		return t, false, nil
	}
	// A locked PIN closes every link of the user, as a locked link does.
	locked, err := h.pinLocked(ctx, t.UserID)
	if err != nil {
		return store.Token{}, false, err
	}
	return t, !locked, nil
}

// showForm is GET /?token=. It never changes state: mail scanners open links.
func (h *handler) showForm(w http.ResponseWriter, r *http.Request) {
	token := r.URL.Query().Get("token")
	t, ok, err := h.lookup(r.Context(), token)
	if err != nil {
		h.storeFailed(w, "showing the form", err)
		return
	}
	if !ok {
		h.invalidLink(w)
		return
	}
	h.form(w, http.StatusOK, token, t.Purpose == purposeReset, nil)
}

// form shows the password form; reset words it for a password reset.
func (h *handler) form(w http.ResponseWriter, status int, token string, reset bool, errs map[string]string) {
	h.page(w, status, pageForm, pageData{Token: token, MinLength: h.Settings.MinPasswordLength, Errors: errs, Reset: reset})
}

// submitForm is POST /: token, PIN, password rules, then the change in
// Keystone. See README.md for why the token is consumed before Keystone is
// called and restored when Keystone refuses the new password.
func (h *handler) submitForm(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	now := h.Now()
	client := limiterKey(clientAddr(r, h.Settings.TrustedProxies))
	if !h.limits.allow(client, now) {
		h.Metrics.rateLimited.Inc()
		w.Header().Set("Retry-After", "60")
		h.problem(w, http.StatusTooManyRequests, "Too many attempts",
			"Too many attempts from your network. Wait a minute and try again.")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxFormBody))
	if err != nil {
		h.problem(w, http.StatusRequestEntityTooLarge, "Form too large", "The form you sent is too large.")
		return
	}
	f, err := ParseForm(body)
	if err != nil {
		// A token that cannot be ours reads like any other dead link.
		h.invalidLink(w)
		return
	}
	t, ok, err := h.lookup(ctx, f.Token)
	if err != nil {
		h.storeFailed(w, "checking the token", err)
		return
	}
	if !ok {
		h.invalidLink(w)
		return
	}
	isReset := t.Purpose == purposeReset
	if !pin.Valid(f.PIN) {
		// Not counted: it cannot be a guess at a 4-digit PIN.
		h.form(w, http.StatusBadRequest, f.Token, isReset, map[string]string{"pin": "Enter the 4 digits of your PIN."})
		return
	}

	// Counted before the check, atomically, so parallel guesses cannot
	// exceed the limit.
	hash := t.Hash
	attempts, last, err := h.Store.RecordAttempt(ctx, hash, now, h.Settings.MaxAttempts)
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrConflict) {
		h.invalidLink(w)
		return
	}
	if err != nil {
		h.storeFailed(w, "counting an attempt", err)
		return
	}
	if !pinMatches(h.Settings.Keys, t.UserID, f.PIN, t.PINHMAC) {
		h.Metrics.pinFailures.Inc()
		// Counted against the person too, across all their links.
		userLocked, userLeft, err := h.wrongPIN(ctx, t.UserID, client, now)
		if err != nil {
			h.storeFailed(w, "counting a wrong PIN", err)
			return
		}
		if last || userLocked {
			// The page is the same whichever limit was reached.
			if err := h.Store.LockToken(ctx, hash, now); err != nil {
				h.Logger.Error("locking a token", "user_id", t.UserID, "err", err)
			}
			h.Metrics.lockouts.Inc()
			h.Logger.Warn("token locked after the last wrong PIN", "user_id", t.UserID)
			h.problem(w, http.StatusForbidden, "This link is now locked",
				"The PIN was wrong too many times, so this link no longer works. Ask for a new one.")
			return
		}
		left := min(h.Settings.MaxAttempts-attempts, userLeft)
		h.form(w, http.StatusBadRequest, f.Token, isReset, map[string]string{"pin": fmt.Sprintf(
			"Wrong PIN. %d %s left before this link is locked.", left, plural(left, "attempt", "attempts"))})
		return
	}
	// The PIN was right, so its attempt must not count against the user.
	// ConsumeToken clears the count on the way to the password change; the
	// paths that stop before it clear it here (one write fewer per success).
	pinAccepted := func() {
		if err := h.Store.ResetAttempts(ctx, hash); err != nil {
			h.Logger.Error("resetting PIN attempts after a right PIN", "user_id", t.UserID, "err", err)
		}
	}

	user, err := h.Keystone.User(ctx, t.UserID)
	if err != nil {
		pinAccepted()
		h.keystoneFailed("get-user", err)
		h.problem(w, http.StatusServiceUnavailable, "Please try again",
			"The cloud's identity service is not answering. Your password has not been changed; try again in a few minutes.")
		return
	}
	if errs := h.passwordRules(f, user); errs != nil {
		pinAccepted()
		h.form(w, http.StatusBadRequest, f.Token, isReset, errs)
		return
	}
	if len(t.SealedPassword) == 0 {
		// A reset link: the password is set with the reset credential.
		if !isReset || h.Resetter == nil {
			pinAccepted()
			h.Logger.Error("a link without a temporary password, and no reset credential to set the password with",
				"user_id", t.UserID, "purpose", t.Purpose)
			h.problem(w, http.StatusServiceUnavailable, "Please try again later",
				"We cannot set your password right now. Your password has not been changed; try again later or write to us.")
			return
		}
		h.reset(w, r, f, t)
		return
	}
	temp, err := unseal(f.Token, t.UserID, t.SealedPassword)
	if err != nil {
		pinAccepted()
		h.Logger.Error("opening the temporary password", "user_id", t.UserID, "err", err)
		h.problem(w, http.StatusInternalServerError, "Something went wrong",
			"This link cannot set your password. Ask for a new one.")
		return
	}
	h.change(w, r, f, t, temp)
}

// change consumes the token, then changes the password. Consuming first is
// the gate: of concurrent correct submissions exactly one gets past it, so
// the password is changed at most once per token. If Keystone then refuses
// the new password for a reason the user can fix, nothing changed and the
// token is put back, so the user can try another password.
func (h *handler) change(w http.ResponseWriter, r *http.Request, f Form, t store.Token, temp string) {
	// From the consume on, the work must be seen through even if the
	// browser goes away: a consume cancelled half-way could spend the link
	// without a change, and a cancelled Keystone call leaves the outcome
	// unknown.
	kctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), keystoneTimeout)
	defer cancel()
	usedAt, ok := h.consume(kctx, w, t)
	if !ok {
		return
	}
	err := h.Keystone.ChangePassword(kctx, t.UserID, temp, f.Password)
	var refused *PasswordRefusedError
	switch {
	case err == nil:
		h.passwordSet(kctx, resigned(h.Settings.Keys, t, f.PIN), "user.password.set")
		h.page(w, http.StatusOK, pageDone, pageData{})
	case errors.As(err, &refused):
		h.restore(kctx, t, usedAt)
		h.form(w, http.StatusBadRequest, f.Token, t.Purpose == purposeReset, map[string]string{"password": refused.Reason})
	case errors.Is(err, ErrOriginalRefused):
		h.Logger.Warn("keystone refused the temporary password; the link is spent", "user_id", t.UserID)
		h.problem(w, http.StatusConflict, "This link can no longer set your password",
			"Your password may already have been changed. Try to log in; if you cannot, ask for a new link.")
	default:
		// Unknown outcome (timeout, 5xx): the password may have changed, so
		// the token stays spent rather than risk a second change.
		h.keystoneFailed("change-password", err)
		h.problem(w, http.StatusBadGateway, "We could not confirm the change",
			"The cloud's identity service did not answer in time. Try to log in with your new password; if that fails, ask for a new link.")
	}
}

// consume spends link t before its password is set, at usedAt; ok is false
// when the link was spent or replaced already, or the store failed, and the
// browser has been answered.
func (h *handler) consume(ctx context.Context, w http.ResponseWriter, t store.Token) (usedAt time.Time, ok bool) {
	usedAt = h.Now()
	err := h.Store.ConsumeToken(ctx, t.Hash, usedAt)
	if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) {
		h.invalidLink(w)
		return usedAt, false
	}
	if err != nil {
		h.storeFailed(w, "consuming the token", err)
		return usedAt, false
	}
	return usedAt, true
}

// restore reopens the consumed token after Keystone refused the password,
// atomically and only if it is still the token consumed at usedAt: when an
// admin re-issued the link meanwhile, the newer link wins (ErrNotFound or
// ErrConflict, both expected).
func (h *handler) restore(ctx context.Context, t store.Token, usedAt time.Time) {
	err := h.Store.ReleaseToken(ctx, t.Hash, usedAt)
	if err != nil && !errors.Is(err, store.ErrConflict) && !errors.Is(err, store.ErrNotFound) {
		h.Logger.Error("reopening the link after Keystone refused the password", "user_id", t.UserID, "err", err)
	}
}

// passwordRules checks what we can before Keystone does; nil when all pass.
func (h *handler) passwordRules(f Form, u User) map[string]string {
	errs := map[string]string{}
	switch {
	case f.Password == "":
		errs["password"] = "Enter a new password."
	case utf8.RuneCountInString(f.Password) < h.Settings.MinPasswordLength:
		errs["password"] = fmt.Sprintf("Use at least %d characters.", h.Settings.MinPasswordLength)
	case checkPasswordShape(f.Password) != nil:
		errs["password"] = "Use printable characters only, at most 4096 bytes."
	case strings.EqualFold(f.Password, u.Name) || u.Email != "" && strings.EqualFold(f.Password, u.Email) ||
		strings.EqualFold(f.Password, u.ID):
		errs["password"] = "Your password must not be your user name or email address."
	}
	if f.Confirm != f.Password {
		errs["confirm"] = "The two passwords do not match."
	}
	if len(errs) == 0 {
		return nil
	}
	return errs
}

func (h *handler) storeFailed(w http.ResponseWriter, doing string, err error) {
	h.Logger.Error("store failed", "doing", doing, "err", err)
	h.problem(w, http.StatusServiceUnavailable, "Please try again",
		"Something went wrong on our side. Your password has not been changed; try again in a few minutes.")
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
