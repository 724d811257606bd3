package config

// QuotaRequests locates the quota-request worksheet that addusers quotas
// reads (MOC's second sheet) and says which requests approve themselves.
// It shares sheet.credentials_file, sheet.endpoint and
// sheet.approved_values with the sign-up sheet.
type QuotaRequests struct {
	// SpreadsheetID is "" for the sign-up spreadsheet (sheet.spreadsheet_id).
	SpreadsheetID string `toml:"spreadsheet_id"`
	Worksheet     string `toml:"worksheet"`
	// Columns names the worksheet's columns by header (HeaderKey rules).
	Columns QuotaRequestColumns `toml:"columns"`
	// QuotaColumns maps a header to the quota it asks for, as
	// sheet.quota_columns does: a key of QuotaKeys, or "ram_gb".
	QuotaColumns map[string]string `toml:"quota_columns" kaizen:"replace"`
	AutoApprove  AutoApprove       `toml:"auto_approve"`
}

// QuotaRequestColumns is the header of each column of the quota-request
// worksheet.
type QuotaRequestColumns struct {
	Timestamp string `toml:"timestamp"`
	Email     string `toml:"email"`
	Project   string `toml:"project"`
	// Domain is optional in the sheet; an empty cell is openstack.domain.
	Domain string `toml:"domain"`
	// Duration holds "Temporary" or "Permanent" (empty: permanent).
	Duration string `toml:"duration"`
	EndDate  string `toml:"end_date"`
	// Preset, optional in the sheet, asks for a whole preset; quota
	// columns then override single values of it.
	Preset   string `toml:"preset"`
	Approved string `toml:"approved"`
	Comment  string `toml:"comment"`
	// Written by the tool.
	Status      string `toml:"status"`
	ProcessedAt string `toml:"processed_at"`
}

// AutoApprove holds Adjutant's auto-approval rules for quota requests.
type AutoApprove struct {
	Enabled bool `toml:"enabled"`
	// DaysBetweenAutoapprove: a move one preset up approves itself only
	// when the project's quotas have not changed for this many days.
	DaysBetweenAutoapprove int `toml:"days_between_autoapprove"`
	// SizeDifferenceThreshold: current quotas count as a preset when each
	// value is within this fraction of the preset's (0.1 = 10%).
	SizeDifferenceThreshold float64 `toml:"size_difference_threshold"`
	// PresetsAscending orders the presets from smallest to largest; empty
	// orders them by their values (each preset at least the one before in
	// every quota).
	PresetsAscending []string `toml:"presets_ascending"`
}

// DefaultQuotaRequestColumns are the headers of Kaizen's quota-request form.
func DefaultQuotaRequestColumns() QuotaRequestColumns {
	return QuotaRequestColumns{
		Timestamp: "Timestamp", Email: "Email", Project: "Project", Domain: "Domain",
		Duration: "Temporary/Permanent", EndDate: "End Date", Preset: "Quota Preset",
		Approved: "Approved", Comment: "Comment", Status: "Status", ProcessedAt: "Processed At",
	}
}

func defaultQuotaRequests() QuotaRequests {
	return QuotaRequests{
		Worksheet: "Quota Requests",
		Columns:   DefaultQuotaRequestColumns(),
		QuotaColumns: map[string]string{
			"Instances": "instances", "vCPUs": "cores", "RAM (GB)": QuotaColumnRAMGB,
			"Volumes": "volumes", "Volume Storage (GB)": "gigabytes", "Networks": "network",
			"Subnets": "subnet", "Routers": "router", "Floating IPs": "floatingip", "Ports": "port",
		},
		AutoApprove: AutoApprove{DaysBetweenAutoapprove: 30, SizeDifferenceThreshold: 0.1},
	}
}
