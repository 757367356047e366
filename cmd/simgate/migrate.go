package main

import (
	"context"
	"fmt"
	"io"
	"strings"
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
	for _, w := range cfg.Warnings() {
		fmt.Fprintf(stdout, "%s: warning: %s\n", fs.Arg(0), w)
	}
	return nil
}

func runMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("migrate", "[-c FILE | --db PATH]",
		"simgate migrate -c /etc/simgate/simgate.yaml", stderr)
	configPath := fs.String("c", "", "configuration file (its database.path and database.synchronous are used)")
	dbPath := fs.String("db", "", "database file, instead of the one in the configuration")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usageError{"unexpected arguments: " + strings.Join(fs.Args(), " ")}
	}
	// migrate creates the database also where one existed and is gone:
	// serve refuses that, as a wiped volume is not a first start.
	db, name, err := openStore(ctx, *configPath, *dbPath, true)
	if err != nil {
		return err
	}
	defer db.Close()
	for _, m := range db.Applied() {
		fmt.Fprintf(stdout, "applied %s\n", m)
	}
	v, err := db.SchemaVersion(ctx)
	if err != nil {
		return err
	}
	if len(db.Applied()) == 0 {
		fmt.Fprintf(stdout, "%s: already up to date at schema version %d\n", name, v)
	} else {
		fmt.Fprintf(stdout, "%s: now at schema version %d\n", name, v)
	}
	return db.Close()
}
