package quotareq

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"
)

// Rules are Adjutant's auto-approval rules (UpdateProjectQuotasAction),
// for requests nobody has approved yet:
//
//   - the request must ask for exactly a preset (its values, no others);
//     custom quotas always need a person;
//   - the project's current quotas count as the preset each of whose
//     values they are within Threshold of (0.1: 10%); quotas matching no
//     preset need a person;
//   - a preset not larger than the current one approves itself, always;
//   - the next preset up approves itself when the project's quotas have
//     not changed for Days days;
//   - anything larger needs a person.
type Rules struct {
	Presets map[string]map[string]int64
	// Order lists the presets from smallest to largest (OrderPresets).
	Order     []string
	Days      int
	Threshold float64
}

// Decision is what the rules made of one request.
type Decision struct {
	Approved bool
	Reason   string
}

// Decide applies the rules to a request asking for want (the values asked,
// ports included) of a project whose quotas are current and last changed
// at lastChange (zero: never, as far as kaizen knows).
func (r Rules) Decide(current, want map[string]int64, lastChange, now time.Time) Decision {
	target := r.exact(want, current)
	if target == "" {
		return Decision{Reason: "custom quotas (not exactly a preset) need a person's approval"}
	}
	from := r.Size(current)
	if from == "" {
		return Decision{Reason: fmt.Sprintf("the project's current quotas match no preset within %s, so %s needs a person's approval",
			percent(r.Threshold), target)}
	}
	ti, ci := slices.Index(r.Order, target), slices.Index(r.Order, from)
	switch {
	case ti <= ci:
		return Decision{Approved: true, Reason: fmt.Sprintf("auto-approved: %s is not larger than the current preset %s", target, from)}
	case ti > ci+1:
		return Decision{Reason: fmt.Sprintf("%s is more than one preset up from %s: needs a person's approval", target, from)}
	case !lastChange.IsZero() && now.Sub(lastChange) < time.Duration(r.Days)*24*time.Hour:
		return Decision{Reason: fmt.Sprintf("the quotas changed on %s, less than %d days ago: %s needs a person's approval",
			lastChange.UTC().Format(time.DateOnly), r.Days, target)}
	}
	return Decision{Approved: true, Reason: fmt.Sprintf("auto-approved: one preset up (%s to %s), no change for %d days", from, target, r.Days)}
}

// exact is the preset whose values are exactly want's, "" for none. Only
// the quotas managed here (those current has) are compared.
func (r Rules) exact(want, current map[string]int64) string {
	for _, name := range r.Order {
		p := map[string]int64{}
		for k, v := range r.Presets[name] {
			if _, managed := current[k]; managed {
				p[k] = v
			}
		}
		if len(p) > 0 && maps.Equal(p, want) {
			return name
		}
	}
	return ""
}

// Size is the preset current counts as: the one each of whose values
// current is within Threshold of (the closest, when several are), "" for
// none. A key current lacks is not compared; -1 (unlimited) matches only
// -1.
func (r Rules) Size(current map[string]int64) string {
	best, bestDev := "", math.Inf(1)
	for _, name := range r.Order {
		worst, compared := 0.0, 0
		for k, pv := range r.Presets[name] {
			cv, ok := current[k]
			if !ok {
				continue
			}
			compared++
			worst = math.Max(worst, deviation(cv, pv))
		}
		if compared > 0 && worst <= r.Threshold+1e-9 && worst < bestDev {
			best, bestDev = name, worst
		}
	}
	return best
}

// deviation is |got-want|/want, 0 for equal values, +Inf when only one is
// unlimited or want is 0.
func deviation(got, want int64) float64 {
	switch {
	case got == want:
		return 0
	case got < 0 || want <= 0:
		return math.Inf(1)
	}
	return math.Abs(float64(got-want)) / float64(want)
}

func percent(f float64) string { return fmt.Sprintf("%g%%", f*100) }

// ErrUnordered: the presets cannot be ordered by their values.
var ErrUnordered = errors.New("the quota presets are not ordered by size")

// OrderPresets returns the preset names from smallest to largest: order
// when given (every name must be a preset), else sorted by their values,
// each at least the one before in every quota both set (unlimited counts
// as the largest). Presets that cannot be ordered so are an error wrapping
// ErrUnordered, naming a pair.
func OrderPresets(presets map[string]map[string]int64, order []string) ([]string, error) {
	if len(order) > 0 {
		for _, n := range order {
			if _, ok := presets[n]; !ok {
				return nil, fmt.Errorf("presets_ascending names %q, which is not a preset", n)
			}
		}
		return slices.Clone(order), nil
	}
	names := slices.Sorted(maps.Keys(presets))
	weight := func(n string) float64 {
		w := 0.0
		for _, v := range presets[n] {
			if v < 0 {
				v = math.MaxInt32
			}
			w += float64(v)
		}
		return w
	}
	slices.SortStableFunc(names, func(a, b string) int { return cmp.Compare(weight(a), weight(b)) })
	for i := 1; i < len(names); i++ {
		a, b := presets[names[i-1]], presets[names[i]]
		for k, av := range a {
			bv, ok := b[k]
			if ok && larger(av, bv) {
				return nil, fmt.Errorf("%w: %s has more %s than %s but is smaller overall; list them in quota_requests.auto_approve.presets_ascending",
					ErrUnordered, names[i-1], k, names[i])
			}
		}
	}
	return names, nil
}

// larger reports a > b with -1 as unlimited.
func larger(a, b int64) bool {
	switch {
	case a == b, b < 0:
		return false
	case a < 0:
		return true
	}
	return a > b
}

// PortsPerInstance and PortsPerNetwork make the MOC network-port rule:
// when a request changes instances or networks and does not ask for ports,
// the port quota becomes
//
//	max(current ports, 2 × instances + 3 × networks)
//
// Each instance has a port on every network it joins; two per instance
// covers the usual one or two interfaces. Each network of the project
// spends ports of its own: a DHCP port for its subnet and a router
// interface, and one spare (a second DHCP agent, a load balancer's VIP).
// Floating IPs and router gateways use ports that count against no
// project. The port quota only grows by this rule: an explicit request (or
// a preset's port value) is the way to lower it, and Neutron would not
// take back ports in use anyway. Unlimited instances or networks make
// ports unlimited.
const (
	PortsPerInstance = 2
	PortsPerNetwork  = 3
)

// portRule sets want["port"] by the rule above when want changes
// instances or networks and asked no port, and the port quota is managed
// (in current).
func portRule(current, want map[string]int64, portAsked bool) {
	_, hasInstances := want["instances"]
	_, hasNetworks := want["network"]
	cur, managed := current["port"]
	if portAsked || !managed || (!hasInstances && !hasNetworks) {
		return
	}
	get := func(k string) int64 {
		if v, ok := want[k]; ok {
			return v
		}
		return current[k]
	}
	i, n := get("instances"), get("network")
	ports := int64(-1)
	if i >= 0 && n >= 0 && cur >= 0 {
		ports = max(cur, PortsPerInstance*i+PortsPerNetwork*n)
	}
	if ports != cur {
		want["port"] = ports
	}
}
