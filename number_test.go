package simgate_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/simgate/simgate"
)

func FuzzRecipient(f *testing.F) {
	for _, s := range []string{"+4915123456789", "0151 23456789", "+1 (201) 555-0123", "+", "++49", "+999999999999999999999"} {
		f.Add(s)
	}
	p, _ := simgate.NewNumbers(simgate.NumberPolicy{AllowAllCountries: true, DefaultRegion: "DE"})
	f.Fuzz(func(t *testing.T, s string) {
		out, err := p.Recipient(s)
		if err != nil {
			return
		}
		if !simgate.IsE164(out) {
			t.Fatalf("recipient(%q) = %q", s, out)
		}
	})
}

// IsE164 is the one check of the form of a number: a regular expression of
// its own elsewhere would let two parts of simgate disagree on what a
// number is.
func TestOneE164Check(t *testing.T) {
	e164Pattern := regexp.MustCompile(`\\\+\[1-9\]`)
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if loc := e164Pattern.FindIndex(b); loc != nil {
			t.Errorf("%s:%d: a pattern for E.164 numbers; use simgate.IsE164 or simgate.Numbers", path, 1+strings.Count(string(b[:loc[0]]), "\n"))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestIsE164(t *testing.T) {
	for s, want := range map[string]bool{
		"+4915123456789": true, "+1234567": true, "+123456789012345": true,
		"+123456": false, "+1234567890123456": false, "+0123456789": false, "4915123456789": false,
		"+49 151 23456789": false, "+49151ABCDEFGH": false, "": false, "+": false, "++4915123456789": false,
	} {
		if got := simgate.IsE164(s); got != want {
			t.Errorf("IsE164(%q) = %v, want %v", s, got, want)
		}
	}
}

// A number is read as +CLIP and +CNUM give it: international with or
// without "+", national or of unknown type in the plan of the SIM's
// country; anything else is no number, so that it matches nothing.
func TestAddressE164(t *testing.T) {
	const de, us, es = "+4915123456789", "+16473005191", "+34600000001"
	for _, c := range []struct {
		number string
		typ    int
		home   string
		want   string
	}{
		{"+4917612345678", 145, de, "+4917612345678"},
		{"+4917612345678", 129, "", "+4917612345678"},
		{"4917612345678", 145, "", "+4917612345678"}, // international without "+"
		{"017612345678", 129, de, "+4917612345678"},  // national, unknown type
		{"017612345678", 161, de, "+4917612345678"},  // national type
		{"004917612345678", 129, de, "+4917612345678"},
		{"004917612345678", 129, "+33612345678", "+4917612345678"},
		{"4917612345678", 129, us, "+4917612345678"}, // no US number: international without "+"
		{"017612345678", 0, de, "+4917612345678"},    // no type printed
		{"16087700623", 129, us, "+16087700623"},     // NANP trunk prefix 1
		{"656783741", 161, es, "+34656783741"},       // Spain has no trunk prefix
		{"017612345678", 129, "", ""},                // no country to read it in
		{"017612345678", 129, "015123456789", ""},    // nor in a home number that is not E.164
		{"", 128, de, ""},                            // withheld
		{"Telekom", 208, de, ""},                     // alphanumeric
		{"4917612345678", 193, de, ""},               // subscriber number (TON 100)
		{"4917612345678", 300, de, ""},               // not a type-of-address octet
		{"4917612345678", 100, de, ""},               // bit 8 not set
		{"+49 176 12345678", 145, de, ""},
		{"+0176", 145, de, ""},
		{"123", 145, de, ""},
	} {
		if got := simgate.AddressE164(c.number, c.typ, c.home); got != c.want {
			t.Errorf("AddressE164(%q, %d, %q) = %q, want %q", c.number, c.typ, c.home, got, c.want)
		}
	}
}

func TestCountryOf(t *testing.T) {
	for number, want := range map[string]string{
		"+4915123456789": "DE",
		"+436641234567":  "AT",
		"+14155552671":   "US",
		"+999123456789":  "",
		"not a number":   "",
	} {
		if got := simgate.CountryOf(number); got != want {
			t.Errorf("CountryOf(%q) = %q, want %q", number, got, want)
		}
	}
	for cc, want := range map[string]bool{"DE": true, "AT": true, "de": false, "XX": false, "DEU": false, "": false} {
		if got := simgate.IsCountry(cc); got != want {
			t.Errorf("IsCountry(%q) = %v, want %v", cc, got, want)
		}
	}
}
