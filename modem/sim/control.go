package sim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/mux"
)

// Handler returns the HTTP control API of the network, for people and
// programs that point their own software at the virtual modems:
//
//	GET  /modems                      every modem: device path, identity, faults
//	GET  /modems/{name}               one modem
//	GET  /modems/{name}/faults        its faults
//	PUT  /modems/{name}/faults        replace its faults (JSON, see FaultsJSON)
//	POST /modems/{name}/unplug        pull it out, like a USB disconnect
//	POST /modems/{name}/replug        plug it in again: {"name": "modem0b"} for a new path
//	POST /inbound                     a handset sends {"from", "to", "text"}; to is a modem's number or name
//	POST /calls                       a handset calls {"from", "to"}; to is a modem's number or name
//	GET  /handsets/{number}/inbox     what a handset received
//	GET  /submissions                 every SMS-SUBMIT that left a modem
//
// It has no authentication: serve it on loopback only.
func (n *Network) Handler() http.Handler {
	r := mux.NewRouter()
	r.HandleFunc("/modems", n.handleModems).Methods("GET")
	r.HandleFunc("/modems/{name}", n.withModem(n.handleModem)).Methods("GET")
	r.HandleFunc("/modems/{name}/faults", n.withModem(n.handleGetFaults)).Methods("GET")
	r.HandleFunc("/modems/{name}/faults", n.withModem(n.handleSetFaults)).Methods("PUT")
	r.HandleFunc("/modems/{name}/unplug", n.withModem(n.handleUnplug)).Methods("POST")
	r.HandleFunc("/modems/{name}/replug", n.withModem(n.handleReplug)).Methods("POST")
	r.HandleFunc("/inbound", n.handleInbound).Methods("POST")
	r.HandleFunc("/calls", n.handleCall).Methods("POST")
	r.HandleFunc("/handsets/{number}/inbox", n.handleInbox).Methods("GET")
	r.HandleFunc("/submissions", n.handleSubmissions).Methods("GET")
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such resource: %s %s", r.Method, r.URL.Path)
	})
	r.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusMethodNotAllowed, "method %s not allowed on %s", r.Method, r.URL.Path)
	})
	return r
}

// ModemJSON is a modem as the control API shows it.
type ModemJSON struct {
	Name         string     `json:"name"`
	Path         string     `json:"path"`
	Plugged      bool       `json:"plugged"`
	Number       string     `json:"number"`
	IMEI         string     `json:"imei"`
	IMSI         string     `json:"imsi"`
	ICCID        string     `json:"iccid"`
	Manufacturer string     `json:"manufacturer"`
	Model        string     `json:"model"`
	Revision     string     `json:"revision"`
	Operator     string     `json:"operator"`
	Profile      string     `json:"profile,omitempty"`
	Faults       FaultsJSON `json:"faults"`
}

func modemJSON(m *Modem) ModemJSON {
	c := m.Config()
	return ModemJSON{
		Name: c.Name, Path: m.Path(), Plugged: m.Plugged(), Number: c.Number,
		IMEI: c.IMEI, IMSI: c.IMSI, ICCID: c.ICCID,
		Manufacturer: c.Manufacturer, Model: c.Model, Revision: c.Revision, Operator: c.Operator,
		Profile: c.Profile, Faults: FaultsToJSON(m.Faults()),
	}
}

// FaultsJSON is Faults in the control API and in `simgate sim` files:
// durations as strings ("250ms", "2s"), outcomes and registration by name.
type FaultsJSON struct {
	SubmitLatency   string         `json:"submit_latency,omitempty" yaml:"submit_latency"`
	SubmitJitter    string         `json:"submit_jitter,omitempty" yaml:"submit_jitter"`
	ReportDelay     string         `json:"report_delay,omitempty" yaml:"report_delay"`
	CMSErrorRate    float64        `json:"cms_error_rate,omitempty" yaml:"cms_error_rate"`
	CMSErrorCode    int            `json:"cms_error_code,omitempty" yaml:"cms_error_code"`
	CMSErrorFor     map[string]int `json:"cms_error_for,omitempty" yaml:"cms_error_for"`
	Report          string         `json:"report,omitempty" yaml:"report"` // delivered, temp-then-delivered, permanent, none
	ReportStatus    int            `json:"report_status,omitempty" yaml:"report_status"`
	Registration    string         `json:"registration,omitempty" yaml:"registration"` // home, roaming, not-registered, searching, denied, unknown
	SIMMissing      bool           `json:"sim_missing,omitempty" yaml:"sim_missing"`
	PINRequired     bool           `json:"pin_required,omitempty" yaml:"pin_required"`
	Hung            bool           `json:"hung,omitempty" yaml:"hung"`
	Noise           bool           `json:"noise,omitempty" yaml:"noise"`
	LowercaseHex    bool           `json:"lowercase_hex,omitempty" yaml:"lowercase_hex"`
	NoSMSCInReports bool           `json:"no_smsc_in_reports,omitempty" yaml:"no_smsc_in_reports"`
	LateCMGS        string         `json:"late_cmgs,omitempty" yaml:"late_cmgs"`
	Signal          int            `json:"signal,omitempty" yaml:"signal"`
	// RoutedLostWhileClosed and Wedged: see Faults.
	RoutedLostWhileClosed bool `json:"routed_lost_while_closed,omitempty" yaml:"routed_lost_while_closed"`
	Wedged                bool `json:"wedged,omitempty" yaml:"wedged"`
}

var registrationNames = map[Registration]string{
	RegHome: "home", RegRoaming: "roaming", RegNotRegistered: "not-registered",
	RegSearching: "searching", RegDenied: "denied", RegUnknown: "unknown",
}

var reportNames = map[ReportOutcome]string{
	ReportDelivered: "delivered", ReportTempThenDelivered: "temp-then-delivered",
	ReportPermanent: "permanent", ReportNone: "none",
}

// FaultsToJSON converts f for the control API.
func FaultsToJSON(f Faults) FaultsJSON {
	d := func(v time.Duration) string {
		if v == 0 {
			return ""
		}
		return v.String()
	}
	return FaultsJSON{
		SubmitLatency: d(f.SubmitLatency), SubmitJitter: d(f.SubmitJitter), ReportDelay: d(f.ReportDelay),
		CMSErrorRate: f.CMSErrorRate, CMSErrorCode: f.CMSErrorCode, CMSErrorFor: f.CMSErrorFor,
		Report: reportNames[f.Report], ReportStatus: int(f.ReportStatus), Registration: registrationNames[f.Registration],
		SIMMissing: f.SIMMissing, PINRequired: f.PINRequired, Hung: f.Hung, Noise: f.Noise,
		LowercaseHex: f.LowercaseHex, NoSMSCInReports: f.NoSMSCInReports, LateCMGS: d(f.LateCMGS), Signal: f.Signal,
		RoutedLostWhileClosed: f.RoutedLostWhileClosed, Wedged: f.Wedged,
	}
}

// Faults converts j back, with an error that names the first bad field.
func (j FaultsJSON) Faults() (Faults, error) {
	f := Faults{
		CMSErrorRate: j.CMSErrorRate, CMSErrorCode: j.CMSErrorCode, CMSErrorFor: j.CMSErrorFor,
		SIMMissing: j.SIMMissing, PINRequired: j.PINRequired, Hung: j.Hung, Noise: j.Noise,
		LowercaseHex: j.LowercaseHex, NoSMSCInReports: j.NoSMSCInReports, Signal: j.Signal,
		RoutedLostWhileClosed: j.RoutedLostWhileClosed, Wedged: j.Wedged,
	}
	for _, d := range []struct {
		name string
		in   string
		out  *time.Duration
	}{
		{"submit_latency", j.SubmitLatency, &f.SubmitLatency},
		{"submit_jitter", j.SubmitJitter, &f.SubmitJitter},
		{"report_delay", j.ReportDelay, &f.ReportDelay},
		{"late_cmgs", j.LateCMGS, &f.LateCMGS},
	} {
		if d.in == "" {
			continue
		}
		v, err := time.ParseDuration(d.in)
		if err != nil || v < 0 {
			return Faults{}, fmt.Errorf("%s: want a duration such as 250ms or 2s, got %q", d.name, d.in)
		}
		*d.out = v
	}
	if j.CMSErrorRate < 0 || j.CMSErrorRate > 1 {
		return Faults{}, fmt.Errorf("cms_error_rate: want 0 to 1, got %v", j.CMSErrorRate)
	}
	for dest, code := range j.CMSErrorFor {
		if code < 0 || code > 999 {
			return Faults{}, fmt.Errorf("cms_error_for[%s]: want a +CMS ERROR code 0-999, got %d", dest, code)
		}
	}
	if j.CMSErrorCode < 0 || j.CMSErrorCode > 999 {
		return Faults{}, fmt.Errorf("cms_error_code: want 0-999, got %d", j.CMSErrorCode)
	}
	if j.ReportStatus < 0 || j.ReportStatus > 0xFF {
		return Faults{}, fmt.Errorf("report_status: want a TP-ST 0-255, got %d", j.ReportStatus)
	}
	f.ReportStatus = byte(j.ReportStatus)
	if j.Signal != 0 && j.Signal != 99 && (j.Signal < 1 || j.Signal > 31) {
		return Faults{}, fmt.Errorf("signal: want a +CSQ rssi 1-31 or 99, got %d", j.Signal)
	}
	if j.Report != "" {
		o, ok := lookupName(reportNames, j.Report)
		if !ok {
			return Faults{}, fmt.Errorf("report: want one of delivered, temp-then-delivered, permanent, none; got %q", j.Report)
		}
		f.Report = o
	}
	if j.Registration != "" {
		r, ok := lookupName(registrationNames, j.Registration)
		if !ok {
			return Faults{}, fmt.Errorf("registration: want one of home, roaming, not-registered, searching, denied, unknown; got %q", j.Registration)
		}
		f.Registration = r
	}
	return f, nil
}

func lookupName[K comparable](names map[K]string, s string) (K, bool) {
	for k, v := range names {
		if v == s {
			return k, true
		}
	}
	var zero K
	return zero, false
}

// withModem resolves {name} to a modem, or answers 404.
func (n *Network) withModem(h func(http.ResponseWriter, *http.Request, *Modem)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		name := mux.Vars(r)["name"]
		m := n.Modem(name)
		if m == nil {
			writeError(w, http.StatusNotFound, "no modem named %q", name)
			return
		}
		h(w, r, m)
	}
}

func (n *Network) handleModems(w http.ResponseWriter, r *http.Request) {
	out := []ModemJSON{}
	for _, m := range n.Modems() {
		out = append(out, modemJSON(m))
	}
	writeJSON(w, http.StatusOK, out)
}

func (n *Network) handleModem(w http.ResponseWriter, r *http.Request, m *Modem) {
	writeJSON(w, http.StatusOK, modemJSON(m))
}

func (n *Network) handleGetFaults(w http.ResponseWriter, r *http.Request, m *Modem) {
	writeJSON(w, http.StatusOK, FaultsToJSON(m.Faults()))
}

func (n *Network) handleSetFaults(w http.ResponseWriter, r *http.Request, m *Modem) {
	var j FaultsJSON
	if !readJSON(w, r, &j) {
		return
	}
	f, err := j.Faults()
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	m.SetFaults(f)
	writeJSON(w, http.StatusOK, FaultsToJSON(m.Faults()))
}

func (n *Network) handleUnplug(w http.ResponseWriter, r *http.Request, m *Modem) {
	if err := m.Unplug(); err != nil {
		writeError(w, http.StatusConflict, "%v", err)
		return
	}
	writeJSON(w, http.StatusOK, modemJSON(m))
}

func (n *Network) handleReplug(w http.ResponseWriter, r *http.Request, m *Modem) {
	var req struct {
		Name string `json:"name"`
	}
	if r.ContentLength != 0 && !readJSON(w, r, &req) {
		return
	}
	if _, err := m.Replug(req.Name); err != nil {
		writeError(w, http.StatusConflict, "%v", err)
		return
	}
	writeJSON(w, http.StatusOK, modemJSON(m))
}

func (n *Network) handleInbound(w http.ResponseWriter, r *http.Request) {
	var req struct {
		From string `json:"from"`
		To   string `json:"to"`
		Text string `json:"text"`
	}
	if !readJSON(w, r, &req) || !n.handsetTo(w, req.From, &req.To) {
		return
	}
	if err := n.Inject(req.From, req.To, req.Text); err != nil {
		handsetError(w, err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"status": "injected", "to": req.To})
}

// handsetTo checks the handset's from and to of a request and replaces a
// modem's name in to with its number. It reports whether to go on; when
// not, it answered.
func (n *Network) handsetTo(w http.ResponseWriter, from string, to *string) bool {
	if from == "" || *to == "" {
		writeError(w, http.StatusBadRequest, "from and to are required")
		return false
	}
	if m := n.Modem(*to); m != nil {
		*to = m.Config().Number
	}
	return true
}

// handsetError answers the error of a handset's SMS or call: 404 for no
// such modem, 409 for a modem that has a call, 400 otherwise.
func handsetError(w http.ResponseWriter, err error) {
	status := http.StatusBadRequest
	switch {
	case errors.Is(err, ErrUnknownNumber):
		status = http.StatusNotFound
	case errors.Is(err, ErrBusy):
		status = http.StatusConflict
	}
	writeError(w, status, "%v", err)
}

// handleCall rings a modem from a handset (Network.Call): 202 while it
// rings, 404 for no such modem, 409 for a modem that has a call.
func (n *Network) handleCall(w http.ResponseWriter, r *http.Request) {
	var req struct {
		From string `json:"from"`
		To   string `json:"to"`
	}
	if !readJSON(w, r, &req) || !n.handsetTo(w, req.From, &req.To) {
		return
	}
	if err := n.Call(req.From, req.To); err != nil {
		handsetError(w, err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"status": "ringing", "to": req.To})
}

// HandsetMessageJSON is a handset's inbox entry in the control API.
type HandsetMessageJSON struct {
	From  string    `json:"from"`
	To    string    `json:"to"`
	Text  string    `json:"text"`
	Parts int       `json:"parts"`
	Modem string    `json:"modem"`
	At    time.Time `json:"at"`
}

func (n *Network) handleInbox(w http.ResponseWriter, r *http.Request) {
	out := []HandsetMessageJSON{}
	for _, m := range n.Inbox(mux.Vars(r)["number"]) {
		out = append(out, HandsetMessageJSON(m))
	}
	writeJSON(w, http.StatusOK, out)
}

// SubmissionJSON is a submission in the control API.
type SubmissionJSON struct {
	Modem     string    `json:"modem"`
	IMEI      string    `json:"imei"`
	MR        int       `json:"mr"`
	To        string    `json:"to"`
	SMSC      string    `json:"smsc"`
	SRR       bool      `json:"status_report_requested"`
	ConcatRef int       `json:"concat_ref,omitempty"`
	Seq       int       `json:"seq,omitempty"`
	Total     int       `json:"total,omitempty"`
	Text      string    `json:"text"`
	PDU       string    `json:"pdu"`
	Received  time.Time `json:"received"`
	At        time.Time `json:"at"`
}

func (n *Network) handleSubmissions(w http.ResponseWriter, r *http.Request) {
	out := []SubmissionJSON{}
	for _, s := range n.Submissions() {
		out = append(out, SubmissionJSON(s))
	}
	writeJSON(w, http.StatusOK, out)
}

// maxControlBody bounds request bodies; the largest sensible one is a long
// inbound text.
const maxControlBody = 64 << 10

// readJSON decodes the body strictly into v, or answers 400 and returns false.
func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxControlBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, "bad JSON body: %v", err)
		return false
	}
	if err := dec.Decode(new(json.RawMessage)); err != io.EOF {
		writeError(w, http.StatusBadRequest, "bad JSON body: more than one value")
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // the client went away: nothing to do
}

func writeError(w http.ResponseWriter, status int, format string, args ...any) {
	writeJSON(w, status, map[string]string{"error": strings.TrimSpace(fmt.Sprintf(format, args...))})
}
