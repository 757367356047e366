package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/simgate/simgate"
	"github.com/simgate/simgate/api"
	"github.com/simgate/simgate/store"
	"github.com/simgate/simgate/store/postgres"
)

func runAPIKey(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("apikey", "create|list|revoke [flags]",
		`simgate apikey create -c /etc/simgate/simgate.yaml --name shop --scopes verify
  simgate apikey create -c /etc/simgate/simgate.yaml --name shop --scopes verify --services VA...
  simgate apikey create -c /etc/simgate/simgate.yaml --name shop --scopes verify --twilio
  simgate apikey create -c /etc/simgate/simgate.yaml --name shop --scopes verify --twilio=api-key
  simgate apikey list -c /etc/simgate/simgate.yaml
  simgate apikey revoke -c /etc/simgate/simgate.yaml key_...`, stderr)
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		if err := parseFlags(fs, args); err != nil {
			return err
		}
		fs.Usage()
		return usageError{"want a subcommand: create, list or revoke"}
	}
	sub, args := args[0], args[1:]
	fs = newFlagSet("apikey "+sub, "[flags]", "", stderr)
	configPath := fs.String("c", "", "configuration file (for database.path)")
	dbPath := fs.String("db", "", "database file, instead of the one in the configuration")
	var name, scopes, services *string
	var twilio twilioFlag
	switch sub {
	case "create":
		fs.Var(&twilio, "twilio", "make credentials that Twilio's clients take: printed as TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN, "+
			"or with --twilio=api-key as TWILIO_API_KEY and TWILIO_API_SECRET (with TWILIO_ACCOUNT_SID)")
		name = fs.String("name", "", "a name for the key, e.g. the application that uses it")
		scopes = fs.String("scopes", "", "comma-separated: verify, send, read, admin")
		services = fs.String("services", "", "comma-separated service ids (see simgate services list) the key is limited to; "+
			"default: every service. Only verify and send keys may be limited")
	case "list", "revoke":
	default:
		return usageError{fmt.Sprintf("unknown subcommand %q: want create, list or revoke", sub)}
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	db, _, err := openAdmin(ctx, *configPath, *dbPath)
	if err != nil {
		return err
	}
	defer db.Close()

	switch sub {
	case "create":
		if *name == "" {
			return usageError{"--name is required"}
		}
		sc, err := simgate.ParseScopes(*scopes)
		if err != nil {
			return usageError{"--scopes: " + err.Error()}
		}
		var key string
		var k *simgate.APIKey
		var cred api.TwilioCredential
		if twilio != "" {
			cred, k, err = api.NewTwilioKey(*name, sc, twilio == twilioAPIKey, time.Now())
		} else {
			key, k, err = api.NewAPIKey(*name, sc)
		}
		if err != nil {
			return err
		}
		if *services != "" {
			for _, id := range strings.Split(*services, ",") {
				k.Services = append(k.Services, strings.TrimSpace(id))
			}
			if _, err := k.StoredServices(); err != nil {
				return usageError{"--services: " + simgate.ErrorMessage(err)}
			}
		}
		if err := db.CreateAPIKey(ctx, k); err != nil {
			return err
		}
		if twilio != "" {
			// NAME=value lines: a file for systemd's EnvironmentFile= or
			// docker's --env-file, or a shell's export.
			fmt.Fprintln(stdout, strings.Join(cred.Env(), "\n"))
		} else {
			fmt.Fprintf(stdout, "%s\n", key)
		}
		limit := "every service"
		if len(k.Services) > 0 {
			limit = "the services " + strings.Join(k.Services, ", ")
		}
		fmt.Fprintf(stderr, "created %s (%s) with scopes %s, for %s; the key above is shown only now: store it safely\n",
			k.ID, k.Name, *scopes, limit)
		if twilio != "" {
			fmt.Fprintf(stderr, "point the Twilio client's Verify requests at this server (docs/TWILIO.md); the default service is VERIFY_SERVICE_SID=%s\n",
				simgate.DefaultServiceID)
		}
	case "list":
		keys, err := db.ListAPIKeys(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tPREFIX\tSCOPES\tSERVICES\tCREATED\tLAST USED\tREVOKED")
		for _, k := range keys {
			var sc []string
			for _, s := range k.Scopes {
				sc = append(sc, string(s))
			}
			services := "all"
			if len(k.Services) > 0 {
				services = strings.Join(k.Services, ",")
			}
			fmt.Fprintf(tw, "%s\t%s\t%s…\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Name, k.Prefix, strings.Join(sc, ","), services,
				when(k.CreatedAt), when(k.LastUsedAt), when(k.RevokedAt))
		}
		return tw.Flush()
	case "revoke":
		if fs.NArg() != 1 {
			return usageError{"want the ID of the key to revoke (see simgate apikey list)"}
		}
		if err := db.RevokeAPIKey(ctx, fs.Arg(0)); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "revoked %s; it is refused from the next request on\n", fs.Arg(0))
	}
	return db.Close()
}

func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04")
}

// migrated is a database that simgate migrate opened.
type migrated interface {
	Applied() []store.AppliedMigration
	SchemaVersion(ctx context.Context) (int, error)
	Close() error
}

// openStore opens (and migrates) the database named by a configuration file
// or a path, and returns it with a name to show; create makes a new SQLite
// database where a missing one existed before (simgate migrate).
func openStore(ctx context.Context, configPath, dbPath string, create bool) (migrated, string, error) {
	path, cfg, err := databaseFor(configPath, dbPath)
	if err != nil {
		return nil, "", err
	}
	if cfg.Database.Driver == driverPostgres {
		db, err := postgres.Open(ctx, cfg.Database.DSN, postgres.Options{})
		if err != nil {
			return nil, "", err
		}
		return db, db.Name(), nil
	}
	db, err := store.Open(ctx, path, store.Options{Synchronous: cfg.Database.Synchronous, Create: create})
	if err != nil {
		return nil, "", err
	}
	return db, db.Path(), nil
}

// databaseFor returns the database path named by a configuration file or by
// dbPath (which wins), with the configuration (the default one without a
// file).
func databaseFor(configPath, dbPath string) (string, *Config, error) {
	cfg := DefaultConfig()
	if configPath != "" {
		var err error
		if cfg, err = LoadConfig(configPath); err != nil {
			return "", nil, err
		}
	} else if dbPath == "" {
		return "", nil, usageError{"give -c FILE or --db PATH"}
	}
	if dbPath != "" {
		cfg.Database.Driver, cfg.Database.Path = driverSQLite, dbPath
	}
	return cfg.Database.Path, cfg, nil
}

// twilioFlag is --twilio: "" when not given, twilioAccount for a bare
// --twilio, or the form given with --twilio=FORM.
type twilioFlag string

const (
	twilioAccount = "account" // an account SID and auth token
	twilioAPIKey  = "api-key" // an API key SID and secret
)

func (f *twilioFlag) String() string { return string(*f) }

// IsBoolFlag lets --twilio stand alone (the flag package sets "true").
func (f *twilioFlag) IsBoolFlag() bool { return true }

func (f *twilioFlag) Set(v string) error {
	switch v {
	case "true", twilioAccount:
		*f = twilioAccount
	case twilioAPIKey:
		*f = twilioAPIKey
	case "false":
		*f = ""
	default:
		return fmt.Errorf("want --twilio, --twilio=account or --twilio=api-key, not %q", v)
	}
	return nil
}
