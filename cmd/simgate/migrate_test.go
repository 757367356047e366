package main

import (
	"context"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/simgate/simgate/store"
	"github.com/simgate/simgate/store/postgres/pgtest"
)

// simgate migrate --from sqlite:PATH --to postgres:DSN moves a gateway that
// ran on SQLite to PostgreSQL: after the copy, the gateway started on
// PostgreSQL with the same configuration (but database.driver) knows the
// client's API key, the delivered message and the pending verification,
// whose code approves it, and sends new messages. A second copy into the
// same database is refused.
func TestMigrateSQLiteToPostgres(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	r := newAppRig(t, 1, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	id := r.send("+4915123456789", "hello from SQLite")
	waitFor(t, 20*time.Second, "the message delivered", func() bool { return r.messageStatus(id) == "delivered" })
	vID, code := r.startVerification(ctx, "+4917612345601")
	r.close()

	code1, out, errs := runCLI(t, "migrate", "--from", "sqlite:"+r.cfg.Database.Path, "--to", "postgres:"+dsn)
	if code1 != 0 {
		t.Fatalf("migrate: exit %d, stdout %q, stderr %q", code1, out, errs)
	}
	for _, want := range []string{"applied 0001_init", "copied " + r.cfg.Database.Path, "table "} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout %q lacks %q", out, want)
		}
	}
	for _, row := range []string{`api_keys +2`, `messages +2`, `verifications +1`, `message_parts +2`} {
		if !regexp.MustCompile(`(?m)^` + row + `$`).MatchString(out) {
			t.Errorf("stdout lacks a line %q:\n%s", row, out)
		}
	}
	if strings.Contains(out, "sg_") {
		t.Fatalf("stdout shows an API key:\n%s", out)
	}

	r.cfg.Database.Driver, r.cfg.Database.DSN = driverPostgres, dsn
	r.open()
	if status, body := r.do("GET", "/v1/messages/"+id, r.sender, nil); status != http.StatusOK ||
		!strings.Contains(string(body), `"status":"delivered"`) {
		t.Fatalf("the message on PostgreSQL: %d %s", status, body)
	}
	if status, body := r.do("POST", "/v1/verifications/check", r.sender, map[string]any{"id": vID, "code": code}); status != http.StatusOK ||
		!strings.Contains(string(body), `"status":"approved"`) {
		t.Fatalf("check on PostgreSQL: %d %s", status, body)
	}
	next := r.send("+4915123456789", "hello from PostgreSQL")
	waitFor(t, 20*time.Second, "the new message delivered", func() bool { return r.messageStatus(next) == "delivered" })
	r.close()

	code1, _, errs = runCLI(t, "migrate", "--from", "sqlite:"+r.cfg.Database.Path, "--to", "postgres:"+dsn)
	if code1 != 1 || !strings.Contains(errs, "holds simgate data already") || !strings.Contains(errs, "api_keys") {
		t.Fatalf("a second copy: exit %d, stderr %q; want a refusal naming the tables that hold rows", code1, errs)
	}
}

// migrate --from and --to refuse what they cannot copy before they change
// anything: a wrong form, a missing SQLite file (it would otherwise be made
// empty), flags of the other form.
func TestMigrateCopyRefusals(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--from", "sqlite:" + filepath.Join(dir, "simgate.db")}, 2, "--to must be postgres:DSN"},
		{[]string{"--to", "postgres:host=db.example"}, 2, "--from must be sqlite:PATH"},
		{[]string{"--from", filepath.Join(dir, "simgate.db"), "--to", "postgres:host=db.example"}, 2, "--from must be sqlite:PATH"},
		{[]string{"--from", "sqlite:x.db", "--to", "mysql://db.example"}, 2, "--to must be postgres:DSN"},
		{[]string{"--db", "x.db", "--from", "sqlite:x.db", "--to", "postgres:host=db.example"}, 2, "take no -c or --db"},
		{[]string{"--from", "sqlite:" + filepath.Join(dir, "gone.db"), "--to", "postgres:host=db.example"}, 1, "no such file"},
	} {
		code, _, errs := runCLI(t, append([]string{"migrate"}, c.args...)...)
		if code != c.code || !strings.Contains(errs, c.want) {
			t.Errorf("migrate %s: exit %d, stderr %q; want %d and %q", strings.Join(c.args, " "), code, errs, c.code, c.want)
		}
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "*")); len(m) != 0 {
		t.Fatalf("the refused copies left %v", m)
	}
}

// The copy of a SQLite file that another process holds (simgate serve) is
// refused, saying to stop the daemon: the real binary is run while this
// test holds the file, as a daemon would.
func TestMigrateCopyRefusesAFileInUse(t *testing.T) {
	path := filepath.Join(t.TempDir(), "simgate.db")
	db, err := store.Open(context.Background(), path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, simgateBinary(t), "migrate", "--from", "sqlite:"+path,
		"--to", "postgres:host=127.0.0.1 port=1 dbname=none").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "stop simgate serve first") {
		t.Fatalf("migrate of a file in use: %v, %s", err, out)
	}
}
