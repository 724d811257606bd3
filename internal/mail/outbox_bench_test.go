package mail

import (
	"context"
	"fmt"
	"log/slog"
	"net/mail"
	"path/filepath"
	"testing"
	"time"

	"github.com/kaizen-onboard/kaizen/internal/config"
	"github.com/kaizen-onboard/kaizen/internal/store"
	"github.com/kaizen-onboard/kaizen/internal/testenv"
	"github.com/kaizen-onboard/kaizen/templates"
)

// connectionPerMessage opens, uses and closes a new SMTP connection for
// every message: what a naive sender (and MOC's scripts) did.
type connectionPerMessage struct {
	cfg  config.SMTP
	opts SMTPOptions
}

func (c connectionPerMessage) Send(ctx context.Context, from string, to []string, msg []byte) error {
	t, err := NewSMTP(c.cfg, c.opts)
	if err != nil {
		return err
	}
	defer t.Close()
	return t.Send(ctx, from, to, msg)
}

// BenchmarkOutbox queues 10,000 welcome mails and delivers them to the
// in-process SMTP server (STARTTLS and AUTH), once through the connection
// pool and once with a connection per message, on each store backend. It
// reports both delivery rates and their ratio (goal: pooled at least 5x).
func BenchmarkOutbox(b *testing.B) {
	const messages = 10_000
	backends := []struct {
		name string
		url  func(b *testing.B) string
	}{
		{"sqlite", func(b *testing.B) string { return "sqlite://" + filepath.Join(b.TempDir(), "state.db") }},
		{"postgres", func(b *testing.B) string { return testenv.Postgres(b) }},
	}
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			srv := testenv.NewSMTP(b)
			cfg := config.Defaults().Mail.SMTP
			cfg.Host, cfg.Port = srv.Host(), srv.Port()
			cfg.Username, cfg.Password = srv.Username(), config.NewSecret(srv.Password(), "test")
			cfg.Timeout = config.Dur(30 * time.Second)
			opts := SMTPOptions{RootCAs: srv.RootCAs()}
			pooled, err := NewSMTP(cfg, opts)
			if err != nil {
				b.Fatal(err)
			}
			defer pooled.Close()

			var rates [2]float64
			for b.Loop() {
				for i, tr := range []Transport{pooled, connectionPerMessage{cfg, opts}} {
					rates[i] = deliverBatch(b, be.url(b), tr, srv, messages, cfg.PoolSize)
				}
			}
			b.ReportMetric(rates[0], "pooled-msgs/s")
			b.ReportMetric(rates[1], "per-connection-msgs/s")
			b.ReportMetric(rates[0]/rates[1], "pooled/per-connection")
		})
	}
}

// deliverBatch queues n messages in a fresh store and drains them through
// tr, returning delivered messages per second of draining.
func deliverBatch(b *testing.B, url string, tr Transport, srv *testenv.SMTPServer, n, workers int) float64 {
	b.Helper()
	ctx := b.Context()
	st, err := store.Open(ctx, url, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	r, err := NewRenderer(templates.FS, "", testCommon())
	if err != nil {
		b.Fatal(err)
	}
	c, err := NewComposer("Example Research Cloud <cloud@example.org>", "", time.Now, seeded(7))
	if err != nil {
		b.Fatal(err)
	}
	o := NewOutbox(st, r, c, tr, OutboxOptions{Workers: workers, Batch: 500, Keys: testKeys(b, testKeyA)})
	data, _ := Example(KindWelcome)
	for i := range n {
		to := []mail.Address{{Address: fmt.Sprintf("user%d@example.edu", i)}}
		if _, _, err := o.Queue(ctx, fmt.Sprintf("welcome:%d", i), KindWelcome, to, data); err != nil {
			b.Fatal(err)
		}
	}
	srv.Reset()
	start := time.Now()
	rep, err := o.Drain(ctx)
	elapsed := time.Since(start)
	if err != nil {
		b.Fatal(err)
	}
	if rep.Sent != n || len(srv.Messages()) != n {
		b.Fatalf("delivered %d (server has %d), want %d: %+v", rep.Sent, len(srv.Messages()), n, rep.Failures[:min(3, len(rep.Failures))])
	}
	return float64(n) / elapsed.Seconds()
}
