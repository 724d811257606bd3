package testenv

import (
	"context"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/catalog"
)

// Faults say which share of the requests a [FaultyCloud] spoils, drawn from
// a generator seeded with Seed (the same seed spoils the same share; which
// requests get it depends on their order, which concurrency varies).
type Faults struct {
	Seed uint64
	// Unavailable is the share answered 503 by the proxy without being
	// sent upstream; RetryAfter is the share of those carrying
	// "Retry-After: 1".
	Unavailable, RetryAfter float64
	// Lost is the share of writes (any method but GET and HEAD) sent
	// upstream, done there, and answered 503 all the same: a gateway that
	// lost the answer. A client repeating one finds its work done.
	Lost float64
	// Slow is the share of requests whose answer is held back by
	// SlowDelay after the upstream gave it (done, answered late); a
	// client timing out first sees no answer.
	Slow      float64
	SlowDelay time.Duration
	// Services are the fronted services spoiled ("identity", "compute",
	// "block-storage", "network"); nil spoils all.
	Services []string
}

// FaultCount is what a [FaultyCloud] did to one service's requests.
type FaultCount struct {
	Unavailable, RetryAfter, Lost, Slow int
}

// Total is the number of spoiled requests.
func (f FaultCount) Total() int { return f.Unavailable + f.Lost + f.Slow }

// FaultyCloud is a [CountingCloud] whose proxies inject faults.
type FaultyCloud struct {
	*CountingCloud
	faults Faults

	mu       sync.Mutex
	rnd      *rand.Rand
	injected map[string]*FaultCount
}

// NewFaultyCloud fronts Keystone and the quota services as
// [NewCountingCloud] does, spoiling requests as f says. Without Keystone
// the test is skipped, or fails under CI=true.
func NewFaultyCloud(tb testing.TB, f Faults) *FaultyCloud {
	tb.Helper()
	ks := Keystone(tb)
	ctx, cancel := context.WithTimeout(context.Background(), keystoneHTTPTimeout)
	defer cancel()
	pages, err := catalog.List(ks.Identity).AllPages(ctx)
	if err != nil {
		tb.Fatalf("testenv: read Keystone's catalog: %v", err)
	}
	entries, err := catalog.ExtractServiceCatalog(pages)
	if err != nil {
		tb.Fatalf("testenv: read Keystone's catalog: %v", err)
	}
	upstreams, err := countingUpstreams(ks.AuthURL, entries)
	if err != nil {
		tb.Fatalf("testenv: %v", err)
	}
	fc := &FaultyCloud{faults: f, rnd: rand.New(rand.NewPCG(f.Seed, f.Seed^0x9e3779b97f4a7c15)),
		injected: map[string]*FaultCount{}}
	c, err := newCountingCloudWith(ks.AuthURL, upstreams, func(service string, rt http.RoundTripper) http.RoundTripper {
		fc.injected[service] = &FaultCount{}
		if f.Services != nil && !slices.Contains(f.Services, service) {
			return rt
		}
		return &faultTransport{cloud: fc, service: service, base: rt}
	})
	if err != nil {
		tb.Fatalf("testenv: %v", err)
	}
	tb.Cleanup(c.close)
	fc.CountingCloud = c
	return fc
}

// Injected returns a copy of the faults injected so far, by service.
func (fc *FaultyCloud) Injected() map[string]FaultCount {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	out := make(map[string]FaultCount, len(fc.injected))
	for k, v := range fc.injected {
		out[k] = *v
	}
	return out
}

// InjectedTotal is the number of spoiled requests over all services.
func (fc *FaultyCloud) InjectedTotal() int {
	n := 0
	for _, v := range fc.Injected() {
		n += v.Total()
	}
	return n
}

type faultKind int

const (
	faultNone faultKind = iota
	faultUnavailable
	faultUnavailableRetryAfter
	faultLost
	faultSlow
)

// SetFaults changes the shares from now on (Seed and Services are kept).
func (fc *FaultyCloud) SetFaults(f Faults) {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	f.Seed, f.Services = fc.faults.Seed, fc.faults.Services
	fc.faults = f
}

// draw picks the fate of one request and counts it.
func (fc *FaultyCloud) draw(service, method string) (faultKind, time.Duration) {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	f := fc.faults
	k := fc.drawLocked(service, method, f)
	return k, f.SlowDelay
}

func (fc *FaultyCloud) drawLocked(service, method string, f Faults) faultKind {
	c := fc.injected[service]
	x := fc.rnd.Float64()
	switch {
	case x < f.Unavailable:
		c.Unavailable++
		if fc.rnd.Float64() < f.RetryAfter {
			c.RetryAfter++
			return faultUnavailableRetryAfter
		}
		return faultUnavailable
	case x < f.Unavailable+f.Lost && method != http.MethodGet && method != http.MethodHead:
		c.Lost++
		return faultLost
	case x < f.Unavailable+f.Lost+f.Slow:
		c.Slow++
		return faultSlow
	}
	return faultNone
}

type faultTransport struct {
	cloud   *FaultyCloud
	service string
	base    http.RoundTripper
}

func (t *faultTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	kind, slow := t.cloud.draw(t.service, r.Method)
	switch kind {
	case faultUnavailable, faultUnavailableRetryAfter:
		if r.Body != nil {
			io.Copy(io.Discard, r.Body)
			r.Body.Close()
		}
		h := http.Header{}
		if kind == faultUnavailableRetryAfter {
			h.Set("Retry-After", "1")
		}
		return unavailable(r, h), nil
	}
	resp, err := t.base.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	switch kind {
	case faultLost:
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return unavailable(r, http.Header{}), nil
	case faultSlow:
		timer := time.NewTimer(slow)
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-r.Context().Done(): // the client gave up waiting
			resp.Body.Close()
			return nil, r.Context().Err()
		}
	}
	return resp, nil
}

func unavailable(r *http.Request, h http.Header) *http.Response {
	body := `{"error": {"code": 503, "title": "Service Unavailable", "message": "testenv fault proxy: injected"}}`
	h.Set("Content-Type", "application/json")
	return &http.Response{
		Status: "503 Service Unavailable", StatusCode: http.StatusServiceUnavailable,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, Body: io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body)),
		Request: r,
	}
}

// Services lists the fronted services (sorted).
func (fc *FaultyCloud) Services() []string {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	return slices.Sorted(maps.Keys(fc.injected))
}
