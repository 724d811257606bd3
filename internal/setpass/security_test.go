package setpass

import (
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"
)

func TestSecurityHeaders(t *testing.T) {
	e := newEnv(t, nil, nil)
	tok := e.issue(testPIN)
	reqs := map[string]*http.Request{
		"form":      httptest.NewRequest(http.MethodGet, "/?token="+tok, nil),
		"invalid":   httptest.NewRequest(http.MethodGet, "/?token=x", nil),
		"post":      formReq(tok, "0000", goodPass, goodPass),
		"api":       putReq(testUser, "", ""),
		"style":     httptest.NewRequest(http.MethodGet, "/static/style.css", nil),
		"healthz":   httptest.NewRequest(http.MethodGet, "/healthz", nil),
		"not found": httptest.NewRequest(http.MethodGet, "/nope", nil),
		"cross-site": func() *http.Request {
			r := formReq(tok, testPIN, goodPass, goodPass)
			r.Header.Set("Sec-Fetch-Site", "cross-site")
			return r
		}(),
	}
	want := map[string]string{
		"Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
		"Referrer-Policy":         "no-referrer",
		"X-Frame-Options":         "DENY",
		"X-Content-Type-Options":  "nosniff",
		"Cache-Control":           "no-store",
	}
	for name, r := range reqs {
		t.Run(name, func(t *testing.T) {
			w := e.serve(r)
			for k, v := range want {
				if got := w.Header().Get(k); got != v {
					t.Errorf("%s: %q, want %q", k, got, v)
				}
			}
			if w.Header().Get("Strict-Transport-Security") != "" {
				t.Error("HSTS on plain HTTP")
			}
		})
	}
	t.Run("hsts over tls", func(t *testing.T) {
		r := httptest.NewRequest(http.MethodGet, "/healthz", nil)
		r.TLS = &tls.ConnectionState{}
		if e.serve(r).Header().Get("Strict-Transport-Security") == "" {
			t.Error("no HSTS over TLS")
		}
	})
}

func TestCrossOriginRefused(t *testing.T) {
	tests := []struct {
		name    string
		headers map[string]string
		status  int
	}{
		{"cross-site fetch", map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{"same-site fetch", map[string]string{"Sec-Fetch-Site": "same-site"}, http.StatusForbidden},
		{"foreign origin", map[string]string{"Sec-Fetch-Site": "", "Origin": "https://evil.example"}, http.StatusForbidden},
		{"same origin", map[string]string{"Sec-Fetch-Site": "same-origin"}, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil, nil)
			tok := e.issue(testPIN)
			r := formReq(tok, testPIN, goodPass, goodPass)
			for k, v := range tt.headers {
				if v == "" {
					r.Header.Del(k)
				} else {
					r.Header.Set(k, v)
				}
			}
			if w := e.serve(r); w.Code != tt.status {
				t.Fatalf("%d, want %d", w.Code, tt.status)
			}
			if tt.status == http.StatusForbidden {
				if e.ks.changes != 0 || e.token(tok).Attempts != 0 {
					t.Error("a refused cross-origin POST had an effect")
				}
			}
		})
	}
}

func TestRateLimit(t *testing.T) {
	proxy := netip.MustParsePrefix("10.0.0.0/8")
	e := newEnv(t, nil, func(s *Settings) { s.RateLimit, s.RateBurst, s.TrustedProxies = 1, 3, []netip.Prefix{proxy} })
	tok := e.issue(testPIN)
	from := func(remote, xff string) int {
		r := formReq(tok, "12", goodPass, goodPass) // malformed PIN: not counted against the link
		r.RemoteAddr = remote + ":1234"
		if xff != "" {
			r.Header.Set("X-Forwarded-For", xff)
		}
		return e.serve(r).Code
	}
	for i := range 3 {
		if c := from("192.0.2.1", ""); c == http.StatusTooManyRequests {
			t.Fatalf("request %d limited", i)
		}
	}
	if c := from("192.0.2.1", ""); c != http.StatusTooManyRequests {
		t.Fatalf("4th request: %d, want 429", c)
	}
	if c := from("192.0.2.2", ""); c == http.StatusTooManyRequests {
		t.Error("another client was limited")
	}
	// Behind the proxy, the client is the right-most untrusted address; a
	// spoofed left-most entry does not give a fresh bucket.
	for i := range 3 {
		if c := from("10.1.1.1", "203.0.113."+string(rune('1'+i))+", 198.51.100.7"); c == http.StatusTooManyRequests {
			t.Fatalf("proxied request %d limited", i)
		}
	}
	if c := from("10.1.1.1", "203.0.113.9, 198.51.100.7, 10.2.2.2"); c != http.StatusTooManyRequests {
		t.Errorf("spoofed X-Forwarded-For escaped the limit: %d", c)
	}
	// Refilled after a while.
	e.clock.Add(time.Minute)
	if c := from("192.0.2.1", ""); c == http.StatusTooManyRequests {
		t.Error("still limited after a minute")
	}
	if !strings.Contains(scrape(t, e), "setpass_rate_limited_total 2") {
		t.Error("rate-limited requests not counted")
	}
}

func TestClientAddr(t *testing.T) {
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	tests := []struct{ name, remote, xff, want string }{
		{"direct", "192.0.2.1:5", "198.51.100.1", "192.0.2.1"},
		{"via proxy", "10.0.0.1:5", "198.51.100.1", "198.51.100.1"},
		{"two proxies", "10.0.0.1:5", "198.51.100.1, 10.0.0.2", "198.51.100.1"},
		{"spoofed left", "10.0.0.1:5", "1.2.3.4, 198.51.100.1", "198.51.100.1"},
		{"all trusted", "10.0.0.1:5", "10.0.0.3", "10.0.0.3"},
		{"garbage", "10.0.0.1:5", "junk", "10.0.0.1"},
		{"no header", "10.0.0.1:5", "", "10.0.0.1"},
		{"v6 proxy", "[::1]:5", "2001:db8::1", "2001:db8::1"},
		{"mapped v4", "[::ffff:192.0.2.1]:5", "", "192.0.2.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/", nil)
			r.RemoteAddr = tt.remote
			if tt.xff != "" {
				r.Header.Set("X-Forwarded-For", tt.xff)
			}
			if got := clientAddr(r, proxies).String(); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestParseTrustedProxies(t *testing.T) {
	got, err := ParseTrustedProxies([]string{"10.1.2.3/8", "192.0.2.7", "::ffff:198.51.100.0/120", "::ffff:203.0.113.5", "2001:db8::/32"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"10.0.0.0/8", "192.0.2.7/32", "198.51.100.0/24", "203.0.113.5/32", "2001:db8::/32"}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i].String() != want[i] {
			t.Errorf("entry %d: got %s, want %s", i, got[i], want[i])
		}
	}
	// A proxy listed in IPv4-mapped form is trusted for its IPv4 peers.
	r := httptest.NewRequest(http.MethodPost, "/", nil)
	r.RemoteAddr = "198.51.100.9:5"
	r.Header.Set("X-Forwarded-For", "192.0.2.44")
	if a := clientAddr(r, got); a.String() != "192.0.2.44" {
		t.Errorf("client behind a mapped-form proxy: %s, want 192.0.2.44", a)
	}
	if _, err := ParseTrustedProxies([]string{"proxy.example.org"}); err == nil {
		t.Error("a host name was accepted")
	}
}

func TestLimiterTableBounded(t *testing.T) {
	l := newLimiters(10, 5, 100)
	now := time.Unix(0, 0)
	for i := range 10000 {
		l.allow(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}).String(), now)
	}
	if n := l.size(); n > 100 {
		t.Errorf("%d entries, want at most 100", n)
	}
	if got := limiterKey(netip.MustParseAddr("2001:db8::1")); got != limiterKey(netip.MustParseAddr("2001:db8::ffff")) {
		t.Errorf("IPv6 addresses of one /64 get different buckets: %s", got)
	}
	l.allow("late", now.Add(time.Hour))
	if n := l.size(); n != 1 {
		t.Errorf("%d entries after everyone went idle, want 1", n)
	}
}

func TestHealthz(t *testing.T) {
	tests := []struct {
		name   string
		ping   error
		status int
		want   string
	}{
		{"ok", nil, http.StatusOK, `"status":"ok"`},
		{"keystone down", errors.New("dial tcp 10.9.9.9:5000: connection refused"), http.StatusServiceUnavailable, `"keystone":"fail"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil, nil)
			e.ks.pingErr = tt.ping
			w := e.serve(httptest.NewRequest(http.MethodGet, "/healthz", nil))
			if w.Code != tt.status || !strings.Contains(w.Body.String(), tt.want) {
				t.Errorf("%d %s", w.Code, w.Body)
			}
			if strings.Contains(w.Body.String(), "10.9.9.9") {
				t.Error("health answer leaks internals")
			}
		})
	}
}

func scrape(t *testing.T, e *testEnv) string {
	t.Helper()
	w := e.serve(httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if w.Code != http.StatusOK {
		t.Fatalf("/metrics: %d", w.Code)
	}
	return w.Body.String()
}

// TestNoSecretsLeak runs the whole flow and looks for the token, PIN and
// passwords in logs, metrics and pages other than the form.
func TestNoSecretsLeak(t *testing.T) {
	e := newEnv(t, nil, nil)
	tok := e.issue(testPIN)
	var pages bytes.Buffer
	for _, w := range []*httptest.ResponseRecorder{
		e.get(tok), e.post(tok, "0000", goodPass, goodPass), e.post(tok, testPIN, "short", "short"),
		e.post(tok, testPIN, goodPass, goodPass), e.get(tok), e.post(tok, testPIN, goodPass, goodPass),
	} {
		if !strings.Contains(w.Body.String(), "<form") {
			pages.Write(w.Body.Bytes())
		}
	}
	metrics := scrape(t, e)
	for _, want := range []string{"setpass_tokens_issued_total 1", "setpass_tokens_consumed_total 1", "setpass_pin_failures_total 1"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	logs := e.logs.String()
	if !strings.Contains(logs, "path=/") || strings.Contains(logs, "token=") {
		t.Errorf("request log missing or with a query string:\n%s", logs)
	}
	secrets := map[string]string{"token": tok, "pin": testPIN, "temporary password": tempPass, "new password": goodPass}
	for where, text := range map[string]string{"logs": logs, "metrics": metrics, "pages": pages.String()} {
		for what, s := range secrets {
			if strings.Contains(text, s) {
				t.Errorf("%s contain the %s", where, what)
			}
		}
	}
}

// TestNothingUsableAtRest reads the SQLite file after a PUT and finds no
// form of the token, the temporary password or the PIN.
func TestNothingUsableAtRest(t *testing.T) {
	e := newEnv(t, nil, nil)
	tok := e.issue(testPIN)
	e.post(tok, "0000", goodPass, goodPass) // an attempt too, so the row was rewritten
	raw, _ := base64.RawURLEncoding.DecodeString(tok)
	needles := map[string][]byte{
		"token":            []byte(tok),
		"raw token":        raw,
		"token hex":        []byte(hex.EncodeToString(raw)),
		"token std base64": []byte(base64.StdEncoding.EncodeToString(raw)),
		"temporary":        []byte(tempPass),
		"temporary base64": []byte(base64.StdEncoding.EncodeToString([]byte(tempPass))),
		"pin":              []byte(testPIN),
	}
	sawUser := false
	var files []string
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if _, err := os.Stat(e.dbPath + suffix); err == nil {
			files = append(files, e.dbPath+suffix)
		}
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for what, n := range needles {
			if bytes.Contains(data, n) {
				t.Errorf("%s holds the %s", f, what)
			}
		}
		sawUser = sawUser || bytes.Contains(data, []byte(testUser))
	}
	if !sawUser { // else the search looked in the wrong place
		t.Fatalf("the user ID is in none of %v", files)
	}
}
