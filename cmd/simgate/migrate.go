package main

import (
	"context"
	"fmt"
	"io"
)

func runCheckConfig(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("check-config", "FILE", "simgate check-config /etc/simgate/simgate.yaml", stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError{"want exactly one FILE"}
	}
	cfg, err := LoadConfig(fs.Arg(0))
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: ok: %d modem(s), database %s, API on %s\n", fs.Arg(0), len(cfg.Modems), cfg.Database.Path, cfg.HTTP.Listen)
	return nil
}

func runMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return notBuilt("migrate", "-c FILE", "simgate migrate -c /etc/simgate/simgate.yaml")(ctx, args, stdout, stderr)
}
