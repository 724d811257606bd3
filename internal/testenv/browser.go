package testenv

import (
	"context"
	"os"
	"os/exec"
	"testing"

	"github.com/chromedp/chromedp"
)

// A common phone's viewport in CSS pixels: pages must work there.
const phoneWidth, phoneHeight = 412, 915

// Browser starts Debian's headless Chromium for one test and returns a
// chromedp context driving a tab in it; the browser ends with the test.
// That tab emulates a phone (412×915 CSS px, mobile, touch). Emulation
// belongs to a tab: one opened from ctx with chromedp.NewContext has the
// desktop window size and must emulate its own viewport (headless Chromium
// widens windows narrower than 500 px, so a window size cannot give a phone).
// The binary is $KAIZEN_TEST_CHROMIUM (printed by scripts/dev-browser env),
// else /usr/bin/chromium. When there is none the test is skipped, or fails
// under CI=true.
func Browser(t testing.TB) context.Context {
	t.Helper()
	bin := os.Getenv("KAIZEN_TEST_CHROMIUM")
	if bin == "" {
		bin = "/usr/bin/chromium"
	}
	if _, err := exec.LookPath(bin); err != nil {
		const hint = "run scripts/dev-browser up (or make test)"
		if os.Getenv("CI") == "true" {
			t.Fatalf("testenv: no Chromium at %s; CI=true, so this fails instead of skipping; %s", bin, hint)
		}
		t.Skipf("testenv: no Chromium at %s; to run this test: %s", bin, hint)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(bin),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Headless,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.DisableGPU,
		// Root in a container: no user namespaces for the sandbox.
		chromedp.NoSandbox,
		// The machines have no network beyond loopback; without these,
		// Chromium keeps trying to reach its update and sync services.
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-dev-shm-usage", true),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
	})
	// Start the browser now, so a broken installation fails here. This first
	// run must have no deadline of its own: it would end the browser; later
	// steps may derive timeouts from ctx.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("testenv: starting Chromium %s: %v", bin, err)
	}
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(phoneWidth, phoneHeight,
		chromedp.EmulatePortrait, chromedp.EmulateMobile, chromedp.EmulateTouch)); err != nil {
		t.Fatalf("testenv: emulating a phone's viewport: %v", err)
	}
	return ctx
}
