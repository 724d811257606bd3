package setpass

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/kaizen-onboard/kaizen/internal/mail"
)

func TestResetFormShown(t *testing.T) {
	re := newResetEnv(t, false, nil)
	w := re.serve(httptest.NewRequest(http.MethodGet, "/reset", nil))
	if w.Code != http.StatusOK {
		t.Fatalf("GET /reset: %d", w.Code)
	}
	b := w.Body.String()
	for _, want := range []string{`<form method="post" action="reset"`, `<label for="email">`, `type="email"`,
		`href="static/style.css"`, "Send me a link", "keeps working until you use the link"} {
		if !strings.Contains(b, want) {
			t.Errorf("the reset form lacks %s", want)
		}
	}
	if strings.Contains(b, "<script") || strings.Contains(b, "style=") {
		t.Error("the reset form needs inline script or style, which the CSP forbids")
	}
	if got := w.Header().Get("Content-Security-Policy"); got != contentSecurityPolicy {
		t.Errorf("CSP %q", got)
	}
	for _, h := range []string{"X-Frame-Options", "Referrer-Policy", "Cache-Control", "X-Content-Type-Options"} {
		if w.Header().Get(h) == "" {
			t.Errorf("no %s", h)
		}
	}
}

// TestResetOff: no page without the mailer and directory, or with mode off.
func TestResetOff(t *testing.T) {
	for name, e := range map[string]*testEnv{
		"no mailer": newEnv(t, nil, nil),
		"mode off":  newResetEnv(t, false, func(s *Settings) { s.Reset.Mode = ResetOff }).testEnv,
		"no helpdesk address for helpdesk mode": newResetEnv(t, true, func(s *Settings) {
			s.Reset.Helpdesk = ""
		}).testEnv,
	} {
		t.Run(name, func(t *testing.T) {
			for _, r := range []*http.Request{httptest.NewRequest(http.MethodGet, "/reset", nil), resetFormReq("ada@example.org")} {
				if w := e.serve(r); w.Code != http.StatusNotFound && w.Code != http.StatusMethodNotAllowed {
					t.Errorf("%s /reset: %d, want no such page", r.Method, w.Code)
				}
			}
		})
	}
}

// TestResetAnswersAlike is the heart of the page: every kind of address
// gets the same status and body after the same floor, and only an account
// that may be reset gets a link.
func TestResetAnswersAlike(t *testing.T) {
	const (
		adminID   = "aaaa0000000000000000000000000001"
		opID      = "aaaa0000000000000000000000000002"
		nopinID   = "aaaa0000000000000000000000000003"
		offID     = "aaaa0000000000000000000000000004"
		twinA     = "aaaa0000000000000000000000000005"
		twinB     = "aaaa0000000000000000000000000006"
		otherAddr = "ada.lovelace@mail.example.org"
	)
	re := newResetEnv(t, false, func(s *Settings) { s.Reset.ProtectedRoles = []string{"Operator"} })
	re.ks.users[testUser] = User{ID: testUser, Name: "ada@example.org", Email: otherAddr, FullName: "Ada Lovelace"}
	re.welcome(testPIN) // ada's PIN goes on file
	// Every account but new@ has a PIN on file.
	for _, u := range []struct{ id, name string }{{adminID, "root@example.org"}, {opID, "op@example.org"},
		{nopinID, "new@example.org"}, {offID, "gone@example.org"}, {twinA, "twin@example.org"}, {twinB, "TWIN@example.org"}} {
		re.addUser(u.id, u.name, "", "pw-"+u.id)
		if u.id == nopinID {
			continue
		}
		if err := re.store.PutPIN(t.Context(), u.id, pinMAC(testKeys(t), u.id, testPIN), re.clock.Now()); err != nil {
			t.Fatal(err)
		}
	}
	re.dir.roles[adminID] = []string{"Admin"}
	re.dir.roles[opID] = []string{"reader", "operator"}
	re.dir.disabled[offID] = true

	cases := []struct {
		name, email string
		logWant     string
	}{
		{"unknown", "nobody@example.org", "no account by that name"},
		{"known", "Ada@Example.org", "link mailed"},
		{"admin role", "root@example.org", "protected role"},
		{"listed role", "op@example.org", "protected role"},
		{"no PIN on file", "new@example.org", "no PIN on file"},
		{"disabled", "gone@example.org", "disabled"},
		{"two accounts", "twin@example.org", "several accounts"},
	}
	var first *httptest.ResponseRecorder
	for _, c := range cases {
		re.logs.Reset()
		w := re.ask(c.email)
		if w.Code != http.StatusOK {
			t.Errorf("%s: status %d", c.name, w.Code)
		}
		if first == nil {
			first = w
		} else if w.Body.String() != first.Body.String() {
			t.Errorf("%s: the body differs from that for an unknown address:\n%s\n---\n%s", c.name, w.Body, first.Body)
		}
		if got := re.lastSleep(); got != defaultResetMinTime {
			t.Errorf("%s: waited %v, want the 3s floor", c.name, got)
		}
		logs := re.logs.String()
		if !strings.Contains(logs, c.logWant) {
			t.Errorf("%s: the log does not say %q:\n%s", c.name, c.logWant, logs)
		}
		if strings.Contains(logs, c.email) || strings.Contains(strings.ToLower(logs), strings.ToLower(c.email)) {
			t.Errorf("%s: the log holds the address typed", c.name)
		}
		for _, leak := range []string{"protected", "admin", "disabled", "PIN on file", "no account"} {
			if strings.Contains(w.Body.String(), leak) {
				t.Errorf("%s: the answer says %q", c.name, leak)
			}
		}
	}
	if !strings.Contains(first.Body.String(), "Check your email") {
		t.Errorf("the answer:\n%s", first.Body)
	}

	// Exactly one link (ada's, to the address Keystone holds) and one
	// helpdesk notice (for the account without a PIN on file).
	msgs := re.mail.all()
	if len(msgs) != 2 {
		t.Fatalf("%d mails queued, want 2: %+v", len(msgs), msgs)
	}
	link, notice := msgs[0], msgs[1]
	if link.kind != mail.KindPasswordReset || len(link.to) != 1 || link.to[0].Address != otherAddr {
		t.Errorf("link mail: %s to %v", link.kind, link.to)
	}
	if d := link.data.(mail.PasswordResetData); d.Name != "ada@example.org" || d.Username != "ada@example.org" {
		t.Errorf("link mail data %+v", d)
	}
	if notice.kind != mail.KindHelpdeskNotify || notice.to[0].Address != resetHelpdesk ||
		!strings.Contains(notice.data.(mail.HelpdeskNotifyData).Detail, "no PIN on file") {
		t.Errorf("helpdesk notice: %+v", notice)
	}
	if re.queued != 2 {
		t.Errorf("the sender was woken %d times, want 2", re.queued)
	}

	// The link works with the PIN on file, and ada's password held till then.
	tok := linkToken(t, link)
	if re.ks.password(testUser) != goodPass {
		t.Fatal("asking for a link changed the password")
	}
	if w := re.post(tok, testPIN, newPass, newPass); w.Code != http.StatusOK {
		t.Fatalf("the mailed link: %d %s", w.Code, w.Body)
	}
	if re.ks.password(testUser) != newPass {
		t.Error("the mailed link did not set the password")
	}
	// And the refusals were audited, never the reason on the page.
	evs, _ := re.store.Events(t.Context(), time.Time{}, adminID, 0)
	if len(evs) != 1 || evs[0].Action != "setpass.reset.refused" {
		t.Errorf("audit of the protected account: %+v", evs)
	}
}

func TestResetHelpdeskMode(t *testing.T) {
	for name, re := range map[string]*resetEnv{
		"mode helpdesk":       newResetEnv(t, false, func(s *Settings) { s.Reset.Mode = ResetHelpdesk }),
		"no reset credential": newResetEnv(t, true, nil),
	} {
		t.Run(name, func(t *testing.T) {
			re.ks.users[testUser] = User{ID: testUser, Name: "ada@example.org"}
			re.welcome(testPIN)
			g := re.serve(httptest.NewRequest(http.MethodGet, "/reset", nil))
			if !strings.Contains(g.Body.String(), "help desk") {
				t.Errorf("the form does not say the help desk handles it:\n%s", g.Body)
			}
			tokBefore, _ := re.store.GetTokenByUser(t.Context(), testUser)
			known, unknown := re.ask("ada@example.org"), re.ask("nobody@example.org")
			if known.Code != http.StatusOK || known.Body.String() != unknown.Body.String() {
				t.Errorf("answers differ: %d/%d", known.Code, unknown.Code)
			}
			msgs := re.mail.all()
			if len(msgs) != 1 || msgs[0].kind != mail.KindHelpdeskNotify || msgs[0].to[0].Address != resetHelpdesk {
				t.Fatalf("mail: %+v", msgs)
			}
			d := msgs[0].data.(mail.HelpdeskNotifyData)
			if !strings.Contains(d.Summary, "ada@example.org") || !strings.Contains(d.Detail, "addusers reset-password --user "+testUser) {
				t.Errorf("notice %+v", d)
			}
			if tk, _ := re.store.GetTokenByUser(t.Context(), testUser); tk.Purpose != tokBefore.Purpose || re.ks.password(testUser) != goodPass {
				t.Error("helpdesk mode issued a link or changed the password")
			}
		})
	}
}

func TestResetFormCSRF(t *testing.T) {
	re := newResetEnv(t, false, nil)
	re.welcome(testPIN)
	for name, hdr := range map[string]map[string]string{
		"cross-site":     {"Sec-Fetch-Site": "cross-site"},
		"same-site":      {"Sec-Fetch-Site": "same-site"},
		"foreign origin": {"Sec-Fetch-Site": "", "Origin": "https://evil.example"},
	} {
		t.Run(name, func(t *testing.T) {
			r := resetFormReq("ada@example.org")
			for k, v := range hdr {
				if v == "" {
					r.Header.Del(k)
				} else {
					r.Header.Set(k, v)
				}
			}
			w := re.serve(r)
			re.bg.Wait()
			if w.Code != http.StatusForbidden {
				t.Errorf("%d, want 403", w.Code)
			}
			if w.Header().Get("Content-Security-Policy") == "" {
				t.Error("the refusal lacks the security headers")
			}
		})
	}
	if n := len(re.mail.all()); n != 0 {
		t.Errorf("cross-origin posts queued %d mails", n)
	}
}

func TestResetFormRateLimits(t *testing.T) {
	re := newResetEnv(t, false, func(s *Settings) { s.RateLimit, s.RateBurst = 1, 3 })
	re.ks.users[testUser] = User{ID: testUser, Name: "ada@example.org"}
	re.welcome(testPIN)
	from := func(addr, email string) *httptest.ResponseRecorder {
		r := resetFormReq(email)
		r.RemoteAddr = addr + ":1234"
		w := re.serve(r)
		re.bg.Wait()
		return w
	}
	// Per client: the 4th request from one address is refused, whatever it asks.
	for i := range 3 {
		if w := from("192.0.2.1", "x"+string(rune('a'+i))+"@example.org"); w.Code != http.StatusOK {
			t.Fatalf("request %d: %d", i, w.Code)
		}
	}
	if w := from("192.0.2.1", "nobody@example.org"); w.Code != http.StatusTooManyRequests {
		t.Errorf("4th request from one client: %d, want 429", w.Code)
	}
	// The set-password form has its own buckets.
	tok := re.issue(testPIN)
	r := formReq(tok, "12", goodPass, goodPass)
	r.RemoteAddr = "192.0.2.1:1"
	if w := re.serve(r); w.Code == http.StatusTooManyRequests {
		t.Error("the /reset limit spent the set-password form's")
	}

	// Per account: 3 an hour, from anywhere; the 4th gets the same answer
	// and no mail.
	before := len(re.mail.all())
	var answers []string
	for i := range 4 {
		w := from(netip.AddrFrom4([4]byte{198, 51, 100, byte(i + 1)}).String(), "ADA@example.org")
		if w.Code != http.StatusOK {
			t.Fatalf("account request %d: %d", i, w.Code)
		}
		answers = append(answers, w.Body.String())
	}
	if answers[3] != answers[0] {
		t.Error("the limited request got another answer")
	}
	if got := len(re.mail.all()) - before; got != 3 {
		t.Errorf("%d links mailed for 4 requests, want 3", got)
	}
	if !strings.Contains(re.logs.String(), "too many requests for one address") {
		t.Error("the per-account limit is not logged")
	}
	re.clock.Add(time.Hour)
	if w := from("203.0.113.1", "ada@example.org"); w.Code != http.StatusOK || len(re.mail.all())-before != 4 {
		t.Errorf("an hour later: %d, %d links", w.Code, len(re.mail.all())-before)
	}
}

func TestResetFormBadInput(t *testing.T) {
	re := newResetEnv(t, false, nil)
	for _, email := range []string{"", "   ", "not an address", "Ada <ada@example.org>", strings.Repeat("a", 250) + "@example.org"} {
		w := re.ask(email)
		if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "Enter the email address") {
			t.Errorf("%q: %d", email, w.Code)
		}
	}
	if n := len(re.mail.all()); n != 0 {
		t.Errorf("%d mails for malformed requests", n)
	}
}
