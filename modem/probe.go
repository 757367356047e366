package modem

import (
	"context"
	"fmt"
	"io"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/simgate/simgate"
	"github.com/simgate/simgate/modem/internal/charsets"
)

// ProbeResult is what one port answered to Probe.
type ProbeResult struct {
	Device       string
	Identity     simgate.ModemIdentity
	Operator     string
	AccessTech   string
	Registration string
	RSSI         int // +CSQ rssi; 99 unknown
	SignalDBm    int // 0 when unknown
	SignalBars   int
	SIM          string // AT+CPIN? state: READY, SIM PIN, ...
	Err          error  // why the port is not a usable modem
}

// ProbeTimeout bounds each AT command of Probe: a port that is not a modem
// costs a few of these.
const ProbeTimeout = 2 * time.Second

// Probe opens each device (paths or globs; DefaultCandidates when empty),
// asks the modem there what it is and how it is doing, and closes it again.
// It changes nothing on the modem except echo and error format, and never
// enters a PIN. Ports in use by another process are reported as busy.
// Devices are probed concurrently; the results are in device order. The
// error is non-nil only when ctx ended.
func Probe(ctx context.Context, devices []string) ([]ProbeResult, error) {
	charsets.Warm()
	if len(devices) == 0 {
		devices = DefaultCandidates
	}
	paths := expand(devices)
	rs := make([]ProbeResult, len(paths))
	var wg sync.WaitGroup
	for i, p := range paths {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rs[i] = probeOne(ctx, p)
		}()
	}
	wg.Wait()
	return rs, ctx.Err()
}

func probeOne(ctx context.Context, path string) ProbeResult {
	r := ProbeResult{Device: path, RSSI: 99}
	c, err := openConn(path, 0, ProbeTimeout)
	if err != nil {
		r.Err = err
		return r
	}
	defer c.close()
	stop := context.AfterFunc(ctx, func() { c.interrupt() })
	defer stop()
	if err := c.handshake(ctx); err != nil {
		r.Err = fmt.Errorf("no modem answers: %w", err)
		return r
	}
	if st, err := c.cpin(ctx); err == nil {
		r.SIM = st
	} else {
		r.SIM = "error"
	}
	id, err := c.identity(ctx, r.SIM == "READY")
	r.Identity = id
	if err != nil {
		r.Err = err
		return r
	}
	if r.SIM != "READY" {
		// The ICCID can often be read without the PIN.
		r.Identity.ICCID = c.iccid(ctx)
	}
	h, err := c.probeHealth(ctx)
	if err != nil {
		r.Err = err
		return r
	}
	r.Operator, r.AccessTech, r.Registration, r.RSSI = h.Operator, h.AccessTech, h.Registration, h.RSSI
	if dbm, ok := simgate.RSSIToDBm(h.RSSI); ok {
		r.SignalDBm, r.SignalBars = dbm, simgate.SignalBars(h.RSSI)
	}
	return r
}

// WriteProbeTable writes rs as an aligned table: device, manufacturer,
// model, IMEI, ICCID, operator, registration and signal, with the error of
// ports that are not usable modems.
func WriteProbeTable(w io.Writer, rs []ProbeResult) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DEVICE\tMANUFACTURER\tMODEL\tIMEI\tICCID\tOPERATOR\tREGISTRATION\tSIGNAL")
	for _, r := range rs {
		if r.Err != nil && r.Identity.IMEI == "" {
			fmt.Fprintf(tw, "%s\t-\t-\t-\t-\t-\t-\t%s\n", r.Device, r.Err)
			continue
		}
		signal := "unknown"
		if r.SignalDBm != 0 {
			signal = fmt.Sprintf("%d dBm (%d/4)", r.SignalDBm, r.SignalBars)
		}
		reg := dash(r.Registration)
		if r.SIM != "" && r.SIM != "READY" {
			reg = "SIM: " + r.SIM
		}
		if r.AccessTech != "" && r.Registration != "" {
			reg += " (" + r.AccessTech + ")"
		}
		if r.Err != nil {
			signal += "; error: " + r.Err.Error()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Device, dash(r.Identity.Manufacturer), dash(r.Identity.Model),
			dash(r.Identity.IMEI), dash(r.Identity.ICCID), dash(r.Operator), reg, signal)
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
