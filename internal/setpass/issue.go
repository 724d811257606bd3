package setpass

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/kaizen-onboard/kaizen/internal/setpass/client"
	"github.com/kaizen-onboard/kaizen/internal/store"
)

// issue is PUT /token/<user_id>, the MOC setpass API.
//
// Renewal: a PIN may be omitted when the user already has a token (used,
// expired or not), because its HMAC is keyed by the server secret and the
// user ID, not by the token, and carries over. The temporary password
// cannot: it is sealed under the old token, which is stored only hashed.
// So the password is always required ("400 password required").
func (h *handler) issue(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	actor, ok := h.adminCaller(w, r, "token issue")
	if !ok {
		return
	}

	userID, req, ok := h.issueRequest(w, r)
	if !ok {
		return
	}

	issued, err := h.issueToken(ctx, userID, req)
	switch {
	case errors.Is(err, errBadRequest):
		apiError(w, http.StatusBadRequest, strings.TrimPrefix(err.Error(), errBadRequest.Error()+": "))
		return
	case err != nil:
		h.Logger.Error("issuing a token", "user_id", userID, "err", err)
		apiError(w, http.StatusInternalServerError, "internal error")
		return
	}
	h.Metrics.issued.Inc()
	h.audit(ctx, actor, "setpass.token.issue", userID)
	h.Logger.Info("token issued", "user_id", userID, "actor", actor, "expires_at", issued.ExpiresAt)

	if wantsJSON(r) {
		writeJSON(w, http.StatusOK, issued)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, issued.Token)
}

// issueRequest reads the body of PUT /token/<user_id> or PUT
// /reset/<user_id> and checks that Keystone has the user; ok is false when
// it answered the caller with a refusal instead.
func (h *handler) issueRequest(w http.ResponseWriter, r *http.Request) (userID string, req client.IssueRequest, ok bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxIssueBody))
	if err != nil {
		apiError(w, http.StatusRequestEntityTooLarge, "the body is too large")
		return "", req, false
	}
	if req, err = ParseIssueRequest(body); err != nil {
		apiError(w, http.StatusBadRequest, strings.TrimPrefix(err.Error(), errBadRequest.Error()+": "))
		return "", req, false
	}
	userID = r.PathValue("user_id")
	if !validUserID(userID) {
		apiError(w, http.StatusNotFound, "no such user")
		return "", req, false
	}
	if _, err := h.Keystone.User(r.Context(), userID); errors.Is(err, ErrUnknownUser) {
		apiError(w, http.StatusNotFound, "no such user")
		return "", req, false
	} else if err != nil {
		h.keystoneFailed("get-user", err)
		apiError(w, http.StatusServiceUnavailable, "the identity service is unavailable; try again")
		return "", req, false
	}
	return userID, req, true
}

// adminCaller checks the caller's X-Auth-Token as PUT /token does and
// answers the refusals; ok is false when it did.
func (h *handler) adminCaller(w http.ResponseWriter, r *http.Request, what string) (actor string, ok bool) {
	subject := r.Header.Get("X-Auth-Token")
	if subject == "" {
		apiError(w, http.StatusUnauthorized, "an X-Auth-Token header with a Keystone token is required")
		return "", false
	}
	actor, err := h.Keystone.CheckAdmin(r.Context(), subject)
	switch {
	case errors.Is(err, ErrUnauthenticated):
		apiError(w, http.StatusUnauthorized, "the token is not valid")
		return "", false
	case errors.Is(err, ErrForbidden):
		h.Logger.Warn(what+" refused: caller is not admin on the admin project", "actor", actor)
		apiError(w, http.StatusForbidden, "the token does not carry the admin role on the admin project")
		return "", false
	case err != nil:
		h.keystoneFailed("check-admin", err)
		apiError(w, http.StatusServiceUnavailable, "the identity service is unavailable; try again")
		return "", false
	}
	return actor, true
}

// issueToken stores a new token for the user, replacing any earlier one
// (which also resets the attempts and unlocks).
func (h *handler) issueToken(ctx context.Context, userID string, req client.IssueRequest) (client.Issued, error) {
	if req.Password == nil {
		return client.Issued{}, badRequest("password required: the temporary password cannot be carried over from an earlier link")
	}
	var pinHMAC []byte
	if req.PIN != nil {
		pinHMAC = pinMAC(h.Settings.Keys, userID, *req.PIN)
	} else {
		var err error
		if pinHMAC, err = h.carriedPIN(ctx, userID); err != nil {
			return client.Issued{}, err
		}
	}
	token, err := newToken(h.Random)
	if err != nil {
		return client.Issued{}, err
	}
	sealed, err := seal(h.Random, token, userID, *req.Password)
	if err != nil {
		return client.Issued{}, err
	}
	now := h.Now()
	t := store.Token{
		Hash: tokenHash(token), UserID: userID, PINHMAC: pinHMAC, SealedPassword: sealed,
		Purpose: purposeWelcome, CreatedAt: now, ExpiresAt: now.Add(h.Settings.TokenTTL),
	}
	if err := h.Store.PutToken(ctx, t); err != nil {
		return client.Issued{}, fmt.Errorf("storing the token: %w", err)
	}
	return client.Issued{Token: token, URL: linkURL(h.Settings.BaseURL, token), ExpiresAt: t.ExpiresAt}, nil
}

// carriedPIN is the PIN of a re-issue that omits it: that of the user's
// earlier link, else the user's PIN on file.
func (h *handler) carriedPIN(ctx context.Context, userID string) ([]byte, error) {
	old, err := h.Store.GetTokenByUser(ctx, userID)
	switch {
	case err == nil && len(old.PINHMAC) > 0:
		return old.PINHMAC, nil
	case err != nil && !errors.Is(err, store.ErrNotFound):
		return nil, fmt.Errorf("reading the user's current token: %w", err)
	}
	pin, err := h.Store.GetPIN(ctx, userID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, badRequest("pin required: the user has no earlier link and no PIN on file to keep the PIN from")
	case err != nil:
		return nil, fmt.Errorf("reading the user's PIN on file: %w", err)
	}
	return pin, nil
}

// linkURL is base with ?token=.
func linkURL(base, token string) string {
	u, err := url.Parse(base)
	if err != nil || u.Scheme == "" {
		return strings.TrimRight(base, "/") + "/?token=" + token
	}
	if u.Path == "" {
		u.Path = "/"
	}
	u.RawQuery = url.Values{"token": {token}}.Encode()
	u.Fragment = ""
	return u.String()
}

func wantsJSON(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		if mt, _, err := mime.ParseMediaType(strings.TrimSpace(part)); err == nil && mt == "application/json" {
			return true
		}
	}
	return false
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// apiError answers the API with a fixed message, never with an error's text.
func apiError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, client.APIError{Error: client.APIErrorDetail{Code: status, Title: http.StatusText(status), Message: msg}})
}

func (h *handler) keystoneFailed(op string, err error) {
	h.Metrics.keystoneErrs.WithLabelValues(op).Inc()
	h.Logger.Error("keystone call failed", "op", op, "err", err)
}
