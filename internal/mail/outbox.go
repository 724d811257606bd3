package mail

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"sync"
	"time"

	"github.com/kaizen-onboard/kaizen/internal/keyring"
	"github.com/kaizen-onboard/kaizen/internal/store"
)

// OutboxStore is what the outbox needs from the state store.
type OutboxStore interface {
	Enqueue(ctx context.Context, m store.Message) (id int64, created bool, err error)
	Claim(ctx context.Context, now time.Time, lease time.Duration, claim string, limit int) ([]store.Message, error)
	MarkSent(ctx context.Context, claim string, now time.Time, ids ...int64) (lost []int64, err error)
	MarkFailed(ctx context.Context, id int64, claim string, now time.Time, lastError string, next time.Time, abandon bool) error
}

// Backoff spaces the attempts of a failing message: Base after the first
// failure, doubling with each further one, never more than Max.
type Backoff struct {
	Base, Max time.Duration
}

// Delay is the wait after the given number of failed attempts (1 = first).
func (b Backoff) Delay(failures int) time.Duration {
	d := b.Base
	for i := 1; i < failures && d < b.Max; i++ {
		d *= 2
	}
	return min(d, b.Max)
}

// OutboxOptions tunes queuing and delivery. Zero values take the defaults
// noted.
type OutboxOptions struct {
	MaxAttempts int           // attempts before a message is abandoned (8)
	Backoff     Backoff       // 1m, doubling up to 6h
	Lease       time.Duration // how long a claim lasts before another sender may take it (5m)
	Batch       int           // messages claimed at once (100)
	Workers     int           // concurrent sends; match the SMTP pool size (4); a killed sender doubles at most this many messages
	// Keys seal each body before it is stored and open it to deliver it
	// (the [secrets] keys). Required: an outbox without them refuses to
	// queue or deliver rather than store a link in plaintext.
	Keys   *keyring.Keyring
	Now    func() time.Time
	Logger *slog.Logger
}

// Outbox queues mail in the store and delivers it through a transport, so
// that no message is lost to a crash or a mail server outage. Delivery is
// at-least-once: a sender that dies between handing a message to the server
// and recording it leaves the message to be sent again once its lease ends;
// each worker has one such message at most.
type Outbox struct {
	box       *keyring.Box // nil without Keys
	store     OutboxStore
	renderer  *Renderer
	composer  *Composer
	transport Transport
	opts      OutboxOptions
}

// NewOutbox wires an outbox. renderer and composer are needed only by
// Queue; a sender that only drains may pass nil for both.
func NewOutbox(s OutboxStore, r *Renderer, c *Composer, t Transport, opts OutboxOptions) *Outbox {
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 8
	}
	if opts.Backoff.Base <= 0 {
		opts.Backoff = Backoff{Base: time.Minute, Max: 6 * time.Hour}
	}
	if opts.Backoff.Max < opts.Backoff.Base {
		opts.Backoff.Max = opts.Backoff.Base
	}
	if opts.Lease <= 0 {
		opts.Lease = 5 * time.Minute
	}
	if opts.Batch <= 0 {
		opts.Batch = 100
	}
	if opts.Workers <= 0 {
		opts.Workers = 4
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	o := &Outbox{store: s, renderer: r, composer: c, transport: t, opts: opts}
	if opts.Keys != nil {
		// Fails only for an empty label.
		o.box, _ = opts.Keys.Box(BodyLabel)
	}
	return o
}

// Queue renders a message of the given kind and stores it for delivery
// under key. Queuing a key again does nothing and returns created=false, so
// a re-run never mails twice.
func (o *Outbox) Queue(ctx context.Context, key, kind string, to []mail.Address, data any) (id int64, created bool, err error) {
	if o.renderer == nil || o.composer == nil {
		return 0, false, errors.New("mail: this outbox was built without a renderer and composer")
	}
	if len(to) == 0 {
		return 0, false, fmt.Errorf("queuing %s mail %q: no recipient", kind, key)
	}
	if o.box == nil {
		return 0, false, fmt.Errorf("queuing %s mail %q: %w", kind, key, errNoKeys)
	}
	r, err := o.renderer.Render(kind, data)
	if err != nil {
		return 0, false, fmt.Errorf("queuing %s mail %q: %w", kind, key, err)
	}
	body, err := o.composer.Compose(to, r)
	if err != nil {
		return 0, false, fmt.Errorf("queuing %s mail %q: %w", kind, key, err)
	}
	rcpts := make([]string, len(to))
	for i, a := range to {
		rcpts[i] = a.Address
	}
	now := o.opts.Now()
	m := store.Message{Key: key, Kind: kind, From: o.composer.Sender(), To: rcpts, CreatedAt: now, NextAttemptAt: now}
	if m.Body, err = o.seal(m, body); err != nil {
		return 0, false, fmt.Errorf("queuing %s mail %q: %w", kind, key, err)
	}
	id, created, err = o.store.Enqueue(ctx, m)
	if err != nil {
		return 0, false, fmt.Errorf("queuing %s mail %q: %w", kind, key, err)
	}
	return id, created, nil
}

// Failure is a message, or some of its recipients, not delivered in a drain.
type Failure struct {
	ID        int64
	Key       string
	To        []string
	Err       string
	Abandoned bool // given up for good; otherwise retried later
}

// Report sums up one Drain.
type Report struct {
	Sent      int // messages handed to the mail server (or maildir)
	Retrying  int // messages that failed and wait for their next attempt
	Abandoned int // messages given up: permanent refusal or max attempts
	Failures  []Failure
}

// recordTimeout bounds the store write that records a delivery. The write
// outlives a cancelled drain: the server has the message, and a record
// given up on would have it sent again.
const recordTimeout = 30 * time.Second

// Drain delivers every message due now and returns. Messages that fail
// temporarily wait out their backoff and are left for a later drain.
func (o *Outbox) Drain(ctx context.Context) (Report, error) {
	var rep Report
	var mu sync.Mutex // guards rep
	record := func(f func(*Report)) {
		mu.Lock()
		defer mu.Unlock()
		f(&rep)
	}
	if o.box == nil {
		return rep, errNoKeys
	}
	claim := rand.Text()
	for {
		msgs, err := o.store.Claim(ctx, o.opts.Now(), o.opts.Lease, claim, o.opts.Batch)
		if err != nil {
			return rep, fmt.Errorf("claiming queued mail: %w", err)
		}
		if len(msgs) == 0 {
			return rep, nil
		}
		// A store failure stops the drain; the claimed messages are retried
		// by a later drain once their lease ends.
		if err := o.deliverBatch(ctx, claim, msgs, record); err != nil {
			return rep, err
		}
		if err := ctx.Err(); err != nil {
			return rep, err
		}
	}
}

// delivered asks the recorder to record one delivery; done gets the
// outcome once it is durable.
type delivered struct {
	m    store.Message
	done chan error
}

// errNotRecorded answers the workers whose delivery the recorder could not
// record; the store's error itself is reported once, by the recorder.
var errNotRecorded = errors.New("delivery not recorded")

// gatedTransport can hold back the end of a message, which makes the server
// take it, until the caller is ready ([SMTP.SendAfter]).
type gatedTransport interface {
	SendAfter(ctx context.Context, from string, to []string, msg []byte, ready func() error) error
}

// deliverBatch sends claimed messages on Workers goroutines. A worker ends
// a message (the SMTP server takes it at the final dot) only once its
// previous delivery is recorded, so a sender killed at any moment leaves
// at most one message per worker — one per SMTP connection — that the
// server took and the store does not know of. The record is written while
// the next message's envelope and text go out, and deliveries recorded at
// the same moment share one store write (group commit). Once the store
// fails, no further message is ended: it could not be recorded, so it
// would only be sent again after its lease.
func (o *Outbox) deliverBatch(ctx context.Context, claim string, msgs []store.Message, record func(func(*Report))) error {
	workers := min(o.opts.Workers, len(msgs))
	jobs := make(chan store.Message)
	sent := make(chan delivered, workers) // a worker has one delivery in it at most
	errs := make(chan error, len(msgs)+1)
	stop := make(chan struct{})
	var stopOnce sync.Once
	fail := func(err error) {
		errs <- err
		stopOnce.Do(func() { close(stop) })
	}
	var running, recorder sync.WaitGroup
	recorder.Go(func() { o.recordSent(ctx, claim, sent, workers, record, fail) })
	for range workers {
		running.Go(func() {
			// pending is the outcome of recording this worker's last
			// delivery, until recorded has read it.
			var pending chan error
			recorded := func() error {
				if pending == nil {
					return nil
				}
				err := <-pending
				pending = nil
				return err
			}
			submit := func(m store.Message) {
				pending = make(chan error, 1)
				sent <- delivered{m: m, done: pending}
			}
			for m := range jobs {
				select {
				case <-stop: // handed out as the store failed
					continue
				default:
				}
				if err := o.deliver(ctx, claim, m, recorded, submit, record); err != nil && !errors.Is(err, errNotRecorded) {
					fail(err)
				}
			}
			_ = recorded() // a failure was reported by the recorder
		})
	}
feed:
	for _, m := range msgs {
		select { // checked first: a select picks at random among ready cases
		case <-stop:
			break feed
		default:
		}
		select {
		case jobs <- m:
		case <-stop:
			break feed
		}
	}
	close(jobs)
	running.Wait()
	close(sent)
	recorder.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	return errors.Join(all...)
}

// recordSent marks delivered messages sent until sent is closed: each
// write takes the deliveries waiting at that moment, at most one per
// worker, and answers them once it has committed. After the first store
// failure, passed to fail at once, it records nothing more and answers
// errNotRecorded.
func (o *Outbox) recordSent(ctx context.Context, claim string, sent <-chan delivered, workers int, record func(func(*Report)), fail func(error)) {
	failed := false
	group := make([]delivered, 0, workers)
	for d := range sent {
		group = append(group[:0], d)
	more:
		for len(group) < workers {
			select {
			case d, ok := <-sent:
				if !ok {
					break more
				}
				group = append(group, d)
			default:
				break more
			}
		}
		err := errNotRecorded
		if !failed {
			err = o.markSent(ctx, claim, group, record)
			if err != nil {
				failed = true
				fail(err)
				err = errNotRecorded
			}
		}
		for _, d := range group {
			d.done <- err
		}
	}
}

// markSent records one group of deliveries in one store write.
func (o *Outbox) markSent(ctx context.Context, claim string, group []delivered, record func(func(*Report))) error {
	ids := make([]int64, len(group))
	for i, d := range group {
		ids[i] = d.m.ID
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	lost, err := o.store.MarkSent(wctx, claim, o.opts.Now(), ids...)
	if err != nil {
		return fmt.Errorf("recording delivery of %d message(s): %w", len(ids), err)
	}
	for _, id := range lost {
		// Sent after the lease ran out and someone re-claimed it: the
		// other sender may deliver a second copy (at-least-once).
		o.opts.Logger.Warn("lease lost before delivery was recorded; the message may be delivered twice", "message_id", id)
	}
	record(func(r *Report) { r.Sent += len(ids) })
	return nil
}

// deliver sends one claimed message and records the outcome: a delivery
// is handed to submit, for the recorder; a failure is recorded on the
// message here. recorded waits for the worker's previous delivery to be
// recorded; the message is ended only after it has. Only a failure to
// record is returned.
func (o *Outbox) deliver(ctx context.Context, claim string, m store.Message, recorded func() error, submit func(store.Message), record func(func(*Report))) error {
	log := o.opts.Logger.With("message_id", m.ID, "key", m.Key, "kind", m.Kind)
	body, err := o.open(m, log)
	if err != nil {
		return o.unopened(ctx, claim, m, err, log, record)
	}
	var sendErr error
	if g, ok := o.transport.(gatedTransport); ok {
		sendErr = g.SendAfter(ctx, m.From, m.To, body, recorded)
	} else {
		if err := recorded(); err != nil {
			return err
		}
		sendErr = o.transport.Send(ctx, m.From, m.To, body)
	}
	if errors.Is(sendErr, errNotRecorded) {
		// Not ended, so not sent: it goes out after its lease.
		return sendErr
	}
	now := o.opts.Now()

	refused := RefusedRecipients(sendErr)
	if sendErr == nil || (len(refused) > 0 && len(refused) < len(m.To)) {
		submit(m)
		if sendErr != nil {
			// Delivered to some recipients: retry only the others, as a
			// message of their own, so nobody receives it twice.
			return o.partial(ctx, m, body, refused, now, log, record)
		}
		return nil
	}

	// Claim counted this attempt already, so a sender that keeps crashing
	// mid-send still runs out of attempts.
	failures := max(m.Attempts, 1)
	abandon := IsPermanent(sendErr) || failures >= o.opts.MaxAttempts
	next := now.Add(o.opts.Backoff.Delay(failures))
	if err := o.store.MarkFailed(ctx, m.ID, claim, now, sendErr.Error(), next, abandon); err != nil {
		if errors.Is(err, store.ErrConflict) {
			log.Warn("lease lost before the failure was recorded; another sender has the message")
			return nil
		}
		return fmt.Errorf("recording failed delivery of message %d: %w", m.ID, err)
	}
	f := Failure{ID: m.ID, Key: m.Key, To: m.To, Err: sendErr.Error(), Abandoned: abandon}
	if abandon {
		log.Error("mail abandoned", "attempts", failures, "error", sendErr)
		record(func(r *Report) { r.Abandoned++; r.Failures = append(r.Failures, f) })
	} else {
		log.Warn("mail delivery failed; will retry", "attempts", failures, "next_attempt", next, "error", sendErr)
		record(func(r *Report) { r.Retrying++; r.Failures = append(r.Failures, f) })
	}
	return nil
}

// partial records the recipients a delivered message was refused for:
// permanent refusals are reported; temporary ones are queued again for
// those recipients alone, under a key derived from the original.
func (o *Outbox) partial(ctx context.Context, m store.Message, body []byte, refused []*RecipientError, now time.Time, log *slog.Logger, record func(func(*Report))) error {
	for _, re := range refused {
		permanent := IsPermanent(re)
		f := Failure{ID: m.ID, Key: m.Key, To: []string{re.Address}, Err: re.Error(), Abandoned: permanent}
		log.Warn("recipient refused", "recipient", re.Address, "code", re.Code, "retry", !permanent)
		record(func(r *Report) { r.Failures = append(r.Failures, f) })
		if permanent {
			continue
		}
		again := store.Message{
			Key: m.Key + "#" + re.Address, Kind: m.Kind, From: m.From, To: []string{re.Address},
			CreatedAt: now, NextAttemptAt: now.Add(o.opts.Backoff.Delay(1)),
		}
		// Sealed anew: the additional data names the new key and recipient.
		sealed, err := o.seal(again, body)
		if err == nil {
			again.Body = sealed
			_, _, err = o.store.Enqueue(ctx, again)
		}
		if err != nil {
			return fmt.Errorf("queuing message %d again for <%s>: %w", m.ID, re.Address, err)
		}
	}
	return nil
}
