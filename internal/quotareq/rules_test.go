package quotareq

import (
	"errors"
	"maps"
	"strings"
	"testing"
	"time"
)

var testPresets = map[string]map[string]int64{
	"small":  {"instances": 4, "cores": 8, "ram": 16384, "port": 40},
	"medium": {"instances": 8, "cores": 16, "ram": 32768, "port": 80},
	"large":  {"instances": 16, "cores": 32, "ram": 65536, "port": 160},
}

func testRules(t *testing.T) Rules {
	t.Helper()
	order, err := OrderPresets(testPresets, nil)
	if err != nil {
		t.Fatal(err)
	}
	return Rules{Presets: testPresets, Order: order, Days: 30, Threshold: 0.1}
}

func TestOrderPresets(t *testing.T) {
	got, err := OrderPresets(testPresets, nil)
	if err != nil || strings.Join(got, ",") != "small,medium,large" {
		t.Fatalf("OrderPresets = %v, %v; want small,medium,large", got, err)
	}
	odd := map[string]map[string]int64{"cpu": {"cores": 64, "ram": 1024}, "mem": {"cores": 2, "ram": 262144}}
	if _, err := OrderPresets(odd, nil); !errors.Is(err, ErrUnordered) {
		t.Errorf("OrderPresets(unordered) = %v, want ErrUnordered", err)
	}
	if got, err := OrderPresets(odd, []string{"cpu", "mem"}); err != nil || strings.Join(got, ",") != "cpu,mem" {
		t.Errorf("OrderPresets with an order = %v, %v", got, err)
	}
	if _, err := OrderPresets(odd, []string{"cpu", "nope"}); err == nil {
		t.Error("OrderPresets with an unknown name: no error")
	}
	unlimited := map[string]map[string]int64{"big": {"cores": -1}, "some": {"cores": 100}}
	if got, err := OrderPresets(unlimited, nil); err != nil || strings.Join(got, ",") != "some,big" {
		t.Errorf("OrderPresets(unlimited largest) = %v, %v", got, err)
	}
}

func TestSize(t *testing.T) {
	r := testRules(t)
	with := func(name string, mod map[string]int64) map[string]int64 {
		m := maps.Clone(testPresets[name])
		maps.Copy(m, mod)
		return m
	}
	for _, tc := range []struct {
		name    string
		current map[string]int64
		want    string
	}{
		{"exact", with("medium", nil), "medium"},
		{"within 10%", with("small", map[string]int64{"port": 43, "ram": 15000}), "small"},
		{"just over 10%", with("small", map[string]int64{"ram": 18100}), ""},
		{"unlimited matches nothing limited", with("large", map[string]int64{"cores": -1}), ""},
		{"extra keys ignored", with("large", map[string]int64{"volumes": 3}), "large"},
		{"nothing comparable", map[string]int64{"volumes": 3}, ""},
	} {
		if got := r.Size(tc.current); got != tc.want {
			t.Errorf("%s: Size = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestDecide(t *testing.T) {
	r := testRules(t)
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	old, recent := now.AddDate(0, 0, -31), now.AddDate(0, 0, -3)
	for _, tc := range []struct {
		name          string
		current, want map[string]int64
		last          time.Time
		approved      bool
		reason        string
	}{
		{"smaller preset, even just changed", testPresets["large"], testPresets["medium"], recent, true, "not larger"},
		{"same preset", testPresets["medium"], testPresets["medium"], recent, true, "not larger"},
		{"one up, quiet for 31 days", testPresets["small"], testPresets["medium"], old, true, "one preset up (small to medium)"},
		{"one up, never changed", testPresets["small"], testPresets["medium"], time.Time{}, true, "one preset up"},
		{"one up, changed 3 days ago", testPresets["small"], testPresets["medium"], recent, false, "less than 30 days ago"},
		{"two up", testPresets["small"], testPresets["large"], old, false, "more than one preset up"},
		{"custom current", map[string]int64{"instances": 5, "cores": 11, "ram": 16384, "port": 40}, testPresets["medium"], old, false, "match no preset within 10%"},
		{"custom request", testPresets["small"], map[string]int64{"instances": 5, "cores": 8, "ram": 16384, "port": 40}, old, false, "custom quotas"},
		{"part of a preset is custom", testPresets["small"], map[string]int64{"cores": 16}, old, false, "custom quotas"},
	} {
		d := r.Decide(tc.current, tc.want, tc.last, now)
		if d.Approved != tc.approved || !strings.Contains(d.Reason, tc.reason) {
			t.Errorf("%s: Decide = %+v, want approved %v with %q", tc.name, d, tc.approved, tc.reason)
		}
	}
	// Only managed quotas count: a preset key the services do not report
	// is left out of the comparison.
	current := map[string]int64{"instances": 4, "cores": 8, "ram": 16384}
	want := map[string]int64{"instances": 8, "cores": 16, "ram": 32768}
	if d := r.Decide(current, want, old, now); !d.Approved {
		t.Errorf("Decide without ports managed = %+v, want approved", d)
	}
}

func TestPortRule(t *testing.T) {
	current := map[string]int64{"instances": 10, "network": 2, "port": 30}
	for _, tc := range []struct {
		name  string
		want  map[string]int64
		asked bool
		port  int64 // -2: not set
	}{
		{"instances up: 2*20+3*2", map[string]int64{"instances": 20}, false, 46},
		{"networks up: 2*10+3*5", map[string]int64{"network": 5}, false, 35},
		{"never lowered", map[string]int64{"instances": 2}, false, -2},
		{"ports asked", map[string]int64{"instances": 20, "port": 25}, true, 25},
		{"unrelated change", map[string]int64{"cores": 40}, false, -2},
		{"unlimited instances", map[string]int64{"instances": -1}, false, -1},
	} {
		w := maps.Clone(tc.want)
		portRule(current, w, tc.asked)
		got, ok := w["port"]
		if !ok {
			got = -2
		}
		if got != tc.port {
			t.Errorf("%s: port = %d, want %d", tc.name, got, tc.port)
		}
	}
	// Not managed (no port quota reported): nothing.
	w := map[string]int64{"instances": 50}
	portRule(map[string]int64{"instances": 1}, w, false)
	if _, ok := w["port"]; ok {
		t.Error("port set though the network service is not managed")
	}
}
