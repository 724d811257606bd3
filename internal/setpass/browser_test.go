package setpass

import (
	"bytes"
	"context"
	"image/png"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/users"

	"github.com/kaizen-onboard/kaizen/internal/cloud"
	"github.com/kaizen-onboard/kaizen/internal/setpass/client"
	"github.com/kaizen-onboard/kaizen/internal/testenv"
)

// browserStepTimeout bounds one subtest's browser work; generous because a
// loaded CI machine may take seconds per navigation.
const browserStepTimeout = 60 * time.Second

// A common phone's viewport in CSS pixels.
const phoneWidth, phoneHeight = 412, 915

// cspRecorderJS runs before the page's own content (DevTools injects it, so
// the page's CSP does not apply to it) and keeps every violation the page
// causes while loading.
const cspRecorderJS = `window.__kaizenCSP = [];
document.addEventListener("securitypolicyviolation",
	e => window.__kaizenCSP.push(e.effectiveDirective + " " + e.blockedURI));`

// TestBrowser drives Debian's headless Chromium, at phone size, through the
// real pages served by Serve, against the real Keystone.
func TestBrowser(t *testing.T) {
	ks := testenv.Keystone(t)
	browser := testenv.Browser(t)
	domainID, _ := ks.Domain(t)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String() + "/"
	keystone := NewKeystone(cloud.NewKeystone(ks.Identity), ks.Admin.ProjectName, ks.Admin.ProjectDomainName)
	e := newEnv(t, keystone, func(s *Settings) { s.BaseURL = base })
	serveCtx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- Serve(serveCtx, ln, e.h, ServeOptions{}) }()
	t.Cleanup(func() {
		stop()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	api, err := client.New(base, nil, func(context.Context) (string, error) { return ks.Identity.Token(), nil })
	if err != nil {
		t.Fatal(err)
	}

	// link creates a Keystone user with the temporary password and issues
	// its link through PUT /token with the admin's token.
	link := func(t *testing.T, name string) string {
		t.Helper()
		u, err := users.Create(t.Context(), ks.Identity, users.CreateOpts{Name: name, DomainID: domainID,
			Password: tempPass, Extra: map[string]any{"email": name + "@example.org"}}).Extract()
		if err != nil {
			t.Fatal(err)
		}
		issued, err := api.Issue(t.Context(), u.ID, tempPass, testPIN)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(issued.URL, base+"?token=") {
			t.Fatalf("issued link %q is not on %s", issued.URL, base)
		}
		return issued.URL
	}
	// tab opens a fresh tab in the shared browser for one subtest.
	tab := func(t *testing.T) context.Context {
		t.Helper()
		ctx, cancel := context.WithTimeout(browser, browserStepTimeout)
		t.Cleanup(cancel)
		ctx, cancelTab := chromedp.NewContext(ctx)
		t.Cleanup(cancelTab)
		// Headless Chromium widens windows narrower than 500 px, so the
		// phone is emulated rather than taken from the window size.
		if err := chromedp.Do(ctx, chromedp.EmulateViewport(phoneWidth, phoneHeight,
			chromedp.EmulatePortrait, chromedp.EmulateMobile, chromedp.EmulateTouch)); err != nil {
			t.Fatal(err)
		}
		return ctx
	}
	authenticates := func(t *testing.T, name, password string) bool {
		t.Helper()
		_, err := ks.AuthenticateUser(t.Context(), domainID, name, password)
		if err != nil && !gophercloud.ResponseCodeIs(err, http.StatusUnauthorized) {
			t.Fatalf("authenticating %s: %v", name, err)
		}
		return err == nil
	}

	t.Run("sets the password", func(t *testing.T) {
		ctx := tab(t)
		browserOpen(t, ctx, link(t, "ada"), http.StatusOK)
		status := browserSubmit(t, ctx, testPIN, goodPass, goodPass)
		if status != http.StatusOK {
			t.Errorf("submitting: HTTP %d, want 200", status)
		}
		if h := browserText(t, ctx, chromedp.CSS("main h1")); h != "Your password is set" {
			t.Errorf("heading %q, want the success page", h)
		}
		if m := browserText(t, ctx, chromedp.CSS("main p")); m != "You can now log in to Test Cloud with your new password." {
			t.Errorf("success page says %q", m)
		}
		if !authenticates(t, "ada", goodPass) {
			t.Error("the new password does not authenticate")
		}
		if authenticates(t, "ada", tempPass) {
			t.Error("the temporary password still authenticates")
		}
	})

	t.Run("wrong PIN is shown at the PIN field", func(t *testing.T) {
		ctx := tab(t)
		browserOpen(t, ctx, link(t, "bob"), http.StatusOK)
		if status := browserSubmit(t, ctx, "0000", goodPass, goodPass); status != http.StatusBadRequest {
			t.Errorf("submitting a wrong PIN: HTTP %d, want 400", status)
		}
		const want = "Wrong PIN. 4 attempts left before this link is locked."
		if got := browserText(t, ctx, chromedp.ID("pin-error")); got != want {
			t.Errorf("PIN error %q, want %q", got, want)
		}
		attrs, err := chromedp.Run(ctx, chromedp.Attributes(chromedp.ID("pin")))
		if err != nil {
			t.Fatal(err)
		}
		if attrs["aria-invalid"] != "true" {
			t.Errorf("PIN input aria-invalid=%q, want true", attrs["aria-invalid"])
		}
		if ids := strings.Fields(attrs["aria-describedby"]); !slices.Contains(ids, "pin-error") {
			t.Errorf("PIN input aria-describedby=%q does not name pin-error", attrs["aria-describedby"])
		}
		// What a screen reader announces: the text of every element the
		// input names, so a dangling ID would show here.
		described, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("pin")
			.getAttribute("aria-describedby").split(/\s+/)
			.map(id => { const el = document.getElementById(id); return el ? el.textContent : "MISSING:" + id; })
			.join(" | ")`))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(described, want) || strings.Contains(described, "MISSING:") {
			t.Errorf("the PIN input is described as %q", described)
		}
		for _, id := range []string{"password", "confirm"} {
			a, err := chromedp.Run(ctx, chromedp.Attributes(chromedp.ID(id)))
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := a["aria-invalid"]; ok {
				t.Errorf("%s input marked invalid after a wrong PIN only", id)
			}
		}
		if authenticates(t, "bob", goodPass) || !authenticates(t, "bob", tempPass) {
			t.Error("a wrong PIN changed the password")
		}
		// The re-shown form still carries the link: the right PIN now works.
		if status := browserSubmit(t, ctx, testPIN, goodPass, goodPass); status != http.StatusOK {
			t.Errorf("right PIN after a wrong one: HTTP %d, want 200", status)
		}
		if !authenticates(t, "bob", goodPass) {
			t.Error("the new password does not authenticate after a retry")
		}
	})

	t.Run("pages render under the CSP at phone size", func(t *testing.T) {
		tests := []struct {
			name       string
			url        func(t *testing.T) string
			status     int
			heading    string
			screenshot bool
		}{
			{"form", func(t *testing.T) string { return link(t, "cleo") }, http.StatusOK, "Choose your password", true},
			{"invalid link", func(*testing.T) string { return base + "?token=no-such-token" }, http.StatusGone,
				"This link is no longer valid", false},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				ctx := tab(t)
				if err := chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
					_, err := cdp.Call(ctx, tg, page.AddScriptToEvaluateOnNewDocument,
						page.AddScriptToEvaluateOnNewDocumentParams{Source: cspRecorderJS})
					return err
				})); err != nil {
					t.Fatal(err)
				}
				browserOpen(t, ctx, tt.url(t), tt.status)
				if h := browserText(t, ctx, chromedp.CSS("main h1")); h != tt.heading {
					t.Errorf("heading %q, want %q", h, tt.heading)
				}
				r, err := chromedp.Run(ctx, chromedp.Evaluate[renderFacts](`({
					sheets: document.styleSheets.length,
					// A sheet the CSP blocked is listed but has no readable rules.
					rules: (() => { try { return document.styleSheets[0].cssRules.length; } catch { return 0; } })(),
					headerBG: getComputedStyle(document.querySelector("header")).backgroundColor,
					violations: window.__kaizenCSP,
					scrollWidth: document.documentElement.scrollWidth,
					clientWidth: document.documentElement.clientWidth,
					width: window.innerWidth,
					ratio: window.devicePixelRatio,
				})`))
				if err != nil {
					t.Fatal(err)
				}
				if r.Sheets != 1 || r.Rules == 0 {
					t.Errorf("%d style sheets with %d rules: static/style.css did not load", r.Sheets, r.Rules)
				}
				if r.HeaderBG != "rgb(31, 58, 95)" { // style.css: header { background: #1f3a5f }
					t.Errorf("header background %q: the style sheet does not apply", r.HeaderBG)
				}
				if len(r.Violations) != 0 {
					t.Errorf("the page broke its own CSP: %q", r.Violations)
				}
				if r.Width != phoneWidth {
					t.Errorf("viewport %v CSS px wide, want %d", r.Width, phoneWidth)
				}
				if r.ScrollWidth > r.ClientWidth {
					t.Errorf("page is %d px wide in a %d px viewport: it scrolls sideways on a phone", r.ScrollWidth, r.ClientWidth)
				}
				// The CSP is in force: an inline style is refused.
				directive, err := chromedp.Run(ctx, chromedp.Evaluate[string](`new Promise(resolve => {
					document.addEventListener("securitypolicyviolation", e => resolve(e.effectiveDirective), {once: true});
					setTimeout(() => resolve("none"), 5000);
					const s = document.createElement("style");
					s.textContent = "body { color: red }";
					document.head.appendChild(s);
				})`, chromedp.EvalAwaitPromise))
				if err != nil {
					t.Fatal(err)
				}
				if directive != "style-src-elem" {
					t.Errorf("an inline style was not refused by the CSP (violation %q)", directive)
				}
				if !tt.screenshot {
					return
				}
				if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS("button[type=submit]"))); err != nil {
					t.Fatal(err)
				}
				shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
				if err != nil {
					t.Fatal(err)
				}
				file := filepath.Join(t.TempDir(), "form-phone.png")
				if err := os.WriteFile(file, shot, 0o600); err != nil {
					t.Fatal(err)
				}
				cfg, err := png.DecodeConfig(bytes.NewReader(shot))
				if err != nil {
					t.Fatalf("screenshot %s is not a PNG: %v", file, err)
				}
				if want := int(r.Width * r.Ratio); cfg.Width != want || cfg.Height == 0 {
					t.Errorf("screenshot is %dx%d px, want %d px wide", cfg.Width, cfg.Height, want)
				}
			})
		}
	})
}

// renderFacts are what the browser says about a rendered page.
type renderFacts struct {
	Sheets      int      `json:"sheets"`
	Rules       int      `json:"rules"`
	HeaderBG    string   `json:"headerBG"`
	Violations  []string `json:"violations"`
	ScrollWidth int      `json:"scrollWidth"`
	ClientWidth int      `json:"clientWidth"`
	Width       float64  `json:"width"`
	Ratio       float64  `json:"ratio"`
}

// browserOpen navigates to url and checks the HTTP status of the page.
func browserOpen(t *testing.T, ctx context.Context, url string, status int) {
	t.Helper()
	resp, err := chromedp.Run(ctx, chromedp.NavigateResponse(url))
	if err != nil {
		t.Fatalf("opening the page: %v", err)
	}
	if resp.Status != int64(status) {
		t.Fatalf("opening the page: HTTP %d, want %d", resp.Status, status)
	}
}

// browserSubmit types into the form as a user does, clicks the button and
// returns the HTTP status of the page it leads to.
func browserSubmit(t *testing.T, ctx context.Context, pin, password, confirm string) int {
	t.Helper()
	resp, err := chromedp.RunResponse(ctx,
		chromedp.SendKeys(chromedp.ID("pin"), pin),
		chromedp.SendKeys(chromedp.ID("password"), password),
		chromedp.SendKeys(chromedp.ID("confirm"), confirm),
		chromedp.Click(chromedp.CSS("button[type=submit]")),
	)
	if err != nil {
		t.Fatalf("submitting the form: %v", err)
	}
	return int(resp.Status)
}

func browserText[S chromedp.Selectable](t *testing.T, ctx context.Context, sel S) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(sel))
	if err != nil {
		t.Fatalf("reading %v: %v", sel, err)
	}
	return strings.TrimSpace(s)
}
