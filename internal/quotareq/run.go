package quotareq

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/kaizen-onboard/kaizen/internal/account"
	"github.com/kaizen-onboard/kaizen/internal/cloud"
	"github.com/kaizen-onboard/kaizen/internal/sheet"
	"github.com/kaizen-onboard/kaizen/internal/store"
)

// Sentinel errors of Run and RevertExpired.
var (
	// ErrLocked: another addusers quotas run is changing quotas.
	ErrLocked = errors.New("another addusers quotas run is changing quotas")
	// ErrSomeFailed: the run finished, but some rows or projects failed.
	ErrSomeFailed = errors.New("some quota requests failed")
)

// lockName keeps requests and reverts, of any sheet, one at a time: both
// read a project's quotas and record, then change them.
const lockName = "addusers:quotas"

type runner struct {
	deps    Deps
	opts    Options
	dirs    *cloud.Directories
	domains map[string]string // name -> ID, "" for none
}

func newRunner(deps Deps, opts Options) *runner {
	return &runner{deps: deps, opts: opts, dirs: cloud.NewDirectoriesOf(deps.Identity), domains: map[string]string{}}
}

// Run reads the quota-request worksheet and applies every approved (or
// auto-approved) request not yet finished, writing each outcome back. The
// error is for the run as a whole, or ErrSomeFailed.
func Run(ctx context.Context, deps Deps, opts Options) (Summary, error) {
	opts.defaults()
	sum, locked, release, err := start(ctx, deps, opts, true)
	if err != nil {
		return sum, err
	}
	defer release()
	t, err := deps.Sheet.Read(ctx)
	if err != nil {
		return sum, fmt.Errorf("reading the quota requests: %w", err)
	}
	parsed, err := Parse(t, opts.Parse)
	if err != nil {
		return sum, fmt.Errorf("quota-request worksheet: %w", err)
	}
	sum.Finished, sum.Waiting = parsed.Finished, parsed.Waiting
	r := newRunner(deps, opts)
	w := &writer{r: r}
	var results []*RowResult
	for _, inv := range parsed.Invalid {
		res := &RowResult{Row: inv.Row, Email: inv.Email, Project: inv.Project, Outcome: Failed, Detail: inv.Error()}
		results = append(results, res)
		w.add(inv.Row, inv.ID, inv.Status, res)
	}
	var unstarted []string
	for _, q := range parsed.Requests {
		// A row in flight finishes on ctx (its record, quota PUTs and mail
		// are one idempotent step each); none starts once the lock is lost.
		if locked.Err() != nil {
			results = append(results, &RowResult{Row: q.Row, Email: q.Email, Project: q.Project, Outcome: NotProcessed,
				Detail: "not processed: the run stopped (" + context.Cause(locked).Error() + ")"})
			unstarted = append(unstarted, "row "+strconv.Itoa(q.Row))
			continue
		}
		res := r.process(ctx, q)
		results = append(results, &res)
		w.add(q.Row, q.ID, q.Status, &res)
		if len(w.batch) >= opts.FlushRows {
			w.flush()
		}
	}
	w.flush()
	for _, res := range results {
		sum.add(*res)
	}
	sum.Ended = opts.Now().UTC()
	if err := stopped(locked, unstarted, &sum); err != nil {
		return sum, err
	}
	if sum.Counts[string(Failed)] > 0 {
		return sum, ErrSomeFailed
	}
	return sum, nil
}

// stopped returns why a run stopped before the work named in unstarted
// (the quotas lock lost, or ctx cancelled), and says so in sum; nil when it
// did not stop. Outcomes of finished rows were written back all the same:
// they are true, and writes find their rows by identity.
func stopped(locked context.Context, unstarted []string, sum *Summary) error {
	if locked.Err() == nil {
		return nil
	}
	cause := context.Cause(locked)
	what := "nothing left undone"
	if len(unstarted) > 0 {
		what = fmt.Sprintf("%d not processed (%s), untouched", len(unstarted), strings.Join(unstarted, ", "))
	}
	if errors.Is(cause, store.ErrLockLost) {
		if len(unstarted) == 0 {
			return nil // lost after the last one started: every outcome is in
		}
		sum.Stopped = fmt.Sprintf("the run stopped because it %v; %s", cause, what)
		return fmt.Errorf("%w; %s: run again once the other run is done", cause, what)
	}
	sum.Stopped = fmt.Sprintf("the run was interrupted (%v); %s", cause, what)
	return fmt.Errorf("%w; %s", cause, what)
}

// start begins a run or a revert: it checks deps and, unless this is a dry
// run, takes the quotas lock, which release gives back; locked is done
// once the lock is lost (or ctx is).
func start(ctx context.Context, deps Deps, opts Options, needSheet bool) (sum Summary, locked context.Context, release func(), err error) {
	sum = Summary{Counts: map[string]int{}, DryRun: opts.DryRun, Started: opts.Now().UTC()}
	if err := checkDeps(deps, opts.DryRun, needSheet); err != nil {
		return sum, nil, nil, err
	}
	if opts.DryRun {
		return sum, ctx, func() {}, nil
	}
	locked, release, err = lock(ctx, deps.Store, opts)
	return sum, locked, release, err
}

func checkDeps(d Deps, dry, needSheet bool) error {
	var missing []string
	if d.Identity == nil {
		missing = append(missing, "Identity")
	}
	if d.Quotas == nil {
		missing = append(missing, "Quotas")
	}
	if d.Store == nil {
		missing = append(missing, "Store")
	}
	if needSheet && d.Sheet == nil {
		missing = append(missing, "Sheet")
	}
	if !dry && d.Mail == nil {
		missing = append(missing, "Mail")
	}
	if len(missing) > 0 {
		return fmt.Errorf("quotareq: missing dependencies: %v", missing)
	}
	return nil
}

// maxStatus bounds the text written into the Status cell.
const maxStatus = 300

// statusOf is the Status cell for a row's outcome.
func statusOf(res *RowResult) string {
	var s string
	switch res.Outcome {
	case Applied:
		s = StatusDone
		if res.EndsOn != "" {
			s += "; temporary until " + res.EndsOn
		}
		if res.Approval != "" && res.Approval != "sheet" && res.Approval != "decided in an earlier run" {
			s += "; " + res.Approval
		}
	case Unchanged:
		s = StatusDone + ": " + res.Detail
	case Refused:
		s = StatusRefused + ": " + res.Detail
	case Pending:
		s = StatusPending + ": " + res.Detail
	default:
		s = StatusError + ": " + res.Detail
	}
	s = strings.Join(strings.Fields(s), " ")
	if rs := []rune(s); len(rs) > maxStatus {
		s = string(rs[:maxStatus]) + "..."
	}
	return s
}

// writer gathers rows' outcomes and writes them back in batches (one
// re-read and one write per batch: Google allows 60 requests a minute).
// Nothing is written in a dry run, nor a Status the cell holds already
// (a row pending or failing the same way run after run).
type writer struct {
	r     *runner
	batch []sheet.Write
	res   []*RowResult
}

func (w *writer) add(row int, id sheet.Identity, status string, res *RowResult) {
	if w.r.opts.DryRun || w.r.deps.Sheet == nil {
		return
	}
	s := statusOf(res)
	if s == status && res.Outcome != Applied {
		return
	}
	c := w.r.opts.Parse.Columns
	w.batch = append(w.batch, sheet.Write{Row: row, ID: id, Values: map[string]string{
		c.Status: s, c.ProcessedAt: w.r.opts.Now().UTC().Format(time.RFC3339),
	}})
	w.res = append(w.res, res)
}

func (w *writer) flush() {
	if len(w.batch) == 0 {
		return
	}
	// Written even when the run is being cancelled: the cloud changed.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	results, err := w.r.deps.Sheet.WriteBatch(ctx, w.batch)
	for i, res := range w.res {
		switch {
		case err != nil:
			res.WriteBack = err.Error()
		case i < len(results) && results[i].Err != nil:
			res.WriteBack = results[i].Err.Error()
		}
		if res.WriteBack != "" {
			w.r.opts.Logger.Error("writing a quota request's outcome back", "row", res.Row, "err", res.WriteBack)
		}
	}
	w.batch, w.res = nil, nil
}

// audit records one change (account.Recorder: a failing write is logged,
// not fatal, since the change already happened).
func (r *runner) audit(ctx context.Context, action, target string, details map[string]string) {
	account.NewRecorder(r.deps.Store, r.opts.Logger, r.opts.Actor, r.opts.Source, r.opts.Now).Record(ctx, action, target, details)
}

// lock takes the quotas lock and renews it until released; held is
// cancelled when the lock is lost.
func lock(ctx context.Context, s Store, opts Options) (held context.Context, release func(), err error) {
	random := opts.Random
	if random == nil {
		random = rand.Reader
	}
	var b [8]byte
	if _, err := io.ReadFull(random, b[:]); err != nil {
		return nil, nil, fmt.Errorf("choosing a lock owner: %w", err)
	}
	owner := opts.Actor + "/" + hex.EncodeToString(b[:])
	held, release, err = store.HoldLock(ctx, s, lockName, owner, opts.Now, opts.LockTTL, opts.Logger)
	if errors.Is(err, store.ErrConflict) {
		return nil, nil, fmt.Errorf("%w; it holds the lock for at most %s after it stops", ErrLocked, opts.LockTTL)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("taking the quotas lock: %w", err)
	}
	return held, release, nil
}
