package setpass

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	netmail "net/mail"
	"net/url"
	"strings"

	"github.com/kaizen-onboard/kaizen/internal/mail"
	"github.com/kaizen-onboard/kaizen/internal/store"
)

// maxResetsInFlight bounds the /reset work running behind answers already
// given; requests beyond it get the same answer and no mail.
const maxResetsInFlight = 32

// maxEmailLen is RFC 5321's limit on a forward path.
const maxEmailLen = 254

// showResetForm is GET /reset: the self-service form asking for the email.
func (h *handler) showResetForm(w http.ResponseWriter, r *http.Request) {
	h.page(w, http.StatusOK, pageReset, pageData{ByHelpdesk: h.resetByHelpdesk()})
}

// submitResetForm is POST /reset. Everything that depends on whether the
// account exists runs after the answer, in the background; the answer
// itself depends only on the request (rate limit per client, the address's
// shape) and always waits the same floor (setpass.reset_min_time). So known,
// unknown, protected and limited accounts all get the same status and body,
// in the same time. See README.md.
func (h *handler) submitResetForm(w http.ResponseWriter, r *http.Request) {
	start := h.Now()
	client := limiterKey(clientAddr(r, h.Settings.TrustedProxies))
	h.Metrics.resetRequests.Inc()
	if !h.resetLimits.allow(client, start) {
		h.Metrics.rateLimited.Inc()
		w.Header().Set("Retry-After", "60")
		h.problem(w, http.StatusTooManyRequests, "Too many attempts",
			"Too many requests from your network. Wait a minute and try again.")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxFormBody))
	if err != nil {
		h.problem(w, http.StatusRequestEntityTooLarge, "Form too large", "The form you sent is too large.")
		return
	}
	email, ok := parseResetForm(body)
	if !ok {
		h.page(w, http.StatusBadRequest, pageReset, pageData{ByHelpdesk: h.resetByHelpdesk(),
			Errors: map[string]string{"email": "Enter the email address of your account."}})
		return
	}
	switch {
	case !h.accountLimits.allow(strings.ToLower(email), start):
		h.Metrics.rateLimited.Inc()
		h.Logger.Info("password reset: too many requests for one address; no mail", "client", client)
	default:
		h.spawnReset(r.Context(), email, client)
	}
	if d := h.Settings.Reset.MinTime - h.Now().Sub(start); d > 0 {
		h.Sleep(r.Context(), d)
	}
	h.page(w, http.StatusOK, pageResetSent, pageData{ByHelpdesk: h.resetByHelpdesk()})
}

// parseResetForm reads the one field, email; ok is false unless it looks
// like an address (the shape only: nothing here depends on the account).
func parseResetForm(body []byte) (string, bool) {
	vals, err := url.ParseQuery(string(body))
	if err != nil || len(vals["email"]) != 1 {
		return "", false
	}
	email := strings.TrimSpace(vals["email"][0])
	if email == "" || len(email) > maxEmailLen || strings.ContainsAny(email, " <>\"\r\n\t") {
		return "", false
	}
	a, err := netmail.ParseAddress(email)
	if err != nil || a.Address != email {
		return "", false
	}
	return email, true
}

// spawnReset runs the request's work detached from the answer. When too
// much is in flight it is dropped (the answer is the same either way).
func (h *handler) spawnReset(ctx context.Context, email, client string) {
	select {
	case h.resetSlots <- struct{}{}:
	default:
		h.Logger.Warn("password reset: too many requests in flight; this one is dropped", "client", client)
		return
	}
	ctx = context.WithoutCancel(ctx)
	h.Go(func() {
		defer func() { <-h.resetSlots }()
		ctx, cancel := context.WithTimeout(ctx, keystoneTimeout)
		defer cancel()
		h.selfReset(ctx, email, client)
	})
}

// selfReset is the work behind a /reset answer. Every outcome is logged
// for the operator (by user ID: the address typed is never logged, as it
// may be anything, a password included) and none is shown to the client.
func (h *handler) selfReset(ctx context.Context, email, client string) {
	log := h.Logger.With("client", client)
	found, err := h.Directory.FindUsers(ctx, email)
	if err != nil {
		h.keystoneFailed("reset-lookup", err)
		return
	}
	switch len(found) {
	case 0:
		log.Info("password reset: no account by that name; no mail")
		return
	case 1:
	default:
		log.Warn("password reset: several accounts in different domains have that name; no mail", "count", len(found))
		return
	}
	u := found[0]
	log = log.With("user_id", u.ID)
	if !u.Enabled {
		log.Info("password reset: the account is disabled; no mail")
		return
	}
	roles, err := h.Directory.UserRoles(ctx, u.ID)
	if err != nil {
		h.keystoneFailed("reset-lookup", err)
		return
	}
	if role := protectedRole(roles, h.Settings.Reset.ProtectedRoles); role != "" {
		log.Warn("password reset refused: the account holds a protected role (setpass.reset_protected_roles); no mail", "role", role)
		h.audit(ctx, "self-service", "setpass.reset.refused", u.ID)
		return
	}
	to := mailAddress(u)
	if to == "" {
		log.Warn("password reset: Keystone holds no email address for the account; no mail")
		return
	}
	if h.resetByHelpdesk() {
		h.tellHelpdesk(ctx, log, u, to, "A password reset was asked for on the reset page.")
		return
	}
	// A locked PIN: no link, and no word to the helpdesk, which was told
	// when it locked. The answer was the same already.
	switch locked, err := h.pinLocked(ctx, u.ID); {
	case err != nil:
		log.Error("password reset", "err", err)
		return
	case locked:
		log.Warn("password reset refused: the PIN is locked after too many wrong PINs; no mail")
		h.audit(ctx, "self-service", "setpass.reset.refused", u.ID)
		return
	}
	pin, err := h.Store.GetPIN(ctx, u.ID)
	if errors.Is(err, store.ErrNotFound) {
		log.Info("password reset: no PIN on file, so no link; the helpdesk is told")
		h.tellHelpdesk(ctx, log, u, to, "A password reset was asked for on the reset page, but there is no PIN on file "+
			"for the account, so no link was sent.")
		return
	}
	if err != nil {
		log.Error("password reset: reading the PIN on file", "err", err)
		return
	}
	issued, err := h.putResetToken(ctx, u.ID, pin, "")
	if err != nil {
		log.Error("password reset: storing the link", "err", err)
		return
	}
	// Greeted by the account's name, as addusers reset-password does: the
	// description is not always a person's name.
	key := mailKey(mail.KindPasswordReset, u.ID, issued.Token)
	data := mail.PasswordResetData{Name: u.Name, Username: u.Name, Link: issued.URL, ExpiresAt: issued.ExpiresAt}
	if _, _, err := h.Mail.Queue(ctx, key, mail.KindPasswordReset, []netmail.Address{{Address: to}}, data); err != nil {
		log.Error("password reset: queuing the mail", "err", err)
		return
	}
	h.audit(ctx, "self-service", "setpass.reset.issue", u.ID)
	log.Info("password reset: link mailed", "expires_at", issued.ExpiresAt)
	h.mailQueued()
}

// tellHelpdesk queues a helpdesk notice about a reset request.
func (h *handler) tellHelpdesk(ctx context.Context, log *slog.Logger, u User, to, detail string) {
	data := mail.HelpdeskNotifyData{
		Summary: "Password reset asked for " + u.Name,
		Detail: detail + " Verify the person, then send a link with " +
			"`addusers reset-password --user " + u.ID + " --pin NNNN` (the PIN agreed with them).",
		Items: []mail.HelpdeskItem{{Name: u.FullName, Email: to, Username: u.Name, Problem: "user ID " + u.ID}},
	}
	nonce, err := newToken(h.Random)
	if err != nil {
		log.Error("password reset: drawing a mail key", "err", err)
		return
	}
	key := mailKey("reset-request", u.ID, nonce)
	if _, _, err := h.Mail.Queue(ctx, key, mail.KindHelpdeskNotify, []netmail.Address{{Address: h.Settings.Reset.Helpdesk}}, data); err != nil {
		log.Error("password reset: queuing the helpdesk notice", "err", err)
		return
	}
	h.audit(ctx, "self-service", "setpass.reset.helpdesk", u.ID)
	log.Info("password reset: the helpdesk is told")
	h.mailQueued()
}

func (h *handler) mailQueued() {
	if h.MailQueued != nil {
		h.MailQueued()
	}
}

// mailKey is an outbox key unique to one request: the user ID and a
// digest of a fresh token (never the token itself, which the outbox would
// keep in clear).
func mailKey(prefix, userID, token string) string {
	return fmt.Sprintf("%s:%s:%x", prefix, userID, tokenHash(token)[:8])
}

// protectedRole returns the first of roles that is protected ("admin"
// always is), compared ignoring case; "" when none.
func protectedRole(roles, protected []string) string {
	for _, r := range roles {
		if strings.EqualFold(r, "admin") {
			return r
		}
		for _, p := range protected {
			if strings.EqualFold(r, strings.TrimSpace(p)) {
				return r
			}
		}
	}
	return ""
}

// mailAddress is where a user's mail goes: the address Keystone holds (the
// email attribute), else the name when it is an address.
func mailAddress(u User) string {
	for _, s := range []string{u.Email, u.Name} {
		if a, err := netmail.ParseAddress(s); err == nil && a.Address == s {
			return s
		}
	}
	return ""
}
