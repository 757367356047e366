package modem

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/simgate/simgate"
	"github.com/simgate/simgate/modem/internal/charsets"
	"github.com/simgate/simgate/queue"
	"github.com/simgate/simgate/store"
)

// FuzzReceivePath feeds bytes, as a modem would send them, through the
// whole receive path: the line filter (unsolicited lines, +CMT/+CDS and
// their PDU lines), a +CMGL listing of the same lines, PDU decoding, the
// reassembly of long SMS, the event, and the SQLite store the daemon writes
// it to (a report through the queue's rules, queue.RecordReport). Nothing
// may panic, and every event the driver makes must be accepted by the
// store: an inbound message or a report the store refuses would be lost. The seeds are the recorded device answers of
// testdata/devices (see docs/FUZZ.md).
func FuzzReceivePath(f *testing.F) {
	charsets.Warm()
	for _, c := range loadDeviceCases(f) {
		lines := c.answer
		switch c.kind {
		case "pdu":
			lines = []string{"+CMT: ," + itoa(c.length), c.answer[0]}
		}
		f.Add([]byte("\r\n" + strings.Join(lines, "\r\n") + "\r\n"))
	}
	db, err := store.Open(context.Background(), filepath.Join(f.TempDir(), "fuzz.db"), store.Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { db.Close() })
	if err := db.UpsertModem(context.Background(), "fuzz", simgate.ModemIdentity{}); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		m := newModem(Config{Name: "fuzz"}, Options{}, nil)
		fl := newFilter(nil)
		fl.safeFeed(data)
		if fl.rerr != nil {
			t.Fatalf("the filter failed: %v", fl.rerr)
		}
		var ins []pduIn
		for _, u := range fl.takeURCs() {
			if u.pdu == "" {
				continue
			}
			hf := fields(strings.TrimSpace(u.line[strings.IndexByte(u.line, ':')+1:]))
			tlen, ok := atoi(hf[len(hf)-1])
			if !ok {
				tlen = -1
			}
			ins = append(ins, pduIn{hex: u.pdu, tlen: tlen, stat: -1})
		}
		for _, e := range m.parseListing(strings.Split(string(data), "\n"), "+CMGL", 0) {
			ins = append(ins, pduIn{hex: e.pdu, tlen: e.tlen, stat: e.stat, loc: &storeLoc{mem: "SM", idx: e.idx}})
		}
		now := time.Now()
		var evs []*Event
		for _, in := range ins {
			if r := m.decodeIn(in, now); r.ev != nil {
				evs = append(evs, r.ev)
			}
		}
		for _, p := range m.asm.expire(now, 0) {
			evs = append(evs, m.inboundEvent(p, now))
		}
		for _, ev := range evs {
			var err error
			switch ev.Kind {
			case EventInbound:
				err = db.CreateInboundMessage(ctx, ev.Inbound)
			case EventReport:
				err = db.UpdateMessages(ctx, func(tx simgate.MessageTx) error {
					return queue.RecordReport(ctx, tx, ev.Report, time.Hour)
				})
			}
			if err != nil {
				t.Fatalf("the store refused %+v: %v", ev, err)
			}
		}
	})
}
