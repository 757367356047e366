package main

import (
	"context"
	"io"
)

// The subcommands below belong to issues that have not landed yet. Each still
// answers --help, and otherwise says it is not built, with exit status 1.

func notBuilt(name, synopsis, example string) func(context.Context, []string, io.Writer, io.Writer) error {
	return func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
		fs := newFlagSet(name, synopsis, example, stderr)
		if err := parseFlags(fs, args); err != nil {
			return err
		}
		return errNotBuilt(name)
	}
}

var (
	runAPIKey = notBuilt("apikey", "create|list|revoke", "simgate apikey create --name app --scopes verify")
)
