package main

import (
	"context"
	"fmt"
	"io"
)

func runBackup(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("backup", "[-c FILE | --db PATH] DEST",
		"simgate backup -c /etc/simgate/simgate.yaml /backup/simgate-$(date +%F).db", stderr)
	configPath := fs.String("c", "", "configuration file (for database.path)")
	dbPath := fs.String("db", "", "database file, instead of the one in the configuration")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError{"want one argument: the new file to write the copy to"}
	}
	db, _, err := openAdmin(ctx, *configPath, *dbPath)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.Backup(ctx, fs.Arg(0)); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote a copy of the database to %s\n", fs.Arg(0))
	return db.Close()
}
