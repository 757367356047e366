package api

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/simgate/simgate"
)

type modemJSON struct {
	ID           string             `json:"id"`
	Node         string             `json:"node,omitempty"`
	Device       string             `json:"device,omitempty"`
	Identity     modemIdentityJSON  `json:"identity"`
	Number       string             `json:"number,omitempty"`
	State        simgate.ModemState `json:"state"`
	Reason       string             `json:"reason,omitempty"`
	Operator     string             `json:"operator,omitempty"`
	AccessTech   string             `json:"access_tech,omitempty"`
	Registration string             `json:"registration,omitempty"`
	SignalDBm    *int               `json:"signal_dbm,omitempty"`
	SignalBars   int                `json:"signal_bars"`
	Counters     modemCountersJSON  `json:"counters"`
	SentToday    int                `json:"sent_today"`
	DailyCap     int                `json:"daily_cap"`
	LastError    string             `json:"last_error,omitempty"`
	LastSeen     *time.Time         `json:"last_seen,omitempty"`
	// Foreign counts per store the messages on the SIM that are not
	// simgate's (a phone's sent messages and drafts), which it leaves there.
	Foreign  map[string]int `json:"foreign_on_sim,omitempty"`
	Warnings []string       `json:"warnings,omitempty"`
	Balance  *balanceJSON   `json:"balance,omitempty"`
}

type balanceJSON struct {
	Amount *float64  `json:"amount"`
	Text   string    `json:"text"`
	Error  string    `json:"error,omitempty"`
	Low    bool      `json:"low"`
	At     time.Time `json:"at"`
}

type modemIdentityJSON struct {
	Manufacturer string `json:"manufacturer,omitempty"`
	Model        string `json:"model,omitempty"`
	Revision     string `json:"revision,omitempty"`
	IMEI         string `json:"imei,omitempty"`
	IMSI         string `json:"imsi,omitempty"`
	ICCID        string `json:"iccid,omitempty"`
}

type modemCountersJSON struct {
	Sent       int64 `json:"sent"`
	Failed     int64 `json:"failed"`
	Reports    int64 `json:"reports"`
	Inbound    int64 `json:"inbound"`
	SoftResets int64 `json:"soft_resets"`
	USBResets  int64 `json:"usb_resets"`
}

func toModemJSON(m simgate.ModemStatus) modemJSON {
	j := modemJSON{
		ID: m.ID, Node: m.Node, Device: m.Device, Number: m.Number, State: m.State, Reason: m.Reason, Operator: m.Operator,
		AccessTech: m.AccessTech, Registration: m.Registration, SignalBars: m.SignalBars,
		SentToday: m.SentToday, DailyCap: m.DailyCap, LastError: m.LastError, LastSeen: timePtr(m.LastSeen),
		Identity: modemIdentityJSON(m.Identity),
		Counters: modemCountersJSON(m.Counters),
		Foreign:  m.Foreign,
		Warnings: m.Warnings,
	}
	if b := m.Balance; b != nil {
		j.Balance = &balanceJSON{Amount: b.Amount, Text: b.Text, Error: b.Err, Low: b.Low, At: b.At}
	}
	if m.SignalDBm != 0 {
		dbm := m.SignalDBm
		j.SignalDBm = &dbm
	}
	return j
}

func (s *Server) listModems(w http.ResponseWriter, r *http.Request, _ []byte) error {
	if s.opts.Modems == nil {
		return simgate.Errorf(simgate.CodeUnavailable, "modems are not available")
	}
	out := struct {
		Modems []modemJSON `json:"modems"`
	}{Modems: []modemJSON{}}
	for _, m := range s.opts.Modems.Status() {
		out.Modems = append(out.Modems, toModemJSON(m))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// modem returns the status of the modem named in the route.
func (s *Server) modem(r *http.Request) (simgate.ModemStatus, error) {
	if s.opts.Modems == nil {
		return simgate.ModemStatus{}, simgate.Errorf(simgate.CodeUnavailable, "modems are not available")
	}
	id := mux.Vars(r)["id"]
	for _, m := range s.opts.Modems.Status() {
		if m.ID == id {
			return m, nil
		}
	}
	return simgate.ModemStatus{}, simgate.Errorf(simgate.CodeNotFound, "modem %q not found", id)
}

func (s *Server) getModem(w http.ResponseWriter, r *http.Request, _ []byte) error {
	m, err := s.modem(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toModemJSON(m))
	return nil
}

// modemAction returns the handler of POST /v1/modems/{id}/<action>. It
// answers with the modem's status afterwards.
func (s *Server) modemAction(action string) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, _ []byte) error {
		m, err := s.modem(r)
		if err != nil {
			return err
		}
		var do func(context.Context, string) error
		switch action {
		case "enable":
			do = func(_ context.Context, id string) error { return s.opts.Modems.Enable(id) }
		case "disable":
			do = func(_ context.Context, id string) error { return s.opts.Modems.Disable(id) }
		case "drain":
			do = s.opts.Modems.Drain
		case "reset":
			do = s.opts.Modems.Reset
		}
		if err := do(r.Context(), m.ID); err != nil {
			return err
		}
		s.log.Info("modem action", "modem", m.ID, "action", action, "key", apiKeyFrom(r.Context()).ID)
		if m, err = s.modem(r); err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, toModemJSON(m))
		return nil
	}
}

// modemUSSD handles POST /v1/modems/{id}/ussd: {"code": "*100#"} dials a
// code; {"session": id, "reply": "1"} answers the open session;
// {"session": id, "cancel": true} ends it. The answer is the network's:
// {"status": "done"|"further_action"|"terminated"|"timeout", "text": ...,
// "session": ...}.
func (s *Server) modemUSSD(w http.ResponseWriter, r *http.Request, body []byte) error {
	m, err := s.modem(r)
	if err != nil {
		return err
	}
	var req struct {
		Code    string `json:"code"`
		Session string `json:"session"`
		Reply   string `json:"reply"`
		Cancel  bool   `json:"cancel"`
	}
	if err := decode(body, &req); err != nil {
		return err
	}
	code := req.Code
	switch {
	case req.Session == "" && (req.Code == "" || req.Reply != "" || req.Cancel):
		return simgate.Errorf(simgate.CodeInvalid, `give "code", or "session" with "reply" or "cancel"`)
	case req.Session != "" && (req.Code != "" || (req.Reply == "") == !req.Cancel):
		return simgate.Errorf(simgate.CodeInvalid, `with "session" give either "reply" or "cancel": true, and no "code"`)
	case req.Session != "":
		code = req.Reply
	}
	res, err := s.opts.Modems.USSD(r.Context(), m.ID, code, req.Session, req.Cancel)
	if err != nil {
		return err
	}
	s.log.Info("USSD", "modem", m.ID, "status", res.Status, "key", apiKeyFrom(r.Context()).ID)
	writeJSON(w, http.StatusOK, struct {
		Status  simgate.USSDStatus `json:"status"`
		Text    string             `json:"text"`
		Session string             `json:"session,omitempty"`
	}{res.Status, res.Text, res.Session})
	return nil
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request, _ []byte) error {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

// readyz answers 200 when the database takes writes and at least
// MinReadyModems modems are ready, else 503 with the reason; too few modems
// is answered by notReady.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request, _ []byte) error {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	if s.opts.DB == nil {
		return simgate.Errorf(simgate.CodeUnavailable, "no database")
	}
	if err := s.opts.DB.Ping(ctx); err != nil {
		s.log.Error("readiness: database not writable", "error", err)
		return simgate.Errorf(simgate.CodeUnavailable, "database not writable")
	}
	ready := 0
	var modems []simgate.ModemStatus
	// Readiness is this node's: a load balancer asks each node, so the
	// modems listed are this node's own (the first node's), not the
	// cluster's.
	switch {
	case s.opts.Modems == nil:
	case s.opts.Nodes != nil:
		ready, modems = s.opts.Modems.Ready(), s.opts.Nodes.Nodes()[0].Modems
	default:
		ready, modems = s.opts.Modems.Ready(), s.opts.Modems.Status()
	}
	if ready < s.opts.MinReadyModems {
		notReady(w, r, ready, s.opts.MinReadyModems, modems)
		return nil
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ready", "modems_ready": ready})
	return nil
}

// modemReadinessJSON is one modem in a readiness problem.
type modemReadinessJSON struct {
	ID     string             `json:"id"`
	State  simgate.ModemState `json:"state"`
	Reason string             `json:"reason,omitempty"`
}

// notReady answers /readyz with 503 when fewer than need modems are ready,
// saying why: a problem document (RFC 9457) whose detail names each modem
// that does not take sends with its state and reason, and whose "modems"
// member lists every modem (id, state, reason). A modem without a reason
// gives its last error.
func notReady(w http.ResponseWriter, r *http.Request, ready, need int, modems []simgate.ModemStatus) {
	list := []modemReadinessJSON{}
	var why []string
	for _, m := range modems {
		reason := m.Reason
		if reason == "" {
			reason = m.LastError
		}
		list = append(list, modemReadinessJSON{ID: m.ID, State: m.State, Reason: reason})
		if m.State == simgate.ModemReady || m.State == simgate.ModemDegraded {
			continue
		}
		if reason == "" {
			why = append(why, fmt.Sprintf("%s %s", m.ID, m.State))
		} else {
			why = append(why, fmt.Sprintf("%s %s (%s)", m.ID, m.State, reason))
		}
	}
	detail := fmt.Sprintf("%d modems ready, need %d", ready, need)
	switch {
	case len(modems) == 0:
		detail += ": no modem is configured"
	case len(why) > 0:
		detail += ": " + strings.Join(why, "; ")
	}
	status := http.StatusServiceUnavailable
	writeProblemDoc(w, status, struct {
		problem
		Modems []modemReadinessJSON `json:"modems"`
	}{newProblem(r, status, simgate.CodeUnavailable, detail), list})
}
