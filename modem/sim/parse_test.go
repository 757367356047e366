package sim

import (
	"errors"
	"reflect"
	"testing"
)

func TestParseCommandLine(t *testing.T) {
	for _, tc := range []struct {
		line string
		want []Command
	}{
		{"AT", nil},
		{"at", nil},
		{"ATE0", []Command{{Name: "E", Args: []string{"0"}}}},
		{"ATE0V1", []Command{{Name: "E", Args: []string{"0"}}, {Name: "V", Args: []string{"1"}}}},
		{"ATZ", []Command{{Name: "Z"}}},
		{"AT&F", []Command{{Name: "&F"}}},
		{"AT&FE0", []Command{{Name: "&F"}, {Name: "E", Args: []string{"0"}}}},
		{"ATI", []Command{{Name: "I"}}},
		{"ATS3?", []Command{{Name: "S3", Op: OpRead}}},
		{"ATS0=2", []Command{{Name: "S0", Op: OpSet, Args: []string{"2"}}}},
		{"AT+CGMI", []Command{{Name: "+CGMI"}}},
		{"at+cgmi", []Command{{Name: "+CGMI"}}},
		{"AT+CSCA?", []Command{{Name: "+CSCA", Op: OpRead}}},
		{"AT+CNMI=?", []Command{{Name: "+CNMI", Op: OpTest}}},
		{"AT+CNMI=2,1,0,1,0", []Command{{Name: "+CNMI", Op: OpSet, Args: []string{"2", "1", "0", "1", "0"}}}},
		{"AT+CNMI=2,,0", []Command{{Name: "+CNMI", Op: OpSet, Args: []string{"2", "", "0"}}}},
		{"AT+CMEE=1;+CREG=2", []Command{{Name: "+CMEE", Op: OpSet, Args: []string{"1"}}, {Name: "+CREG", Op: OpSet, Args: []string{"2"}}}},
		{"AT+CSQ; +CGMI", []Command{{Name: "+CSQ"}, {Name: "+CGMI"}}},
		{`AT+CPMS="ME","SM"`, []Command{{Name: "+CPMS", Op: OpSet, Args: []string{"ME", "SM"}}}},
		{`AT+CPMS="me"`, []Command{{Name: "+CPMS", Op: OpSet, Args: []string{"me"}}}},
		{`AT+CMGS="+1555;1",145`, []Command{{Name: "+CMGS", Op: OpSet, Args: []string{"+1555;1", "145"}}}},
		{`AT+CPIN="12\22"`, []Command{{Name: "+CPIN", Op: OpSet, Args: []string{`12"`}}}},
		{"AT$TSSPCSW=?", []Command{{Name: "$TSSPCSW", Op: OpTest}}},
		{"AT^ICCID?", []Command{{Name: "^ICCID", Op: OpRead}}},
		{"AT!ICCID?", []Command{{Name: "!ICCID", Op: OpRead}}},
		{"AT+CMGL=4", []Command{{Name: "+CMGL", Op: OpSet, Args: []string{"4"}}}},
		{"AT + CSQ", []Command{{Name: "+CSQ"}}},
		{"ATD+15551234;", []Command{{Name: "D", Args: []string{"+15551234;"}}}},
		{"AT+CMGF=", []Command{{Name: "+CMGF", Op: OpSet, Args: []string{""}}}},
	} {
		t.Run(tc.line, func(t *testing.T) {
			got, err := ParseCommandLine(tc.line)
			if err != nil {
				t.Fatalf("error %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %#v\nwant %#v", got, tc.want)
			}
		})
	}
}

func TestParseCommandLineErrors(t *testing.T) {
	for _, line := range []string{
		"", "A", "hello", "BT+CSQ",
		`AT+CPMS="SM`, // unterminated string
		"AT+",         // no name
		"AT+CSQ?X",    // junk after a command
		"AT&",         // & without a letter
		"ATS=1",       // S without a register
		"AT#",         // prefix only
		`AT+CMGS=a"b"`,
		"AT\x01",
	} {
		if _, err := ParseCommandLine(line); err == nil {
			t.Errorf("%q: no error", line)
		}
	}
	if _, err := ParseCommandLine("hello"); !errors.Is(err, ErrNoPrefix) {
		t.Errorf("hello: %v, want ErrNoPrefix", err)
	}
}
