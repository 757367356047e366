package simgate

import (
	"strings"
	"time"
	"unicode/utf16"
)

// gsm7Basic is the GSM 7-bit default alphabet (TS 23.038 §6.2.1) without
// the escape; gsm7Ext holds the characters of its extension table, which
// take two septets each.
const (
	gsm7Basic = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
		"¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
	gsm7Ext = "\f^{}\\[~]|€"
)

// CountParts returns how many SMS text takes: GSM-7 when every character is
// in the default alphabet or its extension (160 septets in one SMS, 153 per
// part of a long one, an extension character counting two), UCS-2 otherwise
// (70 UTF-16 units, 67 per part). The modem decides in the end; the store
// adjusts the parts to its answer. The queue plans parts with it and the API
// counts them against its budgets.
func CountParts(text string) int {
	septets, gsm := 0, true
	for _, r := range text {
		switch {
		case strings.ContainsRune(gsm7Basic, r):
			septets++
		case strings.ContainsRune(gsm7Ext, r):
			septets += 2
		default:
			gsm = false
		}
		if !gsm {
			break
		}
	}
	if gsm {
		return splitParts(septets, 160, 153)
	}
	return splitParts(len(utf16.Encode([]rune(text))), 70, 67)
}

func splitParts(n, single, per int) int {
	if n <= single {
		return 1
	}
	return (n + per - 1) / per
}

// Budget is a limit on the SMS counted under Key in any span of Window: a
// sliding window, not a token bucket, so that Limit is never exceeded within
// one Window however the SMS are spread.
type Budget struct {
	Key    string // what is counted, such as "global:hour" or "prefix:+4915"
	Limit  int
	Window time.Duration
}

// BudgetRefusal says which budget refused SMS and why.
type BudgetRefusal struct {
	Index   int           // of the budget in the list given
	Counted int           // SMS counted in its window
	After   time.Duration // until it has room again; Window when it never will
}
