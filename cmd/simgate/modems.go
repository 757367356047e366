package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/simgate/simgate/modem"
)

func runModems(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "ussd" {
		return runModemsUSSD(ctx, args[1:], stdout, stderr)
	}
	fs := newFlagSet("modems", "probe [DEVICE...] | ussd NAME CODE",
		"simgate modems probe /dev/ttyUSB*   # no DEVICE: /dev/serial/by-id/*, /dev/ttyUSB*, /dev/ttyACM*\n"+
			"  SIMGATE_API_KEY=sg_... simgate modems ussd modem0 '*100#'   # through the running daemon", stderr)
	timeout := fs.Duration("timeout", 30*time.Second, "give up on the whole probe after this long")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 || fs.Arg(0) != "probe" {
		fs.Usage()
		return usageError{"want a subcommand: probe or ussd"}
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	rs, err := modem.Probe(ctx, fs.Args()[1:])
	if err != nil {
		return err
	}
	if len(rs) == 0 {
		fmt.Fprintln(stdout, "no serial ports found; name the device, e.g. simgate modems probe /dev/ttyUSB2")
		return nil
	}
	return modem.WriteProbeTable(stdout, rs)
}

// runModemsUSSD sends a USSD request through the running daemon's API (the
// modem's port belongs to the daemon): POST /v1/modems/NAME/ussd with the
// admin key in SIMGATE_API_KEY, which stays off the command line.
func runModemsUSSD(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("modems ussd", "NAME CODE | NAME --session ID REPLY | NAME --session ID --cancel",
		"SIMGATE_API_KEY=sg_... simgate modems ussd modem0 '*100#'", stderr)
	configPath := fs.String("c", "/etc/simgate/simgate.yaml", "configuration file (its http.listen and TLS settings say where the daemon is)")
	url := fs.String("url", "", "the daemon's API, e.g. https://gw.example:8443 (default: from the configuration)")
	session := fs.String("session", "", "answer, or cancel, the session an earlier answer opened")
	cancel := fs.Bool("cancel", false, "end the session")
	timeout := fs.Duration("timeout", 60*time.Second, "give up after this long")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	want := 2
	if *cancel {
		want = 1
	}
	if fs.NArg() != want {
		fs.Usage()
		return usageError{fmt.Sprintf("want %d arguments, got %d", want, fs.NArg())}
	}
	key := os.Getenv("SIMGATE_API_KEY")
	if key == "" {
		return usageError{"set SIMGATE_API_KEY to an API key with the admin scope"}
	}
	base := *url
	if base == "" {
		cfg, err := LoadConfig(*configPath)
		if err != nil {
			return err
		}
		base = apiURL(cfg)
	}
	body := map[string]any{"code": fs.Arg(1)}
	if *session != "" {
		body = map[string]any{"session": *session, "reply": fs.Arg(1), "cancel": *cancel}
		if *cancel {
			body = map[string]any{"session": *session, "cancel": true}
		}
	}
	b, _ := json.Marshal(body)
	ctx, stop := context.WithTimeout(ctx, *timeout)
	defer stop()
	req, err := http.NewRequestWithContext(ctx, "POST", strings.TrimRight(base, "/")+"/v1/modems/"+fs.Arg(0)+"/ussd", bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach the daemon at %s: %w", base, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("the daemon answered %s: %s", resp.Status, strings.TrimSpace(string(out)))
	}
	var r struct {
		Status, Text, Session string
	}
	if err := json.Unmarshal(out, &r); err != nil {
		return fmt.Errorf("cannot read the daemon's answer %q: %w", out, err)
	}
	fmt.Fprintln(stdout, r.Text)
	fmt.Fprintf(stderr, "status: %s\n", r.Status)
	if r.Session != "" {
		fmt.Fprintf(stderr, "the network waits for a reply: simgate modems ussd %s --session %s REPLY\n", fs.Arg(0), r.Session)
	}
	return nil
}

// apiURL is where the daemon of cfg serves its API, seen from this host.
func apiURL(cfg *Config) string {
	scheme := "http"
	if cfg.HTTP.TLSCert != "" {
		scheme = "https"
	}
	host, port, err := net.SplitHostPort(cfg.HTTP.Listen)
	if err != nil {
		return scheme + "://" + cfg.HTTP.Listen
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}
