package modem

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/simgate/simgate"
)

// PINMemory remembers which PIN each SIM (by ICCID) rejected, across
// restarts: a SIM has three tries, and a daemon restarted three times with a
// wrong PIN in its configuration would otherwise lock it into its PUK. It
// keeps fingerprints (PINFingerprint), never PINs. *store.DB satisfies it.
type PINMemory interface {
	// PINRejected reports whether the SIM iccid rejected the PIN with
	// fingerprint fp.
	PINRejected(ctx context.Context, iccid string, fp []byte) (bool, error)
	// RecordRejectedPIN remembers that the SIM iccid rejected the PIN with
	// fingerprint fp.
	RecordRejectedPIN(ctx context.Context, iccid string, fp []byte) error
}

// PINFingerprint is what is kept of a PIN a SIM rejected: an HMAC of the
// ICCID and the PIN under key. A PIN has 10,000 values or so, so without a
// key kept apart from the database the fingerprint would give the PIN away
// to whoever reads the database.
func PINFingerprint(key []byte, iccid, pin string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte("simgate-pin\x00" + iccid + "\x00" + pin))
	return h.Sum(nil)
}

// unlock enters the configured PIN when the SIM asks for it, unless that SIM
// rejected that PIN before, in this process or (with Options.PINs) before a
// restart: each try uses up one of its three.
func (m *Modem) unlock(ctx context.Context, c *conn) error {
	if m.cfg.PIN == "" {
		return c.unlock(ctx, "")
	}
	st, err := c.cpin(ctx)
	if err != nil {
		return err
	}
	var iccid string
	var fp []byte
	if st == "SIM PIN" {
		iccid = c.iccid(ctx) // EF_ICCID is readable before the PIN
		fp = PINFingerprint(m.opts.PINKey, iccid, m.cfg.PIN)
		rejected := bytes.Equal(fp, m.rejectedPIN)
		if !rejected && m.opts.PINs != nil && iccid != "" {
			if rejected, err = m.opts.PINs.PINRejected(ctx, iccid, fp); err != nil {
				// Not knowing is no reason to risk a try.
				return &Error{Op: "unlock SIM", Class: simgate.ClassModemUnhealthy, Err: fmt.Errorf("cannot tell whether the SIM rejected this PIN before: %w", err)}
			}
		}
		if rejected {
			return &Error{Op: "unlock SIM", Class: simgate.ClassModemUnhealthy,
				Err: fmt.Errorf("%w before (SIM %s); not entered again: fix modems[].pin and reset the modem", ErrWrongPIN, iccid)}
		}
	}
	err = c.unlock(ctx, m.cfg.PIN)
	if errors.Is(err, ErrWrongPIN) && fp != nil {
		m.rejectedPIN = fp
		if m.opts.PINs != nil && iccid != "" {
			if rerr := m.opts.PINs.RecordRejectedPIN(ctx, iccid, fp); rerr != nil {
				m.log.Error("cannot remember that the SIM rejected the PIN", "iccid", iccid, "error", rerr)
			}
		}
	}
	return err
}
