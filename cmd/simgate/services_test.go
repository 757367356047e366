package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/simgate/simgate"
	"github.com/simgate/simgate/store"
	"github.com/simgate/simgate/store/postgres/pgtest"
)

// servicesCLI runs simgate services and simgate apikey against the
// database of the configuration file cfg, whose gateway sends to DE and AT:
// a service is created with its settings and listed, one the gateway's
// settings refuse is not, and a key is limited to it.
func servicesCLI(t *testing.T, cfg string) {
	code, out, errs := runCLI(t, "services", "create", "-c", cfg, "--name", "Shop", "--code-length", "8", "--ttl", "5m",
		"--countries", "DE", "--custom-codes", "--template", "de=Dein {app}-Code: {code}")
	id := strings.TrimSpace(out)
	if code != 0 || !simgate.IsServiceID(id) || !strings.Contains(errs, "--services "+id) {
		t.Fatalf("services create: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	code, list, errs := runCLI(t, "services", "list", "-c", cfg)
	if code != 0 {
		t.Fatalf("services list: exit %d, stderr %q", code, errs)
	}
	lines := strings.Split(strings.TrimSpace(list), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[1], simgate.DefaultServiceID) || !strings.Contains(lines[1], "verify") {
		t.Fatalf("services list:\n%s\nwant the default service, with the gateway's settings, then Shop", list)
	}
	if f := strings.Fields(lines[2]); len(f) < 7 || f[0] != id || f[1] != "Shop" || f[2] != "8" || f[3] != "5m0s" || f[4] != "DE" ||
		f[5] != "allowed" || f[6] != "de" {
		t.Fatalf("Shop in the list: %q", lines[2])
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--code-length", "4"}, "code_length must be verify.min_code_length (6) to 10 digits, got 4"},
		{[]string{"--countries", "DE,FR"}, "allowed_countries[1] is FR, which the gateway does not send to"},
		{[]string{"--template", "de=Hallo"}, "templates.de must contain {code}"},
		{[]string{"--template", "broken"}, "want LOCALE=TEXT"},
	} {
		args := append([]string{"services", "create", "-c", cfg, "--name", "Refused"}, c.args...)
		if code, _, errs := runCLI(t, args...); code != 2 || !strings.Contains(errs, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", c.args, code, errs, c.want)
		}
	}
	if code, _, errs := runCLI(t, "services", "create", "-c", cfg); code != 2 || !strings.Contains(errs, "friendly_name is required") {
		t.Errorf("without --name: exit %d, stderr %q", code, errs)
	}
	if _, list, _ := runCLI(t, "services", "list", "-c", cfg); strings.Contains(list, "Refused") {
		t.Fatalf("a refused service was stored:\n%s", list)
	}

	code, key, errs := runCLI(t, "apikey", "create", "-c", cfg, "--name", "shop", "--scopes", "verify", "--services", id)
	if code != 0 || !strings.HasPrefix(key, "sg_") || !strings.Contains(errs, "for the services "+id) {
		t.Fatalf("apikey create --services: exit %d, stdout %q, stderr %q", code, key, errs)
	}
	if _, keys, _ := runCLI(t, "apikey", "list", "-c", cfg); !strings.Contains(keys, "verify  "+id) {
		t.Fatalf("apikey list does not show the key's service:\n%s", keys)
	}
	if code, _, errs := runCLI(t, "apikey", "create", "-c", cfg, "--name", "x", "--scopes", "verify,read", "--services", id); code != 2 ||
		!strings.Contains(errs, "only the verify and send scopes") {
		t.Fatalf("a read key limited to a service: exit %d, stderr %q", code, errs)
	}
	if code, _, errs := runCLI(t, "apikey", "create", "-c", cfg, "--name", "x", "--scopes", "verify", "--services", simgate.NewServiceID()); code != 1 ||
		!strings.Contains(errs, "does not exist") {
		t.Fatalf("a key limited to no service: exit %d, stderr %q", code, errs)
	}
}

// writeConfig writes a configuration file with database and verify
// sections and returns its path.
func writeConfig(t *testing.T, database string) string {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "simgate.yaml")
	if err := os.WriteFile(cfg, []byte(database+"verify:\n  allowed_countries: [DE, AT]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestServicesCommands(t *testing.T) {
	servicesCLI(t, writeConfig(t, "database:\n  path: "+filepath.Join(t.TempDir(), "simgate.db")+"\n"))
}

func TestServicesCommandsOnPostgres(t *testing.T) {
	servicesCLI(t, writeConfig(t, "database:\n  driver: postgres\n  dsn: "+pgtest.NewDatabase(t)+"\n"))
}

// While simgate serve holds the SQLite file, simgate services and apikey
// work through its control socket; a key limited to the new service makes
// verifications in it and does not see the default service's.
func TestServicesWhileServing(t *testing.T) {
	r := newRig(t, 1, 0)
	d := r.serve()
	defer d.stop(t, syscall.SIGTERM)

	code, out, errs := runCLI(t, "services", "create", "-c", r.config, "--name", "Shop", "--countries", "DE")
	id := strings.TrimSpace(out)
	if code != 0 || !simgate.IsServiceID(id) {
		t.Fatalf("services create while serving: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	if code, list, errs := runCLI(t, "services", "list", "-c", r.config); code != 0 || !strings.Contains(list, id+"  Shop") {
		t.Fatalf("services list while serving: exit %d, stdout %q, stderr %q", code, list, errs)
	}
	code, key, errs := runCLI(t, "apikey", "create", "-c", r.config, "--name", "shop", "--scopes", "verify", "--services", id)
	if code != 0 {
		t.Fatalf("apikey create while serving: exit %d, stderr %q", code, errs)
	}
	key = strings.TrimSpace(key)

	post := func(key string, body map[string]any) (int, map[string]any) {
		t.Helper()
		b, _ := json.Marshal(body)
		req, err := http.NewRequest("POST", d.base+"/v1/verifications", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	status, v := post(key, map[string]any{"to": "+4915123456789"})
	if status != http.StatusCreated || v["service"] != id {
		t.Fatalf("a verification with the key limited to %s: %d %v", id, status, v)
	}
	status, other := post(r.key, map[string]any{"to": "+4915123456789"})
	if status != http.StatusCreated || other["service"] != simgate.DefaultServiceID || other["id"] == v["id"] {
		t.Fatalf("a verification of the same number with an unlimited key: %d %v", status, other)
	}
	if got := get(t, d.base, "/v1/verifications/"+other["id"].(string), key); got != http.StatusNotFound {
		t.Fatalf("the default service's verification with the key limited to %s: %d, want 404", id, got)
	}
	if got := get(t, d.base, "/v1/verifications/"+v["id"].(string), key); got != http.StatusOK {
		t.Fatalf("its own verification: %d", got)
	}
}

// The control socket holds a service to the daemon's settings, whatever
// the command line checked: the daemon's configuration is the one applied.
func TestControlChecksServices(t *testing.T) {
	path := filepath.Join(t.TempDir(), "simgate.db")
	db, err := store.Open(t.Context(), path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	cfg := DefaultConfig()
	cfg.Verify.AllowedCountries = []string{"DE"}
	ctl, err := openControl(controlSocketPath(path), db, verifyOptions(cfg.Verify).CheckService, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer ctl.close()
	c := newControlClient(controlSocketPath(path))
	defer c.Close()
	err = c.CreateService(t.Context(), &simgate.Service{FriendlyName: "Shop", AllowedCountries: []string{"AT"}})
	if simgate.ErrorCode(err) != simgate.CodeInvalid || !strings.Contains(err.Error(), "allowed_countries[0] is AT") {
		t.Fatalf("a service the daemon's settings refuse: %v, want invalid", err)
	}
	svc := &simgate.Service{ID: simgate.DefaultServiceID, FriendlyName: "Shop", AllowedCountries: []string{"DE"}}
	if err := c.CreateService(t.Context(), svc); err != nil || !simgate.IsServiceID(svc.ID) || svc.ID == simgate.DefaultServiceID || svc.CreatedAt.IsZero() {
		t.Fatalf("CreateService = %+v, %v; want a new id (the one given is not the daemon's to take) and times", svc, err)
	}
	ss, err := c.ListServices(t.Context())
	if err != nil || len(ss) != 2 || ss[1].ID != svc.ID || ss[1].AllowedCountries[0] != "DE" {
		t.Fatalf("ListServices = %+v, %v", ss, err)
	}
}
