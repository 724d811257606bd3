package onboard

import (
	"slices"
	"strings"
	"testing"

	"github.com/kaizen-onboard/kaizen/internal/signup"
)

func TestGroup(t *testing.T) {
	t.Parallel()
	req := func(row int, email, project string, extra ...string) signup.Request {
		return signup.Request{Row: row, Email: email, ProjectName: project, Domain: "Default", AdditionalUsers: extra}
	}
	tests := []struct {
		name string
		in   []signup.Request
		want [][]int // rows per group
	}{
		{"independent rows run apart", []signup.Request{req(2, "a@x", "p1"), req(3, "b@x", "p2")}, [][]int{{2}, {3}}},
		{"same project", []signup.Request{req(2, "a@x", "p1"), req(3, "b@x", "P1")}, [][]int{{2, 3}}},
		{"same requester", []signup.Request{req(2, "a@x", "p1"), req(3, "a@x", "p2")}, [][]int{{2, 3}}},
		{"additional user links rows", []signup.Request{req(2, "a@x", "p1", "c@x"), req(3, "b@x", "p2"), req(4, "c@x", "p3")}, [][]int{{2, 4}, {3}}},
		{"chain joins three", []signup.Request{req(2, "a@x", "p1"), req(3, "b@x", "p2"), req(4, "a@x", "p2")}, [][]int{{2, 3, 4}}},
		{"same names in other domains", []signup.Request{req(2, "a@x", "p1"), {Row: 3, Email: "a@x", ProjectName: "p1", Domain: "other"}}, [][]int{{2}, {3}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got [][]int
			for _, g := range group(tt.in) {
				var rows []int
				for _, q := range g {
					rows = append(rows, q.Row)
				}
				got = append(got, rows)
			}
			if !slices.EqualFunc(got, tt.want, slices.Equal) {
				t.Errorf("group = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestStatusOf(t *testing.T) {
	t.Parallel()
	long := make([]byte, 400)
	for i := range long {
		long[i] = 'x'
	}
	tests := []struct {
		name string
		res  RowResult
		want string
	}{
		{"done", RowResult{Outcome: Created}, "done"},
		{"unchanged is done", RowResult{Outcome: Unchanged}, "done"},
		{"error on one line", RowResult{Outcome: Failed, Error: "row 3:\n  Email: bad"}, "error: row 3: Email: bad"},
		{"long error cut", RowResult{Outcome: Failed, Error: string(long)}, "error: " + string(long[:maxStatus]) + "..."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := statusOf(&tt.res); got != tt.want {
				t.Errorf("statusOf = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestRequestDate(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"11/3/2026 14:05:09", "2026-11-03"},
		{"2026-10-01T08:00:00Z", "2026-10-01"},
		{"2026-10-02", "2026-10-02"},
		{"11/3/2026 14:05", "2026-11-03"}, // read by reminders, once today's date here
		{"yesterday", ""},                 // refused, once today's date
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			// Through the parser the import reads rows with.
			res, err := signup.Parse([]string{"Timestamp", "Email", "First Name", "Last Name", "PIN", "Project Name",
				"Approved", "Status", "Processed At", "User ID", "Project ID"},
				[]signup.Row{{Number: 2, Cells: []string{tt.in, "a@example.org", "A", "B", "1234", "p", "yes"}}}, signup.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if tt.want == "" {
				if len(res.Invalid) != 1 || !strings.Contains(res.Invalid[0].Error(), "Timestamp: ") {
					t.Errorf("want the row invalid for its Timestamp, got %+v", res)
				}
				return
			}
			if len(res.Requests) != 1 {
				t.Fatalf("want one request, got %+v", res)
			}
			if got := requestDate(res.Requests[0]); got != tt.want {
				t.Errorf("requestDate(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}
