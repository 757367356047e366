package sim

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// Test hooks: exact PDUs in and out of a modem's stores, for host software
// that must cope with what real modems hold (messages left on the SIM,
// undecodable PDUs, headers whose <length> is wrong).

// PutStored places the PDU pduHex into store mem ("SM", "ME" or "SR") with
// status stat (0 REC UNREAD, 1 REC READ, 2 STO UNSENT, 3 STO SENT) and
// returns its index, as a message already on the SIM at power-on: no +CMTI
// is raised. pduHex is hex in either case, the SMSC part first as a modem
// prints it (e.g. "07911326040000F0040B91..."); the TPDU need not decode.
// AT+CMGR and AT+CMGL print it back byte for byte after a header whose
// <length> is the TPDU's octet count, the total without the SMSC part; in
// text mode a TPDU that does not decode answers +CMS ERROR: 500. It fails
// for an unknown store, a bad stat, bad hex, an SMSC part longer than the
// PDU, or a full store.
func (m *Modem) PutStored(mem string, stat int, pduHex string) (int, error) {
	return m.putStored(mem, stat, pduHex, -1)
}

// PutStoredLen is PutStored with the <length> of the header forced to
// length, as real modems sometimes print a length that does not match the
// PDU. Any bytes are accepted; if the first octet announces an SMSC part
// longer than the PDU, all of it counts as the SMSC part.
func (m *Modem) PutStoredLen(mem string, stat int, pduHex string, length int) (int, error) {
	if length < 0 {
		return 0, fmt.Errorf("cannot store PDU: negative length %d", length)
	}
	return m.putStored(mem, stat, pduHex, length)
}

func (m *Modem) putStored(mem string, stat int, pduHex string, length int) (int, error) {
	if mem != "SM" && mem != "ME" && mem != "SR" {
		return 0, fmt.Errorf("cannot store PDU: unknown store %q", mem)
	}
	if stat < statRecUnread || stat > statStoSent {
		return 0, fmt.Errorf("cannot store PDU: stat %d is not 0-3", stat)
	}
	smsc, tp, err := splitPDU(pduHex, length >= 0)
	if err != nil {
		return 0, fmt.Errorf("cannot store PDU: %w", err)
	}
	msg := &storedMsg{
		stat:    stat,
		smscRaw: smsc,
		tpdu:    tp,
		// TP-MTI 10 is a status report; undecodable bytes in SR count as
		// one too.
		report: mem == "SR" || len(tp) > 0 && tp[0]&0x03 == 0x02,
	}
	if length >= 0 {
		msg.length, msg.fixedLength = length, true
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	idx := m.stores[mem].add(msg)
	if idx == 0 {
		return 0, fmt.Errorf("cannot store PDU: store %s is full", mem)
	}
	return idx, nil
}

// DeliverPDU makes the network deliver the SMS-DELIVER pduHex (hex, the
// SMSC part first) to the modem as it is, byte for byte, by the same path
// as Network.Inject: stored and announced with +CMTI, or routed as +CMT, as
// AT+CNMI says; held by the network while the modem is unregistered or
// unplugged. The TPDU need not decode. It fails for bad hex, an SMSC part
// longer than the PDU, or a closed network.
func (m *Modem) DeliverPDU(pduHex string) error {
	return m.deliverExact(pduHex, false)
}

// DeliverReportPDU is DeliverPDU for an SMS-STATUS-REPORT: routed as +CDS,
// or stored in "SR" (announced with +CDSI), as AT+CNMI <ds> says.
func (m *Modem) DeliverReportPDU(pduHex string) error {
	return m.deliverExact(pduHex, true)
}

func (m *Modem) deliverExact(pduHex string, report bool) error {
	smsc, tp, err := splitPDU(pduHex, false)
	if err != nil {
		return fmt.Errorf("cannot deliver PDU: %w", err)
	}
	m.net.mu.Lock()
	closed := m.net.closed
	m.net.mu.Unlock()
	if closed {
		return ErrClosed
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.pending = append(m.pending, pendingMsg{tpdu: tp, smscRaw: smsc, report: report})
	m.flushPendingLocked()
	return nil
}

// Stored returns what store mem ("SM", "ME" or "SR") holds now: index to
// PDU in upper-case hex, SMSC part first, as AT+CMGR prints it in PDU mode
// without the LowercaseHex and NoSMSCInReports faults. It returns nil for
// an unknown store.
func (m *Modem) Stored(mem string) map[int]string {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.stores[mem]
	if s == nil {
		return nil
	}
	out := map[int]string{}
	for i, msg := range s.slots {
		if msg != nil {
			out[i+1] = strings.ToUpper(hex.EncodeToString(msg.pdu()))
		}
	}
	return out
}

// splitPDU decodes a PDU in hex and splits it into the SMSC part, whose
// length its first octet gives, and the TPDU. With loose, an SMSC part
// longer than the PDU takes all of it instead of failing.
func splitPDU(pduHex string, loose bool) (smsc, tp []byte, err error) {
	b, err := hex.DecodeString(strings.TrimSpace(pduHex))
	if err != nil {
		return nil, nil, fmt.Errorf("bad hex: %w", err)
	}
	if len(b) == 0 {
		return nil, nil, errors.New("empty PDU")
	}
	n := 1 + int(b[0])
	if n > len(b) {
		if !loose {
			return nil, nil, fmt.Errorf("SMSC part of %d octets is longer than the %d-octet PDU", n, len(b))
		}
		n = len(b)
	}
	return b[:n:n], b[n:], nil
}
