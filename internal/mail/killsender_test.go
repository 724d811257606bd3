package mail

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math/rand/v2"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/kaizen-onboard/kaizen/internal/config"
	"github.com/kaizen-onboard/kaizen/internal/store"
	"github.com/kaizen-onboard/kaizen/internal/testenv"
)

// Environment of the sender process of TestKilledSenderDoublesAtMostOnePerConnection.
const (
	envSenderStore = "KAIZEN_KILLSENDER_STORE" // store URL; set only in the child
	envSenderPort  = "KAIZEN_KILLSENDER_PORT"  // the slow proxy's port
	envSenderCA    = "KAIZEN_KILLSENDER_CA"
	envSenderUser  = "KAIZEN_KILLSENDER_USER"
	envSenderPass  = "KAIZEN_KILLSENDER_PASSWORD"
	// envSenderSeed, set to a number, replays the draws of an earlier run
	// (the test logs its seed).
	envSenderSeed = "KAIZEN_KILLSENDER_SEED"
)

const (
	killPool       = 4                     // SMTP connections, and the outbox's workers
	killLease      = time.Second           // short, so a killed sender's claims come free quickly
	killBatch      = 10                    // messages claimed at once: several claims per run
	killRounds     = 10                    // senders killed
	killFirst      = 20                    // messages queued at the start
	killReplyDelay = 40 * time.Millisecond // per server reply
	killChildMax   = 3 * time.Minute       // a stuck child fails the test
)

// TestKilledSenderDoublesAtMostOnePerConnection kills (SIGKILL) a sender
// process at random points while it delivers to a slow mail server — a
// proxy that holds each server reply 40 ms — ten times, starting a new
// sender after each kill, then lets one finish. Every queued message must
// reach the server, and each kill may leave at most one message per SMTP
// connection that the server accepted and the store does not know of: only
// those are sent twice.
//
// The kill points are counted, not timed: a run is killed once the server
// has accepted a drawn number of messages in it and then written a drawn
// number of further replies, while the proxy holds that reply. The first
// kill lands as the server's 250 to a DATA is held, the worst moment.
func TestKilledSenderDoublesAtMostOnePerConnection(t *testing.T) {
	t.Parallel()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv(envSenderSeed); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("%s: %v", envSenderSeed, err)
		}
	}
	t.Logf("seed %d (%s=%d replays the kill points)", seed, envSenderSeed, seed)
	backends := []struct {
		name string
		url  func(t *testing.T) string
	}{
		{"sqlite", func(t *testing.T) string { return "sqlite://" + filepath.Join(t.TempDir(), "state.db") }},
		{"postgres", func(t *testing.T) string { return testenv.Postgres(t) }},
	}
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			h := fnv.New64a()
			h.Write([]byte(be.name))
			newKillSenderEnv(t, be.url(t)).run(rand.New(rand.NewPCG(seed, h.Sum64())))
		})
	}
}

type killSenderEnv struct {
	t      *testing.T
	url    string
	st     store.Store
	srv    *testenv.SMTPServer
	proxy  *slowProxy
	caFile string
	queuer *Outbox
	queued []string // recipients, one message each
}

func newKillSenderEnv(t *testing.T, url string) *killSenderEnv {
	e := &killSenderEnv{t: t, url: url, srv: testenv.NewSMTP(t)}
	e.proxy = newSlowProxy(t, e.srv.Addr(), killReplyDelay)
	e.caFile = e.srv.CAFile(t)
	var err error
	if e.st, err = store.Open(t.Context(), url, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatalf("opening store: %v", err)
	}
	t.Cleanup(func() { e.st.Close() })
	c, err := NewComposer("Example Research Cloud <cloud@example.org>", "support@example.org", time.Now, crand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	e.queuer = NewOutbox(e.st, newTestRenderer(t, testCommon()), c, nil, OutboxOptions{Keys: testKeys(t, testKeyA)})
	return e
}

func (e *killSenderEnv) run(rng *rand.Rand) {
	t := e.t
	e.queue(killFirst)
	unrecordedTotal := 0
	for k := range killRounds {
		// The run is killed once the server has accepted accepted messages
		// in it and then written replies more replies.
		accepted, replies := rng.IntN(9), rng.IntN(7)
		if k == 0 {
			accepted, replies = max(accepted, 1), 0
		}
		// Enough work that the kill point is always reached.
		if left := e.unsent(); left < accepted+2*killPool {
			e.queue(accepted + 2*killPool - left)
		}
		before := e.copies()
		base := len(e.srv.Messages())
		child := e.start()
		killed, seen := false, 0
		e.proxy.setHook(func() {
			if killed || len(e.srv.Messages())-base < accepted {
				return
			}
			if seen < replies {
				seen++
				return
			}
			killed = true
			_ = child.cmd.Process.Signal(syscall.SIGKILL)
		})
		err := child.wait()
		e.proxy.setHook(nil) // after this, killed is safe to read
		if !killed {
			t.Fatalf("kill %d: the sender ended before its kill point (%d accepted, then %d replies): %v\n%s",
				k, accepted, replies, err, child.out.String())
		}
		e.settle()
		after, status := e.copies(), e.statuses()
		var unrecorded []string
		inRun := 0
		for rcpt, n := range after {
			inRun += n - before[rcpt]
			if n > before[rcpt] && status[rcpt] != store.StatusSent {
				unrecorded = append(unrecorded, rcpt)
			}
		}
		slices.Sort(unrecorded)
		t.Logf("kill %d after %d accepted and %d more replies: the server accepted %d message(s) in the run, %d of them not recorded as sent: %v",
			k, accepted, replies, inRun, len(unrecorded), unrecorded)
		if len(unrecorded) > killPool {
			t.Errorf("kill %d left %d messages accepted by the server and not recorded, which will be sent twice; want at most %d (one per connection)",
				k, len(unrecorded), killPool)
		}
		if accepted > 0 && replies == 0 && len(unrecorded) == 0 {
			// The kill came while the proxy held the 250 to a message the
			// server had just accepted: the sender cannot have recorded it.
			t.Errorf("kill %d came while a 250 was held, yet no message was left unrecorded: the kill missed the window it aims at", k)
		}
		unrecordedTotal += len(unrecorded)
	}

	child := e.start()
	if err := child.wait(); err != nil {
		t.Fatalf("the last sender: %v\n%s", err, child.out.String())
	}
	e.settle()
	e.check(unrecordedTotal)
}

// check asserts every queued message was delivered, the copies are those
// the kills left unrecorded and no others, and the store says all sent.
func (e *killSenderEnv) check(unrecordedTotal int) {
	t := e.t
	ids := map[string][]string{} // recipient -> Message-ID of each copy
	for _, m := range e.srv.Messages() {
		h, err := m.Header()
		if err != nil {
			t.Fatalf("delivered message to %v: %v", m.To, err)
		}
		for _, rcpt := range m.To {
			ids[rcpt] = append(ids[rcpt], h.Get("Message-ID"))
		}
	}
	distinct := map[string]bool{}
	duplicates := 0
	for _, rcpt := range e.queued {
		got := ids[rcpt]
		if len(got) == 0 {
			t.Errorf("the message to %s was never delivered", rcpt)
			continue
		}
		if u := slices.Compact(slices.Clone(got)); len(u) != 1 || u[0] == "" {
			t.Errorf("copies to %s carry Message-IDs %v, want one Message-ID", rcpt, got)
		}
		distinct[got[0]] = true
		duplicates += len(got) - 1
	}
	if len(distinct) != len(e.queued) {
		t.Errorf("%d distinct Message-IDs for %d messages", len(distinct), len(e.queued))
	}
	t.Logf("%d messages queued, %d copies delivered (%d distinct Message-IDs); %d kills, %d duplicates (at most %d allowed)",
		len(e.queued), len(e.srv.Messages()), len(distinct), killRounds, duplicates, killRounds*killPool)
	if duplicates != unrecordedTotal {
		t.Errorf("%d duplicates, but the kills left %d messages unrecorded: copies came from elsewhere", duplicates, unrecordedTotal)
	}
	if duplicates > killRounds*killPool {
		t.Errorf("%d duplicates after %d kills with %d connections, want at most %d", duplicates, killRounds, killPool, killRounds*killPool)
	}
	for rcpt, st := range e.statuses() {
		if st != store.StatusSent {
			t.Errorf("the message to %s is %s in the store, want sent", rcpt, st)
		}
	}
}

// queue adds n welcome mails, each to a recipient of its own.
func (e *killSenderEnv) queue(n int) {
	data, _ := Example(KindWelcome)
	for range n {
		rcpt := fmt.Sprintf("user%03d@example.edu", len(e.queued))
		if _, _, err := e.queuer.Queue(e.t.Context(), "welcome:"+rcpt, KindWelcome, []mail.Address{{Address: rcpt}}, data); err != nil {
			e.t.Fatalf("queuing: %v", err)
		}
		e.queued = append(e.queued, rcpt)
	}
}

// unsent counts the messages not recorded as sent.
func (e *killSenderEnv) unsent() int {
	n := 0
	for _, st := range e.statuses() {
		if st != store.StatusSent {
			n++
		}
	}
	return n
}

// statuses are the stored messages' statuses by recipient.
func (e *killSenderEnv) statuses() map[string]store.MessageStatus {
	msgs, err := e.st.Messages(e.t.Context(), 0)
	if err != nil {
		e.t.Fatalf("listing messages: %v", err)
	}
	out := make(map[string]store.MessageStatus, len(msgs))
	for _, m := range msgs {
		out[m.To[0]] = m.Status
	}
	return out
}

// copies counts the server's copies by recipient.
func (e *killSenderEnv) copies() map[string]int {
	out := map[string]int{}
	for _, m := range e.srv.Messages() {
		for _, rcpt := range m.To {
			out[rcpt]++
		}
	}
	return out
}

// settle waits until the server has closed every session of the sender
// that ended, so it has accepted all it will accept from it.
func (e *killSenderEnv) settle() {
	ctx, cancel := context.WithTimeout(e.t.Context(), time.Minute)
	defer cancel()
	if err := e.proxy.waitClosed(ctx); err != nil {
		e.t.Fatalf("the mail server still has sessions of a sender that ended: %v", err)
	}
}

type senderChild struct {
	cmd  *exec.Cmd
	out  bytes.Buffer
	done chan error
}

// start runs a sender process: this test binary in TestKilledSenderHelperProcess.
func (e *killSenderEnv) start() *senderChild {
	c := &senderChild{done: make(chan error, 1)}
	c.cmd = exec.Command(os.Args[0], "-test.run=^TestKilledSenderHelperProcess$", "-test.count=1",
		"-test.timeout="+killChildMax.String())
	c.cmd.Env = append(os.Environ(), envSenderStore+"="+e.url, envSenderPort+"="+strconv.Itoa(e.proxy.Port()),
		envSenderCA+"="+e.caFile, envSenderUser+"="+e.srv.Username(), envSenderPass+"="+e.srv.Password())
	c.cmd.Stdout, c.cmd.Stderr = &c.out, &c.out
	if err := c.cmd.Start(); err != nil {
		e.t.Fatalf("starting a sender: %v", err)
	}
	go func() { c.done <- c.cmd.Wait() }()
	return c
}

// wait returns how the sender ended; one that hangs fails the test.
func (c *senderChild) wait() error {
	select {
	case err := <-c.done:
		return err
	case <-time.After(killChildMax + 30*time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
		return fmt.Errorf("the sender did not end within %s", killChildMax)
	}
}

// TestKilledSenderHelperProcess is the sender process of
// TestKilledSenderDoublesAtMostOnePerConnection; it does nothing otherwise.
// It drains the outbox through the SMTP transport, as `reminders run
// outbox` does, until no message is left unsent, waiting out the leases of
// the senders killed before it.
func TestKilledSenderHelperProcess(t *testing.T) {
	url := os.Getenv(envSenderStore)
	if url == "" {
		return
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx := t.Context()
	st, err := store.Open(ctx, url, log)
	if err != nil {
		t.Fatalf("opening store: %v", err)
	}
	defer st.Close()
	port, err := strconv.Atoi(os.Getenv(envSenderPort))
	if err != nil {
		t.Fatalf("%s: %v", envSenderPort, err)
	}
	cfg := config.Defaults().Mail.SMTP
	cfg.Host, cfg.Port, cfg.CAFile = "127.0.0.1", port, os.Getenv(envSenderCA)
	cfg.Username, cfg.Password = os.Getenv(envSenderUser), config.NewSecret(os.Getenv(envSenderPass), envSenderPass)
	cfg.PoolSize = killPool
	tr, err := NewSMTP(cfg, SMTPOptions{Logger: log})
	if err != nil {
		t.Fatalf("NewSMTP: %v", err)
	}
	defer tr.Close()
	o := NewOutbox(st, nil, nil, tr, OutboxOptions{
		Workers: cfg.PoolSize, Lease: killLease, Batch: killBatch,
		// Every claim counts as an attempt, and a message may be claimed by
		// many killed senders; a slow moment must not abandon it either.
		MaxAttempts: 1000, Backoff: Backoff{Base: 50 * time.Millisecond, Max: 50 * time.Millisecond},
		Logger: log, Keys: testKeys(t, testKeyA),
	})
	for {
		rep, err := o.Drain(ctx)
		if err != nil {
			t.Fatalf("Drain: %v", err)
		}
		for _, f := range rep.Failures {
			t.Logf("delivery failed: %+v", f)
		}
		counts, err := st.OutboxCounts(ctx)
		if err != nil {
			t.Fatalf("OutboxCounts: %v", err)
		}
		if counts[store.StatusAbandoned] > 0 {
			t.Fatalf("%d message(s) abandoned", counts[store.StatusAbandoned])
		}
		if counts[store.StatusPending]+counts[store.StatusSending] == 0 {
			return
		}
		time.Sleep(50 * time.Millisecond) // for a dead sender's lease to end
	}
}
