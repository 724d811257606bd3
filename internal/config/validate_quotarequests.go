package config

import (
	"fmt"
	"reflect"
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
	seen := map[string]string{} // HeaderKey -> key path
	claim := func(key, header string) {
		n := HeaderKey(header)
		if other, dup := seen[n]; dup {
			v.addf(key, "header %q is also used by %s", header, other)
			return
		}
		seen[n] = key
	}
	cv := reflect.ValueOf(q.Columns)
	for i := range cv.NumField() {
		name, _, _ := strings.Cut(cv.Type().Field(i).Tag.Get("toml"), ",")
		key := "quota_requests.columns." + name
		header := cv.Field(i).String()
		if strings.TrimSpace(header) == "" {
			v.addf(key, "required (the column's header)")
			continue
		}
		claim(key, header)
	}
	known := map[string]bool{QuotaColumnRAMGB: true}
	for _, keys := range QuotaKeys {
		for _, k := range keys {
			known[k] = true
		}
	}
	targets := map[string]string{}
	for _, header := range sortedKeys(q.QuotaColumns) {
		target := q.QuotaColumns[header]
		key := join("quota_requests.quota_columns", header)
		if strings.TrimSpace(header) == "" {
			v.addf(key, "a quota column needs a header")
			continue
		}
		if !known[target] {
			v.addf(key, "unknown quota %q (known: %s)", target, strings.Join(sortedKeys(known), ", "))
		}
		if target == QuotaColumnRAMGB {
			target = "ram"
		}
		if other, dup := targets[target]; dup {
			v.addf(key, "asks for quota %s, as %s does", target, other)
		}
		targets[target] = key
		claim(key, header)
	}
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
