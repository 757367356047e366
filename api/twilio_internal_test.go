package api

import (
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/simgate/simgate"
)

// FuzzTwilioForm: no body panics the form reader; what it takes holds only
// known parameters, each once, in valid UTF-8, and what it refuses is
// CodeInvalid.
func FuzzTwilioForm(f *testing.F) {
	for _, s := range []string{"To=%2B4915123456789&Channel=sms", "To=a&To=b", "Code=1&VerificationSid=VE0", "x=1", "To=%ff",
		"a;b", "%zz", "", "=", "&&&", "Locale=pt-BR&CustomCode=123456"} {
		f.Add([]byte(s))
	}
	known := []string{"To", "Channel", "Locale", "CustomCode", "Code", "VerificationSid"}
	f.Fuzz(func(t *testing.T, b []byte) {
		form, err := twilioForm(b, known...)
		if err != nil {
			if simgate.ErrorCode(err) != simgate.CodeInvalid || !utf8.ValidString(simgate.ErrorMessage(err)) {
				t.Fatalf("refusal of %q: %v", b, err)
			}
			return
		}
		for name, v := range form {
			if !slices.Contains(known, name) || !utf8.ValidString(v) {
				t.Fatalf("%q took %q=%q", b, name, v)
			}
		}
	})
}

// FuzzTwilioSID: a VerificationSid names a verification id whose SID is
// the same SID in lower case, and nothing else is read as one.
func FuzzTwilioSID(f *testing.F) {
	for _, s := range []string{"VE" + strings.Repeat("0", 32), "VE" + strings.Repeat("F", 32), "VE01a20846fe0003a71282a08c57f718bc", "VE", "VA" + strings.Repeat("0", 32), "VEzz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, sid string) {
		id, ok := twilioID("VE", "ver", sid)
		if !ok {
			return
		}
		back, err := twilioSID("VE", "ver", id)
		if err != nil || back != "VE"+strings.ToLower(sid[2:]) {
			t.Fatalf("%q is the id %q, whose SID is %q (%v)", sid, id, back, err)
		}
	})
}
