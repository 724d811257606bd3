package setpass

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestFormShown(t *testing.T) {
	e := newEnv(t, nil, nil)
	tok := e.issue(testPIN)
	w := e.get(tok)
	if w.Code != http.StatusOK {
		t.Fatalf("GET: %d", w.Code)
	}
	b := w.Body.String()
	for _, want := range []string{`name="viewport"`, `<label for="pin">`, `<label for="password">`, `<label for="confirm">`,
		`action="./"`, `method="post"`, "At least 12 characters", `href="static/style.css"`} {
		if !strings.Contains(b, want) {
			t.Errorf("form lacks %s", want)
		}
	}
	if strings.Contains(b, "<script") || strings.Contains(b, "style=") {
		t.Error("the form needs inline script or style, which the CSP forbids")
	}
}

func TestGetNeverCounts(t *testing.T) {
	e := newEnv(t, nil, nil)
	tok := e.issue(testPIN)
	for range 20 {
		if w := e.get(tok); w.Code != http.StatusOK {
			t.Fatalf("GET: %d", w.Code)
		}
	}
	if tk := e.token(tok); tk.Attempts != 0 || tk.UsedAt != nil || tk.LockedAt != nil {
		t.Errorf("GETs changed the token: %+v", tk)
	}
}

// TestInvalidLinksLookAlike: unknown, used, expired and locked links get
// the same page, without the form.
func TestInvalidLinksLookAlike(t *testing.T) {
	tests := []struct {
		name string
		make func(e *testEnv) string
	}{
		{"unknown", func(e *testEnv) string { tok, _ := newToken(strings.NewReader(strings.Repeat("x", 64))); return tok }},
		{"malformed", func(e *testEnv) string { return "not-a-token" }},
		{"missing", func(e *testEnv) string { return "" }},
		{"used", func(e *testEnv) string {
			tok := e.issue(testPIN)
			if w := e.post(tok, testPIN, goodPass, goodPass); w.Code != http.StatusOK {
				e.t.Fatalf("use: %d", w.Code)
			}
			return tok
		}},
		{"expired", func(e *testEnv) string { tok := e.issue(testPIN); e.clock.Add(72 * time.Hour); return tok }},
		{"locked", func(e *testEnv) string {
			tok := e.issue(testPIN)
			for range 5 {
				e.post(tok, "0000", goodPass, goodPass)
			}
			return tok
		}},
	}
	var first string
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil, nil)
			tok := tt.make(e)
			for _, w := range []*httptest.ResponseRecorder{e.get(tok), e.post(tok, testPIN, goodPass, goodPass)} {
				if w.Code != http.StatusGone {
					t.Errorf("status %d, want 410", w.Code)
				}
				b := w.Body.String()
				if strings.Contains(b, "<form") || !strings.Contains(b, "no longer valid") || !strings.Contains(b, "help@example.org") {
					t.Errorf("not the invalid-link page: %s", b)
				}
				if first == "" {
					first = b
				} else if b != first {
					t.Errorf("page differs from the others:\n%s\nvs\n%s", b, first)
				}
			}
		})
	}
}

func TestWrongPINs(t *testing.T) {
	e := newEnv(t, nil, nil)
	tok := e.issue(testPIN)
	for i := 1; i <= 4; i++ {
		w := e.post(tok, "0000", goodPass, goodPass)
		want := map[int]string{1: "4 attempts left", 2: "3 attempts left", 3: "2 attempts left", 4: "1 attempt left"}[i]
		if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), want) {
			t.Fatalf("wrong PIN %d: %d, want %q in %s", i, w.Code, want, w.Body)
		}
		if !strings.Contains(w.Body.String(), `aria-describedby="pin-hint pin-error"`) {
			t.Error("the PIN error is not tied to the field")
		}
	}
	w := e.post(tok, "0000", goodPass, goodPass)
	if w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "locked") {
		t.Fatalf("fifth wrong PIN: %d %s", w.Code, w.Body)
	}
	if tk := e.token(tok); tk.LockedAt == nil {
		t.Error("token not locked")
	}
	// Even the right PIN is refused now.
	if w := e.post(tok, testPIN, goodPass, goodPass); w.Code != http.StatusGone {
		t.Errorf("right PIN on a locked link: %d", w.Code)
	}
	if e.ks.changes != 0 {
		t.Error("password changed through a locked link")
	}
	// Re-issuing unlocks (a new token).
	tok2 := e.issue(testPIN)
	if w := e.post(tok2, testPIN, goodPass, goodPass); w.Code != http.StatusOK {
		t.Fatalf("after re-issue: %d %s", w.Code, w.Body)
	}
}

func TestMalformedPINNotCounted(t *testing.T) {
	e := newEnv(t, nil, nil)
	tok := e.issue(testPIN)
	for _, pin := range []string{"", "12", "abcd", "12345", "١٢٣٤"} {
		if w := e.post(tok, pin, goodPass, goodPass); w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "4 digits") {
			t.Errorf("pin %q: %d", pin, w.Code)
		}
	}
	if tk := e.token(tok); tk.Attempts != 0 {
		t.Errorf("attempts %d, want 0", tk.Attempts)
	}
}

func TestRightPINOnLastAttempt(t *testing.T) {
	e := newEnv(t, nil, nil)
	tok := e.issue(testPIN)
	for range 4 {
		e.post(tok, "0000", goodPass, goodPass)
	}
	if w := e.post(tok, testPIN, goodPass, goodPass); w.Code != http.StatusOK {
		t.Fatalf("right PIN on the fifth attempt: %d %s", w.Code, w.Body)
	}
	if e.ks.password(testUser) != goodPass {
		t.Error("password not changed")
	}
}

func TestRightPINResetsAttempts(t *testing.T) {
	e := newEnv(t, nil, nil)
	tok := e.issue(testPIN)
	for range 3 {
		e.post(tok, "0000", goodPass, goodPass)
	}
	e.post(tok, testPIN, "short", "short") // right PIN, bad password
	if tk := e.token(tok); tk.Attempts != 0 {
		t.Errorf("attempts %d after a right PIN, want 0", tk.Attempts)
	}
}

func TestPasswordRules(t *testing.T) {
	tests := []struct {
		name, password, confirm, field, want string
	}{
		{"too short", "short-pass", "short-pass", "password-error", "at least 12"},
		{"empty", "", "", "password-error", "Enter a new password"},
		{"mismatch", goodPass, goodPass + "x", "confirm-error", "do not match"},
		{"user name", "ADA", "ADA", "password-error", ""},
		{"email", "Ada@Example.org", "Ada@Example.org", "password-error", "user name or email"},
		{"control character", "abcdefghijkl\x01m", "abcdefghijkl\x01m", "password-error", "printable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil, func(s *Settings) {
				if tt.name == "user name" {
					s.MinPasswordLength = 3
				}
			})
			tok := e.issue(testPIN)
			w := e.post(tok, testPIN, tt.password, tt.confirm)
			b := w.Body.String()
			if w.Code != http.StatusBadRequest || !strings.Contains(b, `id="`+tt.field+`"`) || !strings.Contains(b, tt.want) {
				t.Fatalf("%d, want 400 with %s %q: %s", w.Code, tt.field, tt.want, b)
			}
			if strings.Contains(b, tt.password) && tt.password != "" {
				t.Error("the page echoes the password")
			}
			if e.ks.changes != 0 {
				t.Error("password changed")
			}
			if tk := e.token(tok); tk.UsedAt != nil {
				t.Error("token spent by a refused password")
			}
		})
	}
}

func TestSuccess(t *testing.T) {
	e := newEnv(t, nil, nil)
	tok := e.issue(testPIN)
	w := e.post(tok, testPIN, goodPass, goodPass)
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "https://dash.example.org/") {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	if got := e.ks.password(testUser); got != goodPass {
		t.Errorf("Keystone password %q", got)
	}
	if w := e.post(tok, testPIN, goodPass+"2", goodPass+"2"); w.Code != http.StatusGone {
		t.Errorf("second use: %d", w.Code)
	}
	if e.ks.changes != 1 {
		t.Errorf("%d changes, want 1", e.ks.changes)
	}
}

func TestKeystoneOutcomes(t *testing.T) {
	tests := []struct {
		name      string
		setup     func(k *fakeKeystone)
		password  string
		status    int
		want      string
		tokenLive bool // usable again afterwards
	}{
		{"policy refusal restores the link", func(k *fakeKeystone) { k.refuse = goodPass }, goodPass,
			http.StatusBadRequest, "password rules refused", true},
		{"temporary password refused spends the link", func(k *fakeKeystone) { k.passwords[testUser] = "changed elsewhere" }, goodPass,
			http.StatusConflict, "may already have been changed", false},
		{"unknown outcome spends the link", func(k *fakeKeystone) { k.changeErr = errors.New("timeout") }, goodPass,
			http.StatusBadGateway, "did not answer", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil, nil)
			tok := e.issue(testPIN)
			tt.setup(e.ks)
			w := e.post(tok, testPIN, tt.password, tt.password)
			if w.Code != tt.status || !strings.Contains(w.Body.String(), tt.want) {
				t.Fatalf("%d, want %d with %q: %s", w.Code, tt.status, tt.want, w.Body)
			}
			if strings.Contains(w.Body.String(), "timeout") {
				t.Error("raw error shown")
			}
			if live := e.get(tok).Code == http.StatusOK; live != tt.tokenLive {
				t.Errorf("link live afterwards: %v, want %v", live, tt.tokenLive)
			}
		})
	}
	t.Run("another password after a refusal", func(t *testing.T) {
		e := newEnv(t, nil, nil)
		tok := e.issue(testPIN)
		e.ks.refuse = goodPass
		e.post(tok, testPIN, goodPass, goodPass)
		if w := e.post(tok, testPIN, goodPass+"!", goodPass+"!"); w.Code != http.StatusOK {
			t.Fatalf("%d %s", w.Code, w.Body)
		}
	})
	t.Run("refusal does not revive a re-issued user's old link", func(t *testing.T) {
		e := newEnv(t, nil, nil)
		tok := e.issue(testPIN)
		e.ks.refuse = goodPass
		// Simulate an admin re-issuing while Keystone is deciding.
		hk := &reissueKeystone{fakeKeystone: e.ks, e: e}
		e2 := newEnvSharing(t, e, hk)
		e2.post(tok, testPIN, goodPass, goodPass)
		if e.get(tok).Code != http.StatusGone {
			t.Error("the old link was revived over the newer one")
		}
		if e.get(hk.newToken).Code != http.StatusOK {
			t.Error("the newer link was lost")
		}
	})
}

// reissueKeystone re-issues the user's link during ChangePassword.
type reissueKeystone struct {
	*fakeKeystone
	e        *testEnv
	newToken string
}

func (k *reissueKeystone) ChangePassword(ctx context.Context, id, original, replacement string) error {
	k.newToken = k.e.issue(testPIN)
	return k.fakeKeystone.ChangePassword(ctx, id, original, replacement)
}

// newEnvSharing is a second handler on e's store with another Keystone.
func newEnvSharing(t *testing.T, e *testEnv, ks Keystone) *testEnv {
	t.Helper()
	e2 := newEnv(t, ks, nil)
	e2.store, e2.clock = e.store, e.clock
	h, err := NewHandler(Deps{Store: e.store, Keystone: ks, Pages: mustPages(t), Registry: newRegistry(), Now: e.clock.Now,
		Random: randReader(), Settings: testSettings()})
	if err != nil {
		t.Fatal(err)
	}
	e2.h = h
	return e2
}

// TestConcurrentSubmissions: of many correct submissions at once exactly
// one changes the password.
func TestConcurrentSubmissions(t *testing.T) {
	e := newEnv(t, nil, nil)
	tok := e.issue(testPIN)
	const n = 12
	codes := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			p := goodPass + string(rune('a'+i))
			codes[i] = e.post(tok, testPIN, p, p).Code
		})
	}
	wg.Wait()
	ok := 0
	for _, c := range codes {
		if c == http.StatusOK {
			ok++
		} else if c != http.StatusGone {
			t.Errorf("unexpected status %d", c)
		}
	}
	if ok != 1 || e.ks.changes != 1 {
		t.Errorf("%d successes and %d changes, want exactly 1 each (codes %v)", ok, e.ks.changes, codes)
	}
}
