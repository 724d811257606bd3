package sheet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
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
)

// RetryPolicy says how transient Google errors (429, 500, 502, 503, 504 and
// network errors) are retried: up to Attempts calls in all, waiting Base,
// 2×Base, 4×Base, ... capped at Max between them.
type RetryPolicy struct {
	Attempts int           // total attempts; 0 means 5, 1 disables retries
	Base     time.Duration // first wait; 0 means 500ms
	Max      time.Duration // longest wait; 0 means 30s
	// Sleep waits d or until ctx ends (returning its error). nil means a
	// real timer; tests inject a recorder.
	Sleep func(ctx context.Context, d time.Duration) error
}

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.Attempts <= 0 {
		p.Attempts = 5
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
	if p.Sleep == nil {
		p.Sleep = sleepCtx
	}
	return p
}

// delay is the wait after failed attempt n (0-based).
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

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
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
	}, nil
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
	rng := quoteSheet(g.worksheet)
	var vr *sheets.ValueRange
	err := g.do(ctx, rng, func() error {
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

// WriteChecked writes values (header name → plain text) into one row. It
// first re-reads the worksheet and checks that row still has identity id; if
// not, it writes to the single row that does (rows were sorted or inserted)
// or refuses with ErrRowNotFound / ErrAmbiguousRow. Values are written RAW
// (never parsed as formulas or numbers) in one values.batchUpdate call. It
// returns the row number written. It is WriteBatch with one write.
//
// Google Sheets has no compare-and-set: a row moved between the re-read and
// the write (a window of one API call) is not detected.
func (g *Google) WriteChecked(ctx context.Context, row int, id Identity, values map[string]string) (int, error) {
	res, err := g.WriteBatch(ctx, []Write{{Row: row, ID: id, Values: values}})
	if err != nil {
		return 0, err
	}
	return res[0].Row, res[0].Err
}

// WriteBatch writes several rows with two API calls in all: it re-reads the
// worksheet once, locates each write's row by identity as WriteChecked does
// (following moved rows), and writes every located row in one
// values.batchUpdate call, RAW. That keeps a run that records many outcomes
// well inside the Sheets quota (60 requests a minute per user).
//
// Problems of a single write (its row is gone or ambiguous, a column is
// unknown, its identity is empty) are reported in that write's WriteResult
// and do not stop the others. Several writes that locate the same row all
// fail with ErrAmbiguousRow and none of them is written. Results are in the
// order of writes. With no write located, no write call is made; with no
// writes at all, no call is made.
//
// The error is for the batch as a whole: the re-read or the write call
// failed (after retries), and results are nil. A rejected values.batchUpdate
// writes nothing: Google validates the request as a whole before applying it
// (the all-or-nothing promise is documented for spreadsheets.batchUpdate;
// values.batchUpdate behaves the same for invalid ranges). Only when the
// connection fails after Google received the call is it unknown whether it
// was applied; the writes set fixed values, so repeating the batch is safe.
//
// As with WriteChecked, rows moved between the re-read and the write are
// not detected.
func (g *Google) WriteBatch(ctx context.Context, writes []Write) ([]WriteResult, error) {
	if len(writes) == 0 {
		return []WriteResult{}, nil
	}
	t, err := g.Read(ctx)
	if err != nil {
		return nil, err
	}
	sheet := quoteSheet(g.worksheet)
	results, targets := plan(t, g.cols, writes, g.where(sheet))
	if len(targets) == 0 {
		return results, nil
	}
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
	rng := sheet
	if len(targets) == 1 {
		rng += "!" + strconv.Itoa(targets[0].row) + ":" + strconv.Itoa(targets[0].row)
	}
	err = g.do(ctx, rng, func() error {
		_, err := g.svc.Spreadsheets.Values.BatchUpdate(g.id, req).Context(ctx).Do()
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("writing %s of %s: %w", rowsText(targets), g.where(sheet), err)
	}
	return results, nil
}

func (g *Google) where(rng string) string {
	return fmt.Sprintf("spreadsheet %q range %s", g.id, rng)
}

// do runs call, retrying transient failures, and explains permanent ones.
func (g *Google) do(ctx context.Context, rng string, call func() error) error {
	p := g.retry
	var err error
	for n := 0; ; n++ {
		err = call()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil || !transient(err) || n+1 >= p.Attempts {
			break
		}
		if serr := p.Sleep(ctx, p.delay(n)); serr != nil {
			return fmt.Errorf("%w (while retrying after: %w)", serr, err)
		}
	}
	return g.explain(err, rng)
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
