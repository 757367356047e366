package modem

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/simgate/simgate/modem/sim"
)

// usbModemDir is where fakeUSBTree puts the modem's USB device, under
// <sysfs>/devices: bus 1, behind a hub on port 1, on its port 2.
const usbModemDir = "pci0000:00/0000:00:14.0/usb1/1-1/1-1.2"

// fakeUSBTree builds in a temporary directory what sysfs and /dev show of a
// USB modem whose tty is named tty (the base name of its resolved device
// path): the root hub (bus 1, device 1), a hub (device 2) and the modem
// (device 4) with busnum and devnum files, and under the modem's
// interfaces the tty as usb-serial drivers (option, qcserial: ttyUSB) or
// cdc-acm (ttyACM) link it; <dev>/bus/usb/001/004 is the node. It returns
// the sysfs and dev roots.
func fakeUSBTree(t testing.TB, tty string, acm bool) (sysfs, dev string) {
	t.Helper()
	root := t.TempDir()
	sysfs, dev = filepath.Join(root, "sys"), filepath.Join(root, "dev")
	devices := filepath.Join(sysfs, "devices")
	write := func(path, data string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	link := func(target, path string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, path); err != nil {
			t.Fatal(err)
		}
	}
	for dir, devnum := range map[string]string{
		"pci0000:00/0000:00:14.0/usb1":     "1",
		"pci0000:00/0000:00:14.0/usb1/1-1": "2",
		usbModemDir:                        "4",
	} {
		write(filepath.Join(devices, dir, "busnum"), "1\n")
		write(filepath.Join(devices, dir, "devnum"), devnum+"\n")
	}
	write(filepath.Join(devices, usbModemDir, "idVendor"), "2c7c\n")
	var ttyDir string // the tty's class device
	if acm {
		// .../1-1.2:1.0/tty/ttyACM0, device -> the interface.
		iface := filepath.Join(usbModemDir, "1-1.2:1.0")
		write(filepath.Join(devices, iface, "bInterfaceNumber"), "00\n")
		ttyDir = filepath.Join(devices, iface, "tty", tty)
		link("../../../1-1.2:1.0", filepath.Join(ttyDir, "device"))
	} else {
		// .../1-1.2:1.2/ttyUSB2/tty/ttyUSB2, device -> the usb-serial port.
		iface := filepath.Join(usbModemDir, "1-1.2:1.2")
		write(filepath.Join(devices, iface, "bInterfaceNumber"), "02\n")
		write(filepath.Join(devices, iface, tty, "port_number"), "0\n")
		ttyDir = filepath.Join(devices, iface, tty, "tty", tty)
		link("../../../"+tty, filepath.Join(ttyDir, "device"))
	}
	write(filepath.Join(ttyDir, "dev"), "188:2\n")
	rel, err := filepath.Rel(filepath.Join(sysfs, "class", "tty"), ttyDir)
	if err != nil {
		t.Fatal(err)
	}
	link(rel, filepath.Join(sysfs, "class", "tty", tty))
	write(filepath.Join(dev, "bus", "usb", "001", "004"), "")
	return sysfs, dev
}

func TestUSBDeviceNode(t *testing.T) {
	for _, tc := range []struct {
		name, tty string
		acm       bool
		byID      bool
	}{
		{"usb-serial", "ttyUSB2", false, false},
		{"usb-serial by-id", "ttyUSB2", false, true},
		{"cdc-acm", "ttyACM0", true, false},
		{"cdc-acm by-id", "ttyACM0", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sysfs, dev := fakeUSBTree(t, tc.tty, tc.acm)
			path := filepath.Join(dev, tc.tty)
			if err := os.WriteFile(path, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			if tc.byID {
				byID := filepath.Join(dev, "serial", "by-id", "usb-Quectel_EC25_Modem-if02-port0")
				if err := os.MkdirAll(filepath.Dir(byID), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.Symlink("../../"+tc.tty, byID); err != nil {
					t.Fatal(err)
				}
				path = byID
			}
			node, err := usbDeviceNode(sysfs, dev, path)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := node, filepath.Join(dev, "bus", "usb", "001", "004"); got != want {
				t.Fatalf("node %s, want %s", got, want)
			}
		})
	}
}

func TestUSBDeviceNodeErrors(t *testing.T) {
	for _, tc := range []struct {
		name     string
		setup    func(t *testing.T, sysfs, dev string) string // returns the tty path
		want     string
		notUSB   bool
		notExist bool
	}{
		{
			name:     "no tty",
			setup:    func(t *testing.T, sysfs, dev string) string { return filepath.Join(dev, "ttyUSB9") },
			want:     "ttyUSB9",
			notExist: true,
		},
		{
			name: "tty not in sysfs (a pty)",
			setup: func(t *testing.T, sysfs, dev string) string {
				return mkfile(t, filepath.Join(dev, "pts", "3"))
			},
			want:   filepath.Join("class", "tty", "3", "device") + " missing",
			notUSB: true,
		},
		{
			name: "not on USB (a UART)",
			setup: func(t *testing.T, sysfs, dev string) string {
				uart := filepath.Join(sysfs, "devices", "platform", "serial8250", "tty", "ttyS0")
				mkfile(t, filepath.Join(uart, "dev"))
				mklink(t, "../../../serial8250", filepath.Join(uart, "device"))
				mklink(t, "../../devices/platform/serial8250/tty/ttyS0", filepath.Join(sysfs, "class", "tty", "ttyS0"))
				return mkfile(t, filepath.Join(dev, "ttyS0"))
			},
			want:   "no busnum and devnum files above",
			notUSB: true,
		},
		{
			name: "no devnum",
			setup: func(t *testing.T, sysfs, dev string) string {
				rm(t, filepath.Join(sysfs, "devices", usbModemDir, "devnum"))
				return mkfile(t, filepath.Join(dev, "ttyUSB2"))
			},
			want: filepath.Join(usbModemDir, "devnum") + " missing",
		},
		{
			name: "no busnum",
			setup: func(t *testing.T, sysfs, dev string) string {
				rm(t, filepath.Join(sysfs, "devices", usbModemDir, "busnum"))
				return mkfile(t, filepath.Join(dev, "ttyUSB2"))
			},
			want: filepath.Join(usbModemDir, "busnum") + " missing",
		},
		{
			name: "bad busnum",
			setup: func(t *testing.T, sysfs, dev string) string {
				if err := os.WriteFile(filepath.Join(sysfs, "devices", usbModemDir, "busnum"), []byte("x\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				return mkfile(t, filepath.Join(dev, "ttyUSB2"))
			},
			want: `invalid busnum "x"`,
		},
		{
			name: "no usbfs node",
			setup: func(t *testing.T, sysfs, dev string) string {
				rm(t, filepath.Join(dev, "bus", "usb", "001", "004"))
				return mkfile(t, filepath.Join(dev, "ttyUSB2"))
			},
			want:     filepath.Join("bus", "usb", "001", "004") + " missing",
			notExist: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sysfs, dev := fakeUSBTree(t, "ttyUSB2", false)
			path := tc.setup(t, sysfs, dev)
			node, err := usbDeviceNode(sysfs, dev, path)
			if err == nil {
				t.Fatalf("found %s", node)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not say %q", err, tc.want)
			}
			if got, want := errors.Is(err, errNotUSB), tc.notUSB; got != want {
				t.Fatalf("errors.Is(%v, errNotUSB) = %v, want %v", err, got, want)
			}
			if got, want := errors.Is(err, fs.ErrNotExist), tc.notExist; got != want {
				t.Fatalf("errors.Is(%v, fs.ErrNotExist) = %v, want %v", err, got, want)
			}
		})
	}
}

func mkfile(t *testing.T, path string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func mklink(t *testing.T, target, path string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
}

func rm(t *testing.T, path string) {
	t.Helper()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
}

// fakeUSB records the nodes it was asked to reset; reset, if set, does it.
type fakeUSB struct {
	mu    sync.Mutex
	calls []string
	reset func() error
}

func (f *fakeUSB) Reset(node string) error {
	f.mu.Lock()
	f.calls = append(f.calls, node)
	f.mu.Unlock()
	if f.reset != nil {
		return f.reset()
	}
	return nil
}

func (f *fakeUSB) resets() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func TestUSBResetTTY(t *testing.T) {
	sysfs, dev := fakeUSBTree(t, "ttyUSB2", false)
	path := mkfile(t, filepath.Join(dev, "ttyUSB2"))
	want := filepath.Join(dev, "bus", "usb", "001", "004")

	r := &fakeUSB{}
	node, err := usbResetTTY(r, sysfs, dev, path)
	if err != nil || node != want {
		t.Fatalf("usbResetTTY: %s, %v", node, err)
	}
	if got := r.resets(); len(got) != 1 || got[0] != want {
		t.Fatalf("resets %q, want [%s]", got, want)
	}

	failed := errors.New("EPERM")
	r = &fakeUSB{reset: func() error { return failed }}
	if _, err := usbResetTTY(r, sysfs, dev, path); !errors.Is(err, failed) {
		t.Fatalf("usbResetTTY with a failing reset: %v", err)
	}

	// Nothing is reset when the node cannot be found.
	r = &fakeUSB{}
	if _, err := usbResetTTY(r, sysfs, dev, filepath.Join(dev, "ttyUSB7")); err == nil || len(r.resets()) != 0 {
		t.Fatalf("reset %q, error %v", r.resets(), err)
	}
}

// The kernel's resetter without hardware: the ioctl number, and the errors
// for a node that is missing or not a USB device.
func TestKernelUSBReset(t *testing.T) {
	if got, want := uint(usbdevfsReset), uint(0x5514); got != want {
		t.Fatalf("USBDEVFS_RESET = %#x, want %#x", got, want)
	}
	var r usbResetter = kernelUSB{}
	missing := filepath.Join(t.TempDir(), "004")
	if err := r.Reset(missing); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Fatalf("Reset(%s): %v", missing, err)
	}
	file := mkfile(t, filepath.Join(t.TempDir(), "004"))
	if err := r.Reset(file); err == nil || !strings.Contains(err.Error(), "cannot reset USB device") {
		t.Fatalf("Reset(%s): %v", file, err)
	}
}

func TestResetCounter(t *testing.T) {
	now := time.Date(2024, 3, 9, 22, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }

	r := newResetCounter(0, clock)
	if got, want := r.limit, defaultResetLimit; got != want {
		t.Fatalf("limit %d, want %d", got, want)
	}
	for i := 1; i <= 3; i++ {
		if got := r.add(resetSoft); got != i {
			t.Fatalf("add: %d today, want %d", got, i)
		}
	}
	if bad, why := r.tooMany(); bad {
		t.Fatalf("3 resets are too many: %s", why)
	}
	now = now.Add(time.Hour) // 23:00 UTC
	if got, want := r.add(resetUSB), 4; got != want {
		t.Fatalf("add: %d today, want %d", got, want)
	}
	bad, why := r.tooMany()
	if !bad {
		t.Fatal("4 resets are not too many")
	}
	if want := "needed 4 resets today (UTC), more than 3: 3 soft, 1 usb"; why != want {
		t.Fatalf("reason %q, want %q", why, want)
	}

	// Past midnight UTC the day starts from nothing, whatever the local
	// time zone says (00:30 UTC is still the 9th in New York).
	now = time.Date(2024, 3, 10, 0, 30, 0, 0, time.UTC).In(time.FixedZone("EST", -5*3600))
	if got := r.today(); got != 0 {
		t.Fatalf("%d resets on a new day", got)
	}
	if bad, why := r.tooMany(); bad {
		t.Fatalf("too many on a new day: %s", why)
	}
	if got, want := r.add(resetUSB), 1; got != want {
		t.Fatalf("add: %d today, want %d", got, want)
	}

	// A limit of 1: the second reset of a day is one too many.
	r = newResetCounter(1, clock)
	r.add(resetSoft)
	if bad, _ := r.tooMany(); bad {
		t.Fatal("1 reset is too many with limit 1")
	}
	r.add(resetSoft)
	if bad, why := r.tooMany(); !bad || why != "needed 2 resets today (UTC), more than 1: 2 soft" {
		t.Fatalf("tooMany: %v %q", bad, why)
	}
}

// waitClosed waits for c's port to go away.
func waitClosed(t *testing.T, c *conn) {
	t.Helper()
	select {
	case <-c.closed():
	case <-time.After(20 * time.Second):
		t.Fatal("port did not go away")
	}
}

// stillOpen checks that c's port stays for d.
func stillOpen(t *testing.T, c *conn, d time.Duration) {
	t.Helper()
	select {
	case <-c.closed():
		t.Fatal("port went away")
	case <-time.After(d):
	}
}

// openSim opens and sets up the port of a virtual modem.
func openSim(t *testing.T, ctx context.Context, path string, timeout time.Duration) *conn {
	t.Helper()
	c, err := openConn(path, 0, timeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.close() })
	if err := c.handshake(ctx); err != nil {
		t.Fatal(err)
	}
	return c
}

// backWith waits until the modem m is plugged in at path and checks that
// it answers there with imei.
func backWith(t *testing.T, ctx context.Context, m *sim.Modem, path, imei string) {
	t.Helper()
	eventually(t, "the modem back at "+path, func() bool { return m.Plugged() && m.Path() == path && exists(path) })
	s := probeIdentity(ctx, path, 2*time.Second, false)
	if s.err != nil || s.imei != imei {
		t.Fatalf("at %s: IMEI %q, %v; want %s", path, s.imei, s.err, imei)
	}
}

func TestSoftReset(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cfg     sim.Config
		command string
		gone    bool // the port goes away
	}{
		{"re-enumerates", sim.Config{ResetUnplugs: true}, "", true},
		{"re-enumerates under a new name", sim.Config{ResetUnplugs: true, ResetRename: "ttyUSB5"}, "AT+CFUN=1,1", true},
		{"restarts behind the port", sim.Config{Profile: sim.ProfileSIM800}, "at+cfun=1,1", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testCtx(t)
			tc.cfg.ResetDelay = 100 * time.Millisecond
			_, mods, dir := startSims(t, tc.cfg)
			m := mods[0]
			path, imei := m.Path(), m.Config().IMEI
			c := openSim(t, ctx, path, 2*time.Second)
			if err := c.softReset(ctx, tc.command); err != nil {
				t.Fatal(err)
			}
			if got, want := logHas(m, "AT+CFUN=1,1"), 1; got != want {
				t.Fatalf("AT+CFUN=1,1 sent %d times, want %d", got, want)
			}
			if !tc.gone {
				// The boot lines come on the open port, which answers.
				stillOpen(t, c, 200*time.Millisecond)
				if err := c.handshake(ctx); err != nil {
					t.Fatal(err)
				}
				return
			}
			waitClosed(t, c)
			c.close()
			if tc.cfg.ResetRename != "" {
				path = filepath.Join(dir, tc.cfg.ResetRename)
			}
			backWith(t, ctx, m, path, imei)
		})
	}
}

func TestSoftResetRefused(t *testing.T) {
	ctx := testCtx(t)
	_, mods, _ := startSims(t, sim.Config{ResetUnplugs: true})
	c := openSim(t, ctx, mods[0].Path(), 2*time.Second)
	// A reset command the modem does not know.
	err := c.softReset(ctx, "AT+QPOWD=1")
	if err == nil || !strings.Contains(err.Error(), "cannot reset the modem with AT+QPOWD=1") {
		t.Fatalf("softReset: %v", err)
	}
	stillOpen(t, c, 100*time.Millisecond)

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := c.softReset(cctx, ""); !errors.Is(err, context.Canceled) {
		t.Fatalf("softReset with a cancelled context: %v", err)
	}
}

// A hung modem does not read AT+CFUN=1,1: softReset hears nothing, which
// it cannot tell from a modem that restarted at once, and the port stays.
// The USB reset brings the modem back.
func TestHungModemNeedsUSBReset(t *testing.T) {
	ctx := testCtx(t)
	_, mods, dir := startSims(t, sim.Config{ResetUnplugs: true, ResetDelay: 100 * time.Millisecond, ResetRename: "ttyUSB4"})
	m := mods[0]
	path, imei := m.Path(), m.Config().IMEI
	c := openSim(t, ctx, path, 500*time.Millisecond)
	m.Crash()
	if err := c.softReset(ctx, ""); err != nil {
		t.Fatal(err)
	}
	stillOpen(t, c, 200*time.Millisecond)
	if !m.Plugged() || m.Path() != path {
		t.Fatal("a hung modem restarted")
	}

	// The pty, resolved, is /dev/pts/N: a fake sysfs puts it on USB.
	sysfs, dev := fakeUSBTree(t, filepath.Base(resolve(path)), false)
	r := &fakeUSB{reset: m.USBReset}
	node, err := usbResetTTY(r, sysfs, dev, path)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := node, filepath.Join(dev, "bus", "usb", "001", "004"); got != want {
		t.Fatalf("reset %s, want %s", got, want)
	}
	waitClosed(t, c)
	c.close()
	backWith(t, ctx, m, filepath.Join(dir, "ttyUSB4"), imei)
	if m.Faults().Hung {
		t.Fatal("still hung")
	}
}
