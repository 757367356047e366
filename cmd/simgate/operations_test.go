package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/simgate/simgate/modem/sim"
)

// Day-to-day operations through the running daemon, on virtual modems:
// USSD by the API and by `simgate modems ussd`, an incoming call recorded
// with its webhook event, and a prepaid balance read, shown, exported and
// reported low once.
func TestAppOperations(t *testing.T) {
	low := 20.0
	r := newAppRig(t, 1, func(c *Config) {
		c.Modems[0].Balance = &BalanceConfig{USSD: "*100#", Every: time.Hour, Pattern: `balance is (?P<amount>[0-9.,]+)`, Low: &low}
		c.Webhooks.Endpoints = []EndpointConfig{{Name: "ops", URL: "http://127.0.0.1:1/hook", Secret: "0123456789abcdef",
			Events: []string{"modem.balance_low", "call.received"}}}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	t.Run("USSD by the API", func(t *testing.T) {
		status, body := r.do("POST", "/v1/modems/"+r.cfg.Modems[0].Name+"/ussd", r.admin, map[string]any{"code": "*100#"})
		var got struct{ Status, Text string }
		json.Unmarshal(body, &got)
		if status != http.StatusOK || got.Status != "done" || got.Text != sim.DefaultBalance {
			t.Fatalf("POST ussd: %d %s", status, body)
		}
		if status, _ := r.do("POST", "/v1/modems/"+r.cfg.Modems[0].Name+"/ussd", r.sender, map[string]any{"code": "*100#"}); status != http.StatusForbidden {
			t.Fatalf("USSD with a key without admin: %d, want 403", status)
		}
	})
	t.Run("USSD by the command", func(t *testing.T) {
		t.Setenv("SIMGATE_API_KEY", r.admin)
		code, out, errs := runCLI(t, "modems", "ussd", "--url", r.base, r.cfg.Modems[0].Name, "*111#")
		if code != 0 || out != "1 Balance\n2 Data\n" || !strings.Contains(errs, "--session ussd_") {
			t.Fatalf("simgate modems ussd: exit %d, stdout %q, stderr %q", code, out, errs)
		}
		session := errs[strings.Index(errs, "ussd_"):]
		session = session[:strings.IndexAny(session, " \n")]
		code, out, errs = runCLI(t, "modems", "ussd", "--url", r.base, "--session", session, r.cfg.Modems[0].Name, "1")
		if code != 0 || out != sim.DefaultBalance+"\n" {
			t.Fatalf("reply: exit %d, stdout %q, stderr %q", code, out, errs)
		}
		t.Setenv("SIMGATE_API_KEY", "")
		if code, _, errs := runCLI(t, "modems", "ussd", "--url", r.base, r.cfg.Modems[0].Name, "*100#"); code == 0 || !strings.Contains(errs, "SIMGATE_API_KEY") {
			t.Fatalf("without a key: exit %d, stderr %q", code, errs)
		}
	})

	raw, err := sql.Open("sqlite3", "file:"+r.cfg.Database.Path+"?_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	events := func(typ string) int {
		var n int
		raw.QueryRowContext(ctx, `SELECT count(*) FROM webhook_events WHERE type = ?`, typ).Scan(&n)
		return n
	}

	t.Run("a call", func(t *testing.T) {
		if err := r.net.Call("+4917612345678", r.mods[0].Config().Number); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 10*time.Second, "the call recorded", func() bool {
			cs, err := r.app.DB.RecentInboundCalls(ctx, time.Now().Add(-time.Hour), 10)
			return err == nil && len(cs) == 1 && cs[0].From == "+4917612345678" && cs[0].Rejected
		})
		waitFor(t, 10*time.Second, "the call.received event", func() bool { return events("call.received") == 1 })
	})
	t.Run("the balance", func(t *testing.T) {
		waitFor(t, 10*time.Second, "the balance in the modem's status", func() bool {
			_, body := r.do("GET", "/v1/modems/"+r.cfg.Modems[0].Name, r.sender, nil)
			var m struct {
				Balance *struct {
					Amount *float64
					Low    bool
				}
			}
			json.Unmarshal(body, &m)
			return m.Balance != nil && m.Balance.Amount != nil && *m.Balance.Amount == 12.5 && m.Balance.Low
		})
		if got := r.scrape()[`simgate_sim_balance{modem="`+r.cfg.Modems[0].Name+`"}`]; got != 12.5 {
			t.Fatalf("simgate_sim_balance = %v, want 12.5", got)
		}
		bs, err := r.app.DB.Balances(ctx, time.Now().Add(-time.Hour))
		if err != nil || len(bs) != 1 {
			t.Fatalf("balances %+v, %v", bs, err)
		}
		if n := events("modem.balance_low"); n != 1 {
			t.Fatalf("%d modem.balance_low events, want 1", n)
		}
	})
}
