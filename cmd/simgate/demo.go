package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sync/atomic"
	"time"

	"github.com/simgate/simgate"
	"github.com/simgate/simgate/api"
	"github.com/simgate/simgate/modem"
	"github.com/simgate/simgate/modem/sim"
)

// The demo's handsets: valid mobile numbers (libphonenumber checks them), in
// reserved ranges.
const (
	demoHandset  = "+4915123456789"
	demoHandset2 = "+4917612345678"
)

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("demo", "[--dir DIR] [--serve] [--listen ADDR]",
		"simgate demo            # walk a verification end to end and exit\n  simgate demo --serve    # then keep running and print curl commands", stderr)
	dir := fs.String("dir", "", "directory for the SQLite file and the virtual devices (default: a temporary one, removed after)")
	serve := fs.Bool("serve", false, "keep running after the walk-through, with the API and the sim control API")
	listen := fs.String("listen", "127.0.0.1:0", "API address")
	simListen := fs.String("sim-listen", "127.0.0.1:0", "with --serve: address of the virtual modems' control API")
	verbose := fs.Bool("v", false, "show the daemon's logs")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *dir == "" {
		d, err := os.MkdirTemp("", "simgate-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		*dir = d
	}
	devDir := filepath.Join(*dir, "dev")
	if err := os.MkdirAll(devDir, 0o700); err != nil {
		return err
	}

	// Two virtual modems with the latencies of real ones, shortened so the
	// demo takes seconds.
	network := sim.NewNetwork()
	defer network.Close()
	mods, err := network.Start(devDir,
		sim.Config{Name: "sim0", Manufacturer: "Quectel", Model: "EC25", SubmitLatency: 400 * time.Millisecond, ReportDelay: 700 * time.Millisecond},
		sim.Config{Name: "sim1", Manufacturer: "SIMCOM", Model: "SIM7600", SubmitLatency: 400 * time.Millisecond, ReportDelay: 700 * time.Millisecond},
	)
	if err != nil {
		return err
	}

	cfg := DefaultConfig()
	cfg.Database.Path = filepath.Join(*dir, "simgate.db")
	cfg.HTTP.Listen = *listen
	cfg.Verify.AppName = "Demo"
	cfg.Queue.SweepInterval = time.Second
	for _, m := range mods {
		mc := ModemConfig{Name: m.Config().Name, Device: m.Path()}
		mc.applyDefaults()
		cfg.Modems = append(cfg.Modems, mc)
	}
	level := slog.LevelError
	if *verbose {
		level = slog.LevelInfo
	}
	clock := &demoClock{}
	app := &App{
		Config:            cfg,
		Logger:            slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})),
		Now:               clock.Now,
		AllowAllCountries: true,
		ModemOptions:      modem.Options{Candidates: []string{filepath.Join(devDir, "*")}},
	}
	defer app.Close()
	if err := app.Open(ctx); err != nil {
		return err
	}
	key, k, err := api.NewAPIKey("demo", []simgate.Scope{simgate.ScopeVerify, simgate.ScopeSend, simgate.ScopeRead, simgate.ScopeAdmin})
	if err != nil {
		return err
	}
	if err := app.DB.CreateAPIKey(ctx, k); err != nil {
		return err
	}
	d := &demo{ctx: ctx, out: stdout, base: "http://" + app.API.Addr().String(), key: key, net: network, clock: clock}
	fmt.Fprintf(stdout, "simgate demo: database %s, API %s, modems %s and %s (virtual, on pseudo-terminals)\n\n",
		cfg.Database.Path, d.base, mods[0].Path(), mods[1].Path())

	if err := d.walk(); err != nil {
		return fmt.Errorf("demo failed: %w", err)
	}
	fmt.Fprintln(stdout, "\nAll steps hold: simgate works end to end.")
	if !*serve {
		return app.Close()
	}
	return d.serve(*simListen, app)
}

// demoClock is real time plus an offset the demo moves forward to show an
// expired code without waiting for it.
type demoClock struct{ offset atomic.Int64 }

func (c *demoClock) Now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *demoClock) Advance(d time.Duration) { c.offset.Add(int64(d)) }

type demo struct {
	ctx   context.Context
	out   io.Writer
	base  string
	key   string
	net   *sim.Network
	clock *demoClock
	step  int
}

func (d *demo) say(format string, args ...any) {
	d.step++
	fmt.Fprintf(d.out, "%d. %s\n", d.step, fmt.Sprintf(format, args...))
}

// verification is the part of the API's verification JSON the demo reads.
type verification struct {
	ID             string    `json:"id"`
	To             string    `json:"to"`
	Status         string    `json:"status"`
	Valid          *bool     `json:"valid"`
	SendCount      int       `json:"send_count"`
	AttemptsLeft   int       `json:"attempts_left"`
	MessageID      string    `json:"message_id"`
	DeliveryStatus string    `json:"delivery_status"`
	ExpiresAt      time.Time `json:"expires_at"`
}

type message struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	Parts  []struct {
		ModemID      string `json:"modem_id"`
		MR           int    `json:"mr"`
		Status       string `json:"status"`
		ReportStatus int    `json:"report_status"`
	} `json:"parts"`
}

var codeInText = regexp.MustCompile(`\b(\d{4,10})\b`)

func (d *demo) walk() error {
	// 1. Create a verification.
	var v verification
	if err := d.call("POST", "/v1/verifications", map[string]any{"to": demoHandset, "reference": "demo-user-1"}, 201, &v); err != nil {
		return err
	}
	if v.Status != "pending" {
		return fmt.Errorf("new verification is %q, want pending", v.Status)
	}
	d.say("verification created: %s for %s, status %s, expires %s", v.ID, v.To, v.Status, v.ExpiresAt.Format(time.TimeOnly))

	// 2. The SMS leaves a modem.
	var m message
	if err := d.until("the SMS to be submitted", func() (bool, error) {
		if err := d.call("GET", "/v1/messages/"+v.MessageID, nil, 200, &m); err != nil {
			return false, err
		}
		return len(m.Parts) > 0 && m.Parts[0].MR >= 0 && m.Parts[0].ModemID != "", nil
	}); err != nil {
		return err
	}
	d.say("SMS %s submitted by modem %s with message reference %d", m.ID, m.Parts[0].ModemID, m.Parts[0].MR)

	// 3. The handset receives it.
	code, err := d.receive(demoHandset)
	if err != nil {
		return err
	}

	// 4. The status report comes back and is matched.
	if err := d.until("the status report", func() (bool, error) {
		if err := d.call("GET", "/v1/messages/"+v.MessageID, nil, 200, &m); err != nil {
			return false, err
		}
		return m.Status == "delivered" || m.Status == "failed", nil
	}); err != nil {
		return err
	}
	if m.Status != "delivered" {
		return fmt.Errorf("message %s is %s, want delivered", m.ID, m.Status)
	}
	d.say("status report for message reference %d: TP-ST 0x%02X, delivered", m.Parts[0].MR, m.Parts[0].ReportStatus)

	// 5. A wrong code is rejected and leaves the verification pending.
	wrong := fmt.Sprintf("%0*d", len(code), 0)
	if wrong == code {
		wrong = fmt.Sprintf("%0*d", len(code), 1)
	}
	if err := d.call("POST", "/v1/verifications/check", map[string]any{"id": v.ID, "code": wrong}, 200, &v); err != nil {
		return err
	}
	if v.Status != "pending" || v.Valid == nil || *v.Valid {
		return fmt.Errorf("a wrong code gave status %q valid %v, want pending and not valid", v.Status, v.Valid)
	}
	d.say("wrong code %s rejected: status %s, %d attempts left", wrong, v.Status, v.AttemptsLeft)

	// 6. The right code approves it.
	if err := d.call("POST", "/v1/verifications/check", map[string]any{"id": v.ID, "code": code}, 200, &v); err != nil {
		return err
	}
	if v.Status != "approved" || v.Valid == nil || !*v.Valid {
		return fmt.Errorf("the right code gave status %q, want approved", v.Status)
	}
	d.say("code checked: %s", v.Status)

	// 7. A code checked after its verification expired is rejected.
	var v2 verification
	if err := d.call("POST", "/v1/verifications", map[string]any{"to": demoHandset2, "ttl": "1m"}, 201, &v2); err != nil {
		return err
	}
	code2, err := d.receive(demoHandset2)
	if err != nil {
		return err
	}
	d.clock.Advance(2 * time.Minute)
	var problem struct {
		Code   string `json:"code"`
		Detail string `json:"detail"`
	}
	if err := d.call("POST", "/v1/verifications/check", map[string]any{"id": v2.ID, "code": code2}, 409, &problem); err != nil {
		return fmt.Errorf("a code checked after expiry was not rejected: %w", err)
	}
	if err := d.call("GET", "/v1/verifications/"+v2.ID, nil, 200, &v2); err != nil {
		return err
	}
	if v2.Status != "expired" {
		return fmt.Errorf("verification %s is %q after its TTL, want expired", v2.ID, v2.Status)
	}
	d.say("a second verification (ttl 1m), checked 2 minutes later with its right code: rejected (%s: %s), status %s", problem.Code, problem.Detail, v2.Status)
	return nil
}

// receive waits for the handset's next SMS and returns the code in it.
func (d *demo) receive(number string) (string, error) {
	ctx, cancel := context.WithTimeout(d.ctx, 30*time.Second)
	defer cancel()
	got, err := d.net.WaitInbox(ctx, number, 1)
	if err != nil {
		return "", fmt.Errorf("handset %s received nothing: %w", number, err)
	}
	text := got[len(got)-1].Text
	d.say("handset %s received from %s: %q", number, got[len(got)-1].From, text)
	c := codeInText.FindStringSubmatch(text)
	if c == nil {
		return "", fmt.Errorf("no code in %q", text)
	}
	return c[1], nil
}

// until polls cond until it holds, for at most 30 s.
func (d *demo) until(what string, cond func() (bool, error)) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok, err := cond()
		if err != nil || ok {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out waiting for %s", what)
		}
		select {
		case <-d.ctx.Done():
			return d.ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// call makes an API request and decodes the answer, which must have status
// want.
func (d *demo) call(method, path string, body any, want int, out any) error {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(d.ctx, method, d.base+path, r)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+d.key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: HTTP %d, want %d: %s", method, path, resp.StatusCode, want, bytes.TrimSpace(b))
	}
	return json.Unmarshal(b, out)
}

// serve keeps the demo running with the sim's control API and prints what
// to try.
func (d *demo) serve(simListen string, app *App) error {
	ln, err := net.Listen("tcp", simListen)
	if err != nil {
		return fmt.Errorf("cannot listen for the sim control API: %w", err)
	}
	srv := &http.Server{Handler: d.net.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()
	sim := "http://" + ln.Addr().String()
	// Credentials for Twilio's clients, with every scope as the demo key.
	tw, k, err := api.NewTwilioKey("demo-twilio", []simgate.Scope{simgate.ScopeVerify, simgate.ScopeSend, simgate.ScopeRead, simgate.ScopeAdmin},
		false, d.clock.Now())
	if err != nil {
		return err
	}
	if err := app.DB.CreateAPIKey(d.ctx, k); err != nil {
		return err
	}
	jsonBody := `-H "Content-Type: application/json"`
	fmt.Fprintf(d.out, `
simgate keeps running. Try (the demo key has every scope):

export SIMGATE_API_KEY=%[1]s
  curl -s -H "Authorization: Bearer $SIMGATE_API_KEY" %[2]s -d '{"to":"%[3]s"}' %[4]s/v1/verifications
  curl -s %[5]s/handsets/%[3]s/inbox                  # what the handset received
  curl -s -H "Authorization: Bearer $SIMGATE_API_KEY" %[2]s -d '{"to":"%[3]s","code":"<code>"}' %[4]s/v1/verifications/check
  curl -s -H "Authorization: Bearer $SIMGATE_API_KEY" %[2]s -d '{"to":"%[3]s","text":"hello"}' %[4]s/v1/messages
  curl -s -H "Authorization: Bearer $SIMGATE_API_KEY" %[4]s/v1/modems

Twilio's Verify clients work unchanged once they send to %[4]s (docs/TWILIO.md).
The demo's credentials for them, and its default service:

export TWILIO_ACCOUNT_SID=%[6]s
export TWILIO_AUTH_TOKEN=%[7]s
export VERIFY_SERVICE_SID=%[8]s
  curl -s -u "$TWILIO_ACCOUNT_SID:$TWILIO_AUTH_TOKEN" --data-urlencode To=%[9]s -d Channel=sms %[4]s/v2/Services/$VERIFY_SERVICE_SID/Verifications
  curl -s -u "$TWILIO_ACCOUNT_SID:$TWILIO_AUTH_TOKEN" --data-urlencode To=%[9]s -d Code=<code> %[4]s/v2/Services/$VERIFY_SERVICE_SID/VerificationCheck

  In Node.js (npm install twilio), with the variables above:
    const client = require('twilio')(process.env.TWILIO_ACCOUNT_SID, process.env.TWILIO_AUTH_TOKEN);
    client.verify.baseUrl = '%[4]s';
    client.verify.v2.services(process.env.VERIFY_SERVICE_SID).verifications.create({ to: '%[9]s', channel: 'sms' }).then((v) => console.log(v.sid, v.status));

The virtual modems (the code is in %[5]s/handsets/%[9]s/inbox):
  curl -s -X PUT -d '{"cms_error_rate":1,"cms_error_code":38}' %[5]s/modems/sim0/faults   # break a modem
  curl -s -d '{"from":"+4917099999999","to":"sim0","text":"STOP"}' %[5]s/inbound           # an inbound SMS

Stop with Ctrl-C.
`, d.key, jsonBody, demoHandset, d.base, sim, tw.AccountSID, tw.Secret, simgate.DefaultServiceID, demoHandset2)
	<-d.ctx.Done()
	return app.Close()
}
