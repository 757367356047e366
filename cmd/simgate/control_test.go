package main

import (
	"context"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/simgate/simgate/store"
)

// get sends an authenticated GET to a running daemon and returns the status.
func get(t *testing.T, base, path, key string) int {
	t.Helper()
	req, err := http.NewRequest("GET", base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// While simgate serve holds the database, simgate apikey and simgate backup
// work through its control socket, and a second daemon on the same file is
// refused instead of sharing it.
func TestControlSocketWhileServing(t *testing.T) {
	r := newRig(t, 1, 0)
	d := r.serve()
	defer d.stop(t, syscall.SIGTERM)

	code, key, errs := runCLI(t, "apikey", "create", "-c", r.config, "--name", "ops", "--scopes", "read")
	if code != 0 {
		t.Fatalf("apikey create while serving: exit %d, stderr %q", code, errs)
	}
	key = strings.TrimSpace(key)
	if got := get(t, d.base, "/v1/modems", key); got != http.StatusOK {
		t.Fatalf("GET /v1/modems with the key made while serving: %d", got)
	}
	code, list, errs := runCLI(t, "apikey", "list", "-c", r.config)
	if code != 0 || !strings.Contains(list, "ops") || !strings.Contains(list, "e2e") {
		t.Fatalf("apikey list while serving: exit %d, stdout %q, stderr %q", code, list, errs)
	}
	var id string
	for _, line := range strings.Split(list, "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[1] == "ops" {
			id = f[0]
		}
	}
	if code, _, errs := runCLI(t, "apikey", "revoke", "-c", r.config, id); code != 0 {
		t.Fatalf("apikey revoke %s while serving: exit %d, stderr %q", id, code, errs)
	}
	if got := get(t, d.base, "/v1/modems", key); got != http.StatusUnauthorized {
		t.Fatalf("GET /v1/modems with the revoked key: %d, want 401", got)
	}
	if code, _, errs := runCLI(t, "apikey", "revoke", "-c", r.config, "key_nosuch"); code != 1 || !strings.Contains(errs, "key_nosuch") {
		t.Fatalf("revoking an unknown key: exit %d, stderr %q", code, errs)
	}

	dest := filepath.Join(t.TempDir(), "copy.db")
	if code, out, errs := runCLI(t, "backup", "-c", r.config, dest); code != 0 || !strings.Contains(out, dest) {
		t.Fatalf("backup while serving: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	if fi, err := os.Stat(dest); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the copy: %v, %v; want mode 0600", fi, err)
	}
	if code, _, errs := runCLI(t, "backup", "-c", r.config, dest); code != 1 || !strings.Contains(errs, "exists") {
		t.Fatalf("backup over an existing file: exit %d, stderr %q", code, errs)
	}
	copyDB, err := store.Open(t.Context(), dest, store.Options{})
	if err != nil {
		t.Fatalf("open the copy: %v", err)
	}
	keys, err := copyDB.ListAPIKeys(t.Context())
	copyDB.Close()
	if err != nil || len(keys) != 2 {
		t.Fatalf("keys in the copy: %d, %v; want the two made before it", len(keys), err)
	}

	second := exec.Command(simgateBinary(t), "serve", "-c", r.config)
	out, err := second.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "held by another process") {
		t.Fatalf("a second serve on the same database: %v\n%s", err, out)
	}
	if got := get(t, d.base, "/readyz", ""); got != http.StatusOK {
		t.Fatalf("the first daemon after the second was refused: /readyz %d", got)
	}
}

// Without a daemon, simgate apikey and simgate backup open the database
// themselves, also where a daemon that died left its socket behind.
func TestControlWithoutDaemon(t *testing.T) {
	r := newRig(t, 1, 0)
	d := r.serve()
	d.stop(t, syscall.SIGKILL)
	if _, err := os.Stat(controlSocketPath(r.dbPath)); err != nil {
		t.Fatalf("the killed daemon left no socket (%v): this test needs one", err)
	}
	if code, _, errs := runCLI(t, "apikey", "list", "-c", r.config); code != 0 {
		t.Fatalf("apikey list after the daemon died: exit %d, stderr %q", code, errs)
	}
	dest := filepath.Join(t.TempDir(), "copy.db")
	if code, _, errs := runCLI(t, "backup", "--db", r.dbPath, dest); code != 0 {
		t.Fatalf("backup without a daemon: exit %d, stderr %q", code, errs)
	}
	// And a new daemon takes the stale socket over.
	d = r.serve()
	defer d.stop(t, syscall.SIGTERM)
	if code, _, errs := runCLI(t, "apikey", "list", "-c", r.config); code != 0 {
		t.Fatalf("apikey list through the restarted daemon: exit %d, stderr %q", code, errs)
	}
}

// A -shm file made immutable under a running daemon used to end it with
// SIGBUS inside SQLite, which maps that file into memory. The daemon keeps
// the WAL index in its own memory, so there is no -shm file to fault on: it
// keeps serving.
func TestImmutableSHMUnderDaemon(t *testing.T) {
	probe := filepath.Join(t.TempDir(), "probe")
	if err := os.WriteFile(probe, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("chattr", "+i", probe).CombinedOutput(); err != nil {
		t.Skipf("cannot make a file immutable here (chattr +i needs root and a file system with the flag): %v %s", err, out)
	}
	exec.Command("chattr", "-i", probe).Run()

	r := newRig(t, 2, 0)
	d := r.serve()
	defer d.stop(t, syscall.SIGTERM)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	r.load(ctx, d.base, 2, 50*time.Millisecond, &counter{}, nil)
	cancel()

	shm := r.dbPath + "-shm"
	if _, err := os.Stat(shm); err == nil {
		if out, err := exec.Command("chattr", "+i", shm).CombinedOutput(); err != nil {
			t.Fatalf("chattr +i %s: %v %s", shm, err, out)
		}
		defer exec.Command("chattr", "-i", shm).Run()
		t.Errorf("the daemon made %s: SQLite maps it into memory", shm)
	} else if !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 2*time.Second)
	accepted := r.load(ctx, d.base, 2, 50*time.Millisecond, &counter{n: 1 << 20}, nil)
	cancel()
	select {
	case err := <-d.done:
		d.done <- err
		t.Fatalf("the daemon died: %v\n%s", err, tail(d.logs.String(), 20))
	default:
	}
	if len(accepted) == 0 {
		t.Fatal("no message accepted after the -shm file was made immutable")
	}
	r.settle(d)
}
