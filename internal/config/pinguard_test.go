package config

import (
	"strings"
	"testing"
	"time"
)

func TestPINFailureSettings(t *testing.T) {
	osEnv(t)
	t.Run("defaults", func(t *testing.T) {
		cfg, err := parse(t, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		if s := cfg.Setpass; s.PINFailuresPerUser != 10 || s.PINFailureWindow.D != 24*time.Hour {
			t.Errorf("defaults: %d wrong PINs in %v, want 10 in 24h", s.PINFailuresPerUser, s.PINFailureWindow.D)
		}
	})
	t.Run("set", func(t *testing.T) {
		cfg, err := parse(t, "[setpass]\npin_failures_per_user = 15\npin_failure_window = \"12h\"\n", nil)
		if err != nil {
			t.Fatal(err)
		}
		if s := cfg.Setpass; s.PINFailuresPerUser != 15 || s.PINFailureWindow.D != 12*time.Hour {
			t.Errorf("read %d in %v, want 15 in 12h", s.PINFailuresPerUser, s.PINFailureWindow.D)
		}
	})
	for _, tt := range []struct{ name, doc, key, msg string }{
		{"zero limit", "pin_failures_per_user = 0", "setpass.pin_failures_per_user", "at least 1"},
		{"short window", "pin_failure_window = \"30s\"", "setpass.pin_failure_window", "at least 1m"},
		{"malformed window", "pin_failure_window = \"a day\"", "setpass.pin_failure_window", "malformed duration"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parse(t, "[setpass]\n"+tt.doc+"\n", nil)
			for _, p := range problems(t, err) {
				if p.Key == tt.key && strings.Contains(p.Message, tt.msg) {
					return
				}
			}
			t.Errorf("want problem %s: ...%s..., got:\n%v", tt.key, tt.msg, err)
		})
	}
}
