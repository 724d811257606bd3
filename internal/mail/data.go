package mail

import (
	"fmt"
	"reflect"
	"strconv"
	"time"

	"github.com/kaizen-onboard/kaizen/internal/config"
)

// Message kinds: each is a folder of templates and has one data type.
const (
	KindWelcome        = "welcome"
	KindNewProject     = "new-project"
	KindAddedToProject = "added-to-project"
	KindPasswordReset  = "password-reset"
	KindApproverDigest = "approver-digest"
	KindHelpdeskNotify = "helpdesk-notify"
	KindLinkReminder   = "link-reminder"
	KindQuotaExpiry    = "quota-expiry"
	KindQuotaChanged   = "quota-changed"
	KindPINLocked      = "pin-locked"
)

// Kinds returns every message kind, in a stable order.
func Kinds() []string {
	return []string{
		KindWelcome, KindNewProject, KindAddedToProject, KindPasswordReset,
		KindApproverDigest, KindHelpdeskNotify, KindLinkReminder,
		KindQuotaExpiry, KindQuotaChanged, KindPINLocked,
	}
}

// Common holds the [mail] settings every template sees as .Common. Empty
// URLs are left out of the messages.
type Common struct {
	CloudName         string
	From              string
	Support           string
	Helpdesk          string
	LoginURL          string
	GettingStartedURL string
	TermsURL          string
}

// CommonFromConfig takes the shared template values from [mail].
func CommonFromConfig(m config.Mail) Common {
	return Common{
		CloudName:         m.CloudName,
		From:              m.From,
		Support:           m.Support,
		Helpdesk:          m.Helpdesk,
		LoginURL:          m.LoginURL,
		GettingStartedURL: m.GettingStartedURL,
		TermsURL:          m.TermsURL,
	}
}

// WelcomeData is for a new user: their account and set-password link.
// Times are shown in their own location; convert before rendering.
type WelcomeData struct {
	Name      string
	Username  string
	Domain    string // "" leaves it out
	Project   string // "" leaves it out
	Link      string // set-password link
	ExpiresAt time.Time
	// PINFrom names who chose the PIN when it was not the user: an
	// additional user's PIN is the requester's. "" means the user did.
	PINFrom string
}

// NewProjectData is for the contact of a newly created project.
type NewProjectData struct {
	Name    string // the contact's name
	Project string
	Domain  string       // "" leaves it out
	EndsOn  time.Time    // zero: no end date
	Quota   []QuotaLimit // empty leaves the table out
}

// QuotaLimit is one quota value; Resource is a preset key such as "cores"
// or "ram" (MiB), Limit -1 means unlimited.
type QuotaLimit struct {
	Resource string
	Limit    int64
}

// AddedToProjectData is for an existing user given a role in a project.
type AddedToProjectData struct {
	Name     string
	Username string
	Project  string
	Domain   string // "" leaves it out
	Role     string // "" leaves it out
}

// PasswordResetData is for a user sent a new set-password link on request.
type PasswordResetData struct {
	Name      string
	Username  string
	Link      string
	ExpiresAt time.Time
}

// LinkReminderData is for a user whose first link went unused; Link is the
// new one.
type LinkReminderData struct {
	Name      string
	Username  string
	Link      string
	ExpiresAt time.Time
}

// ApproverDigestData lists the sign-ups waiting for approval.
type ApproverDigestData struct {
	Requests []PendingRequest
	SheetURL string // "" leaves the link out
}

// PendingRequest is one sign-up row awaiting approval.
type PendingRequest struct {
	Name        string
	Email       string
	Project     string
	Comment     string    // "" leaves it out
	SubmittedAt time.Time // zero leaves it out
}

// HelpdeskNotifyData tells the helpdesk about something needing a person.
// Summary becomes part of the subject, so keep it short.
type HelpdeskNotifyData struct {
	Summary  string
	Detail   string // optional paragraph
	Items    []HelpdeskItem
	SheetURL string // "" leaves the link out
}

// HelpdeskItem is one person or row the notice is about; empty fields are
// left out.
type HelpdeskItem struct {
	Name     string
	Email    string
	Username string
	Project  string
	Problem  string
}

// PINLockedData tells the helpdesk that setpass locked a user's PIN after
// too many wrong PINs across the user's links. It holds no secret.
type PINLockedData struct {
	Name     string // the user's full name; "" leaves it out
	Username string
	UserID   string
	Failures int    // wrong PINs counted in the window
	Window   string // e.g. "24h"
	LockedAt time.Time
}

// QuotaExpiryData warns a project's contact of its end date.
type QuotaExpiryData struct {
	Name     string
	Project  string
	EndsOn   time.Time
	DaysLeft int // 0 means today
}

// QuotaChangedData tells a project's contact its quota changed.
type QuotaChangedData struct {
	Name    string
	Project string
	Changes []QuotaChange
}

// QuotaChange is one resource's old and new limit (-1 is unlimited).
type QuotaChange struct {
	Resource string
	Old, New int64
}

// dataType is the data type Render expects for kind: that of its example
// (nil for an unknown kind).
func dataType(kind string) reflect.Type {
	data, _ := Example(kind)
	return reflect.TypeOf(data)
}

// Example returns realistic data for kind with every optional field set, so
// that rendering it exercises every branch of a template. NewRenderer renders
// it to catch template errors at start-up; it also makes previews and golden
// files.
func Example(kind string) (any, error) {
	at := time.Date(2026, time.March, 12, 17, 0, 0, 0, time.UTC)
	quota := []QuotaLimit{{"instances", 10}, {"cores", 20}, {"ram", 51200}, {"gigabytes", 500}, {"floatingip", -1}}
	switch kind {
	case KindWelcome:
		return WelcomeData{Name: "Ada Lovelace", Username: "ada@example.edu", Domain: "research",
			Project: "analytical-engine", Link: "https://setpass.example.org/reset/3q2-7Xa9", ExpiresAt: at}, nil
	case KindNewProject:
		return NewProjectData{Name: "Ada Lovelace", Project: "analytical-engine", Domain: "research",
			EndsOn: at.AddDate(1, 0, 0), Quota: quota}, nil
	case KindAddedToProject:
		return AddedToProjectData{Name: "Charles Babbage", Username: "cb@example.edu",
			Project: "analytical-engine", Domain: "research", Role: "member"}, nil
	case KindPasswordReset:
		return PasswordResetData{Name: "Ada Lovelace", Username: "ada@example.edu",
			Link: "https://setpass.example.org/reset/9Zk-1bQ4", ExpiresAt: at}, nil
	case KindLinkReminder:
		return LinkReminderData{Name: "Ada Lovelace", Username: "ada@example.edu",
			Link: "https://setpass.example.org/reset/T5m-2wLc", ExpiresAt: at}, nil
	case KindApproverDigest:
		return ApproverDigestData{SheetURL: "https://docs.google.com/spreadsheets/d/1AbC/edit", Requests: []PendingRequest{
			{Name: "Ada Lovelace", Email: "ada@example.edu", Project: "analytical-engine", Comment: "Simulating Bernoulli numbers.", SubmittedAt: at.AddDate(0, 0, -2)},
			{Name: "Grace Hopper", Email: "grace@example.edu", Project: "cobol-tests", SubmittedAt: at.AddDate(0, 0, -1)},
		}}, nil
	case KindHelpdeskNotify:
		return HelpdeskNotifyData{Summary: "2 sign-ups could not be completed",
			Detail:   "These rows need a person to look at them; addusers will retry them on its next run.",
			SheetURL: "https://docs.google.com/spreadsheets/d/1AbC/edit", Items: []HelpdeskItem{
				{Name: "Ada Lovelace", Email: "ada@example.edu", Username: "ada@example.edu", Project: "analytical-engine", Problem: "Project quota preset \"huge\" does not exist"},
				{Name: "Grace Hopper", Email: "grace@example.edu", Problem: "Welcome mail refused: 550 mailbox unavailable"},
			}}, nil
	case KindPINLocked:
		return PINLockedData{Name: "Ada Lovelace", Username: "ada@example.edu", UserID: "4f1c2d3e5a6b7c8d9e0f1a2b3c4d5e6f",
			Failures: 10, Window: "24h", LockedAt: at}, nil
	case KindQuotaExpiry:
		return QuotaExpiryData{Name: "Ada Lovelace", Project: "analytical-engine", EndsOn: at.AddDate(0, 0, 14), DaysLeft: 14}, nil
	case KindQuotaChanged:
		return QuotaChangedData{Name: "Ada Lovelace", Project: "analytical-engine", Changes: []QuotaChange{
			{"cores", 20, 40}, {"ram", 51200, 102400}, {"gigabytes", 500, 1000}, {"floatingip", 2, -1},
		}}, nil
	}
	return nil, fmt.Errorf("mail: unknown message kind %q", kind)
}

// resourceLabel names a quota key for people.
func resourceLabel(key string) string {
	switch key {
	case "instances":
		return "Instances"
	case "cores":
		return "vCPUs"
	case "ram":
		return "RAM"
	case "volumes":
		return "Volumes"
	case "gigabytes":
		return "Volume storage"
	case "snapshots":
		return "Volume snapshots"
	case "network":
		return "Networks"
	case "subnet":
		return "Subnets"
	case "router":
		return "Routers"
	case "floatingip":
		return "Floating IPs"
	case "port":
		return "Ports"
	case "security_group":
		return "Security groups"
	case "security_group_rule":
		return "Security group rules"
	}
	return key
}

// quotaValue shows a limit with its unit: ram is in MiB, gigabytes in GiB.
func quotaValue(key string, v int64) string {
	switch {
	case v < 0:
		return "unlimited"
	case key == "ram" && v%1024 == 0:
		return strconv.FormatInt(v/1024, 10) + " GiB"
	case key == "ram":
		return strconv.FormatInt(v, 10) + " MiB"
	case key == "gigabytes":
		return strconv.FormatInt(v, 10) + " GiB"
	}
	return strconv.FormatInt(v, 10)
}
