package setpass

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kaizen-onboard/kaizen/internal/mail"
	"github.com/kaizen-onboard/kaizen/internal/setpass/client"
	"github.com/kaizen-onboard/kaizen/internal/store"
)

var wrongPINs = []string{"0000", "1111", "2222", "3333", "4444", "5555", "6666", "7777", "8888", "9999"}

// TestPINGuessingBoundedPerPerson: someone who reads the victim's mailbox
// asks /reset for link after link and guesses on each. Wrong PINs are
// counted per person across links, so once the limit is reached (15 here:
// three links of five attempts; then the default 10: two links) no more
// links are mailed, and the right PIN works on no link, until the helpdesk
// sets a new PIN. The person sees only what any locked link shows; the
// helpdesk is mailed once, and the lock is audited without a secret.
func TestPINGuessingBoundedPerPerson(t *testing.T) {
	for _, tc := range []struct {
		name      string
		perUser   int // 0: the default
		links     int // links guessed on until the PIN locks
		wantLimit int
	}{
		{"three links of five at 15", 15, 3, 15},
		{"two links of five at the default 10", 0, 2, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			re := newResetEnv(t, false, func(s *Settings) { s.PINGuard.PerUser = tc.perUser })
			ctx := t.Context()
			const addr = "ada@example.org"
			re.ks.users[testUser] = User{ID: testUser, Name: addr, FullName: "Ada Lovelace"}
			re.welcome(testPIN)
			hour := func() { re.clock.Add(time.Hour) } // past /reset's per-address limit

			var lockedPage, lockedLink string
			for link := 1; link <= tc.links; link++ {
				hour()
				before := len(re.mail.all())
				re.ask(addr)
				msgs := re.mail.all()
				if len(msgs) != before+1 || msgs[before].kind != mail.KindPasswordReset {
					t.Fatalf("link %d: mail %+v, want one reset link", link, msgs[before:])
				}
				tok := linkToken(t, msgs[before])
				for i := range 5 {
					w := re.post(tok, wrongPINs[i], newPass, newPass)
					if i < 4 {
						if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "Wrong PIN") {
							t.Fatalf("link %d, wrong PIN %d: %d", link, i+1, w.Code)
						}
						continue
					}
					if w.Code != http.StatusForbidden {
						t.Fatalf("link %d, fifth wrong PIN: %d, want 403", link, w.Code)
					}
					// The page that locks the person's PIN is the page of any
					// link locked after its five attempts.
					if lockedPage == "" {
						lockedPage = w.Body.String()
					} else if w.Body.String() != lockedPage {
						t.Errorf("link %d: the locked page differs from link 1's:\n%s", link, w.Body)
					}
				}
				if g := re.get(tok); g.Code != http.StatusGone {
					t.Errorf("link %d after five wrong PINs: GET %d, want 410", link, g.Code)
				}
				lockedLink = tok
				if link < tc.links {
					if _, locked, _ := re.store.PINLock(ctx, testUser); locked {
						t.Fatalf("the PIN locked after link %d, before the limit", link)
					}
				}
			}
			if _, locked, err := re.store.PINLock(ctx, testUser); err != nil || !locked {
				t.Fatalf("the PIN is not locked after %d wrong PINs: %v", tc.wantLimit, err)
			}
			if got := re.token(lockedLink); got.LockedAt == nil {
				t.Error("the link on which the limit was reached is not locked")
			}

			// The next request mails nothing, and answers exactly as for an
			// address nobody has, in the same time.
			hour()
			before := len(re.mail.all())
			locked := re.ask(addr)
			lockedSleep := re.lastSleep()
			unknown := re.ask("nobody@example.org")
			if locked.Code != unknown.Code || locked.Body.String() != unknown.Body.String() ||
				!reflect.DeepEqual(locked.Header(), unknown.Header()) {
				t.Errorf("/reset for the locked person answered %d, unlike an unknown address (%d)", locked.Code, unknown.Code)
			}
			if lockedSleep != re.lastSleep() || lockedSleep != defaultResetMinTime {
				t.Errorf("/reset waited %v for the locked person, %v for nobody; want %v both", lockedSleep, re.lastSleep(), defaultResetMinTime)
			}
			helpdesk := func() []queuedMail {
				var out []queuedMail
				for _, m := range re.mail.all() {
					if m.kind == mail.KindPINLocked {
						out = append(out, m)
					}
				}
				return out
			}
			for _, m := range re.mail.all()[before:] {
				if m.kind == mail.KindPasswordReset {
					t.Fatalf("a reset link was mailed for a locked PIN: %+v", m)
				}
			}

			// The right PIN works on no link: not on a re-issued welcome
			// link (a reminder), which looks like any dead link.
			tok := re.issue(testPIN)
			for i := range 3 {
				if w := re.post(tok, testPIN, newPass, newPass); w.Code != http.StatusGone {
					t.Fatalf("the right PIN on a fresh link, try %d: %d, want 410", i, w.Code)
				}
			}
			if g := re.get(tok); g.Code != http.StatusGone {
				t.Errorf("GET of a fresh link of the locked person: %d, want 410", g.Code)
			}
			if re.ks.password(testUser) != goodPass || re.rs.count() != 0 {
				t.Fatal("the password changed while the PIN was locked")
			}
			// Nor can the helpdesk send a link on the locked PIN.
			if w := re.serve(resetPut(testUser, adminTok, "")); w.Code != http.StatusConflict || !strings.Contains(w.Body.String(), "locked") {
				t.Errorf("PUT /reset without a PIN for a locked person: %d %s, want 409 saying locked", w.Code, w.Body)
			}

			if m := re.serve(httptest.NewRequest(http.MethodGet, "/metrics", nil)); !strings.Contains(m.Body.String(), "setpass_pin_locks_total 1\n") {
				t.Error("/metrics does not count the one PIN lock")
			}
			// The helpdesk was told once, with what it needs and no secret.
			hd := helpdesk()
			if len(hd) != 1 || hd[0].to[0].Address != resetHelpdesk {
				t.Fatalf("helpdesk notices: %+v, want one to %s", hd, resetHelpdesk)
			}
			d := hd[0].data.(mail.PINLockedData)
			if d.UserID != testUser || d.Username != addr || d.Name != "Ada Lovelace" || d.Failures != tc.wantLimit || d.Window != "24h" {
				t.Errorf("notice data %+v", d)
			}
			evs, err := re.store.Events(ctx, time.Time{}, testUser, 0)
			if err != nil {
				t.Fatal(err)
			}
			var lockEvents []store.Event
			for _, e := range evs {
				if e.Action == "setpass.pin.locked" {
					lockEvents = append(lockEvents, e)
				}
				for k, v := range e.Details {
					if v == testPIN || slices.Contains(wrongPINs, v) || strings.Contains(v, newPass) {
						t.Errorf("audit %s detail %s holds a PIN or password", e.Action, k)
					}
				}
			}
			if len(lockEvents) != 1 || lockEvents[0].Details["failures"] != strconv.Itoa(tc.wantLimit) {
				t.Errorf("lock audit: %+v", lockEvents)
			}

			// The helpdesk verifies the person and sends a new PIN: the new
			// PIN works, once more for the person only.
			w := re.serve(resetPut(testUser, adminTok, `{"pin": "8642"}`))
			if w.Code != http.StatusOK {
				t.Fatalf("PUT /reset with a new PIN: %d %s", w.Code, w.Body)
			}
			if _, locked, _ := re.store.PINLock(ctx, testUser); locked {
				t.Fatal("the helpdesk's new PIN left the PIN locked")
			}
			tok = issuedToken(t, w.Body.String())
			if w := re.post(tok, testPIN, newPass, newPass); w.Code != http.StatusBadRequest {
				t.Errorf("the old PIN after the helpdesk's: %d, want 400", w.Code)
			}
			if w := re.post(tok, "8642", newPass, newPass); w.Code != http.StatusOK {
				t.Fatalf("the helpdesk's PIN: %d %s", w.Code, w.Body)
			}
			if re.ks.password(testUser) != newPass {
				t.Error("the helpdesk's link did not set the password")
			}
			evs, _ = re.store.Events(ctx, time.Time{}, testUser, 0)
			if !slices.ContainsFunc(evs, func(e store.Event) bool { return e.Action == "setpass.pin.unlock" && e.Actor == "admin" }) {
				t.Errorf("the unlock is not audited: %+v", evs)
			}
			// The count started again: /reset mails links, and a wrong PIN
			// has the link's attempts.
			hour()
			before = len(re.mail.all())
			re.ask(addr)
			if msgs := re.mail.all(); len(msgs) != before+1 || msgs[before].kind != mail.KindPasswordReset {
				t.Fatalf("/reset after the unlock: %+v, want a link", msgs[before:])
			}
			if len(helpdesk()) != 1 {
				t.Errorf("%d helpdesk notices in all, want 1", len(helpdesk()))
			}
		})
	}
}

// TestPINLockWindow: wrong PINs older than the window no longer count,
// and the form counts down whichever limit is nearer.
func TestPINLockWindow(t *testing.T) {
	re := newResetEnv(t, false, func(s *Settings) { s.PINGuard = PINGuardSettings{PerUser: 7, Window: 2 * time.Hour} })
	locked := func() bool {
		_, l, err := re.store.PINLock(t.Context(), testUser)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	wrong := func(tok string, i, status int, msg string) {
		t.Helper()
		w := re.post(tok, wrongPINs[i], goodPass, goodPass)
		if w.Code != status || !strings.Contains(w.Body.String(), msg) {
			t.Fatalf("wrong PIN %s: %d, want %d with %q", wrongPINs[i], w.Code, status, msg)
		}
	}
	tok := re.issue(testPIN)
	for i := range 4 {
		wrong(tok, i, http.StatusBadRequest, "Wrong PIN")
	}
	re.clock.Add(3 * time.Hour) // those four are out of the window
	tok = re.issue(testPIN)
	for i := range 4 {
		wrong(tok, i, http.StatusBadRequest, "Wrong PIN")
	}
	wrong(tok, 4, http.StatusForbidden, "locked") // the link's fifth: the link locks
	if locked() {
		t.Fatal("the PIN locked at 5 wrong PINs in the window, limit 7")
	}
	tok = re.issue(testPIN)
	wrong(tok, 5, http.StatusBadRequest, "1 attempt left") // 6 of 7: the person's limit is nearer
	wrong(tok, 6, http.StatusForbidden, "locked")
	if !locked() {
		t.Error("not locked at the seventh wrong PIN in the window")
	}
}

func issuedToken(t *testing.T, body string) string {
	t.Helper()
	var is client.Issued
	if err := json.Unmarshal([]byte(body), &is); err != nil || is.Token == "" {
		t.Fatalf("PUT /reset answered %q: %v", body, err)
	}
	return is.Token
}
