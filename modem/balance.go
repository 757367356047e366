package modem

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/simgate/simgate"
)

// watchBalance reads the SIM's balance when Config.Balance says it is due
// (at the start of a session and every Balance.Every), hands it to the
// subscriber (EventBalance) and keeps it in the status. A modem is not
// taken out of rotation for a low balance: that is the operator's call.
func (m *Modem) watchBalance(ctx context.Context, c *conn) error {
	w := m.cfg.Balance
	if w == nil || m.opts.Now().Sub(m.balanceAt) < w.Every {
		return nil
	}
	m.balanceAt = m.opts.Now()
	job := &ussdJob{code: w.Code}
	err := m.runUSSD(ctx, c, job)
	if err != nil && sessionEnding(err) {
		return err
	}
	b := m.readBalance(job.result, err)
	m.mu.Lock()
	prev := m.st.Balance
	b.CrossedLow = b.Low && (prev == nil || prev.Amount == nil || !prev.Low)
	m.st.Balance = b
	m.mu.Unlock()
	switch {
	case b.Amount == nil:
		m.log.Warn("cannot read the balance", "error", b.Err, "answer", b.Text)
	case b.CrossedLow:
		m.log.Warn("balance low", "amount", *b.Amount, "low", w.Low)
	default:
		m.log.Info("balance", "amount", *b.Amount)
	}
	if err := m.deliver(ctx, Event{Kind: EventBalance, ModemID: m.cfg.Name, Identity: m.Identity(), Balance: b}, false); err != nil {
		m.log.Warn("balance not recorded", "error", err)
	}
	return nil
}

// readBalance makes the Balance of a USSD answer: the pattern's group
// "amount", with a decimal comma taken as a point and thousands separators
// (spaces, and a point or comma before three digits and another separator)
// left out.
func (m *Modem) readBalance(r simgate.USSDResult, err error) *simgate.Balance {
	w := m.cfg.Balance
	b := &simgate.Balance{ModemID: m.cfg.Name, At: m.opts.Now(), Text: r.Text}
	switch {
	case err != nil:
		b.Err = "USSD failed: " + err.Error()
		return b
	case r.Status != simgate.USSDDone && r.Status != simgate.USSDTerminated:
		b.Err = fmt.Sprintf("USSD ended %s", r.Status)
		return b
	}
	match := w.Pattern.FindStringSubmatch(r.Text)
	i := w.Pattern.SubexpIndex("amount")
	if match == nil || i < 0 || match[i] == "" {
		b.Err = fmt.Sprintf("the answer does not match the pattern %q", w.Pattern.String())
		return b
	}
	v, perr := parseAmount(match[i])
	if perr != nil {
		b.Err = perr.Error()
		return b
	}
	b.Amount = &v
	b.Low = w.LowSet && v <= w.Low
	return b
}

// parseAmount reads "12.50", "12,50", "1 234,50", "1,234.50" or "-3".
func parseAmount(s string) (float64, error) {
	t := strings.ReplaceAll(strings.TrimSpace(s), " ", "")
	if i := strings.LastIndexAny(t, ".,"); i >= 0 && len(t)-i-1 != 3 {
		// The last separator has not three digits after it: the decimal
		// one; the others group thousands.
		t = strings.NewReplacer(".", "", ",", "").Replace(t[:i]) + "." + t[i+1:]
	} else {
		t = strings.NewReplacer(".", "", ",", "").Replace(t)
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil {
		return 0, fmt.Errorf("the amount %q is not a number", s)
	}
	return v, nil
}

// balanceDue reports when the next balance reading is due, for the
// session's timer.
func (m *Modem) balanceDue() time.Duration {
	if m.cfg.Balance == nil {
		return 0
	}
	return max(time.Second, m.cfg.Balance.Every-m.opts.Now().Sub(m.balanceAt))
}
