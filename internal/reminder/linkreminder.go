package reminder

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	netmail "net/mail"
	"strings"
	"sync"
	"time"

	"github.com/kaizen-onboard/kaizen/internal/account"
	"github.com/kaizen-onboard/kaizen/internal/cloud"
	"github.com/kaizen-onboard/kaizen/internal/config"
	kmail "github.com/kaizen-onboard/kaizen/internal/mail"
	"github.com/kaizen-onboard/kaizen/internal/setpass/client"
	"github.com/kaizen-onboard/kaizen/internal/store"
)

// Link-reminder defaults.
const (
	DefaultLinkReminderAfter = 48 * time.Hour     // job.after
	DefaultLinkGiveUp        = 7 * 24 * time.Hour // job.give_up
	// DefaultMaxLinkReminders caps the reminders one user ever gets. With
	// the default after and give_up at most three fit anyway (at about 2, 4
	// and 6 days); the cap matters when after is short.
	DefaultMaxLinkReminders = 3
	// DefaultLinkReminderWorkers is how many users a run handles at once.
	DefaultLinkReminderWorkers = 8
)

// TokenLister lists the set-password links nobody has used (store.Tokens).
type TokenLister interface {
	PendingTokens(ctx context.Context, createdBefore time.Time, limit int) ([]store.Token, error)
}

// UserInfo is what the reminder jobs need to know about a Keystone user.
type UserInfo struct {
	ID       string
	Name     string // login name; in kaizen the email address
	Email    string // the "email" attribute, "" when unset
	FullName string // the description, where kaizen keeps the full name
	Enabled  bool
	// Owner is the cloud.OwnerAttr attribute: set on the accounts kaizen
	// created, the only ones whose password a job may ever set.
	Owner string
}

// ErrNoUser is what a UserDirectory returns (wrapped) for an unknown user.
var ErrNoUser = errors.New("no such user")

// UserDirectory looks users up by ID (Keystone GET /users/{id}).
type UserDirectory interface {
	User(ctx context.Context, id string) (UserInfo, error)
}

// PasswordSetter sets a user's password as the admin (cloud.SetPassword).
type PasswordSetter interface {
	SetPassword(ctx context.Context, userID, password string) error
}

// Issuer asks setpass for a new link (client.Client): pin "" keeps the
// user's earlier PIN.
type Issuer interface {
	Issue(ctx context.Context, userID, tempPassword, pin string) (client.Issued, error)
}

// AuditLog records changes (store.Audit).
type AuditLog interface {
	AppendEvent(ctx context.Context, e store.Event) (int64, error)
}

// KeystoneUsers is the UserDirectory and PasswordSetter of a Keystone
// identity v3 admin client.
type KeystoneUsers struct {
	Identity *cloud.Keystone
}

// User is one GET /users/{id}; a 404 wraps ErrNoUser.
func (k KeystoneUsers) User(ctx context.Context, id string) (UserInfo, error) {
	u, err := cloud.GetUser(ctx, k.Identity.Client(), id)
	if errors.Is(err, cloud.ErrNoUser) {
		return UserInfo{}, fmt.Errorf("looking up user %s: %w", id, ErrNoUser)
	}
	if err != nil {
		return UserInfo{}, err
	}
	return UserInfo{ID: u.ID, Name: u.Name, Email: u.Email, FullName: u.FullName, Enabled: u.Enabled, Owner: u.Owner}, nil
}

// SetPassword is cloud.SetPassword: one PATCH /users/{id}.
func (k KeystoneUsers) SetPassword(ctx context.Context, userID, password string) error {
	return cloud.SetPassword(ctx, k.Identity.Client(), userID, password)
}

// LinkReminderDeps is what a link-reminder job needs.
type LinkReminderDeps struct {
	Tokens    TokenLister
	Ledger    Ledger
	Mail      Mailer
	Users     UserDirectory
	Passwords PasswordSetter
	Setpass   Issuer
	Random    io.Reader // temporary passwords; nil: crypto/rand
	// Helpdesk is told about users who never set a password, unless the
	// job lists its own addresses in to (mail.helpdesk).
	Helpdesk string
	// Audit, when set, records each temporary password the job sets.
	Audit        AuditLog
	MaxReminders int // per user; 0: DefaultMaxLinkReminders
	Workers      int // 0: DefaultLinkReminderWorkers
}

type linkReminder struct {
	name     string
	after    time.Duration
	giveUp   time.Duration
	max      int
	counted  bool // reminders are counted against max (see NewLinkReminder)
	workers  int
	helpdesk []netmail.Address
	d        LinkReminderDeps
	issuer   *account.Issuer // built from d
	// notOurs holds the users found not to be kaizen's (no owner
	// attribute, which never changes): not looked up again by this process.
	notOurs sync.Map
}

// slack is how much early a run may be and still remind: a re-issued
// link is stamped a moment after the run that issued it started, and a
// daily schedule across a DST change runs 23 hours apart, so without it a
// daily reminder would slip a whole day. 5% of after, at most an hour.
func (lr *linkReminder) slack() time.Duration { return min(lr.after/20, time.Hour) }

// NewLinkReminder builds a link-reminder job: users of kaizen whose
// set-password link is still unused j.After after it was made get a
// reminder with a fresh link, and once j.GiveUp has passed since their
// first link the helpdesk is told instead.
//
// # Policy
//
// Only links of purpose "welcome" (or none) of enabled accounts kaizen
// created (cloud.OwnerAttr set) are considered: only those users never knew
// their password, so only their password may be replaced. Expired links
// count as unused; used and locked ones are not pending.
//
// A user's "first seen" time is the creation time of the first link the job
// saw, recorded once under LedgerKey(job, user, "first-seen"); the store
// keeps only each user's current link.
//
// Each link (token generation, named by its creation time in Unix seconds)
// gets at most one reminder: LedgerKey(job, user, "reminder-<unix>"). Every
// reminder re-issues the link — a new temporary password set as the admin,
// then a new setpass token with the same PIN — because the current link
// exists only as a hash in the store and may be about to expire or already
// have. The new link is a new generation, so while the user still does
// nothing another reminder follows j.After later, only before j.GiveUp and
// at most MaxReminders per user. With the defaults that is reminders at
// about 2, 4 and 6 days, then the helpdesk on day 7. No more than
// floor(GiveUp/After) reminders fit before the deadline; only when that is
// more than MaxReminders are they counted, under LedgerKey(job, user,
// "reminder-no-1"), "reminder-no-2", ….
//
// Once j.GiveUp has passed since first seen, the helpdesk (j.To, else
// Helpdesk) gets one notice about the user (LedgerKey(job, user,
// "gave-up")) and the user no more reminders. A link created after that
// deadline was issued by a person (the helpdesk, or a password reset) and
// is left alone: no reminder, no notice.
//
// # Order of effects
//
// A ledger key is recorded before anything is changed or queued, so two
// replicas or overlapping runs never both act for one user. If setting
// the password, issuing the link or queuing the mail then fails, the keys
// are forgotten again: otherwise the reservation would stand for a message
// that was never sent and the user would never get that reminder. The
// password is set before the link is issued, so that while issuing fails
// the user's pending link stays the due one. Because setpass may have
// replaced the link before the failure (queuing failed, or its answer was
// lost), and a new link is not due for j.After, the user is also marked
// (LedgerKey(job, user, "retry")) and reminded at the next run whatever
// their link's age. Only a store down for the forget as well leaves a user
// to wait j.After (or for the helpdesk notice at j.GiveUp).
//
// Users are handled by Workers goroutines; each due user costs one
// Keystone lookup, not-due ones none. One user's failure does not stop the
// others; the run reports the failures as its error.
func NewLinkReminder(j config.Job, d LinkReminderDeps) (Job, error) {
	switch {
	case d.Tokens == nil || d.Ledger == nil || d.Mail == nil || d.Users == nil || d.Passwords == nil || d.Setpass == nil:
		return nil, fmt.Errorf("link-reminder job %q: Tokens, Ledger, Mail, Users, Passwords and Setpass are required", j.Name)
	case j.Name == "":
		return nil, errors.New("link-reminder job: a name is required")
	}
	lr := &linkReminder{name: j.Name, after: j.After.D, giveUp: j.GiveUp.D, max: d.MaxReminders, workers: d.Workers, d: d}
	if lr.after <= 0 {
		lr.after = DefaultLinkReminderAfter
	}
	if lr.giveUp <= 0 {
		lr.giveUp = DefaultLinkGiveUp
	}
	if lr.giveUp <= lr.after {
		return nil, fmt.Errorf("link-reminder job %q: give_up (%s) must be longer than after (%s)", j.Name, lr.giveUp, lr.after)
	}
	if lr.max <= 0 {
		lr.max = DefaultMaxLinkReminders
	}
	// Each reminder makes a link that is not due for another after, so
	// the k-th reminder comes k*after or more after the first link, before
	// give_up: fewer than give_up/after fit, or exactly that many when
	// setpass's clock runs a little behind. Only when that bound exceeds
	// max are reminders counted, at one more ledger write each.
	lr.counted = lr.giveUp/lr.after > time.Duration(lr.max)
	if lr.workers <= 0 {
		lr.workers = DefaultLinkReminderWorkers
	}
	if lr.d.Random == nil {
		lr.d.Random = rand.Reader
	}
	lr.issuer = account.NewIssuer(lr.d.Passwords, lr.d.Setpass, lr.d.Mail, nil, nil, lr.d.Random)
	var err error
	if lr.helpdesk, err = helpdeskAddresses(j, d.Helpdesk); err != nil {
		return nil, fmt.Errorf("link-reminder job %q: %w", j.Name, err)
	}
	return lr, nil
}

// helpdeskAddresses parses j.To, else fallback (mail.helpdesk).
func helpdeskAddresses(j config.Job, fallback string) ([]netmail.Address, error) {
	raw := j.To
	if len(raw) == 0 && fallback != "" {
		raw = []string{fallback}
	}
	if len(raw) == 0 {
		return nil, errors.New("no helpdesk address: set the job's to or mail.helpdesk")
	}
	out := make([]netmail.Address, 0, len(raw))
	for _, s := range raw {
		a, err := netmail.ParseAddress(s)
		if err != nil {
			return nil, fmt.Errorf("helpdesk address %q: %w", s, err)
		}
		out = append(out, *a)
	}
	return out, nil
}

// linkOutcome is what happened to one pending link.
type linkOutcome struct {
	sent, skipped int
	line          string
	err           error
}

func (lr *linkReminder) Run(ctx context.Context, rc RunContext) (Result, error) {
	log := rc.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("job", lr.name)
	// Every pending link, young ones too: the first-seen time is recorded
	// as early as possible, and a user given a new link near the deadline
	// must still reach the helpdesk.
	toks, err := lr.d.Tokens.PendingTokens(ctx, rc.Now, 0)
	if err != nil {
		return Result{}, fmt.Errorf("link-reminder %s: listing pending links: %w", lr.name, err)
	}
	out := make([]linkOutcome, len(toks))
	reminderPool(ctx, len(toks), lr.workers, func(i int) {
		out[i] = lr.one(ctx, rc, log, toks[i])
	})
	var res Result
	var errs []error
	for i, o := range out {
		res.Sent += o.sent
		res.Skipped += o.skipped
		if o.line != "" {
			res.Lines = append(res.Lines, o.line)
		}
		if o.err != nil {
			log.Error("link reminder failed", "user_id", toks[i].UserID, "err", o.err)
			errs = append(errs, o.err)
		}
	}
	if err := ctx.Err(); err != nil {
		errs = append(errs, err)
	}
	return res, summariseFailures("link-reminder "+lr.name, len(toks), errs)
}

// reminderPool calls fn(0..n-1) on at most workers goroutines and returns
// when all calls have; once ctx is done no further call starts.
func reminderPool(ctx context.Context, n, workers int, fn func(i int)) {
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Go(func() {
			for i := range next {
				fn(i)
			}
		})
	}
	for i := range n {
		if ctx.Err() != nil {
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
}

// summariseFailures joins the first few errors of a run over total items.
func summariseFailures(what string, total int, errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	const show = 5
	head := errs[:min(len(errs), show)]
	err := errors.Join(head...)
	if len(errs) > show {
		err = fmt.Errorf("%w\n(and %d more)", err, len(errs)-show)
	}
	return fmt.Errorf("%s: %d of %d failed: %w", what, len(errs), total, err)
}

func (lr *linkReminder) key(userID, period string) string {
	return LedgerKey(lr.name, userID, period)
}

// firstSeen returns the user's recorded first-seen time, recording t's
// creation time when there is none (not in a dry run).
func (lr *linkReminder) firstSeen(ctx context.Context, rc RunContext, t store.Token) (time.Time, error) {
	key := lr.key(t.UserID, "first-seen")
	at, ok, err := lr.d.Ledger.Recorded(ctx, key)
	if err != nil || ok || rc.DryRun {
		if !ok {
			at = t.CreatedAt
		}
		return at, err
	}
	if fresh, err := lr.d.Ledger.RecordOnce(ctx, key, t.CreatedAt); err != nil || fresh {
		return t.CreatedAt, err
	}
	// A concurrent run recorded it first, perhaps for an earlier link.
	at, ok, err = lr.d.Ledger.Recorded(ctx, key)
	if err == nil && !ok {
		err = fmt.Errorf("ledger key %s vanished after recording it", key)
	}
	return at, err
}

// one handles one pending link.
func (lr *linkReminder) one(ctx context.Context, rc RunContext, log *slog.Logger, t store.Token) linkOutcome {
	skip := linkOutcome{skipped: 1}
	if t.Purpose != "" && t.Purpose != "welcome" {
		return skip
	}
	first, err := lr.firstSeen(ctx, rc, t)
	if err != nil {
		return linkOutcome{err: fmt.Errorf("user %s: first-seen time: %w", t.UserID, err)}
	}
	deadline := first.Add(lr.giveUp)
	switch {
	case !t.CreatedAt.Before(deadline):
		return skip // issued by a person after the deadline: theirs
	case !rc.Now.Before(deadline):
		return lr.giveUpOn(ctx, rc, log, t, first)
	case rc.Now.Sub(t.CreatedAt) >= lr.after-lr.slack():
		return lr.remind(ctx, rc, log, t, false)
	}
	// A young link is due only when an earlier attempt failed after it
	// may have been issued (see retryKey).
	if _, retry, err := lr.d.Ledger.Recorded(ctx, lr.retryKey(t.UserID)); err != nil {
		return linkOutcome{err: fmt.Errorf("user %s: %w", t.UserID, err)}
	} else if retry {
		return lr.remind(ctx, rc, log, t, true)
	}
	return skip // not due yet
}

// retryKey marks a user whose reminder failed after the password was set:
// setpass may have replaced the link by then (the answer lost, or queuing
// the mail failed), and a new link is not due for j.After, so the mark
// makes the next run remind at once. Forgotten once a reminder is queued.
func (lr *linkReminder) retryKey(userID string) string {
	return lr.key(userID, "retry")
}

// lookup finds the user and decides whether the job may act for them: ok
// false (with a nil error) means leave the user alone.
func (lr *linkReminder) lookup(ctx context.Context, log *slog.Logger, userID string) (UserInfo, netmail.Address, bool, error) {
	if _, known := lr.notOurs.Load(userID); known {
		return UserInfo{}, netmail.Address{}, false, nil
	}
	u, err := lr.d.Users.User(ctx, userID)
	switch {
	case errors.Is(err, ErrNoUser):
		log.Info("pending link of a user Keystone no longer has; left alone", "user_id", userID)
		return u, netmail.Address{}, false, nil
	case err != nil:
		return u, netmail.Address{}, false, err
	case u.Owner == "":
		lr.notOurs.Store(userID, true)
		log.Debug("pending link of an account kaizen did not create; left alone", "user_id", userID)
		return u, netmail.Address{}, false, nil
	case !u.Enabled:
		log.Info("pending link of a disabled account; left alone", "user_id", userID, "user", u.Name)
		return u, netmail.Address{}, false, nil
	}
	addr := u.Email
	if addr == "" {
		addr = u.Name
	}
	a, err := netmail.ParseAddress(addr)
	if err != nil {
		log.Warn("user has no usable email address; no reminder", "user_id", userID, "user", u.Name)
		return u, netmail.Address{}, false, nil
	}
	if a.Name == "" {
		a.Name = u.FullName
	}
	return u, *a, true, nil
}

func userDisplayName(u UserInfo) string {
	if u.FullName != "" {
		return u.FullName
	}
	return u.Name
}

// remind re-issues the user's link and queues the reminder.
func (lr *linkReminder) remind(ctx context.Context, rc RunContext, log *slog.Logger, t store.Token, retry bool) linkOutcome {
	genKey := lr.key(t.UserID, fmt.Sprintf("reminder-%d", t.CreatedAt.Unix()))
	if _, done, err := lr.d.Ledger.Recorded(ctx, genKey); err != nil {
		return linkOutcome{err: fmt.Errorf("user %s: %w", t.UserID, err)}
	} else if done {
		return linkOutcome{skipped: 1}
	}
	u, to, ok, err := lr.lookup(ctx, log, t.UserID)
	if err != nil {
		return linkOutcome{err: fmt.Errorf("user %s: %w", t.UserID, err)}
	}
	if !ok {
		return linkOutcome{skipped: 1}
	}
	unused := rc.Now.Sub(t.CreatedAt).Round(time.Minute)
	if rc.DryRun {
		return linkOutcome{sent: 1, line: fmt.Sprintf("would re-issue the set-password link of %s (unused for %s) and remind %s",
			u.Name, unused, to.Address)}
	}

	// Reserve: this generation's reminder, then one of the user's slots.
	if fresh, err := lr.d.Ledger.RecordOnce(ctx, genKey, rc.Now); err != nil {
		return linkOutcome{err: fmt.Errorf("user %s: %w", t.UserID, err)}
	} else if !fresh {
		return linkOutcome{skipped: 1} // another run got here first
	}
	slot := ""
	if !lr.counted {
		slot = genKey // nothing more to reserve
	}
	for n := 1; slot == "" && n <= lr.max; n++ {
		k := lr.key(t.UserID, fmt.Sprintf("reminder-no-%d", n))
		fresh, err := lr.d.Ledger.RecordOnce(ctx, k, rc.Now)
		if err != nil {
			lr.forget(ctx, log, genKey)
			return linkOutcome{err: fmt.Errorf("user %s: %w", t.UserID, err)}
		}
		if fresh {
			slot = k
		}
	}
	if slot == "" {
		// The generation key stays: this link is done with.
		log.Info("user had every reminder allowed; waiting for give_up", "user_id", t.UserID, "user", u.Name, "max", lr.max)
		return linkOutcome{skipped: 1}
	}
	fail := func(err error) linkOutcome {
		if slot != genKey {
			lr.forget(ctx, log, slot)
		}
		lr.forget(ctx, log, genKey)
		if _, rerr := lr.d.Ledger.RecordOnce(context.WithoutCancel(ctx), lr.retryKey(t.UserID), rc.Now); rerr != nil {
			log.Error("could not mark a failed reminder for retry", "user_id", t.UserID, "err", rerr)
		}
		return linkOutcome{err: fmt.Errorf("reminding %s (%s): %w", u.Name, t.UserID, err)}
	}

	// Safe: the link is unused, so the user never set a password of their
	// own, and the account is kaizen's (lookup checked the owner): the
	// issuer sets a new temporary password, then issues the link with the
	// same PIN, then queues the reminder.
	var events account.EventLog
	if lr.d.Audit != nil {
		events = lr.d.Audit
	}
	link, err := lr.issuer.IssueLink(ctx, account.LinkRequest{
		User:              cloud.User{ID: t.UserID, Name: u.Name, Email: u.Email, FullName: u.FullName, Enabled: u.Enabled, Owner: u.Owner},
		Purpose:           account.Reminder,
		To:                to,
		Reminder:          kmail.LinkReminderData{Name: userDisplayName(u), Username: u.Name},
		ReminderLedgerKey: genKey,
		Audit:             account.NewRecorder(events, log, "reminders", "reminders job "+lr.name, func() time.Time { return rc.Now }),
	})
	if err != nil {
		return fail(err)
	}
	issued := link.Issued
	// A mark from an earlier failure is spent, whether this link was due
	// by age or by the mark.
	if !retry {
		_, retry, err = lr.d.Ledger.Recorded(ctx, lr.retryKey(t.UserID))
		if err != nil {
			log.Error("could not check for a retry mark", "user_id", t.UserID, "err", err)
			retry = true
		}
	}
	if retry {
		lr.forget(ctx, log, lr.retryKey(t.UserID))
	}
	return linkOutcome{sent: 1, line: fmt.Sprintf("re-issued the set-password link of %s (unused for %s) and reminded %s; the new link expires %s",
		u.Name, unused, to.Address, issued.ExpiresAt.UTC().Format(time.RFC3339))}
}

// giveUpOn tells the helpdesk that the user never set a password.
func (lr *linkReminder) giveUpOn(ctx context.Context, rc RunContext, log *slog.Logger, t store.Token, first time.Time) linkOutcome {
	key := lr.key(t.UserID, "gave-up")
	if _, done, err := lr.d.Ledger.Recorded(ctx, key); err != nil {
		return linkOutcome{err: fmt.Errorf("user %s: %w", t.UserID, err)}
	} else if done {
		return linkOutcome{skipped: 1}
	}
	u, to, ok, err := lr.lookup(ctx, log, t.UserID)
	if err != nil {
		return linkOutcome{err: fmt.Errorf("user %s: %w", t.UserID, err)}
	}
	if !ok {
		return linkOutcome{skipped: 1}
	}
	helpdesk := addressList(lr.helpdesk)
	if rc.DryRun {
		return linkOutcome{sent: 1, line: fmt.Sprintf("would tell %s that %s has not set a password since %s",
			helpdesk, u.Name, first.UTC().Format(time.DateOnly))}
	}
	if fresh, err := lr.d.Ledger.RecordOnce(ctx, key, rc.Now); err != nil {
		return linkOutcome{err: fmt.Errorf("user %s: %w", t.UserID, err)}
	} else if !fresh {
		return linkOutcome{skipped: 1}
	}
	since := first.UTC().Format(time.DateOnly)
	data := kmail.HelpdeskNotifyData{
		Summary: fmt.Sprintf("%s has not set a password since %s", u.Name, since),
		Detail: fmt.Sprintf("Kaizen sent this user a set-password link on %s and reminders since; none was used, and it has stopped reminding. "+
			"Reach them another way, or disable the account if it is no longer wanted.", since),
		Items: []kmail.HelpdeskItem{{Name: userDisplayName(u), Email: to.Address, Username: u.Name,
			Problem: fmt.Sprintf("set-password link unused since %s (link expires %s)", since, t.ExpiresAt.UTC().Format(time.DateOnly))}},
	}
	_, created, err := lr.d.Mail.Queue(ctx, key, kmail.KindHelpdeskNotify, lr.helpdesk, data)
	if err != nil {
		lr.forget(ctx, log, key)
		return linkOutcome{err: fmt.Errorf("telling the helpdesk about %s (%s): %w", u.Name, t.UserID, err)}
	}
	if !created {
		return linkOutcome{skipped: 1}
	}
	return linkOutcome{sent: 1, line: fmt.Sprintf("told %s that %s has not set a password since %s", helpdesk, u.Name, since)}
}

// forget undoes reservations, even when ctx was cancelled half-way.
func (lr *linkReminder) forget(ctx context.Context, log *slog.Logger, keys ...string) {
	ctx = context.WithoutCancel(ctx)
	for _, k := range keys {
		if err := lr.d.Ledger.Forget(ctx, k); err != nil && !errors.Is(err, store.ErrNotFound) {
			log.Error("could not forget a ledger key", "key", k, "err", err)
		}
	}
}

func addressList(as []netmail.Address) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.Address
	}
	return strings.Join(s, ", ")
}
