package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve", "-c FILE", "simgate serve -c /etc/simgate/simgate.yaml", stderr)
	configPath := fs.String("c", "/etc/simgate/simgate.yaml", "configuration file")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	cfg, err := LoadConfig(*configPath)
	if err != nil {
		return err
	}
	logger := newLogger(cfg.Log, stderr)

	// SIGHUP reloads; SIGTERM and SIGINT end ctx (main).
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	app := &App{Config: cfg, Logger: logger}
	if err := app.Open(ctx); err != nil {
		app.Close()
		return err
	}
	logger.Info("simgate is serving", "api", app.API.Addr().String(), "modems", len(cfg.Modems), "ready", app.Pool.Ready())
	// READY=1 only now: the store is open, the API listens, the modems were
	// probed. Outside systemd these calls do nothing.
	daemon.SdNotify(false, daemon.SdNotifyReady)

	watchdog, _ := daemon.SdWatchdogEnabled(false)
	var tick <-chan time.Time
	if watchdog > 0 {
		t := time.NewTicker(watchdog / 3)
		defer t.Stop()
		tick = t.C
	}

	for {
		select {
		case <-ctx.Done():
			logger.Info("shutting down")
			daemon.SdNotify(false, daemon.SdNotifyStopping)
			return app.Close()
		case <-hup:
			daemon.SdNotify(false, daemon.SdNotifyReloading)
			if next, err := LoadConfig(*configPath); err != nil {
				logger.Error("cannot reload the configuration; keeping the running one", "error", err)
			} else if err := app.Reload(ctx, next); err != nil {
				logger.Error("reload incomplete", "error", err)
			} else {
				logger.Info("configuration reloaded", "modems", len(next.Modems))
			}
			daemon.SdNotify(false, daemon.SdNotifyReady)
		case <-tick:
			// Ping the watchdog only while the store and the dispatcher
			// work: a wedged daemon gets restarted instead of looking alive.
			hctx, cancel := context.WithTimeout(ctx, watchdog/3)
			err := app.Healthy(hctx)
			cancel()
			if err != nil {
				logger.Error("unhealthy; not pinging the watchdog", "error", err)
				continue
			}
			daemon.SdNotify(false, daemon.SdNotifyWatchdog)
		}
	}
}
