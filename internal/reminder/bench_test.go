package reminder_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kaizen-onboard/kaizen/internal/config"
	"github.com/kaizen-onboard/kaizen/internal/reminder"
	"github.com/kaizen-onboard/kaizen/internal/setpass"
	"github.com/kaizen-onboard/kaizen/internal/setpass/client"
	"github.com/kaizen-onboard/kaizen/internal/store"
	"github.com/kaizen-onboard/kaizen/templates"
)

const benchUsers = 10000

// BenchmarkLinkReminder is one link-reminder run over 10,000 users whose
// links are all due: per user a ledger check, a Keystone lookup, a new
// temporary password, a new link and a reminder rendered and queued. The
// ledger and the outbox are real, on one SQLite file; Keystone is an
// in-memory directory. Two setpass variants:
//
//   - fake: an in-process Issue that stores the new token in the store,
//     as setpass does (the job's own cost plus that one write);
//   - http: the real setpass handler on a loopback httptest server over
//     the same store (sealing, PIN HMAC, audit), with an in-memory
//     Keystone behind it: the whole exchange, both sides in one process.
//
// Reported: ms per run, messages/s, and the peak heap (sampled every 5 ms)
// above the heap before the run.
func BenchmarkLinkReminder(b *testing.B) {
	b.Run("setpass=fake", func(b *testing.B) { benchLinkReminder(b, false) })
	b.Run("setpass=http", func(b *testing.B) { benchLinkReminder(b, true) })
}

func benchLinkReminder(b *testing.B, viaHTTP bool) {
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	at := t0.Add(49 * time.Hour)
	var total time.Duration
	var peak uint64
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		st := lrOpenStore(b)
		clock := &lrClock{now: at}
		f := newLRFakes(st, clock.Now)
		for u := range benchUsers {
			f.addUser(b, fmt.Sprintf("%032x", u), t0, true)
		}
		var issuer reminder.Issuer = f
		if viaHTTP {
			issuer = benchSetpass(b, st, f, clock)
		}
		mailer := lrOutbox(b, st, clock.Now)
		job, err := reminder.NewLinkReminder(config.Job{Name: "link-reminder"}, reminder.LinkReminderDeps{
			Tokens: st, Ledger: st, Mail: mailer, Users: f, Passwords: f, Setpass: issuer,
			Helpdesk: "helpdesk@example.org", Audit: st,
		})
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		var base runtime.MemStats
		runtime.ReadMemStats(&base)
		stop := benchSampleHeap(&peak, base.HeapAlloc)
		b.StartTimer()

		start := time.Now()
		res, err := job.Run(context.Background(), reminder.RunContext{Now: at})
		elapsed := time.Since(start)

		b.StopTimer()
		stop()
		total += elapsed
		if err != nil {
			b.Fatal(err)
		}
		if res.Sent != benchUsers {
			b.Fatalf("sent %d reminders, want %d", res.Sent, benchUsers)
		}
		if n, err := st.OutboxCounts(context.Background()); err != nil || n[store.StatusPending] != benchUsers {
			b.Fatalf("outbox %v %v", n, err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/run")
	b.ReportMetric(float64(benchUsers*b.N)/total.Seconds(), "msgs/s")
	b.ReportMetric(float64(peak)/(1<<20), "MB-peak")
}

// benchSampleHeap records into peak the largest heap growth above base
// until the returned stop is called.
func benchSampleHeap(peak *uint64, base uint64) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	var top atomic.Uint64
	sample := func() {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		if m.HeapAlloc > base && m.HeapAlloc-base > top.Load() {
			top.Store(m.HeapAlloc - base)
		}
	}
	wg.Go(func() {
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				sample()
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
		sample()
		*peak = max(*peak, top.Load())
	}
}

// benchKeystone is setpass's view of the in-memory directory.
type benchKeystone struct{ f *lrFakes }

func (k benchKeystone) CheckAdmin(ctx context.Context, token string) (string, error) {
	if token != "bench-admin-token" {
		return "", setpass.ErrUnauthenticated
	}
	return "admin", nil
}

func (k benchKeystone) User(ctx context.Context, id string) (setpass.User, error) {
	k.f.mu.Lock()
	defer k.f.mu.Unlock()
	u, ok := k.f.users[id]
	if !ok {
		return setpass.User{}, setpass.ErrUnknownUser
	}
	return setpass.User{ID: u.ID, Name: u.Name, Email: u.Email}, nil
}

func (k benchKeystone) ChangePassword(ctx context.Context, id, original, replacement string) error {
	return setpass.ErrOriginalRefused
}

func (k benchKeystone) Ping(ctx context.Context) error { return nil }

// benchSetpass serves the real setpass handler over st and returns its
// client.
func benchSetpass(b *testing.B, st store.Store, f *lrFakes, clock *lrClock) *client.Client {
	b.Helper()
	pages, err := setpass.LoadPages(templates.FS, "", setpass.Branding{CloudName: "Test Cloud", Support: "support@example.org"})
	if err != nil {
		b.Fatal(err)
	}
	h, err := setpass.NewHandler(setpass.Deps{
		Store: st, Keystone: benchKeystone{f}, Pages: pages, Registry: prometheus.NewRegistry(),
		Now: clock.Now, Random: rand.Reader,
		Settings: setpass.Settings{
			SecretKey: []byte("0123456789abcdef0123456789abcdef-bench"), BaseURL: "https://setpass.example.org/",
			TokenTTL: lrTTL, MaxAttempts: 5, MinPasswordLength: 12, RateLimit: 1000, RateBurst: 1000,
		},
	})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(h)
	b.Cleanup(srv.Close)
	tr := srv.Client().Transport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = reminder.DefaultLinkReminderWorkers
	c, err := client.New(srv.URL, &http.Client{Transport: tr}, func(context.Context) (string, error) { return "bench-admin-token", nil })
	if err != nil {
		b.Fatal(err)
	}
	return c
}
