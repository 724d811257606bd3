package sheet

import (
	"context"
	crand "crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/option"
	"google.golang.org/api/sheets/v4"

	kbackoff "github.com/kaizen-onboard/kaizen/internal/backoff"
)

// RetryPolicy says how transient Google errors (429, 500, 502, 503, 504 and
// network errors) are retried. A 429 or 503 with a Retry-After header waits
// as long as it says; otherwise waits grow exponentially (Base, 2×Base, ...
// capped at Max) with jitter. One call, or one WriteBatch with every read
// and write it makes, waits at most MaxWait in all: long enough by default
// to outlast a spent per-minute quota (Google refills it every minute).
type RetryPolicy struct {
	Attempts int           // total attempts per call; 0 means no cap (MaxWait bounds them), 1 disables retries
	Base     time.Duration // first wait; 0 means 500ms
	Max      time.Duration // longest single wait; 0 means 30s
	MaxWait  time.Duration // total waiting; 0 means 2m
	// Sleep waits d or until ctx ends (returning its error). nil means a
	// real timer; tests inject a recorder (and advance a fake clock).
	Sleep func(ctx context.Context, d time.Duration) error
	// Jitter picks the actual wait for an exponential delay d; nil means a
	// random wait in [d/2, d], so clients that failed together do not
	// retry together. Retry-After waits are not jittered.
	Jitter func(d time.Duration) time.Duration
}

// DefaultRetryMaxWait is RetryPolicy.MaxWait's default.
const DefaultRetryMaxWait = 2 * time.Minute

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.Attempts < 0 {
		p.Attempts = 0
	}
	if p.Base <= 0 {
		p.Base = 500 * time.Millisecond
	}
	if p.Max <= 0 {
		p.Max = 30 * time.Second
	}
	if p.Max < p.Base {
		p.Max = p.Base
	}
	if p.MaxWait <= 0 {
		p.MaxWait = DefaultRetryMaxWait
	}
	if p.Sleep == nil {
		p.Sleep = kbackoff.Sleep
	}
	if p.Jitter == nil {
		p.Jitter = halfJitter
	}
	return p
}

func halfJitter(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2+1)
}

// delay is the exponential wait after failed attempt n (0-based), before
// jitter.
func (p RetryPolicy) delay(n int) time.Duration {
	d := p.Base
	for range n {
		if d >= p.Max/2 {
			return p.Max
		}
		d *= 2
	}
	return min(d, p.Max)
}

// backoff is the retry state of one operation: how many attempts of the
// current call failed and how long it waited in all.
type backoff struct {
	p      RetryPolicy
	n      int
	waited time.Duration
}

func (g *Google) newBackoff() *backoff { return &backoff{p: g.retry} }

// again waits before retrying after err and reports whether to retry: not
// for a permanent error, a spent attempt cap or wait budget, or a
// Retry-After beyond the budget (waiting would be in vain). The error is
// ctx's, when it ended during the wait.
func (b *backoff) again(ctx context.Context, err error) (bool, error) {
	if ctx.Err() != nil || !transient(err) {
		return false, nil
	}
	b.n++
	if b.p.Attempts > 0 && b.n >= b.p.Attempts {
		return false, nil
	}
	left := b.p.MaxWait - b.waited
	if left <= 0 {
		return false, nil
	}
	d, asked := retryAfter(err)
	if asked {
		if d > left {
			return false, nil
		}
	} else {
		d = min(b.p.Jitter(b.p.delay(b.n-1)), left)
	}
	b.waited += d
	if serr := b.p.Sleep(ctx, d); serr != nil {
		return false, fmt.Errorf("%w (while retrying after: %w)", serr, err)
	}
	return true, nil
}

// reset starts the count of attempts afresh for the next call; the wait
// budget stays shared.
func (b *backoff) reset() { b.n = 0 }

// retryAfter reads a Retry-After header (seconds or an HTTP date) of a 429
// or 503.
func retryAfter(err error) (time.Duration, bool) {
	var ge *googleapi.Error
	if !errors.As(err, &ge) || ge.Header == nil ||
		(ge.Code != http.StatusTooManyRequests && ge.Code != http.StatusServiceUnavailable) {
		return 0, false
	}
	return kbackoff.RetryAfter(ge.Header, time.Now())
}

// Options configure a Google sheet.
type Options struct {
	SpreadsheetID string
	Worksheet     string // tab name, e.g. "Form Responses 1"
	// CredentialsJSON is a service-account key file's content.
	CredentialsJSON []byte
	// Endpoint overrides the Sheets API base URL; "" means Google.
	Endpoint string
	// HTTPClient, if set, carries both token and API requests (it must not
	// add authentication itself).
	HTTPClient *http.Client
	Retry      RetryPolicy
	// Random names each write-back's row anchors; nil means crypto/rand.
	Random io.Reader
	// TimestampColumn and EmailColumn name the identity columns;
	// "" means the default header (config.DefaultSheetColumns).
	TimestampColumn string
	EmailColumn     string
}

// Google is a sign-up table in a Google Sheets worksheet.
type Google struct {
	svc         *sheets.Service
	id          string
	worksheet   string
	clientEmail string
	retry       RetryPolicy
	cols        identityCols
	sid         sheetIDCache
	random      io.Reader
}

// NewGoogle authenticates as the service account in opts.CredentialsJSON
// and returns the worksheet. It makes no API call. The credentials outlive
// ctx's cancellation (token refreshes use the context of each call's
// transport), but keep ctx's values.
func NewGoogle(ctx context.Context, opts Options) (*Google, error) {
	var problems []string
	if strings.TrimSpace(opts.SpreadsheetID) == "" {
		problems = append(problems, "spreadsheet ID is empty")
	}
	if opts.Worksheet == "" {
		problems = append(problems, "worksheet name is empty")
	}
	if len(opts.CredentialsJSON) == 0 {
		problems = append(problems, "service-account credentials are empty")
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("google sheet: %s", strings.Join(problems, "; "))
	}
	var key struct {
		ClientEmail string `json:"client_email"`
	}
	if err := json.Unmarshal(opts.CredentialsJSON, &key); err != nil {
		// Never echo the content: it holds a private key.
		return nil, errors.New("google sheet: service-account credentials are not valid JSON")
	}
	credCtx := context.WithoutCancel(ctx)
	if opts.HTTPClient != nil {
		credCtx = context.WithValue(credCtx, oauth2.HTTPClient, opts.HTTPClient)
	}
	creds, err := google.CredentialsFromJSONWithType(credCtx, opts.CredentialsJSON, google.ServiceAccount, sheets.SpreadsheetsScope)
	if err != nil {
		return nil, fmt.Errorf("google sheet: loading service-account credentials: %w", err)
	}
	var copts []option.ClientOption
	if opts.HTTPClient != nil {
		copts = append(copts, option.WithHTTPClient(oauth2.NewClient(credCtx, creds.TokenSource)))
	} else {
		copts = append(copts, option.WithTokenSource(creds.TokenSource))
	}
	if opts.Endpoint != "" {
		copts = append(copts, option.WithEndpoint(opts.Endpoint))
	}
	svc, err := sheets.NewService(ctx, copts...)
	if err != nil {
		return nil, fmt.Errorf("google sheet: creating Sheets client: %w", err)
	}
	return &Google{
		svc:         svc,
		id:          opts.SpreadsheetID,
		worksheet:   opts.Worksheet,
		clientEmail: key.ClientEmail,
		retry:       opts.Retry.withDefaults(),
		cols:        identityCols{opts.TimestampColumn, opts.EmailColumn}.orDefault(),
		random:      randomOr(opts.Random),
	}, nil
}

func randomOr(r io.Reader) io.Reader {
	if r == nil {
		return crand.Reader
	}
	return r
}

// ServiceAccountEmail is the client_email the spreadsheet must be shared with.
func (g *Google) ServiceAccountEmail() string { return g.clientEmail }

// quoteSheet quotes a sheet name for A1 notation, doubling single quotes.
func quoteSheet(name string) string {
	return "'" + strings.ReplaceAll(name, "'", "''") + "'"
}

// columnName turns a 0-based column index into letters: 0 → A, 26 → AA.
func columnName(i int) string {
	var b []byte
	for i++; i > 0; i = (i - 1) / 26 {
		b = append([]byte{byte('A' + (i-1)%26)}, b...)
	}
	return string(b)
}

func (g *Google) cellRange(row, col int) string {
	return quoteSheet(g.worksheet) + "!" + columnName(col) + strconv.Itoa(row)
}

// Read reads the whole worksheet as displayed (formatted values).
func (g *Google) Read(ctx context.Context) (*Table, error) {
	return g.read(ctx, g.newBackoff())
}

func (g *Google) read(ctx context.Context, b *backoff) (*Table, error) {
	rng := quoteSheet(g.worksheet)
	var vr *sheets.ValueRange
	err := g.do(ctx, rng, b, func() error {
		var err error
		vr, err = g.svc.Spreadsheets.Values.Get(g.id, rng).
			MajorDimension("ROWS").
			ValueRenderOption("FORMATTED_VALUE").
			Context(ctx).Do()
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", g.where(rng), err)
	}
	rows := make([][]string, len(vr.Values))
	for i, r := range vr.Values {
		rows[i] = make([]string, len(r))
		for j, v := range r {
			if s, ok := v.(string); ok {
				rows[i][j] = s
			} else if v != nil {
				rows[i][j] = fmt.Sprint(v)
			}
		}
	}
	return newTable(rows), nil
}

// WriteChecked writes values (header name → plain text) into one row,
// found by identity id as WriteBatch finds it, and returns the row number
// written. It is WriteBatch with one write.
func (g *Google) WriteChecked(ctx context.Context, row int, id Identity, values map[string]string) (int, error) {
	res, err := g.WriteBatch(ctx, []Write{{Row: row, ID: id, Values: values}})
	if err != nil {
		return 0, err
	}
	return res[0].Row, res[0].Err
}

// WriteBatch writes several rows, RAW (never parsed as formulas or
// numbers), by identity. One round is six calls for the whole batch, well
// inside the Sheets quota (60 reads and 60 writes a minute per user):
//
//  1. re-read the worksheet and locate each write's row by identity
//     (following rows sorted, inserted or deleted since they were read);
//  2. anchor each located row with developer metadata (one
//     spreadsheets.batchUpdate; row metadata moves with its row when rows
//     are inserted or deleted);
//  3. read the anchored rows (values.batchGetByDataFilter) and keep the
//     anchors that sit on the row with the write's identity; the others
//     (the row moved between 1 and 2) go to a new round, a few at most;
//  4. write by anchor (values.batchUpdateByDataFilter), so the values land
//     in the anchored row wherever inserts and deletes moved it;
//  5. drop the anchors;
//  6. read the worksheet back and check each written row still carries its
//     identity and the values.
//
// Google does not document whether a sort carries row metadata along, so
// step 6 catches rows sorted in the moment of the write: the values are
// written again where the row is now, and the cells they overwrote in the
// row that took its place are restored from the re-read when that row was
// in it; a row typed in after the re-read has its overwritten cells cleared
// and reported (WriteResult.Damage), since nobody knows what they held.
// Repairs are checked the same way, a few rounds at most.
//
// Every retry (after a 429, 5xx or network failure) starts again from the
// re-read, so it never repeats a stale position; waits follow the
// RetryPolicy, with one wait budget for the whole batch. Nothing, a PIN
// redaction least of all, is written to a row whose identity was not
// confirmed by the read just before its write.
//
// Problems of a single write (its row is gone or ambiguous, a column is
// unknown, its identity is empty) are reported in that write's WriteResult
// and do not stop the others. Several writes that locate the same row all
// fail with ErrAmbiguousRow and none of them is written. Results are in the
// order of writes. With no writes at all, no call is made.
//
// The error is for the batch as a whole: a call failed (after retries)
// before anything was written, and results are nil. A failed call changes
// nothing (Google applies a request atomically); when the connection fails
// after Google received the call it is unknown, but the writes set fixed
// values, so repeating the batch is safe.
func (g *Google) WriteBatch(ctx context.Context, writes []Write) ([]WriteResult, error) {
	if len(writes) == 0 {
		return []WriteResult{}, nil
	}
	sheet := quoteSheet(g.worksheet)
	b := g.newBackoff()
	results := make([]WriteResult, len(writes))
	pending := make([]int, len(writes))
	for i := range pending {
		pending[i] = i
	}
	wrote := false
	for round := 1; len(pending) > 0; {
		t, err := g.read(ctx, b)
		if err == nil {
			var done []written
			var again []int
			done, again, err = g.writeRound(ctx, b, t, writes, pending, results)
			if err == nil {
				wrote = wrote || len(done) > 0
				g.verify(ctx, b, t, writes, results, done)
				if pending = again; len(pending) > 0 {
					if round++; round > anchorRounds {
						for _, w := range pending {
							results[w] = WriteResult{Moved: true, Err: fmt.Errorf("writing row %d of %s: row (%s) %w while it was being written; nothing written: %w",
								writes[w].Row, g.where(sheet), writes[w].ID, errKeptMoving, ErrRowNotFound)}
						}
						break
					}
				}
				continue
			}
		}
		retry, serr := b.again(ctx, err)
		if serr != nil {
			err = serr
		}
		if retry {
			b.reset()
			continue
		}
		err = fmt.Errorf("writing %s of %s: %w", rowsText(pendingRows(writes, pending)), g.where(sheet), g.explain(err, sheet))
		if !wrote {
			return nil, err
		}
		// Some rounds were written: the rest fail one by one.
		for _, w := range pending {
			results[w] = WriteResult{Err: err}
		}
		break
	}
	return results, nil
}

func pendingRows(writes []Write, pending []int) []target {
	out := make([]target, len(pending))
	for i, w := range pending {
		out[i] = target{row: writes[w].Row}
	}
	return out
}

// put writes the targets' cells in one values.batchUpdate call, once.
func (g *Google) put(ctx context.Context, targets []target) error {
	req := &sheets.BatchUpdateValuesRequest{ValueInputOption: "RAW"}
	for _, tg := range targets {
		for _, col := range slices.Sorted(maps.Keys(tg.cells)) {
			req.Data = append(req.Data, &sheets.ValueRange{
				Range:          g.cellRange(tg.row, col),
				MajorDimension: "ROWS",
				Values:         [][]any{{tg.cells[col]}},
			})
		}
	}
	_, err := g.svc.Spreadsheets.Values.BatchUpdate(g.id, req).Context(ctx).Do()
	return err
}

func (g *Google) where(rng string) string {
	return fmt.Sprintf("spreadsheet %q range %s", g.id, rng)
}

// do runs call, retrying transient failures as b allows, and explains
// permanent ones.
func (g *Google) do(ctx context.Context, rng string, b *backoff, call func() error) error {
	b.reset()
	for {
		err := call()
		if err == nil {
			return nil
		}
		retry, serr := b.again(ctx, err)
		if serr != nil {
			return serr
		}
		if !retry {
			return g.explain(err, rng)
		}
	}
}

// transient reports whether err is worth retrying.
func transient(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		return re.Response != nil && retryableStatus(re.Response.StatusCode)
	}
	var ge *googleapi.Error
	if errors.As(err, &ge) {
		return retryableStatus(ge.Code)
	}
	// A *url.Error is itself a net.Error: judge what it wraps instead, so a
	// malformed endpoint is not retried.
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var op *net.OpError
	var dns *net.DNSError
	var ne net.Error
	return errors.As(err, &op) || errors.As(err, &dns) ||
		(errors.As(err, &ne) && ne.Timeout()) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)
}

func retryableStatus(code int) bool {
	switch code {
	case http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

func (g *Google) explain(err error, rng string) error {
	var ge *googleapi.Error
	if !errors.As(err, &ge) {
		return err
	}
	switch ge.Code {
	case http.StatusForbidden:
		who := g.clientEmail
		if who == "" {
			who = "the service account (client_email in the credentials file)"
		}
		return fmt.Errorf("permission denied on spreadsheet %q: share the spreadsheet with %s as Editor (and check the Sheets API is enabled for its project): %w", g.id, who, err)
	case http.StatusNotFound:
		return fmt.Errorf("spreadsheet %q not found: check sheet.spreadsheet_id (the long ID in the sheet's URL) and that it is shared with %s: %w", g.id, g.clientEmail, err)
	case http.StatusBadRequest:
		return fmt.Errorf("bad request for range %s of spreadsheet %q: check that worksheet %q exists (sheet.worksheet; the tab name, not the file name): %w", rng, g.id, g.worksheet, err)
	case http.StatusUnauthorized:
		return fmt.Errorf("authentication failed for spreadsheet %q as %s: check the service-account key is current: %w", g.id, g.clientEmail, err)
	}
	return err
}
