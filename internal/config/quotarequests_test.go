package config

import (
	"strings"
	"testing"
)

func TestQuotaRequestsSettings(t *testing.T) {
	osEnv(t)
	cfg, err := parse(t, `
[quota_requests]
worksheet = "Requests"
[quota_requests.quota_columns]
"Cores" = "cores"
[quota_requests.auto_approve]
enabled = true
presets_ascending = ["small", "medium", "large"]
`, nil)
	if err != nil {
		t.Fatal(err)
	}
	q := cfg.QuotaRequests
	if q.Worksheet != "Requests" || len(q.QuotaColumns) != 1 || q.QuotaColumns["Cores"] != "cores" || !q.AutoApprove.Enabled ||
		q.AutoApprove.DaysBetweenAutoapprove != 30 || q.AutoApprove.SizeDifferenceThreshold != 0.1 || q.Columns.Duration != "Temporary/Permanent" {
		t.Errorf("quota_requests = %+v", q)
	}

	_, err = parse(t, `
[quota_requests]
spreadsheet_id = "abc"
worksheet = ""
[quota_requests.columns]
comment = "Email"
status = ""
[quota_requests.quota_columns]
"RAM" = "ram_gb"
"Memory" = "ram"
"Disks" = "disks"
[quota_requests.auto_approve]
days_between_autoapprove = -1
size_difference_threshold = 1.5
presets_ascending = ["small", "huge", "small"]

[[reminders.job]]
name = "o"
kind = "outbox"
schedule = "@hourly"
apply = true
`, nil)
	var got []string
	for _, p := range problems(t, err) {
		got = append(got, p.String())
	}
	all := strings.Join(got, "\n")
	for _, want := range []string{
		"quota_requests.spreadsheet_id: set, but sheet.credentials_file",
		"quota_requests.worksheet: required",
		`quota_requests.columns.comment: header "Email" is also used by quota_requests.columns.email`,
		"quota_requests.columns.status: required",
		`quota_requests.quota_columns.Disks: unknown quota "disks"`,
		"asks for quota ram, as quota_requests.quota_columns.Memory does",
		"quota_requests.auto_approve.days_between_autoapprove: must not be negative",
		"quota_requests.auto_approve.size_difference_threshold: must be at least 0 and less than 1",
		`quota_requests.auto_approve.presets_ascending[1]: no preset named "huge"`,
		`quota_requests.auto_approve.presets_ascending[2]: "small" is listed twice`,
		"reminders.job[0] (o).apply: only a validate job repairs anything",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("problems lack %q:\n%s", want, all)
		}
	}
}
