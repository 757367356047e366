package modem

import (
	"context"
	"strings"
	"time"

	"github.com/simgate/simgate"
)

// callGap is how long after its last ring a call counts as over: networks
// ring every few seconds, so a ring after a longer pause is a new call. A
// ring with another caller (+CLIP) is a new call at once: callers of
// missed-call verifications may follow each other within seconds.
const callGap = 10 * time.Second

// incomingCall handles a RING, +CRING or +CLIP (TS 27.007 §7.6, §6.11): the
// call is rejected at once (AT+CHUP, ATH where the modem lacks it), unless
// Config.IgnoreCalls lets it ring, and handed on once (EventCall) with the
// caller from +CLIP: <number>,<type>, read as E.164 in the plan of the
// SIM's own country (simgate.AddressE164). Calls disturb nothing else: the
// rings of a call that is let ring are only counted.
func (m *Modem) incomingCall(ctx context.Context, c *conn, line string) error {
	now := m.opts.Now()
	from, typ, clip := "", 0, strings.HasPrefix(line, "+CLIP:")
	if clip {
		f := fields(strings.TrimSpace(strings.TrimPrefix(line, "+CLIP:")))
		from = f[0]
		if len(f) > 1 {
			typ, _ = atoi(f[1])
		}
	}
	if c.clip && !clip {
		return nil // the +CLIP that follows every RING names the caller
	}
	fresh := now.Sub(m.callAt) > callGap || clip && from != m.callFrom
	m.callAt = now
	if clip {
		m.callFrom = from
	}
	if !fresh && (m.cfg.IgnoreCalls || !m.callRejected) {
		return nil // a further ring of a call already handled
	}
	rejected := false
	if !m.cfg.IgnoreCalls {
		_, err := c.cmd(ctx, "+CHUP")
		if err != nil && !sessionEnding(err) {
			_, err = c.cmd(ctx, "H")
		}
		if err != nil && sessionEnding(err) {
			return err
		}
		rejected = err == nil
		if err != nil {
			m.log.Warn("cannot reject an incoming call", "error", err)
		}
	}
	m.callRejected = rejected
	if !fresh {
		return nil
	}
	m.log.Info("incoming call", "rejected", rejected)
	ev := Event{Kind: EventCall, ModemID: m.cfg.Name, Identity: m.Identity(),
		Call: &simgate.InboundCall{ModemID: m.cfg.Name, From: from, FromE164: simgate.AddressE164(from, typ, m.Number()),
			At: now, Rejected: rejected}}
	if err := m.deliver(ctx, ev, false); err != nil {
		m.log.Warn("incoming call not recorded", "error", err)
	}
	return nil
}
