package main

import (
	"encoding/json"
	"io"

	"github.com/kaizen-onboard/kaizen/internal/cli"
)

// The listing subcommands print a table for people or, with --output json,
// indented JSON for monitoring and scripts.

// checkOutput refuses an --output other than table or json.
func checkOutput(output string) error {
	if output != "table" && output != "json" {
		return cli.Usagef("--output must be table or json, not %q", output)
	}
	return nil
}

// printJSON prints v as --output json does.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
