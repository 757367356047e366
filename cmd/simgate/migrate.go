package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/simgate/simgate/store"
	"github.com/simgate/simgate/store/postgres"
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
	fs := newFlagSet("migrate", "[-c FILE | --db PATH | --from sqlite:PATH --to postgres:DSN]",
		"simgate migrate -c /etc/simgate/simgate.yaml\n"+
			"  simgate migrate --from sqlite:/var/lib/simgate/simgate.db --to postgres:postgres://simgate@db.example/simgate", stderr)
	configPath := fs.String("c", "", "configuration file (its database.path and database.synchronous are used)")
	dbPath := fs.String("db", "", "database file, instead of the one in the configuration")
	from := fs.String("from", "", "copy this SQLite database, sqlite:PATH, into the database of --to, with simgate serve stopped")
	to := fs.String("to", "", "the empty PostgreSQL database to copy --from into, postgres:DSN (a postgres:// URL "+
		"or a key=value connection string; give the password in PGPASSWORD)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usageError{"unexpected arguments: " + strings.Join(fs.Args(), " ")}
	}
	if *from != "" || *to != "" {
		if *configPath != "" || *dbPath != "" {
			return usageError{"--from and --to take no -c or --db"}
		}
		return copyToPostgres(ctx, *from, *to, stdout)
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

// copyToPostgres copies the SQLite database of from (sqlite:PATH) into the
// empty PostgreSQL database of to (postgres:DSN), each brought to this
// build's schema first, and prints the rows of each table.
func copyToPostgres(ctx context.Context, from, to string, stdout io.Writer) error {
	path, ok := strings.CutPrefix(from, "sqlite:")
	if !ok || path == "" {
		return usageError{"--from must be sqlite:PATH, got " + from}
	}
	dsn, ok := postgresDSN(to)
	if !ok {
		return usageError{"--to must be postgres:DSN, such as postgres:postgres://simgate@db.example/simgate"}
	}
	// store.Open would make a new, empty database where none is.
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("cannot copy: %w", err)
	}
	sq, err := store.Open(ctx, path, store.Options{})
	if errors.Is(err, store.ErrInUse) {
		return fmt.Errorf("cannot copy %s: %w (another process holds it): stop simgate serve first, the copy is made with the daemon stopped",
			path, store.ErrInUse)
	} else if err != nil {
		return fmt.Errorf("cannot copy %s: %w", path, err)
	}
	defer sq.Close()
	if err := printSchema(ctx, stdout, path, sq.Applied(), sq.SchemaVersion); err != nil {
		return err
	}
	pg, err := postgres.Open(ctx, dsn, postgres.Options{})
	if err != nil {
		return err
	}
	defer pg.Close()
	if err := printSchema(ctx, stdout, pg.Name(), pg.Applied(), pg.SchemaVersion); err != nil {
		return err
	}
	counts, err := pg.ImportSQLite(ctx, sq)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "copied %s into %s; rows per table, counted on both sides:\n", path, pg.Name())
	fmt.Fprintf(stdout, "%-24s %10s\n", "table", "rows")
	for _, c := range counts {
		fmt.Fprintf(stdout, "%-24s %10d\n", c.Table, c.Rows)
	}
	return errors.Join(pg.Close(), sq.Close())
}

// printSchema prints the migrations that opening the database name applied
// and the schema version it is at.
func printSchema(ctx context.Context, w io.Writer, name string, applied []store.AppliedMigration,
	version func(context.Context) (int, error)) error {
	for _, m := range applied {
		fmt.Fprintf(w, "%s: applied %s\n", name, m)
	}
	v, err := version(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "%s: at schema version %d\n", name, v)
	return nil
}

// postgresDSN returns the DSN of a --to postgres:DSN, and whether it is one.
// A postgres:// or postgresql:// URL is taken whole, with or without the
// postgres: in front.
func postgresDSN(to string) (string, bool) {
	if strings.HasPrefix(to, "postgres://") || strings.HasPrefix(to, "postgresql://") {
		return to, true
	}
	dsn, ok := strings.CutPrefix(to, "postgres:")
	return dsn, ok && dsn != ""
}
