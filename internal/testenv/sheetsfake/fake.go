// Package sheetsfake is an in-process fake of the Google Sheets v4 REST API
// and of Google's OAuth2 token endpoint, so the real sheets/v4 client and the
// real service-account JWT flow run end to end in tests.
//
// Simplifications against real Google, kept deliberately small:
//   - Formulas are stored, never evaluated: FORMATTED_VALUE and
//     UNFORMATTED_VALUE reads of a formula cell return its text ("=1+1").
//   - USER_ENTERED recognises formulas, a leading apostrophe, TRUE/FALSE and
//     numbers (with optional sign, $, thousands commas, exponent, %), but not
//     dates or times: those stay text. Numbers render in a plain General
//     format (no 10-significant-digit rounding); a number typed with $ , or %
//     renders exactly as typed.
//   - values.append finds the table as the rows below the range's top row
//     holding any value within the range's columns; Google's contiguity
//     rules are not modelled. It grows the grid (rows and columns) as needed.
//   - A single-cell range in a write is an anchor bounded only by the grid,
//     even when written as B2:B2.
//   - drive.file is treated like full drive access.
//   - Named ranges, R1C1 notation, gridRange data filters and
//     includeGridData=true are not supported; fields and other unknown
//     query parameters are ignored. Developer metadata exists on rows only
//     (see metadata.go).
//
// Beyond the API, a test can turn on Google's per-minute quotas (SetQuota:
// reads and writes counted apart, per user, on an injectable clock, with
// Google's 429 RESOURCE_EXHAUSTED body), edit the grid between a client's
// calls as a person would (SetHook with InsertRow, DeleteRow, SortRows),
// and count the cells each write set (CellWrites).
package sheetsfake

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"

	"golang.org/x/oauth2/google"
	"google.golang.org/api/option"
	"google.golang.org/api/sheets/v4"
)

// Fake is an in-process stand-in for the Google Sheets v4 REST API and
// Google's OAuth2 token endpoint. Create it with New.
type Fake struct {
	srv       *httptest.Server
	key       *rsa.PrivateKey
	keyID     string
	email     string
	clientID  string
	projectID string
	projectNo string

	mu             sync.Mutex
	books          map[string]*book
	tokens         map[string]grant
	failures       []int
	requests       []RecordedRequest
	tokenExchanges int
	quota          *quotaState
	quotaRefused   int
	hook           func(op string)
}

// RecordedRequest is one request the fake served, token requests included.
type RecordedRequest struct {
	Method        string
	Path          string     // unescaped URL path
	Query         url.Values // parsed query string
	Op            string     // "token", "spreadsheets.get", "spreadsheets.batchUpdate", "values.get", "values.batchGet", "values.update", "values.batchUpdate", "values.append", "values.clear", "values.batchClear", "values.batchGetByDataFilter", "values.batchUpdateByDataFilter", or "" for an unknown path
	SpreadsheetID string
	Status        int
}

// New starts the fake; it is closed when t finishes. It has no spreadsheets
// until AddSpreadsheet is called.
func New(t testing.TB) *Fake {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatalf("sheetsfake: generating service-account key: %v", err)
	}
	f := &Fake{
		key:       key,
		keyID:     randHex(20),
		email:     "kaizen-test@kaizen-test.iam.gserviceaccount.com",
		clientID:  "1" + strconv.FormatUint(mrand.Uint64N(1e18), 10),
		projectID: "kaizen-test",
		projectNo: strconv.FormatUint(1e11+mrand.Uint64N(9e11), 10),
		books:     map[string]*book{},
		tokens:    map[string]grant{},
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serveHTTP))
	t.Cleanup(f.srv.Close)
	return f
}

// Endpoint is the base URL to pass to option.WithEndpoint.
func (f *Fake) Endpoint() string { return f.srv.URL + "/" }

// TokenURL is the OAuth2 token endpoint, as written into ServiceAccountJSON.
func (f *Fake) TokenURL() string { return f.srv.URL + tokenPath }

// ServiceAccountEmail is the client_email of the fake's service account.
func (f *Fake) ServiceAccountEmail() string { return f.email }

// ServiceAccountJSON returns a service-account key file whose token_uri
// points at the fake, usable with google.CredentialsFromJSONWithType.
func (f *Fake) ServiceAccountJSON() []byte {
	der, err := x509.MarshalPKCS8PrivateKey(f.key)
	if err != nil {
		panic(err) // cannot happen for an RSA key
	}
	b, err := json.MarshalIndent(map[string]string{
		"type":                        "service_account",
		"project_id":                  f.projectID,
		"private_key_id":              f.keyID,
		"private_key":                 string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email":                f.email,
		"client_id":                   f.clientID,
		"auth_uri":                    "https://accounts.google.com/o/oauth2/auth",
		"token_uri":                   f.TokenURL(),
		"auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
		"client_x509_cert_url":        "https://www.googleapis.com/robot/v1/metadata/x509/" + url.PathEscape(f.email),
		"universe_domain":             "googleapis.com",
	}, "", "  ")
	if err != nil {
		panic(err)
	}
	return b
}

// ServiceAccountFile writes ServiceAccountJSON to a file in t.TempDir() and
// returns its path, for code configured with a key-file path.
func (f *Fake) ServiceAccountFile(t testing.TB) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "service-account.json")
	if err := os.WriteFile(p, f.ServiceAccountJSON(), 0o600); err != nil {
		t.Fatalf("sheetsfake: writing service-account key: %v", err)
	}
	return p
}

// Service returns a real sheets.Service talking to the fake, authenticated
// through the real golang.org/x/oauth2/google service-account JWT flow.
// scopes defaults to sheets.SpreadsheetsScope. ctx is kept by the token
// source for later token exchanges, so it must outlive the service (pass
// t.Context()).
func (f *Fake) Service(ctx context.Context, t testing.TB, scopes ...string) *sheets.Service {
	t.Helper()
	if len(scopes) == 0 {
		scopes = []string{sheets.SpreadsheetsScope}
	}
	creds, err := google.CredentialsFromJSONWithType(ctx, f.ServiceAccountJSON(), google.ServiceAccount, scopes...)
	if err != nil {
		t.Fatalf("sheetsfake: loading service-account credentials: %v", err)
	}
	svc, err := sheets.NewService(ctx, option.WithTokenSource(creds.TokenSource), option.WithEndpoint(f.Endpoint()))
	if err != nil {
		t.Fatalf("sheetsfake: creating sheets service: %v", err)
	}
	return svc
}

// AddSpreadsheet creates an empty spreadsheet that the service account can
// access. Add sheets to it with AddSheet. It panics if id is taken.
func (f *Fake) AddSpreadsheet(id, title string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.books[id]; ok {
		panic(fmt.Sprintf("sheetsfake: spreadsheet %q already exists", id))
	}
	f.books[id] = &book{id: id, title: title, granted: true}
}

// AddSheet appends a sheet to spreadsheet id and returns its sheetId. rows
// are stored as plain text (like RAW input; "" leaves a cell empty). The
// grid is at least 1000×26, as for a new Google sheet. It panics if the
// spreadsheet is unknown or the name is taken.
func (f *Fake) AddSheet(id, name string, rows [][]string) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	b := f.mustBook(id)
	if name == "" || b.tab(name) != nil {
		panic(fmt.Sprintf("sheetsfake: spreadsheet %q: bad or duplicate sheet name %q", id, name))
	}
	t := &tab{id: newSheetID(b.tabs), title: name, rows: max(defaultRows, len(rows)), cols: defaultCols}
	for r, row := range rows {
		t.cols = max(t.cols, len(row))
		for c, v := range row {
			if v != "" {
				t.set(r, c, cell{kind: cellText, text: v})
			}
		}
	}
	b.tabs = append(b.tabs, t)
	return t.id
}

// Grant gives the service account access to spreadsheet id (the default).
func (f *Fake) Grant(id string) { f.setGranted(id, true) }

// Revoke removes the service account's access: calls then get 403.
func (f *Fake) Revoke(id string) { f.setGranted(id, false) }

func (f *Fake) setGranted(id string, v bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mustBook(id).granted = v
}

// SheetTitles returns the sheet names of spreadsheet id in order, or nil if
// it does not exist.
func (f *Fake) SheetTitles(id string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	b := f.books[id]
	if b == nil {
		return nil
	}
	var out []string
	for _, t := range b.tabs {
		out = append(out, t.title)
	}
	return out
}

// Rows returns the stored grid as formatted strings, ragged like the API
// (trailing empty cells and rows dropped); nil if the sheet is empty or
// unknown.
func (f *Fake) Rows(id, sheet string) [][]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	b := f.books[id]
	if b == nil {
		return nil
	}
	t := b.tab(sheet)
	if t == nil {
		return nil
	}
	vals := resolved{tab: t, r1: t.rows, c1: t.cols}.values(false, renderFormatted)
	if vals == nil {
		return nil
	}
	out := make([][]string, len(vals))
	for i, row := range vals {
		out[i] = make([]string, len(row))
		for j, v := range row {
			out[i][j] = v.(string)
		}
	}
	return out
}

// Cell returns one cell ("B2") of a sheet: its formatted value, or its
// formula text and true for a formula. It panics on an unknown sheet or a
// reference that is not a single cell.
func (f *Fake) Cell(id, sheet, a1 string) (value string, formula bool) {
	r, err := parseGrid(a1)
	if err != nil || !r.singleCell() {
		panic(fmt.Sprintf("sheetsfake: %q is not a cell reference", a1))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	t := f.mustBook(id).tab(sheet)
	if t == nil {
		panic(fmt.Sprintf("sheetsfake: spreadsheet %q has no sheet %q", id, sheet))
	}
	c := t.at(r.StartRow-1, r.StartCol-1)
	if c.kind == cellEmpty {
		return "", false
	}
	return c.render(renderFormatted).(string), c.kind == cellFormula
}

// FailNext makes the next n authenticated Sheets calls fail with HTTP code
// (429, 500, 503, ...) and Google's error body for it. Calls queue up.
func (f *Fake) FailNext(n, code int) {
	if code < 400 || code > 599 {
		panic(fmt.Sprintf("sheetsfake: FailNext code %d is not an HTTP error", code))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for range n {
		f.failures = append(f.failures, code)
	}
}

// RevokeTokens invalidates every access token issued so far; clients holding
// one get 401 until they exchange a new JWT.
func (f *Fake) RevokeTokens() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.tokens)
}

// TokenExchanges counts access tokens issued by the token endpoint.
func (f *Fake) TokenExchanges() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.tokenExchanges
}

// Requests returns every request served so far, in order of completion.
func (f *Fake) Requests() []RecordedRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.requests)
}

func (f *Fake) mustBook(id string) *book {
	b := f.books[id]
	if b == nil {
		panic(fmt.Sprintf("sheetsfake: no spreadsheet %q", id))
	}
	return b
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
