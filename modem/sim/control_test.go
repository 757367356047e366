package sim

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func controlDo(t *testing.T, srv *httptest.Server, method, path, body string, wantStatus int, out any) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != wantStatus {
		t.Fatalf("%s %s: status %d, want %d: %s", method, path, resp.StatusCode, wantStatus, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, b)
		}
	}
}

func TestControlAPI(t *testing.T) {
	n, mods := startNetwork(t, Config{}, Config{})
	srv := httptest.NewServer(n.Handler())
	defer srv.Close()

	var list []ModemJSON
	controlDo(t, srv, "GET", "/modems", "", 200, &list)
	if got, want := len(list), 2; got != want {
		t.Fatalf("modems = %d, want %d", got, want)
	}
	if got, want := list[0].Path, mods[0].Path(); got != want {
		t.Fatalf("path = %q, want %q", got, want)
	}

	// Faults round trip, and bad input is named.
	var f FaultsJSON
	controlDo(t, srv, "PUT", "/modems/modem1/faults",
		`{"submit_latency":"250ms","report":"temp-then-delivered","registration":"searching","cms_error_for":{"+15550009999":21}}`, 200, &f)
	got := mods[1].Faults()
	if got.SubmitLatency != 250*time.Millisecond || got.Report != ReportTempThenDelivered || got.Registration != RegSearching || got.CMSErrorFor["+15550009999"] != 21 {
		t.Fatalf("faults after PUT = %+v", got)
	}
	var e map[string]string
	controlDo(t, srv, "PUT", "/modems/modem1/faults", `{"report":"lost"}`, 400, &e)
	if !strings.Contains(e["error"], "report") {
		t.Fatalf("error %q does not name the field", e["error"])
	}
	controlDo(t, srv, "PUT", "/modems/modem1/faults", `{"latency":"1s"}`, 400, nil)
	controlDo(t, srv, "PUT", "/modems/modem1/faults", `{"late_cmgs":"soon"}`, 400, nil)
	controlDo(t, srv, "GET", "/modems/nope", "", 404, nil)

	// Inbound by modem name lands in the modem's SIM store.
	controlDo(t, srv, "POST", "/inbound", `{"from":"+15559990000","to":"modem0","text":"hi"}`, 202, nil)
	controlDo(t, srv, "POST", "/inbound", `{"from":"+15559990000","to":"+19999999999","text":"hi"}`, 404, nil)
	c := dial(t, mods[0].Path())
	c.mustOK("AT+CMGF=1")
	if lines := c.cmd(`AT+CMGL="ALL"`); !strings.Contains(strings.Join(lines, "\n"), "hi") {
		t.Fatalf("CMGL after inject: %q", lines)
	}

	// A submission shows in /submissions and the handset inbox.
	c.mustOK("ATE0")
	c.write("AT+CMGS=\"+15551234567\"\r")
	c.waitPrompt("")
	c.write("via control\x1a")
	c.until("", cmdTimeout)
	var subs []SubmissionJSON
	controlDo(t, srv, "GET", "/submissions", "", 200, &subs)
	if len(subs) != 1 || subs[0].Text != "via control" {
		t.Fatalf("submissions = %+v", subs)
	}
	deadline := time.Now().Add(waitTimeout)
	var inbox []HandsetMessageJSON
	for len(inbox) == 0 && time.Now().Before(deadline) {
		controlDo(t, srv, "GET", "/handsets/+15551234567/inbox", "", 200, &inbox)
		time.Sleep(10 * time.Millisecond)
	}
	if len(inbox) != 1 || inbox[0].Text != "via control" {
		t.Fatalf("inbox = %+v", inbox)
	}

	// A call by modem name rings it; a second one while it rings is
	// refused, as is a call to no modem.
	controlDo(t, srv, "POST", "/calls", `{"from":"+4917612345678","to":"modem1"}`, 202, nil)
	if cs := mods[1].Calls(); len(cs) != 1 || cs[0].From != "+4917612345678" || cs[0].Rings != 1 {
		t.Fatalf("calls after POST /calls = %+v", cs)
	}
	controlDo(t, srv, "POST", "/calls", `{"from":"+4917612345679","to":"`+mods[1].Config().Number+`"}`, 409, nil)
	controlDo(t, srv, "POST", "/calls", `{"from":"+4917612345678","to":"+19999999999"}`, 404, nil)
	controlDo(t, srv, "POST", "/calls", `{"to":"modem0"}`, 400, nil)

	// Unplug and replug under a new name.
	var m ModemJSON
	controlDo(t, srv, "POST", "/modems/modem0/unplug", "", 200, &m)
	if m.Plugged {
		t.Fatal("still plugged after unplug")
	}
	controlDo(t, srv, "POST", "/modems/modem0/unplug", "", 409, nil)
	controlDo(t, srv, "POST", "/modems/modem0/replug", `{"name":"modem0b"}`, 200, &m)
	if !m.Plugged || !strings.HasSuffix(m.Path, "/modem0b") || m.IMEI != mods[0].Config().IMEI {
		t.Fatalf("after replug: %+v", m)
	}
}
