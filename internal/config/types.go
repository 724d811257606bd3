package config

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Secret holds a credential. It prints, logs and encodes as "[redacted]" so a
// configuration dump or a log line cannot leak it; Reveal is the only way out.
type Secret struct {
	value  string
	source string // "inline", "file <path>" or "env <NAME>", for config check
}

// NewSecret wraps a value obtained elsewhere (tests, generated keys).
func NewSecret(value, source string) Secret { return Secret{value: value, source: source} }

// UnmarshalText takes an inline value from the TOML file.
func (s *Secret) UnmarshalText(b []byte) error {
	s.value, s.source = string(b), "inline"
	return nil
}

// MarshalText never returns the value.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// String never returns the value.
func (s Secret) String() string {
	if s.value == "" {
		return ""
	}
	return "[redacted]"
}

// GoString keeps %#v from printing the value.
func (s Secret) GoString() string { return "config.Secret(" + s.String() + ")" }

// Reveal returns the secret itself, for the one call that needs it.
func (s Secret) Reveal() string { return s.value }

// IsSet reports whether a value was configured.
func (s Secret) IsSet() bool { return s.value != "" }

// Source says where the value came from, without revealing it.
func (s Secret) Source() string { return s.source }

// Duration is a time.Duration written as "90s", "72h" or "7d". Parsing is
// deferred to validation so that a malformed value is reported alongside every
// other problem instead of aborting the load.
type Duration struct {
	D   time.Duration
	raw string
	err error
}

// Dur builds a Duration from a time.Duration (defaults, tests).
func Dur(d time.Duration) Duration { return Duration{D: d, raw: formatDuration(d)} }

func (d *Duration) UnmarshalText(b []byte) error {
	d.raw = string(b)
	d.D, d.err = parseDuration(d.raw)
	return nil
}

func (d Duration) MarshalText() ([]byte, error) { return []byte(d.raw), nil }

func (d Duration) String() string { return d.raw }

// parseDuration accepts Go durations plus a whole-day suffix ("7d"), because
// operators think of link expiry and reminder intervals in days.
func parseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("malformed duration %q (examples: 90s, 15m, 72h, 7d)", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("malformed duration %q (examples: 90s, 15m, 72h, 7d)", s)
	}
	if d < 0 {
		return 0, fmt.Errorf("duration %q is negative", s)
	}
	return d, nil
}

func formatDuration(d time.Duration) string {
	if d > 0 && d%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	}
	return d.String()
}

// DSN is a store connection string. It may carry a database password, so it
// encodes with the password masked.
type DSN struct{ Secret }

func (d DSN) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

func (d DSN) String() string { return RedactURL(d.value) }

// RedactURL masks the password of a URL-shaped connection string; anything
// it cannot parse is fully redacted rather than echoed.
func RedactURL(raw string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "[redacted]"
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.String()
}
