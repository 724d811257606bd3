package setpass

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kaizen-onboard/kaizen/internal/setpass/client"
)

func TestIssueStatusCodes(t *testing.T) {
	tests := []struct {
		name   string
		user   string
		auth   string
		body   string
		status int
		want   string // in the body
	}{
		{"no token", testUser, "", issueBody(tempPass, testPIN), http.StatusUnauthorized, "X-Auth-Token"},
		{"invalid token", testUser, "bogus", issueBody(tempPass, testPIN), http.StatusUnauthorized, "not valid"},
		{"not admin", testUser, memberTok, issueBody(tempPass, testPIN), http.StatusForbidden, "admin role"},
		{"malformed pin", testUser, adminTok, issueBody(tempPass, "12a4"), http.StatusBadRequest, "4 digits"},
		{"short pin", testUser, adminTok, issueBody(tempPass, "123"), http.StatusBadRequest, "4 digits"},
		{"malformed json", testUser, adminTok, `{"password": `, http.StatusBadRequest, "JSON object"},
		{"unknown field", testUser, adminTok, `{"password":"x","pim":"1234"}`, http.StatusBadRequest, "JSON object"},
		{"two values", testUser, adminTok, `{"password":"x"} {}`, http.StatusBadRequest, "more than one"},
		{"pin as number", testUser, adminTok, `{"password":"x","pin":1234}`, http.StatusBadRequest, "JSON object"},
		{"empty body", testUser, adminTok, ``, http.StatusBadRequest, "password required"},
		{"no password", testUser, adminTok, issueBody("", testPIN), http.StatusBadRequest, "password required"},
		{"no pin and no earlier link", testUser, adminTok, issueBody(tempPass, ""), http.StatusBadRequest, "pin required"},
		{"unknown user", "ffffffffffffffffffffffffffffffff", adminTok, issueBody(tempPass, testPIN), http.StatusNotFound, "no such user"},
		{"odd user id", "a.b", adminTok, issueBody(tempPass, testPIN), http.StatusNotFound, "no such user"},
		{"ok", testUser, adminTok, issueBody(tempPass, testPIN), http.StatusOK, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil, nil)
			w := e.serve(putReq(tt.user, tt.auth, tt.body))
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.status, w.Body)
			}
			if !strings.Contains(w.Body.String(), tt.want) {
				t.Errorf("body %q lacks %q", w.Body, tt.want)
			}
			if strings.Contains(w.Body.String(), tempPass) {
				t.Error("the answer quotes the password")
			}
		})
	}
}

func TestIssueAnswers(t *testing.T) {
	t.Run("text", func(t *testing.T) {
		e := newEnv(t, nil, nil)
		w := e.serve(putReq(testUser, adminTok, issueBody(tempPass, testPIN)))
		if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
			t.Errorf("Content-Type %q", ct)
		}
		if tok := w.Body.String(); !wellFormedToken(tok) {
			t.Errorf("token %q is not 43 characters of base64url", tok)
		}
	})
	t.Run("json", func(t *testing.T) {
		e := newEnv(t, nil, nil)
		r := putReq(testUser, adminTok, issueBody(tempPass, testPIN))
		r.Header.Set("Accept", "application/json")
		w := e.serve(r)
		var got client.Issued
		if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
			t.Fatalf("%v: %s", err, w.Body)
		}
		if !wellFormedToken(got.Token) || got.URL != "https://setpass.example.org/?token="+got.Token {
			t.Errorf("got %+v", got)
		}
		if want := e.clock.Now().Add(72 * time.Hour); !got.ExpiresAt.Equal(want) {
			t.Errorf("expires_at %v, want %v", got.ExpiresAt, want)
		}
	})
}

func TestIssueRenew(t *testing.T) {
	e := newEnv(t, nil, nil)
	first := e.issue(testPIN)
	// Two wrong PINs, then a re-issue without a PIN: the old link dies, the
	// PIN carries over, the count starts again.
	e.post(first, "0000", goodPass, goodPass)
	e.post(first, "0000", goodPass, goodPass)
	second := e.issue("")
	if first == second {
		t.Fatal("re-issue returned the same token")
	}
	if w := e.get(first); w.Code != http.StatusGone {
		t.Errorf("old link: GET %d, want 410", w.Code)
	}
	if tk := e.token(second); tk.Attempts != 0 || tk.LockedAt != nil {
		t.Errorf("new token %+v, want fresh", tk)
	}
	if w := e.post(second, testPIN, goodPass, goodPass); w.Code != http.StatusOK {
		t.Fatalf("right PIN on the renewed link: %d %s", w.Code, w.Body)
	}
}

func TestLinkURL(t *testing.T) {
	tests := []struct{ name, base, want string }{
		{"root", "https://x.org/", "https://x.org/?token=T"},
		{"no slash", "https://x.org", "https://x.org/?token=T"},
		{"prefix", "https://x.org/setpass/", "https://x.org/setpass/?token=T"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := linkURL(tt.base, "T"); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
