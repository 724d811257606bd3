package onboard

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/kaizen-onboard/kaizen/internal/request"
	"github.com/kaizen-onboard/kaizen/internal/sheet"
)

// writer writes rows' outcomes back as they finish, gathering the rows that
// finish close together into one batch: one re-read and one write per
// batch instead of per row (Google allows 60 requests a minute per user).
// A row waits at most FlushEvery.
type writer struct {
	sheet Sheet
	opts  Options
	in    chan item
	done  chan struct{}
	once  sync.Once
}

type item struct {
	w   sheet.Write
	res *RowResult
	ack chan struct{}
}

func newWriter(s Sheet, opts Options) *writer {
	// Buffered so that workers go on applying rows while a batch is being
	// written (a Sheets API write can take a second).
	w := &writer{sheet: s, opts: opts, in: make(chan item, 4*opts.FlushRows), done: make(chan struct{})}
	go w.loop()
	return w
}

// submit queues one row's values; the returned channel closes once they
// were written or res.WriteBack says why not.
func (w *writer) submit(q sheet.Write, res *RowResult) chan struct{} {
	ack := make(chan struct{})
	w.in <- item{w: q, res: res, ack: ack}
	return ack
}

// stop flushes what is queued and ends the writer; further submits panic.
func (w *writer) stop() {
	w.once.Do(func() {
		close(w.in)
		<-w.done
	})
}

func (w *writer) loop() {
	defer close(w.done)
	var batch []item
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	flush := func() {
		timer.Stop()
		if len(batch) > 0 {
			w.flush(batch)
			batch = nil
		}
	}
	for {
		select {
		case it, ok := <-w.in:
			if !ok {
				flush()
				return
			}
			if len(batch) == 0 {
				timer.Reset(w.opts.FlushEvery)
			}
			batch = append(batch, it)
			if len(batch) >= w.opts.FlushRows {
				flush()
			}
		case <-timer.C:
			flush()
		}
	}
}

func (w *writer) flush(batch []item) {
	// Write-back must happen even when the run is being cancelled: the
	// cloud already changed, and the sheet should say so.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	writes := make([]sheet.Write, len(batch))
	for i, it := range batch {
		writes[i] = it.w
	}
	results, err := w.sheet.WriteBatch(ctx, writes)
	for i, it := range batch {
		switch {
		case err != nil:
			it.res.WriteBack = err.Error()
		case i < len(results) && results[i].Err != nil:
			it.res.WriteBack = results[i].Err.Error()
		}
		if it.res.WriteBack != "" {
			w.opts.Logger.Error("writing a row's outcome back to the sheet", "row", it.w.Row, "err", it.res.WriteBack)
		}
		close(it.ack)
	}
}

// maxStatus bounds the error text written into the Status cell.
const maxStatus = 300

// statusOf is the Status cell for an outcome.
func statusOf(res *RowResult) string {
	if res.Outcome != Failed {
		return request.StatusDone
	}
	msg := strings.Join(strings.Fields(res.Error), " ")
	if r := []rune(msg); len(r) > maxStatus {
		msg = string(r[:maxStatus]) + "..."
	}
	return "error: " + msg
}

// invalidWrite is the write-back of an invalid row, or no values when the
// sheet already says exactly that (a re-run writes nothing new).
func (r *runner) invalidWrite(t *sheet.Table, tr sheet.Row, inv request.RowError) sheet.Write {
	c := r.opts.Columns
	res := &RowResult{Outcome: Failed, Error: problems(inv)}
	status := statusOf(res)
	if tr.At(r.col(t, c.Status, c.Status)) == status {
		return sheet.Write{}
	}
	id := sheet.Identity{
		Timestamp: tr.At(r.col(t, r.opts.Request.Columns.Timestamp, request.DefaultColumns().Timestamp)),
		Email:     tr.At(r.col(t, r.opts.Request.Columns.Email, request.DefaultColumns().Email)),
	}
	return sheet.Write{Row: tr.Number, ID: id, Values: map[string]string{
		c.Status:      status,
		c.ProcessedAt: r.opts.Now().UTC().Format(time.RFC3339),
	}}
}
