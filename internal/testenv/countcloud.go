package testenv

import (
	"context"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/catalog"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/tokens"
)

// Service names used by [CountingCloud], and the catalog types fronted as each.
var countingServiceTypes = map[string]string{
	"identity":      "identity",
	"compute":       "compute",
	"block-storage": "block-storage",
	"volumev3":      "block-storage",
	"volumev2":      "block-storage",
	"volume":        "block-storage",
	"network":       "network",
}

// CountingCloud fronts the local Keystone and each quota service with a
// reverse proxy on loopback that counts requests and sums upstream service
// time, so that a benchmark can report API requests per row by service and
// each server's load.
//
// Clients that authenticate through AuthURL find the proxies in the catalog:
// every JSON response (tokens, GET /v3/auth/catalog, version discovery,
// pagination links) and every Location header has the upstream origins
// (scheme://host:port) replaced by the proxies'. Requests that bypass it,
// such as the services' own token validation against Keystone, are not
// counted; their cost is inside the calling service's time.
//
// It is safe for concurrent use.
type CountingCloud struct {
	// AuthURL is the identity endpoint through the proxy, with the path of
	// OS_AUTH_URL (e.g. http://127.0.0.1:41234/v3).
	AuthURL string

	proxies   map[string]*httptest.Server // by service name
	transport *http.Transport
	replacer  *strings.Replacer // upstream origin -> proxy origin

	mu      sync.Mutex
	counts  map[string]*serviceCounter
	resetAt time.Time
}

// ServiceCount is what one service was asked since the start or the last
// [CountingCloud.Reset]. Every request counts in exactly one of Reads,
// Writes and Auth, and in ByMethod, ByPath and ByStatus.
type ServiceCount struct {
	// Reads are GET and HEAD requests; Writes every other method, except
	// token issuance (POST .../auth/tokens on identity), which is Auth:
	// session setup, not work.
	Reads, Writes, Auth int
	// ByMethod counts requests by HTTP method.
	ByMethod map[string]int
	// ByPath counts requests by "METHOD /normalised/path", without the
	// query, with IDs replaced by {id}: a path segment that is all digits,
	// or at least 8 bytes long with a digit in it (UUIDs, Keystone's hex
	// IDs, most generated names).
	ByPath map[string]int
	// ByStatus counts responses by HTTP status; 0 means the upstream could
	// not be reached (the client got 502 from the proxy).
	ByStatus map[int]int
	// ServiceTime is the sum over requests of the time from the request
	// being sent upstream (connecting included) to the response body being
	// fully relayed to the client. Requests to a single-threaded server
	// that overlap are each charged their wait in its queue as well.
	ServiceTime time.Duration
	// AuthTime is the part of ServiceTime spent on Auth requests.
	AuthTime time.Duration
	// BusyTime is the wall time during which at least one request to the
	// service was in flight (the union of the intervals ServiceTime sums):
	// an upper bound on how long a single-threaded server was busy, and
	// equal to ServiceTime when requests never overlap.
	BusyTime time.Duration
}

// Requests is Reads + Writes + Auth.
func (s ServiceCount) Requests() int { return s.Reads + s.Writes + s.Auth }

type serviceCounter struct {
	ServiceCount
	inflight  int
	busySince time.Time // while inflight > 0
}

// NewCountingCloud starts the proxies in front of the Keystone [Keystone]
// attaches to and of the compute, block-storage and network services in its
// catalog, and stops them when the test ends. Without Keystone the test is
// skipped, or fails under CI=true, as with [Keystone].
func NewCountingCloud(tb testing.TB) *CountingCloud {
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
	c, err := newCountingCloud(ks.AuthURL, upstreams)
	if err != nil {
		tb.Fatalf("testenv: %v", err)
	}
	tb.Cleanup(c.close)
	return c
}

// countingUpstreams maps service names to the origins (scheme://host:port)
// of their endpoints, the proxy target first: OS_AUTH_URL's for identity.
func countingUpstreams(authURL string, entries []tokens.CatalogEntry) (map[string][]string, error) {
	upstreams := make(map[string][]string)
	owner := make(map[string]string) // origin -> service name
	add := func(name, rawURL string) error {
		o, err := urlOrigin(rawURL)
		if err != nil {
			return fmt.Errorf("catalog endpoint of %s: %w", name, err)
		}
		if prev, ok := owner[o]; ok {
			if prev != name {
				return fmt.Errorf("%s and %s share the origin %s: a proxy per origin cannot tell them apart", prev, name, o)
			}
			return nil
		}
		owner[o] = name
		upstreams[name] = append(upstreams[name], o)
		return nil
	}
	if err := add("identity", authURL); err != nil {
		return nil, err
	}
	for _, e := range entries {
		name, ok := countingServiceTypes[e.Type]
		if !ok {
			continue
		}
		for _, ep := range e.Endpoints {
			if err := add(name, ep.URL); err != nil {
				return nil, err
			}
		}
	}
	return upstreams, nil
}

func urlOrigin(rawURL string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", err
	}
	if u.Scheme == "" || u.Host == "" {
		return "", fmt.Errorf("%q is not an absolute URL", rawURL)
	}
	return u.Scheme + "://" + u.Host, nil
}

// newCountingCloud fronts upstreams (service name -> origins, the first one
// the target) with one proxy per service; authURL must be on identity's.
func newCountingCloud(authURL string, upstreams map[string][]string) (*CountingCloud, error) {
	return newCountingCloudWith(authURL, upstreams, nil)
}

// newCountingCloudWith is newCountingCloud whose proxies send upstream
// through wrap(service, counting transport) when wrap is set (faults).
func newCountingCloudWith(authURL string, upstreams map[string][]string, wrap func(string, http.RoundTripper) http.RoundTripper) (*CountingCloud, error) {
	c := &CountingCloud{
		proxies: make(map[string]*httptest.Server),
		counts:  make(map[string]*serviceCounter),
	}
	c.transport = &http.Transport{
		Proxy:               nil, // loopback; never an HTTP proxy from the environment
		DisableCompression:  true,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     30 * time.Second,
	}
	var pairs []string
	for _, name := range slices.Sorted(maps.Keys(upstreams)) {
		origins := upstreams[name]
		target, err := url.Parse(origins[0])
		if err != nil {
			c.close()
			return nil, err
		}
		var transport http.RoundTripper = &countingTransport{cloud: c, service: name, base: c.transport}
		if wrap != nil {
			transport = wrap(name, transport)
		}
		rp := &httputil.ReverseProxy{
			Rewrite: func(r *httputil.ProxyRequest) {
				r.SetURL(target)
				// Plain bodies, so that ModifyResponse can rewrite them.
				r.Out.Header.Del("Accept-Encoding")
			},
			Transport:      transport,
			ModifyResponse: c.rewriteResponse,
			ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
				http.Error(w, "testenv counting proxy: "+name+": "+err.Error(), http.StatusBadGateway)
			},
		}
		p := httptest.NewServer(rp)
		c.proxies[name] = p
		c.counts[name] = newServiceCounter()
		for _, o := range origins {
			// The origin, ending a JSON string or followed by a path, so
			// that :5000 does not match :50001.
			for _, sep := range []string{"/", `"`} {
				pairs = append(pairs, o+sep, p.URL+sep)
			}
		}
	}
	c.replacer = strings.NewReplacer(pairs...)

	id := c.proxies["identity"]
	u, err := url.Parse(authURL)
	if err != nil || id == nil {
		c.close()
		return nil, fmt.Errorf("auth URL %q: not an identity upstream (%v)", authURL, err)
	}
	if o, _ := urlOrigin(authURL); !slices.Contains(upstreams["identity"], o) {
		c.close()
		return nil, fmt.Errorf("auth URL %q: not an identity upstream", authURL)
	}
	c.AuthURL = id.URL + u.EscapedPath()
	return c, nil
}

func newServiceCounter() *serviceCounter {
	return &serviceCounter{ServiceCount: ServiceCount{
		ByMethod: map[string]int{}, ByPath: map[string]int{}, ByStatus: map[int]int{},
	}}
}

func (c *CountingCloud) close() {
	for _, p := range c.proxies {
		p.Close()
	}
	c.transport.CloseIdleConnections()
}

// ProxyOrigin is the proxy's scheme://host:port for service ("identity",
// "compute", "block-storage" or "network"), or "" if it is not fronted.
func (c *CountingCloud) ProxyOrigin(service string) string {
	if p := c.proxies[service]; p != nil {
		return p.URL
	}
	return ""
}

// Counts returns a copy of the counts, with an entry for every fronted
// service, whether asked anything or not.
func (c *CountingCloud) Counts() map[string]ServiceCount {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]ServiceCount, len(c.counts))
	for name, sc := range c.counts {
		s := sc.ServiceCount
		s.ByMethod = maps.Clone(sc.ByMethod)
		s.ByPath = maps.Clone(sc.ByPath)
		s.ByStatus = maps.Clone(sc.ByStatus)
		if sc.inflight > 0 {
			s.BusyTime += now.Sub(sc.busySince)
		}
		out[name] = s
	}
	return out
}

// Reset zeroes the counts. Requests in flight are counted when they end,
// and their time only from the reset on.
func (c *CountingCloud) Reset() {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	for name, sc := range c.counts {
		fresh := newServiceCounter()
		fresh.inflight = sc.inflight
		if sc.inflight > 0 {
			fresh.busySince = now
		}
		c.counts[name] = fresh
	}
	c.resetAt = now
}

// Env returns the process environment with OS_AUTH_URL pointing at the
// proxy, and without OS_CLOUD (whose clouds.yaml would bypass it), for
// subprocesses such as the openstack CLI: cmd.Env = c.Env().
func (c *CountingCloud) Env() []string {
	env := []string{"OS_AUTH_URL=" + c.AuthURL}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k != "OS_AUTH_URL" && k != "OS_CLOUD" {
			env = append(env, kv)
		}
	}
	return env
}

// rewriteResponse points upstream URLs in the Location header and JSON
// bodies at the proxies.
func (c *CountingCloud) rewriteResponse(resp *http.Response) error {
	if loc := resp.Header.Get("Location"); loc != "" {
		resp.Header.Set("Location", c.replacer.Replace(loc))
	}
	if enc := resp.Header.Get("Content-Encoding"); enc != "" && enc != "identity" {
		return nil
	}
	mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" && !strings.HasSuffix(mt, "+json") {
		return nil
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err // the proxy closes the body and answers 502
	}
	rewritten := c.replacer.Replace(string(body))
	// Closing the original body, once relayed, ends the request's time.
	resp.Body = struct {
		io.Reader
		io.Closer
	}{strings.NewReader(rewritten), resp.Body}
	resp.ContentLength = int64(len(rewritten))
	resp.Header.Set("Content-Length", strconv.Itoa(len(rewritten)))
	resp.TransferEncoding = nil
	return nil
}

// countingTransport counts and times the requests a proxy sends upstream.
type countingTransport struct {
	cloud   *CountingCloud
	service string
	base    http.RoundTripper
}

func (t *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	req := countedRequest{
		service: t.service,
		method:  r.Method,
		path:    r.Method + " " + normaliseAPIPath(r.URL.Path),
		auth: t.service == "identity" && r.Method == http.MethodPost &&
			strings.HasSuffix(strings.TrimRight(r.URL.Path, "/"), "/auth/tokens"),
		start: t.cloud.begin(t.service),
	}
	resp, err := t.base.RoundTrip(r)
	if err != nil {
		t.cloud.end(req, 0)
		return nil, err
	}
	resp.Body = &timedBody{ReadCloser: resp.Body, done: func() { t.cloud.end(req, resp.StatusCode) }}
	return resp, nil
}

type countedRequest struct {
	service, method, path string
	auth                  bool
	start                 time.Time
}

// timedBody calls done once, when closed.
type timedBody struct {
	io.ReadCloser
	once sync.Once
	done func()
}

func (b *timedBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(b.done)
	return err
}

func (c *CountingCloud) begin(service string) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	sc := c.counts[service]
	if sc.inflight == 0 {
		sc.busySince = now
	}
	sc.inflight++
	return now
}

func (c *CountingCloud) end(r countedRequest, status int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	sc := c.counts[r.service]
	elapsed := now.Sub(r.start)
	if r.start.Before(c.resetAt) { // began before a Reset
		elapsed = now.Sub(c.resetAt)
	}
	switch {
	case r.auth:
		sc.Auth++
		sc.AuthTime += elapsed
	case r.method == http.MethodGet || r.method == http.MethodHead:
		sc.Reads++
	default:
		sc.Writes++
	}
	sc.ServiceTime += elapsed
	sc.ByMethod[r.method]++
	sc.ByPath[r.path]++
	sc.ByStatus[status]++
	sc.inflight--
	if sc.inflight == 0 {
		sc.BusyTime += now.Sub(sc.busySince)
	}
}

// normaliseAPIPath replaces the IDs in an API path by {id}: segments that
// are all digits, or at least 8 bytes long with a digit in them.
func normaliseAPIPath(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		if s != "" && isIDSegment(s) {
			segs[i] = "{id}"
		}
	}
	return strings.Join(segs, "/")
}

func isIDSegment(s string) bool {
	digits := 0
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			digits++
		}
	}
	return digits == len(s) || digits > 0 && len(s) >= 8
}
