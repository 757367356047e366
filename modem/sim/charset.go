package sim

import (
	"sync"

	"github.com/warthog618/sms/encoding/gsm7/charset"
)

// charsetsOnce guards warmCharsets. It is the package's one global, and it
// exists because of one in the library: warthog618/sms's gsm7/charset builds
// its tables lazily on first use without a lock, a data race when two modems
// (or a modem and a test's encoder) first encode or decode at the same time.
var charsetsOnce sync.Once

// warmCharsets builds every GSM 7-bit table once, before concurrent use.
func warmCharsets() {
	charsetsOnce.Do(func() {
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
