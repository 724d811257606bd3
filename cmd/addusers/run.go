package main

import (
	"context"
	"io"

	"github.com/kaizen-onboard/kaizen/internal/cli"
)

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	app := cli.App{
		Program: "addusers",
		Version: version,
		About:   "addusers onboards approved sign-up requests into an OpenStack cloud.",
		Default: "import",
		Commands: []cli.Command{
			{Name: "import", Summary: "apply every approved request not yet done and write each outcome\nback to the sheet (addusers import --help for its flags)", Run: importCmd(false)},
			{Name: "plan", Summary: "show what import would change; changes nothing anywhere", Run: importCmd(true)},
			{Name: "quotas", Summary: "apply approved quota-change requests (addusers quotas --help);\n--revert-expired ends temporary quotas", Run: command(parseQuotasFlags, runQuotas)},
			{Name: "validate", Summary: "report drift from what import and quotas did; --apply repairs\nroles and quotas (addusers validate --help)", Run: command(parseValidateFlags, runValidate)},
			{Name: "domain-manager", Summary: "assign, revoke or list SCS domain managers (the manager role on a\ndomain; addusers domain-manager --help)", Run: command(parseDomainManagerFlags, runDomainManager)},
			{Name: "reset-password", Summary: "mail a user a password-reset link through setpass (the helpdesk's\ncommand; addusers reset-password --help)", Run: command(parseResetPasswordFlags, runResetPassword)},
		},
	}
	return app.Run(ctx, args, getenv, stdout, stderr)
}
