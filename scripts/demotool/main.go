// Command demotool does the reading and printing of scripts/demo: it lays
// out the sheet, the mail, the setpass pages and the quotas the way a reader
// takes them in, and talks to Keystone for the demo as its admin (OS_*).
// It is no part of Kaizen; scripts/demo builds it into a scratch directory.
//
//	demotool sheet EXAMPLE COPY DOMAIN  copy the example with every Domain cell set; print it
//	demotool outcome SHEET              print each row's PIN and Status
//	demotool summary OUTPUT             "created updated unchanged failed invalid not-approved queued delivered"
//	demotool rows OUTPUT OUTCOME        the rows of an import's table with that outcome
//	demotool cell SHEET EMAIL COLUMN    the cell of the row of EMAIL
//	demotool mail MAILDIR EMAIL LINK    list the mail, print EMAIL's welcome; its link into the file LINK
//	demotool page HTML                  a page's heading, paragraphs and fields
//	demotool forget-domain NAME         delete Keystone domain NAME (and so its users and projects)
//	demotool login USER DOMAIN PASSWORD PROJECT   the HTTP status, then the token's user, project, roles
//	demotool quotas SHEET EMAIL...      the quotas of the rows' projects in Nova, Cinder and Neutron
package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"html"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	netmail "net/mail"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	bsquotas "github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/quotasets"
	computequotas "github.com/gophercloud/gophercloud/v2/openstack/compute/v2/quotasets"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/domains"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/tokens"
	netquotas "github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/quotas"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "demotool:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 {
		return errors.New("no subcommand")
	}
	cmd, args := args[0], args[1:]
	want := map[string]int{"sheet": 3, "outcome": 1, "summary": 1, "rows": 2, "cell": 3, "mail": 3, "page": 1,
		"forget-domain": 1, "login": 4, "quotas": -2}
	n, ok := want[cmd]
	switch {
	case !ok:
		return fmt.Errorf("unknown subcommand %q", cmd)
	case n >= 0 && len(args) != n, n < 0 && len(args) < -n:
		return fmt.Errorf("%s: wrong number of arguments", cmd)
	}
	switch cmd {
	case "sheet":
		return sheet(out, args[0], args[1], args[2])
	case "outcome":
		return outcome(out, args[0])
	case "summary":
		return summary(out, args[0])
	case "rows":
		return rows(out, args[0], args[1])
	case "cell":
		return cell(out, args[0], args[1], args[2])
	case "mail":
		return mailbox(out, args[0], args[1], args[2])
	case "page":
		return page(out, args[0])
	case "forget-domain":
		return forgetDomain(ctx, args[0])
	case "login":
		return login(ctx, out, args[0], args[1], args[2], args[3])
	default:
		return quotas(ctx, out, args[0], args[1:])
	}
}

// table is a CSV sheet: its header's columns and its rows.
type table struct {
	col  map[string]int
	rows [][]string // rows[0] is the header
}

func readTable(path string) (*table, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = -1
	rows, err := r.ReadAll()
	if err != nil || len(rows) == 0 {
		return nil, fmt.Errorf("reading %s: %v (%d rows)", path, err, len(rows))
	}
	t := &table{col: map[string]int{}, rows: rows}
	for i, h := range rows[0] {
		t.col[h] = i
	}
	return t, nil
}

// get is row r's cell in column h ("" when the row is short).
func (t *table) get(r []string, h string) string {
	if i, ok := t.col[h]; ok && i < len(r) {
		return r[i]
	}
	return ""
}

// byEmail is the first row whose Email is email, in any case.
func (t *table) byEmail(email string) ([]string, error) {
	for _, r := range t.rows[1:] {
		if strings.EqualFold(strings.TrimSpace(t.get(r, "Email")), email) {
			return r, nil
		}
	}
	return nil, fmt.Errorf("no row for %s", email)
}

func sheet(out io.Writer, src, dst, domain string) error {
	t, err := readTable(src)
	if err != nil {
		return err
	}
	d, ok := t.col["Domain"]
	if !ok {
		return fmt.Errorf("%s has no Domain column", src)
	}
	for _, r := range t.rows[1:] {
		r[d] = domain
	}
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	if err := w.WriteAll(t.rows); err != nil {
		return err
	}
	if err := os.WriteFile(dst, b.Bytes(), 0o600); err != nil {
		return err
	}
	const format = "   %-4v %-22s %-20s %-8s %-9s %-8s %s\n"
	fmt.Fprintf(out, format, "ROW", "EMAIL", "PROJECT NAME", "EXISTING", "PRESET", "APPROVED", "ADDITIONAL USERS")
	for i, r := range t.rows[1:] {
		preset := ifEmpty(t.get(r, "Quota Preset"), "(small)")
		fmt.Fprintf(out, format, i+2, t.get(r, "Email"), t.get(r, "Project Name"), t.get(r, "Existing Project"),
			preset, t.get(r, "Approved"), t.get(r, "Additional Users"))
	}
	return nil
}

// ifEmpty is s, or orElse when s is empty.
func ifEmpty(s, orElse string) string {
	if s == "" {
		return orElse
	}
	return s
}

func outcome(out io.Writer, path string) error {
	t, err := readTable(path)
	if err != nil {
		return err
	}
	const format = "   %-4v %-22s %-13s %s\n"
	fmt.Fprintf(out, format, "ROW", "EMAIL", "PIN", "STATUS")
	for i, r := range t.rows[1:] {
		status := ifEmpty(t.get(r, "Status"), "(untouched: not approved)")
		if len(status) > 100 {
			status = status[:97] + "..."
		}
		fmt.Fprintf(out, format, i+2, t.get(r, "Email"), t.get(r, "PIN"), status)
	}
	return nil
}

var (
	// "6 created, 0 updated, 0 unchanged, 3 failed; 1 not approved", or on
	// a re-run "..., 0 failed, 3 still invalid as reported before; 1 not approved".
	summaryLine = regexp.MustCompile(`(\d+) created, (\d+) updated, (\d+) unchanged, (\d+) failed(?:, (\d+) still invalid[^;]*)?; (\d+) not approved`)
	mailLine    = regexp.MustCompile(`mail: (\d+) queued, (\d+) delivered`)
)

func summary(out io.Writer, path string) error {
	text, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	m, q := summaryLine.FindSubmatch(text), mailLine.FindSubmatch(text)
	if m == nil || q == nil {
		return fmt.Errorf("no summary lines in %s", path)
	}
	if len(m[5]) == 0 {
		m[5] = []byte("0")
	}
	fmt.Fprintf(out, "%s %s %s %s %s %s %s %s\n", m[1], m[2], m[3], m[4], m[5], m[6], q[1], q[2])
	return nil
}

// rows prints the numbers of the rows of an import's table ("ROW OUTCOME
// ...") whose outcome is want, on one line.
func rows(out io.Writer, path, want string) error {
	text, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var got []string
	for line := range strings.Lines(string(text)) {
		row, rest, _ := strings.Cut(line, " ")
		if row != "" && strings.Trim(row, "0123456789") == "" && strings.HasPrefix(strings.TrimLeft(rest, " "), want+"  ") {
			got = append(got, row)
		}
	}
	_, err = fmt.Fprintln(out, strings.Join(got, " "))
	return err
}

func cell(out io.Writer, path, email, column string) error {
	t, err := readTable(path)
	if err != nil {
		return err
	}
	r, err := t.byEmail(email)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(out, strings.TrimSpace(t.get(r, column)))
	return err
}

var link = regexp.MustCompile(`https?://\S+\?token=[A-Za-z0-9_-]+`)

type message struct {
	file              string
	from, to, subject string
	text              string
}

func mailbox(out io.Writer, dir, who, linkFile string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var msgs []message
	for _, e := range entries {
		m, err := readMessage(filepath.Join(dir, e.Name()))
		if err != nil {
			return err
		}
		msgs = append(msgs, m)
	}
	fmt.Fprintf(out, "   %d messages:\n", len(msgs))
	sorted := slices.Clone(msgs)
	slices.SortStableFunc(sorted, func(a, b message) int {
		return strings.Compare(a.to+"\x00"+a.subject, b.to+"\x00"+b.subject)
	})
	for _, m := range sorted {
		fmt.Fprintf(out, "     %-24s %s\n", m.to, m.subject)
	}
	var welcome *message
	for i, m := range msgs { // the last, as the files sort
		if strings.Contains(m.to, who) && strings.Contains(m.text, "?token=") {
			welcome = &msgs[i]
		}
	}
	if welcome == nil {
		return fmt.Errorf("no welcome mail with a set-password link to %s", who)
	}
	fmt.Fprintf(out, "\n   The welcome mail to %s (%s), its text part:\n\n", who, welcome.file)
	fmt.Fprintf(out, "   | From: %s\n   | To: %s\n   | Subject: %s\n   |\n", welcome.from, welcome.to, welcome.subject)
	for _, line := range strings.Split(strings.TrimRight(welcome.text, "\n"), "\n") {
		fmt.Fprintln(out, strings.TrimRight("   | "+line, " \t"))
	}
	links := slices.Compact(slices.Sorted(slices.Values(link.FindAllString(welcome.text, -1))))
	if len(links) != 1 {
		return fmt.Errorf("expected one set-password link in the mail, found %d", len(links))
	}
	return os.WriteFile(linkFile, []byte(links[0]), 0o600)
}

// readMessage reads a Maildir file: its decoded headers and its text part
// (the whole body when it is not multipart).
func readMessage(path string) (message, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return message{}, err
	}
	msg, err := netmail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return message{}, fmt.Errorf("%s: %w", path, err)
	}
	var dec mime.WordDecoder
	header := func(k string) string {
		v, err := dec.DecodeHeader(msg.Header.Get(k))
		if err != nil {
			return msg.Header.Get(k)
		}
		return v
	}
	// Addresses as a reader writes them: Name <address>, or the bare address.
	addresses := func(k string) string {
		list, err := msg.Header.AddressList(k)
		if err != nil {
			return header(k)
		}
		var out []string
		for _, a := range list {
			if a.Name == "" {
				out = append(out, a.Address)
			} else {
				out = append(out, a.Name+" <"+a.Address+">")
			}
		}
		return strings.Join(out, ", ")
	}
	m := message{file: filepath.Base(path), from: addresses("From"), to: addresses("To"), subject: header("Subject")}
	media, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || !strings.HasPrefix(media, "multipart/") {
		b, err := io.ReadAll(msg.Body)
		m.text = string(b)
		return m, err
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		p, err := mr.NextPart() // undoes quoted-printable
		if errors.Is(err, io.EOF) {
			return m, nil
		}
		if err != nil {
			return message{}, fmt.Errorf("%s: %w", path, err)
		}
		if strings.HasPrefix(p.Header.Get("Content-Type"), "text/plain") {
			b, err := io.ReadAll(p)
			m.text = strings.ReplaceAll(string(b), "\r\n", "\n")
			return m, err
		}
	}
}

var (
	mainElem = regexp.MustCompile(`(?s)<main>(.*)</main>`)
	h1Elem   = regexp.MustCompile(`(?s)<h1>(.*?)</h1>`)
	pElem    = regexp.MustCompile(`(?s)<p[^>]*>(.*?)</p>`)
	label    = regexp.MustCompile(`(?s)<label[^>]*>(.*?)</label>`)
	tag      = regexp.MustCompile(`<[^>]+>`)
)

func page(out io.Writer, path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	doc := string(b)
	if m := mainElem.FindStringSubmatch(doc); m != nil {
		doc = m[1]
	}
	if m := h1Elem.FindStringSubmatch(doc); m != nil {
		fmt.Fprintln(out, strings.TrimSpace(html.UnescapeString(m[1])))
	}
	for _, m := range pElem.FindAllStringSubmatch(doc, -1) {
		if t := strings.Join(strings.Fields(html.UnescapeString(tag.ReplaceAllString(m[1], ""))), " "); t != "" {
			fmt.Fprintln(out, t)
		}
	}
	var fields []string
	for _, m := range label.FindAllStringSubmatch(doc, -1) {
		fields = append(fields, strings.TrimSpace(html.UnescapeString(m[1])))
	}
	if len(fields) > 0 {
		fmt.Fprintln(out, "fields: "+strings.Join(fields, ", "))
	}
	return nil
}

// admin is the bootstrap admin of `scripts/dev-keystone env`.
func admin(ctx context.Context) (*gophercloud.ProviderClient, error) {
	opts := gophercloud.AuthOptions{
		IdentityEndpoint: os.Getenv("OS_AUTH_URL"),
		Username:         os.Getenv("OS_USERNAME"),
		Password:         os.Getenv("OS_PASSWORD"),
		DomainName:       os.Getenv("OS_USER_DOMAIN_NAME"),
		Scope: &gophercloud.AuthScope{
			ProjectName: os.Getenv("OS_PROJECT_NAME"),
			DomainName:  os.Getenv("OS_PROJECT_DOMAIN_NAME"),
		},
	}
	p, err := openstack.AuthenticatedClient(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("the admin credentials of scripts/dev-keystone env: %w", err)
	}
	return p, nil
}

func forgetDomain(ctx context.Context, name string) error {
	p, err := admin(ctx)
	if err != nil {
		return err
	}
	id, err := openstack.NewIdentityV3(p, gophercloud.EndpointOpts{})
	if err != nil {
		return err
	}
	pages, err := domains.List(id, domains.ListOpts{Name: name}).AllPages(ctx)
	if err != nil {
		return err
	}
	ds, err := domains.ExtractDomains(pages)
	if err != nil {
		return err
	}
	for _, d := range ds { // Keystone deletes only a disabled domain
		off := false
		if _, err := domains.Update(ctx, id, d.ID, domains.UpdateOpts{Enabled: &off}).Extract(); err != nil {
			return err
		}
		if err := domains.Delete(ctx, id, d.ID).ExtractErr(); err != nil {
			return err
		}
	}
	return nil
}

func login(ctx context.Context, out io.Writer, user, domain, password, project string) error {
	p, err := openstack.NewClient(os.Getenv("OS_AUTH_URL"))
	if err != nil {
		return err
	}
	id, err := openstack.NewIdentityV3(p, gophercloud.EndpointOpts{})
	if err != nil {
		return err
	}
	res := tokens.Create(ctx, id, &tokens.AuthOptions{
		Username: user, DomainName: domain, Password: password,
		Scope: tokens.Scope{ProjectName: project, DomainName: domain},
	})
	var code gophercloud.ErrUnexpectedResponseCode
	if errors.As(res.Err, &code) {
		_, err := fmt.Fprintln(out, code.Actual)
		return err
	}
	if res.Err != nil {
		return res.Err
	}
	u, err := res.ExtractUser()
	if err != nil {
		return err
	}
	pr, err := res.ExtractProject()
	if err != nil {
		return err
	}
	rs, err := res.ExtractRoles()
	if err != nil {
		return err
	}
	var names []string
	for _, r := range rs {
		names = append(names, r.Name)
	}
	fmt.Fprintf(out, "%d\n   HTTP %d Created: a token for user %s (domain %s),\n", http.StatusCreated, http.StatusCreated, u.Name, u.Domain.Name)
	_, err = fmt.Fprintf(out, "   project %s, roles: %s\n", pr.Name, strings.Join(names, ", "))
	return err
}

func quotas(ctx context.Context, out io.Writer, path string, emails []string) error {
	t, err := readTable(path)
	if err != nil {
		return err
	}
	p, err := admin(ctx)
	if err != nil {
		return err
	}
	public := gophercloud.EndpointOpts{Availability: gophercloud.AvailabilityPublic}
	compute, err := openstack.NewComputeV2(p, public)
	if err != nil {
		return err
	}
	volume, err := openstack.NewBlockStorageV3(p, public)
	if err != nil {
		return err
	}
	network, err := openstack.NewNetworkV2(p, public)
	if err != nil {
		return err
	}
	const format = "   %-18v %-7v %9v %5v %7v %7v %9v %7v %4v\n"
	fmt.Fprintf(out, format, "PROJECT", "PRESET", "instances", "cores", "ram", "volumes", "gigabytes", "network", "port")
	for _, e := range emails {
		r, err := t.byEmail(e)
		if err != nil {
			return err
		}
		pid := t.get(r, "Project ID")
		c, err := computequotas.Get(ctx, compute, pid).Extract()
		if err != nil {
			return fmt.Errorf("compute quotas of %s: %w", pid, err)
		}
		v, err := bsquotas.Get(ctx, volume, pid).Extract()
		if err != nil {
			return fmt.Errorf("block-storage quotas of %s: %w", pid, err)
		}
		n, err := netquotas.Get(ctx, network, pid).Extract()
		if err != nil {
			return fmt.Errorf("network quotas of %s: %w", pid, err)
		}
		fmt.Fprintf(out, format, t.get(r, "Project Name"), ifEmpty(t.get(r, "Quota Preset"), "small"),
			c.Instances, c.Cores, c.RAM, v.Volumes, v.Gigabytes, n.Network, n.Port)
	}
	return nil
}
