package main

import (
	"context"
	"fmt"
	"io"
	"runtime"

	"github.com/simgate/simgate"
)

func runVersion(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("version", "", "simgate version", stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "simgate %s (%s %s/%s)\n", simgate.Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}
