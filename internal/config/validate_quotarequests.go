package config

import (
	"fmt"
	"slices"
	"strings"
)

func (v *validator) quotaRequests(q *QuotaRequests, s *Sheet, presets map[string]map[string]int64) {
	if q.SpreadsheetID != "" {
		switch {
		case s.CredentialsFile == "":
			v.addf("quota_requests.spreadsheet_id", "set, but sheet.credentials_file (the Google key both sheets use) is not")
		case s.SpreadsheetID == "": // else the sheet's own check reads it
			v.readable("sheet.credentials_file", s.CredentialsFile)
		}
	}
	v.required("quota_requests.worksheet", q.Worksheet)
	v.columns("quota_requests", q.Columns, q.QuotaColumns, true)
	a := &q.AutoApprove
	if a.DaysBetweenAutoapprove < 0 {
		v.addf("quota_requests.auto_approve.days_between_autoapprove", "must not be negative")
	}
	if a.SizeDifferenceThreshold < 0 || a.SizeDifferenceThreshold >= 1 {
		v.addf("quota_requests.auto_approve.size_difference_threshold", "must be at least 0 and less than 1 (0.1 is 10%%)")
	}
	for i, name := range a.PresetsAscending {
		key := fmt.Sprintf("quota_requests.auto_approve.presets_ascending[%d]", i)
		if _, ok := presets[name]; !ok {
			v.addf(key, "no preset named %q (defined: %s)", name, strings.Join(sortedKeys(presets), ", "))
		}
		if slices.Index(a.PresetsAscending, name) < i {
			v.addf(key, "%q is listed twice", name)
		}
	}
}
