package setpass

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kaizen-onboard/kaizen/internal/setpass/client"
	"github.com/kaizen-onboard/kaizen/internal/store"
)

func TestResetAPIRefusals(t *testing.T) {
	tests := []struct {
		name       string
		noResetter bool
		onFile     bool // testUser has a PIN on file
		user, auth string
		body       string
		status     int
		want       string
	}{
		{"no token", false, true, testUser, "", "", http.StatusUnauthorized, "X-Auth-Token"},
		{"bad token", false, true, testUser, "nope", "", http.StatusUnauthorized, "not valid"},
		{"not admin", false, true, testUser, memberTok, "", http.StatusForbidden, "admin role"},
		{"unknown user", false, true, "0000000000000000000000000000dead", adminTok, "", http.StatusNotFound, "no such user"},
		{"odd user ID", false, true, "a%2Fb", adminTok, "", http.StatusNotFound, "no such user"},
		{"malformed PIN", false, true, testUser, adminTok, `{"pin": "12a4"}`, http.StatusBadRequest, "4 digits"},
		{"unknown field", false, true, testUser, adminTok, `{"pin": "1234", "purpose": "x"}`, http.StatusBadRequest, "JSON object"},
		{"no PIN on file", false, false, testUser, adminTok, "", http.StatusConflict, "no PIN on file"},
		// The PIN is checked first: a 501 means the caller may fall back.
		{"no PIN on file and no credential", true, false, testUser, adminTok, "", http.StatusConflict, "no PIN on file"},
		{"no credential", true, true, testUser, adminTok, "", http.StatusNotImplemented, "no reset credential"},
		{"no credential, PIN given", true, false, testUser, adminTok, `{"pin": "1234"}`, http.StatusNotImplemented, "no reset credential"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			re := newResetEnv(t, tt.noResetter, nil)
			if tt.onFile {
				re.welcome(testPIN)
			}
			w := re.serve(resetPut(tt.user, tt.auth, tt.body))
			if w.Code != tt.status || !strings.Contains(w.Body.String(), tt.want) {
				t.Fatalf("%d %s, want %d with %q", w.Code, w.Body, tt.status, tt.want)
			}
			if !strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") {
				t.Errorf("answer is %s, not JSON", w.Header().Get("Content-Type"))
			}
			// A refusal changes nothing: no reset link, no PIN replaced.
			if tk, err := re.store.GetTokenByUser(t.Context(), testUser); err == nil && tk.Purpose == purposeReset {
				t.Error("a refused request stored a reset link")
			}
			pin, err := re.store.GetPIN(t.Context(), testUser)
			switch {
			case tt.onFile && (err != nil || !pinMatches(testKeys(t), testUser, testPIN, pin)):
				t.Errorf("the PIN on file changed: %v", err)
			case !tt.onFile && !errors.Is(err, store.ErrNotFound):
				t.Errorf("a refused request put a PIN on file: %v", err)
			}
		})
	}
}

// TestPINOnFile: the PIN goes on file when a welcome link sets the first
// password, not before; a re-issue without a PIN takes it when the user's
// links are gone.
func TestPINOnFile(t *testing.T) {
	re := newResetEnv(t, false, nil)
	ctx := t.Context()
	tok := re.issue(testPIN)
	if _, err := re.store.GetPIN(ctx, testUser); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a PIN is on file before any password was set: %v", err)
	}
	re.post(tok, "0000", goodPass, goodPass) // a wrong PIN puts nothing on file
	if _, err := re.store.GetPIN(ctx, testUser); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a wrong PIN put a PIN on file: %v", err)
	}
	if w := re.post(tok, testPIN, goodPass, goodPass); w.Code != http.StatusOK {
		t.Fatalf("welcome: %d", w.Code)
	}
	pin, err := re.store.GetPIN(ctx, testUser)
	if err != nil || !pinMatches(testKeys(t), testUser, testPIN, pin) {
		t.Fatalf("PIN on file after the first password: %x, %v", pin, err)
	}

	// The links are purged; a re-issue without a PIN takes the one on file.
	re.clock.Add(30 * 24 * time.Hour)
	if n, err := re.store.PurgeTokens(ctx, re.clock.Now()); err != nil || n != 1 {
		t.Fatalf("purge: %d, %v", n, err)
	}
	re.ks.passwords[testUser] = tempPass // the admin gave a new temporary password
	w := re.serve(putReq(testUser, adminTok, issueBody(tempPass, "")))
	if w.Code != http.StatusOK {
		t.Fatalf("re-issue without a PIN, PIN on file: %d %s", w.Code, w.Body)
	}
	if w := re.post(w.Body.String(), testPIN, "yet another passphrase", "yet another passphrase"); w.Code != http.StatusOK {
		t.Errorf("the PIN on file does not open the re-issued link: %d", w.Code)
	}
}

// TestHelpdeskReset: with a reset credential the current password keeps
// working until the link is used; the link asks for the PIN on file.
func TestHelpdeskReset(t *testing.T) {
	re := newResetEnv(t, false, nil)
	re.welcome(testPIN)
	w := re.serve(resetPut(testUser, adminTok, ""))
	if w.Code != http.StatusOK {
		t.Fatalf("PUT /reset: %d %s", w.Code, w.Body)
	}
	var issued client.Issued
	if err := json.Unmarshal(w.Body.Bytes(), &issued); err != nil || !strings.HasPrefix(issued.URL, "https://setpass.example.org/?token=") {
		t.Fatalf("answer %s: %v", w.Body, err)
	}
	if want := re.clock.Now().Add(72 * time.Hour); !issued.ExpiresAt.Equal(want) {
		t.Errorf("expires %v, want %v (Reset.TokenTTL defaults to TokenTTL)", issued.ExpiresAt, want)
	}
	tk := re.token(issued.Token)
	if tk.Purpose != purposeReset || len(tk.SealedPassword) != 0 {
		t.Errorf("reset link stored as %q with %d sealed bytes", tk.Purpose, len(tk.SealedPassword))
	}
	if got := re.ks.password(testUser); got != goodPass {
		t.Fatalf("the password changed when the link was issued: %q", got)
	}
	g := re.get(issued.Token)
	if g.Code != http.StatusOK || !strings.Contains(g.Body.String(), "Choose a new password") ||
		!strings.Contains(g.Body.String(), "agreed with the help desk") {
		t.Errorf("reset form: %d\n%s", g.Code, g.Body)
	}
	if w := re.post(issued.Token, "0000", newPass, newPass); w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "Wrong PIN") {
		t.Errorf("wrong PIN: %d", w.Code)
	}
	if got := re.ks.password(testUser); got != goodPass {
		t.Fatalf("a wrong PIN changed the password: %q", got)
	}
	if w := re.post(issued.Token, testPIN, newPass, newPass); w.Code != http.StatusOK {
		t.Fatalf("right PIN: %d %s", w.Code, w.Body)
	}
	if got := re.ks.password(testUser); got != newPass || re.rs.count() != 1 {
		t.Errorf("password %q after %d resets, want the new one after 1", got, re.rs.count())
	}
	if re.ks.changes != 1 { // the welcome's; the reset used the credential
		t.Errorf("%d changes as the user, want 1", re.ks.changes)
	}
	if w := re.post(issued.Token, testPIN, newPass+"2", newPass+"2"); w.Code != http.StatusGone {
		t.Errorf("a used reset link: %d", w.Code)
	}
	if len(re.rs.revoked) != 0 {
		t.Errorf("tokens revoked without setpass.reset_revoke_tokens: %v", re.rs.revoked)
	}
	evs, _ := re.store.Events(t.Context(), time.Time{}, testUser, 0)
	var actions []string
	for _, ev := range evs {
		actions = append(actions, ev.Action)
	}
	if got := strings.Join(actions, ","); got != "setpass.token.issue,user.password.set,setpass.reset.issue,user.password.reset" {
		t.Errorf("audit: %s", got)
	}
}

// TestResetPINReplaced: a PIN given with PUT /reset replaces the PIN on
// file at once; the old one opens nothing any more.
func TestResetPINReplaced(t *testing.T) {
	re := newResetEnv(t, false, nil)
	re.welcome(testPIN)
	w := re.serve(resetPut(testUser, adminTok, `{"pin": "9090"}`))
	if w.Code != http.StatusOK {
		t.Fatalf("PUT /reset with a PIN: %d %s", w.Code, w.Body)
	}
	pin, err := re.store.GetPIN(t.Context(), testUser)
	if err != nil || !pinMatches(testKeys(t), testUser, "9090", pin) {
		t.Fatalf("the PIN on file was not replaced: %v", err)
	}
	var issued client.Issued
	_ = json.Unmarshal(w.Body.Bytes(), &issued)
	if w := re.post(issued.Token, testPIN, newPass, newPass); w.Code != http.StatusBadRequest {
		t.Errorf("the replaced PIN: %d", w.Code)
	}
	if w := re.post(issued.Token, "9090", newPass, newPass); w.Code != http.StatusOK {
		t.Errorf("the new PIN: %d %s", w.Code, w.Body)
	}
	// The next reset asks for the new PIN without being told.
	w = re.serve(resetPut(testUser, adminTok, ""))
	_ = json.Unmarshal(w.Body.Bytes(), &issued)
	if w := re.post(issued.Token, "9090", "third passphrase here", "third passphrase here"); w.Code != http.StatusOK {
		t.Errorf("the next reset with the PIN on file: %d", w.Code)
	}
}

// TestResetWithTemporaryPassword is the fallback without a reset
// credential: the caller set a temporary password, the link changes it as
// the user.
func TestResetWithTemporaryPassword(t *testing.T) {
	re := newResetEnv(t, true, nil)
	re.welcome(testPIN)
	const temp = "Fallback-temp-Passw0rd"
	re.ks.passwords[testUser] = temp // what addusers does before PUT /reset
	w := re.serve(resetPut(testUser, adminTok, `{"password": "`+temp+`"}`))
	if w.Code != http.StatusOK {
		t.Fatalf("PUT /reset with a password: %d %s", w.Code, w.Body)
	}
	var issued client.Issued
	_ = json.Unmarshal(w.Body.Bytes(), &issued)
	if tk := re.token(issued.Token); tk.Purpose != purposeReset || len(tk.SealedPassword) == 0 {
		t.Errorf("fallback link stored as %q with %d sealed bytes", tk.Purpose, len(tk.SealedPassword))
	}
	if w := re.post(issued.Token, testPIN, newPass, newPass); w.Code != http.StatusOK {
		t.Fatalf("completing: %d %s", w.Code, w.Body)
	}
	if got := re.ks.password(testUser); got != newPass {
		t.Errorf("password %q", got)
	}
}

func TestResetCompletionFailures(t *testing.T) {
	t.Run("refused password reopens the link", func(t *testing.T) {
		re := newResetEnv(t, false, nil)
		re.welcome(testPIN)
		re.ks.refuse = "refused passphrase!"
		w := re.serve(resetPut(testUser, adminTok, ""))
		var issued client.Issued
		_ = json.Unmarshal(w.Body.Bytes(), &issued)
		if w := re.post(issued.Token, testPIN, re.ks.refuse, re.ks.refuse); w.Code != http.StatusBadRequest ||
			!strings.Contains(w.Body.String(), "password rules refused") {
			t.Fatalf("refused: %d %s", w.Code, w.Body)
		}
		if w := re.post(issued.Token, testPIN, newPass, newPass); w.Code != http.StatusOK {
			t.Errorf("after a refusal the link should work again: %d", w.Code)
		}
	})
	t.Run("credential refused: nothing changed, link kept", func(t *testing.T) {
		re := newResetEnv(t, false, nil)
		re.welcome(testPIN)
		w := re.serve(resetPut(testUser, adminTok, ""))
		var issued client.Issued
		_ = json.Unmarshal(w.Body.Bytes(), &issued)
		re.rs.err = ErrResetDenied
		if w := re.post(issued.Token, testPIN, newPass, newPass); w.Code != http.StatusServiceUnavailable ||
			!strings.Contains(w.Body.String(), "has not been changed") {
			t.Fatalf("denied: %d %s", w.Code, w.Body)
		}
		if !strings.Contains(re.logs.String(), "reset credential") {
			t.Error("the operator is not told about the credential")
		}
		re.rs.err = nil
		if w := re.post(issued.Token, testPIN, newPass, newPass); w.Code != http.StatusOK {
			t.Errorf("once the credential works: %d", w.Code)
		}
	})
	t.Run("unknown outcome spends the link", func(t *testing.T) {
		re := newResetEnv(t, false, nil)
		re.welcome(testPIN)
		w := re.serve(resetPut(testUser, adminTok, ""))
		var issued client.Issued
		_ = json.Unmarshal(w.Body.Bytes(), &issued)
		re.rs.err = errors.New("keystone: resetting a password: HTTP 503")
		if w := re.post(issued.Token, testPIN, newPass, newPass); w.Code != http.StatusBadGateway {
			t.Fatalf("5xx: %d", w.Code)
		}
		if tk := re.token(issued.Token); tk.UsedAt == nil {
			t.Error("the link was reopened after an unknown outcome")
		}
	})
	t.Run("credential gone since the link was issued", func(t *testing.T) {
		re := newResetEnv(t, false, nil)
		re.welcome(testPIN)
		w := re.serve(resetPut(testUser, adminTok, ""))
		var issued client.Issued
		_ = json.Unmarshal(w.Body.Bytes(), &issued)
		// setpass restarted without the credential: a handler on the same store.
		h2, err := NewHandler(Deps{Store: re.store, Keystone: re.ks, Pages: mustPages(t), Registry: newRegistry(),
			Now: re.clock.Now, Random: randReader(), Settings: testSettings()})
		if err != nil {
			t.Fatal(err)
		}
		other := &testEnv{t: t, h: h2, store: re.store}
		if w := other.post(issued.Token, testPIN, newPass, newPass); w.Code != http.StatusServiceUnavailable {
			t.Fatalf("%d %s", w.Code, w.Body)
		}
		if tk := re.token(issued.Token); tk.UsedAt != nil || tk.Attempts != 0 {
			t.Errorf("the link was spent or counted: %+v", tk)
		}
	})
}

func TestResetRevokesTokens(t *testing.T) {
	re := newResetEnv(t, false, func(s *Settings) { s.Reset.RevokeTokens = true })
	re.welcome(testPIN)
	if len(re.rs.revoked) != 0 {
		t.Fatalf("a welcome link revoked tokens: %v", re.rs.revoked)
	}
	w := re.serve(resetPut(testUser, adminTok, ""))
	var issued client.Issued
	_ = json.Unmarshal(w.Body.Bytes(), &issued)
	if w := re.post(issued.Token, testPIN, newPass, newPass); w.Code != http.StatusOK {
		t.Fatalf("%d", w.Code)
	}
	if len(re.rs.revoked) != 1 || re.rs.revoked[0] != testUser {
		t.Errorf("revoked %v, want [%s]", re.rs.revoked, testUser)
	}
}

// TestPINOnFileResignedUnderCurrentKey: a link whose PIN was signed under
// an older key still opens while that key is listed, and the PIN it puts
// on file is signed under the current key, so dropping the old key later
// keeps the PIN on file working.
func TestPINOnFileResignedUnderCurrentKey(t *testing.T) {
	current := []byte("the-current-key-0123456789abcdef0123456789abcdef")
	re := newResetEnv(t, false, func(s *Settings) { s.Keys = ring(t, current, []byte(testSecret)) })
	ctx := t.Context()
	tok := re.issue(testPIN)
	// As if issued before the rotation: the PIN signed under the old key.
	stored, err := re.store.GetTokenByUser(ctx, testUser)
	if err != nil {
		t.Fatal(err)
	}
	stored.PINHMAC = pinMAC(testKeys(t), testUser, testPIN)
	if err := re.store.PutToken(ctx, stored); err != nil {
		t.Fatal(err)
	}
	if w := re.post(tok, testPIN, goodPass, goodPass); w.Code != http.StatusOK {
		t.Fatalf("a link signed under the old, still listed key: %d", w.Code)
	}
	pin, err := re.store.GetPIN(ctx, testUser)
	if err != nil || !pinMatches(ring(t, current), testUser, testPIN, pin) {
		t.Fatalf("the PIN on file does not verify under the current key alone: %x, %v", pin, err)
	}
}
