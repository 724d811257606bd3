package setpass

import (
	"context"
	"net/http"
	"net/http/httptest"
	netmail "net/mail"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kaizen-onboard/kaizen/internal/mail"
)

const (
	resetHelpdesk = "helpdesk@example.org"
	newPass       = "a brand new passphrase"
)

// fakeDirectory serves the fake Keystone's users by name, with roles.
type fakeDirectory struct {
	ks       *fakeKeystone
	mu       sync.Mutex
	roles    map[string][]string // user ID to role names
	disabled map[string]bool
	err      error
}

func (d *fakeDirectory) FindUsers(ctx context.Context, name string) ([]User, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.err != nil {
		return nil, d.err
	}
	d.ks.mu.Lock()
	defer d.ks.mu.Unlock()
	var out []User
	for _, u := range d.ks.users {
		if strings.EqualFold(u.Name, name) {
			u.Enabled = !d.disabled[u.ID]
			out = append(out, u)
		}
	}
	return out, nil
}

func (d *fakeDirectory) UserRoles(ctx context.Context, id string) ([]string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string{"member"}, d.roles[id]...), nil
}

// fakeResetter sets the fake Keystone's passwords as an admin would.
type fakeResetter struct {
	ks      *fakeKeystone
	mu      sync.Mutex
	err     error // returned instead of setting
	resets  int
	revoked []string
}

func (r *fakeResetter) SetPassword(ctx context.Context, id, password string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return r.err
	}
	r.ks.mu.Lock()
	defer r.ks.mu.Unlock()
	if _, ok := r.ks.users[id]; !ok {
		return ErrUnknownUser
	}
	if password == r.ks.refuse {
		return &PasswordRefusedError{Reason: "The cloud's password rules refused this password."}
	}
	r.ks.passwords[id] = password
	r.resets++
	return nil
}

func (r *fakeResetter) RevokeTokens(ctx context.Context, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.revoked = append(r.revoked, id)
	return nil
}

func (r *fakeResetter) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.resets
}

// fakeMailer records what the handler queues.
type fakeMailer struct {
	mu   sync.Mutex
	msgs []queuedMail
}

type queuedMail struct {
	key, kind string
	to        []netmail.Address
	data      any
}

func (m *fakeMailer) Queue(ctx context.Context, key, kind string, to []netmail.Address, data any) (int64, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, q := range m.msgs {
		if q.key == key {
			return 0, false, nil
		}
	}
	m.msgs = append(m.msgs, queuedMail{key: key, kind: kind, to: to, data: data})
	return int64(len(m.msgs)), true, nil
}

func (m *fakeMailer) all() []queuedMail {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]queuedMail(nil), m.msgs...)
}

// resetEnv is a testEnv with the reset dependencies, all fakes: the
// directory, the reset credential, the mailer, a sleeper that advances
// the fake clock, and background work that tests can wait for.
type resetEnv struct {
	*testEnv
	dir    *fakeDirectory
	rs     *fakeResetter
	mail   *fakeMailer
	bg     sync.WaitGroup
	mu     sync.Mutex
	sleeps []time.Duration
	queued int // MailQueued calls
}

// newResetEnv builds it; noResetter leaves the reset credential out.
func newResetEnv(t *testing.T, noResetter bool, tweak func(*Settings)) *resetEnv {
	t.Helper()
	return newResetEnvDir(t, noResetter, nil, tweak)
}

// newResetEnvDir is newResetEnv with dir, when not nil, as the directory
// instead of the fake one.
func newResetEnvDir(t *testing.T, noResetter bool, dir Directory, tweak func(*Settings)) *resetEnv {
	t.Helper()
	re := &resetEnv{mail: &fakeMailer{}}
	re.testEnv = newEnvDeps(t, nil, func(s *Settings) {
		s.Reset.Helpdesk = resetHelpdesk
		if tweak != nil {
			tweak(s)
		}
	}, func(e *testEnv, d *Deps) {
		re.dir = &fakeDirectory{ks: e.ks, roles: map[string][]string{}, disabled: map[string]bool{}}
		re.rs = &fakeResetter{ks: e.ks}
		d.Directory, d.Mail = re.dir, re.mail
		if dir != nil {
			d.Directory = dir
		}
		if !noResetter {
			d.Resetter = re.rs
		}
		d.Sleep = func(ctx context.Context, dur time.Duration) {
			re.mu.Lock()
			re.sleeps = append(re.sleeps, dur)
			re.mu.Unlock()
			e.clock.Add(dur)
		}
		d.Go = re.bg.Go
		d.MailQueued = func() { re.mu.Lock(); re.queued++; re.mu.Unlock() }
	})
	return re
}

// addUser adds a user to the fake Keystone with a password.
func (re *resetEnv) addUser(id, name, email, password string) {
	re.ks.mu.Lock()
	defer re.ks.mu.Unlock()
	re.ks.users[id] = User{ID: id, Name: name, Email: email, FullName: "Full " + name}
	re.ks.passwords[id] = password
}

// welcome sets testUser's first password through a welcome link with pin,
// which puts pin on file.
func (re *resetEnv) welcome(pin string) {
	re.t.Helper()
	tok := re.issue(pin)
	if w := re.post(tok, pin, goodPass, goodPass); w.Code != http.StatusOK {
		re.t.Fatalf("welcome link: %d %s", w.Code, w.Body)
	}
}

func resetPut(userID, authToken, body string) *http.Request {
	r := httptest.NewRequest(http.MethodPut, "/reset/"+userID, strings.NewReader(body))
	if authToken != "" {
		r.Header.Set("X-Auth-Token", authToken)
	}
	r.Header.Set("Accept", "application/json")
	return r
}

func resetFormReq(email string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/reset", strings.NewReader(url.Values{"email": {email}}.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Sec-Fetch-Site", "same-origin")
	return r
}

// ask posts the /reset form and waits for the work behind the answer.
func (re *resetEnv) ask(email string) *httptest.ResponseRecorder {
	w := re.serve(resetFormReq(email))
	re.bg.Wait()
	return w
}

func (re *resetEnv) lastSleep() time.Duration {
	re.mu.Lock()
	defer re.mu.Unlock()
	if len(re.sleeps) == 0 {
		return 0
	}
	return re.sleeps[len(re.sleeps)-1]
}

// linkToken is the token of a mailed reset link.
func linkToken(t *testing.T, m queuedMail) string {
	t.Helper()
	d, ok := m.data.(mail.PasswordResetData)
	if !ok {
		t.Fatalf("mail %s is %T, not password-reset data", m.key, m.data)
	}
	u, err := url.Parse(d.Link)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query().Get("token")
}
