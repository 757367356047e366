package simgate_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/simgate/simgate"
)

func TestRSSIAndBars(t *testing.T) {
	for _, tt := range []struct {
		rssi, dbm, bars int
		known           bool
	}{
		{0, -113, 0, true}, {9, -95, 1, true}, {10, -93, 2, true}, {15, -83, 3, true},
		{20, -73, 4, true}, {31, -51, 4, true}, {99, 0, 0, false}, {-1, 0, 0, false},
	} {
		dbm, ok := simgate.RSSIToDBm(tt.rssi)
		if dbm != tt.dbm || ok != tt.known {
			t.Errorf("RSSIToDBm(%d) = %d, %v; want %d, %v", tt.rssi, dbm, ok, tt.dbm, tt.known)
		}
		if got := simgate.SignalBars(tt.rssi); got != tt.bars {
			t.Errorf("SignalBars(%d) = %d, want %d", tt.rssi, got, tt.bars)
		}
	}
}

func TestClassifyTPST(t *testing.T) {
	for st, want := range map[int]simgate.ReportOutcome{
		0x00: simgate.ReportDelivered, 0x02: simgate.ReportDelivered, 0x1F: simgate.ReportDelivered,
		0x20: simgate.ReportPending, 0x25: simgate.ReportPending, 0x3F: simgate.ReportPending,
		0x40: simgate.ReportFailed, 0x45: simgate.ReportFailed, 0x60: simgate.ReportFailed, 0x7F: simgate.ReportFailed,
	} {
		if got := simgate.ClassifyTPST(st); got != want {
			t.Errorf("ClassifyTPST(0x%02X) = %v, want %v", st, got, want)
		}
	}
}

type classed struct{ c simgate.SendClass }

func (e classed) Error() string                { return e.c.String() }
func (e classed) SendClass() simgate.SendClass { return e.c }
func (e classed) SentParts() []int             { return []int{7} }

func TestSendClassOf(t *testing.T) {
	wrapped := fmt.Errorf("submit: %w", classed{simgate.ClassPermanentRecipient})
	for _, tt := range []struct {
		err  error
		want simgate.SendClass
	}{
		{nil, 0},
		{wrapped, simgate.ClassPermanentRecipient},
		{context.DeadlineExceeded, simgate.ClassTransient},
		{errors.New("port gone"), simgate.ClassModemUnhealthy},
	} {
		if got := simgate.SendClassOf(tt.err); got != tt.want {
			t.Errorf("SendClassOf(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
	if got := simgate.SentParts(wrapped); len(got) != 1 || got[0] != 7 {
		t.Errorf("SentParts = %v", got)
	}
	for c, retry := range map[simgate.SendClass]bool{
		simgate.ClassTransient: true, simgate.ClassPermanentSIM: true, simgate.ClassModemUnhealthy: true,
		simgate.ClassPermanentRecipient: false, simgate.ClassPermanentMessage: false, simgate.ClassAmbiguous: false,
	} {
		if c.Retryable() != retry {
			t.Errorf("%v.Retryable() = %v", c, !retry)
		}
	}
}

func TestErrors(t *testing.T) {
	err := fmt.Errorf("cannot create: %w", simgate.Errorf(simgate.CodeInvalid, "to %q is not a number", "x"))
	if simgate.ErrorCode(err) != simgate.CodeInvalid || simgate.ErrorMessage(err) != `to "x" is not a number` {
		t.Fatalf("code %q message %q", simgate.ErrorCode(err), simgate.ErrorMessage(err))
	}
	internal := errors.New("disk I/O error at /var/lib/simgate")
	if simgate.ErrorCode(internal) != simgate.CodeInternal || simgate.ErrorMessage(internal) != "internal error" {
		t.Fatal("an internal error's text would reach the client")
	}
	if simgate.ErrorCode(nil) != "" {
		t.Fatal("nil has a code")
	}
}

func TestParseScopesAndPriority(t *testing.T) {
	if sc, err := simgate.ParseScopes("verify, send"); err != nil || len(sc) != 2 {
		t.Fatalf("ParseScopes: %v, %v", sc, err)
	}
	for _, bad := range []string{"", "root", "verify,,x"} {
		if _, err := simgate.ParseScopes(bad); err == nil {
			t.Errorf("ParseScopes(%q) accepted", bad)
		}
	}
	k := simgate.APIKey{Scopes: []simgate.Scope{simgate.ScopeAdmin}}
	if !k.Has(simgate.ScopeSend) {
		t.Error("admin does not imply send")
	}
	if p, err := simgate.ParsePriority("high"); err != nil || p != simgate.PriorityHigh || p.String() != "high" {
		t.Errorf("ParsePriority(high) = %v, %v", p, err)
	}
	if _, err := simgate.ParsePriority("urgent"); simgate.ErrorCode(err) != simgate.CodeInvalid {
		t.Errorf("ParsePriority(urgent): %v", err)
	}
}

func TestBackoff(t *testing.T) {
	for _, tc := range []struct {
		attempt int
		want    time.Duration
	}{{0, 5 * time.Second}, {1, 5 * time.Second}, {2, 10 * time.Second}, {3, 20 * time.Second}, {7, time.Minute}, {100, time.Minute}} {
		if got := simgate.Backoff(5*time.Second, time.Minute, tc.attempt); got != tc.want {
			t.Errorf("Backoff(5s, 1m, %d) = %v, want %v", tc.attempt, got, tc.want)
		}
	}
}
