package cloud

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gophercloud/gophercloud/v2"

	"github.com/kaizen-onboard/kaizen/internal/backoff"
)

// RetryPolicy says how OpenStack calls that fail transiently are repeated.
// The zero value, once [RetryPolicy.defaults] fills it, retries for 30s.
type RetryPolicy struct {
	// MaxWait bounds how long one call keeps being retried after its first
	// failure; a fault lasting longer fails the call. Negative disables
	// retries.
	MaxWait time.Duration
	// BaseDelay is the first wait (default 250ms); each later one doubles,
	// up to MaxDelay (default 8s), and is drawn at random between half of
	// that and all of it (jitter, so that workers hit by one fault do not
	// return in step).
	BaseDelay, MaxDelay time.Duration
	// Now, Sleep and Float64 (in [0,1)) are the clock, the wait and the
	// randomness; nil takes time.Now, a context-aware timer and math/rand.
	Now     func() time.Time
	Sleep   func(ctx context.Context, d time.Duration) error
	Float64 func() float64
	Logger  *slog.Logger
}

// DefaultRetryMaxWait is openstack.retry_max_wait's default: long enough
// to ride out a service restart or a load balancer failing over.
const DefaultRetryMaxWait = 30 * time.Second

func (p *RetryPolicy) defaults() {
	if p.MaxWait == 0 {
		p.MaxWait = DefaultRetryMaxWait
	}
	if p.BaseDelay <= 0 {
		p.BaseDelay = 250 * time.Millisecond
	}
	if p.MaxDelay <= 0 {
		p.MaxDelay = 8 * time.Second
	}
	if p.Now == nil {
		p.Now = time.Now
	}
	if p.Sleep == nil {
		p.Sleep = backoff.Sleep
	}
	if p.Float64 == nil {
		p.Float64 = rand.Float64
	}
	if p.Logger == nil {
		p.Logger = slog.New(slog.DiscardHandler)
	}
}

// Retrier decides, for gophercloud's ProviderClient.RetryFunc, whether a
// failed request is repeated, waits before it is, and counts the retries
// by service. It is safe for concurrent use.
type Retrier struct {
	p RetryPolicy

	mu sync.Mutex
	// first holds when each request being retried first failed, by its
	// options (gophercloud passes the same pointer on every attempt of
	// one request and a fresh one per request).
	first    map[*gophercloud.RequestOpts]time.Time
	counts   map[string]int    // retries by service
	services map[string]string // endpoint URL prefix -> service type
}

// NewRetrier returns a retrier with p's defaults filled in.
func NewRetrier(p RetryPolicy) *Retrier {
	p.defaults()
	return &Retrier{p: p, first: map[*gophercloud.RequestOpts]time.Time{}, counts: map[string]int{},
		services: map[string]string{}}
}

// Install makes pc retry through r.
func (r *Retrier) Install(pc *gophercloud.ProviderClient) { pc.RetryFunc = r.Retry }

// NameEndpoint records that URLs under prefix belong to service (used in
// counts and in the errors of calls that ran out of retries).
func (r *Retrier) NameEndpoint(prefix, service string) {
	if prefix == "" || service == "" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.services[strings.TrimRight(prefix, "/")] = service
}

// Retries returns the number of retried requests by service since r was
// made (a copy).
func (r *Retrier) Retries() map[string]int {
	if r == nil {
		return map[string]int{}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.counts)
}

// service names the OpenStack service of rawURL: the longest registered
// prefix, else the URL's host.
func (r *Retrier) service(rawURL string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	best, name := -1, ""
	for prefix, svc := range r.services {
		if (rawURL == prefix || strings.HasPrefix(rawURL, prefix+"/") || strings.HasPrefix(rawURL, prefix+"?")) && len(prefix) > best {
			best, name = len(prefix), svc
		}
	}
	if name != "" {
		return name
	}
	if u, err := url.Parse(rawURL); err == nil && u.Host != "" {
		return u.Host
	}
	return "OpenStack"
}

// ErrRetriesExhausted marks a call that kept failing transiently until the
// retry budget (openstack.retry_max_wait) ran out; the error wraps the last
// failure too, so gophercloud.ResponseCodeIs still sees its status.
var ErrRetriesExhausted = errors.New("gave up retrying")

// Retry is a gophercloud.RetryFunc: nil repeats the request (after a wait),
// an error ends it with that error. Only transient failures of requests
// that are safe to repeat are retried (see [Retryable]); every other error
// is returned unchanged.
func (r *Retrier) Retry(ctx context.Context, method, rawURL string, opts *gophercloud.RequestOpts, err error, failCount uint) error {
	if ctx.Err() != nil || r.p.MaxWait < 0 || !Retryable(method, rawURL, err) {
		r.forget(opts)
		return err
	}
	now := r.p.Now()
	r.mu.Lock()
	start, ok := r.first[opts]
	if failCount <= 1 || !ok {
		start = now
		r.first[opts] = now
	}
	// Entries of requests that later succeeded are never forgotten by
	// them: drop every one older than a budget could last.
	for k, t := range r.first {
		if now.Sub(t) > 2*r.p.MaxWait+time.Minute {
			delete(r.first, k)
		}
	}
	r.mu.Unlock()

	wait := r.backoff(failCount)
	if ra, ok := retryAfter(err, now); ok && ra > wait {
		wait = ra
	}
	svc := r.service(rawURL)
	spent := now.Sub(start)
	if spent+wait > r.p.MaxWait {
		r.forget(opts)
		return fmt.Errorf("%s, %d attempts over %s (%w; openstack.retry_max_wait = %s): %w",
			describe(svc, method, rawURL, err), failCount, spent.Round(time.Millisecond), ErrRetriesExhausted, r.p.MaxWait, err)
	}
	r.p.Logger.Warn("retrying OpenStack request", "service", svc, "method", method, "url", redactURL(rawURL),
		"attempt", failCount+1, "wait", wait, "err", shortError(err))
	if serr := r.p.Sleep(ctx, wait); serr != nil {
		r.forget(opts)
		return err
	}
	r.mu.Lock()
	r.counts[svc]++
	r.mu.Unlock()
	return nil
}

func (r *Retrier) forget(opts *gophercloud.RequestOpts) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.first, opts)
}

// backoff is the wait before attempt n+1: BaseDelay·2^(n-1), capped at
// MaxDelay, scaled by a random factor in [0.5, 1).
func (r *Retrier) backoff(n uint) time.Duration {
	d := r.p.BaseDelay
	for i := uint(1); i < n && d < r.p.MaxDelay; i++ {
		d *= 2
	}
	d = min(d, r.p.MaxDelay)
	return time.Duration(float64(d) * (0.5 + r.p.Float64()/2))
}

// Retryable reports whether a request that failed with err may be sent
// again. The failure must be transient: no answer (connection refused or
// reset, a timeout, a truncated body), or 429, 500, 502, 503 or 504. And a
// repeat must not do twice what the first attempt may already have done:
//
//   - GET, HEAD, PUT, DELETE and PATCH set or read state and are safe;
//   - POST is retried only for token requests (authentication) and for
//     Keystone creates of objects whose names are unique (projects, users,
//     domains, roles, limits): a repeat of a create that did succeed is
//     refused with 409 Conflict, which every caller in this package
//     resolves by looking the object up (a project by its owner tag, a
//     user by its kaizen_owner attribute).
func Retryable(method, rawURL string, err error) bool {
	if !transient(err) {
		return false
	}
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPut, http.MethodDelete, http.MethodPatch:
		return true
	case http.MethodPost:
		return uniqueCreate(rawURL)
	}
	return false
}

// uniqueCreate reports whether a POST to rawURL is a token request or a
// Keystone create of a uniquely named object.
func uniqueCreate(rawURL string) bool {
	u, err := url.Parse(rawURL)
	if err != nil {
		return false
	}
	p := strings.TrimRight(u.Path, "/")
	for _, suffix := range []string{"/v3/auth/tokens", "/v3/projects", "/v3/users", "/v3/domains", "/v3/roles", "/v3/limits"} {
		if strings.HasSuffix(p, suffix) {
			return true
		}
	}
	return false
}

// transient reports whether err is a fault that may pass.
func transient(err error) bool {
	if err == nil {
		return false
	}
	var code gophercloud.ErrUnexpectedResponseCode
	if errors.As(err, &code) {
		switch code.Actual {
		case http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusBadGateway,
			http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return true
		}
		return false
	}
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		// No answer: a timeout, a refused or reset connection, a dropped
		// one. Not a malformed URL or an unsupported scheme.
		var op *net.OpError
		return urlErr.Timeout() || errors.As(urlErr.Err, &op) ||
			errors.Is(urlErr.Err, io.EOF) || errors.Is(urlErr.Err, io.ErrUnexpectedEOF)
	}
	// A body cut off mid-answer.
	return errors.Is(err, io.ErrUnexpectedEOF)
}

// retryAfter is the wait a 429 or 503 answer asks for in Retry-After
// (seconds or an HTTP date).
func retryAfter(err error, now time.Time) (time.Duration, bool) {
	var code gophercloud.ErrUnexpectedResponseCode
	if !errors.As(err, &code) || code.ResponseHeader == nil {
		return 0, false
	}
	if code.Actual != http.StatusTooManyRequests && code.Actual != http.StatusServiceUnavailable {
		return 0, false
	}
	return backoff.RetryAfter(code.ResponseHeader, now)
}

// describe puts the service and status code first, where an admin reading
// a Status cell looks: "identity answered 503 Service Unavailable to POST
// /v3/users".
func describe(svc, method, rawURL string, err error) string {
	path := redactURL(rawURL)
	if u, perr := url.Parse(path); perr == nil && u.Path != "" {
		path = u.Path
	}
	var code gophercloud.ErrUnexpectedResponseCode
	if errors.As(err, &code) {
		return fmt.Sprintf("%s answered %d %s to %s %s", svc, code.Actual, http.StatusText(code.Actual), method, path)
	}
	return fmt.Sprintf("%s did not answer %s %s", svc, method, path)
}

// shortError is err without a response body, for the log.
func shortError(err error) string {
	var code gophercloud.ErrUnexpectedResponseCode
	if errors.As(err, &code) {
		return strconv.Itoa(code.Actual) + " " + http.StatusText(code.Actual)
	}
	return err.Error()
}

// redactURL drops the query, which can carry names and filters.
func redactURL(rawURL string) string {
	if i := strings.IndexByte(rawURL, '?'); i >= 0 {
		return rawURL[:i]
	}
	return rawURL
}
