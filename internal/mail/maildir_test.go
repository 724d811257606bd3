package mail

import (
	"bytes"
	"context"
	"fmt"
	"net/mail"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
)

func newTestMaildir(t *testing.T, dir string) *Maildir {
	t.Helper()
	m, err := NewMaildir(dir, fixedClock, seeded(7))
	if err != nil {
		t.Fatalf("NewMaildir: %v", err)
	}
	return m
}

func readDir(t *testing.T, dir string) []os.DirEntry {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return entries
}

func TestMaildirDelivers(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "var", "mail") // created on demand
	m := newTestMaildir(t, dir)
	to := []string{"ada@example.edu", "cb@example.edu"}
	const n = 10
	sendN(t, m, n, true)
	if err := m.Send(t.Context(), testSender, to, testMessage("two recipients")); err != nil {
		t.Fatalf("Send: %v", err)
	}

	for _, sub := range []string{"tmp", "cur"} {
		if e := readDir(t, filepath.Join(dir, sub)); len(e) != 0 {
			t.Errorf("%s/ holds %d files, want none", sub, len(e))
		}
	}
	entries := readDir(t, filepath.Join(dir, "new"))
	if len(entries) != n+1 {
		t.Fatalf("new/ holds %d files, want %d", len(entries), n+1)
	}
	name := regexp.MustCompile(`^\d+\.[0-9a-f]{16}\.[^/:]+$`)
	var withTwo int
	for _, e := range entries {
		if !name.MatchString(e.Name()) {
			t.Errorf("file name %q is not <unixnano>.<random>.<host>", e.Name())
		}
		info, _ := e.Info()
		if perm := info.Mode().Perm(); perm != 0o600 {
			t.Errorf("%s has mode %v, want 0600", e.Name(), perm)
		}
		raw, err := os.ReadFile(filepath.Join(dir, "new", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		msg, err := mail.ReadMessage(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("%s does not parse: %v", e.Name(), err)
		}
		if got := msg.Header.Get("Return-Path"); got != "<"+testSender+">" {
			t.Errorf("Return-Path = %q", got)
		}
		if len(msg.Header["Delivered-To"]) == 2 {
			withTwo++
		}
	}
	if withTwo != 1 {
		t.Errorf("%d messages list two Delivered-To, want 1", withTwo)
	}
}

// A reader polling new/ must only ever see whole messages.
func TestMaildirNoPartialFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	m := newTestMaildir(t, dir)
	body := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB
	msg := append(testMessage("big"), body...)
	msg = append(msg, "\r\nEND\r\n"...)
	want := len(envelopeHeader(testSender, []string{testRcpt})) + len(msg)

	ctx, stop := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() {
		for ctx.Err() == nil {
			entries, _ := os.ReadDir(filepath.Join(dir, "new"))
			for _, e := range entries {
				b, err := os.ReadFile(filepath.Join(dir, "new", e.Name()))
				if err == nil && len(b) != want {
					t.Errorf("saw %s with %d bytes, want %d", e.Name(), len(b), want)
				}
			}
		}
	})
	var senders sync.WaitGroup
	for range 8 {
		senders.Go(func() {
			if err := m.Send(t.Context(), testSender, []string{testRcpt}, msg); err != nil {
				t.Errorf("Send: %v", err)
			}
		})
	}
	senders.Wait()
	stop()
	wg.Wait()
	if n := len(readDir(t, filepath.Join(dir, "new"))); n != 8 {
		t.Errorf("new/ holds %d files, want 8", n)
	}
}

func TestMaildirRecreatesFolders(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	m := newTestMaildir(t, dir)
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := m.Send(t.Context(), testSender, []string{testRcpt}, testMessage("again")); err != nil {
		t.Fatalf("Send after the folder was removed: %v", err)
	}
	if n := len(readDir(t, filepath.Join(dir, "new"))); n != 1 {
		t.Errorf("new/ holds %d files, want 1", n)
	}
}

func TestMaildirRefuses(t *testing.T) {
	t.Parallel()
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	tests := []struct {
		name          string
		ctx           context.Context
		from          string
		to            []string
		wantPermanent bool
	}{
		{name: "cancelled context", ctx: cancelled, from: testSender, to: []string{testRcpt}},
		{name: "no recipients", ctx: t.Context(), from: testSender, wantPermanent: true},
		{name: "header injection", ctx: t.Context(), from: testSender, to: []string{"a@example.org\r\nX-Evil: 1"}, wantPermanent: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			err := newTestMaildir(t, dir).Send(tt.ctx, tt.from, tt.to, testMessage(tt.name))
			if err == nil {
				t.Fatal("Send succeeded, want an error")
			}
			if IsPermanent(err) != tt.wantPermanent {
				t.Errorf("IsPermanent(%v) = %v, want %v", err, !tt.wantPermanent, tt.wantPermanent)
			}
			if n := len(readDir(t, filepath.Join(dir, "new"))); n != 0 {
				t.Errorf("new/ holds %d files, want none", n)
			}
		})
	}
}

func TestNewMaildirErrors(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{"", file} {
		t.Run(fmt.Sprintf("%q", filepath.Base(dir)), func(t *testing.T) {
			if _, err := NewMaildir(dir, fixedClock, seeded(1)); err == nil {
				t.Fatalf("NewMaildir(%q) succeeded, want an error", dir)
			}
		})
	}
}
