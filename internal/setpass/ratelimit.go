package setpass

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// ParseTrustedProxies reads setpass.trusted_proxies (addresses or CIDR ranges).
// IPv4-mapped entries become IPv4, as clientAddr unmaps the addresses it
// compares with them.
func ParseTrustedProxies(list []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(list))
	for _, s := range list {
		if p, err := netip.ParsePrefix(s); err == nil {
			if p.Addr().Is4In6() && p.Bits() >= 96 {
				p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("trusted proxy %q is neither an address nor a CIDR range", s)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

func trusted(a netip.Addr, proxies []netip.Prefix) bool {
	for _, p := range proxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// clientAddr is the address a request came from. Behind trusted proxies it
// is the right-most X-Forwarded-For entry that is not a trusted proxy:
// entries to its left were written by the client and prove nothing.
func clientAddr(r *http.Request, proxies []netip.Prefix) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	peer = peer.Unmap().WithZone("")
	if !trusted(peer, proxies) {
		return peer
	}
	var hops []string
	for _, h := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(h, ",")...)
	}
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break // garbage: keep the last hop a trusted proxy vouched for
		}
		client = a.Unmap().WithZone("")
		if !trusted(client, proxies) {
			break
		}
	}
	return client
}

// limiterKey groups IPv6 clients by /64, since one host usually holds a
// whole /64 and could otherwise pick a fresh address per request.
func limiterKey(a netip.Addr) string {
	if !a.IsValid() {
		return "unknown"
	}
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

// limiters holds one token bucket per client, at most max of them: when
// full, idle entries go first, then the least recently seen.
type limiters struct {
	mu      sync.Mutex
	every   rate.Limit
	burst   int
	max     int
	idle    time.Duration
	entries map[string]*limiterEntry
	swept   time.Time
}

type limiterEntry struct {
	lim  *rate.Limiter
	seen time.Time
}

func newLimiters(perMinute, burst, max int) *limiters {
	return newLimitersRate(rate.Limit(float64(perMinute)/60), burst, max)
}

// newLimitersEvery allows one request per interval, in bursts of burst.
func newLimitersEvery(interval time.Duration, burst, max int) *limiters {
	return newLimitersRate(rate.Every(interval), burst, max)
}

func newLimitersRate(every rate.Limit, burst, max int) *limiters {
	// Idle once the bucket has refilled: forgetting it then changes nothing.
	idle := time.Duration(float64(burst)/float64(every)*float64(time.Second)) + time.Minute
	return &limiters{every: every, burst: burst, max: max, idle: idle, entries: make(map[string]*limiterEntry)}
}

// allow reports whether key may make one more request at now.
func (l *limiters) allow(key string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.swept) > l.idle {
		l.sweep(now)
	}
	e, ok := l.entries[key]
	if !ok {
		if len(l.entries) >= l.max {
			l.sweep(now)
			if len(l.entries) >= l.max {
				l.evictOldest()
			}
		}
		e = &limiterEntry{lim: rate.NewLimiter(l.every, l.burst)}
		l.entries[key] = e
	}
	e.seen = now
	return e.lim.AllowN(now, 1)
}

func (l *limiters) sweep(now time.Time) {
	l.swept = now
	for k, e := range l.entries {
		if now.Sub(e.seen) > l.idle {
			delete(l.entries, k)
		}
	}
}

func (l *limiters) evictOldest() {
	var oldest string
	var at time.Time
	for k, e := range l.entries {
		if oldest == "" || e.seen.Before(at) {
			oldest, at = k, e.seen
		}
	}
	delete(l.entries, oldest)
}

func (l *limiters) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.entries)
}
