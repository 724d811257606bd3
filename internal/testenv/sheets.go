package testenv

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2/google"
	"google.golang.org/api/option"
	"google.golang.org/api/sheets/v4"
)

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
//   - Named ranges, R1C1 notation, dataFilters and includeGridData=true are
//     not supported; fields and other unknown query parameters are ignored.

const (
	sheetsTokenPath = "/token"
	sheetsAPIPrefix = "/v4/spreadsheets/"

	sheetsJWTBearer     = "urn:ietf:params:oauth:grant-type:jwt-bearer"
	sheetsTokenLifetime = time.Hour
	sheetsClockSkew     = time.Minute

	sheetsDefaultRows = 1000
	sheetsDefaultCols = 26
	sheetsMaxBody     = 10 << 20

	sheetsRenderFormatted   = "FORMATTED_VALUE"
	sheetsRenderUnformatted = "UNFORMATTED_VALUE"
	sheetsRenderFormula     = "FORMULA"
)

// SheetsFake is an in-process stand-in for the Google Sheets v4 REST API and
// Google's OAuth2 token endpoint. Create it with NewSheets.
type SheetsFake struct {
	srv       *httptest.Server
	key       *rsa.PrivateKey
	keyID     string
	email     string
	clientID  string
	projectID string
	projectNo string

	mu             sync.Mutex
	books          map[string]*sheetsBook
	tokens         map[string]sheetsGrant
	failures       []int
	requests       []RecordedRequest
	tokenExchanges int
}

// RecordedRequest is one request the fake served, token requests included.
type RecordedRequest struct {
	Method        string
	Path          string     // unescaped URL path
	Query         url.Values // parsed query string
	Op            string     // "token", "spreadsheets.get", "spreadsheets.batchUpdate", "values.get", "values.batchGet", "values.update", "values.batchUpdate", "values.append", "values.clear", "values.batchClear", or "" for an unknown path
	SpreadsheetID string
	Status        int
}

type sheetsGrant struct {
	scopes  []string
	expires time.Time
}

type sheetsBook struct {
	id, title string
	granted   bool
	sheets    []*sheetsTab
}

type sheetsTab struct {
	id         int64
	title      string
	rows, cols int // grid size
	cells      [][]sheetsCell
}

type sheetsCellKind uint8

const (
	cellEmpty sheetsCellKind = iota
	cellText
	cellNumber
	cellBool
	cellFormula
)

type sheetsCell struct {
	kind sheetsCellKind
	text string // text, formula, or how a formatted number was typed
	num  float64
	b    bool
}

// NewSheets starts the fake; it is closed when t finishes. It has no
// spreadsheets until AddSpreadsheet is called.
func NewSheets(t testing.TB) *SheetsFake {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatalf("testenv: generating service-account key: %v", err)
	}
	f := &SheetsFake{
		key:       key,
		keyID:     sheetsRandHex(20),
		email:     "kaizen-test@kaizen-test.iam.gserviceaccount.com",
		clientID:  "1" + strconv.FormatUint(mrand.Uint64N(1e18), 10),
		projectID: "kaizen-test",
		projectNo: strconv.FormatUint(1e11+mrand.Uint64N(9e11), 10),
		books:     map[string]*sheetsBook{},
		tokens:    map[string]sheetsGrant{},
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serveHTTP))
	t.Cleanup(f.srv.Close)
	return f
}

// Endpoint is the base URL to pass to option.WithEndpoint.
func (f *SheetsFake) Endpoint() string { return f.srv.URL + "/" }

// TokenURL is the OAuth2 token endpoint, as written into ServiceAccountJSON.
func (f *SheetsFake) TokenURL() string { return f.srv.URL + sheetsTokenPath }

// ServiceAccountEmail is the client_email of the fake's service account.
func (f *SheetsFake) ServiceAccountEmail() string { return f.email }

// ServiceAccountJSON returns a service-account key file whose token_uri
// points at the fake, usable with google.CredentialsFromJSONWithType.
func (f *SheetsFake) ServiceAccountJSON() []byte {
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
func (f *SheetsFake) ServiceAccountFile(t testing.TB) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "service-account.json")
	if err := os.WriteFile(p, f.ServiceAccountJSON(), 0o600); err != nil {
		t.Fatalf("testenv: writing service-account key: %v", err)
	}
	return p
}

// Service returns a real sheets.Service talking to the fake, authenticated
// through the real golang.org/x/oauth2/google service-account JWT flow.
// scopes defaults to sheets.SpreadsheetsScope. ctx is kept by the token
// source for later token exchanges, so it must outlive the service (pass
// t.Context()).
func (f *SheetsFake) Service(ctx context.Context, t testing.TB, scopes ...string) *sheets.Service {
	t.Helper()
	if len(scopes) == 0 {
		scopes = []string{sheets.SpreadsheetsScope}
	}
	creds, err := google.CredentialsFromJSONWithType(ctx, f.ServiceAccountJSON(), google.ServiceAccount, scopes...)
	if err != nil {
		t.Fatalf("testenv: loading service-account credentials: %v", err)
	}
	svc, err := sheets.NewService(ctx, option.WithTokenSource(creds.TokenSource), option.WithEndpoint(f.Endpoint()))
	if err != nil {
		t.Fatalf("testenv: creating sheets service: %v", err)
	}
	return svc
}

// AddSpreadsheet creates an empty spreadsheet that the service account can
// access. Add sheets to it with AddSheet. It panics if id is taken.
func (f *SheetsFake) AddSpreadsheet(id, title string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.books[id]; ok {
		panic(fmt.Sprintf("testenv: spreadsheet %q already exists", id))
	}
	f.books[id] = &sheetsBook{id: id, title: title, granted: true}
}

// AddSheet appends a sheet to spreadsheet id and returns its sheetId. rows
// are stored as plain text (like RAW input; "" leaves a cell empty). The
// grid is at least 1000×26, as for a new Google sheet. It panics if the
// spreadsheet is unknown or the name is taken.
func (f *SheetsFake) AddSheet(id, name string, rows [][]string) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	b := f.mustBook(id)
	if name == "" || b.tab(name) != nil {
		panic(fmt.Sprintf("testenv: spreadsheet %q: bad or duplicate sheet name %q", id, name))
	}
	tab := &sheetsTab{id: b.newSheetID(b.sheets), title: name, rows: max(sheetsDefaultRows, len(rows)), cols: sheetsDefaultCols}
	for r, row := range rows {
		tab.cols = max(tab.cols, len(row))
		for c, v := range row {
			if v != "" {
				tab.set(r, c, sheetsCell{kind: cellText, text: v})
			}
		}
	}
	b.sheets = append(b.sheets, tab)
	return tab.id
}

// Grant gives the service account access to spreadsheet id (the default).
func (f *SheetsFake) Grant(id string) { f.setGranted(id, true) }

// Revoke removes the service account's access: calls then get 403.
func (f *SheetsFake) Revoke(id string) { f.setGranted(id, false) }

func (f *SheetsFake) setGranted(id string, v bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mustBook(id).granted = v
}

// SheetTitles returns the sheet names of spreadsheet id in order, or nil if
// it does not exist.
func (f *SheetsFake) SheetTitles(id string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	b := f.books[id]
	if b == nil {
		return nil
	}
	var out []string
	for _, s := range b.sheets {
		out = append(out, s.title)
	}
	return out
}

// Rows returns the stored grid as formatted strings, ragged like the API
// (trailing empty cells and rows dropped); nil if the sheet is empty or
// unknown.
func (f *SheetsFake) Rows(id, sheet string) [][]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	b := f.books[id]
	if b == nil {
		return nil
	}
	tab := b.tab(sheet)
	if tab == nil {
		return nil
	}
	vals := tab.read(0, 0, tab.rows, tab.cols, false, sheetsRenderFormatted)
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
func (f *SheetsFake) Cell(id, sheet, a1 string) (value string, formula bool) {
	r, err := a1ParseGrid(a1)
	if err != nil || !r.singleCell() {
		panic(fmt.Sprintf("testenv: %q is not a cell reference", a1))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	tab := f.mustBook(id).tab(sheet)
	if tab == nil {
		panic(fmt.Sprintf("testenv: spreadsheet %q has no sheet %q", id, sheet))
	}
	c := tab.at(r.StartRow-1, r.StartCol-1)
	if c.kind == cellEmpty {
		return "", false
	}
	return sheetsRender(c, sheetsRenderFormatted).(string), c.kind == cellFormula
}

// FailNext makes the next n authenticated Sheets calls fail with HTTP code
// (429, 500, 503, ...) and Google's error body for it. Calls queue up.
func (f *SheetsFake) FailNext(n, code int) {
	if code < 400 || code > 599 {
		panic(fmt.Sprintf("testenv: FailNext code %d is not an HTTP error", code))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for range n {
		f.failures = append(f.failures, code)
	}
}

// RevokeTokens invalidates every access token issued so far; clients holding
// one get 401 until they exchange a new JWT.
func (f *SheetsFake) RevokeTokens() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.tokens)
}

// TokenExchanges counts access tokens issued by the token endpoint.
func (f *SheetsFake) TokenExchanges() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.tokenExchanges
}

// Requests returns every request served so far, in order of completion.
func (f *SheetsFake) Requests() []RecordedRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.requests)
}

func (f *SheetsFake) mustBook(id string) *sheetsBook {
	b := f.books[id]
	if b == nil {
		panic(fmt.Sprintf("testenv: no spreadsheet %q", id))
	}
	return b
}

// ---- HTTP plumbing ----

type sheetsStatusWriter struct {
	http.ResponseWriter
	status int
}

func (w *sheetsStatusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *sheetsStatusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (f *SheetsFake) serveHTTP(w http.ResponseWriter, r *http.Request) {
	sw := &sheetsStatusWriter{ResponseWriter: w}
	rec := RecordedRequest{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query()}
	if r.URL.Path == sheetsTokenPath {
		rec.Op = "token"
		f.serveToken(sw, r)
	} else {
		f.serveSheets(sw, r, &rec)
	}
	rec.Status = sw.status
	f.mu.Lock()
	f.requests = append(f.requests, rec)
	f.mu.Unlock()
}

func sheetsWriteJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code, b = http.StatusInternalServerError, []byte(`{"error":{"code":500,"message":"fake: encoding response","status":"INTERNAL"}}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(code)
	w.Write(b)
}

// sheetsError is a Google API error; it is written as
// {"error":{"code","message","status"[,"details"]}}, which the generated
// client turns into *googleapi.Error.
type sheetsError struct {
	code    int
	status  string
	msg     string
	details []any
}

func (e *sheetsError) write(w http.ResponseWriter) {
	body := map[string]any{"code": e.code, "message": e.msg, "status": e.status}
	if len(e.details) > 0 {
		body["details"] = e.details
	}
	sheetsWriteJSON(w, e.code, map[string]any{"error": body})
}

func sheetsErrorf(code int, format string, args ...any) *sheetsError {
	return &sheetsError{code: code, status: sheetsStatusName(code), msg: fmt.Sprintf(format, args...)}
}

func sheetsStatusName(code int) string {
	switch code {
	case 400:
		return "INVALID_ARGUMENT"
	case 401:
		return "UNAUTHENTICATED"
	case 403:
		return "PERMISSION_DENIED"
	case 404:
		return "NOT_FOUND"
	case 409:
		return "ABORTED"
	case 429:
		return "RESOURCE_EXHAUSTED"
	case 499:
		return "CANCELLED"
	case 501:
		return "UNIMPLEMENTED"
	case 503:
		return "UNAVAILABLE"
	case 504:
		return "DEADLINE_EXCEEDED"
	}
	if code >= 500 {
		return "INTERNAL"
	}
	return "UNKNOWN"
}

func sheetsBadEnum(param, enum, v string) *sheetsError {
	return sheetsErrorf(400, "Invalid value at '%s' (type.googleapis.com/google.apps.sheets.v4.%s), %q", param, enum, v)
}

func sheetsRangeError(raw string) *sheetsError {
	return sheetsErrorf(400, "Unable to parse range: %s", raw)
}

// ---- OAuth2 token endpoint ----

func sheetsOAuthError(w http.ResponseWriter, code int, errCode, desc string) {
	w.Header().Set("Cache-Control", "no-store")
	sheetsWriteJSON(w, code, map[string]string{"error": errCode, "error_description": desc})
}

func (f *SheetsFake) serveToken(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		sheetsOAuthError(w, 405, "invalid_request", "Token requests must use POST")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	if err := r.ParseForm(); err != nil {
		sheetsOAuthError(w, 400, "invalid_request", "Malformed form body")
		return
	}
	switch gt := r.PostForm.Get("grant_type"); gt {
	case sheetsJWTBearer:
	case "":
		sheetsOAuthError(w, 400, "invalid_request", "Missing required parameter: grant_type")
		return
	default:
		sheetsOAuthError(w, 400, "unsupported_grant_type", "Invalid grant_type: "+gt)
		return
	}
	assertion := r.PostForm.Get("assertion")
	if assertion == "" {
		sheetsOAuthError(w, 400, "invalid_request", "Missing required parameter: assertion")
		return
	}
	claims, desc := f.verifyJWT(assertion, time.Now())
	if desc != "" {
		sheetsOAuthError(w, 400, "invalid_grant", desc)
		return
	}
	scopes := strings.Fields(claims.Scope)
	if len(scopes) == 0 || slices.ContainsFunc(scopes, func(s string) bool {
		return !strings.HasPrefix(s, "https://www.googleapis.com/auth/") && s != "openid" && s != "email" && s != "profile"
	}) {
		sheetsOAuthError(w, 400, "invalid_scope", "Invalid OAuth scope or ID token audience provided.")
		return
	}
	if claims.Sub != "" {
		// Impersonation needs domain-wide delegation, which the fake never grants.
		sheetsOAuthError(w, 401, "unauthorized_client", "Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested.")
		return
	}
	token := "ya29.fake-" + sheetsRandHex(32)
	f.mu.Lock()
	f.tokens[token] = sheetsGrant{scopes: scopes, expires: time.Now().Add(sheetsTokenLifetime)}
	f.tokenExchanges++
	f.mu.Unlock()
	w.Header().Set("Cache-Control", "no-store")
	sheetsWriteJSON(w, 200, map[string]any{
		"access_token": token,
		"token_type":   "Bearer",
		"expires_in":   int(sheetsTokenLifetime / time.Second),
	})
}

type sheetsJWTClaims struct {
	Iss   string `json:"iss"`
	Scope string `json:"scope"`
	Aud   string `json:"aud"`
	Sub   string `json:"sub"`
	Exp   int64  `json:"exp"`
	Iat   int64  `json:"iat"`
}

// verifyJWT checks the assertion as Google does and returns Google's
// error_description on failure. It is written independently of
// golang.org/x/oauth2/jws so a bug there cannot hide itself here.
func (f *SheetsFake) verifyJWT(assertion string, now time.Time) (sheetsJWTClaims, string) {
	const badSig = "Invalid JWT Signature."
	var claims sheetsJWTClaims
	parts := strings.Split(assertion, ".")
	if len(parts) != 3 {
		return claims, badSig
	}
	var hdr struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
	}
	if !sheetsDecodeSegment(parts[0], &hdr) || !sheetsDecodeSegment(parts[1], &claims) {
		return claims, badSig
	}
	if claims.Iss != f.email {
		return claims, "Invalid grant: account not found"
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || hdr.Alg != "RS256" || (hdr.Kid != "" && hdr.Kid != f.keyID) {
		return claims, badSig
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if rsa.VerifyPKCS1v15(&f.key.PublicKey, crypto.SHA256, digest[:], sig) != nil {
		return claims, badSig
	}
	if claims.Aud != f.TokenURL() {
		return claims, "Invalid JWT: Failed audience check. The right audience is " + f.TokenURL()
	}
	iat, exp := time.Unix(claims.Iat, 0), time.Unix(claims.Exp, 0)
	if claims.Iat == 0 || claims.Exp == 0 || iat.After(now.Add(sheetsClockSkew)) || !exp.After(now) ||
		exp.Before(iat) || exp.Sub(iat) > sheetsTokenLifetime {
		return claims, "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim."
	}
	return claims, ""
}

func sheetsDecodeSegment(seg string, v any) bool {
	b, err := base64.RawURLEncoding.DecodeString(seg)
	return err == nil && json.Unmarshal(b, v) == nil
}

// ---- Sheets API ----

type sheetsRoute struct {
	op     string
	method string // RPC name, for scope errors
	write  bool
	id     string
	rng    string
}

// sheetsParseRoute maps a request to an API method. It works on the escaped
// path because the client percent-encodes ':' and '/' inside ids and ranges;
// custom verbs (":append") are matched as suffixes so that a hand-written
// URL with a literal ':' in its range still routes.
func sheetsParseRoute(r *http.Request) (sheetsRoute, bool) {
	rest, ok := strings.CutPrefix(r.URL.EscapedPath(), sheetsAPIPrefix)
	if !ok {
		return sheetsRoute{}, false
	}
	segs := strings.Split(rest, "/")
	unesc := func(s string) (string, bool) {
		u, err := url.PathUnescape(s)
		return u, err == nil
	}
	var rt sheetsRoute
	var want string
	switch len(segs) {
	case 1:
		if id, ok := strings.CutSuffix(segs[0], ":batchUpdate"); ok {
			rt.id, rt.op, rt.method, rt.write, want = id, "spreadsheets.batchUpdate", "BatchUpdateSpreadsheet", true, http.MethodPost
		} else {
			rt.id, rt.op, rt.method, want = segs[0], "spreadsheets.get", "GetSpreadsheet", http.MethodGet
		}
	case 2:
		rt.id = segs[0]
		switch segs[1] {
		case "values:batchGet":
			rt.op, rt.method, want = "values.batchGet", "BatchGetValues", http.MethodGet
		case "values:batchUpdate":
			rt.op, rt.method, rt.write, want = "values.batchUpdate", "BatchUpdateValues", true, http.MethodPost
		case "values:batchClear":
			rt.op, rt.method, rt.write, want = "values.batchClear", "BatchClearValues", true, http.MethodPost
		default:
			return rt, false
		}
	case 3:
		if segs[1] != "values" {
			return rt, false
		}
		rt.id, rt.rng = segs[0], segs[2]
		if rng, ok := strings.CutSuffix(segs[2], ":append"); ok {
			rt.rng, rt.op, rt.method, rt.write, want = rng, "values.append", "AppendValues", true, http.MethodPost
		} else if rng, ok := strings.CutSuffix(segs[2], ":clear"); ok {
			rt.rng, rt.op, rt.method, rt.write, want = rng, "values.clear", "ClearValues", true, http.MethodPost
		} else if r.Method == http.MethodPut {
			rt.op, rt.method, rt.write, want = "values.update", "UpdateValues", true, http.MethodPut
		} else {
			rt.op, rt.method, want = "values.get", "GetValues", http.MethodGet
		}
	default:
		return rt, false
	}
	if r.Method != want {
		return rt, false
	}
	if rt.id, ok = unesc(rt.id); !ok || rt.id == "" {
		return rt, false
	}
	if rt.rng, ok = unesc(rt.rng); !ok {
		return rt, false
	}
	return rt, true
}

func (f *SheetsFake) serveSheets(w http.ResponseWriter, r *http.Request, rec *RecordedRequest) {
	rt, ok := sheetsParseRoute(r)
	if !ok {
		sheetsErrorf(404, "Method not found.").write(w)
		return
	}
	rec.Op, rec.SpreadsheetID = rt.op, rt.id
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, sheetsMaxBody))
	if err != nil {
		sheetsErrorf(400, "Request payload too large or unreadable.").write(w)
		return
	}

	// One lock for the whole call keeps every request atomic, as Google's are.
	f.mu.Lock()
	defer f.mu.Unlock()
	if e := f.authorize(r, rt); e != nil {
		if e.code == 401 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="https://accounts.google.com/"`)
		}
		e.write(w)
		return
	}
	if len(f.failures) > 0 {
		code := f.failures[0]
		f.failures = f.failures[1:]
		f.injectedError(code, rt.write).write(w)
		return
	}
	b := f.books[rt.id]
	if b == nil {
		sheetsErrorf(404, "Requested entity was not found.").write(w)
		return
	}
	if !b.granted {
		sheetsErrorf(403, "The caller does not have permission").write(w)
		return
	}
	q := r.URL.Query()
	var resp any
	var e *sheetsError
	switch rt.op {
	case "spreadsheets.get":
		resp = b.resource()
	case "spreadsheets.batchUpdate":
		resp, e = b.batchUpdate(body)
	case "values.get":
		resp, e = b.valuesGet(rt.rng, q)
	case "values.batchGet":
		resp, e = b.valuesBatchGet(q)
	case "values.update":
		resp, e = b.valuesUpdate(rt.rng, q, body)
	case "values.batchUpdate":
		resp, e = b.valuesBatchUpdate(body)
	case "values.append":
		resp, e = b.valuesAppend(rt.rng, q, body)
	case "values.clear":
		resp, e = b.valuesClear(rt.rng)
	case "values.batchClear":
		resp, e = b.valuesBatchClear(body)
	}
	if e != nil {
		e.write(w)
		return
	}
	sheetsWriteJSON(w, 200, resp)
}

// authorize checks the bearer token and its scopes; called with f.mu held.
func (f *SheetsFake) authorize(r *http.Request, rt sheetsRoute) *sheetsError {
	const see = " Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project."
	h := r.Header.Get("Authorization")
	if h == "" {
		return sheetsErrorf(401, "Request is missing required authentication credential."+see)
	}
	scheme, tok, _ := strings.Cut(h, " ")
	g, ok := f.tokens[tok]
	if !strings.EqualFold(scheme, "Bearer") || !ok || time.Now().After(g.expires) {
		return sheetsErrorf(401, "Request had invalid authentication credentials."+see)
	}
	allowed := []string{sheets.SpreadsheetsScope, sheets.DriveScope, sheets.DriveFileScope}
	if !rt.write {
		allowed = append(allowed, sheets.SpreadsheetsReadonlyScope, sheets.DriveReadonlyScope)
	}
	if slices.ContainsFunc(g.scopes, func(s string) bool { return slices.Contains(allowed, s) }) {
		return nil
	}
	e := sheetsErrorf(403, "Request had insufficient authentication scopes.")
	e.details = []any{map[string]any{
		"@type":  "type.googleapis.com/google.rpc.ErrorInfo",
		"reason": "ACCESS_TOKEN_SCOPE_INSUFFICIENT",
		"domain": "googleapis.com",
		"metadata": map[string]string{
			"service": "sheets.googleapis.com",
			"method":  "google.apps.sheets.v4.SpreadsheetsService." + rt.method,
		},
	}}
	return e
}

func (f *SheetsFake) injectedError(code int, write bool) *sheetsError {
	switch code {
	case 429:
		kind := "Read"
		if write {
			kind = "Write"
		}
		e := sheetsErrorf(429, "Quota exceeded for quota metric '%s requests' and limit '%s requests per minute per user' of service 'sheets.googleapis.com' for consumer 'project_number:%s'.", kind, kind, f.projectNo)
		e.details = []any{map[string]any{
			"@type":  "type.googleapis.com/google.rpc.ErrorInfo",
			"reason": "RATE_LIMIT_EXCEEDED",
			"domain": "googleapis.com",
			"metadata": map[string]string{
				"consumer":     "projects/" + f.projectNo,
				"quota_metric": "sheets.googleapis.com/" + strings.ToLower(kind) + "_requests",
				"quota_limit":  kind + "RequestsPerMinutePerUser",
				"service":      "sheets.googleapis.com",
			},
		}}
		return e
	case 500:
		return sheetsErrorf(500, "Internal error encountered.")
	case 503:
		return sheetsErrorf(503, "The service is currently unavailable.")
	}
	return sheetsErrorf(code, "%s", http.StatusText(code))
}

// ---- spreadsheet model ----

func (b *sheetsBook) tab(name string) *sheetsTab {
	for _, s := range b.sheets {
		// Google matches sheet names case-insensitively and refuses titles
		// that differ only in case.
		if strings.EqualFold(s.title, name) {
			return s
		}
	}
	return nil
}

func (b *sheetsBook) newSheetID(tabs []*sheetsTab) int64 {
	if len(tabs) == 0 {
		return 0
	}
	for {
		id := mrand.Int64N(math.MaxInt32) + 1
		if !slices.ContainsFunc(tabs, func(s *sheetsTab) bool { return s.id == id }) {
			return id
		}
	}
}

func (s *sheetsTab) props(index int) *sheets.SheetProperties {
	return &sheets.SheetProperties{
		SheetId:         s.id,
		Title:           s.title,
		Index:           int64(index),
		SheetType:       "GRID",
		GridProperties:  &sheets.GridProperties{RowCount: int64(s.rows), ColumnCount: int64(s.cols)},
		ForceSendFields: []string{"SheetId", "Index"},
	}
}

func (b *sheetsBook) resource() *sheets.Spreadsheet {
	out := &sheets.Spreadsheet{
		SpreadsheetId: b.id,
		Properties: &sheets.SpreadsheetProperties{
			Title: b.title, Locale: "en_US", AutoRecalc: "ON_CHANGE", TimeZone: "Etc/GMT",
		},
		SpreadsheetUrl: "https://docs.google.com/spreadsheets/d/" + b.id + "/edit",
	}
	for i, s := range b.sheets {
		out.Sheets = append(out.Sheets, &sheets.Sheet{Properties: s.props(i)})
	}
	return out
}

func (s *sheetsTab) at(r, c int) sheetsCell {
	if r < len(s.cells) && c < len(s.cells[r]) {
		return s.cells[r][c]
	}
	return sheetsCell{}
}

func (s *sheetsTab) set(r, c int, v sheetsCell) {
	if v.kind == cellEmpty && s.at(r, c).kind == cellEmpty {
		return
	}
	for len(s.cells) <= r {
		s.cells = append(s.cells, nil)
	}
	row := s.cells[r]
	for len(row) <= c {
		row = append(row, sheetsCell{})
	}
	row[c] = v
	s.cells[r] = row
}

// read renders rows [r0,r1) × cols [c0,c1) (0-based), ragged like Google:
// trailing empty cells and trailing empty lines are dropped.
func (s *sheetsTab) read(r0, c0, r1, c1 int, columns bool, render string) [][]any {
	stored := 0
	for _, row := range s.cells {
		stored = max(stored, len(row))
	}
	o0, o1, i0, i1 := r0, min(r1, len(s.cells)), c0, min(c1, stored)
	if columns {
		o0, o1, i0, i1 = c0, min(c1, stored), r0, min(r1, len(s.cells))
	}
	var out [][]any
	keep := 0
	for o := o0; o < o1; o++ {
		line := []any{}
		last := 0
		for i := i0; i < i1; i++ {
			c := s.at(o, i)
			if columns {
				c = s.at(i, o)
			}
			if c.kind == cellEmpty {
				line = append(line, "")
				continue
			}
			line = append(line, sheetsRender(c, render))
			last = len(line)
		}
		out = append(out, line[:last])
		if last > 0 {
			keep = len(out)
		}
	}
	if keep == 0 {
		return nil
	}
	return out[:keep]
}

func sheetsRender(c sheetsCell, render string) any {
	switch c.kind {
	case cellNumber:
		if render != sheetsRenderFormatted {
			return c.num
		}
		if c.text != "" {
			return c.text
		}
		return sheetsFormatNumber(c.num)
	case cellBool:
		if render != sheetsRenderFormatted {
			return c.b
		}
		if c.b {
			return "TRUE"
		}
		return "FALSE"
	}
	return c.text
}

// sheetsFormatNumber approximates Google's "General" number format.
func sheetsFormatNumber(v float64) string {
	if a := math.Abs(v); a != 0 && (a >= 1e15 || a < 1e-9) {
		return strings.Replace(strconv.FormatFloat(v, 'E', -1, 64), "E+0", "E+", 1)
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

// sheetsEntered converts one request value to a cell; ok=false means null,
// which leaves the cell untouched.
func sheetsEntered(v any, userEntered bool) (c sheetsCell, ok bool, err error) {
	switch v := v.(type) {
	case nil:
		return c, false, nil
	case bool:
		return sheetsCell{kind: cellBool, b: v}, true, nil
	case float64:
		return sheetsCell{kind: cellNumber, num: v}, true, nil
	case string:
		switch {
		case v == "":
			return c, true, nil
		case !userEntered:
			return sheetsCell{kind: cellText, text: v}, true, nil
		}
		return sheetsParseUserEntered(v), true, nil
	}
	return c, false, fmt.Errorf("unsupported value %v", v)
}

// sheetsParseUserEntered interprets a string as if typed into the UI.
func sheetsParseUserEntered(s string) sheetsCell {
	if len(s) > 1 && s[0] == '=' {
		return sheetsCell{kind: cellFormula, text: s}
	}
	if s[0] == '\'' {
		if len(s) == 1 {
			return sheetsCell{}
		}
		return sheetsCell{kind: cellText, text: s[1:]}
	}
	t := strings.TrimSpace(s)
	switch strings.ToUpper(t) {
	case "TRUE":
		return sheetsCell{kind: cellBool, b: true}
	case "FALSE":
		return sheetsCell{kind: cellBool}
	}
	if n, formatted, ok := sheetsParseNumber(t); ok {
		c := sheetsCell{kind: cellNumber, num: n}
		if formatted {
			c.text = t
		}
		return c
	}
	return sheetsCell{kind: cellText, text: s}
}

// sheetsParseNumber accepts [+-][$]digits[,ddd...][.digits][e[+-]digits][%].
// formatted reports a $, thousands separator or % that Google would keep as
// the cell's display format.
func sheetsParseNumber(s string) (v float64, formatted, ok bool) {
	neg := false
	if s != "" && (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-'
		s = s[1:]
	}
	if t, cut := strings.CutPrefix(s, "$"); cut {
		s, formatted = t, true
	}
	pct := false
	if t, cut := strings.CutSuffix(s, "%"); cut {
		s, pct, formatted = t, true, true
	}
	mant, exp, hasExp := strings.Cut(strings.ToLower(s), "e")
	intPart, frac, hasFrac := strings.Cut(mant, ".")
	if strings.Contains(intPart, ",") {
		groups := strings.Split(intPart, ",")
		if len(groups[0]) < 1 || len(groups[0]) > 3 || hasExp {
			return 0, false, false
		}
		for _, g := range groups[1:] {
			if len(g) != 3 {
				return 0, false, false
			}
		}
		intPart, formatted = strings.Join(groups, ""), true
	}
	digits := func(x string) bool {
		for i := 0; i < len(x); i++ {
			if x[i] < '0' || x[i] > '9' {
				return false
			}
		}
		return true
	}
	if !digits(intPart) || !digits(frac) || intPart+frac == "" || (hasFrac && frac == "" && intPart == "") {
		return 0, false, false
	}
	if hasExp {
		e := strings.TrimLeft(exp, "+-")
		if e == "" || !digits(e) || len(exp)-len(e) > 1 {
			return 0, false, false
		}
	}
	num := intPart + "." + frac
	if hasExp {
		num += "e" + exp
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || math.IsInf(v, 0) {
		return 0, false, false
	}
	if pct {
		v /= 100
	}
	if neg {
		v = -v
	}
	return v, formatted, true
}

// sheetsResolved is a range bound to a sheet, as 0-based half-open indexes
// clamped to the grid.
type sheetsResolved struct {
	tab            *sheetsTab
	a1             a1Range // as parsed, with the sheet's real title
	r0, c0, r1, c1 int
}

func (x sheetsResolved) String() string {
	return a1Range{Sheet: x.tab.title, StartCol: x.c0 + 1, StartRow: x.r0 + 1, EndCol: x.c1, EndRow: x.r1}.String()
}

// resolve parses raw and binds it to a sheet, refusing bounds beyond the
// grid as Google does.
func (b *sheetsBook) resolve(raw string) (sheetsResolved, *sheetsError) {
	r, err := parseA1(raw)
	if err != nil {
		return sheetsResolved{}, sheetsRangeError(raw)
	}
	var tab *sheetsTab
	if r.Sheet == "" {
		if len(b.sheets) > 0 {
			tab = b.sheets[0]
		}
	} else {
		tab = b.tab(r.Sheet)
	}
	if tab == nil {
		return sheetsResolved{}, sheetsRangeError(raw)
	}
	r.Sheet = tab.title
	if max(r.StartRow, r.EndRow) > tab.rows || max(r.StartCol, r.EndCol) > tab.cols {
		return sheetsResolved{}, sheetsErrorf(400, "Range (%s) exceeds grid limits. Max rows: %d, max columns: %d", r, tab.rows, tab.cols)
	}
	x := sheetsResolved{tab: tab, a1: r, r0: max(r.StartRow, 1) - 1, c0: max(r.StartCol, 1) - 1, r1: r.EndRow, c1: r.EndCol}
	if x.r1 == 0 {
		x.r1 = tab.rows
	}
	if x.c1 == 0 {
		x.c1 = tab.cols
	}
	return x, nil
}

func sheetsRenderOption(v string) (string, *sheetsError) {
	switch v {
	case "":
		return sheetsRenderFormatted, nil
	case sheetsRenderFormatted, sheetsRenderUnformatted, sheetsRenderFormula:
		return v, nil
	}
	return "", sheetsBadEnum("value_render_option", "ValueRenderOption", v)
}

// sheetsDimension reports whether v selects COLUMNS.
func sheetsDimension(field, v string) (bool, *sheetsError) {
	switch v {
	case "", "ROWS", "DIMENSION_UNSPECIFIED":
		return false, nil
	case "COLUMNS":
		return true, nil
	}
	return false, sheetsBadEnum(field, "Dimension", v)
}

func sheetsInputOption(v string, required *sheetsError) (bool, *sheetsError) {
	switch v {
	case "RAW":
		return false, nil
	case "USER_ENTERED":
		return true, nil
	case "", "INPUT_VALUE_OPTION_UNSPECIFIED":
		return false, required
	}
	return false, sheetsBadEnum("value_input_option", "ValueInputOption", v)
}

func sheetsDecode(body []byte, v any) *sheetsError {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil // an absent body is an empty message
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return sheetsErrorf(400, "Invalid JSON payload received. %v", err)
	}
	return nil
}

func (b *sheetsBook) readRange(raw string, q url.Values) (*sheets.ValueRange, *sheetsError) {
	render, e := sheetsRenderOption(q.Get("valueRenderOption"))
	if e != nil {
		return nil, e
	}
	cols, e := sheetsDimension("major_dimension", q.Get("majorDimension"))
	if e != nil {
		return nil, e
	}
	x, e := b.resolve(raw)
	if e != nil {
		return nil, e
	}
	vr := &sheets.ValueRange{Range: x.String(), MajorDimension: "ROWS"}
	if cols {
		vr.MajorDimension = "COLUMNS"
	}
	vr.Values = x.tab.read(x.r0, x.c0, x.r1, x.c1, cols, render)
	return vr, nil
}

func (b *sheetsBook) valuesGet(raw string, q url.Values) (any, *sheetsError) {
	return b.readRange(raw, q)
}

func (b *sheetsBook) valuesBatchGet(q url.Values) (any, *sheetsError) {
	out := &sheets.BatchGetValuesResponse{SpreadsheetId: b.id}
	for _, raw := range q["ranges"] {
		vr, e := b.readRange(raw, q)
		if e != nil {
			return nil, e
		}
		out.ValueRanges = append(out.ValueRanges, vr)
	}
	return out, nil
}

// sheetsWrite is a validated write, applied only once every write of the
// request has validated so that requests stay atomic.
type sheetsWrite struct {
	tab      *sheetsTab
	r0, c0   int
	cells    [][]*sheetsCell // nil entries are nulls: left untouched
	width    int
	fallback string // reported range when there is no data
}

// planWrite validates values for a write into raw. Bounded ranges limit the
// data; a single cell or an open side is limited by the grid only.
func (b *sheetsBook) planWrite(raw string, vr *sheets.ValueRange, userEntered bool, field string) (*sheetsWrite, *sheetsError) {
	x, e := b.resolve(raw)
	if e != nil {
		return nil, e
	}
	cols, e := sheetsDimension(field+"major_dimension", vr.MajorDimension)
	if e != nil {
		return nil, e
	}
	w, e := sheetsConvert(vr.Values, cols, userEntered, field)
	if e != nil {
		return nil, e
	}
	w.tab, w.r0, w.c0, w.fallback = x.tab, x.r0, x.c0, x.String()
	single := x.a1.singleCell()
	rowsBounded, colsBounded := !single && x.a1.EndRow != 0, !single && x.a1.EndCol != 0
	if n := w.r0 + len(w.cells); rowsBounded && n > x.r1 {
		return nil, sheetsErrorf(400, "Requested writing within range [%s], but tried writing to row [%d]", x.a1, x.r1+1)
	} else if n > x.tab.rows {
		return nil, sheetsGridError(x.tab, w.r0, w.c0, n, w.c0+max(w.width, 1))
	}
	if n := w.c0 + w.width; colsBounded && n > x.c1 {
		return nil, sheetsErrorf(400, "Requested writing within range [%s], but tried writing to column [%s]", x.a1, a1ColName(x.c1+1))
	} else if n > x.tab.cols {
		return nil, sheetsGridError(x.tab, w.r0, w.c0, w.r0+len(w.cells), n)
	}
	return w, nil
}

func sheetsGridError(tab *sheetsTab, r0, c0, r1, c1 int) *sheetsError {
	rng := a1Range{Sheet: tab.title, StartCol: c0 + 1, StartRow: r0 + 1, EndCol: c1, EndRow: r1}
	return sheetsErrorf(400, "Range (%s) exceeds grid limits. Max rows: %d, max columns: %d", rng, tab.rows, tab.cols)
}

// sheetsConvert turns request values (transposed first for COLUMNS) into
// cells.
func sheetsConvert(values [][]any, cols, userEntered bool, field string) (*sheetsWrite, *sheetsError) {
	if cols {
		var t [][]any
		for c, col := range values {
			for r, v := range col {
				for len(t) <= r {
					t = append(t, nil)
				}
				for len(t[r]) <= c {
					t[r] = append(t[r], nil)
				}
				t[r][c] = v
			}
		}
		values = t
	}
	w := &sheetsWrite{cells: make([][]*sheetsCell, len(values))}
	for i, row := range values {
		w.width = max(w.width, len(row))
		w.cells[i] = make([]*sheetsCell, len(row))
		for j, v := range row {
			c, ok, err := sheetsEntered(v, userEntered)
			if err != nil {
				b, _ := json.Marshal(v)
				return nil, sheetsErrorf(400, "Invalid %svalues[%d][%d]: %s", field, i, j, b)
			}
			if ok {
				w.cells[i][j] = &c
			}
		}
	}
	return w, nil
}

// apply writes the cells and returns Google's UpdateValuesResponse; rows
// and columns count those with at least one non-null value.
func (w *sheetsWrite) apply(bookID string) *sheets.UpdateValuesResponse {
	resp := &sheets.UpdateValuesResponse{SpreadsheetId: bookID, UpdatedRange: w.fallback}
	rows, cols := map[int]bool{}, map[int]bool{}
	for i, row := range w.cells {
		for j, c := range row {
			if c == nil {
				continue
			}
			w.tab.set(w.r0+i, w.c0+j, *c)
			resp.UpdatedCells++
			rows[i], cols[j] = true, true
		}
	}
	resp.UpdatedRows, resp.UpdatedColumns = int64(len(rows)), int64(len(cols))
	if len(w.cells) > 0 && w.width > 0 {
		resp.UpdatedRange = w.box().String()
	}
	return resp
}

func (w *sheetsWrite) box() sheetsResolved {
	return sheetsResolved{tab: w.tab, r0: w.r0, c0: w.c0, r1: w.r0 + len(w.cells), c1: w.c0 + w.width}
}

func (w *sheetsWrite) updatedData(render string) *sheets.ValueRange {
	x := w.box()
	return &sheets.ValueRange{Range: x.String(), MajorDimension: "ROWS", Values: x.tab.read(x.r0, x.c0, x.r1, x.c1, false, render)}
}

// sameRange reports whether a body's range names the same cells as the URL's.
func (b *sheetsBook) sameRange(url, body string) bool {
	x, e1 := b.resolve(url)
	y, e2 := b.resolve(body)
	return e1 == nil && e2 == nil && x.tab == y.tab && x.a1 == y.a1
}

func sheetsRequiredInput() *sheetsError {
	return sheetsErrorf(400, "'valueInputOption' is required but not specified")
}

func (b *sheetsBook) valuesUpdate(raw string, q url.Values, body []byte) (any, *sheetsError) {
	userEntered, e := sheetsInputOption(q.Get("valueInputOption"), sheetsRequiredInput())
	if e != nil {
		return nil, e
	}
	render, e := sheetsRenderOption(q.Get("responseValueRenderOption"))
	if e != nil {
		return nil, e
	}
	var vr sheets.ValueRange
	if e := sheetsDecode(body, &vr); e != nil {
		return nil, e
	}
	if vr.Range != "" && !b.sameRange(raw, vr.Range) {
		return nil, sheetsErrorf(400, "Request range[%s] does not match value's range[%s]", raw, vr.Range)
	}
	w, e := b.planWrite(raw, &vr, userEntered, "")
	if e != nil {
		return nil, e
	}
	resp := w.apply(b.id)
	if q.Get("includeValuesInResponse") == "true" {
		resp.UpdatedData = w.updatedData(render)
	}
	return resp, nil
}

func (b *sheetsBook) valuesBatchUpdate(body []byte) (any, *sheetsError) {
	var req sheets.BatchUpdateValuesRequest
	if e := sheetsDecode(body, &req); e != nil {
		return nil, e
	}
	userEntered, e := sheetsInputOption(req.ValueInputOption, sheetsErrorf(400, "Invalid valueInputOption: INPUT_VALUE_OPTION_UNSPECIFIED"))
	if e != nil {
		return nil, e
	}
	render, e := sheetsRenderOption(req.ResponseValueRenderOption)
	if e != nil {
		return nil, e
	}
	var writes []*sheetsWrite
	for i, vr := range req.Data {
		if vr == nil {
			vr = &sheets.ValueRange{}
		}
		w, e := b.planWrite(vr.Range, vr, userEntered, fmt.Sprintf("data[%d].", i))
		if e != nil {
			return nil, e
		}
		writes = append(writes, w)
	}
	out := &sheets.BatchUpdateValuesResponse{SpreadsheetId: b.id}
	type rc struct {
		tab *sheetsTab
		n   int
	}
	rows, cols, tabs := map[rc]bool{}, map[rc]bool{}, map[*sheetsTab]bool{}
	for _, w := range writes {
		resp := w.apply(b.id)
		if req.IncludeValuesInResponse {
			resp.UpdatedData = w.updatedData(render)
		}
		out.Responses = append(out.Responses, resp)
		out.TotalUpdatedCells += resp.UpdatedCells
		for i, row := range w.cells {
			for j, c := range row {
				if c != nil {
					rows[rc{w.tab, w.r0 + i}], cols[rc{w.tab, w.c0 + j}], tabs[w.tab] = true, true, true
				}
			}
		}
	}
	out.TotalUpdatedRows, out.TotalUpdatedColumns, out.TotalUpdatedSheets = int64(len(rows)), int64(len(cols)), int64(len(tabs))
	return out, nil
}

func (b *sheetsBook) valuesAppend(raw string, q url.Values, body []byte) (any, *sheetsError) {
	userEntered, e := sheetsInputOption(q.Get("valueInputOption"), sheetsRequiredInput())
	if e != nil {
		return nil, e
	}
	insertRows := false
	switch v := q.Get("insertDataOption"); v {
	case "", "OVERWRITE":
	case "INSERT_ROWS":
		insertRows = true
	default:
		return nil, sheetsBadEnum("insert_data_option", "ValueRange.InsertDataOption", v)
	}
	render, e := sheetsRenderOption(q.Get("responseValueRenderOption"))
	if e != nil {
		return nil, e
	}
	var vr sheets.ValueRange
	if e := sheetsDecode(body, &vr); e != nil {
		return nil, e
	}
	if vr.Range != "" && !b.sameRange(raw, vr.Range) {
		return nil, sheetsErrorf(400, "Request range[%s] does not match value's range[%s]", raw, vr.Range)
	}
	x, e := b.resolve(raw)
	if e != nil {
		return nil, e
	}
	cols, e := sheetsDimension("major_dimension", vr.MajorDimension)
	if e != nil {
		return nil, e
	}
	w, e := sheetsConvert(vr.Values, cols, userEntered, "")
	if e != nil {
		return nil, e
	}
	tab := x.tab
	// The table: rows from the range's top holding a value in its columns.
	searchEnd := x.c1
	if x.a1.singleCell() {
		searchEnd = tab.cols
	}
	first, last, lastCol := -1, -1, -1
	for r := x.r0; r < len(tab.cells); r++ {
		for c := x.c0; c < min(searchEnd, len(tab.cells[r])); c++ {
			if tab.cells[r][c].kind != cellEmpty {
				if first < 0 {
					first = r
				}
				last, lastCol = r, max(lastCol, c)
			}
		}
	}
	out := &sheets.AppendValuesResponse{SpreadsheetId: b.id}
	at := x.r0
	if last >= 0 {
		out.TableRange = sheetsResolved{tab: tab, r0: first, c0: x.c0, r1: last + 1, c1: lastCol + 1}.String()
		at = last + 1
	}
	n := len(w.cells)
	if insertRows && n > 0 && at < len(tab.cells) {
		tab.cells = slices.Insert(tab.cells, at, make([][]sheetsCell, n)...)
	}
	if insertRows {
		tab.rows += n
	}
	tab.rows = max(tab.rows, at+n)
	tab.cols = max(tab.cols, x.c0+w.width)
	w.tab, w.r0, w.c0 = tab, at, x.c0
	w.fallback = sheetsResolved{tab: tab, r0: at, c0: x.c0, r1: at + 1, c1: x.c0 + 1}.String()
	out.Updates = w.apply(b.id)
	if q.Get("includeValuesInResponse") == "true" {
		out.Updates.UpdatedData = w.updatedData(render)
	}
	return out, nil
}

func (b *sheetsBook) valuesClear(raw string) (any, *sheetsError) {
	x, e := b.resolve(raw)
	if e != nil {
		return nil, e
	}
	x.clear()
	return &sheets.ClearValuesResponse{SpreadsheetId: b.id, ClearedRange: x.String()}, nil
}

func (b *sheetsBook) valuesBatchClear(body []byte) (any, *sheetsError) {
	var req sheets.BatchClearValuesRequest
	if e := sheetsDecode(body, &req); e != nil {
		return nil, e
	}
	var xs []sheetsResolved
	for _, raw := range req.Ranges {
		x, e := b.resolve(raw)
		if e != nil {
			return nil, e
		}
		xs = append(xs, x)
	}
	out := &sheets.BatchClearValuesResponse{SpreadsheetId: b.id}
	for _, x := range xs {
		x.clear()
		out.ClearedRanges = append(out.ClearedRanges, x.String())
	}
	return out, nil
}

func (x sheetsResolved) clear() {
	for r := x.r0; r < min(x.r1, len(x.tab.cells)); r++ {
		for c := x.c0; c < min(x.c1, len(x.tab.cells[r])); c++ {
			x.tab.cells[r][c] = sheetsCell{}
		}
	}
}

// ---- spreadsheets.batchUpdate ----

type sheetsPropsIn struct {
	SheetID        *int64  `json:"sheetId"`
	Title          *string `json:"title"`
	Index          *int64  `json:"index"`
	GridProperties *struct {
		RowCount    *int64 `json:"rowCount"`
		ColumnCount *int64 `json:"columnCount"`
	} `json:"gridProperties"`
}

func (b *sheetsBook) batchUpdate(body []byte) (any, *sheetsError) {
	var req struct {
		Requests                     []map[string]json.RawMessage `json:"requests"`
		IncludeSpreadsheetInResponse bool                         `json:"includeSpreadsheetInResponse"`
		ResponseRanges               []string                     `json:"responseRanges"`
		ResponseIncludeGridData      bool                         `json:"responseIncludeGridData"`
	}
	if e := sheetsDecode(body, &req); e != nil {
		return nil, e
	}
	if len(req.Requests) == 0 {
		return nil, sheetsErrorf(400, "Must specify at least one request.")
	}
	// Work on copies of the sheets so a failing request changes nothing.
	work := make([]*sheetsTab, len(b.sheets))
	for i, s := range b.sheets {
		c := *s
		work[i] = &c
	}
	out := &sheets.BatchUpdateSpreadsheetResponse{SpreadsheetId: b.id}
	for i, rq := range req.Requests {
		if len(rq) != 1 {
			return nil, sheetsErrorf(400, "Invalid requests[%d]: exactly one request kind must be set, got %d.", i, len(rq))
		}
		for kind, raw := range rq {
			var reply *sheets.Response
			var e *sheetsError
			switch kind {
			case "addSheet":
				reply, e = b.addSheet(&work, raw, i)
			case "deleteSheet":
				reply, e = sheetsDeleteSheet(&work, raw, i)
			case "updateSheetProperties":
				reply, e = sheetsUpdateSheetProperties(&work, raw, i)
			default:
				if sheetsKnownRequest(kind) {
					e = sheetsErrorf(400, "Invalid requests[%d].%s: this request kind is not supported by the kaizen Sheets fake (supported: addSheet, deleteSheet, updateSheetProperties).", i, kind)
				} else {
					e = sheetsErrorf(400, "Invalid JSON payload received. Unknown name %q at 'requests[%d]': Cannot find field.", kind, i)
				}
			}
			if e != nil {
				return nil, e
			}
			out.Replies = append(out.Replies, reply)
		}
	}
	b.sheets = work
	if req.IncludeSpreadsheetInResponse {
		out.UpdatedSpreadsheet = b.resource()
	}
	return out, nil
}

// sheetsKnownRequest reports whether kind is a real Request field, so an
// unsupported-but-valid request is told apart from a typo.
func sheetsKnownRequest(kind string) bool {
	t := reflect.TypeFor[sheets.Request]()
	for i := range t.NumField() {
		if name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ","); name == kind {
			return true
		}
	}
	return false
}

func sheetsTitleTaken(tabs []*sheetsTab, title string, except *sheetsTab) bool {
	return slices.ContainsFunc(tabs, func(s *sheetsTab) bool { return s != except && strings.EqualFold(s.title, title) })
}

func (b *sheetsBook) addSheet(work *[]*sheetsTab, raw json.RawMessage, i int) (*sheets.Response, *sheetsError) {
	var in struct {
		Properties *sheetsPropsIn `json:"properties"`
	}
	if err := json.Unmarshal(raw, &in); err != nil {
		return nil, sheetsErrorf(400, "Invalid requests[%d].addSheet: %v", i, err)
	}
	p := in.Properties
	if p == nil {
		p = &sheetsPropsIn{}
	}
	tab := &sheetsTab{rows: sheetsDefaultRows, cols: sheetsDefaultCols}
	if p.Title != nil && *p.Title != "" {
		tab.title = *p.Title
		if sheetsTitleTaken(*work, tab.title, nil) {
			return nil, sheetsErrorf(400, "Invalid requests[%d].addSheet: A sheet with the name %q already exists. Please enter another name.", i, tab.title)
		}
	} else {
		for n := len(*work) + 1; ; n++ {
			if t := "Sheet" + strconv.Itoa(n); !sheetsTitleTaken(*work, t, nil) {
				tab.title = t
				break
			}
		}
	}
	if p.SheetID != nil {
		tab.id = *p.SheetID
		if tab.id < 0 || slices.ContainsFunc(*work, func(s *sheetsTab) bool { return s.id == tab.id }) {
			return nil, sheetsErrorf(400, "Invalid requests[%d].addSheet: Sheet with id %d already exists or is invalid.", i, tab.id)
		}
	} else {
		tab.id = b.newSheetID(*work)
		if len(*work) == 0 {
			tab.id = 0
		}
	}
	if g := p.GridProperties; g != nil {
		if e := sheetsGridSize(tab, g.RowCount, g.ColumnCount, i, "addSheet"); e != nil {
			return nil, e
		}
	}
	idx := len(*work)
	if p.Index != nil {
		idx = int(min(max(*p.Index, 0), int64(len(*work))))
	}
	*work = slices.Insert(*work, idx, tab)
	return &sheets.Response{AddSheet: &sheets.AddSheetResponse{Properties: tab.props(idx)}}, nil
}

func sheetsGridSize(tab *sheetsTab, rows, cols *int64, i int, kind string) *sheetsError {
	if rows != nil {
		if *rows < 1 || *rows > a1MaxRow {
			return sheetsErrorf(400, "Invalid requests[%d].%s: rowCount must be between 1 and %d.", i, kind, a1MaxRow)
		}
		tab.rows = int(*rows)
	}
	if cols != nil {
		if *cols < 1 || *cols > 18278 {
			return sheetsErrorf(400, "Invalid requests[%d].%s: columnCount must be between 1 and 18278.", i, kind)
		}
		tab.cols = int(*cols)
	}
	// Shrinking drops the cells outside the grid; copy so the original
	// (shared until the request commits) is untouched.
	cells := make([][]sheetsCell, 0, min(len(tab.cells), tab.rows))
	for _, row := range tab.cells[:min(len(tab.cells), tab.rows)] {
		cells = append(cells, slices.Clone(row[:min(len(row), tab.cols)]))
	}
	tab.cells = cells
	return nil
}

func sheetsDeleteSheet(work *[]*sheetsTab, raw json.RawMessage, i int) (*sheets.Response, *sheetsError) {
	var in struct {
		SheetID int64 `json:"sheetId"`
	}
	if err := json.Unmarshal(raw, &in); err != nil {
		return nil, sheetsErrorf(400, "Invalid requests[%d].deleteSheet: %v", i, err)
	}
	idx := slices.IndexFunc(*work, func(s *sheetsTab) bool { return s.id == in.SheetID })
	if idx < 0 {
		return nil, sheetsErrorf(400, "Invalid requests[%d].deleteSheet: No grid with id: %d", i, in.SheetID)
	}
	if len(*work) == 1 {
		return nil, sheetsErrorf(400, "Invalid requests[%d].deleteSheet: You can't remove all the sheets in a document.", i)
	}
	*work = slices.Delete(*work, idx, idx+1)
	return &sheets.Response{}, nil
}

// sheetsUpdateSheetProperties applies title, index and grid size; other
// (cosmetic) fields named in the mask are accepted and ignored.
func sheetsUpdateSheetProperties(work *[]*sheetsTab, raw json.RawMessage, i int) (*sheets.Response, *sheetsError) {
	var in struct {
		Properties *sheetsPropsIn `json:"properties"`
		Fields     string         `json:"fields"`
	}
	if err := json.Unmarshal(raw, &in); err != nil {
		return nil, sheetsErrorf(400, "Invalid requests[%d].updateSheetProperties: %v", i, err)
	}
	if strings.TrimSpace(in.Fields) == "" {
		return nil, sheetsErrorf(400, "Invalid requests[%d].updateSheetProperties: At least one field must be listed in 'fields'. (Use '*' to indicate all fields.)", i)
	}
	p := in.Properties
	if p == nil {
		p = &sheetsPropsIn{}
	}
	var id int64
	if p.SheetID != nil {
		id = *p.SheetID
	}
	idx := slices.IndexFunc(*work, func(s *sheetsTab) bool { return s.id == id })
	if idx < 0 {
		return nil, sheetsErrorf(400, "Invalid requests[%d].updateSheetProperties: No grid with id: %d", i, id)
	}
	tab := (*work)[idx]
	var rows, cols *int64
	for _, f := range strings.Split(in.Fields, ",") {
		f = strings.TrimSpace(f)
		all := f == "*"
		if all || f == "title" {
			switch {
			case p.Title == nil || *p.Title == "":
				return nil, sheetsErrorf(400, "Invalid requests[%d].updateSheetProperties: The sheet name cannot be empty.", i)
			case sheetsTitleTaken(*work, *p.Title, tab):
				return nil, sheetsErrorf(400, "Invalid requests[%d].updateSheetProperties: A sheet with the name %q already exists. Please enter another name.", i, *p.Title)
			}
			tab.title = *p.Title
		}
		if g := p.GridProperties; g != nil && (all || f == "gridProperties" || f == "gridProperties.rowCount") {
			rows = g.RowCount
		}
		if g := p.GridProperties; g != nil && (all || f == "gridProperties" || f == "gridProperties.columnCount") {
			cols = g.ColumnCount
		}
		if (all || f == "index") && p.Index != nil {
			to := int(min(max(*p.Index, 0), int64(len(*work)-1)))
			*work = slices.Insert(slices.Delete(*work, idx, idx+1), to, tab)
			idx = to
		}
	}
	if rows != nil || cols != nil {
		if e := sheetsGridSize(tab, rows, cols, i, "updateSheetProperties"); e != nil {
			return nil, e
		}
	}
	return &sheets.Response{}, nil
}

func sheetsRandHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
