package main

import (
	"crypto/rand"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestResetPasswordUnlocksPIN: after wrong PINs on the helpdesk's links
// reach setpass's default limit (10: two links of five), the PIN is
// locked: the right PIN fails and a reset on the PIN on file is refused,
// saying what to do. reset-password --pin, once the person is verified,
// unlocks it, against the real Keystone and setpass.
func TestResetPasswordUnlocksPIN(t *testing.T) {
	e := newRPEnv(t, true)
	const pin, newPIN = "1234", "5678"
	ada, p1 := e.onboarded("ada@example.org", "", pin)
	var last string
	for link := 1; link <= 2; link++ {
		if code, out, errOut := e.run("--user", ada.ID); code != 0 {
			t.Fatalf("link %d: exit %d\n%s\n%s", link, code, out, errOut)
		}
		msgs := e.smtp.Messages()
		last = e.linkIn(msgs[len(msgs)-1])
		for i, wrong := range []string{"0000", "1111", "2222", "3333", "4444"} {
			want := http.StatusBadRequest
			if i == 4 {
				want = http.StatusForbidden
			}
			if code := e.useLink(last, wrong, "never set "+rand.Text()); code != want {
				t.Fatalf("link %d, wrong PIN %d: %d, want %d", link, i+1, code, want)
			}
		}
	}
	if code := e.useLink(last, pin, "never set "+rand.Text()); code != http.StatusGone {
		t.Errorf("the right PIN after the lock: %d, want 410", code)
	}
	sent := len(e.smtp.Messages())
	code, out, errOut := e.run("--user", ada.ID)
	if code != 1 || !strings.Contains(errOut, "locked") || !strings.Contains(errOut, "--pin NNNN") {
		t.Fatalf("reset-password on a locked PIN: exit %d, want 1 saying it is locked and what to do\n%s\n%s", code, out, errOut)
	}
	if len(e.smtp.Messages()) != sent {
		t.Error("a refused reset mailed a link")
	}
	if !e.logsIn(ada.Name, p1) {
		t.Fatal("the password changed while the PIN was locked")
	}

	code, out, errOut = e.run("--user", ada.ID, "--pin", newPIN)
	if code != 0 {
		t.Fatalf("reset-password --pin: exit %d\n%s\n%s", code, out, errOut)
	}
	msgs := e.smtp.Messages()
	tok := e.linkIn(msgs[len(msgs)-1])
	p2 := "after the lock " + rand.Text()
	if code := e.useLink(tok, newPIN, p2); code != http.StatusOK {
		t.Fatalf("the helpdesk's new PIN: %d", code)
	}
	if !e.logsIn(ada.Name, p2) || e.logsIn(ada.Name, p1) {
		t.Error("after the helpdesk's link, only the new password should work")
	}
	evs, err := e.spStore.Events(t.Context(), time.Time{}, ada.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, ev := range evs {
		count[ev.Action]++
	}
	if count["setpass.pin.locked"] != 1 || count["setpass.pin.unlock"] != 1 {
		t.Errorf("setpass's audit: %v, want one lock and one unlock", count)
	}
}
