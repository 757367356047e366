package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	twclient "github.com/twilio/twilio-go/client"
	twverify "github.com/twilio/twilio-go/rest/verify/v2"

	"github.com/simgate/simgate"
)

// Twilio's own clients against a real simgate serve on virtual modems: the
// Go module github.com/twilio/twilio-go here, the npm package twilio in
// TestTwilioNodeClient. Each does what an application that uses Twilio
// Verify does, and meets each error an application must handle.

// twilioRig is a simgate serve on two virtual modems, with credentials
// made by simgate apikey create --twilio: env for verifications (an
// account SID and auth token) and adminEnv for services (an API key).
type twilioRig struct {
	*rig
	d        *serveProc
	env      map[string]string
	adminEnv map[string]string
	sim      string // the virtual modems' control API
}

func newTwilioRig(t *testing.T) *twilioRig {
	r := &twilioRig{rig: newRig(t, 2, 0)}
	r.env = r.twilioKey("app", "verify", "--twilio")
	r.adminEnv = r.twilioKey("ops", "admin", "--twilio=api-key")
	r.d = r.serve()
	t.Cleanup(func() { r.d.stop(t, syscall.SIGTERM) })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: r.net.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	r.sim = "http://" + ln.Addr().String()
	return r
}

// twilioKey runs simgate apikey create with flag and returns the
// variables it printed.
func (r *twilioRig) twilioKey(name, scopes, flag string) map[string]string {
	r.t.Helper()
	cmd := exec.Command(simgateBinary(r.t), "apikey", "create", "-c", r.config, "--name", name, "--scopes", scopes, flag)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		r.t.Fatalf("simgate apikey create %s: %v\n%s", flag, err, stderr.String())
	}
	env := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			r.t.Fatalf("simgate apikey create %s printed %q, not NAME=value", flag, sc.Text())
		}
		env[name] = value
	}
	if env["TWILIO_ACCOUNT_SID"] == "" || env["TWILIO_AUTH_TOKEN"] == "" && env["TWILIO_API_SECRET"] == "" {
		r.t.Fatalf("simgate apikey create %s printed %q", flag, out)
	}
	return env
}

// code waits for the nth SMS to the handset to and returns the code in it.
func (r *twilioRig) code(to string, nth int) string {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	inbox, err := r.net.WaitInbox(ctx, to, nth)
	if err != nil {
		r.t.Fatalf("SMS %d to %s: %v", nth, to, err)
	}
	code := anyCodeRE.FindString(inbox[nth-1].Text)
	if code == "" {
		r.t.Fatalf("no code in %q", inbox[nth-1].Text)
	}
	return code
}

// anyCodeRE finds a code of any length a service may have.
var anyCodeRE = regexp.MustCompile(`\b\d{4,10}\b`)

// toLocal sends the requests for verify.twilio.com to simgate, and fails
// any other, so that a request that would have left the machine is seen.
type toLocal struct{ base *url.URL }

func (l toLocal) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Host != "verify.twilio.com" {
		return nil, fmt.Errorf("the client asked %s, not verify.twilio.com", req.URL.Host)
	}
	req = req.Clone(req.Context())
	req.URL.Scheme, req.URL.Host, req.Host = l.base.Scheme, l.base.Host, ""
	return http.DefaultTransport.RoundTrip(req)
}

// goClient is twilio-go's Verify v2 client with the given credentials,
// its requests sent to simgate.
func (r *twilioRig) goClient(username, secret, account string) *twverify.ApiService {
	base, err := url.Parse(r.d.base)
	if err != nil {
		r.t.Fatal(err)
	}
	c := &twclient.Client{Credentials: twclient.NewCredentials(username, secret), HTTPClient: &http.Client{Transport: toLocal{base}, Timeout: 30 * time.Second}}
	c.SetAccountSid(account)
	return twverify.NewApiServiceWithClient(c)
}

// wantRestError fails unless err is Twilio's error with status and code.
func wantRestError(t *testing.T, what string, err error, status, code int) {
	t.Helper()
	var te *twclient.TwilioRestError
	if !errors.As(err, &te) || te.Status != status || te.Code != code || te.Message == "" {
		t.Fatalf("%s: %v; want Twilio's error %d with status %d", what, err, code, status)
	}
}

func TestTwilioGoClient(t *testing.T) {
	r := newTwilioRig(t)
	service := simgate.DefaultServiceID
	tw := r.goClient(r.env["TWILIO_ACCOUNT_SID"], r.env["TWILIO_AUTH_TOKEN"], r.env["TWILIO_ACCOUNT_SID"])
	const to = "+4915111111111"

	// Create, a wrong code, fetch, the right code.
	v, err := tw.CreateVerification(service, (&twverify.CreateVerificationParams{}).SetTo(to).SetChannel("sms"))
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if *v.Status != "pending" || *v.To != to || *v.Channel != "sms" || *v.ServiceSid != service ||
		*v.AccountSid != r.env["TWILIO_ACCOUNT_SID"] || v.SendCodeAttempts == nil || len(*v.SendCodeAttempts) != 1 ||
		v.DateCreated == nil || time.Since(*v.DateCreated) > time.Minute {
		t.Fatalf("created: %+v", v)
	}
	sid := *v.Sid
	code := r.code(to, 1)
	check, err := tw.CreateVerificationCheck(service, (&twverify.CreateVerificationCheckParams{}).SetTo(to).SetCode(wrong(code)))
	if err != nil || *check.Status != "pending" || *check.Valid {
		t.Fatalf("wrong code: %+v, %v; want pending, not valid", check, err)
	}
	fetched, err := tw.FetchVerification(service, sid)
	if err != nil || *fetched.Sid != sid || *fetched.Status != "pending" {
		t.Fatalf("fetch: %+v, %v", fetched, err)
	}
	check, err = tw.CreateVerificationCheck(service, (&twverify.CreateVerificationCheckParams{}).SetTo(to).SetCode(code))
	if err != nil || *check.Status != "approved" || !*check.Valid || *check.Sid != sid {
		t.Fatalf("right code: %+v, %v; want approved and valid", check, err)
	}
	// A check after the approval: Twilio deleted it.
	_, err = tw.CreateVerificationCheck(service, (&twverify.CreateVerificationCheckParams{}).SetTo(to).SetCode(code))
	wantRestError(t, "check after the approval", err, 404, 20404)

	// Cancel.
	const other = "+4915122222222"
	v, err = tw.CreateVerification(service, (&twverify.CreateVerificationParams{}).SetTo(other).SetChannel("sms"))
	if err != nil {
		t.Fatal(err)
	}
	canceled, err := tw.UpdateVerification(service, *v.Sid, (&twverify.UpdateVerificationParams{}).SetStatus("canceled"))
	if err != nil || *canceled.Status != "canceled" {
		t.Fatalf("cancel: %+v, %v", canceled, err)
	}
	_, err = tw.FetchVerification(service, *v.Sid)
	wantRestError(t, "fetch after the cancel", err, 404, 20404)

	// Too many checks: five wrong codes end it; the sixth is 60202.
	const third = "+4915133333333"
	v, err = tw.CreateVerification(service, (&twverify.CreateVerificationParams{}).SetTo(third).SetChannel("sms"))
	if err != nil {
		t.Fatal(err)
	}
	code = r.code(third, 1)
	for i := range 5 {
		if _, err := tw.CreateVerificationCheck(service, (&twverify.CreateVerificationCheckParams{}).SetTo(third).SetCode(wrong(code))); err != nil {
			t.Fatalf("wrong code %d: %v", i+1, err)
		}
	}
	_, err = tw.CreateVerificationCheck(service, (&twverify.CreateVerificationCheckParams{}).SetTo(third).SetCode(code))
	wantRestError(t, "sixth check", err, 429, 60202)
	_, err = tw.CreateVerificationCheck(service, (&twverify.CreateVerificationCheckParams{}).SetVerificationSid(*v.Sid).SetCode(code))
	wantRestError(t, "seventh check, by its SID", err, 429, 60202)

	// Too many sends: five within the window, then 60203.
	const fourth = "+4915144444444"
	for i := range 5 {
		if _, err := tw.CreateVerification(service, (&twverify.CreateVerificationParams{}).SetTo(fourth).SetChannel("sms")); err != nil {
			t.Fatalf("send %d: %v", i+1, err)
		}
	}
	_, err = tw.CreateVerification(service, (&twverify.CreateVerificationParams{}).SetTo(fourth).SetChannel("sms"))
	wantRestError(t, "sixth send", err, 429, 60203)

	// A channel simgate has not, an unknown SID, bad credentials.
	_, err = tw.CreateVerification(service, (&twverify.CreateVerificationParams{}).SetTo(fourth).SetChannel("whatsapp"))
	wantRestError(t, "whatsapp", err, 400, 60223)
	_, err = tw.FetchVerification(service, "VE"+strings.Repeat("0", 32))
	wantRestError(t, "unknown SID", err, 404, 20404)
	bad := r.goClient(r.env["TWILIO_ACCOUNT_SID"], strings.Repeat("x", 32), r.env["TWILIO_ACCOUNT_SID"])
	_, err = bad.CreateVerification(service, (&twverify.CreateVerificationParams{}).SetTo(to).SetChannel("sms"))
	wantRestError(t, "bad credentials", err, 401, 20003)

	// Services, with the API key credential: made, fetched, used.
	admin := r.goClient(r.adminEnv["TWILIO_API_KEY"], r.adminEnv["TWILIO_API_SECRET"], r.adminEnv["TWILIO_ACCOUNT_SID"])
	shop, err := admin.CreateService((&twverify.CreateServiceParams{}).SetFriendlyName("Shop").SetCodeLength(8))
	if err != nil || !simgate.IsServiceID(*shop.Sid) || *shop.FriendlyName != "Shop" || shop.CodeLength != 8 ||
		*shop.AccountSid != r.adminEnv["TWILIO_ACCOUNT_SID"] {
		t.Fatalf("create service: %+v, %v", shop, err)
	}
	if got, err := tw.FetchService(*shop.Sid); err != nil || *got.FriendlyName != "Shop" {
		t.Fatalf("fetch service: %+v, %v", got, err)
	}
	listed, err := tw.ListService(&twverify.ListServiceParams{})
	if err != nil || len(listed) != 2 || *listed[0].Sid != service || *listed[0].Sid == *listed[1].Sid || *listed[1].Sid != *shop.Sid {
		t.Fatalf("list services: %+v, %v; want the default service and the shop", listed, err)
	}
	const fifth = "+4915155555555"
	if _, err := tw.CreateVerification(*shop.Sid, (&twverify.CreateVerificationParams{}).SetTo(fifth).SetChannel("sms")); err != nil {
		t.Fatal(err)
	}
	if code := r.code(fifth, 1); len(code) != 8 {
		t.Fatalf("code %q of the service with 8 digits", code)
	}
	_, err = tw.CreateService((&twverify.CreateServiceParams{}).SetFriendlyName("Nope"))
	wantRestError(t, "service by a verify key", err, 403, 20403)
}

// wrong returns a code of code's length that is not code.
func wrong(code string) string {
	b := []byte(code)
	b[0] = '0' + (b[0]-'0'+1)%10
	return string(b)
}

// TestTwilioNodeClient runs the npm package twilio (its version pinned by
// testdata/twilio-node/package-lock.json, installed by npm ci, as .ci/run
// does) against simgate serve: verify.test.mjs does what TestTwilioGoClient
// does. It skips when the package is not installed, unless
// SIMGATE_REQUIRE_INTEROP=1 (as in CI).
func TestTwilioNodeClient(t *testing.T) {
	dir, err := filepath.Abs(filepath.Join("testdata", "twilio-node"))
	if err != nil {
		t.Fatal(err)
	}
	node, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat(filepath.Join(dir, "node_modules", "twilio", "package.json"))
	}
	if err != nil {
		if os.Getenv("SIMGATE_REQUIRE_INTEROP") == "1" {
			t.Fatalf("Node.js or the npm package twilio is missing (%v) and SIMGATE_REQUIRE_INTEROP=1: npm ci --prefix %s", err, dir)
		}
		t.Skipf("Node.js or the npm package twilio is missing (%v): npm ci --prefix %s; set SIMGATE_REQUIRE_INTEROP=1 to fail instead", err, dir)
	}
	r := newTwilioRig(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "--test", "verify.test.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "SIMGATE_URL="+r.d.base, "SIM_URL="+r.sim, "VERIFY_SERVICE_SID="+simgate.DefaultServiceID,
		"TWILIO_ACCOUNT_SID="+r.env["TWILIO_ACCOUNT_SID"], "TWILIO_AUTH_TOKEN="+r.env["TWILIO_AUTH_TOKEN"],
		"ADMIN_ACCOUNT_SID="+r.adminEnv["TWILIO_ACCOUNT_SID"], "TWILIO_API_KEY="+r.adminEnv["TWILIO_API_KEY"],
		"TWILIO_API_SECRET="+r.adminEnv["TWILIO_API_SECRET"])
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node --test verify.test.mjs: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}
