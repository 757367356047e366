package queue

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

// countParts returns how many SMS text takes: GSM-7 when every character is
// in the default alphabet or its extension (160 septets in one SMS, 153 per
// part of a long one, an extension character counting two), UCS-2 otherwise
// (70 UTF-16 units, 67 per part). The modem decides in the end; the store
// adjusts the parts to its answer.
func countParts(text string) int {
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
		return split(septets, 160, 153)
	}
	return split(len(utf16.Encode([]rune(text))), 70, 67)
}

func split(n, single, per int) int {
	if n <= single {
		return 1
	}
	return (n + per - 1) / per
}
