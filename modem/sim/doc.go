// Package sim runs virtual GSM modems for tests and demos.
//
// Each modem sits behind its own pseudo-terminal with a stable symlink
// (<dir>/modem0), so any serial client opens it like /dev/ttyUSB0: the modem
// driver, gammu, smstools, or a person with a terminal. The modems speak the
// AT command set of 3GPP TS 27.007 and 27.005 (PDU and text mode SMS) and are
// joined by a simulated mobile network: what a modem submits reaches virtual
// handsets (Network.Inbox, reassembled and decoded), or another modem if the
// destination is its number; status reports come back as the host asked
// (routed +CDS or stored +CDSI; in phase 2+, Config.Phase2, each routed one
// waits for AT+CNMA, and one refused with AT+CNMA=2 comes again after
// Config.RetryDelay); handsets send to modems with Network.Inject.
// Faults (Modem.SetFaults) make a modem slow, failing, silent, noisy or gone,
// as hardware is.
//
// Profiles. Config.Profile makes a modem a real device (see Profiles):
// huawei-e1752 answers unknown commands with COMMAND NOT SUPPORT, too many
// parameters with TOO MANY PARAMETERS and AT^ICCID? nibble-swapped, and
// chatters ^RSSI/^BOOT/^MODE; wavecom answers AT+CPIN? without OK, a
// quoted +CCID and +WIND lines at power-on; quectel-ec25 announces stored
// status reports as +CDSI: "SM" though they are in "SR", and chatters
// +QIND; sim800 offers no stored reports, no +CEREG, a bare +CCID and its
// RDY ... SMS Ready lines after AT+CFUN=1,1. A profile sets the identity
// strings, ICCID commands and AT+CNMI=? the device prints, where Config
// leaves them empty, and a set of quirks, each a field of an internal
// struct so that profiles combine them. Chatter is off unless
// Config.ChatterEvery asks for it, so that tests stay deterministic.
// Modem.PutStored, PutStoredLen, DeliverPDU, DeliverReportPDU and Stored
// let tests put exact PDUs (undecodable ones, wrong <length> headers) in
// and see what the host left in the stores.
//
// Design. A Network owns all goroutines: per plugged-in modem one reads the
// pty master and runs the command interpreter, one writes it; the network
// runs delayed deliveries and reports, and one goroutine watches the devices
// with inotify to see clients open and close them (a close that leaves
// descriptors counted is checked against /proc, as inotify merges equal
// events). Close cancels a context
// and waits for all of them. (A modem in phase 2+ also arms a timer for the
// AT+CNMA it waits for; unplugging, which Close does, disarms it.) A modem's
// state sits behind one mutex; all output goes through one queue per device
// in whole units (a response, a URC), so an unsolicited line never splits a
// response line. The only
// sleeps are the configured latencies.
//
// The sim keeps a slave descriptor of each pty open, so that clients can
// close and reopen the device as often as they like, and sets the pty to raw
// mode. On a pty the modem-status ioctls that serial libraries call for DTR
// and RTS fail with ENOTTY; clients should treat that as harmless.
//
// ParseCommandLine and the PDU decoder are pure functions with fuzz targets
// (see docs/FUZZ.md).
package sim
