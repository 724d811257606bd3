package account

import (
	"fmt"
	"time"

	"github.com/kaizen-onboard/kaizen/internal/mail"
)

// The outbox keys of the mail carrying a link, defined once. The welcome
// key doubles as the marker that a user kaizen created was given a link:
// once it is queued the account is never touched again by import or
// domain-manager.

// WelcomeKey is the key of user userID's welcome mail.
func WelcomeKey(userID string) string { return "welcome:" + userID }

// PasswordResetKey is the key of a password-reset mail: one per link,
// named by the link's expiry.
func PasswordResetKey(userID string, expires time.Time) string {
	return fmt.Sprintf("%s:%s:%d", mail.KindPasswordReset, userID, expires.UnixNano())
}

// ReminderKey is the key of a link-reminder mail: the reminder's ledger
// key (naming the link generation reminded about) and the new link's
// expiry, so a retry after a failure that left an earlier attempt's mail
// queued still sends the new link.
func ReminderKey(ledgerKey string, expires time.Time) string {
	return fmt.Sprintf("%s:%d", ledgerKey, expires.UnixMicro())
}
