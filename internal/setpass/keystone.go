package setpass

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/kaizen-onboard/kaizen/internal/cloud"
)

// Keystone is what setpass needs from the identity service.
type Keystone interface {
	// CheckAdmin validates a caller's token and returns who it belongs to.
	// ErrUnauthenticated for a token Keystone does not accept, ErrForbidden
	// for one without the admin role on the admin project.
	CheckAdmin(ctx context.Context, subjectToken string) (actor string, err error)
	// User looks a user up; ErrUnknownUser when Keystone has no such user.
	User(ctx context.Context, userID string) (User, error)
	// ChangePassword changes the password as the user, proving it with the
	// original one. ErrOriginalRefused when Keystone does not accept the
	// original; a *PasswordRefusedError when it refuses the new one.
	ChangePassword(ctx context.Context, userID, original, replacement string) error
	// Ping checks that Keystone answers.
	Ping(ctx context.Context) error
}

// User is what the password rules (and the reset page) need to know about
// a user.
type User struct {
	ID       string
	Name     string
	Email    string // the "email" attribute, "" when unset
	FullName string // the description, where kaizen keeps the person's name
	DomainID string
	Enabled  bool
}

var (
	ErrUnauthenticated = errors.New("setpass: token not accepted")
	ErrForbidden       = errors.New("setpass: token is not admin on the admin project")
	ErrUnknownUser     = errors.New("setpass: no such user")
	ErrOriginalRefused = errors.New("setpass: Keystone refused the temporary password")
)

// PasswordRefusedError is Keystone refusing a new password (policy,
// history, minimum age); Reason is in plain words for the user.
type PasswordRefusedError struct{ Reason string }

func (e *PasswordRefusedError) Error() string { return "setpass: Keystone refused the new password" }

// keystoneError keeps only the status of a failed call: gophercloud's
// errors carry response bodies, which may quote a token.
type keystoneError struct {
	op     string
	status int
	cause  error // transport errors only
}

func (e *keystoneError) Error() string {
	if e.status != 0 {
		return fmt.Sprintf("keystone: %s: HTTP %d", e.op, e.status)
	}
	return fmt.Sprintf("keystone: %s: %v", e.op, e.cause)
}

func (e *keystoneError) Unwrap() error { return e.cause }

func statusOf(err error) int { return cloud.StatusOf(err) }

func wrapKeystone(op string, err error) error {
	if s := statusOf(err); s != 0 {
		return &keystoneError{op: op, status: s}
	}
	// A transport error (timeout, refused connection) names only the URL.
	var ue interface{ Timeout() bool }
	if errors.As(err, &ue) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return &keystoneError{op: op, cause: err}
	}
	return &keystoneError{op: op, cause: errors.New("request failed")}
}

// KeystoneClient is the real Keystone.
type KeystoneClient struct {
	admin        *cloud.Keystone
	bare         *cloud.Keystone
	adminProject string
	adminDomain  string // name or ID
	admins       adminCache
	now          func() time.Time // nil: time.Now

	mu             sync.Mutex
	adminProjectID string // resolved on first need
}

// NewKeystone uses admin (setpass's own client, which re-authenticates) to
// validate tokens and look users up, and builds a bare client on the same
// endpoint for password changes: with no token and no reauthentication, a
// 401 there is the user's, never retried as the admin. Successful admin
// checks are cached for DefaultAdminCacheTTL; see SetAdminCacheTTL.
func NewKeystone(admin *cloud.Keystone, adminProject, adminProjectDomain string) *KeystoneClient {
	return &KeystoneClient{
		admin:        admin,
		bare:         admin.Bare(),
		adminProject: adminProject,
		adminDomain:  adminProjectDomain,
		admins:       adminCache{ttl: DefaultAdminCacheTTL},
	}
}

func (k *KeystoneClient) User(ctx context.Context, userID string) (User, error) {
	u, err := k.admin.UserRaw(ctx, userID)
	if err != nil {
		if statusOf(err) == http.StatusNotFound {
			return User{}, ErrUnknownUser
		}
		return User{}, wrapKeystone("looking up a user", err)
	}
	return userOf(u), nil
}

func (k *KeystoneClient) ChangePassword(ctx context.Context, userID, original, replacement string) error {
	err := k.bare.ChangePasswordRaw(ctx, userID, original, replacement)
	if err == nil {
		return nil
	}
	switch statusOf(err) {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound:
		return ErrOriginalRefused
	case http.StatusBadRequest:
		return &PasswordRefusedError{Reason: plainReason(cloud.ResponseBody(err))}
	}
	return wrapKeystone("changing a password", err)
}

// plainReason turns Keystone's refusal into words for the user. Only the
// operator-written part of a policy message (password_regex_description)
// is passed through; anything else gets a fixed sentence. Keystone's own
// wording (keystone/exception.py: PasswordRequirementsValidationError,
// PasswordAgeValidationError, PasswordHistoryValidationError,
// PasswordSelfServiceDisabled) is "does not match the requirements" and
// "minimum password age"; the older phrasings are accepted too.
func plainReason(body []byte) string {
	var e struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	_ = json.Unmarshal(body, &e)
	msg := e.Error.Message
	switch {
	case strings.Contains(msg, "identical to a previous password"):
		return "The cloud does not allow reusing a previous password. Choose one you have not used before."
	case strings.Contains(msg, "minimum password age") || strings.Contains(msg, "minimum age"):
		return "Your password was changed too recently to change it again. Try again later."
	case strings.Contains(msg, "disallowing password changes"):
		return "The cloud does not let you change this account's password yourself. Ask the help desk for help."
	case strings.Contains(msg, "does not match the requirements") || strings.Contains(msg, "does not meet the requirements"):
		if _, rules, ok := strings.Cut(msg, "requirements:"); ok && len(rules) < 300 && strings.TrimSpace(rules) != "" {
			return "The cloud's password rules refused this password: " + strings.TrimSpace(rules)
		}
	}
	return "The cloud's password rules refused this password. Choose a longer or more varied one."
}

// Ping asks for the identity API's version document, which needs no token.
func (k *KeystoneClient) Ping(ctx context.Context) error {
	if err := k.bare.PingRaw(ctx); err != nil {
		return wrapKeystone("ping", err)
	}
	return nil
}
