package simgate

import (
	"crypto/rand"
	"time"
)

// idAlphabet is Crockford's base32 in lower case: its digits sort in the
// order of their values, so ids sort by the time they begin with.
const idAlphabet = "0123456789abcdefghjkmnpqrstvwxyz"

// NewID returns an id such as "msg_01jq3v8k2m7x...": a prefix naming the
// kind, then 26 base32 digits, 10 of the creation time in milliseconds (48
// bits, as a ULID) and 16 of 80 random bits. Ids are no secrets (every route
// that takes one wants an API key), but they must not collide. They begin
// with the time so that the B-tree indexes keyed by them (a message's parts,
// events and reports, the id indexes themselves) grow at their right edge
// instead of at a random leaf: the transactions of one group commit then share
// pages, and creates do not slow down as the database grows
// (BenchmarkCreateMessages32, queue/state_bench_test.go).
func NewID(prefix string, now time.Time) string {
	var b [26]byte
	ms := uint64(now.UnixMilli())
	for i := 9; i >= 0; i-- {
		b[i] = idAlphabet[ms&31]
		ms >>= 5
	}
	var r [10]byte
	rand.Read(r[:]) // never fails (crypto/rand)
	bits := uint64(0)
	n := 0
	j := 10
	for _, c := range r {
		bits = bits<<8 | uint64(c)
		n += 8
		for n >= 5 {
			n -= 5
			b[j] = idAlphabet[(bits>>n)&31]
			j++
		}
	}
	return prefix + "_" + string(b[:])
}
