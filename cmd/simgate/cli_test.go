package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// simgate runs the command line in-process, as main does, and returns the
// exit code and both outputs.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestCheckConfig(t *testing.T) {
	if code, out, errs := runCLI(t, "check-config", "../../configs/simgate.yaml"); code != 0 || !strings.Contains(out, "ok") {
		t.Fatalf("check-config on the example: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("http:\n  listen: 127.0.0.1:8080\n  read_timout: 5s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errs := runCLI(t, "check-config", bad)
	if code == 0 {
		t.Fatal("check-config on a broken file exited 0")
	}
	for _, want := range []string{"bad.yaml:3:", "http.read_timout", "unknown key"} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr %q does not contain %q", errs, want)
		}
	}
}

func TestEveryCommandHasHelp(t *testing.T) {
	for _, c := range commands() {
		t.Run(c.name, func(t *testing.T) {
			code, _, errs := runCLI(t, c.name, "--help")
			if code != 0 {
				t.Fatalf("exit %d, want 0", code)
			}
			if !strings.Contains(errs, "Usage: simgate "+c.name) || !strings.Contains(errs, "Example:") {
				t.Fatalf("help lacks usage or example:\n%s", errs)
			}
		})
	}
}

func TestUnknownCommandAndFlag(t *testing.T) {
	if code, _, _ := runCLI(t, "frobnicate"); code != 2 {
		t.Fatalf("unknown command: exit %d, want 2", code)
	}
	if code, _, _ := runCLI(t, "version", "--frob"); code != 2 {
		t.Fatalf("unknown flag: exit %d, want 2", code)
	}
}

func TestMigrate(t *testing.T) {
	db := filepath.Join(t.TempDir(), "sub", "simgate.db")
	code, out, errs := runCLI(t, "migrate", "--db", db)
	if code != 0 || !strings.Contains(out, "applied 0001_init") {
		t.Fatalf("first migrate: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	code, out, _ = runCLI(t, "migrate", "--db", db)
	if code != 0 || !strings.Contains(out, "already up to date") {
		t.Fatalf("second migrate: exit %d, stdout %q", code, out)
	}
}

func TestVersion(t *testing.T) {
	if code, out, _ := runCLI(t, "version"); code != 0 || !strings.HasPrefix(out, "simgate ") {
		t.Fatalf("version: exit %d, stdout %q", code, out)
	}
}

func TestAPIKeyCommands(t *testing.T) {
	db := filepath.Join(t.TempDir(), "simgate.db")
	code, key, errs := runCLI(t, "apikey", "create", "--db", db, "--name", "shop", "--scopes", "verify,read")
	if code != 0 || !strings.HasPrefix(key, "sg_") {
		t.Fatalf("create: exit %d, stdout %q, stderr %q", code, key, errs)
	}
	key = strings.TrimSpace(key)
	code, list, _ := runCLI(t, "apikey", "list", "--db", db)
	if code != 0 || !strings.Contains(list, "shop") || !strings.Contains(list, "verify,read") {
		t.Fatalf("list: exit %d:\n%s", code, list)
	}
	if strings.Contains(list, key) || strings.Contains(list, key[len(key)-12:]) {
		t.Fatal("list shows the key")
	}
	id := strings.Fields(strings.Split(list, "\n")[1])[0]
	if code, out, errs := runCLI(t, "apikey", "revoke", "--db", db, id); code != 0 {
		t.Fatalf("revoke: exit %d: %s %s", code, out, errs)
	}
	_, list, _ = runCLI(t, "apikey", "list", "--db", db)
	if f := strings.Fields(strings.Split(list, "\n")[1]); f[len(f)-2] != time.Now().Format("2006-01-02") {
		t.Fatalf("revoked key has no revocation date:\n%s", list)
	}
	if code, _, errs := runCLI(t, "apikey", "create", "--db", db, "--name", "x", "--scopes", "root"); code != 2 || !strings.Contains(errs, "unknown scope") {
		t.Fatalf("bad scope: exit %d, %q", code, errs)
	}
	if code, _, _ := runCLI(t, "apikey", "frob"); code != 2 {
		t.Fatalf("unknown subcommand: exit %d", code)
	}
}
