package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/simgate/simgate/store/postgres/pgtest"
)

// The gateway on PostgreSQL (database.driver: postgres), over virtual
// modems: a message is sent and delivered, and a verification's code is
// sent, received by the handset and approved. simgate migrate and simgate
// apikey work on the same database, and simgate backup says to use pg_dump.
func TestAppOnPostgres(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	cfgFile := filepath.Join(t.TempDir(), "simgate.yaml")
	if err := os.WriteFile(cfgFile, []byte("database:\n  driver: postgres\n  dsn: "+dsn+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errs := runCLI(t, "migrate", "-c", cfgFile); code != 0 || !strings.Contains(out, "now at schema version 2") {
		t.Fatalf("migrate: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	if code, _, errs := runCLI(t, "apikey", "create", "-c", cfgFile, "--name", "cli", "--scopes", "read"); code != 0 {
		t.Fatalf("apikey create: exit %d, stderr %q", code, errs)
	}
	if code, _, errs := runCLI(t, "backup", "-c", cfgFile, t.TempDir()+"/copy"); code != 1 || !strings.Contains(errs, "pg_dump") {
		t.Fatalf("backup: exit %d, stderr %q; want a refusal naming pg_dump", code, errs)
	}

	r := newAppRig(t, 1, func(c *Config) {
		c.Database.Driver, c.Database.DSN = driverPostgres, dsn
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	id := r.send("+4915123456789", "hello from PostgreSQL")
	waitFor(t, 20*time.Second, "the message delivered", func() bool {
		status, body := r.do("GET", "/v1/messages/"+id, r.sender, nil)
		return status == http.StatusOK && strings.Contains(string(body), `"status":"delivered"`)
	})

	status, body := r.do("POST", "/v1/verifications", r.sender, map[string]any{"to": "+4917612345601"})
	if status != http.StatusCreated {
		t.Fatalf("POST /v1/verifications: %d %s", status, body)
	}
	var v struct{ ID string }
	json.Unmarshal(body, &v)
	inbox, err := r.net.WaitInbox(ctx, "+4917612345601", 1)
	if err != nil {
		t.Fatal(err)
	}
	code := codeRE.FindString(inbox[0].Text)
	if status, body := r.do("POST", "/v1/verifications/check", r.sender, map[string]any{"id": v.ID, "code": code}); status != http.StatusOK ||
		!strings.Contains(string(body), `"status":"approved"`) {
		t.Fatalf("check: %d %s", status, body)
	}
	if _, err := os.Stat(controlSocketPath(r.cfg.Database.Path)); err == nil {
		t.Fatal("a control socket for a PostgreSQL database")
	}
}
