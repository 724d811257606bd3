package main

import (
	"context"

	"flag"
	"fmt"
	"io"
	netmail "net/mail"
	"strings"
	"text/tabwriter"

	"github.com/kaizen-onboard/kaizen/internal/account"
	"github.com/kaizen-onboard/kaizen/internal/app"
	"github.com/kaizen-onboard/kaizen/internal/cli"
	"github.com/kaizen-onboard/kaizen/internal/cloud"
	"github.com/kaizen-onboard/kaizen/internal/domainmanager"
	"github.com/kaizen-onboard/kaizen/internal/pin"
)

const domainManagerUsage = `Usage: addusers [--config PATH] domain-manager assign|revoke|list [flags]

SCS Domain Managers (scs-0302): a domain manager holds the role
domain_manager.role (default "manager") on a domain, not on a project, and
administers that domain's users and projects.

  domain-manager assign --domain D --user U [--create-domain]
                        [--create-user [--email E] --pin NNNN] [--no-deliver]
      makes sure the domain, the role and the user exist, then grants the
      role on the domain. Refuses admin, any role in
      domain_manager.forbidden_roles and a role implying one of them.
  domain-manager revoke --domain D --user U
      removes the user's role on the domain (nothing to do is not an error).
  domain-manager list [--domain D] [--output table|json]
      the domain-manager assignments Keystone holds, names resolved.

Flags:
  --domain NAME     the domain, by name
  --user NAME       the user's login name in that domain (kaizen names users
                    by their lower-cased email address)
  --create-domain   create the domain when it does not exist
  --create-user     create the user in the domain when it does not exist,
                    register a set-password link with setpass and mail it
                    a welcome with the link
  --email ADDRESS   with --create-user: the user's email address (default:
                    --user, when it is an address)
  --pin NNNN        with --create-user: the 4-digit PIN the set-password
                    page asks for (required)
  --no-deliver      queue the welcome mail without delivering it now (the
                    reminders daemon's outbox job delivers it)
  --output FORMAT   list: table (default) or json

Exit status: 0 done (or nothing to do), 1 failed or refused, 2 usage or
configuration error.
`

// domainManagerCaveat is the standard's warning, printed on every assign.
const domainManagerCaveat = `Note (SCS scs-0302): before Keystone 2024.2, where domain managers rely on a
policy file, a domain manager can see the names of all domains. Give domains
pseudonymous names that reveal nothing about their tenants.
`

type dmFlags struct {
	sub                                 string
	domain, user, email, pin, output    string
	createDomain, createUser, noDeliver bool
}

func parseDomainManagerFlags(args []string, stdout io.Writer) (dmFlags, error) {
	var f dmFlags
	if len(args) == 0 {
		return f, cli.Usagef("domain-manager needs a subcommand: assign, revoke or list")
	}
	f.sub = args[0]
	switch f.sub {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, domainManagerUsage)
		return f, flag.ErrHelp
	case "assign", "revoke", "list":
	default:
		return f, cli.Usagef("unknown domain-manager subcommand %q (assign, revoke or list)", f.sub)
	}
	fs := newFlagSet("domain-manager "+f.sub, domainManagerUsage, stdout)
	fs.StringVar(&f.domain, "domain", "", "")
	switch f.sub {
	case "assign":
		fs.StringVar(&f.user, "user", "", "")
		fs.BoolVar(&f.createDomain, "create-domain", false, "")
		fs.BoolVar(&f.createUser, "create-user", false, "")
		fs.StringVar(&f.email, "email", "", "")
		fs.StringVar(&f.pin, "pin", "", "")
		fs.BoolVar(&f.noDeliver, "no-deliver", false, "")
	case "revoke":
		fs.StringVar(&f.user, "user", "", "")
	case "list":
		fs.StringVar(&f.output, "output", "table", "")
	}
	if err := parseFlags(fs, args[1:], "domain-manager "+f.sub+": "); err != nil {
		return f, err
	}
	f.domain, f.user, f.email = strings.TrimSpace(f.domain), strings.TrimSpace(f.user), strings.TrimSpace(f.email)
	if f.sub == "list" {
		return f, checkOutput(f.output)
	}
	if f.domain == "" {
		return f, cli.Usagef("domain-manager %s: --domain is required", f.sub)
	}
	if f.user == "" {
		return f, cli.Usagef("domain-manager %s: --user is required", f.sub)
	}
	if f.sub != "assign" {
		return f, nil
	}
	if !f.createUser {
		if f.email != "" {
			return f, cli.Usagef("--email is only used with --create-user")
		}
		if f.pin != "" {
			return f, cli.Usagef("--pin is only used with --create-user")
		}
		return f, nil
	}
	if f.email == "" {
		if a, err := netmail.ParseAddress(f.user); err == nil && a.Address == f.user {
			f.email = f.user
		} else {
			return f, cli.Usagef("--create-user needs --email (the address the set-password link is mailed to)")
		}
	}
	if a, err := netmail.ParseAddress(f.email); err != nil || a.Address != f.email {
		return f, cli.Usagef("--email %q is not an email address", f.email)
	}
	if f.pin == "" {
		return f, cli.Usagef("--create-user needs --pin NNNN (the 4-digit PIN the set-password page asks for)")
	}
	if !pin.Valid(f.pin) {
		return f, cli.Usagef("--pin must be %s", pin.Rule) // never echo a PIN
	}
	return f, nil
}

func runDomainManager(ctx context.Context, a *app.App, f dmFlags, env cli.Env) error {
	cfg := a.Config
	clients, err := a.Cloud(ctx)
	if err != nil {
		return err
	}
	ids := cloud.Ops{Identity: cloud.NewKeystone(clients.Identity)}
	settings := domainmanager.Settings{Role: cfg.DomainManager.Role, ForbiddenRoles: cfg.DomainManager.ForbiddenRoles,
		DefaultDomain: cfg.OpenStack.Domain}
	r := &recorder{out: env.Stdout}
	const source = "addusers domain-manager"
	if f.sub == "list" {
		// list changes nothing: no store.
		dm := domainmanager.New(ids, nil, auditRecorder(a, nil, source), a.Random, settings)
		rows, err := dm.List(ctx, domainmanager.ListRequest{Domain: f.domain})
		if err != nil {
			return err
		}
		return printDomainManagers(r, f.output, settings.Role, rows)
	}
	st, err := a.Store(ctx)
	if err != nil {
		return err
	}
	audit := auditRecorder(a, st, source)
	if f.sub == "revoke" {
		res, err := domainmanager.New(ids, nil, audit, a.Random, settings).Revoke(ctx, domainmanager.RevokeRequest{Domain: f.domain, User: f.user})
		if err != nil {
			return err
		}
		printRevoke(r, res)
		return nil
	}
	var links domainmanager.Linker
	var m *userMail
	if f.createUser {
		// Wired before any change, so that a mistake in the mail or setpass
		// settings stops the command before it has done anything.
		if m, err = newUserMail(a, st, f.noDeliver); err != nil {
			return err
		}
		links = account.NewIssuer(ids, m.setpass, m.outbox, st, audit, a.Random)
	}
	res, err := domainmanager.New(ids, links, audit, a.Random, settings).Assign(ctx, domainmanager.AssignRequest{
		Domain: f.domain, User: f.user, CreateDomain: f.createDomain, CreateUser: f.createUser, Email: f.email, PIN: f.pin,
	})
	printAssign(r, res)
	if res.Manager {
		// From here on the user is a domain manager, whatever follows.
		defer fmt.Fprint(r.out, "\n"+domainManagerCaveat)
	}
	if err != nil {
		return err
	}
	if res.Welcome != nil && res.Welcome.Outcome == account.Issued {
		return m.drain(ctx, r)
	}
	return nil
}

// printAssign tells the operator what Assign did, also when it failed
// half-way.
func printAssign(r *recorder, res domainmanager.AssignResult) {
	d, u := res.Domain, res.User
	if res.RoleCreated {
		r.say("created role %q (%s)", res.Role, res.RoleID)
	}
	if res.DomainCreated {
		r.say("created domain %q (%s)", d.Name, d.ID)
	}
	if res.UserCreated {
		r.say("created user %q (%s) in domain %q", u.Name, u.ID, d.Name)
	}
	if !res.Manager {
		return
	}
	if res.Assigned {
		r.say("assigned %s to %s on domain %q: %s is now a domain manager", res.Role, u.Name, d.Name, u.Name)
	} else {
		r.say("%s already holds %s on domain %q; nothing to assign", u.Name, res.Role, d.Name)
	}
	switch w := res.Welcome; {
	case w == nil:
	case w.Outcome == account.NotKaizens:
		r.say("%s's account was not created by kaizen; no set-password link sent", u.Name)
	case w.Outcome == account.AlreadyWelcomed:
		r.say("%s was sent a welcome with a set-password link before; nothing to send", u.Name)
	case w.MailKey != "":
		r.say("queued a welcome with a set-password link for %s to %s", u.Name, w.To.Address)
	}
}

func printRevoke(r *recorder, res domainmanager.RevokeResult) {
	d, u := res.Domain, res.User
	switch {
	case res.NoRole:
		r.say("role %q does not exist, so no one holds it; nothing to revoke", res.Role)
	case !res.Revoked:
		r.say("%s does not hold %s on domain %q; nothing to revoke", u.Name, res.Role, d.Name)
	default:
		r.say("revoked %s of %s on domain %q: %s is no longer a domain manager", res.Role, u.Name, d.Name, u.Name)
	}
}

func printDomainManagers(r *recorder, output, role string, rows []cloud.DomainRoleAssignment) error {
	if output == "json" {
		return printJSON(r.out, rows)
	}
	tw := tabwriter.NewWriter(r.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DOMAIN\tUSER\tUSER DOMAIN\tROLE")
	for _, row := range rows {
		who, whoDomain := row.User, row.UserDomain
		if row.GroupID != "" {
			who, whoDomain = "group "+row.Group, row.GroupDomain
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", row.Domain, who, whoDomain, row.Role)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(r.out, "\n%d domain-manager assignment(s) of role %q\n", len(rows), role)
	return nil
}
