package main

import (
	"context"
	"io"
)

func runMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return notBuilt("migrate", "-c FILE", "simgate migrate -c /etc/simgate/simgate.yaml")(ctx, args, stdout, stderr)
}

func runCheckConfig(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return notBuilt("check-config", "FILE", "simgate check-config /etc/simgate/simgate.yaml")(ctx, args, stdout, stderr)
}
