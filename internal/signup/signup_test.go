package signup

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kaizen-onboard/kaizen/internal/config"
	pinrule "github.com/kaizen-onboard/kaizen/internal/pin"
)

var header = []string{
	"Timestamp", "Email", "First Name", "Last Name", "Organization", "Role", "Phone", "Sponsor", "PIN",
	"Comment", "Existing Account", "Project Name", "Project Description", "Additional Users",
	"Existing Project", "Quota Preset", "Domain", "Approved", "Status", "Processed At", "User ID",
	"Project ID", "Instances", "RAM (GB)",
}

func opts() Options {
	return Options{
		QuotaColumns:  map[string]string{"Instances": "instances", "RAM (GB)": RAMGB},
		DefaultDomain: "Default",
		DefaultPreset: "small",
		Presets:       []string{"small", "medium", "large"},
	}
}

// good is a valid, approved row by header.
func good() map[string]string {
	return map[string]string{
		"Timestamp": "11/20/2026 10:00:00", "Email": "Ada@Example.org", "First Name": "Ada",
		"Last Name": "Lovelace", "PIN": "0420", "Project Name": "analytical-engine", "Approved": "TRUE",
	}
}

func mkRow(n int, hdr []string, vals map[string]string) Row {
	cells := make([]string, len(hdr))
	for i, h := range hdr {
		cells[i] = vals[h]
	}
	return Row{Number: n, Cells: cells}
}

// checkPartition asserts every row is in exactly one of the three lists.
func checkPartition(t testing.TB, rows []Row, res Result) {
	t.Helper()
	count := map[int]int{}
	for _, r := range res.Requests {
		count[r.Row]++
	}
	for _, e := range res.Invalid {
		count[e.Row]++
	}
	for _, n := range res.Skipped {
		count[n]++
	}
	for _, n := range res.Rejected {
		count[n]++
	}
	if len(count) != len(rows) {
		t.Errorf("%d rows in, %d rows sorted", len(rows), len(count))
	}
	for _, r := range rows {
		if count[r.Number] != 1 {
			t.Errorf("row %d is in %d lists", r.Number, count[r.Number])
		}
	}
}

// one parses a single modified good row (row 2).
func one(t *testing.T, mod func(map[string]string)) Result {
	t.Helper()
	v := good()
	if mod != nil {
		mod(v)
	}
	rows := []Row{mkRow(2, header, v)}
	res, err := Parse(header, rows, opts())
	if err != nil {
		t.Fatal(err)
	}
	checkPartition(t, rows, res)
	return res
}

func valid(t *testing.T, res Result) Request {
	t.Helper()
	if len(res.Requests) != 1 {
		t.Fatalf("want 1 request, got %+v", res)
	}
	return res.Requests[0]
}

func TestHeaderLookup(t *testing.T) {
	reversed := slices.Clone(header)
	slices.Reverse(reversed)
	messy := slices.Clone(header)
	for i, h := range messy {
		messy[i] = "  " + strings.ToUpper(strings.ReplaceAll(h, " ", "   ")) + "\t"
	}
	extra := slices.Concat([]string{"Score", ""}, header[:10], []string{"Internal notes"}, header[10:], []string{"Timestamp (copy)"})
	minimal := []string{"Approved", "Project ID", "PIN", "User ID", "Email", "Processed At", "First Name", "Status", "Last Name", "Project Name", "Timestamp"}
	tests := []struct {
		name string
		hdr  []string
	}{
		{"form order", header},
		{"reordered columns", reversed},
		{"case and whitespace in headers", messy},
		{"extra and blank columns", extra},
		{"optional columns absent", minimal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vals := good()
			vals["Comment"] = "hello"
			vals["Status"] = "done"
			// Cells keyed by the test's own header text.
			byHeader := map[string]string{}
			for _, h := range tt.hdr {
				for k, v := range vals {
					if config.HeaderKey(h) == config.HeaderKey(k) {
						byHeader[h] = v
					}
				}
			}
			byHeader["Score"], byHeader["Internal notes"], byHeader["Timestamp (copy)"] = "x", "y", "z"
			res, err := Parse(tt.hdr, []Row{mkRow(5, tt.hdr, byHeader)}, opts())
			if err != nil {
				t.Fatal(err)
			}
			req := valid(t, res)
			if req.Email != "ada@example.org" || req.PIN != "0420" || req.ProjectName != "analytical-engine" || !req.Done {
				t.Errorf("request %+v", req)
			}
			if slices.Contains(tt.hdr, "Comment") && req.Comment != "hello" {
				t.Errorf("comment %q", req.Comment)
			}
			if got := tt.hdr[res.WriteBack.UserID]; config.HeaderKey(got) != "user id" {
				t.Errorf("WriteBack.UserID points at %q", got)
			}
		})
	}

	t.Run("short rows read as blank cells", func(t *testing.T) {
		hdr := slices.Concat([]string{"Approved", "Timestamp", "Email", "First Name", "Last Name", "PIN", "Project Name"}, header[18:22])
		r := Row{Number: 3, Cells: []string{"yes", "11/20/2026 10:00:00", "a@b.org", "A", "B", "1234", "p"}}
		res, err := Parse(hdr, []Row{r}, opts())
		if err != nil {
			t.Fatal(err)
		}
		if req := valid(t, res); req.Status != "" || req.Done {
			t.Errorf("%+v", req)
		}
	})

	t.Run("missing headers listed together", func(t *testing.T) {
		hdr := slices.DeleteFunc(slices.Clone(header), func(h string) bool {
			return h == "PIN" || h == "Approved" || h == "User ID" || h == "Last Name" || h == "Comment"
		})
		_, err := Parse(hdr, nil, opts())
		var he *HeaderError
		if !errors.As(err, &he) {
			t.Fatalf("error %v is not a *HeaderError", err)
		}
		if want := []string{"Last Name", "PIN", "Approved", "User ID"}; !reflect.DeepEqual(he.Missing, want) {
			t.Errorf("missing %q, want %q", he.Missing, want)
		}
		if want := `sheet header: missing required column(s): "Last Name", "PIN", "Approved", "User ID"`; err.Error() != want {
			t.Errorf("error %q, want %q", err, want)
		}
	})

	t.Run("empty header lists every required column", func(t *testing.T) {
		_, err := Parse(nil, []Row{{Number: 2}}, Options{})
		var he *HeaderError
		if !errors.As(err, &he) || len(he.Missing) != 11 {
			t.Fatalf("got %v", err)
		}
	})

	t.Run("column found twice is ambiguous", func(t *testing.T) {
		hdr := append(slices.Clone(header), "email ", "instances")
		_, err := Parse(hdr, nil, opts())
		var he *HeaderError
		if !errors.As(err, &he) || !reflect.DeepEqual(he.Ambiguous, []string{"Email", "Instances"}) || len(he.Missing) != 0 {
			t.Fatalf("got %v", err)
		}
	})

	t.Run("configured column names", func(t *testing.T) {
		o := opts()
		o.Columns = Columns{Email: "E-mail Address", PIN: "Your 4-digit PIN"}
		hdr := slices.Clone(header)
		hdr[1], hdr[8] = "e-mail address", "YOUR 4-DIGIT PIN"
		vals := good()
		vals["e-mail address"], vals["YOUR 4-DIGIT PIN"] = vals["Email"], vals["PIN"]
		res, err := Parse(hdr, []Row{mkRow(2, hdr, vals)}, o)
		if err != nil {
			t.Fatal(err)
		}
		valid(t, res)
		_, err = Parse(header, nil, o)
		if err == nil || !strings.Contains(err.Error(), `"E-mail Address", "Your 4-digit PIN"`) {
			t.Errorf("want the configured names missing, got %v", err)
		}
	})
}

func TestApproved(t *testing.T) {
	tests := []struct {
		cell     string
		values   []string
		approved bool
	}{
		{"approved", nil, true},
		{"  Approved ", nil, true},
		{"YES", nil, true},
		{"TRUE", nil, true}, // a ticked checkbox
		{"true", nil, true},
		{"", nil, false},
		{"FALSE", nil, false},
		{"no", nil, false},
		{"pending", nil, false},
		{"approved!", nil, false},
		{"OK", []string{" ok "}, true},
		{"approved", []string{"ok"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.cell+"/"+strings.Join(tt.values, ","), func(t *testing.T) {
			v := good()
			v["Approved"] = tt.cell
			o := opts()
			o.ApprovedValues = tt.values
			rows := []Row{mkRow(4, header, v)}
			res, err := Parse(header, rows, o)
			if err != nil {
				t.Fatal(err)
			}
			checkPartition(t, rows, res)
			if got := len(res.Requests) == 1; got != tt.approved {
				t.Errorf("approved = %v, want %v (%+v)", got, tt.approved, res)
			}
		})
	}
	t.Run("unapproved rows are not validated", func(t *testing.T) {
		res := one(t, func(v map[string]string) { v["Approved"] = ""; v["Email"] = "nope" })
		if !reflect.DeepEqual(res.Skipped, []int{2}) || len(res.Invalid) != 0 {
			t.Errorf("%+v", res)
		}
	})
}

func TestRejected(t *testing.T) {
	tests := []struct {
		name        string
		cell        string
		values      []string // nil: the default, "rejected"
		allApproved bool
		rejected    bool
	}{
		{name: "default value", cell: " Rejected ", rejected: true},
		{name: "configured value", cell: "denied", values: []string{"Denied"}, rejected: true},
		{name: "turned off", cell: "rejected", values: []string{}},
		{name: "approved is not rejected", cell: "yes"},
		{name: "rejected wins over all_approved", cell: "rejected", allApproved: true, rejected: true},
		{name: "all_approved still takes other rows", cell: "", allApproved: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := good()
			v["Approved"] = tt.cell
			v["Email"] = "not an address" // a rejected row is not even validated
			o := opts()
			o.RejectedValues, o.AllApproved = tt.values, tt.allApproved
			rows := []Row{mkRow(2, header, v)}
			res, err := Parse(header, rows, o)
			if err != nil {
				t.Fatal(err)
			}
			checkPartition(t, rows, res)
			if got := slices.Equal(res.Rejected, []int{2}); got != tt.rejected {
				t.Errorf("rejected = %v, want %v (%+v)", got, tt.rejected, res)
			}
		})
	}
}

func TestValidRequest(t *testing.T) {
	res := one(t, func(v map[string]string) {
		v["Email"] = "  Ada@Example.ORG "
		v["Organization"] = " Analytical Society "
		v["Role"], v["Phone"], v["Sponsor"], v["Comment"] = "PI", "+1 555 0100", "Babbage", "notes"
		v["Existing Account"] = "Yes"
		v["Project Description"] = "Difference engines"
		v["Existing Project"] = "no"
		v["Additional Users"] = "charles@example.org"
		v["Quota Preset"] = "MEDIUM"
		v["Domain"] = "research"
		v["Instances"] = "12"
		v["RAM (GB)"] = "64"
		v["Status"] = "failed: quota"
	})
	got := valid(t, res)
	want := Request{
		Row: 2, Identity: Identity{Timestamp: "11/20/2026 10:00:00", Email: "  Ada@Example.ORG "},
		Submitted: time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC),
		Email:     "ada@example.org", FirstName: "Ada", LastName: "Lovelace", FullName: "Ada Lovelace",
		Organization: "Analytical Society", Role: "PI", Phone: "+1 555 0100", Sponsor: "Babbage", PIN: "0420",
		Comment: "notes", ExistingAccount: true, ProjectName: "analytical-engine", ProjectDescription: "Difference engines",
		AdditionalUsers: []string{"charles@example.org"}, Domain: "research", QuotaPreset: "medium",
		QuotaOverrides: map[string]int64{"instances": 12, "ram": 65536}, Status: "failed: quota",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	t.Run("defaults", func(t *testing.T) {
		got := valid(t, one(t, nil))
		if got.Domain != "Default" || got.QuotaPreset != "small" || got.QuotaOverrides != nil || got.AdditionalUsers != nil || got.ExistingAccount || got.ExistingProject {
			t.Errorf("%+v", got)
		}
	})
}

func TestValidation(t *testing.T) {
	tests := []struct {
		name  string
		mod   func(map[string]string)
		field string
		value string
		msg   string
	}{
		{"timestamp required", func(v map[string]string) { v["Timestamp"] = " " }, "Timestamp", "", "required"},
		{"email required", func(v map[string]string) { v["Email"] = "" }, "Email", "", "required"},
		{"email without domain", func(v map[string]string) { v["Email"] = "bob@" }, "Email", "bob@", "is not an email address"},
		{"email without at", func(v map[string]string) { v["Email"] = "bob.example.org" }, "Email", "bob.example.org", "is not an email address"},
		{"email display name", func(v map[string]string) { v["Email"] = "Bob <bob@example.org>" }, "Email", "Bob <bob@example.org>", "is not an email address"},
		{"email angle brackets", func(v map[string]string) { v["Email"] = "<bob@example.org>" }, "Email", "<bob@example.org>", "is not an email address"},
		{"email two addresses", func(v map[string]string) { v["Email"] = "a@example.org, b@example.org" }, "Email", "a@example.org, b@example.org", "is not an email address"},
		{"email too long", func(v map[string]string) { v["Email"] = strings.Repeat("a", 244) + "@example.org" }, "Email", strings.Repeat("a", 244) + "@example.org", "longer than 255"},
		{"first name required", func(v map[string]string) { v["First Name"] = "" }, "First Name", "", "required"},
		{"last name required", func(v map[string]string) { v["Last Name"] = "\t" }, "Last Name", "", "required"},
		{"PIN required", func(v map[string]string) { v["PIN"] = "" }, "PIN", "", "exactly 4 digits"},
		{"PIN too short", func(v map[string]string) { v["PIN"] = "123" }, "PIN", "", "exactly 4 digits"},
		{"PIN too long", func(v map[string]string) { v["PIN"] = "12345" }, "PIN", "", "exactly 4 digits"},
		{"PIN letters", func(v map[string]string) { v["PIN"] = "12a4" }, "PIN", "", "exactly 4 digits"},
		{"PIN non-ASCII digits", func(v map[string]string) { v["PIN"] = "١٢٣٤" }, "PIN", "", "exactly 4 digits"},
		{"project name required", func(v map[string]string) { v["Project Name"] = "" }, "Project Name", "", "required"},
		{"project name too long", func(v map[string]string) { v["Project Name"] = strings.Repeat("p", 65) }, "Project Name", strings.Repeat("p", 65), "longer than 64"},
		{"project name leading dash", func(v map[string]string) { v["Project Name"] = "-x" }, "Project Name", "-x", "does not match"},
		{"project name slash", func(v map[string]string) { v["Project Name"] = "a/b" }, "Project Name", "a/b", "does not match"},
		{"unknown quota preset", func(v map[string]string) { v["Quota Preset"] = "huge" }, "Quota Preset", "huge", "is not a quota preset (known: large, medium, small)"},
		{"quota override negative", func(v map[string]string) { v["Instances"] = "-1" }, "Instances", "-1", "whole number, 0 or more"},
		{"quota override fraction", func(v map[string]string) { v["RAM (GB)"] = "1.5" }, "RAM (GB)", "1.5", "whole number, 0 or more"},
		{"quota override words", func(v map[string]string) { v["Instances"] = "ten" }, "Instances", "ten", "whole number, 0 or more"},
		{"quota override overflows in MiB", func(v map[string]string) { v["RAM (GB)"] = "9007199254740992" }, "RAM (GB)", "9007199254740992", "too large"},
		{"additional user malformed", func(v map[string]string) { v["Additional Users"] = "ok@example.org, nope@" }, "Additional Users", "nope@", "is not an email address"},
		{"domain too long", func(v map[string]string) { v["Domain"] = strings.Repeat("d", 65) }, "Domain", strings.Repeat("d", 65), "longer than 64"},
		{"domain pattern", func(v map[string]string) { v["Domain"] = "my/domain" }, "Domain", "my/domain", "does not match"},
		{"existing account not yes or no", func(v map[string]string) { v["Existing Account"] = "maybe" }, "Existing Account", "maybe", "is not yes or no"},
		{"existing project not yes or no", func(v map[string]string) { v["Existing Project"] = "sure" }, "Existing Project", "sure", "is not yes or no"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := one(t, tt.mod)
			if len(res.Invalid) != 1 || len(res.Requests) != 0 {
				t.Fatalf("want one invalid row, got %+v", res)
			}
			re := res.Invalid[0]
			if re.Row != 2 || len(re.Errors) != 1 {
				t.Fatalf("want one error on row 2, got %v", re)
			}
			fe := re.Errors[0]
			if fe.Row != 2 || fe.Field != tt.field || fe.Value != tt.value || !strings.Contains(fe.Message, tt.msg) {
				t.Errorf("got %+v, want %s %q ...%s...", fe, tt.field, tt.value, tt.msg)
			}
		})
	}

	t.Run("boundaries are valid", func(t *testing.T) {
		valid(t, one(t, func(v map[string]string) {
			v["Email"] = strings.Repeat("a", 243) + "@example.org" // 255
			v["Project Name"] = strings.Repeat("p", 64)
			v["Domain"] = strings.Repeat("d", 64)
			v["PIN"] = " 0000 "
			v["Instances"] = "0"
		}))
	})
	t.Run("custom project name pattern", func(t *testing.T) {
		o := opts()
		o.ProjectNamePattern = regexp.MustCompile(`^[a-z]+$`)
		v := good()
		res, err := Parse(header, []Row{mkRow(2, header, v)}, o)
		if err != nil || len(res.Invalid) != 1 || !strings.Contains(res.Invalid[0].Error(), `does not match ^[a-z]+$`) {
			t.Errorf("%v %+v", err, res)
		}
	})
	t.Run("several problems in one row", func(t *testing.T) {
		res := one(t, func(v map[string]string) {
			v["Email"] = "bob@"
			v["PIN"] = "12"
			v["First Name"] = ""
		})
		if len(res.Invalid) != 1 || len(res.Invalid[0].Errors) != 3 {
			t.Fatalf("%+v", res)
		}
	})
}

func TestRowErrorFormat(t *testing.T) {
	v := good()
	v["Email"], v["PIN"] = "bob@", "12x4"
	res, err := Parse(header, []Row{mkRow(7, header, v)}, opts())
	if err != nil || len(res.Invalid) != 1 {
		t.Fatalf("%v %+v", err, res)
	}
	want := `row 7: Email: "bob@" is not an email address; PIN: must be exactly 4 digits`
	if got := res.Invalid[0].Error(); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if got := res.Invalid[0].Errors[0].Error(); got != `row 7: Email: "bob@" is not an email address` {
		t.Errorf("FieldError.Error() = %s", got)
	}
	long := FieldError{Row: 1, Field: "Comment", Value: strings.Repeat("x", 200), Message: "m"}
	if len(long.Error()) > 120 {
		t.Errorf("long values are not shortened: %d chars", len(long.Error()))
	}
}

func TestPINNeverEchoed(t *testing.T) {
	for _, pin := range []string{"12345", "123", "12a4", "98 76", "secret-4321", "٠١٢٣", "1234\n"} {
		t.Run(pin, func(t *testing.T) {
			res := one(t, func(v map[string]string) {
				v["PIN"] = pin
				v["Email"] = "bob@" // another error in the same row
			})
			if len(res.Invalid) != 1 {
				t.Fatalf("%+v", res)
			}
			re := res.Invalid[0]
			trimmed := strings.TrimSpace(pin)
			if strings.Contains(re.Error(), trimmed) {
				t.Errorf("row error echoes the PIN: %s", re.Error())
			}
			var err error = re
			if strings.Contains(err.Error(), trimmed) {
				t.Errorf("error echoes the PIN: %s", err)
			}
			for _, fe := range re.Errors {
				if fe.Field == "PIN" && fe.Value != "" {
					t.Errorf("FieldError.Value holds the PIN: %q", fe.Value)
				}
				if strings.Contains(fe.Value, trimmed) || strings.Contains(fe.Error(), trimmed) || strings.Contains(fe.Message, trimmed) {
					t.Errorf("field error echoes the PIN: %+v", fe)
				}
			}
		})
	}
}

func TestPINRedactedWhenPrinted(t *testing.T) {
	req := valid(t, one(t, nil))
	if req.PIN.Reveal() != "0420" {
		t.Fatalf("PIN %q", req.PIN.Reveal())
	}
	out := fmt.Sprintf("%v %+v %#v %s", req, req, req, req.PIN)
	b, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{out, string(b)} {
		if strings.Contains(s, "0420") || !strings.Contains(s, "[redacted]") {
			t.Errorf("printing a request shows its PIN: %s", s)
		}
	}
}

func TestDuplicates(t *testing.T) {
	ada := good()
	adaAgain := good()
	adaAgain["Email"], adaAgain["Project Name"] = "ADA@example.org", "Analytical-Engine"
	adaOther := good()
	adaOther["Project Name"] = "difference-engine"
	badAda := good()
	badAda["PIN"] = "x"
	unapproved := good()
	unapproved["Approved"] = "no"

	tests := []struct {
		name    string
		rows    []map[string]string
		valid   []int
		invalid map[int]string // row -> message fragment
		skipped []int
	}{
		{"same email and project, case-insensitive", []map[string]string{ada, adaAgain}, []int{2}, map[int]string{3: `already requested project "Analytical-Engine" in row 2`}, nil},
		{"three copies all name the first", []map[string]string{ada, ada, ada}, []int{2}, map[int]string{3: "in row 2", 4: "in row 2"}, nil},
		{"other project is not a duplicate", []map[string]string{ada, adaOther}, []int{2, 3}, nil, nil},
		{"an invalid earlier row does not count", []map[string]string{badAda, ada}, []int{3}, map[int]string{2: "PIN"}, nil},
		{"an unapproved earlier row does not count", []map[string]string{unapproved, ada}, []int{3}, nil, []int{2}},
		{"duplicate with other problems lists them all", []map[string]string{ada, badAda}, []int{2}, map[int]string{3: "PIN: must be exactly 4 digits; Email: \"ada@example.org\" already requested"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var rows []Row
			for i, v := range tt.rows {
				rows = append(rows, mkRow(i+2, header, v))
			}
			res, err := Parse(header, rows, opts())
			if err != nil {
				t.Fatal(err)
			}
			checkPartition(t, rows, res)
			var got []int
			for _, r := range res.Requests {
				got = append(got, r.Row)
			}
			if !slices.Equal(got, tt.valid) || !slices.Equal(res.Skipped, tt.skipped) || len(res.Invalid) != len(tt.invalid) {
				t.Fatalf("valid %v skipped %v invalid %v", got, res.Skipped, res.Invalid)
			}
			for _, re := range res.Invalid {
				if !strings.Contains(re.Error(), tt.invalid[re.Row]) {
					t.Errorf("row %d: %q lacks %q", re.Row, re.Error(), tt.invalid[re.Row])
				}
			}
		})
	}
}

func TestAdditionalUsers(t *testing.T) {
	tests := []struct {
		name string
		cell string
		want []string
		bad  []string
	}{
		{"empty", "", nil, nil},
		{"commas", "a@example.org,b@example.org", []string{"a@example.org", "b@example.org"}, nil},
		{"semicolons and spaces", "a@example.org; b@example.org ;c@example.org", []string{"a@example.org", "b@example.org", "c@example.org"}, nil},
		{"newlines and tabs", "a@example.org\nb@example.org\tc@example.org", []string{"a@example.org", "b@example.org", "c@example.org"}, nil},
		{"lower-cased and deduplicated", "A@Example.org, a@example.ORG, b@example.org", []string{"a@example.org", "b@example.org"}, nil},
		{"requester's own address dropped", "ada@example.org, b@example.org", []string{"b@example.org"}, nil},
		{"empty items ignored", ",,a@example.org;;", []string{"a@example.org"}, nil},
		{"each malformed one reported", "a@example.org, nope, also@", nil, []string{"nope", "also@"}},
		{"display names are not addresses", "Bob <bob@example.org>", nil, []string{"Bob", "<bob@example.org>"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := one(t, func(v map[string]string) { v["Additional Users"] = tt.cell })
			if tt.bad == nil {
				if got := valid(t, res).AdditionalUsers; !slices.Equal(got, tt.want) {
					t.Errorf("got %q, want %q", got, tt.want)
				}
				return
			}
			if len(res.Invalid) != 1 {
				t.Fatalf("%+v", res)
			}
			var got []string
			for _, fe := range res.Invalid[0].Errors {
				if fe.Field != "Additional Users" {
					t.Errorf("unexpected %v", fe)
				}
				got = append(got, fe.Value)
			}
			if !slices.Equal(got, tt.bad) {
				t.Errorf("bad %q, want %q", got, tt.bad)
			}
		})
	}
}

func TestQuotaOverrides(t *testing.T) {
	tests := []struct {
		name  string
		cells map[string]string
		want  map[string]int64
	}{
		{"none", nil, nil},
		{"GB to MiB", map[string]string{"RAM (GB)": "8"}, map[string]int64{"ram": 8192}},
		{"zero", map[string]string{"Instances": " 0 "}, map[string]int64{"instances": 0}},
		{"several", map[string]string{"Instances": "3", "RAM (GB)": "1"}, map[string]int64{"instances": 3, "ram": 1024}},
		{"largest RAM", map[string]string{"RAM (GB)": "9007199254740991"}, map[string]int64{"ram": 9007199254740991 * 1024}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := valid(t, one(t, func(v map[string]string) {
				for k, c := range tt.cells {
					v[k] = c
				}
			})).QuotaOverrides
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
	if 9007199254740991*1024 > math.MaxInt64 {
		t.Fatal("test constant overflows")
	}

	t.Run("two columns setting one quota", func(t *testing.T) {
		o := opts()
		o.QuotaColumns["RAM (MiB)"] = "ram"
		hdr := append(slices.Clone(header), "RAM (MiB)")
		v := good()
		v["RAM (GB)"], v["RAM (MiB)"] = "1", "2048"
		res, err := Parse(hdr, []Row{mkRow(2, hdr, v)}, o)
		if err != nil || len(res.Invalid) != 1 || !strings.Contains(res.Invalid[0].Error(), `sets quota ram, already set by column "RAM (GB)"`) {
			t.Errorf("%v %+v", err, res)
		}
	})
	t.Run("quota columns are optional", func(t *testing.T) {
		res, err := Parse(header[:22], []Row{mkRow(2, header[:22], good())}, opts())
		if err != nil {
			t.Fatal(err)
		}
		valid(t, res)
	})
}

func TestDone(t *testing.T) {
	for status, done := range map[string]bool{"done": true, " DONE ": true, "": false, "failed: quota": false, "done?": false} {
		t.Run(status, func(t *testing.T) {
			got := valid(t, one(t, func(v map[string]string) { v["Status"] = status }))
			if got.Done != done || got.Status != strings.TrimSpace(status) {
				t.Errorf("status %q: Done = %v", got.Status, got.Done)
			}
		})
	}
}

func TestOptionsFromConfig(t *testing.T) {
	cfg := config.Defaults()
	cfg.Sheet.QuotaColumns = map[string]string{"Instances": "instances", "RAM (GB)": "ram_gb"}
	cfg.Sheet.Columns.Email = "E-mail"
	o, err := OptionsFromConfig(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	if o.Columns.Email != "E-mail" || o.Columns.PIN != "PIN" || o.DefaultDomain != "Default" || o.DefaultPreset != "small" ||
		len(o.Presets) != 3 || o.ProjectNamePattern.String() != config.DefaultProjectNamePattern || len(o.ApprovedValues) != 3 {
		t.Errorf("%+v", o)
	}
	hdr := slices.Clone(header)
	hdr[1] = "E-mail"
	v := good()
	v["E-mail"] = v["Email"]
	v["Quota Preset"] = "large"
	res, err := Parse(hdr, []Row{mkRow(2, hdr, v)}, o)
	if err != nil {
		t.Fatal(err)
	}
	if got := valid(t, res); got.QuotaPreset != "large" {
		t.Errorf("%+v", got)
	}
	cfg.Sheet.ProjectNamePattern = "("
	if _, err := OptionsFromConfig(&cfg); err == nil || !strings.Contains(err.Error(), "sheet.project_name_pattern") {
		t.Errorf("bad pattern: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	line := func(v map[string]string) string {
		cells := make([]string, len(header))
		for i, h := range header {
			cells[i] = v[h]
		}
		return strings.Join(cells, "\t")
	}
	bad := good()
	bad["PIN"], bad["Email"] = "98765", "x@"
	f.Add(uint8(0), "", line(good())+"\n"+line(good())+"\n"+line(bad))
	f.Add(uint8(6), "Extra\tEmail", line(bad))
	f.Add(uint8(1), strings.Join(header, "\t"), "\n\t\t\n"+line(good()))
	f.Add(uint8(3), "PIN\tApproved", "1234\tyes")
	f.Fuzz(func(t *testing.T, mode uint8, extra, body string) {
		var hdr []string
		if mode%2 == 0 {
			// The form's header, rotated, with extra columns: usable.
			k := int(mode/2) % len(header)
			hdr = slices.Concat(header[k:], header[:k], strings.Split(extra, "\t"))
		} else {
			hdr = strings.Split(extra, "\t")
		}
		var rows []Row
		for i, l := range strings.Split(body, "\n") {
			rows = append(rows, Row{Number: i + 2, Cells: strings.Split(l, "\t")})
		}
		o := opts()
		res, err := Parse(hdr, rows, o)
		if err != nil {
			if _, ok := errors.AsType[*HeaderError](err); !ok {
				t.Fatalf("error %T: %v", err, err)
			}
			return
		}
		checkPartition(t, rows, res)
		pinAt := headerIndex(hdr, "PIN")
		for _, re := range res.Invalid {
			r := rows[re.Row-2]
			pin := ""
			if pinAt < len(r.Cells) {
				pin = strings.TrimSpace(r.Cells[pinAt])
			}
			for _, fe := range re.Errors {
				if fe.Field == "PIN" && fe.Value != "" {
					t.Fatalf("PIN echoed in Value: %+v", fe)
				}
			}
			if len(pin) < 4 || !strings.Contains(re.Error(), pin) {
				continue
			}
			// The PIN's text shows up; fine only if it comes from elsewhere:
			// with the PIN cell changed the text is still there.
			alt := slices.Clone(rows)
			alt[re.Row-2] = Row{Number: r.Number, Cells: slices.Clone(r.Cells)}
			alt[re.Row-2].Cells[pinAt] = "x"
			res2, _ := Parse(hdr, alt, o)
			for _, re2 := range res2.Invalid {
				if re2.Row == re.Row && !strings.Contains(re2.Error(), pin) {
					t.Fatalf("row error echoes PIN %q: %s", pin, re.Error())
				}
			}
		}
		for _, r := range res.Requests {
			if !pinrule.Valid(r.PIN.Reveal()) || r.Email == "" || r.ProjectName == "" {
				t.Fatalf("invalid request accepted: %+v", r)
			}
		}
	})
}

// headerIndex finds a header the way Parse does (test helper).
func headerIndex(hdr []string, name string) int {
	for i, h := range hdr {
		if config.HeaderKey(h) == config.HeaderKey(name) {
			return i
		}
	}
	return -1
}

// TestRegisteredPIN: once a request is registered with setpass its PIN cell
// is overwritten; re-runs must still parse the row.
func TestRegisteredPIN(t *testing.T) {
	for _, cell := range []string{PINRegistered, " (Registered) "} {
		t.Run(cell, func(t *testing.T) {
			got := valid(t, one(t, func(v map[string]string) { v["PIN"] = cell; v["Status"] = "done" }))
			if !got.PINRegistered || got.PIN != "" || !got.Done {
				t.Errorf("PINRegistered %v, PIN set %v, Done %v; want true, false, true", got.PINRegistered, got.PIN != "", got.Done)
			}
		})
	}
}

func TestAllApproved(t *testing.T) {
	t.Parallel()
	hdr := slices.DeleteFunc(slices.Clone(header), func(h string) bool { return h == "Approved" })
	unapproved := good()
	delete(unapproved, "Approved")
	rows := []Row{mkRow(2, hdr, unapproved)}
	tests := []struct {
		name        string
		all         bool
		wantErr     bool
		wantRequest int
	}{
		{"every row approved, no Approved column needed", true, false, 1},
		{"without it the column is required", false, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := opts()
			o.AllApproved = tt.all
			res, err := Parse(hdr, rows, o)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Parse error = %v, want error %v", err, tt.wantErr)
			}
			if len(res.Requests) != tt.wantRequest {
				t.Errorf("requests = %d, want %d", len(res.Requests), tt.wantRequest)
			}
		})
	}
	t.Run("Approved cell ignored when present", func(t *testing.T) {
		no := good()
		no["Approved"] = "no"
		o := opts()
		o.AllApproved = true
		res, err := Parse(header, []Row{mkRow(2, header, no)}, o)
		if err != nil || len(res.Requests) != 1 {
			t.Fatalf("Parse = %d requests, %v; want 1 request", len(res.Requests), err)
		}
	})
}
