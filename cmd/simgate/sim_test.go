package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.bug.st/serial"
)

// syncBuffer is a bytes.Buffer safe for one writer and one reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestSimCommand(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "sim.yaml")
	spec := "dir: " + filepath.Join(dir, "dev") + "\nlisten: \"\"\nmodems:\n" +
		"  - name: usb0\n    imei: \"866758042175926\"\n    model: EC25\n    no_number: true\n    faults:\n      signal: 9\n"
	if err := os.WriteFile(file, []byte(spec), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb syncBuffer
	done := make(chan error, 1)
	go func() { done <- runSim(ctx, []string{"-c", file}, &out, &errb) }()

	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "running") {
		if time.Now().After(deadline) {
			t.Fatalf("sim did not start; stdout %q stderr %q", out.String(), errb.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	path := filepath.Join(dir, "dev", "usb0")
	if !strings.Contains(out.String(), path) || !strings.Contains(out.String(), "866758042175926") {
		t.Fatalf("stdout %q lacks the device path or IMEI", out.String())
	}

	port, err := serial.Open(path, &serial.Mode{BaudRate: 115200})
	if err != nil {
		t.Fatal(err)
	}
	if err := port.SetReadTimeout(100 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if _, err := port.Write([]byte("ATE0;+CGSN;+CSQ;+CNUM\r")); err != nil {
		t.Fatal(err)
	}
	var got []byte
	buf := make([]byte, 256)
	for !bytes.Contains(got, []byte("OK")) && time.Now().Before(deadline) {
		n, _ := port.Read(buf)
		got = append(got, buf[:n]...)
	}
	port.Close()
	if !bytes.Contains(got, []byte("866758042175926")) || !bytes.Contains(got, []byte("+CSQ: 9,")) || bytes.Contains(got, []byte("+CNUM:")) {
		t.Fatalf("modem answered %q, want its IMEI, the configured signal and no number", got)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("sim exited with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("sim did not stop")
	}
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Fatalf("device link left behind after stop: %v", err)
	}
}

func TestSimCommandBadFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "sim.yaml")
	if err := os.WriteFile(file, []byte("modems:\n  - name: a\n    faults:\n      report: lost\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errs := runCLI(t, "sim", "-c", file, "--listen", "")
	if code == 0 || !strings.Contains(errs, "modems[0].faults.report") {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	if err := os.WriteFile(file, []byte("modems:\n  - nmae: a\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errs = runCLI(t, "sim", "-c", file)
	if code == 0 || !strings.Contains(errs, "sim.yaml:2: modems[0].nmae: unknown key") {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
}

func TestSimCommandProfile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "sim.yaml")
	spec := "dir: " + filepath.Join(dir, "dev") + "\nlisten: \"\"\nmodems:\n" +
		"  - name: usb0\n    profile: huawei-e1752\n  - name: usb1\n"
	if err := os.WriteFile(file, []byte(spec), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb syncBuffer
	done := make(chan error, 1)
	go func() { done <- runSim(ctx, []string{"-c", file, "--profile", "sim800"}, &out, &errb) }()

	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "running") {
		if time.Now().After(deadline) {
			t.Fatalf("sim did not start; stdout %q stderr %q", out.String(), errb.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(out.String(), "profile huawei-e1752") || !strings.Contains(out.String(), "profile sim800") {
		t.Fatalf("stdout %q lacks the profiles", out.String())
	}
	for _, tc := range []struct{ dev, want string }{
		{"usb0", "\r\nhuawei\r\n\r\nCOMMAND NOT SUPPORT\r\n"}, // the file's profile
		{"usb1", "\r\nSIMCOM_Ltd\r\n\r\nERROR\r\n"},           // --profile
	} {
		port, err := serial.Open(filepath.Join(dir, "dev", tc.dev), &serial.Mode{BaudRate: 115200})
		if err != nil {
			t.Fatal(err)
		}
		if err := port.SetReadTimeout(100 * time.Millisecond); err != nil {
			t.Fatal(err)
		}
		if _, err := port.Write([]byte("ATE0\rAT+CGMI;+CEREG?\r")); err != nil {
			t.Fatal(err)
		}
		var got []byte
		buf := make([]byte, 256)
		for !bytes.Contains(got, []byte(tc.want)) && time.Now().Before(deadline) {
			n, _ := port.Read(buf)
			got = append(got, buf[:n]...)
		}
		port.Close()
		if !bytes.Contains(got, []byte(tc.want)) {
			t.Fatalf("%s answered %q, want %q", tc.dev, got, tc.want)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("sim exited with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("sim did not stop")
	}
}

func TestSimCommandBadProfile(t *testing.T) {
	code, _, errs := runCLI(t, "sim", "--profile", "nokia-n79", "--listen", "")
	if code != 2 || !strings.Contains(errs, `unknown profile "nokia-n79"`) || !strings.Contains(errs, "huawei-e1752, quectel-ec25, sim800, wavecom") {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	file := filepath.Join(t.TempDir(), "sim.yaml")
	if err := os.WriteFile(file, []byte("modems:\n  - name: a\n    profile: e1752\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errs = runCLI(t, "sim", "-c", file, "--listen", "")
	if code == 0 || !strings.Contains(errs, `modems[0].profile: unknown profile "e1752"`) {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
}
