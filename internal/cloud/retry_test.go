package cloud

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
)

// fakeClock advances only when the retrier sleeps.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	sleeps []time.Duration
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(_ context.Context, d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sleeps = append(c.sleeps, d)
	c.now = c.now.Add(d)
	return nil
}

// scripted answers each request with the next status of script (then 200),
// optionally with headers, and counts requests.
type scripted struct {
	mu      sync.Mutex
	script  []int
	headers map[int]http.Header // by request index
	delay   map[int]time.Duration
	n       int
}

func (s *scripted) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	i := s.n
	s.n++
	status := http.StatusOK
	if i < len(s.script) {
		status = s.script[i]
	}
	h, d := s.headers[i], s.delay[i]
	s.mu.Unlock()
	if d > 0 {
		time.Sleep(d)
	}
	for k, v := range h {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Type", "application/json")
	if r.Method == http.MethodPost && status == http.StatusOK {
		status = http.StatusCreated
	}
	w.WriteHeader(status)
	w.Write([]byte(`{"ok": true}`))
}

func (s *scripted) requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

func TestRetrier(t *testing.T) {
	t.Parallel()
	retryAfter := func(v string) http.Header { return http.Header{"Retry-After": {v}} }
	tests := []struct {
		name     string
		method   string
		path     string
		script   []int
		headers  map[int]http.Header
		delay    map[int]time.Duration
		maxWait  time.Duration
		wantReqs int
		wantErr  int // status the final error carries; 0: success
		// wantExhausted: the error says the retries ran out.
		wantExhausted bool
		wantRetries   int
		// minSleep is a lower bound on some sleep (Retry-After).
		minSleep time.Duration
	}{
		{name: "GET recovers after two 503s", method: "GET", path: "/v3/users", script: []int{503, 503},
			wantReqs: 3, wantRetries: 2},
		{name: "PUT recovers after 502 and 504", method: "PUT", path: "/v2.1/os-quota-sets/p", script: []int{502, 504},
			wantReqs: 3, wantRetries: 2},
		{name: "Retry-After seconds honoured", method: "GET", path: "/v3/projects", script: []int{503},
			headers: map[int]http.Header{0: retryAfter("7")}, wantReqs: 2, wantRetries: 1, minSleep: 7 * time.Second},
		{name: "429 with Retry-After", method: "DELETE", path: "/v3/projects/p/tags/t", script: []int{429},
			headers: map[int]http.Header{0: retryAfter("2")}, wantReqs: 2, wantRetries: 1, minSleep: 2 * time.Second},
		{name: "token POST retried", method: "POST", path: "/v3/auth/tokens", script: []int{503, 500},
			wantReqs: 3, wantRetries: 2},
		{name: "project create retried", method: "POST", path: "/v3/projects", script: []int{503},
			wantReqs: 2, wantRetries: 1},
		{name: "other POST not retried", method: "POST", path: "/v3/users/u/application_credentials", script: []int{503},
			wantReqs: 1, wantErr: 503},
		{name: "404 not retried", method: "GET", path: "/v3/users/u", script: []int{404},
			wantReqs: 1, wantErr: 404},
		{name: "409 not retried", method: "POST", path: "/v3/users", script: []int{409},
			wantReqs: 1, wantErr: 409},
		{name: "fault outlasting the budget fails", method: "GET", path: "/v3/users", script: []int{503, 503, 503, 503, 503, 503, 503, 503, 503, 503, 503, 503},
			maxWait: 5 * time.Second, wantErr: 503, wantExhausted: true},
		{name: "Retry-After beyond the budget gives up at once", method: "GET", path: "/v3/users", script: []int{429},
			headers: map[int]http.Header{0: retryAfter("120")}, maxWait: 30 * time.Second, wantReqs: 1, wantErr: 429, wantExhausted: true},
		{name: "timeout retried", method: "GET", path: "/v3/users", delay: map[int]time.Duration{0: 2 * time.Second},
			wantReqs: 2, wantRetries: 1},
		{name: "disabled", method: "GET", path: "/v3/users", script: []int{503}, maxWait: -1, wantReqs: 1, wantErr: 503},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := &scripted{script: tc.script, headers: tc.headers, delay: tc.delay}
			ts := httptest.NewServer(srv)
			defer ts.Close()
			clock := &fakeClock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
			r := NewRetrier(RetryPolicy{MaxWait: tc.maxWait, Now: clock.Now, Sleep: clock.Sleep, Float64: func() float64 { return 0.5 }})
			r.NameEndpoint(ts.URL+"/v3", "identity")
			hc := *ts.Client()
			hc.Timeout = 500 * time.Millisecond
			pc := &gophercloud.ProviderClient{HTTPClient: hc}
			r.Install(pc)
			sc := &gophercloud.ServiceClient{ProviderClient: pc, Endpoint: ts.URL + "/"}

			var body map[string]any
			opts := &gophercloud.RequestOpts{JSONResponse: &body, OkCodes: []int{200, 201, 204}}
			if tc.method == "POST" || tc.method == "PUT" {
				opts.JSONBody = map[string]string{"x": "y"}
			}
			if tc.method == "DELETE" {
				opts.JSONResponse = nil
			}
			_, err := pc.Request(t.Context(), tc.method, sc.Endpoint+strings.TrimPrefix(tc.path, "/"), opts)

			if tc.wantReqs > 0 && srv.requests() != tc.wantReqs {
				t.Errorf("requests = %d, want %d", srv.requests(), tc.wantReqs)
			}
			switch {
			case tc.wantErr == 0 && err != nil:
				t.Fatalf("err = %v, want success", err)
			case tc.wantErr != 0 && !gophercloud.ResponseCodeIs(err, tc.wantErr):
				t.Fatalf("err = %v, want one carrying %d", err, tc.wantErr)
			}
			if got := errors.Is(err, ErrRetriesExhausted); got != tc.wantExhausted {
				t.Errorf("errors.Is(err, ErrRetriesExhausted) = %v, want %v (err %v)", got, tc.wantExhausted, err)
			}
			if tc.wantExhausted {
				head := err.Error()[:min(len(err.Error()), 80)]
				if !strings.Contains(head, "answered "+strconv.Itoa(tc.wantErr)) || !strings.Contains(head, http.StatusText(tc.wantErr)) {
					t.Errorf("err = %q, want it to start with the service and status", err)
				}
				if strings.HasPrefix(tc.path, "/v3") && !strings.HasPrefix(err.Error(), "identity") {
					t.Errorf("err = %q, want it to start with the service name", err)
				}
				var total time.Duration
				for _, d := range clock.sleeps {
					total += d
				}
				if total > r.p.MaxWait {
					t.Errorf("slept %s in all, more than the budget %s", total, r.p.MaxWait)
				}
			}
			if got := r.Retries()["identity"] + r.Retries()[strings.TrimPrefix(ts.URL, "http://")]; !tc.wantExhausted && got != tc.wantRetries {
				t.Errorf("retries counted = %v, want %d", r.Retries(), tc.wantRetries)
			}
			for _, d := range clock.sleeps {
				if d < tc.minSleep {
					t.Errorf("slept %s, want at least %s (Retry-After)", d, tc.minSleep)
				}
			}
		})
	}
}

func TestRetrierBackoff(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		rnd  float64
		n    uint
		want time.Duration
	}{
		{"first, least jitter", 0, 1, 125 * time.Millisecond},
		{"first, most jitter", 0.5, 1, 187500 * time.Microsecond},
		{"third doubles twice", 0, 3, 500 * time.Millisecond},
		{"capped", 0, 12, 4 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := NewRetrier(RetryPolicy{Float64: func() float64 { return tc.rnd }})
			if got := r.backoff(tc.n); got != tc.want {
				t.Errorf("backoff(%d) = %s, want %s", tc.n, got, tc.want)
			}
		})
	}
}

func TestRetryable(t *testing.T) {
	t.Parallel()
	e503 := gophercloud.ErrUnexpectedResponseCode{Actual: 503}
	e400 := gophercloud.ErrUnexpectedResponseCode{Actual: 400}
	tests := []struct {
		name, method, url string
		err               error
		want              bool
	}{
		{"GET 503", "GET", "http://k/v3/users", e503, true},
		{"GET 400", "GET", "http://k/v3/users", e400, false},
		{"PATCH 503", "PATCH", "http://k/v3/users/u", e503, true},
		{"POST users 503", "POST", "http://k/identity/v3/users", e503, true},
		{"POST limits 503", "POST", "http://k/v3/limits", e503, true},
		{"POST server action 503", "POST", "http://n/v2.1/servers/s/action", e503, false},
		{"POST tokens 503", "POST", "http://k/v3/auth/tokens/", e503, true},
		{"unknown method", "TRACE", "http://k/v3/users", e503, false},
		{"context canceled", "GET", "http://k/v3/users", context.Canceled, false},
		{"nil", "GET", "http://k/v3/users", nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Retryable(tc.method, tc.url, tc.err); got != tc.want {
				t.Errorf("Retryable(%s %s, %v) = %v, want %v", tc.method, tc.url, tc.err, got, tc.want)
			}
		})
	}
}
