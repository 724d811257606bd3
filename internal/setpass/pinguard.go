package setpass

import (
	"context"
	"fmt"
	netmail "net/mail"
	"strconv"
	"strings"
	"time"

	"github.com/kaizen-onboard/kaizen/internal/mail"
	"github.com/kaizen-onboard/kaizen/internal/store"
)

// PINGuardSettings bound PIN guessing per person rather than per link:
// each /reset request issues a fresh link with fresh attempts, so without
// it someone reading a victim's mailbox would get MaxAttempts guesses per
// link, AccountLimit links an hour. Every wrong PIN on any of a user's
// links (welcome, reminder and reset links) counts; the one that reaches
// PerUser within Window locks the user's PIN until the helpdesk sets a new
// one (PUT /reset with a PIN). Zero values take the defaults noted.
type PINGuardSettings struct {
	PerUser int           // setpass.pin_failures_per_user (10)
	Window  time.Duration // setpass.pin_failure_window (24h)
}

const (
	defaultPINFailuresPerUser = 10
	defaultPINFailureWindow   = 24 * time.Hour
)

func (g *PINGuardSettings) defaults() {
	if g.PerUser <= 0 {
		g.PerUser = defaultPINFailuresPerUser
	}
	if g.Window <= 0 {
		g.Window = defaultPINFailureWindow
	}
}

// pinLocked reports whether the user's PIN is locked: then none of the
// user's links accepts a PIN, and each reads like any other dead link.
func (h *handler) pinLocked(ctx context.Context, userID string) (bool, error) {
	_, locked, err := h.Store.PINLock(ctx, userID)
	if err != nil {
		return false, fmt.Errorf("reading the PIN lock: %w", err)
	}
	return locked, nil
}

// wrongPIN counts a wrong PIN against the user, across links, and locks
// the user's PIN when that reaches the limit. It returns whether the PIN
// is now locked and, if not, how many wrong PINs the user has left.
func (h *handler) wrongPIN(ctx context.Context, userID, client string, now time.Time) (locked bool, left int, err error) {
	g := h.Settings.PINGuard
	n, err := h.Store.RecordPINFailure(ctx, userID, now, g.Window)
	if err != nil {
		return false, 0, fmt.Errorf("counting a wrong PIN for the user: %w", err)
	}
	if n < g.PerUser {
		return false, g.PerUser - n, nil
	}
	lockedAt, first, err := h.Store.LockPIN(ctx, userID, now)
	if err != nil {
		return false, 0, fmt.Errorf("locking the user's PIN: %w", err)
	}
	if first {
		h.pinLockedNow(ctx, userID, client, n, lockedAt)
	}
	return true, 0, nil
}

// pinLockedNow tells the operator, the audit trail and the helpdesk, once
// per lock: only the caller that locked gets here, and the mail's key is
// unique to the lock, so a retry cannot mail twice.
func (h *handler) pinLockedNow(ctx context.Context, userID, client string, failures int, lockedAt time.Time) {
	window := shortDuration(h.Settings.PINGuard.Window)
	log := h.Logger.With("user_id", userID, "client", client)
	log.Warn("PIN locked: too many wrong PINs across the user's links; the helpdesk must set a new one",
		"failures", failures, "window", window)
	h.Metrics.pinLocks.Inc()
	if _, err := h.Store.AppendEvent(ctx, store.Event{At: h.Now(), Actor: "setpass", Action: "setpass.pin.locked", Target: userID,
		Details: map[string]string{"failures": strconv.Itoa(failures), "window": window,
			"locked_at": lockedAt.UTC().Format(time.RFC3339Nano), "client": client}}); err != nil {
		log.Warn("recording an audit event", "action", "setpass.pin.locked", "err", fmt.Errorf("audit: %w", err))
	}
	helpdesk := h.Settings.Reset.Helpdesk
	if h.Mail == nil || helpdesk == "" {
		log.Warn("PIN locked, and nobody is told: setpass has no mail or no mail.helpdesk address")
		return
	}
	data := mail.PINLockedData{Username: userID, UserID: userID, Failures: failures, Window: window, LockedAt: lockedAt}
	if u, err := h.Keystone.User(ctx, userID); err == nil {
		data.Name, data.Username = u.FullName, u.Name
	} else {
		log.Warn("PIN locked: reading the user for the helpdesk notice", "err", err)
	}
	key := fmt.Sprintf("%s:%s:%d", mail.KindPINLocked, userID, lockedAt.UnixMicro())
	if _, _, err := h.Mail.Queue(ctx, key, mail.KindPINLocked, []netmail.Address{{Address: helpdesk}}, data); err != nil {
		log.Error("PIN locked: queuing the helpdesk notice", "err", err)
		return
	}
	h.mailQueued()
}

// shortDuration writes d without zero units: 24h, 90m, 1h30m.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}
