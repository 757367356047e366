// Package modem drives GSM modems over serial ports with AT commands and runs
// them as a pool that picks a modem for each outbound SMS.
//
// # Design
//
// A Modem owns one serial port and one goroutine. go.bug.st/serial opens and
// configures the port; reads and writes go through a non-blocking descriptor
// of the same device in the runtime's poller (conn), because
// go.bug.st/serial's Read blocks a thread in select(2) per idle modem. Every
// AT command, every submit and every read of the SIM's message stores runs on
// that goroutine, so a port never sees two callers.
// Commands go through github.com/warthog618/modem/at, but not straight: the
// port is wrapped in a line filter that sits between the serial port and the
// at package. The filter
//
//   - takes unsolicited result codes (+CMT, +CDS and their PDU line, +CMTI,
//     +CDSI) out of the byte stream in the order they arrived and queues them
//     for the modem's goroutine, so they never leak into the answer of the
//     command in flight and are handled in order (the at package's own
//     indications do both wrong: defects 1 and 6 in docs/PROTOCOL.md);
//   - drops known noise lines (RING, ^RSSI, SIM800's "SMS Ready", ...);
//   - knows whether the "> " prompt of the current AT+CMGS was seen, and eats a
//     +CMGS answer (and its OK) that arrives when no prompt is outstanding:
//     that is the late answer to a submit the host already gave up on
//     (defect 2), which must never be read as the answer to the next command.
//
// Answers are parsed by their expected prefix, ignoring anything else. A
// submit that times out after the prompt is simgate.ClassAmbiguous: the message may
// have gone out, so it is never resent here; the modem then waits a short
// while for the late answer, resynchronises (ESC, AT) and, failing that,
// reopens the port. A submit that timed out before the prompt never wrote the
// PDU and is simgate.ClassModemUnhealthy, which callers may retry elsewhere.
//
// Each modem has one sms.Encoder, so consecutive long messages get fresh
// concatenation references (defect 3), sets TP-SRR and a relative validity
// period through sms.WithTemplateOption (defect 9), and writes uppercase hex
// PDUs (defect 4). Errors are numeric (AT+CMEE=1, defect 5) and classified by
// Classify into the classes of docs/PROTOCOL.md. Status reports are decoded with
// pdumode and tpdu directly, tolerating a PDU without the SMSC prefix
// (defect 7), and acknowledged with AT+CNMA when the modem is in phase 2+.
// Indications (AT+CNMI) are configured after ATZ (defect 8), choosing routed
// reports (ds=1) when AT+CNMI=? offers them and stored ones (ds=2, read from
// the "SR" store) otherwise.
//
// Received status reports and SMS are handed to a Subscriber as Events. A
// stored message is deleted from the SIM only after the subscriber accepted
// it, so a crash between the two delivers it again rather than losing it; a
// routed one in phase 2+ is acknowledged (AT+CNMA) only after that too, and
// refused (AT+CNMA=2, an RP-ERROR) when the subscriber did not take it, so
// that the network delivers it again. A routed event in phase 1 has no copy to
// keep and no acknowledgement to wait for: it goes to the subscriber from a second goroutine of the modem, in
// order, so that the next submit does not wait for the subscriber's database
// commit.
//
// A modem is bound to its identity (IMEI, ICCID), not its tty path: when the
// port goes away it is looked for again, with backoff, among candidate ports
// (Options.Candidates), and a modem that keeps failing is quarantined and
// tried again later. A SIM that wants its PUK or rejected the PIN stops the
// modem for good (until Reset): three wrong PINs would lock the SIM.
//
// A Pool runs many modems and picks one for each send by health, load,
// per-SIM caps (reserved before the submit, so they hold exactly under
// concurrency; the day's usage, by UTC day, is restored from a UsageStore),
// number-prefix preferences and stickiness, failing over to another modem
// when nothing was sent.
package modem
