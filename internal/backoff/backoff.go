// Package backoff holds what every retry loop of Kaizen's shares: a wait
// that ends with its context, and the wait a server asks for in
// Retry-After. The retry policies themselves (which calls, how long in
// all) belong to their callers: OpenStack's in internal/cloud, Google's in
// internal/sheet.
package backoff

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// maxWait is the longest wait RetryAfter reports.
const maxWait = time.Duration(1<<63 - 1)

// Sleep waits d, or until ctx ends (then it returns ctx's error).
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// RetryAfter reads a Retry-After header, in seconds or as an HTTP date
// (measured from now), as RFC 9110 allows; false when there is none or it
// cannot be read. A date in the past asks for no wait.
func RetryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil && s >= 0 {
		// Beyond what a Duration holds the product would wrap negative;
		// such a wait is longer than any budget anyway.
		if s > int64(maxWait/time.Second) {
			return maxWait, true
		}
		return time.Duration(s) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}
