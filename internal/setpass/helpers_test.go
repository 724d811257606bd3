package setpass

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kaizen-onboard/kaizen/internal/keyring"
	"github.com/kaizen-onboard/kaizen/internal/store"
	"github.com/kaizen-onboard/kaizen/internal/testenv"
	"github.com/kaizen-onboard/kaizen/templates"
)

const (
	adminTok   = "admin-keystone-token"
	memberTok  = "member-keystone-token"
	testUser   = "0123456789abcdef0123456789abcdef"
	testPIN    = "4821"
	tempPass   = "Temp-Passw0rd-xyz"
	goodPass   = "correct horse battery staple"
	testSecret = "0123456789abcdef0123456789abcdef-test-secret"
)

// fakeKeystone keeps users' passwords in memory.
type fakeKeystone struct {
	mu        sync.Mutex
	users     map[string]User
	passwords map[string]string
	refuse    string // a new password Keystone's policy refuses
	changeErr error  // returned by ChangePassword instead of changing
	pingErr   error
	changes   int
}

func newFakeKeystone() *fakeKeystone {
	return &fakeKeystone{
		users:     map[string]User{testUser: {ID: testUser, Name: "ada", Email: "ada@example.org"}},
		passwords: map[string]string{testUser: tempPass},
	}
}

func (k *fakeKeystone) CheckAdmin(ctx context.Context, token string) (string, error) {
	switch token {
	case adminTok:
		return "admin", nil
	case memberTok:
		return "member", ErrForbidden
	}
	return "", ErrUnauthenticated
}

func (k *fakeKeystone) User(ctx context.Context, id string) (User, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	u, ok := k.users[id]
	if !ok {
		return User{}, ErrUnknownUser
	}
	return u, nil
}

func (k *fakeKeystone) ChangePassword(ctx context.Context, id, original, replacement string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.changeErr != nil {
		return k.changeErr
	}
	if k.passwords[id] != original {
		return ErrOriginalRefused
	}
	if replacement == k.refuse {
		return &PasswordRefusedError{Reason: "The cloud's password rules refused this password."}
	}
	k.passwords[id] = replacement
	k.changes++
	return nil
}

func (k *fakeKeystone) Ping(ctx context.Context) error { return k.pingErr }

func (k *fakeKeystone) password(id string) string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.passwords[id]
}

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type testEnv struct {
	t       *testing.T
	h       http.Handler
	store   store.Store
	ks      *fakeKeystone
	clock   *fakeClock
	dbPath  string
	reg     *prometheus.Registry
	logs    *testenv.SyncBuffer
	keystne Keystone
}

// testKeys is the keyring of testSecret alone, as testSettings's handler has.
func testKeys(t testing.TB) *keyring.Keyring {
	t.Helper()
	k, err := keyring.New(rand.Reader, []byte(testSecret))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func testSettings() Settings {
	return Settings{
		SecretKey: []byte(testSecret), BaseURL: "https://setpass.example.org/",
		TokenTTL: 72 * time.Hour, MaxAttempts: 5, MinPasswordLength: 12,
		RateLimit: 1000, RateBurst: 1000,
	}
}

// newEnv builds the real handler on a SQLite store and ks (a fake when nil).
func newEnv(t *testing.T, ks Keystone, tweak func(*Settings)) *testEnv {
	t.Helper()
	return newEnvDeps(t, ks, tweak, nil)
}

// newEnvDeps is newEnv with a last say on the handler's Deps.
func newEnvDeps(t *testing.T, ks Keystone, tweak func(*Settings), tweakDeps func(*testEnv, *Deps)) *testEnv {
	t.Helper()
	logs := &testenv.SyncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	dbPath := t.TempDir() + "/s.db"
	st, err := store.Open(t.Context(), "sqlite://"+dbPath, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e := &testEnv{t: t, store: st, clock: &fakeClock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)},
		dbPath: dbPath, reg: prometheus.NewRegistry(), logs: logs}
	if ks == nil {
		e.ks = newFakeKeystone()
		ks = e.ks
	}
	e.keystne = ks
	pages, err := LoadPages(templates.FS, "", Branding{CloudName: "Test Cloud", Support: "help@example.org", LoginURL: "https://dash.example.org/"})
	if err != nil {
		t.Fatal(err)
	}
	s := testSettings()
	if tweak != nil {
		tweak(&s)
	}
	d := Deps{Store: st, Keystone: ks, Pages: pages, Registry: e.reg, Logger: logger,
		Now: e.clock.Now, Random: rand.Reader, Settings: s}
	if tweakDeps != nil {
		tweakDeps(e, &d)
	}
	e.h, err = NewHandler(d)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *testEnv) serve(r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	return w
}

func putReq(userID, authToken, body string) *http.Request {
	r := httptest.NewRequest(http.MethodPut, "/token/"+userID, strings.NewReader(body))
	if authToken != "" {
		r.Header.Set("X-Auth-Token", authToken)
	}
	return r
}

func issueBody(password, pin string) string {
	m := map[string]string{}
	if password != "" {
		m["password"] = password
	}
	if pin != "" {
		m["pin"] = pin
	}
	b, _ := json.Marshal(m)
	return string(b)
}

// issue gets a token for testUser through the API.
func (e *testEnv) issue(pin string) string {
	e.t.Helper()
	w := e.serve(putReq(testUser, adminTok, issueBody(tempPass, pin)))
	if w.Code != http.StatusOK {
		e.t.Fatalf("PUT /token: %d %s", w.Code, w.Body)
	}
	return w.Body.String()
}

func formReq(token, pin, password, confirm string) *http.Request {
	v := url.Values{"token": {token}, "pin": {pin}, "password": {password}, "confirm": {confirm}}
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(v.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Sec-Fetch-Site", "same-origin")
	return r
}

func (e *testEnv) post(token, pin, password, confirm string) *httptest.ResponseRecorder {
	return e.serve(formReq(token, pin, password, confirm))
}

func (e *testEnv) get(token string) *httptest.ResponseRecorder {
	return e.serve(httptest.NewRequest(http.MethodGet, "/?token="+url.QueryEscape(token), nil))
}

func (e *testEnv) token(token string) store.Token {
	e.t.Helper()
	tk, err := e.store.GetToken(e.t.Context(), tokenHash(token))
	if err != nil {
		e.t.Fatal(err)
	}
	return tk
}

func mustPages(t *testing.T) *Pages {
	t.Helper()
	p, err := LoadPages(templates.FS, "", Branding{CloudName: "Test Cloud", Support: "help@example.org", LoginURL: "https://dash.example.org/"})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func newRegistry() *prometheus.Registry { return prometheus.NewRegistry() }

func randReader() io.Reader { return rand.Reader }

func testLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
