package onboard

import (
	"context"
	"errors"
	"fmt"
	netmail "net/mail"
	"strconv"
	"strings"
	"sync"
	"time"

	kmail "github.com/kaizen-onboard/kaizen/internal/mail"
	"github.com/kaizen-onboard/kaizen/internal/sheet"
	"github.com/kaizen-onboard/kaizen/internal/signup"
	"github.com/kaizen-onboard/kaizen/internal/store"
)

// writer writes rows' outcomes back as they finish, gathering the rows that
// finish close together into one batch (Google allows 60 reads and 60
// writes a minute per user; a batch costs three calls). A row waits at most
// FlushEvery. A batch that could not be written (quota, outage, after the
// sheet client's retries) stays pending for the whole run and goes out with
// the next one, so retries make fewer and larger batches; what is still
// unwritten when the run ends is reported. Each applied row's outcome is
// recorded in the store before its first attempt and removed once written,
// so the next run writes it first even if this one is killed.
type writer struct {
	r    *runner
	opts Options

	mu     sync.Mutex
	queue  []*item
	closed bool
	wake   chan struct{}
	done   chan struct{}
	once   sync.Once
}

type item struct {
	w   sheet.Write
	res *RowResult
	ack chan struct{}
	// persist: the row changed the cloud, so its outcome is recorded in
	// the store until written (invalid rows are judged again next run).
	persist, recorded bool
}

func newWriter(r *runner) *writer {
	w := &writer{r: r, opts: r.opts, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go w.loop()
	return w
}

// submit queues one row's values without blocking (workers never wait for
// the sheet); the returned channel closes once they were written or
// res.WriteBack says why not.
func (w *writer) submit(q sheet.Write, res *RowResult, persist bool) chan struct{} {
	it := &item{w: q, res: res, ack: make(chan struct{}), persist: persist}
	w.mu.Lock()
	w.queue = append(w.queue, it)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
	return it.ack
}

// stop writes what is pending, one last time with the full retry budget,
// and ends the writer; further submits are never written.
func (w *writer) stop() {
	w.once.Do(func() {
		w.mu.Lock()
		w.closed = true
		w.mu.Unlock()
		select {
		case w.wake <- struct{}{}:
		default:
		}
		<-w.done
	})
}

func (w *writer) loop() {
	defer close(w.done)
	var batch []*item
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	armed, failed := false, false
	for {
		fired := false
		select {
		case <-w.wake:
		case <-timer.C:
			armed, fired = false, true
		}
		w.mu.Lock()
		batch = append(batch, w.queue...)
		w.queue = nil
		closed := w.closed
		w.mu.Unlock()
		if closed {
			timer.Stop()
			if len(batch) > 0 {
				w.flush(batch, true)
			}
			return
		}
		if len(batch) > 0 && (fired || (len(batch) >= w.opts.FlushRows && !failed)) {
			timer.Stop()
			armed = false
			n := len(batch)
			batch = w.flush(batch, false)
			failed = len(batch) == n
		}
		if len(batch) > 0 && !armed {
			// After a failed batch (the sheet client's retries spent),
			// wait longer: the next batch, larger, is likelier to fit.
			wait := w.opts.FlushEvery
			if failed {
				wait = max(wait, 5*time.Second)
			}
			timer.Reset(wait)
			armed = true
		}
	}
}

// flush writes batch and returns the items to try again with the next
// batch (none when final: they are reported unwritten instead).
func (w *writer) flush(batch []*item, final bool) []*item {
	// Write-back must happen even when the run is being cancelled: the
	// cloud already changed, and the sheet should say so. The sheet
	// client bounds its own retries (sheet.retry_max_wait).
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	w.record(ctx, batch)
	writes := make([]sheet.Write, len(batch))
	for i, it := range batch {
		writes[i] = it.w
	}
	results, err := w.r.deps.Sheet.WriteBatch(ctx, writes)
	if err != nil {
		w.opts.Logger.Warn("writing outcomes back to the sheet failed; they stay pending", "rows", len(batch), "final", final, "err", err)
		for _, it := range batch {
			it.res.WriteBack = err.Error()
		}
		if !final {
			return batch
		}
		for _, it := range batch {
			w.r.opts.Logger.Error("a row's outcome was not written back to the sheet; the next run writes it first", "row", it.w.Row, "email", it.w.ID.Email, "err", err)
			close(it.ack)
		}
		return nil
	}
	for i, it := range batch {
		w.r.settle(ctx, it.w, it.res, results[i], it.recorded)
		close(it.ack)
	}
	return nil
}

// record stores the outcomes of batch's applied rows not yet recorded.
func (w *writer) record(ctx context.Context, batch []*item) {
	var ps []store.PendingWriteBack
	var its []*item
	for _, it := range batch {
		if it.persist && !it.recorded {
			ps = append(ps, w.r.pending(it.w, ""))
			its = append(its, it)
		}
	}
	if len(ps) == 0 {
		return
	}
	if err := w.r.deps.Store.PutWriteBacks(ctx, ps); err != nil {
		w.opts.Logger.Error("recording outcomes to write back", "rows", len(ps), "err", err)
		return
	}
	for _, it := range its {
		it.recorded = true
	}
}

func (r *runner) pending(q sheet.Write, reason string) store.PendingWriteBack {
	return store.PendingWriteBack{Source: r.opts.Source, Timestamp: q.ID.Timestamp, Email: q.ID.Email, Row: q.Row,
		Cells: q.Values, Reason: reason, CreatedAt: r.opts.Now().UTC()}
}

// settle takes one write's result: the row's WriteBack, its move, the
// damage to other rows, and the store record (removed once written, or
// once the row is gone from the sheet).
func (r *runner) settle(ctx context.Context, q sheet.Write, res *RowResult, wr sheet.WriteResult, recorded bool) {
	res.WriteBack = ""
	if wr.Err != nil {
		res.WriteBack = wr.Err.Error()
		r.opts.Logger.Error("writing a row's outcome back to the sheet", "row", q.Row, "email", q.ID.Email, "err", wr.Err)
	}
	if wr.Moved && wr.Err == nil {
		res.Changes = append(res.Changes, fmt.Sprintf("row moved while its outcome was written; written to row %d", wr.Row))
	}
	if wr.Unverified != nil {
		res.Changes = append(res.Changes, "written back, but not read back: "+wr.Unverified.Error())
	}
	for _, d := range wr.Damage {
		r.damaged(ctx, q, d)
	}
	if recorded && (wr.Err == nil || errors.Is(wr.Err, sheet.ErrRowNotFound)) {
		if err := r.deps.Store.DeleteWriteBack(ctx, r.opts.Source, q.ID.Timestamp, q.ID.Email); err != nil {
			r.opts.Logger.Error("removing a written outcome from the store", "row", q.Row, "err", err)
		}
	}
}

// damaged reports a row that received another row's outcome: in the
// summary always; audited; and, when its cells could not be put back, to
// the helpdesk (once per row and columns).
func (r *runner) damaged(ctx context.Context, by sheet.Write, d sheet.Damage) {
	ow := Overwrite{Row: d.Row, Timestamp: d.ID.Timestamp, Email: d.ID.Email, Columns: d.Columns, Restored: d.Restored, ByRow: by.Row, ByEmail: by.ID.Email}
	r.mu.Lock()
	r.overwrites = append(r.overwrites, ow)
	r.mu.Unlock()
	details := map[string]string{
		"row": strconv.Itoa(d.Row), "timestamp": d.ID.Timestamp, "email": d.ID.Email,
		"columns": strings.Join(d.Columns, ", "), "restored": strconv.FormatBool(d.Restored),
		"outcome_of": fmt.Sprintf("%s|%s", by.ID.Timestamp, by.ID.Email),
	}
	q := signup.Request{Row: d.Row, Email: d.ID.Email}
	q.Identity.Timestamp = d.ID.Timestamp
	r.audit(ctx, q, "sheet.overwrite", r.opts.Source, details)
	if d.Restored {
		r.opts.Logger.Warn("a moved row received another row's outcome; its cells were put back", "row", d.Row, "columns", d.Columns)
		return
	}
	r.opts.Logger.Error("a moved row received another row's outcome and its previous cells are lost", "row", d.Row, "email", d.ID.Email, "columns", d.Columns)
	if r.deps.Mail == nil || strings.TrimSpace(r.opts.Helpdesk) == "" {
		return
	}
	key := fmt.Sprintf("sheet-overwrite:%s:%s|%s:%s", r.opts.Source, d.ID.Timestamp, strings.ToLower(d.ID.Email), strings.Join(d.Columns, ","))
	data := kmail.HelpdeskNotifyData{
		Summary: "sign-up sheet cells overwritten",
		Detail: fmt.Sprintf("Rows of %s moved while addusers import wrote outcomes back. Row %d received the outcome of %s (row %d) in %s; "+
			"what the row had there before is unknown. Ask the person to fill these cells in again (a PIN above all).",
			r.opts.Source, d.Row, by.ID.Email, by.Row, strings.Join(d.Columns, ", ")),
		Items: []kmail.HelpdeskItem{{Email: d.ID.Email, Problem: fmt.Sprintf("row %d: %s overwritten", d.Row, strings.Join(d.Columns, ", "))}},
	}
	if _, _, err := r.deps.Mail.Queue(context.WithoutCancel(ctx), key, kmail.KindHelpdeskNotify,
		[]netmail.Address{{Address: r.opts.Helpdesk}}, data); err != nil {
		r.opts.Logger.Error("telling the helpdesk about overwritten cells", "row", d.Row, "err", err)
	}
}

// replay writes the outcomes earlier runs recorded but could not write,
// before anything else. It returns the identities still not written: the
// run leaves those rows alone (their cloud work is done) and reports them.
func (r *runner) replay(ctx context.Context, sum *Summary) map[sheet.Identity]string {
	ps, err := r.deps.Store.PendingWriteBacks(ctx, r.opts.Source)
	if err != nil {
		r.opts.Logger.Error("listing recorded outcomes to write back", "err", err)
		return nil
	}
	if len(ps) == 0 {
		return nil
	}
	writes := make([]sheet.Write, len(ps))
	for i, p := range ps {
		writes[i] = sheet.Write{Row: p.Row, ID: sheet.Identity{Timestamp: p.Timestamp, Email: p.Email}, Values: p.Cells}
	}
	held := map[sheet.Identity]string{}
	results, err := r.deps.Sheet.WriteBatch(ctx, writes)
	if err != nil {
		for _, q := range writes {
			held[idKey(q.ID)] = err.Error()
		}
		if perr := r.deps.Store.PutWriteBacks(ctx, r.reasons(writes, err.Error())); perr != nil {
			r.opts.Logger.Error("recording why outcomes are still not written back", "err", perr)
		}
		return held
	}
	for i, q := range writes {
		res := &RowResult{}
		r.settle(ctx, q, res, results[i], true)
		switch {
		case results[i].Err == nil:
			sum.WrittenBack++
		case errors.Is(results[i].Err, sheet.ErrRowNotFound):
			sum.NotWritten = append(sum.NotWritten, Unwritten{Row: q.Row, Email: q.ID.Email, Reason: res.WriteBack})
		default:
			held[idKey(q.ID)] = res.WriteBack
		}
	}
	return held
}

func (r *runner) reasons(writes []sheet.Write, reason string) []store.PendingWriteBack {
	out := make([]store.PendingWriteBack, len(writes))
	for i, q := range writes {
		out[i] = r.pending(q, reason)
	}
	return out
}

// idKey normalises an identity for map lookups as rows are matched.
func idKey(id sheet.Identity) sheet.Identity {
	return sheet.Identity{Timestamp: strings.TrimSpace(id.Timestamp), Email: strings.ToLower(strings.TrimSpace(id.Email))}
}

// maxStatus bounds the error text written into the Status cell.
const maxStatus = 300

// statusOf is the Status cell for an outcome.
func statusOf(res *RowResult) string {
	if res.Outcome != Failed {
		return signup.StatusDone
	}
	msg := strings.Join(strings.Fields(res.Error), " ")
	if r := []rune(msg); len(r) > maxStatus {
		msg = string(r[:maxStatus]) + "..."
	}
	return "error: " + msg
}

// invalidWrite is the write-back of an invalid row, or no values when the
// sheet already says exactly that (a re-run writes nothing new).
func (r *runner) invalidWrite(inv signup.RowError) sheet.Write {
	c := r.opts.Request.Columns
	res := &RowResult{Outcome: Failed, Error: problems(inv)}
	status := statusOf(res)
	if inv.Status == status {
		return sheet.Write{}
	}
	return sheet.Write{Row: inv.Row, ID: inv.ID, Values: map[string]string{
		c.Status:      status,
		c.ProcessedAt: r.opts.Now().UTC().Format(time.RFC3339),
	}}
}
