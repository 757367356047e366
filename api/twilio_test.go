package api_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/simgate/simgate"
	"github.com/simgate/simgate/api"
)

// The Twilio surface in-process, over the real store and verification
// service (the queue is the fake handset of helpers_test.go). Its
// agreement with Twilio's own clients is shown in cmd/simgate
// (TestTwilioGoClient, TestTwilioNodeClient), against a real simgate serve.

// twilioCred makes a key for Twilio's clients with the given scopes,
// limited to services (nil: none), as simgate apikey create --twilio does.
func (e *env) twilioCred(apiKey bool, services []string, scopes ...simgate.Scope) api.TwilioCredential {
	e.t.Helper()
	c, k, err := api.NewTwilioKey("twilio", scopes, apiKey, e.clock.Now())
	if err != nil {
		e.t.Fatal(err)
	}
	k.Services = services
	if err := e.db.CreateAPIKey(context.Background(), k); err != nil {
		e.t.Fatal(err)
	}
	return c
}

// twilio sends a request as Twilio's clients do: HTTP Basic, and the
// parameters form-encoded (none: no body).
func (e *env) twilio(method, path string, c api.TwilioCredential, form url.Values) resp {
	e.t.Helper()
	var body any
	if form != nil {
		body = form.Encode()
	}
	req, _ := http.NewRequest(method, "http://x", nil)
	req.SetBasicAuth(c.Username, c.Secret)
	return e.do(method, path, "", body, "Authorization", req.Header.Get("Authorization"),
		"Content-Type", "application/x-www-form-urlencoded")
}

// wantTwilio fails unless r is Twilio's error JSON with status and code.
func wantTwilio(t testing.TB, r resp, status, code int) map[string]any {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d, want %d; body %s", r.status, status, r.body)
	}
	j := r.json(t)
	if j["code"] != float64(code) || j["status"] != float64(status) ||
		j["more_info"] != "https://www.twilio.com/docs/errors/"+strconv.Itoa(code) ||
		j["message"] == "" {
		t.Fatalf("error body %s, want code %d and status %d with a message and more_info", r.body, code, status)
	}
	return j
}

var (
	veSID       = regexp.MustCompile(`^VE[0-9a-f]{32}$`)
	vlSID       = regexp.MustCompile(`^VL[0-9a-f]{32}$`)
	twilioTime  = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`)
	attemptTime = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)
)

// sidOf is the VerificationSid of a verification id: "VE" and its bits in
// hex (simgate.IDBits).
func sidOf(t testing.TB, id string) string {
	t.Helper()
	bits, ok := simgate.IDBits("ver", id)
	if !ok {
		t.Fatalf("%q is not a verification id", id)
	}
	return "VE" + hex.EncodeToString(bits[:])
}

// TestTwilioVerifyFlow: a code by SMS and its checks, with Twilio's fields
// and formats; an approved verification is gone, as in Twilio.
func TestTwilioVerifyFlow(t *testing.T) {
	e := newEnv(t, envOpts{})
	c := e.twilioCred(false, nil, simgate.ScopeVerify)
	const to = "+4915123456789"
	base := "/v2/Services/" + simgate.DefaultServiceID

	r := e.twilio("POST", base+"/Verifications", c, url.Values{"To": {to}, "Channel": {"sms"}})
	if r.status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	v := r.json(t)
	sid, _ := v["sid"].(string)
	attempts, _ := v["send_code_attempts"].([]any)
	if !veSID.MatchString(sid) || v["service_sid"] != simgate.DefaultServiceID || v["account_sid"] != c.AccountSID ||
		v["to"] != to || v["channel"] != "sms" || v["status"] != "pending" || v["valid"] != false ||
		!twilioTime.MatchString(v["date_created"].(string)) || !twilioTime.MatchString(v["date_updated"].(string)) ||
		v["url"] != e.ts.URL+base+"/Verifications/"+sid || len(attempts) != 1 {
		t.Fatalf("created verification: %s", r.body)
	}
	attempt := attempts[0].(map[string]any)
	if !vlSID.MatchString(attempt["attempt_sid"].(string)) || attempt["channel"] != "sms" || !attemptTime.MatchString(attempt["time"].(string)) ||
		!strings.HasPrefix(attempt["time"].(string), strings.TrimSuffix(v["date_created"].(string), "Z")) {
		t.Fatalf("send attempt: %v", attempt)
	}
	if !regexp.MustCompile(`^AC[0-9a-f]{32}$`).MatchString(c.AccountSID) || c.Username != c.AccountSID ||
		!regexp.MustCompile(`^[A-Za-z0-9]{32}$`).MatchString(c.Secret) {
		t.Fatalf("credential %+v: want an AC SID and 32 letters and digits", c)
	}

	// The same verification, seen through the JSON API by its own id.
	admin := e.key(simgate.ScopeAdmin)
	list := e.do("GET", "/v1/messages?verification_id=", admin, nil)
	wantStatus(t, list, http.StatusOK)
	var id string
	for _, m := range list.json(t)["messages"].([]any) {
		if m := m.(map[string]any); m["to"] == to {
			id, _ = m["verification_id"].(string)
		}
	}
	if sidOf(t, id) != sid {
		t.Fatalf("verification %s is %s on the Twilio surface, want %s", id, sid, sidOf(t, id))
	}

	// A wrong code: 200, pending, not valid.
	r = e.twilio("POST", base+"/VerificationCheck", c, url.Values{"To": {to}, "Code": {"000000"}})
	if j := r.json(t); r.status != http.StatusOK || j["status"] != "pending" || j["valid"] != false || j["sid"] != sid {
		t.Fatalf("wrong code: %d %s", r.status, r.body)
	}
	// Fetch while pending.
	r = e.twilio("GET", base+"/Verifications/"+sid, c, nil)
	if j := r.json(t); r.status != http.StatusOK || j["sid"] != sid || j["status"] != "pending" {
		t.Fatalf("fetch: %d %s", r.status, r.body)
	}
	// The right code, by VerificationSid.
	code := e.queue.lastCode(t, to)
	r = e.twilio("POST", base+"/VerificationCheck", c, url.Values{"VerificationSid": {sid}, "Code": {code}})
	if j := r.json(t); r.status != http.StatusOK || j["status"] != "approved" || j["valid"] != true || j["to"] != to ||
		j["account_sid"] != c.AccountSID || j["service_sid"] != simgate.DefaultServiceID || j["channel"] != "sms" {
		t.Fatalf("right code: %d %s", r.status, r.body)
	}
	if strings.Contains(string(r.body), code) {
		t.Fatalf("the check's answer shows the code: %s", r.body)
	}
	// Approved, it is gone: checks and fetches are 20404, with Twilio's words.
	j := wantTwilio(t, e.twilio("POST", base+"/VerificationCheck", c, url.Values{"To": {to}, "Code": {code}}), 404, 20404)
	if j["message"] != "The requested resource /Services/"+simgate.DefaultServiceID+"/VerificationCheck was not found" {
		t.Fatalf("20404 message: %v", j["message"])
	}
	wantTwilio(t, e.twilio("POST", base+"/VerificationCheck", c, url.Values{"VerificationSid": {sid}, "Code": {code}}), 404, 20404)
	wantTwilio(t, e.twilio("GET", base+"/Verifications/"+sid, c, nil), 404, 20404)
}

// TestTwilioCredentials: account and API key credentials; what is refused
// is Twilio's 20003, with the challenge that no browser answers by itself.
func TestTwilioCredentials(t *testing.T) {
	e := newEnv(t, envOpts{})
	acct := e.twilioCred(false, nil, simgate.ScopeVerify)
	key := e.twilioCred(true, nil, simgate.ScopeVerify)
	path := "/v2/Services/" + simgate.DefaultServiceID
	if !strings.HasPrefix(key.Username, "SK") || key.Username[2:] != key.AccountSID[2:] {
		t.Fatalf("API key credential %+v: want SK and the account's digits", key)
	}
	for _, c := range []api.TwilioCredential{acct, key} {
		r := e.twilio("GET", path, c, nil)
		if j := r.json(t); r.status != http.StatusOK || j["sid"] != simgate.DefaultServiceID || j["account_sid"] != c.AccountSID {
			t.Fatalf("fetch service as %s: %d %s", c.Username, r.status, r.body)
		}
	}
	// An sg_ key works here too; a Twilio key works on the JSON API.
	if r := e.do("GET", path, e.key(simgate.ScopeVerify), nil); r.status != http.StatusOK {
		t.Fatalf("Bearer key on the Twilio surface: %d %s", r.status, r.body)
	}
	req, _ := http.NewRequest("GET", "http://x", nil)
	req.SetBasicAuth(acct.Username, acct.Secret)
	if r := e.do("GET", "/v1/services", "", nil, "Authorization", req.Header.Get("Authorization")); r.status != http.StatusOK {
		t.Fatalf("Twilio key on the JSON API: %d %s", r.status, r.body)
	}

	for name, c := range map[string]api.TwilioCredential{
		"wrong secret":         {Username: acct.Username, Secret: acct.Secret[:31] + "x"},
		"secret of another":    {Username: acct.Username, Secret: key.Secret},
		"SK with the AC token": {Username: "SK" + acct.Username[2:], Secret: acct.Secret},
		"not a SID":            {Username: "admin", Secret: acct.Secret},
		"upper case SID":       {Username: strings.ToUpper(acct.Username), Secret: acct.Secret},
		"secret with a dash":   {Username: acct.Username, Secret: acct.Secret + "-"},
		"empty secret":         {Username: acct.Username},
	} {
		r := e.twilio("GET", path, c, nil)
		wantTwilio(t, r, http.StatusUnauthorized, 20003)
		if r.header.Get("WWW-Authenticate") != `Bearer realm="simgate"` {
			t.Fatalf("%s: WWW-Authenticate %q: a Basic challenge would make browsers ask and keep credentials", name, r.header.Get("WWW-Authenticate"))
		}
	}
	wantTwilio(t, e.do("GET", path, "", nil), http.StatusUnauthorized, 20003)

	// Scopes hold: a verify key cannot create services.
	wantTwilio(t, e.twilio("POST", "/v2/Services", acct, url.Values{"FriendlyName": {"Shop"}}), http.StatusForbidden, 20403)
	// A revoked key is refused from the next request.
	keys, err := e.db.ListAPIKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if k.Prefix == acct.Username {
			if err := e.db.RevokeAPIKey(context.Background(), k.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	wantTwilio(t, e.twilio("GET", path, acct, nil), http.StatusUnauthorized, 20003)
}

// TestTwilioBadRequests: every refusal is Twilio's JSON with its code, and
// says what is wrong.
func TestTwilioBadRequests(t *testing.T) {
	e := newEnv(t, envOpts{})
	c := e.twilioCred(false, nil, simgate.ScopeVerify, simgate.ScopeAdmin)
	base := "/v2/Services/" + simgate.DefaultServiceID
	create := func(form url.Values) resp { return e.twilio("POST", base+"/Verifications", c, form) }

	for _, ch := range []string{"call", "email", "whatsapp", "sna"} {
		j := wantTwilio(t, create(url.Values{"To": {"+4915123456789"}, "Channel": {ch}}), 400, 60223)
		if !strings.Contains(j["message"].(string), strings.ToUpper(ch)) {
			t.Fatalf("disabled channel %s: %v", ch, j["message"])
		}
	}
	for name, c := range map[string]struct {
		form url.Values
		says string
	}{
		"no To":             {url.Values{"Channel": {"sms"}}, "To"},
		"no Channel":        {url.Values{"To": {"+4915123456789"}}, "Channel"},
		"unknown channel":   {url.Values{"To": {"+4915123456789"}, "Channel": {"pigeon"}}, "pigeon"},
		"bad To":            {url.Values{"To": {"12"}, "Channel": {"sms"}}, ""},
		"unsupported param": {url.Values{"To": {"+4915123456789"}, "Channel": {"sms"}, "CustomFriendlyName": {"Evil"}}, "CustomFriendlyName"},
		"twice":             {url.Values{"To": {"+4915123456789", "+4915123456780"}, "Channel": {"sms"}}, "2 times"},
	} {
		j := wantTwilio(t, create(c.form), 400, 60200)
		if !strings.Contains(j["message"].(string), c.says) {
			t.Fatalf("%s: message %q does not name %q", name, j["message"], c.says)
		}
	}
	// A JSON body is not what Twilio's clients send.
	req, _ := http.NewRequest("GET", "http://x", nil)
	req.SetBasicAuth(c.Username, c.Secret)
	wantTwilio(t, e.do("POST", base+"/Verifications", "", map[string]string{"To": "+4915123456789"},
		"Authorization", req.Header.Get("Authorization")), http.StatusUnsupportedMediaType, 60200)
	if r := e.do("POST", base+"/Verifications", "", "To=%ff", "Authorization", req.Header.Get("Authorization"),
		"Content-Type", "application/x-www-form-urlencoded"); !strings.Contains(string(r.body), "UTF-8") {
		t.Fatalf("invalid UTF-8: %d %s", r.status, r.body)
	}

	// Unknown and malformed SIDs and routes are 20404; a method the route
	// has not is 20004.
	other := simgate.NewServiceID()
	missing := "VE" + strings.Repeat("0", 32)
	for _, path := range []string{
		base + "/Verifications/" + missing, base + "/Verifications/VE123", base + "/Verifications/ver_01",
		"/v2/Services/" + other, "/v2/Services/VAnothex", "/v2/Services/" + other + "/Verifications/" + missing, "/v2/Nothing",
	} {
		wantTwilio(t, e.twilio("GET", path, c, nil), 404, 20404)
	}
	wantTwilio(t, e.twilio("POST", "/v2/Services/"+other+"/Verifications", c, url.Values{"To": {"+4915123456789"}, "Channel": {"sms"}}), 404, 20404)
	wantTwilio(t, e.twilio("DELETE", base+"/Verifications/"+missing, c, nil), http.StatusMethodNotAllowed, 20004)
	// Status takes canceled and approved only.
	wantTwilio(t, e.twilio("POST", base+"/Verifications/"+missing, c, url.Values{"Status": {"pending"}}), 400, 60200)
	wantTwilio(t, e.twilio("POST", base+"/VerificationCheck", c, url.Values{"Code": {"123456"}}), 400, 60200)
}

// TestTwilioLimits: the limits on checks and sends answer Twilio's 60202
// and 60203.
func TestTwilioLimits(t *testing.T) {
	e := newEnv(t, envOpts{})
	c := e.twilioCred(false, nil, simgate.ScopeVerify)
	base := "/v2/Services/" + simgate.DefaultServiceID
	const to = "+4915123456789"
	r := e.twilio("POST", base+"/Verifications", c, url.Values{"To": {to}, "Channel": {"sms"}})
	sid, _ := r.json(t)["sid"].(string)
	// Five wrong codes (verify.max_checks): the fifth ends the verification.
	for i := 1; i <= 5; i++ {
		r = e.twilio("POST", base+"/VerificationCheck", c, url.Values{"To": {to}, "Code": {"000000"}})
		want := "pending"
		if i == 5 {
			want = "max_attempts_reached"
		}
		if j := r.json(t); r.status != http.StatusOK || j["status"] != want || j["valid"] != false {
			t.Fatalf("wrong code %d: %d %s, want 200 %s", i, r.status, r.body, want)
		}
	}
	// A sixth, even the right one, is 60202, by its SID and by number.
	code := e.queue.lastCode(t, to)
	wantTwilio(t, e.twilio("POST", base+"/VerificationCheck", c, url.Values{"VerificationSid": {sid}, "Code": {code}}), 429, 60202)
	wantTwilio(t, e.twilio("POST", base+"/VerificationCheck", c, url.Values{"To": {to}, "Code": {code}}), 429, 60202)
	// It can be fetched.
	if r := e.twilio("GET", base+"/Verifications/"+sid, c, nil); r.status != http.StatusOK || r.json(t)["status"] != "max_attempts_reached" {
		t.Fatalf("fetch after the last check: %d %s", r.status, r.body)
	}
	// Once it has expired, it is gone.
	e.clock.Add(10 * time.Minute)
	wantTwilio(t, e.twilio("POST", base+"/VerificationCheck", c, url.Values{"To": {to}, "Code": {code}}), 404, 20404)
	wantTwilio(t, e.twilio("POST", base+"/VerificationCheck", c, url.Values{"VerificationSid": {sid}, "Code": {code}}), 404, 20404)

	// Sends: the first to another number and four resends take the five
	// sends of the window; the resends keep the SID and list each send.
	const other = "+4915123456780"
	var first string
	for i := 1; i <= 5; i++ {
		r = e.twilio("POST", base+"/Verifications", c, url.Values{"To": {other}, "Channel": {"sms"}})
		j := r.json(t)
		if first == "" {
			first, _ = j["sid"].(string)
		}
		if r.status != http.StatusCreated || j["sid"] != first || len(j["send_code_attempts"].([]any)) != i {
			t.Fatalf("send %d: %d %s; want the SID %s with %d attempts", i, r.status, r.body, first, i)
		}
	}
	r = e.twilio("POST", base+"/Verifications", c, url.Values{"To": {other}, "Channel": {"sms"}})
	wantTwilio(t, r, 429, 60203)
	if r.header.Get("Retry-After") == "" {
		t.Fatalf("60203 without Retry-After: %v", r.header)
	}
}

// TestTwilioUpdate: Status=canceled and Status=approved settle a pending
// verification; after that it is gone.
func TestTwilioUpdate(t *testing.T) {
	e := newEnv(t, envOpts{})
	c := e.twilioCred(false, nil, simgate.ScopeVerify)
	base := "/v2/Services/" + simgate.DefaultServiceID
	for i, status := range []string{"canceled", "approved"} {
		to := "+491512345678" + strconv.Itoa(i)
		r := e.twilio("POST", base+"/Verifications", c, url.Values{"To": {to}, "Channel": {"sms"}})
		sid, _ := r.json(t)["sid"].(string)
		r = e.twilio("POST", base+"/Verifications/"+sid, c, url.Values{"Status": {status}})
		if j := r.json(t); r.status != http.StatusOK || j["status"] != status || j["valid"] != (status == "approved") || j["sid"] != sid {
			t.Fatalf("update to %s: %d %s", status, r.status, r.body)
		}
		wantTwilio(t, e.twilio("GET", base+"/Verifications/"+sid, c, nil), 404, 20404)
		wantTwilio(t, e.twilio("POST", base+"/Verifications/"+sid, c, url.Values{"Status": {"canceled"}}), 404, 20404)
		wantTwilio(t, e.twilio("POST", base+"/VerificationCheck", c, url.Values{"To": {to}, "Code": {e.queue.lastCode(t, to)}}), 404, 20404)
	}
}

// TestTwilioServices: services made through the Twilio surface, custom
// codes where a service allows them, and the isolation of keys limited to
// a service: another service's verifications are not found, by SID or by
// number, and neither is the service.
func TestTwilioServices(t *testing.T) {
	e := newEnv(t, envOpts{})
	admin := e.twilioCred(false, nil, simgate.ScopeAdmin)
	r := e.twilio("POST", "/v2/Services", admin, url.Values{"FriendlyName": {"Shop"}, "CodeLength": {"8"}, "CustomCodeEnabled": {"true"}})
	shop := r.json(t)
	shopSID, _ := shop["sid"].(string)
	if r.status != http.StatusCreated || !simgate.IsServiceID(shopSID) || shop["friendly_name"] != "Shop" || shop["code_length"] != float64(8) ||
		shop["custom_code_enabled"] != true || shop["account_sid"] != admin.AccountSID || shop["url"] != e.ts.URL+"/v2/Services/"+shopSID {
		t.Fatalf("create service: %d %s", r.status, r.body)
	}
	r = e.twilio("POST", "/v2/Services", admin, url.Values{"FriendlyName": {"Blog"}})
	blogSID, _ := r.json(t)["sid"].(string)
	for _, bad := range []url.Values{{"CodeLength": {"8"}}, {"FriendlyName": {"X"}, "CodeLength": {"eight"}}, {"FriendlyName": {"X"}, "CodeLength": {"0"}}, {"FriendlyName": {"X"}, "CodeLength": {"3"}},
		{"FriendlyName": {"X"}, "CustomCodeEnabled": {"yes"}}, {"FriendlyName": {"X"}, "Psd2Enabled": {"true"}}} {
		wantTwilio(t, e.twilio("POST", "/v2/Services", admin, bad), 400, 60200)
	}

	shopKey := e.twilioCred(false, []string{shopSID}, simgate.ScopeVerify)
	const to = "+4915123456789"
	// A custom code, in the service that allows them.
	r = e.twilio("POST", "/v2/Services/"+shopSID+"/Verifications", shopKey, url.Values{"To": {to}, "Channel": {"sms"}, "CustomCode": {"73921584"}})
	if r.status != http.StatusCreated || strings.Contains(string(r.body), "73921584") {
		t.Fatalf("custom code: %d %s", r.status, r.body)
	}
	if got := e.queue.lastCode(t, to); got != "73921584" {
		t.Fatalf("SMS code %q, want the custom code", got)
	}
	// The other service's verification of the same number.
	blogV := e.twilio("POST", "/v2/Services/"+blogSID+"/Verifications", admin, url.Values{"To": {to}, "Channel": {"sms"}})
	blogVSID, _ := blogV.json(t)["sid"].(string)
	blogCode := e.queue.lastCode(t, to)
	wantTwilio(t, e.twilio("POST", "/v2/Services/"+blogSID+"/Verifications", admin,
		url.Values{"To": {to}, "Channel": {"sms"}, "CustomCode": {"12345678"}}), 403, 20403)

	for _, path := range []string{"/v2/Services/" + blogSID, "/v2/Services/" + blogSID + "/Verifications/" + blogVSID,
		"/v2/Services/" + shopSID + "/Verifications/" + blogVSID} {
		wantTwilio(t, e.twilio("GET", path, shopKey, nil), 404, 20404)
	}
	for _, form := range []url.Values{{"To": {to}, "Code": {blogCode}}, {"VerificationSid": {blogVSID}, "Code": {blogCode}}} {
		wantTwilio(t, e.twilio("POST", "/v2/Services/"+blogSID+"/VerificationCheck", shopKey, form), 404, 20404)
	}
	wantTwilio(t, e.twilio("POST", "/v2/Services/"+shopSID+"/VerificationCheck", shopKey,
		url.Values{"VerificationSid": {blogVSID}, "Code": {blogCode}}), 404, 20404)
	wantTwilio(t, e.twilio("POST", "/v2/Services/"+blogSID+"/Verifications/"+blogVSID, shopKey, url.Values{"Status": {"canceled"}}), 404, 20404)
	wantTwilio(t, e.twilio("POST", "/v2/Services/"+blogSID+"/Verifications", shopKey, url.Values{"To": {to}, "Channel": {"sms"}}), 404, 20404)
	// Nothing the key tried touched the other service's verification.
	r = e.twilio("POST", "/v2/Services/"+blogSID+"/VerificationCheck", admin, url.Values{"To": {to}, "Code": {blogCode}})
	if r.status != http.StatusOK || r.json(t)["status"] != "approved" {
		t.Fatalf("blog's own check after the shop key's tries: %d %s", r.status, r.body)
	}
	// The shop key's own, by number in its service.
	r = e.twilio("POST", "/v2/Services/"+shopSID+"/VerificationCheck", shopKey, url.Values{"To": {to}, "Code": {"73921584"}})
	if r.status != http.StatusOK || r.json(t)["status"] != "approved" {
		t.Fatalf("shop's check: %d %s", r.status, r.body)
	}
}

// TestTwilioListServices: the services a key may use, a page at a time,
// with Twilio's page meta.
func TestTwilioListServices(t *testing.T) {
	e := newEnv(t, envOpts{})
	admin := e.twilioCred(false, nil, simgate.ScopeAdmin)
	var made []string
	for _, name := range []string{"Shop", "Blog"} {
		r := e.twilio("POST", "/v2/Services", admin, url.Values{"FriendlyName": {name}})
		sid, _ := r.json(t)["sid"].(string)
		made = append(made, sid)
	}
	type page struct {
		Services []struct {
			SID          string `json:"sid"`
			FriendlyName string `json:"friendly_name"`
		} `json:"services"`
		Meta struct {
			Page            int     `json:"page"`
			PageSize        int     `json:"page_size"`
			URL             string  `json:"url"`
			FirstPageURL    string  `json:"first_page_url"`
			Key             string  `json:"key"`
			PreviousPageURL *string `json:"previous_page_url"`
			NextPageURL     *string `json:"next_page_url"`
		} `json:"meta"`
	}
	list := func(c api.TwilioCredential, query string) page {
		t.Helper()
		r := e.twilio("GET", "/v2/Services"+query, c, nil)
		var p page
		if r.status != http.StatusOK {
			t.Fatalf("list%s: %d %s", query, r.status, r.body)
		}
		if err := json.Unmarshal(r.body, &p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	all := list(admin, "")
	if len(all.Services) != 3 || all.Services[0].SID != simgate.DefaultServiceID || all.Meta.PageSize != 50 || all.Meta.Key != "services" ||
		all.Meta.NextPageURL != nil || all.Meta.PreviousPageURL != nil {
		t.Fatalf("one page of all: %+v", all)
	}
	first := list(admin, "?PageSize=2")
	if len(first.Services) != 2 || first.Meta.NextPageURL == nil || *first.Meta.NextPageURL != e.ts.URL+"/v2/Services?PageSize=2&Page=1" {
		t.Fatalf("first of two pages: %+v", first)
	}
	second := list(admin, strings.TrimPrefix(*first.Meta.NextPageURL, e.ts.URL+"/v2/Services"))
	if len(second.Services) != 1 || second.Services[0].SID != all.Services[2].SID || second.Meta.NextPageURL != nil ||
		second.Meta.PreviousPageURL == nil || *second.Meta.PreviousPageURL != e.ts.URL+"/v2/Services?PageSize=2&Page=0" {
		t.Fatalf("second of two pages: %+v", second)
	}
	if far := list(admin, "?Page=9223372036854775807"); len(far.Services) != 0 || far.Meta.NextPageURL != nil {
		t.Fatalf("a page past the end: %+v", far)
	}
	// A key limited to one service lists that one only.
	shop := e.twilioCred(false, []string{made[0]}, simgate.ScopeVerify)
	if p := list(shop, ""); len(p.Services) != 1 || p.Services[0].SID != made[0] || p.Services[0].FriendlyName != "Shop" {
		t.Fatalf("the shop key's list: %+v", p)
	}
	for _, bad := range []string{"?PageSize=0", "?PageSize=1001", "?Page=-1", "?Page=x", "?Limit=5"} {
		wantTwilio(t, e.twilio("GET", "/v2/Services"+bad, admin, nil), 400, 60200)
	}
}
