package mail

import (
	"io"
	"math/rand/v2"
	"net/mail"
	"testing"
	"time"

	"github.com/kaizen-onboard/kaizen/templates"
)

// Fixtures shared by the tests of this package.

var testNow = time.Date(2026, time.March, 9, 10, 30, 0, 0, time.UTC)

func fixedClock() time.Time { return testNow }

// seeded is a reproducible random source.
func seeded(seed byte) io.Reader { return rand.NewChaCha8([32]byte{seed}) }

func testCommon() Common {
	return Common{
		CloudName:         "Example Research Cloud",
		From:              "Example Research Cloud <cloud@example.org>",
		Support:           "support@example.org",
		Helpdesk:          "helpdesk@example.org",
		LoginURL:          "https://dashboard.example.org/",
		GettingStartedURL: "https://docs.example.org/getting-started",
		TermsURL:          "https://example.org/terms",
	}
}

func newTestRenderer(t *testing.T, c Common) *Renderer {
	t.Helper()
	r, err := NewRenderer(templates.FS, "", c)
	if err != nil {
		t.Fatalf("NewRenderer: %v", err)
	}
	return r
}

func newTestComposer(t *testing.T) *Composer {
	t.Helper()
	c, err := NewComposer("Example Research Cloud <cloud@example.org>", "support@example.org", fixedClock, seeded(1))
	if err != nil {
		t.Fatalf("NewComposer: %v", err)
	}
	return c
}

func addr(name, address string) mail.Address { return mail.Address{Name: name, Address: address} }
