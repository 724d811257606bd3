// Package mailtest builds the real outbox over SMTP to the in-process
// server of testenv. It is apart from testenv because mail's own tests
// use testenv.
package mailtest

import (
	"crypto/rand"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/kaizen-onboard/kaizen/internal/config"
	"github.com/kaizen-onboard/kaizen/internal/keyring"
	"github.com/kaizen-onboard/kaizen/internal/mail"
	"github.com/kaizen-onboard/kaizen/internal/store"
	"github.com/kaizen-onboard/kaizen/internal/testenv"
	"github.com/kaizen-onboard/kaizen/templates"
)

// SecretKey is the tests' [secrets] key: every outbox and setpass of a test
// that shares a store must seal and sign with the same one.
const SecretKey = "mailtest-secret-key-0123456789abcdef0123456789abcdef"

// Keys is the keyring of SecretKey alone.
func Keys(t testing.TB) *keyring.Keyring {
	t.Helper()
	k, err := keyring.New(rand.Reader, []byte(SecretKey))
	if err != nil {
		t.Fatalf("keyring.New: %v", err)
	}
	return k
}

// Outbox is the real outbox on st, sealing bodies under Keys, delivering over SMTP with STARTTLS and
// AUTH to srv, with the "Test Cloud" templates and the wall clock. The
// transport is closed when the test ends.
func Outbox(t testing.TB, st store.Store, srv *testenv.SMTPServer, logger *slog.Logger) *mail.Outbox {
	t.Helper()
	sc := config.Defaults().Mail.SMTP
	sc.Host, sc.Port = srv.Host(), srv.Port()
	sc.Username, sc.Password = srv.Username(), config.NewSecret(srv.Password(), "test")
	sc.EHLOName, sc.Timeout = "kaizen.test", config.Dur(10*time.Second)
	tr, err := mail.NewSMTP(sc, mail.SMTPOptions{RootCAs: srv.RootCAs(), Logger: logger})
	if err != nil {
		t.Fatalf("mail.NewSMTP: %v", err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	renderer, err := mail.NewRenderer(templates.FS, "", mail.Common{
		CloudName: "Test Cloud", From: "Test Cloud <cloud@example.org>", Support: "support@example.org",
		Helpdesk: "helpdesk@example.org",
	})
	if err != nil {
		t.Fatalf("NewRenderer: %v", err)
	}
	composer, err := mail.NewComposer("Test Cloud <cloud@example.org>", "support@example.org", time.Now, rand.Reader)
	if err != nil {
		t.Fatalf("NewComposer: %v", err)
	}
	return mail.NewOutbox(st, renderer, composer, tr, mail.OutboxOptions{Keys: Keys(t), Logger: logger})
}

// Settings is the settings-file text ([secrets], [setpass], [mail] and
// [mail.smtp]) with which a program under test mails through srv with
// STARTTLS and AUTH, sealing under SecretKey, its links pointing at
// setpassURL.
func Settings(t testing.TB, srv *testenv.SMTPServer, setpassURL string) string {
	t.Helper()
	return fmt.Sprintf(`
[secrets]
keys = [%q]

[setpass]
url = %q

[mail]
transport = "smtp"
from = "Kaizen Test Cloud <kaizen@example.org>"
support = "support@example.org"
cloud_name = "Kaizen Test Cloud"

[mail.smtp]
host = %q
port = %d
tls = "starttls"
ca_file = %q
username = %q
password = %q
`, SecretKey, setpassURL, srv.Host(), srv.Port(), srv.CAFile(t), srv.Username(), srv.Password())
}
