package modem

import (
	"testing"
	"time"

	"github.com/simgate/simgate/modem/sim"
)

// An incoming call is rejected within a second and handed on once with the
// caller's number; a call during a submit leaves the submit alone; with
// IgnoreCalls the call rings on and is still handed on once.
func TestIncomingCalls(t *testing.T) {
	t.Run("rejected", func(t *testing.T) {
		n, mods, dir := startSims(t)
		evs := newEvents()
		openModem(t, Config{Name: "m0", Device: mods[0].Path()}, testOptions(t, dir, evs))
		if err := n.Call("+4917612345678", mods[0].Config().Number); err != nil {
			t.Fatal(err)
		}
		call := evs.wait(t, EventCall, 1)[0].Call
		if call.From != "+4917612345678" || call.FromE164 != "+4917612345678" || !call.Rejected {
			t.Fatalf("call %+v, want rejected from +4917612345678", call)
		}
		eventually(t, "the call rejected on the network", func() bool {
			cs := mods[0].Calls()
			return len(cs) == 1 && cs[0].Rejected
		})
		if cs := mods[0].Calls(); cs[0].Rings != 1 {
			t.Fatalf("the call rang %d times, want once (rejected within a second)", cs[0].Rings)
		}
	})
	t.Run("callers in a row", func(t *testing.T) {
		// Another caller within seconds of the last call's ring is a new
		// call; the same caller again within them is a ring of the same.
		n, mods, dir := startSims(t)
		evs := newEvents()
		openModem(t, Config{Name: "m0", Device: mods[0].Path()}, testOptions(t, dir, evs))
		for i, from := range []string{"+4917612345678", "+4917612345679"} {
			if err := n.Call(from, mods[0].Config().Number); err != nil {
				t.Fatal(err)
			}
			if call := evs.wait(t, EventCall, i+1)[i].Call; call.From != from || !call.Rejected {
				t.Fatalf("call %d: %+v, want rejected from %s", i+1, call, from)
			}
		}
		if err := n.Call("+4917612345679", mods[0].Config().Number); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the third call rejected", func() bool { cs := mods[0].Calls(); return len(cs) == 3 && cs[2].Rejected })
		// Events come in order: a fourth caller's is the third event
		// unless the third call had one.
		if err := n.Call("+4917612345670", mods[0].Config().Number); err != nil {
			t.Fatal(err)
		}
		if call := evs.wait(t, EventCall, 3)[2].Call; call.From != "+4917612345670" {
			t.Fatalf("third event from %s: the same caller within %s was handed on as a new call", call.From, callGap)
		}
	})
	t.Run("national caller", func(t *testing.T) {
		// +CLIP: "017612345678",129 to a German SIM: the caller is read
		// in Germany's plan; with the SIM's number unknown it cannot be.
		n, mods, dir := startSims(t, sim.Config{Number: "+4917011111111"}, sim.Config{Number: "+4917022222222", NoNumber: true})
		evs := newEvents()
		opts := testOptions(t, dir, evs)
		openModem(t, Config{Name: "m0", Device: mods[0].Path()}, opts)
		openModem(t, Config{Name: "m1", Device: mods[1].Path()}, opts)
		for _, to := range []string{"+4917011111111", "+4917022222222"} {
			if err := n.Call("017612345678", to); err != nil {
				t.Fatal(err)
			}
		}
		got := map[string]string{}
		for _, ev := range evs.wait(t, EventCall, 2) {
			if ev.Call.From != "017612345678" || !ev.Call.Rejected {
				t.Fatalf("call %+v, want rejected from 017612345678 as printed", ev.Call)
			}
			got[ev.Call.ModemID] = ev.Call.FromE164
		}
		if got["m0"] != "+4917612345678" || got["m1"] != "" {
			t.Fatalf("callers in E.164 by modem: %v, want +4917612345678 on m0 and none on m1", got)
		}
	})
	t.Run("during a submit", func(t *testing.T) {
		n, mods, dir := startSims(t, sim.Config{SubmitLatency: 500 * time.Millisecond})
		evs := newEvents()
		m := openModem(t, Config{Name: "m0", Device: mods[0].Path()}, testOptions(t, dir, evs))
		done := make(chan error, 1)
		go func() {
			_, err := m.Send(testCtx(t), "+15557654321", "while the phone rings")
			done <- err
		}()
		time.Sleep(150 * time.Millisecond)
		if err := n.Call("+4917612345678", mods[0].Config().Number); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatalf("Send during the call: %v", err)
		}
		if call := evs.wait(t, EventCall, 1)[0].Call; !call.Rejected {
			t.Fatalf("call %+v, want rejected", call)
		}
		if subs := n.Submissions(); len(subs) != 1 {
			t.Fatalf("%d submissions, want 1", len(subs))
		}
	})
	t.Run("ignored", func(t *testing.T) {
		n, mods, dir := startSims(t)
		evs := newEvents()
		openModem(t, Config{Name: "m0", Device: mods[0].Path(), IgnoreCalls: true}, testOptions(t, dir, evs))
		if err := n.Call("+4917612345678", mods[0].Config().Number); err != nil {
			t.Fatal(err)
		}
		eventually(t, "three rings", func() bool { cs := mods[0].Calls(); return len(cs) == 1 && cs[0].Rings >= 3 })
		if got := evs.count(EventCall); got != 1 {
			t.Fatalf("%d call events, want 1 for the whole call", got)
		}
		if cs := mods[0].Calls(); cs[0].Rejected {
			t.Fatal("an ignored call was rejected")
		}
	})
}
