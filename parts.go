package simgate

import (
	"strings"
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
// (70 UTF-16 units, 67 per part, a character outside the BMP counting two).
// A long message is cut between characters, never inside an extension's
// escape or a surrogate pair, as the modem's encoder cuts it (a test in
// modem holds the two to the same count). The queue plans parts with it and
// the API counts them against its budgets; the modem's answer is final, and
// the store keeps the parts the modem reports.
func CountParts(text string) int {
	gsm := true
	for _, r := range text {
		if !strings.ContainsRune(gsm7Basic, r) && !strings.ContainsRune(gsm7Ext, r) {
			gsm = false
			break
		}
	}
	single, per := 70, 67
	size := func(r rune) int { return utf16.RuneLen(r) }
	if gsm {
		single, per = 160, 153
		size = func(r rune) int {
			if strings.ContainsRune(gsm7Ext, r) {
				return 2
			}
			return 1
		}
	}
	total := 0
	for _, r := range text {
		total += size(r)
	}
	if total <= single {
		return 1
	}
	parts, used := 1, 0
	for _, r := range text {
		n := size(r)
		if used+n > per {
			parts, used = parts+1, 0
		}
		used += n
	}
	return parts
}
