// Command simgate is a self-hosted SMS gateway and OTP verification service
// that drives a pool of GSM modems. Run "simgate help" for the subcommands.
//
// This file is only dispatch: each subcommand lives in its own file with a
// run function that takes a context, its arguments and its output streams,
// so that tests call it the way the shell does.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// command is one subcommand. run returns flag.ErrHelp after printing help.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"serve", "run the gateway daemon: modems, queue and HTTP API", runServe},
		{"demo", "run a whole verification end to end on virtual modems", runDemo},
		{"sim", "run virtual GSM modems on pseudo-terminals", runSim},
		{"modems", "probe serial ports for modems and show what they are", runModems},
		{"send", "send one SMS through a running daemon or straight from a device", runSend},
		{"apikey", "create, list and revoke API keys", runAPIKey},
		{"services", "create and list services (one application's verification settings)", runServices},
		{"backup", "write a consistent copy of the database, while the daemon runs or not", runBackup},
		{"migrate", "create or upgrade the database schema", runMigrate},
		{"check-config", "validate a configuration file", runCheckConfig},
		{"version", "print the simgate version", runVersion},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run dispatches args to a subcommand and returns the process exit code:
// 0 on success and for --help, 2 for a usage error, 1 for any other failure.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	name := args[0]
	switch name {
	case "help", "-h", "-help", "--help":
		usage(stdout)
		return 0
	}
	for _, c := range commands() {
		if c.name != name {
			continue
		}
		err := c.run(ctx, args[1:], stdout, stderr)
		switch {
		case err == nil, errors.Is(err, flag.ErrHelp):
			return 0
		case errors.As(err, new(usageError)):
			fmt.Fprintf(stderr, "simgate %s: %v\n", name, err)
			return 2
		default:
			fmt.Fprintf(stderr, "simgate %s: %v\n", name, err)
			return 1
		}
	}
	fmt.Fprintf(stderr, "simgate: unknown command %q\n\n", name)
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: simgate <command> [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-13s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, `Run "simgate <command> --help" for a command's flags and an example.`)
}

// usageError is a mistake in the command line; it exits with status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// newFlagSet returns a flag set for a subcommand whose --help prints the
// synopsis, the flags and an example.
func newFlagSet(name, synopsis, example string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("simgate "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: simgate %s %s\n\nFlags:\n", name, synopsis)
		fs.PrintDefaults()
		if example != "" {
			fmt.Fprintf(fs.Output(), "\nExample:\n  %s\n", example)
		}
	}
	return fs
}

// parseFlags parses args; on a bad flag it returns a usageError, on --help
// flag.ErrHelp.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err.Error()}
	}
	return nil
}
