package main

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/simgate/simgate"
	"github.com/simgate/simgate/modem/sim"
)

// One modem, bound by IMEI, unplugged for 30 s while two messages and a
// verification are queued, then plugged back in under another tty, with
// the production defaults for reconnecting (1 s backoff doubling to a
// minute, quarantine after 5 failed connects for 5 min): it is back within
// 5 s of the replug and everything queued is delivered; nothing fails.
// Before, the modem was quarantined after 16 s and came back after 5 min,
// and the messages failed with "gave up after 5 attempts ... no modem
// available".
func TestOutageThirtySeconds(t *testing.T) {
	if testing.Short() {
		t.Skip("a 30 s outage")
	}
	r := newAppRig(t, 1, nil)
	r.close()
	r.cfg.Modems[0].Device, r.cfg.Modems[0].IMEI = "", r.mods[0].Config().IMEI
	r.productionBackoff = true
	r.open()
	waitFor(t, 20*time.Second, "the modem ready", func() bool { return r.app.Pool.Ready() == 1 })

	if err := r.mods[0].Unplug(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the modem down", func() bool { return r.app.Pool.Ready() == 0 })
	ids := []string{r.send("+4915123456701", "queued during the outage 1"), r.send("+4915123456702", "queued during the outage 2")}
	status, body := r.do("POST", "/v1/verifications", r.sender, map[string]any{"to": "+4917612345609"})
	if status != http.StatusCreated {
		t.Fatalf("POST /v1/verifications: %d %s", status, body)
	}
	var v struct{ ID string }
	json.Unmarshal(body, &v)

	time.Sleep(30 * time.Second)
	for _, id := range ids {
		if s := r.messageStatus(id); s.Final() {
			t.Fatalf("message %s is %s during the outage, want it waiting", id, s)
		}
	}
	if _, err := r.mods[0].Replug("ttyUSB4"); err != nil {
		t.Fatal(err)
	}
	replugged := time.Now()
	waitFor(t, 20*time.Second, "the modem back", func() bool { return r.app.Pool.Ready() == 1 })
	if d := time.Since(replugged); d > 5*time.Second {
		t.Fatalf("the modem was back %v after the replug, want within 5 s", d)
	}
	for _, id := range ids {
		waitFor(t, 20*time.Second, "message "+id+" delivered", func() bool { return r.messageStatus(id) == simgate.StatusDelivered })
	}
	waitFor(t, 20*time.Second, "the verification's SMS delivered", func() bool {
		_, body := r.do("GET", "/v1/verifications/"+v.ID, r.sender, nil)
		var got struct {
			DeliveryStatus string `json:"delivery_status"`
		}
		json.Unmarshal(body, &got)
		return got.DeliveryStatus == string(simgate.StatusDelivered)
	})
}

// A submit that times out, whose "+CMGS: <mr>" the modem prints late: the
// message is recorded sent with that reference, and the status report that
// follows makes it delivered. Before, it stayed unknown and the report was
// stored unmatched.
func TestLateAnswerDelivered(t *testing.T) {
	r := newAppRig(t, 1, func(c *Config) { c.Modems[0].SubmitTimeout = 300 * time.Millisecond })
	r.mods[0].SetFaults(sim.Faults{LateCMGS: 800 * time.Millisecond})
	id := r.send("+4915123456703", "answered late")
	waitFor(t, 20*time.Second, "the message delivered", func() bool { return r.messageStatus(id) == simgate.StatusDelivered })
	if subs := r.net.Submissions(); len(subs) != 1 {
		t.Fatalf("%d submissions, want 1 (never resent)", len(subs))
	}
}
