package setpass

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/users"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kaizen-onboard/kaizen/internal/cloud"
	"github.com/kaizen-onboard/kaizen/internal/setpass/client"
	"github.com/kaizen-onboard/kaizen/internal/store"
	"github.com/kaizen-onboard/kaizen/internal/testenv"
	"github.com/kaizen-onboard/kaizen/templates"
)

// The load: each b.Loop iteration is one round of a fixed number of
// requests sent by a fixed number of goroutines over keep-alive connections,
// as a reverse proxy would send them. Metrics are per request: ns/op is wall
// time per request with all workers busy (1e9 / req/s); B/op and allocs/op
// count client and server together, as they share the process.
const (
	benchWorkers     = 16
	issueRound       = 1000
	formRound        = 2000
	formTokens       = 500
	submitUsers      = 50 // one round: each user's link used once
	submitWorkers    = 4  // the dev Keystone serves one request at a time
	benchAdminToken  = adminTok
	benchRateLimit   = 1 << 30 // the limiter runs, but never refuses the load
	benchOpenTimeout = 30 * time.Second
)

// benchBackend is a store every benchmark runs on.
type benchBackend struct {
	name string
	url  func(testing.TB) string // a fresh, empty database
}

func benchBackends() []benchBackend {
	return []benchBackend{
		{"sqlite", func(tb testing.TB) string { return "sqlite://" + tb.TempDir() + "/kaizen.db" }},
		{"postgres", testenv.Postgres},
	}
}

// BenchmarkPutToken is the admin API issuing links (PUT /token/<id>, through
// the real Client) for new users; Keystone is a fake, so this is setpass's
// own cost: admin check, sealing, PIN HMAC, the token and audit writes.
func BenchmarkPutToken(b *testing.B) {
	for _, be := range benchBackends() {
		b.Run(be.name, func(b *testing.B) {
			srv := newBenchServer(b, be.url(b), benchKeystone{}, nil)
			client := srv.apiClient(b, func(context.Context) (string, error) { return benchAdminToken, nil })
			var next atomic.Int64
			var stats benchStats
			for b.Loop() {
				if err := stats.round(benchWorkers, issueRound, func(int) error {
					_, err := client.Issue(context.Background(), fmt.Sprintf("bench%027d", next.Add(1)), tempPass, testPIN)
					return err
				}); err != nil {
					b.Fatal(err)
				}
			}
			stats.report(b)
		})
	}
}

// BenchmarkFormGET is users opening their links: one token read and the
// form rendered.
func BenchmarkFormGET(b *testing.B) {
	for _, be := range benchBackends() {
		b.Run(be.name, func(b *testing.B) {
			srv := newBenchServer(b, be.url(b), benchKeystone{}, nil)
			client := srv.apiClient(b, func(context.Context) (string, error) { return benchAdminToken, nil })
			links := make([]string, formTokens)
			if _, _, err := benchLoad(benchWorkers, formTokens, func(i int) error {
				issued, err := client.Issue(context.Background(), fmt.Sprintf("form%028d", i), tempPass, testPIN)
				links[i] = srv.base + "?token=" + url.QueryEscape(issued.Token)
				return err
			}); err != nil {
				b.Fatal(err)
			}
			var stats benchStats
			for b.Loop() {
				if err := stats.round(benchWorkers, formRound, func(i int) error {
					return benchExpect(srv.client, http.MethodGet, links[i%formTokens], "", http.StatusOK)
				}); err != nil {
					b.Fatal(err)
				}
			}
			stats.report(b)
		})
	}
}

// BenchmarkSubmit is the whole form POST against the real Keystone, for
// submitUsers users at a time, and reports setpass's own share of each
// request (its time in the handler less its time waiting on Keystone) next
// to Keystone's. Goal: setpass's share under 5 ms at p99 (reported, not
// enforced).
func BenchmarkSubmit(b *testing.B) {
	ks := testenv.Keystone(b)
	domainID, _ := ks.Domain(b)
	people := make([]benchUser, submitUsers)
	for i := range people {
		p := &people[i]
		p.name, p.password = fmt.Sprintf("bench-%02d", i), tempPass
		u, err := users.Create(b.Context(), ks.Identity, users.CreateOpts{Name: p.name, DomainID: domainID,
			Password: p.password}).Extract()
		if err != nil {
			b.Fatal(err)
		}
		p.id = u.ID
	}
	for _, be := range benchBackends() {
		b.Run(be.name, func(b *testing.B) {
			share := &requestShare{}
			keystone := NewKeystone(cloud.NewKeystone(ks.Identity), ks.Admin.ProjectName, ks.Admin.ProjectDomainName)
			srv := newBenchServer(b, be.url(b), keystone, share)
			client := srv.apiClient(b, func(context.Context) (string, error) { return ks.Identity.Token(), nil })
			tokens := make([]string, len(people))
			var stats benchStats
			for round := 0; b.Loop(); round++ {
				// A new link per user, sealing the password it has now.
				b.StopTimer()
				if _, _, err := benchLoad(submitWorkers, len(people), func(i int) error {
					issued, err := client.Issue(context.Background(), people[i].id, people[i].password, testPIN)
					tokens[i] = issued.Token
					return err
				}); err != nil {
					b.Fatal(err)
				}
				// Users open their links before they submit, which also
				// leaves the store's connections warm, as in service.
				if _, _, err := benchLoad(submitWorkers, len(people), func(i int) error {
					return benchExpect(srv.client, http.MethodGet, srv.base+"?token="+url.QueryEscape(tokens[i]), "", http.StatusOK)
				}); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if err := stats.round(submitWorkers, len(people), func(i int) error {
					p := fmt.Sprintf("bench %s round %d new password", people[i].name, round)
					form := url.Values{"token": {tokens[i]}, "pin": {testPIN}, "password": {p}, "confirm": {p}}
					if err := benchExpect(srv.client, http.MethodPost, srv.base, form.Encode(), http.StatusOK); err != nil {
						return fmt.Errorf("%s: %w", people[i].name, err)
					}
					people[i].password = p
					return nil
				}); err != nil {
					b.Fatal(err)
				}
			}
			stats.report(b)
			share.report(b)
		})
	}
}

type benchUser struct{ id, name, password string }

// benchServer is the real handler served on a loopback listener.
type benchServer struct {
	base   string
	client *http.Client
}

// newBenchServer serves setpass on a fresh store at storeURL until the
// benchmark ends; with share, its form POSTs are timed into it.
func newBenchServer(b *testing.B, storeURL string, ks Keystone, share *requestShare) *benchServer {
	b.Helper()
	// Log formatting costs what it costs in production; only the I/O is left out.
	logger := slog.New(slog.NewJSONHandler(io.Discard, nil))
	ctx, cancel := context.WithTimeout(context.Background(), benchOpenTimeout)
	defer cancel()
	st, err := store.Open(ctx, storeURL, logger)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	pages, err := LoadPages(templates.FS, "", Branding{CloudName: "Bench Cloud", Support: "help@example.org"})
	if err != nil {
		b.Fatal(err)
	}
	s := testSettings()
	s.RateLimit, s.RateBurst = benchRateLimit, benchRateLimit
	var deps Store = st
	if share != nil {
		deps, ks = timedStore{st}, timedKeystone{ks}
	}
	h, err := NewHandler(Deps{Store: deps, Keystone: ks, Pages: pages, Registry: prometheus.NewRegistry(),
		Logger: logger, Now: time.Now, Random: rand.Reader, Settings: s})
	if err != nil {
		b.Fatal(err)
	}
	if share != nil {
		h = share.wrap(h)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	serveCtx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- Serve(serveCtx, ln, h, ServeOptions{Logger: logger}) }()
	client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: benchWorkers}}
	b.Cleanup(func() {
		client.CloseIdleConnections()
		stop()
		if err := <-served; err != nil {
			b.Error(err)
		}
	})
	return &benchServer{base: "http://" + ln.Addr().String() + "/", client: client}
}

func (s *benchServer) apiClient(b *testing.B, token func(context.Context) (string, error)) *client.Client {
	c, err := client.New(s.base, s.client, token)
	if err != nil {
		b.Fatal(err)
	}
	return c
}

// benchExpect sends a request as procDo does and wants status back.
func benchExpect(client *http.Client, method, target, form string, status int) error {
	got, body := procDo(client, method, target, form)
	if got != status {
		return fmt.Errorf("%s: HTTP %d, want %d: %.200s", method, got, status, body)
	}
	return nil
}

// benchLoad calls do(0) … do(n-1) from workers goroutines and returns each
// call's latency and the wall time of the whole.
func benchLoad(workers, n int, do func(i int) error) ([]time.Duration, time.Duration, error) {
	lat := make([]time.Duration, n)
	errs := make([]error, workers)
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for w := range workers {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				t0 := time.Now()
				if err := do(i); err != nil {
					errs[w] = err
					return
				}
				lat[i] = time.Since(t0)
			}
		})
	}
	wg.Wait()
	return lat, time.Since(start), errors.Join(errs...)
}

// benchStats accumulates the rounds of one benchmark.
type benchStats struct {
	lat            []time.Duration
	wall           time.Duration
	bytes, mallocs uint64
}

func (s *benchStats) round(workers, n int, do func(i int) error) error {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	lat, wall, err := benchLoad(workers, n, do)
	runtime.ReadMemStats(&after)
	s.lat = append(s.lat, lat...)
	s.wall += wall
	s.bytes += after.TotalAlloc - before.TotalAlloc
	s.mallocs += after.Mallocs - before.Mallocs
	return err
}

func (s *benchStats) report(b *testing.B) {
	n := float64(len(s.lat))
	if n == 0 {
		return
	}
	b.ReportMetric(float64(s.wall.Nanoseconds())/n, "ns/op")
	b.ReportMetric(float64(s.bytes)/n, "B/op")
	b.ReportMetric(float64(s.mallocs)/n, "allocs/op")
	b.ReportMetric(n/s.wall.Seconds(), "req/s")
	b.ReportMetric(benchMS(benchPercentile(s.lat, 50)), "p50-ms")
	b.ReportMetric(benchMS(benchPercentile(s.lat, 99)), "p99-ms")
}

// benchPercentile is the nearest-rank percentile p of d.
func benchPercentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[max(i, 0)]
}

func benchMS(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// requestClocks add up where one request's time went; the timing
// decorators find them in the request's context. ChangePassword and the
// audit write run on a context detached from the request's, which keeps
// its values, so they are counted too.
type requestClocks struct{ keystone, store atomic.Int64 }

type requestClocksKey struct{}

func clockSince(ctx context.Context, pick func(*requestClocks) *atomic.Int64, start time.Time) {
	if c, ok := ctx.Value(requestClocksKey{}).(*requestClocks); ok {
		pick(c).Add(int64(time.Since(start)))
	}
}

func benchKeystoneClock(c *requestClocks) *atomic.Int64 { return &c.keystone }
func benchStoreClock(c *requestClocks) *atomic.Int64    { return &c.store }

// timedKeystone is the real Keystone client, timed.
type timedKeystone struct{ Keystone }

func (k timedKeystone) CheckAdmin(ctx context.Context, token string) (string, error) {
	defer clockSince(ctx, benchKeystoneClock, time.Now())
	return k.Keystone.CheckAdmin(ctx, token)
}

func (k timedKeystone) User(ctx context.Context, id string) (User, error) {
	defer clockSince(ctx, benchKeystoneClock, time.Now())
	return k.Keystone.User(ctx, id)
}

func (k timedKeystone) ChangePassword(ctx context.Context, id, original, replacement string) error {
	defer clockSince(ctx, benchKeystoneClock, time.Now())
	return k.Keystone.ChangePassword(ctx, id, original, replacement)
}

// timedStore times the store calls of the form POST, to show how much of
// setpass's own share is the database.
type timedStore struct{ Store }

func (s timedStore) GetToken(ctx context.Context, hash []byte) (store.Token, error) {
	defer clockSince(ctx, benchStoreClock, time.Now())
	return s.Store.GetToken(ctx, hash)
}

func (s timedStore) RecordAttempt(ctx context.Context, hash []byte, now time.Time, max int) (int, bool, error) {
	defer clockSince(ctx, benchStoreClock, time.Now())
	return s.Store.RecordAttempt(ctx, hash, now, max)
}

func (s timedStore) ResetAttempts(ctx context.Context, hash []byte) error {
	defer clockSince(ctx, benchStoreClock, time.Now())
	return s.Store.ResetAttempts(ctx, hash)
}

func (s timedStore) ConsumeToken(ctx context.Context, hash []byte, now time.Time) error {
	defer clockSince(ctx, benchStoreClock, time.Now())
	return s.Store.ConsumeToken(ctx, hash, now)
}

func (s timedStore) AppendEvent(ctx context.Context, e store.Event) (int64, error) {
	defer clockSince(ctx, benchStoreClock, time.Now())
	return s.Store.AppendEvent(ctx, e)
}

// requestShare times each form POST in the handler and splits it into
// Keystone's time and setpass's own (of which the store's).
type requestShare struct {
	mu                       sync.Mutex
	keystone, setpass, store []time.Duration
}

func (r *requestShare) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		clocks := &requestClocks{}
		start := time.Now()
		next.ServeHTTP(w, req.WithContext(context.WithValue(req.Context(), requestClocksKey{}, clocks)))
		if req.Method != http.MethodPost {
			return
		}
		total, ks := time.Since(start), time.Duration(clocks.keystone.Load())
		r.mu.Lock()
		defer r.mu.Unlock()
		r.keystone = append(r.keystone, ks)
		r.setpass = append(r.setpass, total-ks)
		r.store = append(r.store, time.Duration(clocks.store.Load()))
	})
}

func (r *requestShare) report(b *testing.B) {
	r.mu.Lock()
	defer r.mu.Unlock()
	b.ReportMetric(benchMS(benchPercentile(r.keystone, 50)), "keystone-p50-ms")
	b.ReportMetric(benchMS(benchPercentile(r.keystone, 99)), "keystone-p99-ms")
	b.ReportMetric(benchMS(benchPercentile(r.setpass, 50)), "setpass-p50-ms")
	b.ReportMetric(benchMS(benchPercentile(r.setpass, 99)), "setpass-p99-ms")
	b.ReportMetric(benchMS(benchPercentile(r.store, 50)), "store-p50-ms")
	b.ReportMetric(benchMS(benchPercentile(r.store, 99)), "store-p99-ms")
}

// benchKeystone accepts the admin token and knows every user: setpass's own
// cost, with no Keystone in it.
type benchKeystone struct{}

func (benchKeystone) CheckAdmin(ctx context.Context, token string) (string, error) {
	if token != benchAdminToken {
		return "", ErrUnauthenticated
	}
	return "admin", nil
}

func (benchKeystone) User(ctx context.Context, id string) (User, error) {
	return User{ID: id, Name: "user-" + id}, nil
}

func (benchKeystone) ChangePassword(ctx context.Context, id, original, replacement string) error {
	return nil
}

func (benchKeystone) Ping(ctx context.Context) error { return nil }
