package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/simgate/simgate"
)

// templateFlags collects --template LOCALE=TEXT flags.
type templateFlags map[string]string

func (t templateFlags) String() string { return "" }

func (t templateFlags) Set(s string) error {
	locale, text, ok := strings.Cut(s, "=")
	if !ok || locale == "" {
		return fmt.Errorf("want LOCALE=TEXT, such as de='Dein {app}-Code ist {code}.'")
	}
	if _, dup := t[locale]; dup {
		return fmt.Errorf("locale %s is given twice", locale)
	}
	t[locale] = text
	return nil
}

func runServices(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("services", "create|list [flags]",
		`simgate services create -c /etc/simgate/simgate.yaml --name Shop --code-length 8 --ttl 5m --countries DE,AT
  simgate services list -c /etc/simgate/simgate.yaml`, stderr)
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		if err := parseFlags(fs, args); err != nil {
			return err
		}
		fs.Usage()
		return usageError{"want a subcommand: create or list"}
	}
	sub, args := args[0], args[1:]
	fs = newFlagSet("services "+sub, "[flags]", "", stderr)
	configPath := fs.String("c", "", "configuration file (for database.path and the verify section's bounds)")
	dbPath := fs.String("db", "", "database file, instead of the one in the configuration")
	svc := &simgate.Service{}
	templates := templateFlags{}
	var countries string
	switch sub {
	case "create":
		fs.StringVar(&svc.FriendlyName, "name", "", "the application's name, which its texts show as {app} (required)")
		fs.IntVar(&svc.CodeLength, "code-length", 0, "digits of a code; default: verify.code_length")
		fs.DurationVar(&svc.TTL, "ttl", 0, "how long a code is valid; default: verify.ttl")
		fs.StringVar(&countries, "countries", "", "comma-separated ISO 3166 codes (DE,AT) the service's codes may go to, "+
			"among verify.allowed_countries; default: all of those")
		fs.BoolVar(&svc.CustomCodeAllowed, "custom-codes", false, "let requests give the code (custom_code) instead of having one drawn")
		fs.Var(templates, "template", "LOCALE=TEXT: the text for a locale, with {code}, {app} and {ttl_minutes} (repeat for more); "+
			"other locales: verify.templates")
	case "list":
	default:
		return usageError{fmt.Sprintf("unknown subcommand %q: want create or list", sub)}
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	db, cfg, err := openAdmin(ctx, *configPath, *dbPath)
	if err != nil {
		return err
	}
	defer db.Close()

	switch sub {
	case "create":
		if countries != "" {
			for _, cc := range strings.Split(countries, ",") {
				svc.AllowedCountries = append(svc.AllowedCountries, strings.TrimSpace(cc))
			}
		}
		if len(templates) > 0 {
			svc.Templates = templates
		}
		// Checked against this configuration here, and again by a running
		// daemon against its own (the control socket).
		vo := verifyOptions(cfg.Verify)
		if err := vo.CheckService(svc); err != nil {
			return usageError{simgate.ErrorMessage(err)}
		}
		if err := db.CreateService(ctx, svc); err != nil {
			return err
		}
		fmt.Fprintln(stdout, svc.ID)
		fmt.Fprintf(stderr, "created service %s (%s); limit a key to it with simgate apikey create --services %s\n",
			svc.ID, svc.FriendlyName, svc.ID)
	case "list":
		ss, err := db.ListServices(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tCODE LENGTH\tTTL\tCOUNTRIES\tCUSTOM CODES\tTEMPLATES\tCREATED")
		for _, s := range ss {
			name := s.FriendlyName
			if s.ID == simgate.DefaultServiceID {
				name = "(default: verify.app_name)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, orGateway(name, ""), orGateway(s.CodeLength, 0),
				orGateway(s.TTL, time.Duration(0)), orGateway(strings.Join(s.AllowedCountries, ","), ""),
				map[bool]string{true: "allowed", false: "no"}[s.CustomCodeAllowed],
				orGateway(strings.Join(slices.Sorted(maps.Keys(s.Templates)), ","), ""), when(s.CreatedAt))
		}
		return tw.Flush()
	}
	return db.Close()
}

// orGateway shows a service's setting, or "verify" where it is zero: the
// gateway's setting applies.
func orGateway[T comparable](v, zero T) string {
	if v == zero {
		return "verify"
	}
	return fmt.Sprint(v)
}
