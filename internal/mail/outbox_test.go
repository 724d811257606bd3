package mail

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kaizen-onboard/kaizen/internal/store"
	"github.com/kaizen-onboard/kaizen/internal/testenv"
)

// clock is a settable test clock, safe for concurrent use.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

func openSQLite(t *testing.T, path string) store.Store {
	t.Helper()
	s, err := store.Open(t.Context(), "sqlite://"+path, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("opening store: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

type outboxFixture struct {
	store  store.Store
	smtp   *testenv.SMTPServer
	clock  *clock
	outbox *Outbox
}

func newOutboxFixture(t *testing.T, opts OutboxOptions, smtpOpts ...testenv.SMTPOption) *outboxFixture {
	t.Helper()
	f := &outboxFixture{
		store: openSQLite(t, filepath.Join(t.TempDir(), "state.db")),
		smtp:  testenv.NewSMTP(t, smtpOpts...),
		// The store keeps microseconds.
		clock: &clock{now: time.Now().UTC().Truncate(time.Microsecond)},
	}
	tr := newTestSMTP(t, smtpConfigFor(f.smtp), trusting(f.smtp))
	opts.Now = f.clock.Now
	opts.Logger = slog.New(slog.NewTextHandler(t.Output(), nil))
	if opts.Keys == nil {
		opts.Keys = testKeys(t, testKeyA)
	}
	f.outbox = NewOutbox(f.store, newTestRenderer(t, testCommon()), newTestComposer(t), tr, opts)
	return f
}

func (f *outboxFixture) queueWelcome(t *testing.T, key string, to ...mail.Address) int64 {
	t.Helper()
	data, _ := Example(KindWelcome)
	id, _, err := f.outbox.Queue(t.Context(), key, KindWelcome, to, data)
	if err != nil {
		t.Fatalf("Queue: %v", err)
	}
	return id
}

func (f *outboxFixture) drain(t *testing.T) Report {
	t.Helper()
	rep, err := f.outbox.Drain(t.Context())
	if err != nil {
		t.Fatalf("Drain: %v", err)
	}
	return rep
}

// brief shows a stored message without its body.
func brief(m store.Message) string {
	return fmt.Sprintf("{status %s, attempts %d, next %v, sent %v, last error %q}", m.Status, m.Attempts, m.NextAttemptAt, m.SentAt, m.LastError)
}

func (f *outboxFixture) message(t *testing.T, id int64) store.Message {
	t.Helper()
	m, err := f.store.GetMessage(t.Context(), id)
	if err != nil {
		t.Fatalf("GetMessage: %v", err)
	}
	return m
}

func TestOutboxDeliversOverSTARTTLSWithAuth(t *testing.T) {
	t.Parallel()
	f := newOutboxFixture(t, OutboxOptions{})
	id := f.queueWelcome(t, "welcome:u1", addr("Ada Lovelace", "ada@example.edu"))
	rep := f.drain(t)
	if rep.Sent != 1 || len(rep.Failures) != 0 {
		t.Fatalf("report %+v", rep)
	}
	got := f.smtp.Messages()
	if len(got) != 1 || !got[0].TLS || got[0].AuthUser != f.smtp.Username() || got[0].To[0] != "ada@example.edu" {
		t.Fatalf("delivered %+v", got)
	}
	h, err := got[0].Header()
	if err != nil || h.Get("Subject") == "" {
		t.Errorf("delivered message headers: %v %v", h, err)
	}
	if m := f.message(t, id); m.Status != store.StatusSent || m.SentAt == nil {
		t.Errorf("stored %s", brief(m))
	}
	if rep := f.drain(t); rep.Sent != 0 {
		t.Errorf("second drain sent again: %+v", rep)
	}
}

func TestOutboxQueueIsIdempotent(t *testing.T) {
	t.Parallel()
	f := newOutboxFixture(t, OutboxOptions{})
	first := f.queueWelcome(t, "welcome:u1", addr("", "ada@example.edu"))
	data, _ := Example(KindWelcome)
	second, created, err := f.outbox.Queue(t.Context(), "welcome:u1", KindWelcome, []mail.Address{addr("", "ada@example.edu")}, data)
	if err != nil || created || second != first {
		t.Fatalf("second Queue = %d, %v, %v; want %d, false, nil", second, created, err, first)
	}
	f.drain(t)
	if n := len(f.smtp.Messages()); n != 1 {
		t.Errorf("delivered %d copies, want 1", n)
	}
}

func TestOutboxRetriesWithBackoffThenDelivers(t *testing.T) {
	t.Parallel()
	backoff := Backoff{Base: time.Minute, Max: time.Hour}
	f := newOutboxFixture(t, OutboxOptions{Backoff: backoff, MaxAttempts: 8})
	f.smtp.FailNext(3, 451, "try again later")
	id := f.queueWelcome(t, "welcome:u1", addr("", "ada@example.edu"))
	start := f.clock.Now()

	for attempt, wait := range []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute} {
		rep := f.drain(t)
		if rep.Retrying != 1 || rep.Sent != 0 {
			t.Fatalf("attempt %d: report %+v", attempt+1, rep)
		}
		m := f.message(t, id)
		if m.Status != store.StatusPending || m.Attempts != attempt+1 || !m.NextAttemptAt.Equal(f.clock.Now().Add(wait)) {
			t.Fatalf("attempt %d: stored %s, want next attempt after %v", attempt+1, brief(m), wait)
		}
		if m.LastError == "" {
			t.Errorf("attempt %d: last error not recorded", attempt+1)
		}
		// Not due yet: a drain now sends nothing.
		if rep := f.drain(t); rep.Sent+rep.Retrying != 0 {
			t.Fatalf("drain before the backoff ended: %+v", rep)
		}
		f.clock.Advance(wait)
	}
	if rep := f.drain(t); rep.Sent != 1 {
		t.Fatalf("after recovery: %+v", rep)
	}
	if n := len(f.smtp.Messages()); n != 1 {
		t.Errorf("delivered %d copies, want exactly 1", n)
	}
	if m := f.message(t, id); m.Status != store.StatusSent || m.Attempts != 4 {
		t.Errorf("stored %s", brief(m))
	}
	if elapsed := f.clock.Now().Sub(start); elapsed != 7*time.Minute {
		t.Errorf("backoff total %v, want 7m", elapsed)
	}
}

func TestOutboxAbandons(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		code     int
		attempts int // drains until abandoned
	}{
		{"after max attempts of temporary failures", 451, 3},
		{"at once on a permanent refusal", 554, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newOutboxFixture(t, OutboxOptions{MaxAttempts: 3, Backoff: Backoff{Base: time.Second, Max: time.Second}})
			f.smtp.FailNext(100, tt.code, "refused")
			id := f.queueWelcome(t, "welcome:u1", addr("", "ada@example.edu"))
			var rep Report
			for range tt.attempts {
				rep = f.drain(t)
				f.clock.Advance(time.Minute)
			}
			if rep.Abandoned != 1 || len(rep.Failures) != 1 || !rep.Failures[0].Abandoned || rep.Failures[0].Key != "welcome:u1" {
				t.Fatalf("report %+v", rep)
			}
			if m := f.message(t, id); m.Status != store.StatusAbandoned || m.Attempts != tt.attempts {
				t.Errorf("stored %s", brief(m))
			}
			if rep := f.drain(t); rep.Sent+rep.Retrying+rep.Abandoned != 0 {
				t.Errorf("an abandoned message was tried again: %+v", rep)
			}
			if n := len(f.smtp.Messages()); n != 0 {
				t.Errorf("%d messages delivered", n)
			}
		})
	}
}

func TestOutboxRefusesPlaintextServerWithoutLosingMail(t *testing.T) {
	t.Parallel()
	f := newOutboxFixture(t, OutboxOptions{}, testenv.WithoutSTARTTLS())
	id := f.queueWelcome(t, "welcome:u1", addr("", "ada@example.edu"))
	rep := f.drain(t)
	if rep.Retrying != 1 || rep.Abandoned != 0 {
		t.Fatalf("report %+v: a missing STARTTLS must keep the message for later", rep)
	}
	if n := len(f.smtp.Messages()); n != 0 {
		t.Fatalf("%d messages delivered in plaintext", n)
	}
	if m := f.message(t, id); m.Status != store.StatusPending {
		t.Errorf("stored %s", brief(m))
	}
}

func TestOutboxPartialDelivery(t *testing.T) {
	t.Parallel()
	f := newOutboxFixture(t, OutboxOptions{Backoff: Backoff{Base: time.Minute, Max: time.Minute}})
	f.smtp.RejectRecipient("grace@example.edu", 450)
	f.smtp.RejectRecipient("nobody@example.edu", 550)
	f.queueWelcome(t, "welcome:u1", addr("", "ada@example.edu"), addr("", "grace@example.edu"), addr("", "nobody@example.edu"))

	rep := f.drain(t)
	if rep.Sent != 1 || len(rep.Failures) != 2 {
		t.Fatalf("report %+v", rep)
	}
	f.smtp.RejectRecipient("grace@example.edu", 0)
	f.clock.Advance(time.Minute)
	if rep := f.drain(t); rep.Sent != 1 {
		t.Fatalf("retry for the temporarily refused recipient: %+v", rep)
	}
	count := map[string]int{}
	for _, m := range f.smtp.Messages() {
		for _, to := range m.To {
			count[to]++
		}
	}
	want := map[string]int{"ada@example.edu": 1, "grace@example.edu": 1}
	if fmt.Sprint(count) != fmt.Sprint(want) {
		t.Errorf("copies per recipient %v, want %v", count, want)
	}
}

// TestOutboxSurvivesSenderKilledAfterClaim kills a sender process between
// claiming a message and recording it; the message goes out after the
// lease ends, exactly once.
func TestOutboxSurvivesSenderKilledAfterClaim(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := filepath.Join(dir, "state.db")
	f := newOutboxFixture(t, OutboxOptions{Lease: 5 * time.Minute})
	f.store.Close()
	f.store = openSQLite(t, db)
	f.outbox.store = f.store
	id := f.queueWelcome(t, "welcome:u1", addr("", "ada@example.edu"))

	claimed := filepath.Join(dir, "claimed")
	cmd := exec.Command(os.Args[0], "-test.run=^TestOutboxHelperProcess$")
	cmd.Env = append(os.Environ(), "KAIZEN_OUTBOX_CHILD_DB="+db, "KAIZEN_OUTBOX_CHILD_MARK="+claimed)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(claimed); err == nil {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatal("child never claimed the message")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()

	if m := f.message(t, id); m.Status != store.StatusSending {
		t.Fatalf("after the kill the message is %q, want sending (claimed)", m.Status)
	}
	if rep := f.drain(t); rep.Sent != 0 {
		t.Fatalf("sent while the dead sender's lease still held: %+v", rep)
	}
	f.clock.Advance(5*time.Minute + time.Second)
	if rep := f.drain(t); rep.Sent != 1 {
		t.Fatalf("after the lease: %+v", rep)
	}
	if n := len(f.smtp.Messages()); n != 1 {
		t.Errorf("delivered %d copies, want 1", n)
	}
}

// blockingTransport marks that a message was claimed and handed to it, then
// hangs, so the test can kill the process between claim and mark-sent.
type blockingTransport struct{ mark string }

func (b blockingTransport) Send(ctx context.Context, from string, to []string, msg []byte) error {
	os.WriteFile(b.mark, nil, 0o600)
	<-ctx.Done()
	return ctx.Err()
}

// TestOutboxHelperProcess is the sender child of
// TestOutboxSurvivesSenderKilledAfterClaim; it does nothing otherwise.
func TestOutboxHelperProcess(t *testing.T) {
	db := os.Getenv("KAIZEN_OUTBOX_CHILD_DB")
	if db == "" {
		return
	}
	s := openSQLite(t, db)
	o := NewOutbox(s, nil, nil, blockingTransport{mark: os.Getenv("KAIZEN_OUTBOX_CHILD_MARK")}, OutboxOptions{Lease: 5 * time.Minute, Keys: testKeys(t, testKeyA)})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	o.Drain(ctx)
	t.Fatal("the parent should have killed this process")
}

func TestBackoffDelay(t *testing.T) {
	b := Backoff{Base: time.Minute, Max: 10 * time.Minute}
	for failures, want := range map[int]time.Duration{1: time.Minute, 2: 2 * time.Minute, 3: 4 * time.Minute, 4: 8 * time.Minute, 5: 10 * time.Minute, 40: 10 * time.Minute} {
		if got := b.Delay(failures); got != want {
			t.Errorf("Delay(%d) = %v, want %v", failures, got, want)
		}
	}
}

// failingMarkSent is a store that cannot record deliveries.
type failingMarkSent struct{ OutboxStore }

func (failingMarkSent) MarkSent(context.Context, string, time.Time, ...int64) ([]int64, error) {
	return nil, errors.New("database is down")
}

// TestOutboxStopsSendingWhenDeliveriesCannotBeRecorded: once the store
// fails to record deliveries, the drain stops handing claimed messages to
// the server (each would be sent again after its lease).
func TestOutboxStopsSendingWhenDeliveriesCannotBeRecorded(t *testing.T) {
	t.Parallel()
	for _, workers := range []int{1, 4} {
		t.Run(fmt.Sprintf("workers=%d", workers), func(t *testing.T) {
			t.Parallel()
			f := newOutboxFixture(t, OutboxOptions{Workers: workers, Batch: 100})
			f.outbox.store = failingMarkSent{f.store}
			const n = 100
			for i := range n {
				f.queueWelcome(t, fmt.Sprintf("welcome:u%d", i), addr("", fmt.Sprintf("u%d@example.edu", i)))
			}
			_, err := f.outbox.Drain(t.Context())
			if err == nil {
				t.Fatal("Drain succeeded although no delivery could be recorded")
			}
			// Each worker waits for its delivery to be recorded before it
			// sends another: the first failure stops every worker after at
			// most the one message it had in flight.
			if got := len(f.smtp.Messages()); got == 0 || got > workers {
				t.Errorf("delivered %d of %d messages after the store failed, want 1 to %d", got, n, workers)
			}
			if got := strings.Count(err.Error(), "database is down"); got != 1 {
				t.Errorf("Drain's error reports the store failure %d times, want once: %v", got, err)
			}
		})
	}
}

// slowMarkSent checks, each time deliveries are recorded, that the server
// has not taken more than workers messages beyond those already recorded,
// and records slowly, so that workers would run ahead if they could.
type slowMarkSent struct {
	OutboxStore
	t        *testing.T
	srv      *testenv.SMTPServer
	workers  int
	mu       sync.Mutex
	recorded int
	worst    int
}

func (s *slowMarkSent) MarkSent(ctx context.Context, claim string, now time.Time, ids ...int64) ([]int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ahead := len(s.srv.Messages()) - s.recorded
	s.worst = max(s.worst, ahead)
	if ahead > s.workers {
		s.t.Errorf("the server took %d messages not yet recorded, want at most %d (one per worker)", ahead, s.workers)
	}
	time.Sleep(2 * time.Millisecond)
	lost, err := s.OutboxStore.MarkSent(ctx, claim, now, ids...)
	s.recorded += len(ids) - len(lost)
	return lost, err
}

// TestOutboxEndsNoMessageBeforeThePreviousIsRecorded: however slow the
// store, each worker has at most one message taken by the server and not
// recorded, so a killed sender doubles at most one per connection.
func TestOutboxEndsNoMessageBeforeThePreviousIsRecorded(t *testing.T) {
	t.Parallel()
	const workers, n = 3, 60
	f := newOutboxFixture(t, OutboxOptions{Workers: workers, Batch: 25})
	slow := &slowMarkSent{OutboxStore: f.store, t: t, srv: f.smtp, workers: workers}
	f.outbox.store = slow
	for i := range n {
		f.queueWelcome(t, fmt.Sprintf("welcome:u%d", i), addr("", fmt.Sprintf("u%d@example.edu", i)))
	}
	if rep := f.drain(t); rep.Sent != n || len(f.smtp.Messages()) != n {
		t.Fatalf("sent %d (the server has %d), want %d: %+v", rep.Sent, len(f.smtp.Messages()), n, rep)
	}
	t.Logf("at most %d messages were taken by the server ahead of their record", slow.worst)
}
