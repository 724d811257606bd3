package quotareq

import (
	"strings"
	"testing"
	"time"

	"github.com/kaizen-onboard/kaizen/internal/sheet"
)

func TestParse(t *testing.T) {
	csv := `Timestamp,Email,Project,Temporary/Permanent,End Date,Quota Preset,vCPUs,RAM (GB),Approved,Status,Processed At
1/1/2026 10:00:00,Ada@Example.org,engines,,,Medium,,,yes,,
1/2/2026 10:00:00,ada@example.org,engines,Temporary,9/30/2026,,12,16,yes,,
1/3/2026 10:00:00,ada@example.org,engines,Temporary,,,12,,yes,,
1/4/2026 10:00:00,bob@,engines,sometimes,2026-01-01,tiny,-3,,yes,,
1/5/2026 10:00:00,ada@example.org,engines,,,,,,yes,,
1/6/2026 10:00:00,ada@example.org,engines,,,small,,,,,
1/7/2026 10:00:00,ada@example.org,engines,,,small,,,no,,
1/8/2026 10:00:00,ada@example.org,engines,,,small,,,yes,done,2026-01-09T00:00:00Z
1/9/2026 10:00:00,ada@example.org,engines,,,small,,,yes,refused: not a member,
1/10/2026 10:00:00,ada@example.org,engines,permanent,2026-01-01,,4,,yes,error: earlier,
`
	tbl, err := sheet.ReadCSV([]byte(csv))
	if err != nil {
		t.Fatal(err)
	}
	opts := ParseOptions{
		QuotaColumns:  map[string]string{"vCPUs": "cores", "RAM (GB)": "ram_gb", "Not in sheet": "volumes"},
		DefaultDomain: "Default", Presets: testPresets, AutoApprove: true,
	}
	p, err := Parse(tbl, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Requests) != 3 {
		t.Fatalf("requests = %+v, want rows 2, 3 and 7", p.Requests)
	}
	r2, r3, r7 := p.Requests[0], p.Requests[1], p.Requests[2]
	if r2.Row != 2 || r2.Email != "ada@example.org" || r2.Preset != "medium" || r2.Temporary || !r2.Approved || r2.Domain != "Default" {
		t.Errorf("row 2 = %+v", r2)
	}
	if r3.Row != 3 || !r3.Temporary || !r3.EndsOn.Equal(time.Date(2026, 9, 30, 0, 0, 0, 0, time.UTC)) ||
		r3.Quotas["cores"] != 12 || r3.Quotas["ram"] != 16*1024 || len(r3.Quotas) != 2 {
		t.Errorf("row 3 = %+v", r3)
	}
	if r7.Row != 7 || r7.Approved || !r7.Undecided || r7.Preset != "small" {
		t.Errorf("row 7 (undecided, for auto-approval) = %+v", r7)
	}
	wantInvalid := map[int][]string{
		4:  {"End Date: required"},
		5:  {`Email: "bob@"`, "neither Temporary nor Permanent", "tiny", `vCPUs: "-3"`},
		6:  {"asks for no quota"},
		11: {"only a temporary request has an end date"},
	}
	if len(p.Invalid) != len(wantInvalid) {
		t.Fatalf("invalid = %+v, want rows 4, 5, 6, 11", p.Invalid)
	}
	for _, inv := range p.Invalid {
		for _, part := range wantInvalid[inv.Row] {
			if !strings.Contains(inv.Error(), part) {
				t.Errorf("row %d: %q lacks %q", inv.Row, inv.Error(), part)
			}
		}
	}
	if p.Finished != 2 || p.Waiting != 1 {
		t.Errorf("finished %d, waiting %d; want 2 and 1 (the rejected row)", p.Finished, p.Waiting)
	}

	// Without auto-approval an undecided row waits too.
	opts.AutoApprove = false
	if p, _ := Parse(tbl, opts); len(p.Requests) != 2 || p.Waiting != 2 {
		t.Errorf("without auto-approval: %d requests, %d waiting; want 2 and 2", len(p.Requests), p.Waiting)
	}

	// A missing required column names itself.
	bad, _ := sheet.ReadCSV([]byte("Timestamp,Email,Approved,Status\n"))
	if _, err := Parse(bad, opts); err == nil || !strings.Contains(err.Error(), `"Project"`) || !strings.Contains(err.Error(), `"Processed At"`) {
		t.Errorf("Parse without Project and Processed At: %v", err)
	}
}
