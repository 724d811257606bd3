// Package config loads and validates Kaizen's settings: one TOML file shared
// by addusers, setpass and reminders, one table per concern.
//
// Loading reports every problem at once, each under its key path, so an
// operator fixes a file in one pass. Secrets may be written inline, read from
// a "*_file" path, or taken from a KAIZEN_* environment variable; they are
// never printed.
package config

import (
	"crypto/tls"
	"strings"
	"time"

	// Time zones (reminders.timezone, CRON_TZ=) must load on hosts
	// without tzdata, such as minimal containers: embed the database.
	_ "time/tzdata"

	"github.com/gophercloud/gophercloud/v2"
)

// Config is the whole settings file.
type Config struct {
	OpenStack OpenStack `toml:"openstack"`
	Sheet     Sheet     `toml:"sheet"`
	Setpass   Setpass   `toml:"setpass"`
	Mail      Mail      `toml:"mail"`
	Store     Store     `toml:"store"`
	// Secrets are the keys that seal mail at rest and sign PINs.
	Secrets Secrets `toml:"secrets"`
	Quotas  Quotas  `toml:"quotas"`
	Import  Import  `toml:"import"`
	// DomainManager configures addusers domain-manager (SCS scs-0302).
	DomainManager DomainManager `toml:"domain_manager"`
	// QuotaRequests configures addusers quotas.
	QuotaRequests QuotaRequests `toml:"quota_requests"`
	Reminders     Reminders     `toml:"reminders"`
	Log           Log           `toml:"log"`

	// Path is the file the settings came from ("" for built-in defaults).
	Path string `toml:"-"`
}

// OpenStack says how to reach the cloud. Credentials come from clouds.yaml
// (Cloud) or, when Cloud is empty, from the usual OS_* environment variables.
type OpenStack struct {
	Cloud        string   `toml:"cloud"`
	CloudsFile   string   `toml:"clouds_file"`
	Region       string   `toml:"region"`
	Interface    string   `toml:"interface"`
	Password     Secret   `toml:"password"`
	PasswordFile string   `toml:"password_file"`
	Timeout      Duration `toml:"timeout"`
	// RetryMaxWait bounds how long a transiently failing OpenStack call is
	// retried after its first failure; 0 disables retries.
	RetryMaxWait Duration `toml:"retry_max_wait"`
	// Domain is where requests' projects and users are created unless a row
	// names another domain.
	Domain string `toml:"domain"`
	// AdminProject is the project on which a caller must hold the admin role
	// for setpass to accept its token.
	AdminProject       string `toml:"admin_project"`
	AdminProjectDomain string `toml:"admin_project_domain"`

	auth      gophercloud.AuthOptions
	endpoint  gophercloud.EndpointOpts
	tlsConfig *tls.Config
}

// Auth returns the resolved credentials, endpoint selection and TLS settings
// for gophercloud. They are resolved once, at load.
func (o OpenStack) Auth() (gophercloud.AuthOptions, gophercloud.EndpointOpts, *tls.Config) {
	return o.auth, o.endpoint, o.tlsConfig
}

// Sheet locates the sign-up spreadsheet.
type Sheet struct {
	SpreadsheetID   string `toml:"spreadsheet_id"`
	Worksheet       string `toml:"worksheet"`
	CredentialsFile string `toml:"credentials_file"`
	// Endpoint overrides the Sheets API base URL (tests, proxies).
	Endpoint       string   `toml:"endpoint"`
	ApprovedValues []string `toml:"approved_values"`
	// RejectedValues in the Approved column mark a row a person turned
	// down: it is never processed nor reported (even with all_approved).
	RejectedValues []string `toml:"rejected_values"`
	// AllApproved treats every row of the worksheet as approved: for a
	// separate worksheet that approvers copy approved requests into. The
	// Approved column is then not needed.
	AllApproved bool `toml:"all_approved"`
	// ProjectNamePattern is a regular expression every requested project
	// name (and a row's Domain) must match.
	ProjectNamePattern string `toml:"project_name_pattern"`
	// DateOrder is how the sheet's Timestamp cells write dates with
	// slashes and the year last (the spreadsheet's locale).
	DateOrder DateOrder `toml:"date_order"`
	// Columns names the sheet's columns by header; headers match as
	// HeaderKey says, never by position.
	Columns SheetColumns `toml:"columns"`
	// QuotaColumns maps a header to the quota it overrides: a key of
	// QuotaKeys, or "ram_gb" for RAM asked in GB (stored as MiB, x1024).
	QuotaColumns map[string]string `toml:"quota_columns" kaizen:"replace"`
	// RetryMaxWait bounds the waiting for one Sheets operation retried
	// after 429 (per-minute quota) or 5xx answers; longer than a minute so
	// that a spent quota refills.
	RetryMaxWait Duration `toml:"retry_max_wait"`
}

// SheetColumns is the header of each column the tool reads or writes
// (signup.Columns is this type).
type SheetColumns struct {
	Timestamp          string `toml:"timestamp"`
	Email              string `toml:"email"`
	FirstName          string `toml:"first_name"`
	LastName           string `toml:"last_name"`
	Organization       string `toml:"organization"`
	Role               string `toml:"role"`
	Phone              string `toml:"phone"`
	Sponsor            string `toml:"sponsor"`
	PIN                string `toml:"pin"`
	Comment            string `toml:"comment"`
	ExistingAccount    string `toml:"existing_account"`
	ProjectName        string `toml:"project_name"`
	ProjectDescription string `toml:"project_description"`
	AdditionalUsers    string `toml:"additional_users"`
	ExistingProject    string `toml:"existing_project"`
	QuotaPreset        string `toml:"quota_preset"`
	Domain             string `toml:"domain"`
	// DomainManager (yes/no) makes the requester the SCS domain manager of
	// the row's domain.
	DomainManager string `toml:"domain_manager"`
	Approved      string `toml:"approved"`
	// Written by the tool.
	Status      string `toml:"status"`
	ProcessedAt string `toml:"processed_at"`
	UserID      string `toml:"user_id"`
	ProjectID   string `toml:"project_id"`
}

// DefaultSheetColumns are the headers of a Google Form export as Kaizen's
// form names them.
func DefaultSheetColumns() SheetColumns {
	return SheetColumns{
		Timestamp: "Timestamp", Email: "Email", FirstName: "First Name", LastName: "Last Name",
		Organization: "Organization", Role: "Role", Phone: "Phone", Sponsor: "Sponsor", PIN: "PIN",
		Comment: "Comment", ExistingAccount: "Existing Account", ProjectName: "Project Name",
		ProjectDescription: "Project Description", AdditionalUsers: "Additional Users",
		ExistingProject: "Existing Project", QuotaPreset: "Quota Preset", Domain: "Domain", DomainManager: "Domain Manager",
		Approved: "Approved", Status: "Status", ProcessedAt: "Processed At", UserID: "User ID",
		ProjectID: "Project ID",
	}
}

// HeaderKey is how sheet headers compare, in the settings and in the sheet:
// trimmed, inner whitespace collapsed, case folded.
func HeaderKey(s string) string { return strings.ToLower(strings.Join(strings.Fields(s), " ")) }

// DefaultProjectNamePattern admits Keystone-friendly project names.
const DefaultProjectNamePattern = `^[A-Za-z0-9][A-Za-z0-9 ._-]*$`

// QuotaColumnRAMGB is the quota_columns target for RAM asked in GB.
const QuotaColumnRAMGB = "ram_gb"

// Setpass configures the set-password service and how others reach it.
type Setpass struct {
	Listen string `toml:"listen"`
	// URL is the public base URL: links in mail point here, and addusers
	// calls its API here.
	URL               string   `toml:"url"`
	TokenTTL          Duration `toml:"token_ttl"`
	MaxAttempts       int      `toml:"max_attempts"`
	MinPasswordLength int      `toml:"min_password_length"`
	SecretKey         Secret   `toml:"secret_key"`
	SecretKeyFile     string   `toml:"secret_key_file"`
	TLSCertFile       string   `toml:"tls_cert_file"`
	TLSKeyFile        string   `toml:"tls_key_file"`
	TrustedProxies    []string `toml:"trusted_proxies"`
	// RateLimit and RateBurst bound password-form POSTs per client address:
	// RateLimit per minute, with bursts of RateBurst.
	RateLimit     int      `toml:"rate_limit"`
	RateBurst     int      `toml:"rate_burst"`
	PurgeInterval Duration `toml:"purge_interval"`
	// PINFailuresPerUser wrong PINs in PINFailureWindow, across all of a
	// user's links, lock the user's PIN until the helpdesk sets a new one.
	PINFailuresPerUser int      `toml:"pin_failures_per_user"`
	PINFailureWindow   Duration `toml:"pin_failure_window"`

	// AdminListen, when set, is the only address that serves the admin API
	// (PUT /token, PUT /reset) and /metrics; Listen then answers 404 for
	// them. "" serves everything on Listen.
	AdminListen string `toml:"admin_listen"`
	// AdminURL is where addusers and reminders call the admin API; "" is
	// URL, or the AdminListen address when that is set (see APIURL).
	AdminURL string `toml:"admin_url"`
	// AdminCacheTTL is how long setpass trusts a token that passed its
	// admin check without asking Keystone again; 0 asks every time.
	AdminCacheTTL Duration `toml:"admin_cache_ttl"`

	// Password resets. ResetMode is the self-service /reset page: "link"
	// mails a PIN-gated link, "helpdesk" only tells mail.helpdesk, "off"
	// serves no page. Without a reset credential "link" works as
	// "helpdesk".
	ResetMode     string   `toml:"reset_mode"`
	ResetTokenTTL Duration `toml:"reset_token_ttl"`
	// ResetMinTime is the floor of every /reset answer.
	ResetMinTime Duration `toml:"reset_min_time"`
	// ResetProtectedRoles: accounts holding one cannot be reset through
	// /reset ("admin" always is).
	ResetProtectedRoles []string `toml:"reset_protected_roles"`
	// ResetRevokeTokens disables and re-enables a user whose password a
	// reset link set.
	ResetRevokeTokens bool `toml:"reset_revoke_tokens"`
	// ResetAccountLimit is /reset requests per address per hour.
	ResetAccountLimit int `toml:"reset_account_limit"`
	// The reset credential: a dedicated service user allowed to update
	// users' passwords, so a reset link needs no old password and the old
	// one keeps working until the link is used. ResetUser "" means none.
	ResetUser          string `toml:"reset_user"`
	ResetUserDomain    string `toml:"reset_user_domain"`
	ResetPassword      Secret `toml:"reset_password"`
	ResetPasswordFile  string `toml:"reset_password_file"`
	ResetProject       string `toml:"reset_project"`        // "" = openstack.admin_project
	ResetProjectDomain string `toml:"reset_project_domain"` // "" = openstack.admin_project_domain
}

// Mail holds what every message shares and how it is delivered.
type Mail struct {
	Transport         string `toml:"transport"`
	From              string `toml:"from"`
	Support           string `toml:"support"`
	Helpdesk          string `toml:"helpdesk"`
	CloudName         string `toml:"cloud_name"`
	LoginURL          string `toml:"login_url"`
	GettingStartedURL string `toml:"getting_started_url"`
	TermsURL          string `toml:"terms_url"`
	TemplatesDir      string `toml:"templates_dir"`
	Maildir           string `toml:"maildir"`
	MaxAttempts       int    `toml:"max_attempts"`
	// Retention is how long a delivered or abandoned message's metadata
	// (key, recipients, times, status) is kept; its body goes at once.
	Retention Duration `toml:"retention"`
	SMTP      SMTP     `toml:"smtp"`
}

// SMTP is the smtp transport. TLS is required unless AllowInsecure is set.
type SMTP struct {
	Host          string   `toml:"host"`
	Port          int      `toml:"port"`
	TLS           string   `toml:"tls"`
	AllowInsecure bool     `toml:"allow_insecure"`
	CAFile        string   `toml:"ca_file"` // PEM; "" trusts the system roots
	Username      string   `toml:"username"`
	Password      Secret   `toml:"password"`
	PasswordFile  string   `toml:"password_file"`
	EHLOName      string   `toml:"ehlo_name"`
	PoolSize      int      `toml:"pool_size"`
	Timeout       Duration `toml:"timeout"`
}

// Store selects the state database.
type Store struct {
	URL     DSN    `toml:"url"`
	URLFile string `toml:"url_file"`
}

// Quotas holds the named quota presets and how each service is set.
type Quotas struct {
	DefaultPreset string `toml:"default_preset"`
	// Presets maps a preset name to quota values; ram is in MiB, gigabytes
	// in GiB, -1 means unlimited.
	Presets map[string]map[string]int64 `toml:"presets" kaizen:"replace"`
	// Services maps compute, block-storage and network to "quota-sets" or
	// "unified-limits".
	Services map[string]string `toml:"services"`
}

// Import says how addusers applies approved requests.
type Import struct {
	// Roles are granted on the project to the requester and each
	// additional user.
	Roles []string `toml:"roles"`
	// AdditionalUsers says what to do with an Additional Users address that
	// has no account: "create" it (and mail it a welcome link) or "report"
	// it on the row without creating it.
	AdditionalUsers string `toml:"additional_users"`
	// Workers bounds how many rows are applied at once.
	Workers int `toml:"workers"`
	// Actor names the admin in the audit log; "" uses the OpenStack user.
	Actor string `toml:"actor"`
}

// DomainManager says which role makes a user an SCS domain manager
// (scs-0302) and which roles addusers domain-manager never grants.
type DomainManager struct {
	// Role is granted on the domain; created as a global role when missing.
	Role string `toml:"role"`
	// ForbiddenRoles are never granted, nor a Role that implies one of
	// them; "admin" is refused whether or not it is listed.
	ForbiddenRoles []string `toml:"forbidden_roles"`
}

// Reminders configures the scheduled daemon.
type Reminders struct {
	Listen   string `toml:"listen"`
	Timezone string `toml:"timezone"`
	Jobs     []Job  `toml:"job"`
}

// Job is one scheduled job. Keys beyond name, kind and schedule apply to
// some kinds only.
type Job struct {
	Name       string   `toml:"name"`
	Kind       string   `toml:"kind"`
	Schedule   string   `toml:"schedule"`
	Disabled   bool     `toml:"disabled"`
	Start      Duration `toml:"start"`
	Interval   Duration `toml:"interval"`
	After      Duration `toml:"after"`
	GiveUp     Duration `toml:"give_up"`
	DaysBefore []int    `toml:"days_before"`
	To         []string `toml:"to"`
	// Column is the sheet column a sheet job stamps ("Reminder Sent" for
	// approver-digest, "Helpdesk Notified" for helpdesk-notify by default).
	Column string `toml:"column"`
	// Apply makes a validate job repair the drift it finds.
	Apply bool `toml:"apply"`
}

// Log configures the structured log.
type Log struct {
	Level  string `toml:"level"`
	Format string `toml:"format"`
}

// Defaults returns the built-in settings: a single host with a SQLite store,
// mail written to a local Maildir, and setpass on loopback.
func Defaults() Config {
	return Config{
		OpenStack: OpenStack{
			Interface:          "public",
			Timeout:            Dur(30 * time.Second),
			RetryMaxWait:       Dur(30 * time.Second),
			Domain:             "Default",
			AdminProject:       "admin",
			AdminProjectDomain: "Default",
		},
		Sheet: Sheet{
			Worksheet:          "Form Responses 1",
			ApprovedValues:     []string{"approved", "yes", "true"},
			RejectedValues:     []string{"rejected"},
			ProjectNamePattern: DefaultProjectNamePattern,
			DateOrder:          MonthFirst,
			Columns:            DefaultSheetColumns(),
			QuotaColumns:       map[string]string{},
			RetryMaxWait:       Dur(2 * time.Minute),
		},
		Setpass: Setpass{
			Listen:              "127.0.0.1:8080",
			URL:                 "http://127.0.0.1:8080/",
			TokenTTL:            Dur(72 * time.Hour),
			MaxAttempts:         5,
			MinPasswordLength:   12,
			RateLimit:           10,
			RateBurst:           5,
			PurgeInterval:       Dur(time.Hour),
			PINFailuresPerUser:  10,
			PINFailureWindow:    Dur(24 * time.Hour),
			AdminCacheTTL:       Dur(2 * time.Minute),
			ResetMode:           "link",
			ResetTokenTTL:       Dur(24 * time.Hour),
			ResetMinTime:        Dur(3 * time.Second),
			ResetProtectedRoles: []string{"admin"},
			ResetAccountLimit:   3,
			ResetUserDomain:     "Default",
		},
		Mail: Mail{
			Transport:   "maildir",
			From:        "Kaizen <kaizen@localhost>",
			Support:     "support@localhost",
			Helpdesk:    "helpdesk@localhost",
			CloudName:   "Kaizen Cloud",
			Maildir:     "var/mail",
			MaxAttempts: 8,
			Retention:   Dur(90 * 24 * time.Hour),
			SMTP: SMTP{
				Port:     587,
				TLS:      "starttls",
				PoolSize: 4,
				Timeout:  Dur(30 * time.Second),
			},
		},
		Store: Store{URL: DSN{Secret{value: "sqlite://var/kaizen.db", source: "default"}}},
		Quotas: Quotas{
			DefaultPreset: "small",
			Presets: map[string]map[string]int64{
				"small":  {"instances": 10, "cores": 20, "ram": 51200, "volumes": 10, "gigabytes": 500, "network": 2, "subnet": 2, "router": 1, "floatingip": 2, "port": 50},
				"medium": {"instances": 20, "cores": 40, "ram": 102400, "volumes": 20, "gigabytes": 1000, "network": 4, "subnet": 4, "router": 2, "floatingip": 4, "port": 100},
				"large":  {"instances": 40, "cores": 80, "ram": 204800, "volumes": 40, "gigabytes": 2000, "network": 8, "subnet": 8, "router": 4, "floatingip": 8, "port": 200},
			},
			Services: map[string]string{"compute": "quota-sets", "block-storage": "quota-sets", "network": "quota-sets"},
		},
		Import: Import{
			Roles:           []string{"member"},
			AdditionalUsers: "create",
			Workers:         8,
		},
		DomainManager: DomainManager{
			Role:           "manager",
			ForbiddenRoles: []string{"admin"},
		},
		QuotaRequests: defaultQuotaRequests(),
		Reminders: Reminders{
			Listen:   "127.0.0.1:9465",
			Timezone: "UTC",
		},
		Log: Log{Level: "info", Format: "text"},
	}
}
