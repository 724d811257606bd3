package setpass

import (
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

	"github.com/gophercloud/gophercloud/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kaizen-onboard/kaizen/internal/cloud"
	"github.com/kaizen-onboard/kaizen/internal/mail"
	"github.com/kaizen-onboard/kaizen/internal/setpass/client"
	"github.com/kaizen-onboard/kaizen/internal/store"
	"github.com/kaizen-onboard/kaizen/internal/testenv"
	"github.com/kaizen-onboard/kaizen/templates"
)

// TestPINBoundAgainstKeystone runs the guessing attack on a real HTTP
// server with the real Keystone and a reset credential: three reset links
// from /reset, five wrong PINs on each; then /reset mails no fourth link
// and answers as for nobody, the right PIN sets no password, and only the
// helpdesk's new PIN (PUT /reset, with an admin token Keystone checks)
// gets the person back in.
func TestPINBoundAgainstKeystone(t *testing.T) {
	f := newKSFixture(t)
	ctx := t.Context()
	const oldPass = "Current-passw0rd-ada"
	name := "ada-" + strings.ToLower(rand.Text()[:8]) + "@example.org" // unique across domains
	ada := f.user(name, oldPass, "", "member")
	f.user("svc-reset", "svc-reset-password", "", "admin")
	rc, err := f.client("svc-reset", "svc-reset-password")
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, "sqlite://"+t.TempDir()+"/s.db", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.PutPIN(ctx, ada.ID, pinMAC(testKeys(t), ada.ID, testPIN), time.Now()); err != nil {
		t.Fatal(err)
	}
	pages, err := LoadPages(templates.FS, "", Branding{CloudName: "Test Cloud", Support: "help@example.org"})
	if err != nil {
		t.Fatal(err)
	}
	k := NewKeystone(cloud.NewKeystone(f.ks.Identity), f.ks.Admin.ProjectName, f.ks.Admin.ProjectDomainName)
	mailer := &fakeMailer{}
	var bg sync.WaitGroup
	s := testSettings()
	// Room for a fourth request an hour, so that only the lock stops it.
	s.Reset = ResetSettings{MinTime: 200 * time.Millisecond, Helpdesk: resetHelpdesk, AccountLimit: 10}
	s.PINGuard.PerUser = 15
	h, err := NewHandler(Deps{Store: st, Keystone: k, Directory: k, Resetter: NewResetter(cloud.NewKeystone(rc)), Mail: mailer,
		Go: bg.Go, Pages: pages, Registry: prometheus.NewRegistry(), Now: time.Now, Random: rand.Reader,
		Logger: slog.New(slog.NewTextHandler(&testenv.SyncBuffer{}, nil)), Settings: s})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()

	do := func(method, path, contentType, body string, hdr map[string]string) (int, string) {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, method, srv.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	const formType = "application/x-www-form-urlencoded"
	ask := func(email string) string {
		t.Helper()
		code, body := do(http.MethodPost, "/reset", formType, url.Values{"email": {email}}.Encode(), map[string]string{"Origin": srv.URL})
		bg.Wait()
		if code != http.StatusOK {
			t.Fatalf("/reset %s: %d", email, code)
		}
		return body
	}
	submit := func(tok, pin, password string) int {
		t.Helper()
		code, _ := do(http.MethodPost, "/", formType,
			url.Values{"token": {tok}, "pin": {pin}, "password": {password}, "confirm": {password}}.Encode(), nil)
		return code
	}
	resetLinks := func() []queuedMail {
		var out []queuedMail
		for _, m := range mailer.all() {
			if m.kind == mail.KindPasswordReset {
				out = append(out, m)
			}
		}
		return out
	}

	for link := 1; link <= 3; link++ {
		ask(name)
		links := resetLinks()
		if len(links) != link {
			t.Fatalf("request %d: %d reset links mailed", link, len(links))
		}
		tok := linkToken(t, links[link-1])
		for i := range 5 {
			want := http.StatusBadRequest
			if i == 4 {
				want = http.StatusForbidden
			}
			if code := submit(tok, wrongPINs[i], newPass); code != want {
				t.Fatalf("link %d, wrong PIN %d: %d, want %d", link, i+1, code, want)
			}
		}
	}
	// The fourth request: no link, the answer of an unknown address.
	locked := ask(name)
	if unknown := ask("nobody-" + rand.Text()[:6] + "@example.org"); locked != unknown {
		t.Error("/reset answered the locked person unlike an unknown address")
	}
	if n := len(resetLinks()); n != 3 {
		t.Fatalf("%d reset links mailed, want 3: the fourth must be refused", n)
	}
	// The right PIN works on no link: the last one, nor one the helpdesk
	// would send on the PIN on file.
	if code := submit(linkToken(t, resetLinks()[2]), testPIN, newPass); code != http.StatusGone {
		t.Errorf("the right PIN on the third link: %d, want 410", code)
	}
	admin := map[string]string{"X-Auth-Token": f.ks.Identity.Token(), "Accept": "application/json"}
	if code, body := do(http.MethodPut, "/reset/"+ada.ID, "application/json", "", admin); code != http.StatusConflict {
		t.Errorf("PUT /reset on the locked PIN: %d %s, want 409", code, body)
	}
	if err := f.canLogIn(name, newPass); err == nil {
		t.Fatal("the password changed while the PIN was locked")
	}
	var notices int
	for _, m := range mailer.all() {
		if m.kind == mail.KindPINLocked {
			notices++
		}
	}
	if notices != 1 {
		t.Errorf("%d helpdesk notices, want 1", notices)
	}

	// The helpdesk verified the person: a new PIN unlocks.
	code, body := do(http.MethodPut, "/reset/"+ada.ID, "application/json", `{"pin": "8642"}`, admin)
	if code != http.StatusOK {
		t.Fatalf("PUT /reset with a new PIN: %d %s", code, body)
	}
	var issued client.Issued
	if err := json.Unmarshal([]byte(body), &issued); err != nil {
		t.Fatal(err)
	}
	if code := submit(issued.Token, "8642", newPass); code != http.StatusOK {
		t.Fatalf("the helpdesk's PIN: %d", code)
	}
	if err := f.canLogIn(name, newPass); err != nil {
		t.Errorf("the new password: %v", err)
	}
	if err := f.canLogIn(name, oldPass); !gophercloud.ResponseCodeIs(err, http.StatusUnauthorized) {
		t.Errorf("the old password after the reset: %v, want 401", err)
	}
}
