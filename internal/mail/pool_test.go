package mail

import (
	"sync"
	"testing"
	"time"

	"github.com/kaizen-onboard/kaizen/internal/testenv"
)

func TestSMTPPoolBounds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		poolSize  int
		sends     int
		parallel  bool
		wantConns int // exact for sequential sends, an upper bound otherwise
	}{
		{name: "sequential sends reuse one connection", poolSize: 3, sends: 25, wantConns: 1},
		{name: "concurrent sends stay within the pool", poolSize: 3, sends: 60, parallel: true, wantConns: 3},
		{name: "pool of one serialises", poolSize: 1, sends: 20, parallel: true, wantConns: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := testenv.NewSMTP(t)
			cfg := smtpConfigFor(s)
			cfg.PoolSize = tt.poolSize
			tr := newTestSMTP(t, cfg, trusting(s))

			sendN(t, tr, tt.sends, tt.parallel)

			if n := len(s.Messages()); n != tt.sends {
				t.Errorf("server recorded %d messages, want %d", n, tt.sends)
			}
			got := s.Connections()
			if !tt.parallel && got != tt.wantConns || got > tt.wantConns {
				t.Errorf("connections = %d, want at most %d", got, tt.wantConns)
			}
			for _, m := range s.Messages() {
				if !m.TLS || m.AuthUser == "" {
					t.Fatalf("message on connection %d: TLS=%v AuthUser=%q", m.ConnID, m.TLS, m.AuthUser)
				}
			}
		})
	}
}

func TestSMTPPoolRecovers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		outage  func(*testing.T, *testenv.SMTPServer, *SMTP)
		wantErr bool // whether the send during the outage fails
	}{
		{name: "server down and up again", wantErr: true, outage: func(t *testing.T, s *testenv.SMTPServer, _ *SMTP) {
			s.SetDown(true)
			t.Cleanup(func() { s.SetDown(false) })
		}},
		// Dropping the connections while idle, then recovering at once: the
		// stale connection is noticed at RSET and replaced transparently.
		{name: "idle connections dropped", outage: func(t *testing.T, s *testenv.SMTPServer, _ *SMTP) {
			s.SetDown(true)
			s.SetDown(false)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := testenv.NewSMTP(t)
			cfg := smtpConfigFor(s)
			cfg.PoolSize = 2
			tr := newTestSMTP(t, cfg, trusting(s))
			sendN(t, tr, 4, true)

			tt.outage(t, s, tr)
			err := tr.Send(t.Context(), testSender, []string{testRcpt}, testMessage("during"))
			if (err != nil) != tt.wantErr {
				t.Fatalf("Send during the outage: %v, want error %v", err, tt.wantErr)
			}
			t.Logf("error: %v", err)
			if err != nil && IsPermanent(err) {
				t.Errorf("IsPermanent(%v) = true, want false", err)
			}

			s.SetDown(false)
			sendN(t, tr, 4, true)
			want := 8
			if !tt.wantErr {
				want++
			}
			if n := len(s.Messages()); n != want {
				t.Errorf("server recorded %d messages, want %d", n, want)
			}
		})
	}
}

func TestSMTPPoolIdleLimit(t *testing.T) {
	t.Parallel()
	s := testenv.NewSMTP(t)
	var mu sync.Mutex
	now := testNow
	clock := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return now
	}
	tr := newTestSMTP(t, smtpConfigFor(s), SMTPOptions{RootCAs: s.RootCAs(), Now: clock})

	steps := []struct {
		name      string
		idle      time.Duration
		wantConns int
	}{
		{name: "first send connects", wantConns: 1},
		{name: "briefly idle connection is reused", idle: idleLimit / 2, wantConns: 1},
		{name: "long idle connection is replaced", idle: idleLimit + time.Second, wantConns: 2},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			mu.Lock()
			now = now.Add(st.idle)
			mu.Unlock()
			sendN(t, tr, 1, false)
			if n := s.Connections(); n != st.wantConns {
				t.Errorf("connections = %d, want %d", n, st.wantConns)
			}
		})
	}
}
