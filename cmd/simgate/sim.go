package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/simgate/simgate/modem/sim"
)

// SimFile is the YAML file `simgate sim -c` reads: fixed identities and
// faults make runs reproducible.
type SimFile struct {
	Dir    string          `yaml:"dir"`
	Listen string          `yaml:"listen"`
	Modems []SimModemEntry `yaml:"modems"`
}

// SimModemEntry is one virtual modem in a SimFile. Empty fields get the
// sim's defaults, derived from the modem's position so they stay stable.
type SimModemEntry struct {
	Name   string `yaml:"name"`
	Number string `yaml:"number"`
	// NoNumber makes AT+CNUM answer without the number, as most SIMs do.
	NoNumber      bool           `yaml:"no_number"`
	IMEI          string         `yaml:"imei"`
	IMSI          string         `yaml:"imsi"`
	ICCID         string         `yaml:"iccid"`
	Manufacturer  string         `yaml:"manufacturer"`
	Model         string         `yaml:"model"`
	Revision      string         `yaml:"revision"`
	Operator      string         `yaml:"operator"`
	SMSC          string         `yaml:"smsc"`
	PIN           string         `yaml:"pin"`
	PUK           string         `yaml:"puk"`
	ICCIDCommands []string       `yaml:"iccid_commands"`
	CNMICaps      string         `yaml:"cnmi_caps"`
	Phase2        bool           `yaml:"phase2"`
	SubmitLatency time.Duration  `yaml:"submit_latency"`
	ReportDelay   time.Duration  `yaml:"report_delay"`
	Faults        sim.FaultsJSON `yaml:"faults"`
	// Profile makes the modem a real device (see sim.Profiles) and
	// ChatterEvery sets how often it chatters; both override the flags.
	Profile      string `yaml:"profile"`
	ChatterEvery int    `yaml:"chatter_every"`
}

func runSim(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("sim", "[-n N] [--dir DIR] [--listen ADDR] [--profile NAME] [-c FILE]",
		"simgate sim -n 2 --dir /tmp/simgate-sim   # then: gammu, simgate, or curl http://127.0.0.1:8025/modems", stderr)
	n := fs.Int("n", 2, "number of virtual modems (ignored with -c when the file lists modems)")
	dir := fs.String("dir", "", "directory for the device symlinks (default: a new temporary directory)")
	listen := fs.String("listen", "127.0.0.1:8025", "address of the HTTP control API (loopback only; empty: none)")
	file := fs.String("c", "", "YAML file with the modems' identities and faults")
	latency := fs.Duration("latency", sim.DefaultSubmitLatency, "time from Ctrl-Z to the +CMGS answer")
	reportDelay := fs.Duration("report-delay", sim.DefaultReportDelay, "time from submit to delivery and status report")
	profile := fs.String("profile", "", "make every modem a real device: "+strings.Join(sim.Profiles(), ", ")+" (default: the textbook modem)")
	chatter := fs.Int("chatter-every", 0, "with a profile whose device chatters (^RSSI, +QIND), one such line after every N commands (0: none)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	if err := checkProfile(*profile); err != nil {
		return usageError{"--profile: " + err.Error()}
	}
	if *chatter < 0 {
		return usageError{fmt.Sprintf("--chatter-every must not be negative, got %d", *chatter)}
	}

	spec := SimFile{Dir: *dir, Listen: *listen}
	if *file != "" {
		data, err := os.ReadFile(*file)
		if err != nil {
			return fmt.Errorf("cannot read %s: %w", *file, err)
		}
		if _, err := decodeYAML(*file, data, os.LookupEnv, &spec); err != nil {
			return err
		}
	}
	if len(spec.Modems) == 0 {
		if *n < 1 || *n > 1024 {
			return usageError{fmt.Sprintf("-n must be 1 to 1024, got %d", *n)}
		}
		spec.Modems = make([]SimModemEntry, *n)
	}
	cfgs := make([]sim.Config, len(spec.Modems))
	faults := make([]sim.Faults, len(spec.Modems))
	for i, e := range spec.Modems {
		f, err := e.Faults.Faults()
		if err != nil {
			return fmt.Errorf("modems[%d].faults.%v", i, err)
		}
		faults[i] = f
		if e.Profile == "" {
			e.Profile = *profile
		} else if err := checkProfile(e.Profile); err != nil {
			return fmt.Errorf("modems[%d].profile: %w", i, err)
		}
		if e.ChatterEvery == 0 {
			e.ChatterEvery = *chatter
		} else if e.ChatterEvery < 0 {
			return fmt.Errorf("modems[%d].chatter_every: must not be negative, got %d", i, e.ChatterEvery)
		}
		cfgs[i] = sim.Config{
			Profile: e.Profile, ChatterEvery: e.ChatterEvery,
			Name: e.Name, Number: e.Number, NoNumber: e.NoNumber, IMEI: e.IMEI, IMSI: e.IMSI, ICCID: e.ICCID,
			Manufacturer: e.Manufacturer, Model: e.Model, Revision: e.Revision, Operator: e.Operator,
			SMSC: e.SMSC, PIN: e.PIN, PUK: e.PUK, ICCIDCommands: e.ICCIDCommands, CNMICaps: e.CNMICaps,
			Phase2: e.Phase2, SubmitLatency: orDefault(e.SubmitLatency, *latency), ReportDelay: orDefault(e.ReportDelay, *reportDelay),
		}
	}

	if spec.Dir == "" {
		d, err := os.MkdirTemp("", "simgate-sim-")
		if err != nil {
			return fmt.Errorf("cannot create a directory for the devices: %w", err)
		}
		defer os.RemoveAll(d)
		spec.Dir = d
	} else if err := os.MkdirAll(spec.Dir, 0o755); err != nil {
		return fmt.Errorf("cannot create %s: %w", spec.Dir, err)
	}

	network := sim.NewNetwork()
	defer network.Close()
	mods, err := network.Start(spec.Dir, cfgs...)
	if err != nil {
		return err
	}
	for i, m := range mods {
		m.SetFaults(faults[i])
		c := m.Config()
		fmt.Fprintf(stdout, "%-8s %s  number %s  IMEI %s  ICCID %s", c.Name, m.Path(), c.Number, c.IMEI, c.ICCID)
		if c.Profile != "" {
			fmt.Fprintf(stdout, "  profile %s", c.Profile)
		}
		fmt.Fprintln(stdout)
	}

	var srv *http.Server
	errc := make(chan error, 1)
	if spec.Listen != "" {
		ln, err := net.Listen("tcp", spec.Listen)
		if err != nil {
			return fmt.Errorf("cannot listen for the control API: %w", err)
		}
		srv = &http.Server{Handler: network.Handler(), ReadHeaderTimeout: 5 * time.Second}
		go func() { errc <- srv.Serve(ln) }()
		fmt.Fprintf(stdout, "control API on http://%s/  (try: curl http://%s/modems)\n", ln.Addr(), ln.Addr())
	}
	fmt.Fprintln(stdout, "running; stop with Ctrl-C")

	select {
	case <-ctx.Done():
	case err := <-errc:
		return fmt.Errorf("control API: %w", err)
	}
	if srv != nil {
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	}
	return network.Close()
}

// checkProfile returns an error that lists the known profiles if name is
// not one of them ("" is the textbook modem).
func checkProfile(name string) error {
	if name != "" && !slices.Contains(sim.Profiles(), name) {
		return fmt.Errorf("unknown profile %q; known profiles: %s", name, strings.Join(sim.Profiles(), ", "))
	}
	return nil
}

func orDefault(v, def time.Duration) time.Duration {
	if v == 0 {
		return def
	}
	return v
}
