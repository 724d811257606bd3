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
	}
	return app.Run(ctx, args, getenv, stdout, stderr)
}
