package setpass

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kaizen-onboard/kaizen/internal/keyring"
	"github.com/kaizen-onboard/kaizen/internal/setpass/client"
	"github.com/kaizen-onboard/kaizen/internal/store"
	"github.com/kaizen-onboard/kaizen/templates"
)

func TestToken(t *testing.T) {
	a, err := newToken(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := newToken(rand.Reader)
	if a == b || !wellFormedToken(a) || len(tokenHash(a)) != 32 {
		t.Errorf("tokens %q %q", a, b)
	}
	if _, err := newToken(bytes.NewReader(make([]byte, 10))); err == nil {
		t.Error("a short random source gave a token")
	}
}

func TestSeal(t *testing.T) {
	tok, _ := newToken(rand.Reader)
	other, _ := newToken(rand.Reader)
	sealed, err := seal(rand.Reader, tok, testUser, tempPass)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, token, user string
		sealed            []byte
		ok                bool
	}{
		{"right token and user", tok, testUser, sealed, true},
		{"another token", other, testUser, sealed, false},
		{"another user", tok, "someone-else", sealed, false},
		{"tampered", tok, testUser, append(append([]byte{}, sealed[:len(sealed)-1]...), sealed[len(sealed)-1]^1), false},
		{"truncated", tok, testUser, sealed[:5], false},
		{"empty", tok, testUser, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := unseal(tt.token, tt.user, tt.sealed)
			if tt.ok && (err != nil || got != tempPass) {
				t.Errorf("got %q, %v", got, err)
			}
			if !tt.ok && !errors.Is(err, errSealed) {
				t.Errorf("opened: %q, %v", got, err)
			}
		})
	}
}

func TestPINMAC(t *testing.T) {
	k := testKeys(t)
	m := pinMAC(k, testUser, testPIN)
	other := []byte(strings.Repeat("k", 32))
	tests := []struct {
		name       string
		keys       *keyring.Keyring
		user, pin  string
		wantsMatch bool
	}{
		{"same", k, testUser, testPIN, true},
		{"other pin", k, testUser, "4822", false},
		{"other user", k, testUser + "x", testPIN, false},
		{"shifted boundary", k, testUser + "4", "821", false},
		{"other key", ring(t, other), testUser, testPIN, false},
		{"rotated: new key first, this one still listed", ring(t, other, []byte(testSecret)), testUser, testPIN, true},
		{"rotated and dropped", ring(t, other, []byte(strings.Repeat("j", 40))), testUser, testPIN, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := pinMatches(tt.keys, tt.user, tt.pin, m); got != tt.wantsMatch {
				t.Errorf("match %v", got)
			}
		})
	}
	t.Run("signed with the first key", func(t *testing.T) {
		rotated := pinMAC(ring(t, other, []byte(testSecret)), testUser, testPIN)
		if !pinMatches(ring(t, other), testUser, testPIN, rotated) || pinMatches(k, testUser, testPIN, rotated) {
			t.Error("a PIN signed after rotation is not under the new (first) key")
		}
	})
	t.Run("the construction of earlier versions", func(t *testing.T) {
		// PINs on file were stored as HMAC-SHA256(setpass.secret_key,
		// label || len(user) as 8 bytes || user || pin); they must keep
		// verifying once that key is the keyring's.
		h := hmac.New(sha256.New, []byte(testSecret))
		h.Write([]byte("kaizen setpass v1 pin"))
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(testUser)))
		h.Write(n[:])
		h.Write([]byte(testUser))
		h.Write([]byte(testPIN))
		legacy := h.Sum(nil)
		if !bytes.Equal(m, legacy) {
			t.Errorf("pinMAC = %x, want the earlier construction %x", m, legacy)
		}
		if !pinMatches(ring(t, other, []byte(testSecret)), testUser, testPIN, legacy) {
			t.Error("a PIN stored by an earlier version does not verify after rotation")
		}
	})
}

func ring(t *testing.T, keys ...[]byte) *keyring.Keyring {
	t.Helper()
	k, err := keyring.New(rand.Reader, keys...)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestPagesOverride(t *testing.T) {
	brand := Branding{CloudName: "C", Support: "s@example.org"}
	t.Run("override by name", func(t *testing.T) {
		dir := t.TempDir()
		os.MkdirAll(filepath.Join(dir, "pages"), 0o755)
		os.WriteFile(filepath.Join(dir, "pages", "invalid.html"),
			[]byte(`{{define "title"}}Gone{{end}}{{define "content"}}<p>Custom {{.Support}}</p>{{end}}`), 0o644)
		p, err := LoadPages(templates.FS, dir, brand)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := p.render(pageInvalid, pageData{})
		if !strings.Contains(string(b), "Custom s@example.org") {
			t.Errorf("override not used: %s", b)
		}
		if b, _ := p.render(pageDone, pageData{}); !strings.Contains(string(b), "password is set") {
			t.Error("built-in page lost")
		}
	})
	t.Run("broken override stops start-up with its name", func(t *testing.T) {
		dir := t.TempDir()
		os.MkdirAll(filepath.Join(dir, "pages"), 0o755)
		os.WriteFile(filepath.Join(dir, "pages", "form.html"), []byte(`{{define "content"}}{{.Nope}}{{end}}`), 0o644)
		_, err := LoadPages(templates.FS, dir, brand)
		if err == nil || !strings.Contains(err.Error(), "form.html") {
			t.Errorf("got %v", err)
		}
	})
}

func TestPurger(t *testing.T) {
	e := newEnv(t, nil, nil)
	tok := e.issue(testPIN)
	e.post(tok, testPIN, goodPass, goodPass)
	tick := make(chan time.Time)
	p := Purger{Store: e.store, Now: e.clock.Now, Logger: testLogger(), Tick: tick}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	tick <- time.Time{} // the first purge has run once Run takes a tick
	if _, err := e.store.GetToken(t.Context(), tokenHash(tok)); err != nil {
		t.Fatal("purged within the grace period")
	}
	e.clock.Add(PurgeGrace + time.Minute)
	tick <- time.Time{}
	tick <- time.Time{} // the purge after the first tick has finished
	cancel()
	<-done
	if _, err := e.store.GetToken(t.Context(), tokenHash(tok)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("used token not purged: %v", err)
	}
}

func TestClientIssue(t *testing.T) {
	e := newEnv(t, nil, nil)
	srv := httptest.NewServer(e.h)
	defer srv.Close()
	tests := []struct {
		name, user, admin, pin string
		want                   error
	}{
		{"ok", testUser, adminTok, testPIN, nil},
		{"renew keeps the pin", testUser, adminTok, "", nil},
		{"unauthorized", testUser, "nope", testPIN, client.ErrIssueUnauthorized},
		{"forbidden", testUser, memberTok, testPIN, client.ErrIssueForbidden},
		{"unknown user", "ffff", adminTok, testPIN, client.ErrIssueUnknownUser},
		{"bad pin", testUser, adminTok, "12345", client.ErrIssueRejected},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := client.New(srv.URL, srv.Client(), func(context.Context) (string, error) { return tt.admin, nil })
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.Issue(t.Context(), tt.user, tempPass, tt.pin)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err %v, want %v", err, tt.want)
			}
			if err != nil && strings.Contains(err.Error(), tempPass) {
				t.Error("the error holds the password")
			}
			if tt.want == nil && (!wellFormedToken(got.Token) || !strings.HasSuffix(got.URL, got.Token)) {
				t.Errorf("got %+v", got)
			}
		})
	}
}

func TestPlainReason(t *testing.T) {
	tests := []struct{ name, body, want string }{
		{"history", `{"error":{"code":400,"message":"The new password cannot be identical to a previous password. The total number which includes the new password must be unique is 3."}}`, "reusing a previous password"},
		{"regex", `{"error":{"code":400,"message":"Password validation error: The password does not meet the requirements: at least one digit."}}`, "refused this password: at least one digit."},
		{"min age", `{"error":{"code":400,"message":"Cannot change password before minimum age 1 days is reached."}}`, "too recently"},
		{"other", `not json`, "refused this password. Choose"},
		// Keystone's own wording (keystone/exception.py, 2:22.0.2).
		{"keystone regex", `{"error":{"code":400,"message":"The password does not match the requirements: at least one digit.","title":"Bad Request"}}`, "refused this password: at least one digit."},
		{"keystone min age", `{"error":{"code":400,"message":"You cannot change your password at this time due to the minimum password age. Once you change your password, it must be used for 1 day(s) before it can be changed. Please try again in 0 day(s) or contact your administrator to reset your password.","title":"Bad Request"}}`, "too recently"},
		{"keystone self-service disabled", `{"error":{"code":400,"message":"You cannot change your password at this time due to password policy disallowing password changes. Please contact your administrator to reset your password.","title":"Bad Request"}}`, "yourself"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := plainReason([]byte(tt.body)); !strings.Contains(got, tt.want) {
				t.Errorf("got %q", got)
			}
		})
	}
}
