package mail

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"mime/quotedprintable"
	"net/mail"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kaizen-onboard/kaizen/internal/keyring"
	"github.com/kaizen-onboard/kaizen/internal/store"
	"github.com/kaizen-onboard/kaizen/internal/testenv"
)

const (
	testKeyA = "test-key-A-0123456789abcdef0123456789abcdef"
	testKeyB = "test-key-B-0123456789abcdef0123456789abcdef"
	testKeyC = "test-key-C-0123456789abcdef0123456789abcdef"
)

func testKeys(t testing.TB, keys ...string) *keyring.Keyring {
	t.Helper()
	var bs [][]byte
	for _, k := range keys {
		bs = append(bs, []byte(k))
	}
	k, err := keyring.New(rand.Reader, bs...)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// newToken is a set-password token as setpass draws it: 32 random bytes,
// unpadded base64url.
func newToken(t *testing.T) (string, []byte) {
	t.Helper()
	raw := make([]byte, 32)
	rand.Read(raw)
	return base64.RawURLEncoding.EncodeToString(raw), raw
}

// secretForms are the ways a link's token could sit in stored bytes: as
// text, in the link, and in every encoding a mail or a database uses. A
// prefix of the token is enough to tell, as quoted-printable may break a
// line inside it.
func secretForms(token string, raw []byte) []string {
	link := "https://setpass.example.org/?token=" + token
	var qp bytes.Buffer
	w := quotedprintable.NewWriter(&qp)
	io.WriteString(w, link)
	w.Close()
	return []string{
		token, token[:16], link,
		qp.String(), url.QueryEscape(link), url.QueryEscape(token),
		hex.EncodeToString([]byte(token)), strings.ToUpper(hex.EncodeToString([]byte(token))),
		base64.StdEncoding.EncodeToString([]byte(token)), base64.URLEncoding.EncodeToString([]byte(token)),
		base64.StdEncoding.EncodeToString([]byte(link))[:24],
		string(raw), hex.EncodeToString(raw), base64.StdEncoding.EncodeToString(raw)[:20],
	}
}

// leaked returns the first form of the token found in data.
func leaked(data []byte, forms []string) (string, bool) {
	for _, f := range forms {
		if bytes.Contains(data, []byte(f)) {
			return f, true
		}
	}
	return "", false
}

func welcomeWithLink(token string) WelcomeData {
	return WelcomeData{Name: "Ada", Username: "ada@example.edu", Link: "https://setpass.example.org/?token=" + token,
		ExpiresAt: time.Date(2031, 1, 2, 3, 4, 5, 0, time.UTC)}
}

// sqliteFiles is everything of a SQLite store on disk: the database, its
// write-ahead log and shared memory.
func sqliteFiles(t *testing.T, path string) []byte {
	t.Helper()
	var all []byte
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		b, err := os.ReadFile(p)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	return all
}

// rawSQLite reads every stored outbox column through SQL, not the store.
func rawSQLite(t *testing.T, path string) []byte {
	t.Helper()
	db, err := sql.Open("sqlite", path+"?_query_only=1")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	return rawRows(t, func(q string) (rowsLike, error) { return db.Query(q) })
}

type rowsLike interface {
	Next() bool
	Scan(...any) error
	Err() error
	Close() error
}

func rawRows(t *testing.T, query func(string) (rowsLike, error)) []byte {
	t.Helper()
	var all []byte
	for _, q := range []string{
		`SELECT b.body FROM outbox_body b`,
		`SELECT msg_key || kind || sender || recipients || last_error || claim FROM outbox`,
		`SELECT name FROM ledger`,
	} {
		rows, err := query(q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		for rows.Next() {
			var b []byte
			if err := rows.Scan(&b); err != nil {
				t.Fatal(err)
			}
			all = append(append(all, b...), '\n')
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
	}
	return all
}

type pgxRows struct{ pgx.Rows }

func (r pgxRows) Close() error { r.Rows.Close(); return nil }

// rawPostgres reads the outbox tables through SQL, every column as text.
func rawPostgres(t *testing.T, dsn string) []byte {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var all []byte
	for _, q := range []string{
		`SELECT body FROM outbox_body`,
		`SELECT convert_to(row_to_json(o)::text, 'UTF8') FROM outbox o`,
		`SELECT convert_to(row_to_json(b)::text, 'UTF8') FROM outbox_body b`, // bytea as \x hex
	} {
		rows, err := conn.Query(t.Context(), q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		all = append(all, rawRows(t, func(string) (rowsLike, error) { return pgxRows{rows}, nil })...)
	}
	return all
}

// TestBodiesSealedAtRest queues a welcome mail carrying a link on each
// backend and reads the store the way someone with a copy of it would: no
// form of the link's token is in it, before or after delivery, while the
// mail delivered carries the link.
func TestBodiesSealedAtRest(t *testing.T) {
	t.Parallel()
	type backend struct {
		name string
		open func(t *testing.T) (store.Store, func(t *testing.T) []byte)
	}
	backends := []backend{
		{"sqlite", func(t *testing.T) (store.Store, func(t *testing.T) []byte) {
			path := filepath.Join(t.TempDir(), "state.db")
			return openSQLite(t, path), func(t *testing.T) []byte {
				return append(sqliteFiles(t, path), rawSQLite(t, path)...)
			}
		}},
		{"postgres", func(t *testing.T) (store.Store, func(t *testing.T) []byte) {
			dsn := testenv.Postgres(t)
			s, err := store.Open(t.Context(), dsn, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s, func(t *testing.T) []byte { return rawPostgres(t, dsn) }
		}},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			st, dump := b.open(t)
			srv := testenv.NewSMTP(t)
			tr := newTestSMTP(t, smtpConfigFor(srv), trusting(srv))
			o := NewOutbox(st, newTestRenderer(t, testCommon()), newTestComposer(t), tr, OutboxOptions{Keys: testKeys(t, testKeyA)})
			token, raw := newToken(t)
			forms := secretForms(token, raw)
			id, _, err := o.Queue(t.Context(), "welcome:u1", KindWelcome, []mail.Address{addr("Ada", "ada@example.edu")}, welcomeWithLink(token))
			if err != nil {
				t.Fatal(err)
			}

			// The probe finds what it looks for: the composed mail, as the
			// store held it before, shows the token.
			composed, err := o.open(must(st.GetMessage(t.Context(), id)), slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			if _, found := leaked(composed, forms); !found {
				t.Fatalf("the probe does not find the token in the plaintext mail:\n%s", composed)
			}

			pending := dump(t)
			if f, found := leaked(pending, forms); found {
				t.Fatalf("the stored pending mail holds the token as %q", f)
			}
			if !bytes.Contains(pending, []byte("welcome:u1")) {
				t.Fatal("the dump does not see the outbox at all")
			}
			stored := must(st.GetMessage(t.Context(), id))
			if !keyring.IsSealed(stored.Body) || stored.Body[0] != keyring.Version {
				t.Fatalf("stored body is not in the sealed format: %q", stored.Body[:min(40, len(stored.Body))])
			}

			rep, err := o.Drain(t.Context())
			if err != nil || rep.Sent != 1 {
				t.Fatalf("Drain = %+v, %v", rep, err)
			}
			msgs := srv.Messages()
			if len(msgs) != 1 {
				t.Fatalf("delivered %d", len(msgs))
			}
			if _, found := leaked(msgs[0].Data, forms); !found {
				t.Error("the delivered mail lacks the link")
			}
			if f, found := leaked(dump(t), forms); found {
				t.Errorf("the store holds the token as %q after delivery", f)
			}
			if m := must(st.GetMessage(t.Context(), id)); len(m.Body) != 0 || m.Status != store.StatusSent {
				t.Errorf("after delivery: status %s, %d body bytes kept", m.Status, len(m.Body))
			}
		})
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestSealedBodiesAcrossRestartsAndRotation: the outbox of one program
// queues, another (a fresh store handle and outbox, as after a restart or
// on another host) delivers with the same keys; rotated key lists open
// what older ones sealed; a wrong key list delivers nothing, leaks
// nothing and loses nothing.
func TestSealedBodiesAcrossRestartsAndRotation(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "state.db")
	srv := testenv.NewSMTP(t)
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	clk := &clock{now: time.Now().UTC().Truncate(time.Microsecond)}
	// program opens the store and builds an outbox as a process would.
	program := func(t *testing.T, keys ...string) (*Outbox, store.Store) {
		st, err := store.Open(t.Context(), "sqlite://"+path, logger)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		tr := newTestSMTP(t, smtpConfigFor(srv), trusting(srv))
		return NewOutbox(st, newTestRenderer(t, testCommon()), newTestComposer(t), tr,
			OutboxOptions{Keys: testKeys(t, keys...), Now: clk.Now, Logger: logger, MaxAttempts: 2}), st
	}
	queue := func(t *testing.T, o *Outbox, key string) string {
		t.Helper()
		token, _ := newToken(t)
		if _, _, err := o.Queue(t.Context(), key, KindWelcome, []mail.Address{addr("", strings.NewReplacer(":", ".", "-", ".").Replace(key)+"@example.edu")}, welcomeWithLink(token)); err != nil {
			t.Fatal(err)
		}
		return token
	}
	delivered := func(t *testing.T, token string) bool {
		for _, m := range srv.Messages() {
			if bytes.Contains(m.Data, []byte(token[:16])) {
				return true
			}
		}
		return false
	}

	var oldToken string
	t.Run("queued by one program, delivered by another", func(t *testing.T) {
		addusers, _ := program(t, testKeyA)
		token := queue(t, addusers, "welcome:restart")
		reminders, _ := program(t, testKeyA)
		if rep, err := reminders.Drain(t.Context()); err != nil || rep.Sent != 1 {
			t.Fatalf("Drain = %+v, %v", rep, err)
		}
		if !delivered(t, token) {
			t.Error("the link did not arrive")
		}
		oldToken = queue(t, addusers, "welcome:before-rotation") // left pending
	})

	t.Run("wrong keys: nothing delivered, nothing lost, nothing leaked", func(t *testing.T) {
		wrong, st := program(t, testKeyC)
		before := len(srv.Messages())
		for range 4 { // past MaxAttempts: still not abandoned
			rep, err := wrong.Drain(t.Context())
			if err != nil {
				t.Fatalf("Drain: %v", err)
			}
			if rep.Sent != 0 || rep.Retrying != 1 || rep.Abandoned != 0 || len(rep.Failures) != 1 ||
				!strings.Contains(rep.Failures[0].Err, "does not open with the configured secret keys") {
				t.Fatalf("Drain with wrong keys = %+v", rep)
			}
			clk.Advance(7 * time.Hour) // past the backoff
		}
		if len(srv.Messages()) != before {
			t.Error("something was delivered with the wrong keys")
		}
		m := must(st.MessageByKey(t.Context(), "welcome:before-rotation"))
		if m.Status != store.StatusPending || !keyring.IsSealed(m.Body) || !strings.Contains(m.LastError, "secret keys") {
			t.Errorf("the message is %s (last error %q), body sealed %v; want pending and kept", m.Status, m.LastError, keyring.IsSealed(m.Body))
		}
		if bytes.Contains(logs.Bytes(), []byte(oldToken[:16])) || strings.Contains(m.LastError, oldToken[:16]) {
			t.Error("the token leaked into the log or the last error")
		}
	})

	t.Run("rotated: new key first, old still listed", func(t *testing.T) {
		rotated, st := program(t, testKeyB, testKeyA)
		newToken := queue(t, rotated, "welcome:after-rotation")
		// Sealed under the new key: the new key alone opens it, the old
		// alone does not.
		m := must(st.MessageByKey(t.Context(), "welcome:after-rotation"))
		if _, err := mustBox(t, testKeyB).Open(m.Body, bodyAD(m)); err != nil {
			t.Errorf("the new body does not open under the new key: %v", err)
		}
		if _, err := mustBox(t, testKeyA).Open(m.Body, bodyAD(m)); err == nil {
			t.Error("the new body opens under the old key: not sealed with the first key")
		}
		rep, err := rotated.Drain(t.Context())
		if err != nil || rep.Sent != 2 {
			t.Fatalf("Drain = %+v, %v", rep, err)
		}
		if !delivered(t, oldToken) || !delivered(t, newToken) {
			t.Error("the old or the new body was not delivered")
		}
	})

	t.Run("old key dropped: what it sealed no longer opens", func(t *testing.T) {
		old, _ := program(t, testKeyA)
		queue(t, old, "welcome:sealed-under-A")
		dropped, _ := program(t, testKeyB)
		rep, err := dropped.Drain(t.Context())
		if err != nil || rep.Sent != 0 || rep.Retrying != 1 {
			t.Errorf("Drain with the key dropped = %+v, %v", rep, err)
		}
	})
}

func mustBox(t *testing.T, keys ...string) *keyring.Box {
	t.Helper()
	b, err := testKeys(t, keys...).Box(BodyLabel)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSealedBodyBoundToItsRow: someone who can write the database cannot
// redirect a sealed mail (and its link) by changing the recipients, nor
// move a body to another message.
func TestSealedBodyBoundToItsRow(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "state.db")
	f := newOutboxFixture(t, OutboxOptions{})
	st := openSQLite(t, path)
	f.outbox.store, f.store = st, st
	f.queueWelcome(t, "welcome:victim", addr("", "victim@example.edu"))
	f.queueWelcome(t, "welcome:other", addr("", "other@example.edu"))

	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{
		`UPDATE outbox SET recipients = '["attacker@example.net"]' WHERE msg_key = 'welcome:victim'`,
		`UPDATE outbox_body SET body = (SELECT b.body FROM outbox_body b JOIN outbox o ON o.id = b.id WHERE o.msg_key = 'welcome:victim')
			WHERE id = (SELECT id FROM outbox WHERE msg_key = 'welcome:other')`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	rep := f.drain(t)
	if rep.Sent != 0 || rep.Retrying != 2 || len(f.smtp.Messages()) != 0 {
		t.Errorf("altered rows: report %+v, %d delivered; want nothing delivered", rep, len(f.smtp.Messages()))
	}
}

// TestOutboxNeedsKeys: without keys the outbox neither stores a body nor
// delivers, and says which settings are missing.
func TestOutboxNeedsKeys(t *testing.T) {
	t.Parallel()
	st := openSQLite(t, filepath.Join(t.TempDir(), "state.db"))
	o := NewOutbox(st, newTestRenderer(t, testCommon()), newTestComposer(t), nil, OutboxOptions{})
	data, _ := Example(KindWelcome)
	_, _, err := o.Queue(t.Context(), "welcome:x", KindWelcome, []mail.Address{addr("", "x@example.edu")}, data)
	if err == nil || !strings.Contains(err.Error(), "secrets.keys") {
		t.Errorf("Queue without keys: %v", err)
	}
	if c := must(st.OutboxCounts(t.Context())); c[store.StatusPending] != 0 {
		t.Error("a message was stored")
	}
	if _, err := o.Drain(t.Context()); err == nil || !strings.Contains(err.Error(), "KAIZEN_SECRET_KEYS") {
		t.Errorf("Drain without keys: %v", err)
	}
}

// TestLegacyUnsealedBodyDelivered: a body queued before bodies were sealed
// (plain RFC 5322) is still delivered after the upgrade, then deleted.
func TestLegacyUnsealedBodyDelivered(t *testing.T) {
	t.Parallel()
	f := newOutboxFixture(t, OutboxOptions{})
	body := []byte("From: cloud@example.org\r\nTo: old@example.edu\r\nSubject: queued long ago\r\n\r\nhello\r\n")
	id, _, err := f.store.Enqueue(t.Context(), store.Message{Key: "welcome:legacy", Kind: KindWelcome,
		From: "cloud@example.org", To: []string{"old@example.edu"}, Body: body, CreatedAt: f.clock.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if rep := f.drain(t); rep.Sent != 1 {
		t.Fatalf("Drain = %+v", rep)
	}
	if msgs := f.smtp.Messages(); len(msgs) != 1 || !bytes.Contains(msgs[0].Data, []byte("queued long ago")) {
		t.Error("the legacy body was not delivered as stored")
	}
	if m := must(f.store.GetMessage(t.Context(), id)); len(m.Body) != 0 {
		t.Error("the legacy body was kept after delivery")
	}
}
