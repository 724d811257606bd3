package onboard

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/kaizen-onboard/kaizen/internal/account"
	"github.com/kaizen-onboard/kaizen/internal/cloud"
	"github.com/kaizen-onboard/kaizen/internal/sheet"
	"github.com/kaizen-onboard/kaizen/internal/signup"
	"github.com/kaizen-onboard/kaizen/internal/store"
)

// Plan reads the sheet and the cloud and returns what an import would do,
// row by row (RowResult.Changes in words, RowResult.Plan), changing
// nothing anywhere. It is Run with Options.DryRun.
func Plan(ctx context.Context, deps Deps, opts Options) (Summary, error) {
	opts.DryRun = true
	return Run(ctx, deps, opts)
}

// Apply plans each row and applies its plan, as `addusers import` does: Run
// without Options.DryRun.
func Apply(ctx context.Context, deps Deps, opts Options) (Summary, error) {
	opts.DryRun = false
	return Run(ctx, deps, opts)
}

// Run reads the sheet, plans and applies every approved request not yet done and
// writes each outcome back as it finishes. The error is for the run as a
// whole (lock held, sheet unreadable, bad header) or ErrSomeFailed when it
// finished with failed or invalid rows; the Summary is filled in either way
// as far as the run got.
func Run(ctx context.Context, deps Deps, opts Options) (Summary, error) {
	opts.defaults()
	sum := Summary{Counts: map[string]int{}, DryRun: opts.DryRun, Started: opts.Now().UTC()}
	if err := validateDeps(deps, opts.DryRun); err != nil {
		return sum, err
	}
	if opts.Random == nil {
		opts.Random = rand.Reader
	}
	// locked is done once the sheet's lock is lost (or ctx is): no row
	// starts after that. Everything else keeps ctx, so a row in flight and
	// the write-back of finished rows complete (see stopped).
	locked := ctx
	if !opts.DryRun {
		h, release, err := lock(ctx, deps.Store, opts)
		if err != nil {
			return sum, err
		}
		defer release()
		locked = h
	}
	// The sheet must be this store's before anything is written to it.
	if err := claimSheet(ctx, deps.Sheet, opts); err != nil {
		return sum, err
	}
	r := &runner{deps: deps, opts: opts, roleIDs: map[string]string{}, domains: map[string]string{},
		dirs: map[string]*cloud.Directory{}, firstOf: map[string]signup.Request{}, names: map[string]map[string]bool{}, retriesBefore: retries(deps)}
	var events account.EventLog
	if deps.Store != nil {
		events = deps.Store
	}
	r.rec = account.NewRecorder(events, opts.Logger, opts.Actor, opts.Source, opts.Now)
	if !opts.DryRun {
		r.links = account.NewIssuer(deps.Identity, deps.Setpass, deps.Mail, deps.Store, r.rec, opts.Random)
	}
	// Outcomes earlier runs could not write go first, before anything
	// else reads the sheet; rows still unwritten are left alone.
	var held map[sheet.Identity]string
	if !opts.DryRun {
		held = r.replay(ctx, &sum)
	}
	t, err := deps.Sheet.Read(ctx)
	if err != nil {
		return sum, fmt.Errorf("reading the requests: %w", err)
	}
	if t, err = addWriteBackColumns(ctx, deps.Sheet, t, opts, &sum); err != nil {
		return sum, err
	}
	parsed, err := signup.Parse(t.Header, t.Rows, opts.Request)
	if err != nil {
		return sum, err
	}
	sum.Skipped = len(parsed.Skipped)
	sum.Rejected = len(parsed.Rejected)

	var w *writer
	if !opts.DryRun {
		w = newWriter(r)
		defer w.stop()
	}

	// Invalid rows: reported and written back, nothing else.
	var (
		mu      sync.Mutex
		results []*RowResult
		acks    []chan struct{}
	)
	writeBack := func(q sheet.Write, res *RowResult, persist bool) {
		if w == nil || q.Values == nil {
			return
		}
		ack := w.submit(q, res, persist)
		mu.Lock()
		acks = append(acks, ack)
		mu.Unlock()
	}
	for _, inv := range parsed.Invalid {
		if !r.selected(inv) {
			continue
		}
		if strings.EqualFold(inv.Status, signup.StatusDone) {
			// Processed by an earlier run; a settings change since (a
			// retired preset, a stricter pattern) must not reopen it.
			results = append(results, &RowResult{Row: inv.Row, Outcome: Unchanged, Changes: []string{"done in an earlier run"},
				Email: inv.Email, Project: inv.Project})
			continue
		}
		res := &RowResult{Row: inv.Row, Outcome: Failed, Error: problems(inv), Email: inv.Email, Project: inv.Project}
		if inv.Status == statusOf(res) {
			// Reported so by an earlier run and unchanged since.
			res.Outcome = StillInvalid
		}
		results = append(results, res)
		writeBack(r.invalidWrite(inv), res, false)
	}

	var todo []signup.Request
	for _, q := range parsed.Requests {
		if !r.match(q) {
			continue
		}
		if reason, ok := held[idKey(sheet.Identity(q.Identity))]; ok {
			results = append(results, &RowResult{Row: q.Row, Email: q.Email, Project: q.ProjectName, Domain: q.Domain, Outcome: Unchanged,
				Changes: []string{"applied by an earlier run; its outcome is recorded and not yet written back"}, WriteBack: reason})
			continue
		}
		if q.Done {
			results = append(results, &RowResult{Row: q.Row, Email: q.Email, Project: q.ProjectName, Domain: q.Domain, Outcome: Unchanged,
				Changes: []string{"done in an earlier run"}})
			continue
		}
		todo = append(todo, q)
	}
	total := len(todo)

	if total > 0 && locked.Err() == nil {
		err := r.prepare(ctx, todo)
		if err == nil && !opts.DryRun {
			err = r.create(ctx)
		}
		if err != nil {
			if w != nil {
				w.stop()
				waitAll(acks)
			}
			return r.finish(sum, results), err
		}
	}

	done := 0
	started := make(map[int]bool, total) // by sheet row
	groups := group(todo)
	work := make(chan []signup.Request)
	var wg sync.WaitGroup
	for range min(opts.Workers, len(groups)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for g := range work {
				for _, q := range g {
					// A row in flight runs to its end on ctx, not locked:
					// cut between two Keystone writes it would be half
					// done (an account without its link). Its steps are
					// idempotent, so the run that took the lock converges
					// with it. The next row does not start.
					if locked.Err() != nil {
						break
					}
					mu.Lock()
					started[q.Row] = true
					mu.Unlock()
					res, values := r.row(ctx, q, !opts.DryRun)
					writeBack(sheet.Write{Row: q.Row, ID: sheet.Identity(q.Identity), Values: values}, res, true)
					mu.Lock()
					results = append(results, res)
					done++
					if opts.Progress != nil {
						opts.Progress(done, total)
					}
					mu.Unlock()
				}
			}
		}()
	}
feed:
	for _, g := range groups {
		select {
		case work <- g:
		case <-locked.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	if w != nil {
		w.stop()
		waitAll(acks) // the writer fills in write-back errors before acking
	}
	if err := stopped(locked, todo, started, &results, &sum); err != nil {
		return r.finish(sum, results), err
	}
	sum = r.finish(sum, results)
	if sum.Counts[string(Failed)] > 0 || opts.Strict && sum.Counts[string(StillInvalid)] > 0 ||
		len(sum.NotWritten) > 0 || lost(sum.Overwritten) {
		return sum, ErrSomeFailed
	}
	return sum, nil
}

// RetryLine is the summary line of a run's OpenStack retries, e.g.
// "openstack: 12 requests retried after transient faults (compute 3,
// identity 9)"; "" when there were none.
func RetryLine(retries map[string]int) string {
	total := 0
	var parts []string
	for _, svc := range slices.Sorted(maps.Keys(retries)) {
		total += retries[svc]
		parts = append(parts, fmt.Sprintf("%s %d", svc, retries[svc]))
	}
	if total == 0 {
		return ""
	}
	return fmt.Sprintf("openstack: %d requests retried after transient faults (%s)", total, strings.Join(parts, ", "))
}

// retries is the retry count of deps so far (empty without a counter).
func retries(deps Deps) map[string]int {
	if deps.Retries == nil {
		return nil
	}
	return deps.Retries.Retries()
}

func lost(ows []Overwrite) bool {
	for _, o := range ows {
		if !o.Restored {
			return true
		}
	}
	return false
}

// problems is a row error without its "row N: " prefix: the Status cell
// sits in the row already, and the summary names the row.
func problems(e signup.RowError) string {
	return strings.TrimPrefix(e.Error(), fmt.Sprintf("row %d: ", e.Row))
}

func waitAll(acks []chan struct{}) {
	for _, a := range acks {
		<-a
	}
}

func (r *runner) finish(sum Summary, results []*RowResult) Summary {
	slices.SortFunc(results, func(a, b *RowResult) int { return a.Row - b.Row })
	sum.Rows = make([]RowResult, len(results))
	for i, res := range results {
		sum.Rows[i] = *res
		sum.Counts[string(res.Outcome)]++
	}
	for _, res := range sum.Rows {
		if res.WriteBack != "" {
			sum.NotWritten = append(sum.NotWritten, Unwritten{Row: res.Row, Email: res.Email, Reason: res.WriteBack})
		}
	}
	r.mu.Lock()
	sum.Overwritten = append(sum.Overwritten, r.overwrites...)
	r.mu.Unlock()
	sum.Mail = int(r.mailQueued.Load())
	for svc, n := range retries(r.deps) {
		if d := n - r.retriesBefore[svc]; d > 0 {
			if sum.Retries == nil {
				sum.Retries = map[string]int{}
			}
			sum.Retries[svc] = d
		}
	}
	sum.Finished = r.opts.Now().UTC()
	return sum
}

// selected reports whether an invalid row falls under the --user and
// --project filters (judged on its cells as written).
func (r *runner) selected(inv signup.RowError) bool {
	return (r.opts.OnlyUser == "" || strings.EqualFold(inv.Email, r.opts.OnlyUser)) &&
		(r.opts.OnlyProject == "" || inv.Project == r.opts.OnlyProject)
}

func (r *runner) match(q signup.Request) bool {
	return (r.opts.OnlyUser == "" || strings.EqualFold(q.Email, r.opts.OnlyUser)) &&
		(r.opts.OnlyProject == "" || q.ProjectName == r.opts.OnlyProject)
}

// stopped reports the rows a run stopped before (its lock lost, or ctx
// cancelled) as NotProcessed, untouched, and returns why it stopped; nil
// when it did not. The outcomes of finished rows are still written back:
// they are true, and each write finds its row by identity, so it is safe
// even while the run that took the lock writes to the sheet too.
func stopped(held context.Context, todo []signup.Request, started map[int]bool, results *[]*RowResult, sum *Summary) error {
	if held.Err() == nil {
		return nil
	}
	cause := context.Cause(held)
	var rows []string
	for _, q := range todo {
		if started[q.Row] {
			continue
		}
		*results = append(*results, &RowResult{Row: q.Row, Email: q.Email, Project: q.ProjectName, Domain: q.Domain,
			Outcome: NotProcessed, Error: "not processed: the run stopped (" + cause.Error() + ")"})
		rows = append(rows, strconv.Itoa(q.Row))
	}
	what := "no rows left unprocessed"
	if len(rows) > 0 {
		what = fmt.Sprintf("%d row(s) not processed (row %s), untouched", len(rows), strings.Join(rows, ", "))
	}
	lockLost := errors.Is(cause, store.ErrLockLost)
	if lockLost && len(rows) == 0 {
		// Lost after the last row started: every outcome is in (and was
		// logged by the lease); nothing is left for the other run.
		return nil
	}
	if lockLost {
		sum.Stopped = fmt.Sprintf("the run stopped because it %v; %s", cause, what)
		return fmt.Errorf("%w; %s: run again once the other run is done", cause, what)
	}
	sum.Stopped = fmt.Sprintf("the run was interrupted (%v); %s", cause, what)
	return fmt.Errorf("%w; %s", cause, what)
}

// lock takes the sheet's store lock and renews it until released; held is
// cancelled when the lock is lost.
func lock(ctx context.Context, s Store, opts Options) (held context.Context, release func(), err error) {
	var b [8]byte
	if _, err := io.ReadFull(opts.Random, b[:]); err != nil {
		return nil, nil, fmt.Errorf("choosing a lock owner: %w", err)
	}
	name := "addusers:" + opts.Source
	owner := opts.Actor + "/" + hex.EncodeToString(b[:])
	held, release, err = store.HoldLock(ctx, s, name, owner, opts.Now, opts.LockTTL, opts.Logger)
	if errors.Is(err, store.ErrConflict) {
		return nil, nil, fmt.Errorf("%w (%s); if that run was killed, its lock lapses within %s: try again then", ErrLocked, opts.Source, opts.LockTTL)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("taking the lock on %s: %w", opts.Source, err)
	}
	return held, release, nil
}
