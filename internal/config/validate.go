package config

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/config/clouds"
	"github.com/robfig/cron/v3"
)

// QuotaKeys lists the quota names a preset may set, by service. ram is in
// MiB; gigabytes in GiB.
var QuotaKeys = map[string][]string{
	"compute":       {"instances", "cores", "ram", "key_pairs", "server_groups", "server_group_members", "metadata_items"},
	"block-storage": {"volumes", "gigabytes", "snapshots", "backups", "backup_gigabytes"},
	"network":       {"network", "subnet", "port", "router", "floatingip", "security_group", "security_group_rule"},
}

// JobKinds are the reminders daemon's job kinds.
var JobKinds = []string{"approver-digest", "helpdesk-notify", "import", "link-reminder", "quota-expiry", "outbox", "validate"}

// cronParser accepts 5 fields, an optional leading seconds field,
// descriptors (@daily, @every 10m) and a CRON_TZ= prefix.
var cronParser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// ParseSchedule parses a job schedule the way the reminders daemon will.
func ParseSchedule(spec string) (cron.Schedule, error) { return cronParser.Parse(spec) }

type validator struct {
	opts     Options
	problems []Problem
}

func (v *validator) addf(key, format string, args ...any) {
	v.problems = append(v.problems, Problem{Key: key, Message: fmt.Sprintf(format, args...)})
}

func (v *validator) validate(c *Config) {
	v.openstack(&c.OpenStack)
	v.sheet(&c.Sheet)
	v.setpass(&c.Setpass)
	v.mail(&c.Mail)
	v.store(&c.Store)
	v.secrets(&c.Secrets, &c.Setpass)
	v.storeLocation(c)
	v.quotas(&c.Quotas)
	v.importing(&c.Import)
	v.domainManager(&c.DomainManager)
	v.quotaRequests(&c.QuotaRequests, &c.Sheet, c.Quotas.Presets)
	v.reminders(&c.Reminders)
	v.log(&c.Log)
}

func (v *validator) openstack(o *OpenStack) {
	v.duration("openstack.timeout", o.Timeout)
	v.duration("openstack.retry_max_wait", o.RetryMaxWait)
	v.oneOf("openstack.interface", o.Interface, "public", "internal", "admin")
	v.required("openstack.domain", o.Domain)
	v.required("openstack.admin_project", o.AdminProject)
	v.secret("openstack.password", &o.Password, o.PasswordFile, "KAIZEN_OPENSTACK_PASSWORD")
	if o.CloudsFile != "" && o.Cloud == "" {
		v.addf("openstack.clouds_file", "set, but openstack.cloud does not name a cloud in it")
	}

	var (
		ao  gophercloud.AuthOptions
		eo  gophercloud.EndpointOpts
		tc  *tls.Config
		err error
	)
	if o.Cloud != "" {
		opts := []clouds.ParseOption{clouds.WithCloudName(o.Cloud)}
		if o.CloudsFile != "" {
			opts = append(opts, clouds.WithLocations(o.CloudsFile))
		}
		if o.Region != "" {
			opts = append(opts, clouds.WithRegion(o.Region))
		}
		if o.Password.IsSet() {
			opts = append(opts, clouds.WithPassword(o.Password.Reveal()))
		}
		ao, eo, tc, err = clouds.Parse(opts...)
		if err != nil {
			v.addf("openstack.cloud", "cannot use cloud %q from clouds.yaml: %v", o.Cloud, err)
			return
		}
	} else {
		ao, err = authFromEnv(v.opts.Getenv)
		if err != nil {
			v.addf("openstack", "no cloud named and the OS_* environment is incomplete: %v (set openstack.cloud to a clouds.yaml entry, or source an openrc file)", err)
			return
		}
		eo.Region = o.Region
		if eo.Region == "" {
			eo.Region = v.opts.Getenv("OS_REGION_NAME")
		}
		if o.Password.IsSet() {
			ao.Password = o.Password.Reveal()
		}
	}
	if o.Interface != "" {
		eo.Availability = gophercloud.Availability(o.Interface)
	}
	// The admin client re-authenticates when its token expires during a
	// long batch.
	ao.AllowReauth = true
	if ao.IdentityEndpoint != "" {
		if _, err := url.ParseRequestURI(ao.IdentityEndpoint); err != nil {
			v.addf("openstack", "auth URL %q is not a URL", ao.IdentityEndpoint)
		}
	}
	o.auth, o.endpoint, o.tlsConfig = ao, eo, tc
}

// authFromEnv reads the standard OS_* variables. gophercloud's own
// AuthOptionsFromEnv is not used because it ignores OS_USER_DOMAIN_* and
// OS_PROJECT_DOMAIN_*, which every openrc file (and scripts/dev-keystone)
// sets, and it cannot take an injected environment.
func authFromEnv(getenv func(string) string) (gophercloud.AuthOptions, error) {
	ao := gophercloud.AuthOptions{
		IdentityEndpoint:            getenv("OS_AUTH_URL"),
		Username:                    getenv("OS_USERNAME"),
		UserID:                      first(getenv("OS_USER_ID"), getenv("OS_USERID")),
		Password:                    getenv("OS_PASSWORD"),
		DomainID:                    first(getenv("OS_USER_DOMAIN_ID"), getenv("OS_DOMAIN_ID")),
		DomainName:                  first(getenv("OS_USER_DOMAIN_NAME"), getenv("OS_DOMAIN_NAME")),
		ApplicationCredentialID:     getenv("OS_APPLICATION_CREDENTIAL_ID"),
		ApplicationCredentialName:   getenv("OS_APPLICATION_CREDENTIAL_NAME"),
		ApplicationCredentialSecret: getenv("OS_APPLICATION_CREDENTIAL_SECRET"),
	}
	if pw := getenv("KAIZEN_OPENSTACK_PASSWORD"); pw != "" {
		ao.Password = pw
	}
	appCred := ao.ApplicationCredentialID != "" || ao.ApplicationCredentialName != ""
	var missing []string
	if ao.IdentityEndpoint == "" {
		missing = append(missing, "OS_AUTH_URL")
	}
	if appCred {
		if ao.ApplicationCredentialSecret == "" {
			missing = append(missing, "OS_APPLICATION_CREDENTIAL_SECRET")
		}
		if ao.ApplicationCredentialID == "" && ao.Username == "" && ao.UserID == "" {
			missing = append(missing, "OS_USERNAME (to find the application credential by name)")
		}
	} else {
		if ao.Username == "" && ao.UserID == "" {
			missing = append(missing, "OS_USERNAME")
		}
		if ao.Password == "" {
			missing = append(missing, "OS_PASSWORD")
		}
		if ao.Username != "" && ao.DomainID == "" && ao.DomainName == "" {
			missing = append(missing, "OS_USER_DOMAIN_NAME")
		}
	}
	if len(missing) > 0 {
		return ao, fmt.Errorf("missing %s", strings.Join(missing, ", "))
	}
	if appCred {
		return ao, nil // an application credential carries its own scope
	}
	switch {
	case getenv("OS_SYSTEM_SCOPE") == "all":
		ao.Scope = &gophercloud.AuthScope{System: true}
	case getenv("OS_PROJECT_ID") != "":
		ao.Scope = &gophercloud.AuthScope{ProjectID: getenv("OS_PROJECT_ID")}
	case getenv("OS_PROJECT_NAME") != "":
		ao.Scope = &gophercloud.AuthScope{
			ProjectName: getenv("OS_PROJECT_NAME"),
			DomainID:    first(getenv("OS_PROJECT_DOMAIN_ID"), getenv("OS_DOMAIN_ID")),
			DomainName:  first(getenv("OS_PROJECT_DOMAIN_NAME"), getenv("OS_DOMAIN_NAME")),
		}
		if ao.Scope.DomainID == "" && ao.Scope.DomainName == "" {
			return ao, fmt.Errorf("missing OS_PROJECT_DOMAIN_NAME (or OS_PROJECT_ID)")
		}
	}
	return ao, nil
}

func first(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

func (v *validator) sheet(s *Sheet) {
	if s.SpreadsheetID != "" {
		v.required("sheet.worksheet", s.Worksheet)
		if s.CredentialsFile == "" {
			v.addf("sheet.credentials_file", "required when sheet.spreadsheet_id is set (a Google service-account key file)")
		} else {
			v.readable("sheet.credentials_file", s.CredentialsFile)
		}
	}
	if s.Endpoint != "" {
		v.url("sheet.endpoint", s.Endpoint)
	}
	v.duration("sheet.retry_max_wait", s.RetryMaxWait)
	if d := s.RetryMaxWait.D; s.RetryMaxWait.err == nil && (d < time.Second || d > time.Hour) {
		v.addf("sheet.retry_max_wait", "must be between 1s and 1h (got %s)", s.RetryMaxWait)
	}
	if len(s.ApprovedValues) == 0 {
		v.addf("sheet.approved_values", "must list at least one value")
	}
	for i, a := range s.ApprovedValues {
		if strings.TrimSpace(a) == "" {
			v.addf(fmt.Sprintf("sheet.approved_values[%d]", i), "must not be empty")
		}
	}
	for i, r := range s.RejectedValues {
		switch {
		case strings.TrimSpace(r) == "":
			v.addf(fmt.Sprintf("sheet.rejected_values[%d]", i), "must not be empty")
		case slices.ContainsFunc(s.ApprovedValues, func(a string) bool { return HeaderKey(a) == HeaderKey(r) }):
			v.addf(fmt.Sprintf("sheet.rejected_values[%d]", i), "%q is also in sheet.approved_values", r)
		}
	}
	if _, err := regexp.Compile(s.ProjectNamePattern); err != nil {
		v.addf("sheet.project_name_pattern", "invalid regular expression: %v", err)
	}
	v.oneOf("sheet.date_order", string(s.DateOrder), string(MonthFirst), string(DayFirst))
	v.columns("sheet", s.Columns, s.QuotaColumns, false)
}

// columns checks a worksheet's columns, under prefix ("sheet" or
// "quota_requests"): every named column (a struct of headers, keyed by its
// toml tags) has a header, every quota column names a known quota, and no
// two columns, named or quota, share a header as HeaderKey compares them.
// With onePerQuota, no two quota columns may ask for the same quota either.
func (v *validator) columns(prefix string, named any, quotaColumns map[string]string, onePerQuota bool) {
	seen := map[string]string{} // HeaderKey -> key path
	claim := func(key, header string) {
		n := HeaderKey(header)
		if other, dup := seen[n]; dup {
			v.addf(key, "header %q is also used by %s", header, other)
			return
		}
		seen[n] = key
	}
	cv := reflect.ValueOf(named)
	for i := range cv.NumField() {
		name, _, _ := strings.Cut(cv.Type().Field(i).Tag.Get("toml"), ",")
		key := prefix + ".columns." + name
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
	targets := map[string]string{} // quota -> key path
	for _, header := range sortedKeys(quotaColumns) {
		target := quotaColumns[header]
		key := join(prefix+".quota_columns", header)
		if strings.TrimSpace(header) == "" {
			v.addf(key, "a quota column needs a header")
			continue
		}
		if !known[target] {
			v.addf(key, "unknown quota %q (known: %s)", target, strings.Join(sortedKeys(known), ", "))
		}
		if onePerQuota {
			if target == QuotaColumnRAMGB {
				target = "ram"
			}
			if other, dup := targets[target]; dup {
				v.addf(key, "asks for quota %s, as %s does", target, other)
			}
			targets[target] = key
		}
		claim(key, header)
	}
}

func (v *validator) setpass(s *Setpass) {
	v.hostPort("setpass.listen", s.Listen)
	v.url("setpass.url", s.URL)
	v.duration("setpass.token_ttl", s.TokenTTL)
	if s.TokenTTL.err == nil && s.TokenTTL.D < time.Minute {
		v.addf("setpass.token_ttl", "must be at least 1m")
	}
	v.atLeast("setpass.max_attempts", s.MaxAttempts, 1)
	v.atLeast("setpass.min_password_length", s.MinPasswordLength, 8)
	v.atLeast("setpass.rate_limit", s.RateLimit, 1)
	v.atLeast("setpass.rate_burst", s.RateBurst, 1)
	v.duration("setpass.purge_interval", s.PurgeInterval)
	if s.PurgeInterval.err == nil && s.PurgeInterval.D < time.Minute {
		v.addf("setpass.purge_interval", "must be at least 1m")
	}
	v.atLeast("setpass.pin_failures_per_user", s.PINFailuresPerUser, 1)
	v.duration("setpass.pin_failure_window", s.PINFailureWindow)
	if s.PINFailureWindow.err == nil && s.PINFailureWindow.D < time.Minute {
		v.addf("setpass.pin_failure_window", "must be at least 1m")
	}
	v.secret("setpass.secret_key", &s.SecretKey, s.SecretKeyFile, "KAIZEN_SETPASS_SECRET_KEY")
	if s.SecretKey.IsSet() && len(s.SecretKey.Reveal()) < 32 {
		v.addf("setpass.secret_key", "must be at least 32 characters (e.g. openssl rand -hex 32)")
	}
	if (s.TLSCertFile == "") != (s.TLSKeyFile == "") {
		v.addf("setpass.tls_cert_file", "tls_cert_file and tls_key_file go together")
	}
	if s.TLSCertFile != "" {
		v.readable("setpass.tls_cert_file", s.TLSCertFile)
	}
	if s.TLSKeyFile != "" {
		v.readable("setpass.tls_key_file", s.TLSKeyFile)
	}
	for i, p := range s.TrustedProxies {
		if _, _, err := net.ParseCIDR(p); err != nil && net.ParseIP(p) == nil {
			v.addf(fmt.Sprintf("setpass.trusted_proxies[%d]", i), "%q is neither an IP address nor a CIDR range", p)
		}
	}
	v.setpassAdmin(s)
	v.setpassReset(s)
}

func (v *validator) setpassAdmin(s *Setpass) {
	if s.AdminListen != "" {
		v.hostPort("setpass.admin_listen", s.AdminListen)
		if sameListener(s.AdminListen, s.Listen) {
			v.addf("setpass.admin_listen", "%q is the address of setpass.listen (%q); the admin listener needs its own", s.AdminListen, s.Listen)
		}
	}
	if s.AdminURL != "" {
		v.url("setpass.admin_url", s.AdminURL)
	}
	v.duration("setpass.admin_cache_ttl", s.AdminCacheTTL)
	if s.AdminCacheTTL.err == nil && (s.AdminCacheTTL.D < 0 || s.AdminCacheTTL.D > time.Hour) {
		v.addf("setpass.admin_cache_ttl", "must be between 0 (no cache) and 1h")
	}
}

// sameListener: a and b would bind the same port on the same (or every)
// address, which the second listen would fail with.
func sameListener(a, b string) bool {
	ha, pa, errA := net.SplitHostPort(a)
	hb, pb, errB := net.SplitHostPort(b)
	if errA != nil || errB != nil {
		return false
	}
	if pa != pb || pa == "0" {
		return false
	}
	wildcard := func(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" }
	norm := func(h string) string {
		if h == "localhost" {
			return "127.0.0.1"
		}
		return h
	}
	return norm(ha) == norm(hb) || wildcard(ha) || wildcard(hb)
}

func (v *validator) setpassReset(s *Setpass) {
	v.oneOf("setpass.reset_mode", s.ResetMode, "link", "helpdesk", "off")
	v.duration("setpass.reset_token_ttl", s.ResetTokenTTL)
	if s.ResetTokenTTL.err == nil && s.ResetTokenTTL.D < time.Minute {
		v.addf("setpass.reset_token_ttl", "must be at least 1m")
	}
	v.duration("setpass.reset_min_time", s.ResetMinTime)
	if s.ResetMinTime.err == nil && (s.ResetMinTime.D < 100*time.Millisecond || s.ResetMinTime.D > 20*time.Second) {
		v.addf("setpass.reset_min_time", "must be between 100ms and 20s")
	}
	for i, r := range s.ResetProtectedRoles {
		if strings.TrimSpace(r) == "" {
			v.addf(fmt.Sprintf("setpass.reset_protected_roles[%d]", i), "empty role name")
		}
	}
	v.atLeast("setpass.reset_account_limit", s.ResetAccountLimit, 1)
	v.secret("setpass.reset_password", &s.ResetPassword, s.ResetPasswordFile, "KAIZEN_SETPASS_RESET_PASSWORD")
	if s.ResetUser == "" {
		if s.ResetPassword.IsSet() {
			v.addf("setpass.reset_password", "set, but setpass.reset_user is not")
		}
		return
	}
	v.required("setpass.reset_user_domain", s.ResetUserDomain)
	if !s.ResetPassword.IsSet() {
		v.addf("setpass.reset_password", "required with setpass.reset_user (or reset_password_file, or KAIZEN_SETPASS_RESET_PASSWORD)")
	}
}

func (v *validator) mail(m *Mail) {
	v.oneOf("mail.transport", m.Transport, "maildir", "smtp")
	v.address("mail.from", m.From, true)
	v.address("mail.support", m.Support, true)
	v.address("mail.helpdesk", m.Helpdesk, false)
	v.required("mail.cloud_name", m.CloudName)
	for key, u := range map[string]string{"mail.login_url": m.LoginURL, "mail.getting_started_url": m.GettingStartedURL, "mail.terms_url": m.TermsURL} {
		if u != "" {
			v.url(key, u)
		}
	}
	if m.TemplatesDir != "" {
		if fi, err := os.Stat(m.TemplatesDir); err != nil || !fi.IsDir() {
			v.addf("mail.templates_dir", "%q is not a readable directory", m.TemplatesDir)
		}
	}
	v.atLeast("mail.max_attempts", m.MaxAttempts, 1)
	v.duration("mail.retention", m.Retention)
	if m.Retention.err == nil && m.Retention.D < time.Hour {
		v.addf("mail.retention", "must be at least 1h")
	}
	if m.Transport == "maildir" {
		v.required("mail.maildir", m.Maildir)
	}
	s := &m.SMTP
	v.secret("mail.smtp.password", &s.Password, s.PasswordFile, "KAIZEN_SMTP_PASSWORD")
	v.duration("mail.smtp.timeout", s.Timeout)
	v.oneOf("mail.smtp.tls", s.TLS, "starttls", "implicit", "none")
	if s.TLS == "none" && !s.AllowInsecure {
		v.addf("mail.smtp.tls", `"none" sends mail in plaintext; set mail.smtp.allow_insecure = true to allow it`)
	}
	if s.Port < 1 || s.Port > 65535 {
		v.addf("mail.smtp.port", "must be a port number (1-65535)")
	}
	v.atLeast("mail.smtp.pool_size", s.PoolSize, 1)
	if s.Password.IsSet() && s.Username == "" {
		v.addf("mail.smtp.username", "required when a password is set")
	}
	if s.CAFile != "" {
		v.readable("mail.smtp.ca_file", s.CAFile)
	}
	if m.Transport == "smtp" {
		v.required("mail.smtp.host", s.Host)
	}
}

func (v *validator) store(s *Store) {
	if s.URLFile != "" || v.opts.Getenv("KAIZEN_STORE_URL") != "" {
		v.secret("store.url", &s.URL.Secret, s.URLFile, "KAIZEN_STORE_URL")
	}
	raw := s.URL.Reveal()
	if raw == "" {
		v.addf("store.url", "required (sqlite://PATH or postgres://...)")
		return
	}
	scheme, rest, ok := strings.Cut(raw, "://")
	switch {
	case !ok:
		v.addf("store.url", "must start with sqlite:// or postgres://")
	case scheme == "sqlite":
		if rest == "" {
			v.addf("store.url", "sqlite:// needs a file path (sqlite:///var/lib/kaizen/state.db)")
		}
	case scheme == "postgres" || scheme == "postgresql":
		if _, err := url.Parse(raw); err != nil {
			// The parse error would echo the URL, password included.
			v.addf("store.url", "malformed postgres URL")
		}
	default:
		v.addf("store.url", "unsupported scheme %q (sqlite or postgres)", scheme)
	}
}

func (v *validator) quotas(q *Quotas) {
	known := map[string]string{}
	for svc, keys := range QuotaKeys {
		for _, k := range keys {
			known[k] = svc
		}
	}
	for name, preset := range q.Presets {
		if name == "" {
			v.addf("quotas.presets", "a preset needs a name")
		}
		for k, n := range preset {
			key := join(join("quotas.presets", name), k)
			if _, ok := known[k]; !ok {
				v.addf(key, "unknown quota %q (known: %s)", k, strings.Join(sortedKeys(known), ", "))
			}
			if n < -1 {
				v.addf(key, "must be -1 (unlimited) or more")
			}
		}
	}
	if q.DefaultPreset != "" {
		if _, ok := q.Presets[q.DefaultPreset]; !ok {
			v.addf("quotas.default_preset", "no preset named %q (defined: %s)", q.DefaultPreset, strings.Join(sortedKeys(q.Presets), ", "))
		}
	}
	for svc, how := range q.Services {
		if _, ok := QuotaKeys[svc]; !ok {
			v.addf(join("quotas.services", svc), "unknown service (known: compute, block-storage, network)")
			continue
		}
		v.oneOf(join("quotas.services", svc), how, "quota-sets", "unified-limits", "none")
	}
}

func (v *validator) importing(im *Import) {
	if len(im.Roles) == 0 {
		v.addf("import.roles", "at least one role is required")
	}
	for i, r := range im.Roles {
		if strings.TrimSpace(r) == "" {
			v.addf(fmt.Sprintf("import.roles[%d]", i), "empty role name")
		}
	}
	v.oneOf("import.additional_users", im.AdditionalUsers, "create", "report")
	if im.Workers < 1 || im.Workers > 64 {
		v.addf("import.workers", "must be between 1 and 64")
	}
}

func (v *validator) domainManager(d *DomainManager) {
	v.required("domain_manager.role", d.Role)
	if strings.EqualFold(strings.TrimSpace(d.Role), "admin") {
		v.addf("domain_manager.role", "must not be admin: a domain manager must not be a cloud admin")
	}
	for i, r := range d.ForbiddenRoles {
		key := fmt.Sprintf("domain_manager.forbidden_roles[%d]", i)
		switch {
		case strings.TrimSpace(r) == "":
			v.addf(key, "empty role name")
		case strings.EqualFold(strings.TrimSpace(r), strings.TrimSpace(d.Role)):
			v.addf("domain_manager.role", "%q is listed in domain_manager.forbidden_roles", d.Role)
		}
	}
}

func (v *validator) reminders(r *Reminders) {
	v.hostPort("reminders.listen", r.Listen)
	if _, err := time.LoadLocation(r.Timezone); err != nil {
		v.addf("reminders.timezone", "unknown time zone %q", r.Timezone)
	}
	seen := map[string]int{}
	for i, j := range r.Jobs {
		key := fmt.Sprintf("reminders.job[%d]", i)
		if j.Name != "" {
			key = fmt.Sprintf("reminders.job[%d] (%s)", i, j.Name)
			if first, dup := seen[j.Name]; dup {
				v.addf(key+".name", "duplicate job name (also reminders.job[%d])", first)
			}
			seen[j.Name] = i
		} else {
			v.addf(key+".name", "required")
		}
		if !slices.Contains(JobKinds, j.Kind) {
			v.addf(key+".kind", "unknown kind %q (known: %s)", j.Kind, strings.Join(JobKinds, ", "))
		}
		if j.Schedule == "" {
			v.addf(key+".schedule", "required (e.g. \"0 8 * * 1-5\", \"@daily\", \"@every 10m\")")
		} else if _, err := ParseSchedule(j.Schedule); err != nil {
			v.addf(key+".schedule", "invalid cron spec %q: %v", j.Schedule, err)
		}
		for name, d := range map[string]Duration{"start": j.Start, "interval": j.Interval, "after": j.After, "give_up": j.GiveUp} {
			if d.raw != "" {
				v.duration(key+"."+name, d)
			}
		}
		for k, n := range j.DaysBefore {
			if n < 0 {
				v.addf(fmt.Sprintf("%s.days_before[%d]", key, k), "must not be negative")
			}
		}
		for k, a := range j.To {
			v.address(fmt.Sprintf("%s.to[%d]", key, k), a, true)
		}
		if j.Apply && j.Kind != "validate" {
			v.addf(key+".apply", "only a validate job repairs anything")
		}
	}
}

func (v *validator) log(l *Log) {
	v.oneOf("log.level", l.Level, "debug", "info", "warn", "error")
	v.oneOf("log.format", l.Format, "text", "json")
}

// secret resolves a secret from, in increasing precedence, the inline value,
// the *_file path and the environment variable. Inline and file together is
// ambiguous and refused.
func (v *validator) secret(key string, s *Secret, file, env string) {
	if file != "" {
		if s.IsSet() && s.source == "inline" {
			v.addf(key, "set both inline and as %s_file; keep one", key)
			return
		}
		b, err := v.opts.ReadFile(file)
		if err != nil {
			v.addf(key+"_file", "cannot read %q: %v", file, unwrapPath(err))
			return
		}
		val := strings.TrimRight(string(b), "\r\n")
		if val == "" {
			v.addf(key+"_file", "%q is empty", file)
			return
		}
		*s = Secret{value: val, source: "file " + file}
	}
	if val := v.opts.Getenv(env); val != "" {
		*s = Secret{value: val, source: "env " + env}
	}
}

func unwrapPath(err error) error {
	if pe, ok := errors.AsType[*os.PathError](err); ok {
		return pe.Err
	}
	return err
}

func (v *validator) duration(key string, d Duration) {
	if d.err != nil {
		v.addf(key, "%v", d.err)
	}
}

func (v *validator) required(key, val string) {
	if strings.TrimSpace(val) == "" {
		v.addf(key, "required")
	}
}

func (v *validator) oneOf(key, val string, allowed ...string) {
	if !slices.Contains(allowed, val) {
		v.addf(key, "%q is not one of %s", val, strings.Join(allowed, ", "))
	}
}

func (v *validator) atLeast(key string, n, min int) {
	if n < min {
		v.addf(key, "must be at least %d", min)
	}
}

func (v *validator) url(key, raw string) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		v.addf(key, "%q is not an absolute http(s) URL", raw)
	}
}

func (v *validator) hostPort(key, addr string) {
	if _, port, err := net.SplitHostPort(addr); err != nil || port == "" {
		v.addf(key, "%q is not a host:port address", addr)
	}
}

func (v *validator) address(key, addr string, required bool) {
	if addr == "" {
		if required {
			v.addf(key, "required")
		}
		return
	}
	if _, err := mail.ParseAddress(addr); err != nil {
		v.addf(key, "%q is not an email address", addr)
	}
}

func (v *validator) readable(key, path string) {
	f, err := os.Open(path)
	if err != nil {
		v.addf(key, "cannot read %q: %v", path, unwrapPath(err))
		return
	}
	f.Close()
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
