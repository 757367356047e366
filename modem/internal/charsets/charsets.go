// Package charsets works around a data race in github.com/warthog618/sms:
// its gsm7/charset package builds its tables lazily on first use without a
// lock, so two goroutines that first encode or decode GSM 7-bit text at the
// same time (two modems, or a modem and the virtual network) race. Warm
// builds them all once; the driver and the virtual modem both call it before
// they encode or decode, and share its sync.Once, so that the two cannot
// warm the tables at the same time either.
package charsets

import (
	"sync"

	"github.com/warthog618/sms/encoding/gsm7/charset"
)

var once sync.Once

// Warm builds every GSM 7-bit table once, before concurrent use.
func Warm() {
	once.Do(func() {
		charset.DefaultDecoder()
		charset.DefaultEncoder()
		charset.DefaultExtEncoder()
		for nli := 0; nli < 16; nli++ {
			charset.NewDecoder(nli)
			charset.NewEncoder(nli)
			charset.NewExtEncoder(nli)
			charset.NewExtDecoder(nli)
		}
	})
}
