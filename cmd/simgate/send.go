package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/simgate/simgate"
	"github.com/simgate/simgate/modem"
)

func runSend(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("send", "--to NUMBER --text TEXT [--api URL | --device PATH]",
		`SIMGATE_API_KEY=sg_... simgate send --to +4917012345678 --text "hello"
  simgate send --device /dev/ttyUSB2 --pin 1234 --to +4917012345678 --text "hardware check" --wait-report 2m`, stderr)
	to := fs.String("to", "", "recipient in E.164, e.g. +4917012345678")
	text := fs.String("text", "", "message text")
	api := fs.String("api", "http://127.0.0.1:8080", "URL of a running simgate daemon")
	priority := fs.String("priority", "normal", "low, normal or high (through the daemon)")
	device := fs.String("device", "", "send straight from this serial device instead of through the daemon")
	pin := fs.String("pin", os.Getenv("SIMGATE_PIN"), "SIM PIN for --device (default $SIMGATE_PIN)")
	waitReport := fs.Duration("wait-report", 0, "with --device: wait this long for the status report")
	timeout := fs.Duration("timeout", 2*time.Minute, "give up after this long")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *to == "" || *text == "" {
		return usageError{"--to and --text are required"}
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	if *device != "" {
		return sendOnDevice(ctx, *device, *pin, *to, *text, *waitReport, stdout, stderr)
	}
	key := os.Getenv("SIMGATE_API_KEY")
	if key == "" {
		return usageError{"set SIMGATE_API_KEY to an API key with the send scope (simgate apikey create)"}
	}
	return sendThroughAPI(ctx, *api, key, *to, *text, *priority, stdout)
}

// sendThroughAPI posts the message to a running daemon and prints its answer.
func sendThroughAPI(ctx context.Context, base, key, to, text, priority string, stdout io.Writer) error {
	body, err := json.Marshal(map[string]string{"to": to, "text": text, "priority": priority})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, "POST", strings.TrimRight(base, "/")+"/v1/messages", bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("bad --api URL: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach simgate at %s: %w", base, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("cannot read the answer: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		var p struct{ Title, Detail, Code string }
		if json.Unmarshal(out, &p) == nil && p.Detail != "" {
			return fmt.Errorf("%s (%s, HTTP %d)", p.Detail, p.Code, resp.StatusCode)
		}
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(out))
	}
	_, err = stdout.Write(out)
	return err
}

// sendOnDevice drives one modem directly: a hardware check that needs no
// daemon, database or configuration file.
func sendOnDevice(ctx context.Context, device, pin, to, text string, waitReport time.Duration, stdout, stderr io.Writer) error {
	reports := make(chan *simgate.StatusReport, 16)
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	m, err := modem.Open(ctx, modem.Config{Name: "cli", Device: device, PIN: pin}, modem.Options{
		Logger: logger,
		Subscriber: modem.SubscriberFunc(func(ctx context.Context, ev modem.Event) error {
			if ev.Kind == modem.EventReport {
				select {
				case reports <- ev.Report:
				default:
				}
			}
			return nil
		}),
	})
	if err != nil {
		return err
	}
	defer m.Close()
	id := m.Identity()
	fmt.Fprintf(stdout, "modem %s %s, IMEI %s, ICCID %s\n", id.Manufacturer, id.Model, id.IMEI, id.ICCID)
	mrs, err := m.Send(ctx, to, text)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "sent in %d part(s), message reference(s) %v\n", len(mrs), mrs)
	if waitReport <= 0 {
		return m.Close()
	}
	pending := map[int]bool{}
	for _, mr := range mrs {
		pending[mr] = true
	}
	timer := time.NewTimer(waitReport)
	defer timer.Stop()
	for len(pending) > 0 {
		select {
		case r := <-reports:
			if !pending[r.MR] {
				continue
			}
			outcome := map[simgate.ReportOutcome]string{
				simgate.ReportDelivered: "delivered", simgate.ReportPending: "pending (SMSC still trying)", simgate.ReportFailed: "failed",
			}[simgate.ClassifyTPST(r.TPST)]
			fmt.Fprintf(stdout, "status report for %d: TP-ST 0x%02X, %s\n", r.MR, r.TPST, outcome)
			if simgate.ClassifyTPST(r.TPST) != simgate.ReportPending {
				delete(pending, r.MR)
			}
		case <-timer.C:
			return fmt.Errorf("no final status report within %s for %v", waitReport, keys(pending))
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return m.Close()
}

func keys(m map[int]bool) []int {
	var out []int
	for k := range m {
		out = append(out, k)
	}
	return out
}
