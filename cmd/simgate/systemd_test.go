package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSystemdUnitVerifies runs systemd-analyze verify on the shipped unit,
// with ExecStart pointing at a freshly built simgate.
func TestSystemdUnitVerifies(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed")
	}
	unit, err := os.ReadFile("../../systemd/simgate.service")
	if err != nil {
		t.Fatal(err)
	}
	bin := simgateBinary(t)
	text := strings.ReplaceAll(string(unit), "/usr/local/bin/simgate", bin)
	path := filepath.Join(t.TempDir(), "simgate.service")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, analyze, "verify", path).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	for _, want := range []string{"Type=notify", "WatchdogSec=", "Restart=on-failure", "SupplementaryGroups=dialout",
		"StateDirectory=simgate", "ConfigurationDirectory=simgate", "DevicePolicy=closed", "DeviceAllow=char-ttyUSB rw",
		"DeviceAllow=char-ttyACM rw", "ProtectSystem=strict", "NoNewPrivileges=yes", "CapabilityBoundingSet=\n",
		"LoadCredential=" + verifySecretCredential + ":/etc/simgate/verify-secret", "SetCredential=" + verifySecretCredential + ":\\n\n"} {
		if !strings.Contains(text, want) {
			t.Errorf("unit lacks %q", want)
		}
	}
}
