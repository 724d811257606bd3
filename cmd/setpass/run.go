package main

import (
	"context"
	"io"

	"github.com/kaizen-onboard/kaizen/internal/cli"
)

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	app := cli.App{
		Program: "setpass",
		Version: version,
		About:   "setpass is the web service behind the set-password link mailed to new users.",
	}
	return app.Run(ctx, args, getenv, stdout, stderr)
}
