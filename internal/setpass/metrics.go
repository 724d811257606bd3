package setpass

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are setpass's counters. Labels are fixed words only: never a
// token, user or address.
type Metrics struct {
	issued       prometheus.Counter
	consumed     prometheus.Counter
	pinFailures  prometheus.Counter
	lockouts     prometheus.Counter
	pinLocks     prometheus.Counter
	expiriesSeen prometheus.Counter
	keystoneErrs *prometheus.CounterVec
	rateLimited  prometheus.Counter
	purged       prometheus.Counter
	// Password resets. No counter tells outcomes of /reset apart: the
	// page answers the same whether or not the account exists, and a
	// public /metrics must not tell an address's owner either.
	resetsIssued  prometheus.Counter
	resetRequests prometheus.Counter
}

// NewMetrics registers the counters with reg (the program's own registry,
// not the global default, so tests can build many handlers).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: "setpass", Name: name, Help: help})
	}
	m := &Metrics{
		issued:      c("tokens_issued_total", "Set-password links issued through PUT /token."),
		consumed:    c("tokens_consumed_total", "Passwords set through a link."),
		pinFailures: c("pin_failures_total", "Wrong PINs entered."),
		lockouts:    c("lockouts_total", "Links locked after the last allowed wrong PIN."),
		pinLocks: c("pin_locks_total",
			"People's PINs locked after setpass.pin_failures_per_user wrong PINs across their links (the helpdesk must act)."),
		expiriesSeen: c("expired_links_seen_total", "Requests that presented an expired link."),
		keystoneErrs: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "setpass", Name: "keystone_errors_total",
			Help: "Keystone calls that failed for reasons other than the caller's input."}, []string{"op"}),
		rateLimited: c("rate_limited_total", "Form submissions refused by the per-client rate limit."),
		purged:      c("tokens_purged_total", "Expired or used links deleted."),
		resetsIssued: c("reset_links_issued_total",
			"Password-reset links issued through PUT /reset (the helpdesk). Links of the /reset page are not counted."),
		resetRequests: c("reset_requests_total", "POSTs to the self-service /reset page."),
	}
	for _, col := range []prometheus.Collector{m.issued, m.consumed, m.pinFailures, m.lockouts, m.pinLocks,
		m.expiriesSeen, m.keystoneErrs, m.rateLimited, m.purged, m.resetsIssued, m.resetRequests} {
		if err := reg.Register(col); err != nil {
			return nil, fmt.Errorf("registering setpass metrics: %w", err)
		}
	}
	return m, nil
}
