package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/simgate/simgate/modem"
)

func runModems(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("modems", "probe [DEVICE...]",
		"simgate modems probe /dev/ttyUSB*   # no DEVICE: /dev/serial/by-id/*, /dev/ttyUSB*, /dev/ttyACM*", stderr)
	timeout := fs.Duration("timeout", 30*time.Second, "give up on the whole probe after this long")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 || fs.Arg(0) != "probe" {
		fs.Usage()
		return usageError{"want a subcommand: probe"}
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
