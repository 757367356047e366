package sim

import "strconv"

// resultKind is the kind of final result code that ends a response.
type resultKind int

const (
	resOK resultKind = iota
	resError
	resCME    // +CME ERROR: <code> (27.007 §9.2)
	resCMS    // +CMS ERROR: <code> (27.005 §3.2.5)
	resPrompt // the "> " prompt of AT+CMGS: no final result yet
	resNone   // nothing at all (ESC after a prompt on some modems, a hung modem)
	resText   // a vendor's own final result code, e.g. Huawei's COMMAND NOT SUPPORT
)

// result is the final result code of a command line.
type result struct {
	kind resultKind
	code int
	text string // resText
}

var (
	ok     = result{kind: resOK}
	errRes = result{kind: resError}
)

func cme(code int) result { return result{kind: resCME, code: code} }
func cms(code int) result { return result{kind: resCMS, code: code} }

// cmeText is the verbose text of +CME ERROR codes for AT+CMEE=2 (27.007 §9.2.1).
var cmeText = map[int]string{
	0:   "phone failure",
	1:   "no connection to phone",
	2:   "phone-adaptor link reserved",
	3:   "operation not allowed",
	4:   "operation not supported",
	5:   "PH-SIM PIN required",
	10:  "SIM not inserted",
	11:  "SIM PIN required",
	12:  "SIM PUK required",
	13:  "SIM failure",
	14:  "SIM busy",
	15:  "SIM wrong",
	16:  "incorrect password",
	17:  "SIM PIN2 required",
	18:  "SIM PUK2 required",
	20:  "memory full",
	21:  "invalid index",
	22:  "not found",
	23:  "memory failure",
	24:  "text string too long",
	25:  "invalid characters in text string",
	30:  "no network service",
	31:  "network timeout",
	32:  "network not allowed - emergency calls only",
	50:  "Incorrect parameters",
	100: "unknown",
}

// cmsText is the verbose text of +CMS ERROR codes for AT+CMEE=2: network
// causes from TS 24.011 (1-127), TP-FCS values from TS 23.040 §9.2.3.22
// (128-255) and ME/TA errors from TS 27.005 §3.2.5 (300-500).
var cmsText = map[int]string{
	1:    "Unassigned (unallocated) number",
	8:    "Operator determined barring",
	10:   "Call barred",
	17:   "Network failure",
	21:   "Short message transfer rejected",
	22:   "Memory capacity exceeded",
	27:   "Destination out of service",
	28:   "Unidentified subscriber",
	29:   "Facility rejected",
	30:   "Unknown subscriber",
	38:   "Network out of order",
	41:   "Temporary failure",
	42:   "Congestion",
	47:   "Resources unavailable, unspecified",
	50:   "Requested facility not subscribed",
	69:   "Requested facility not implemented",
	81:   "Invalid short message transfer reference value",
	95:   "Invalid message, unspecified",
	96:   "Invalid mandatory information",
	97:   "Message type non-existent or not implemented",
	98:   "Message not compatible with short message protocol state",
	99:   "Information element non-existent or not implemented",
	111:  "Protocol error, unspecified",
	127:  "Interworking, unspecified",
	0xC0: "SC busy",
	0xC1: "No SC subscription",
	0xC2: "SC system failure",
	0xC3: "Invalid SME address",
	0xC4: "Destination SME barred",
	0xD4: "SIM Application Toolkit Busy",
	300:  "ME failure",
	301:  "SMS service of ME reserved",
	302:  "operation not allowed",
	303:  "operation not supported",
	304:  "invalid PDU mode parameter",
	305:  "invalid text mode parameter",
	310:  "SIM not inserted",
	311:  "SIM PIN required",
	312:  "PH-SIM PIN required",
	313:  "SIM failure",
	314:  "SIM busy",
	315:  "SIM wrong",
	316:  "SIM PUK required",
	317:  "SIM PIN2 required",
	318:  "SIM PUK2 required",
	320:  "memory failure",
	321:  "invalid memory index",
	322:  "memory full",
	330:  "SMSC address unknown",
	331:  "no network service",
	332:  "network timeout",
	340:  "no +CNMA acknowledgement expected",
	500:  "unknown error",
}

// resultLine formats a final result code for the verbose (ATV1) form and
// the error mode of AT+CMEE. It returns "" for results that print nothing.
func resultLine(r result, cmee int) string {
	switch r.kind {
	case resOK:
		return "OK"
	case resError:
		return "ERROR"
	case resCME:
		switch cmee {
		case 0:
			return "ERROR"
		case 2:
			if t, ok := cmeText[r.code]; ok {
				return "+CME ERROR: " + t
			}
		}
		return "+CME ERROR: " + strconv.Itoa(r.code)
	case resCMS:
		// 27.005 reports +CMS ERROR whatever AT+CMEE says; only the
		// verbose form depends on it.
		if cmee == 2 {
			if t, ok := cmsText[r.code]; ok {
				return "+CMS ERROR: " + t
			}
		}
		return "+CMS ERROR: " + strconv.Itoa(r.code)
	case resText:
		return r.text
	}
	return ""
}

// resultNumber is the numeric form (ATV0) of a result code (V.250 §5.7.1).
func resultNumber(r result) string {
	switch r.kind {
	case resOK:
		return "0"
	case resError:
		return "4"
	}
	return ""
}
