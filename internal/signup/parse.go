package signup

import (
	"errors"
	"math"
	"net/mail"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/kaizen-onboard/kaizen/internal/config"
	pinrule "github.com/kaizen-onboard/kaizen/internal/pin"
	"github.com/kaizen-onboard/kaizen/internal/sheet"
)

const (
	maxEmailLen = 255 // Keystone's user name and email limit
	maxNameLen  = 64  // Keystone's project and domain name limit
)

var defaultPattern = regexp.MustCompile(config.DefaultProjectNamePattern)

func (o Options) withDefaults() Options {
	o.Columns = o.Columns.Resolved()
	if len(o.ApprovedValues) == 0 {
		o.ApprovedValues = config.Defaults().Sheet.ApprovedValues
	}
	if o.RejectedValues == nil { // unset; an empty list turns rejection off
		o.RejectedValues = config.Defaults().Sheet.RejectedValues
	}
	if o.ProjectNamePattern == nil {
		o.ProjectNamePattern = defaultPattern
	}
	return o
}

// Parse sorts rows into requests, invalid rows and rows not approved. The
// error, a *HeaderError, is for a header that cannot be used at all: it
// lists every missing required column (and every column found twice).
func Parse(header []string, rows []Row, opts Options) (Result, error) {
	opts = opts.withDefaults()
	c := opts.Columns
	positions := map[string][]int{}
	for i, h := range header {
		if n := config.HeaderKey(h); n != "" {
			positions[n] = append(positions[n], i)
		}
	}
	required := []string{c.Timestamp, c.Email, c.FirstName, c.LastName, c.PIN, c.ProjectName, c.Approved,
		c.Status, c.ProcessedAt, c.UserID, c.ProjectID}
	optional := []string{c.Organization, c.Role, c.Phone, c.Sponsor, c.Comment, c.ExistingAccount,
		c.ProjectDescription, c.AdditionalUsers, c.ExistingProject, c.QuotaPreset, c.Domain, c.DomainManager}
	if opts.AllApproved {
		required = slices.DeleteFunc(required, func(h string) bool { return h == c.Approved })
		optional = append(optional, c.Approved)
	}
	quotaHeaders := make([]string, 0, len(opts.QuotaColumns))
	for h := range opts.QuotaColumns {
		quotaHeaders = append(quotaHeaders, h)
	}
	slices.Sort(quotaHeaders)

	t := table{index: map[string]int{}}
	var herr HeaderError
	for i, name := range slices.Concat(required, optional, quotaHeaders) {
		n := config.HeaderKey(name)
		if _, done := t.index[n]; done {
			continue // two settings naming one header
		}
		switch pos := positions[n]; {
		case len(pos) == 0 && i < len(required):
			herr.Missing = append(herr.Missing, name)
		case len(pos) == 1:
			t.index[n] = pos[0]
		case len(pos) > 1:
			herr.Ambiguous = append(herr.Ambiguous, name)
			t.index[n] = pos[0]
		}
	}
	if len(herr.Missing) > 0 || len(herr.Ambiguous) > 0 {
		return Result{}, &herr
	}

	p := parser{opts: opts, t: t, quotaHeaders: quotaHeaders, approved: map[string]bool{}}
	// Approved cells compare as headers do.
	for _, a := range opts.ApprovedValues {
		if n := config.HeaderKey(a); n != "" {
			p.approved[n] = true
		}
	}
	res := Result{WriteBack: WriteBack{
		Status: t.col(c.Status), ProcessedAt: t.col(c.ProcessedAt), UserID: t.col(c.UserID), ProjectID: t.col(c.ProjectID),
	}}
	seen := map[string]int{} // email + project name -> first valid row
	rejected := map[string]bool{}
	for _, v := range opts.RejectedValues {
		if n := config.HeaderKey(v); n != "" {
			rejected[n] = true
		}
	}
	for _, r := range rows {
		if rejected[config.HeaderKey(t.raw(r, c.Approved))] {
			res.Rejected = append(res.Rejected, r.Number)
			continue
		}
		if !opts.AllApproved && !p.approved[config.HeaderKey(t.raw(r, c.Approved))] {
			res.Skipped = append(res.Skipped, r.Number)
			continue
		}
		req, errs := p.row(r)
		key := ""
		if req.Email != "" && req.ProjectName != "" {
			key = req.Email + "\x00" + strings.ToLower(req.ProjectName)
			if first, dup := seen[key]; dup {
				errs = append(errs, FieldError{Row: r.Number, Field: c.Email, Value: req.Email,
					Message: "already requested project " + strconv.Quote(req.ProjectName) + " in row " + strconv.Itoa(first)})
			}
		}
		if len(errs) > 0 {
			res.Invalid = append(res.Invalid, RowError{Row: r.Number, ID: req.Identity,
				Email: strings.TrimSpace(t.raw(r, c.Email)), Project: strings.TrimSpace(t.raw(r, c.ProjectName)),
				Status: strings.TrimSpace(t.raw(r, c.Status)), Errors: errs})
			continue
		}
		seen[key] = r.Number
		res.Requests = append(res.Requests, req)
	}
	return res, nil
}

type table struct {
	index map[string]int // config.HeaderKey of a header -> cell index, for columns present
}

func (t table) col(name string) int {
	if i, ok := t.index[config.HeaderKey(name)]; ok {
		return i
	}
	return -1
}

// raw is the cell of the named column, untouched; "" when the column or
// the cell is absent.
func (t table) raw(r Row, name string) string {
	i, ok := t.index[config.HeaderKey(name)]
	if !ok || i >= len(r.Cells) {
		return ""
	}
	return r.Cells[i]
}

type parser struct {
	opts         Options
	t            table
	quotaHeaders []string
	approved     map[string]bool
}

func (p *parser) row(r Row) (Request, []FieldError) {
	c := p.opts.Columns
	var errs []FieldError
	fail := func(field, value, msg string) {
		errs = append(errs, FieldError{Row: r.Number, Field: field, Value: value, Message: msg})
	}
	get := func(name string) string { return strings.TrimSpace(p.t.raw(r, name)) }
	required := func(name string) string {
		v := get(name)
		if v == "" {
			fail(name, "", "required")
		}
		return v
	}
	boolean := func(name string) bool {
		b, ok := parseBool(get(name))
		if !ok {
			fail(name, get(name), "is not yes or no")
		}
		return b
	}

	req := Request{Row: r.Number, Identity: Identity{Timestamp: p.t.raw(r, c.Timestamp), Email: p.t.raw(r, c.Email)}}
	if stamp := required(c.Timestamp); stamp != "" {
		at, err := sheet.ParseTimestamp(stamp, p.opts.DateOrder, time.UTC)
		if te, ok := errors.AsType[*sheet.TimestampError](err); ok {
			fail(c.Timestamp, stamp, te.Problem())
		} else {
			req.Submitted = at
		}
	}
	if email := get(c.Email); email == "" {
		fail(c.Email, "", "required")
	} else if msg := checkEmail(email); msg != "" {
		fail(c.Email, email, msg)
	} else {
		req.Email = strings.ToLower(email)
	}
	req.FirstName = required(c.FirstName)
	req.LastName = required(c.LastName)
	req.FullName = req.FirstName + " " + req.LastName
	req.Organization = get(c.Organization)
	req.Role = get(c.Role)
	req.Phone = get(c.Phone)
	req.Sponsor = get(c.Sponsor)
	switch pin := get(c.PIN); {
	case strings.EqualFold(pin, PINRegistered):
		// Written back after registration so PINs do not stay in the sheet.
		req.PINRegistered = true
	case !pinrule.Valid(pin):
		fail(c.PIN, "", "must be "+pinrule.Rule) // never echo a PIN
	default:
		req.PIN = PIN(pin)
	}
	req.Comment = get(c.Comment)
	req.ExistingAccount = boolean(c.ExistingAccount)
	if name := get(c.ProjectName); name == "" {
		fail(c.ProjectName, "", "required")
	} else if msg := p.checkName(name); msg != "" {
		fail(c.ProjectName, name, msg)
	} else {
		req.ProjectName = name
	}
	req.ProjectDescription = get(c.ProjectDescription)
	req.AdditionalUsers = p.additionalUsers(get(c.AdditionalUsers), req.Email, fail)
	req.ExistingProject = boolean(c.ExistingProject)

	req.QuotaPreset = p.opts.DefaultPreset
	if preset := get(c.QuotaPreset); preset != "" {
		if name, ok := p.preset(preset); ok {
			req.QuotaPreset = name
		} else {
			known := slices.Sorted(slices.Values(p.opts.Presets))
			fail(c.QuotaPreset, preset, "is not a quota preset (known: "+strings.Join(known, ", ")+")")
		}
	}
	req.Domain = p.opts.DefaultDomain
	if domain := get(c.Domain); domain != "" {
		if msg := p.checkName(domain); msg != "" {
			fail(c.Domain, domain, msg)
		} else {
			req.Domain = domain
		}
	}
	req.DomainManager = boolean(c.DomainManager)
	req.QuotaOverrides = p.quotas(r, fail)
	req.Status = get(c.Status)
	req.Done = strings.EqualFold(req.Status, StatusDone)
	return req, errs
}

func (p *parser) checkName(name string) string {
	if utf8.RuneCountInString(name) > maxNameLen {
		return "is longer than " + strconv.Itoa(maxNameLen) + " characters"
	}
	if !p.opts.ProjectNamePattern.MatchString(name) {
		return "does not match " + p.opts.ProjectNamePattern.String()
	}
	return ""
}

func (p *parser) preset(name string) (string, bool) {
	if p.opts.Presets == nil {
		return name, true
	}
	for _, known := range p.opts.Presets {
		if strings.EqualFold(known, name) {
			return known, true
		}
	}
	return "", false
}

func (p *parser) additionalUsers(cell, own string, fail func(field, value, msg string)) []string {
	var users []string
	for _, u := range strings.FieldsFunc(cell, func(r rune) bool { return r == ',' || r == ';' || unicode.IsSpace(r) }) {
		if msg := checkEmail(u); msg != "" {
			fail(p.opts.Columns.AdditionalUsers, u, msg)
			continue
		}
		u = strings.ToLower(u)
		if u != own && !slices.Contains(users, u) {
			users = append(users, u)
		}
	}
	return users
}

func (p *parser) quotas(r Row, fail func(field, value, msg string)) map[string]int64 {
	var out map[string]int64
	from := map[string]string{} // quota key -> header that set it
	for _, h := range p.quotaHeaders {
		v := strings.TrimSpace(p.t.raw(r, h))
		if v == "" {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			fail(h, v, "is not a whole number, 0 or more")
			continue
		}
		key := p.opts.QuotaColumns[h]
		if key == RAMGB {
			if n > math.MaxInt64/1024 {
				fail(h, v, "is too large")
				continue
			}
			key, n = "ram", n*1024
		}
		if other, dup := from[key]; dup {
			fail(h, v, "sets quota "+key+", already set by column "+strconv.Quote(other))
			continue
		}
		from[key] = h
		if out == nil {
			out = map[string]int64{}
		}
		out[key] = n
	}
	return out
}

// checkEmail returns why s is not a bare email address, or "".
func checkEmail(s string) string {
	if len(s) > maxEmailLen {
		return "is longer than " + strconv.Itoa(maxEmailLen) + " characters"
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s {
		return "is not an email address"
	}
	return ""
}

// parseBool reads a yes/no cell; "" is no.
func parseBool(s string) (value, ok bool) {
	switch strings.ToLower(s) {
	case "yes", "y", "true", "1":
		return true, true
	case "", "no", "n", "false", "0":
		return false, true
	}
	return false, false
}
