package sheetsfake

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Quota models the Sheets API's per-minute request quotas (Google's "Usage
// limits": read and write requests are counted separately, per user per
// project, and refilled every minute). A request over the limit gets 429
// RESOURCE_EXHAUSTED with Google's body and is not counted. Every request
// to the Sheets API counts, whatever its size; token requests do not.
type Quota struct {
	// ReadsPerMinute and WritesPerMinute limit each minute's requests
	// (Google's default is 60 per user); 0 means unlimited.
	ReadsPerMinute  int
	WritesPerMinute int
	// Now is the clock the minutes are read from; nil means time.Now.
	// Tests that inject a sleep into the client advance this clock in it,
	// so backing off a whole minute takes no real time.
	Now func() time.Time
	// RetryAfter adds a Retry-After header (the seconds left in the
	// minute) to the 429. Google documents none for the Sheets API, so
	// the faithful default is off; it exists to test clients that honour
	// the header where a proxy or another Google API sends it.
	RetryAfter bool
}

// quotaState counts the current minute's requests by quota.
type quotaState struct {
	q      Quota
	window time.Time // start of the counted minute
	used   map[string]int
}

// SetQuota turns the per-minute quotas on (a zero Quota turns them off)
// and starts counting afresh.
func (f *Fake) SetQuota(q Quota) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if q.Now == nil {
		q.Now = time.Now
	}
	f.quota = &quotaState{q: q, used: map[string]int{}}
	if q.ReadsPerMinute == 0 && q.WritesPerMinute == 0 {
		f.quota = nil
	}
}

// QuotaRefusals counts the requests refused with 429 by the quotas.
func (f *Fake) QuotaRefusals() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.quotaRefused
}

// chargeQuota counts one request of user against its quota, or returns the
// 429 Google sends when the minute's quota is spent; called with f.mu held.
func (f *Fake) chargeQuota(w http.ResponseWriter, user string, write bool) *apiError {
	s := f.quota
	if s == nil {
		return nil
	}
	now := s.q.Now()
	if win := now.Truncate(time.Minute); !win.Equal(s.window) {
		s.window, s.used = win, map[string]int{}
	}
	kind, limit := "Read", s.q.ReadsPerMinute
	if write {
		kind, limit = "Write", s.q.WritesPerMinute
	}
	if limit <= 0 {
		return nil
	}
	key := user + "\x00" + kind
	if s.used[key] < limit {
		s.used[key]++
		return nil
	}
	f.quotaRefused++
	if s.q.RetryAfter {
		left := s.window.Add(time.Minute).Sub(now)
		w.Header().Set("Retry-After", strconv.Itoa(int((left+time.Second-1)/time.Second)))
	}
	return f.quotaError(kind, limit)
}

// quotaError is Google's answer to a request over a per-minute quota: 429
// RESOURCE_EXHAUSTED, an ErrorInfo with reason RATE_LIMIT_EXCEEDED and the
// quota's metric and limit, and a Help link to ask for more.
func (f *Fake) quotaError(kind string, limit int) *apiError {
	e := errorf(429, "Quota exceeded for quota metric '%s requests' and limit '%s requests per minute per user' of service 'sheets.googleapis.com' for consumer 'project_number:%s'.", kind, kind, f.projectNo)
	e.details = []any{
		map[string]any{
			"@type":  "type.googleapis.com/google.rpc.ErrorInfo",
			"reason": "RATE_LIMIT_EXCEEDED",
			"domain": "googleapis.com",
			"metadata": map[string]string{
				"consumer":          "projects/" + f.projectNo,
				"quota_metric":      "sheets.googleapis.com/" + strings.ToLower(kind) + "_requests",
				"quota_limit":       kind + "RequestsPerMinutePerUser",
				"quota_limit_value": strconv.Itoa(limit),
				"quota_location":    "global",
				"service":           "sheets.googleapis.com",
			},
		},
		map[string]any{
			"@type": "type.googleapis.com/google.rpc.Help",
			"links": []any{map[string]any{
				"description": "Request a higher quota limit.",
				"url":         "https://cloud.google.com/docs/quotas/help/request_increase",
			}},
		},
	}
	return e
}
