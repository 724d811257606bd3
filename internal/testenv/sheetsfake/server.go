package sheetsfake

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"google.golang.org/api/sheets/v4"
)

const (
	apiPrefix = "/v4/spreadsheets/"
	maxBody   = 10 << 20
)

// statusWriter remembers the status sent, for RecordedRequest.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (f *Fake) serveHTTP(w http.ResponseWriter, r *http.Request) {
	sw := &statusWriter{ResponseWriter: w}
	rec := RecordedRequest{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query()}
	if r.URL.Path == tokenPath {
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

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code, b = http.StatusInternalServerError, []byte(`{"error":{"code":500,"message":"fake: encoding response","status":"INTERNAL"}}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(code)
	w.Write(b)
}

// apiError is a Google API error; it is written as
// {"error":{"code","message","status"[,"details"]}}, which the generated
// client turns into *googleapi.Error.
type apiError struct {
	code    int
	status  string
	msg     string
	details []any
}

func (e *apiError) write(w http.ResponseWriter) {
	body := map[string]any{"code": e.code, "message": e.msg, "status": e.status}
	if len(e.details) > 0 {
		body["details"] = e.details
	}
	writeJSON(w, e.code, map[string]any{"error": body})
}

func errorf(code int, format string, args ...any) *apiError {
	return &apiError{code: code, status: statusName(code), msg: fmt.Sprintf(format, args...)}
}

// withErrorInfo attaches a google.rpc.ErrorInfo detail, as Google does for
// scope and quota errors.
func (e *apiError) withErrorInfo(reason string, metadata map[string]string) *apiError {
	e.details = []any{map[string]any{
		"@type":    "type.googleapis.com/google.rpc.ErrorInfo",
		"reason":   reason,
		"domain":   "googleapis.com",
		"metadata": metadata,
	}}
	return e
}

func statusName(code int) string {
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

func badEnum(param, enum, v string) *apiError {
	return errorf(400, "Invalid value at '%s' (type.googleapis.com/google.apps.sheets.v4.%s), %q", param, enum, v)
}

func rangeError(raw string) *apiError {
	return errorf(400, "Unable to parse range: %s", raw)
}

type route struct {
	op     string
	method string // RPC name, for scope errors
	write  bool
	id     string
	rng    string
}

// parseRoute maps a request to an API method. It works on the escaped path
// because the client percent-encodes ':' and '/' inside ids and ranges;
// custom verbs (":append") are matched as suffixes so that a hand-written
// URL with a literal ':' in its range still routes.
func parseRoute(r *http.Request) (route, bool) {
	rest, ok := strings.CutPrefix(r.URL.EscapedPath(), apiPrefix)
	if !ok {
		return route{}, false
	}
	segs := strings.Split(rest, "/")
	unesc := func(s string) (string, bool) {
		u, err := url.PathUnescape(s)
		return u, err == nil
	}
	var rt route
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
		case "values:batchGetByDataFilter":
			rt.op, rt.method, want = "values.batchGetByDataFilter", "BatchGetValuesByDataFilter", http.MethodPost
		case "values:batchUpdateByDataFilter":
			rt.op, rt.method, rt.write, want = "values.batchUpdateByDataFilter", "BatchUpdateValuesByDataFilter", true, http.MethodPost
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

func (f *Fake) serveSheets(w http.ResponseWriter, r *http.Request, rec *RecordedRequest) {
	rt, ok := parseRoute(r)
	if !ok {
		errorf(404, "Method not found.").write(w)
		return
	}
	rec.Op, rec.SpreadsheetID = rt.op, rt.id
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		errorf(400, "Request payload too large or unreadable.").write(w)
		return
	}

	f.mu.Lock()
	hook := f.hook
	f.mu.Unlock()
	if hook != nil {
		// Outside the lock: the hook may edit the grid as a person would.
		hook(rt.op)
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
	if e := f.chargeQuota(w, f.email, rt.write); e != nil {
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
		errorf(404, "Requested entity was not found.").write(w)
		return
	}
	if !b.granted {
		errorf(403, "The caller does not have permission").write(w)
		return
	}
	q := r.URL.Query()
	var resp any
	var e *apiError
	switch rt.op {
	case "spreadsheets.get":
		resp = b.resource()
	case "spreadsheets.batchUpdate":
		resp, e = b.batchUpdate(body)
	case "values.get":
		resp, e = b.readRange(rt.rng, q)
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
	case "values.batchGetByDataFilter":
		resp, e = b.valuesBatchGetByDataFilter(body)
	case "values.batchUpdateByDataFilter":
		resp, e = b.valuesBatchUpdateByDataFilter(body)
	}
	if e != nil {
		e.write(w)
		return
	}
	writeJSON(w, 200, resp)
}

// authorize checks the bearer token and its scopes; called with f.mu held.
func (f *Fake) authorize(r *http.Request, rt route) *apiError {
	const see = " Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project."
	h := r.Header.Get("Authorization")
	if h == "" {
		return errorf(401, "Request is missing required authentication credential."+see)
	}
	scheme, tok, _ := strings.Cut(h, " ")
	g, ok := f.tokens[tok]
	if !strings.EqualFold(scheme, "Bearer") || !ok || time.Now().After(g.expires) {
		return errorf(401, "Request had invalid authentication credentials."+see)
	}
	allowed := []string{sheets.SpreadsheetsScope, sheets.DriveScope, sheets.DriveFileScope}
	if !rt.write {
		allowed = append(allowed, sheets.SpreadsheetsReadonlyScope, sheets.DriveReadonlyScope)
	}
	if slices.ContainsFunc(g.scopes, func(s string) bool { return slices.Contains(allowed, s) }) {
		return nil
	}
	return errorf(403, "Request had insufficient authentication scopes.").withErrorInfo("ACCESS_TOKEN_SCOPE_INSUFFICIENT", map[string]string{
		"service": "sheets.googleapis.com",
		"method":  "google.apps.sheets.v4.SpreadsheetsService." + rt.method,
	})
}

func (f *Fake) injectedError(code int, write bool) *apiError {
	switch code {
	case 429:
		kind := "Read"
		if write {
			kind = "Write"
		}
		return f.quotaError(kind, 60)
	case 500:
		return errorf(500, "Internal error encountered.")
	case 503:
		return errorf(503, "The service is currently unavailable.")
	}
	return errorf(code, "%s", http.StatusText(code))
}
