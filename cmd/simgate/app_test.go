package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/simgate/simgate"
	"github.com/simgate/simgate/api"
	"github.com/simgate/simgate/modem"
	"github.com/simgate/simgate/modem/sim"
)

// appRig runs the real App in the test process, over virtual modems on real
// pseudo-terminals and a SQLite file in t.TempDir(), with API keys for each
// use. Close and reopen restarts simgate on the same database and modems.
type appRig struct {
	t      *testing.T
	dir    string
	devDir string
	net    *sim.Network
	mods   []*sim.Modem
	cfg    *Config
	app    *App
	base   string
	admin  string // key with every scope
	sender string // key with send, read and verify
	// productionBackoff, when set, replaces the short reconnect backoff of
	// the rig with the modem package's defaults at the next open.
	productionBackoff bool
	// now, when set, is the App's clock from the next open on.
	now simgate.Clock
}

func newAppRig(t *testing.T, modems int, tweak func(*Config)) *appRig {
	t.Helper()
	r := &appRig{t: t, dir: t.TempDir(), net: sim.NewNetwork()}
	t.Cleanup(func() { r.net.Close() })
	r.devDir = filepath.Join(r.dir, "dev")
	if err := os.Mkdir(r.devDir, 0o700); err != nil {
		t.Fatal(err)
	}
	cfgs := make([]sim.Config, modems)
	for i := range cfgs {
		cfgs[i] = sim.Config{Name: fmt.Sprintf("sim%d", i), SubmitLatency: 20 * time.Millisecond, ReportDelay: 50 * time.Millisecond}
	}
	var err error
	if r.mods, err = r.net.Start(r.devDir, cfgs...); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Database.Path = filepath.Join(r.dir, "simgate.db")
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.Queue.SweepInterval = 100 * time.Millisecond
	cfg.Queue.RetryBackoff = 100 * time.Millisecond
	cfg.Pool.ProbeInterval = time.Second
	cfg.Console.Refresh = time.Second
	cfg.Webhooks.MinBackoff = 100 * time.Millisecond
	cfg.Webhooks.MaxBackoff = 400 * time.Millisecond
	for _, m := range r.mods {
		mc := ModemConfig{Name: m.Config().Name, Device: m.Path(), PerDay: 150}
		mc.applyDefaults()
		cfg.Modems = append(cfg.Modems, mc)
	}
	if tweak != nil {
		tweak(cfg)
	}
	r.cfg = cfg
	r.open()
	ctx := context.Background()
	for _, k := range []struct {
		dst    *string
		scopes []simgate.Scope
	}{
		{&r.admin, []simgate.Scope{simgate.ScopeAdmin}},
		{&r.sender, []simgate.Scope{simgate.ScopeSend, simgate.ScopeRead, simgate.ScopeVerify}},
	} {
		key, rec, err := api.NewAPIKey("test", k.scopes)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.app.DB.CreateAPIKey(ctx, rec); err != nil {
			t.Fatal(err)
		}
		*k.dst = key
	}
	return r
}

// open starts the App on the rig's configuration and database.
func (r *appRig) open() {
	r.t.Helper()
	cfg := *r.cfg
	r.app = &App{
		Config:            &cfg,
		Logger:            slog.New(slog.NewTextHandler(testLogWriter{r.t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
		AllowAllCountries: true,
		ModemOptions:      modem.Options{Candidates: []string{filepath.Join(r.devDir, "*")}, MinBackoff: 50 * time.Millisecond},
		WebhookInterval:   20 * time.Millisecond,
		Now:               r.now,
	}
	if r.productionBackoff {
		r.app.ModemOptions.MinBackoff = 0
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.app.Open(ctx); err != nil {
		r.app.Close()
		r.t.Fatal(err)
	}
	app := r.app
	r.t.Cleanup(func() { app.Close() })
	r.base = "http://" + r.app.API.Addr().String()
}

// close stops the App.
func (r *appRig) close() {
	r.t.Helper()
	if err := r.app.Close(); err != nil {
		r.t.Fatal(err)
	}
}

type testLogWriter struct{ t *testing.T }

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Logf("%s", bytes.TrimRight(p, "\n"))
	return len(p), nil
}

// do sends a JSON request with key and returns the status and body.
func (r *appRig) do(method, path, key string, body any) (int, []byte) {
	r.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, r.base+path, rd)
	if err != nil {
		r.t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// send queues a message and returns its id.
func (r *appRig) send(to, text string) string {
	r.t.Helper()
	status, body := r.do("POST", "/v1/messages", r.sender, map[string]any{"to": to, "text": text})
	if status != http.StatusCreated {
		r.t.Fatalf("POST /v1/messages: %d %s", status, body)
	}
	var m struct{ ID string }
	json.Unmarshal(body, &m)
	return m.ID
}

// startVerification starts a verification of to with the sender's key and
// returns its id and the code the handset received.
func (r *appRig) startVerification(ctx context.Context, to string) (id, code string) {
	r.t.Helper()
	status, body := r.do("POST", "/v1/verifications", r.sender, map[string]any{"to": to})
	if status != http.StatusCreated {
		r.t.Fatalf("POST /v1/verifications: %d %s", status, body)
	}
	var v struct{ ID string }
	json.Unmarshal(body, &v)
	inbox, err := r.net.WaitInbox(ctx, to, 1)
	if err != nil {
		r.t.Fatal(err)
	}
	return v.ID, codeRE.FindString(inbox[0].Text)
}

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// messageStatus reads a message's status from the database.
func (r *appRig) messageStatus(id string) simgate.MessageStatus {
	m, err := r.app.DB.FindMessage(context.Background(), id)
	if err != nil {
		r.t.Fatal(err)
	}
	return m.Status
}

// TestAppRecordsModemIdentity: a modem that comes up is recorded with its
// IMEI and ICCID, so its history stays bound to the hardware.
func TestAppRecordsModemIdentity(t *testing.T) {
	r := newAppRig(t, 2, nil)
	db, err := sql.Open("sqlite3", "file:"+r.cfg.Database.Path+"?mode=ro&_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, m := range r.mods {
		c := m.Config()
		waitFor(t, 10*time.Second, "modem "+c.Name+" recorded", func() bool {
			var imei, iccid string
			err := db.QueryRow(`SELECT coalesce(imei, ''), iccid FROM modems WHERE id = ?`, c.Name).Scan(&imei, &iccid)
			return err == nil && imei == c.IMEI && iccid == c.ICCID
		})
	}
}

// A reload names, section by section, the changes that wait for a restart,
// comparing the sections' contents (a map in verify, say), and names none
// when nothing but the modems changed.
func TestReloadNamesSectionsThatNeedARestart(t *testing.T) {
	r := newAppRig(t, 1, nil)
	var logs syncBuffer
	r.app.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	same := *r.cfg
	same.Verify.Templates = maps.Clone(r.cfg.Verify.Templates)
	if err := r.app.Reload(t.Context(), &same); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(logs.String(), "restart") {
		t.Fatalf("a reload with equal sections asked for a restart: %s", logs.String())
	}
	changed := same
	changed.Verify.Templates = map[string]string{"en": "Code {code}"}
	changed.Webhooks.Retention = same.Webhooks.Retention + time.Hour
	if err := r.app.Reload(t.Context(), &changed); err != nil {
		t.Fatal(err)
	}
	if got := logs.String(); !strings.Contains(got, `sections="verify, webhooks"`) {
		t.Fatalf("reload log: %s; want the sections verify and webhooks named", got)
	}
}
