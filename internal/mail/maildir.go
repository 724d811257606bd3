package mail

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Maildir writes each message as a file in a Maildir folder, for
// development and demos: any mail client or a text editor shows what would
// have been sent. It is safe for concurrent use, also by several processes.
type Maildir struct {
	dir  string
	host string // for unique names across machines sharing the folder
	now  func() time.Time

	mu     sync.Mutex // guards random
	random io.Reader
}

// NewMaildir creates dir with its tmp, new and cur folders if needed.
func NewMaildir(dir string, now func() time.Time, random io.Reader) (*Maildir, error) {
	if dir == "" {
		return nil, fmt.Errorf("mail: maildir folder not set (mail.maildir)")
	}
	host, _ := os.Hostname()
	if host == "" {
		host = "localhost"
	}
	// The Maildir convention for the two characters a name cannot hold.
	host = strings.NewReplacer("/", `\057`, ":", `\072`).Replace(host)
	m := &Maildir{dir: dir, host: host, now: now, random: random}
	if err := m.makeDirs(); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *Maildir) makeDirs() error {
	for _, sub := range []string{"tmp", "new", "cur"} {
		if err := os.MkdirAll(filepath.Join(m.dir, sub), 0o700); err != nil {
			return fmt.Errorf("mail: maildir: %w", err)
		}
	}
	return nil
}

// Send writes msg under tmp/, syncs it and renames it into new/, so a
// reader of new/ never sees a partial message. The envelope is recorded as
// Return-Path and Delivered-To headers, as delivery agents do.
func (m *Maildir) Send(ctx context.Context, from string, to []string, msg []byte) error {
	if err := checkEnvelope(from, to); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("mail: maildir: %w", err)
	}
	if err := m.makeDirs(); err != nil { // someone may have cleaned up
		return err
	}
	name, err := m.uniqueName()
	if err != nil {
		return err
	}
	tmp := filepath.Join(m.dir, "tmp", name)
	if err := writeSynced(tmp, envelopeHeader(from, to), msg); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("mail: maildir: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(m.dir, "new", name)); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("mail: maildir: %w", err)
	}
	if err := syncDir(filepath.Join(m.dir, "new")); err != nil {
		return fmt.Errorf("mail: maildir: %w", err)
	}
	return nil
}

// Close does nothing; it is there so every transport is an io.Closer.
func (m *Maildir) Close() error { return nil }

// uniqueName is <unixnano>.<random>.<host>.
func (m *Maildir) uniqueName() (string, error) {
	var b [8]byte
	m.mu.Lock()
	_, err := io.ReadFull(m.random, b[:])
	m.mu.Unlock()
	if err != nil {
		return "", fmt.Errorf("mail: maildir: reading random source: %w", err)
	}
	return fmt.Sprintf("%d.%s.%s", m.now().UnixNano(), hex.EncodeToString(b[:]), m.host), nil
}

func envelopeHeader(from string, to []string) []byte {
	var b strings.Builder
	b.WriteString("Return-Path: <" + from + ">\r\n")
	for _, rcpt := range to {
		b.WriteString("Delivered-To: " + rcpt + "\r\n")
	}
	return []byte(b.String())
}

func writeSynced(name string, parts ...[]byte) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	for _, p := range parts {
		if _, err := f.Write(p); err != nil {
			_ = f.Close()
			return err
		}
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// syncDir makes a rename into dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
