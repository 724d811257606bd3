package reminder

import (
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kaizen-onboard/kaizen/internal/config"
	"github.com/kaizen-onboard/kaizen/internal/mail"
	"github.com/kaizen-onboard/kaizen/internal/store"
	"github.com/kaizen-onboard/kaizen/internal/testenv/mailtest"
)

type failingTransport struct{}

func (failingTransport) Send(context.Context, string, []string, []byte) error {
	return errors.New("451 try again later")
}

func TestOutboxJob(t *testing.T) {
	st := openSQLite(t)
	ctx := context.Background()
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	clock := NewSimClock(now)
	dir := filepath.Join(t.TempDir(), "mail")
	md, err := mail.NewMaildir(dir, clock.Now, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	queue := func(key string, at time.Time) {
		t.Helper()
		body := "From: kaizen@localhost\r\nTo: ada@example.edu\r\nSubject: " + key + "\r\n\r\nhello\r\n"
		if _, _, err := st.Enqueue(ctx, store.Message{Key: key, Kind: "welcome", From: "kaizen@localhost",
			To: []string{"ada@example.edu"}, Body: []byte(body), CreatedAt: at, NextAttemptAt: at}); err != nil {
			t.Fatal(err)
		}
	}
	queue("due", now.Add(-time.Minute))
	queue("later", now.Add(time.Hour))
	delivered := func() int {
		ents, _ := os.ReadDir(filepath.Join(dir, "new"))
		return len(ents)
	}

	outbox := mail.NewOutbox(st, nil, nil, md, mail.OutboxOptions{Now: clock.Now, Keys: mailtest.Keys(t)})
	job, err := NewOutboxJob(config.Job{Name: "outbox", Kind: "outbox"}, OutboxDeps{Outbox: outbox, Queue: st})
	if err != nil {
		t.Fatal(err)
	}

	res, err := job.Run(ctx, RunContext{Now: now, DryRun: true})
	if err != nil || res.Sent != 1 || res.Skipped != 1 || len(res.Lines) != 1 || !strings.Contains(res.Lines[0], "would deliver welcome mail due") {
		t.Fatalf("dry run: %+v, %v", res, err)
	}
	if delivered() != 0 {
		t.Fatal("a dry run delivered mail")
	}

	res, err = job.Run(ctx, RunContext{Now: now})
	if err != nil || res.Sent != 1 || delivered() != 1 {
		t.Fatalf("run: %+v, %v; %d delivered", res, err, delivered())
	}
	clock.Set(now.Add(2 * time.Hour))
	res, err = job.Run(ctx, RunContext{Now: clock.Now()})
	if err != nil || res.Sent != 1 || delivered() != 2 {
		t.Fatalf("later run: %+v, %v; %d delivered", res, err, delivered())
	}

	// A delivery failure is retried later; it does not fail the run.
	queue("retry", clock.Now())
	failing := mail.NewOutbox(st, nil, nil, failingTransport{}, mail.OutboxOptions{Now: clock.Now, Keys: mailtest.Keys(t)})
	job, _ = NewOutboxJob(config.Job{Name: "outbox"}, OutboxDeps{Outbox: failing, Queue: st})
	res, err = job.Run(ctx, RunContext{Now: clock.Now()})
	if err != nil || res.Sent != 0 || len(res.Lines) != 1 || !strings.Contains(res.Lines[0], "will retry") {
		t.Fatalf("failing delivery: %+v, %v", res, err)
	}

	if _, err := NewOutboxJob(config.Job{Name: "x"}, OutboxDeps{}); err == nil {
		t.Error("an outbox job without an outbox should not build")
	}
}

// TestOutboxJobPurges: the outbox job deletes what is left of messages
// finished longer than mail.retention ago, and nothing else.
func TestOutboxJobPurges(t *testing.T) {
	st := openSQLite(t)
	ctx := context.Background()
	start := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	clock := NewSimClock(start)
	md, err := mail.NewMaildir(filepath.Join(t.TempDir(), "mail"), clock.Now, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	outbox := mail.NewOutbox(st, nil, nil, md, mail.OutboxOptions{Now: clock.Now, Keys: mailtest.Keys(t)})
	const retention = 90 * 24 * time.Hour
	job, err := NewOutboxJob(config.Job{Name: "outbox", Kind: "outbox"}, OutboxDeps{Outbox: outbox, Queue: st, Purge: st, Retention: retention})
	if err != nil {
		t.Fatal(err)
	}
	queue := func(key string) {
		t.Helper()
		if _, _, err := st.Enqueue(ctx, store.Message{Key: key, Kind: "welcome", From: "kaizen@localhost",
			To: []string{"ada@example.edu"}, Body: []byte("Subject: x\r\n\r\nhello\r\n"), CreatedAt: clock.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	queue("old")
	if res, err := job.Run(ctx, RunContext{Now: clock.Now()}); err != nil || res.Sent != 1 {
		t.Fatalf("first run: %+v, %v", res, err)
	}
	clock.Set(start.Add(retention - time.Hour))
	queue("recent")
	if res, err := job.Run(ctx, RunContext{Now: clock.Now()}); err != nil || res.Sent != 1 || len(res.Lines) != 1 {
		t.Fatalf("run within the retention: %+v, %v (nothing is old enough to purge)", res, err)
	}
	if _, err := st.MessageByKey(ctx, "old"); err != nil {
		t.Fatalf("purged within the retention: %v", err)
	}
	clock.Set(start.Add(retention + time.Minute))
	queue("pending")
	res, err := job.Run(ctx, RunContext{Now: clock.Now(), DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.MessageByKey(ctx, "old"); err != nil {
		t.Fatalf("a dry run purged: %v (%+v)", err, res)
	}
	res, err = job.Run(ctx, RunContext{Now: clock.Now()})
	if err != nil || !slices.ContainsFunc(res.Lines, func(l string) bool {
		return strings.Contains(l, "purged 1 message(s) delivered or abandoned more than 90d ago")
	}) {
		t.Fatalf("run past the retention: %+v, %v", res, err)
	}
	if _, err := st.MessageByKey(ctx, "old"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the old message is still there: %v", err)
	}
	for _, k := range []string{"recent", "pending"} {
		if _, err := st.MessageByKey(ctx, k); err != nil {
			t.Errorf("%s was purged: %v", k, err)
		}
	}
}
