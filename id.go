package simgate

import (
	"crypto/rand"
	"strings"
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
	var bits [16]byte
	ms := uint64(now.UnixMilli())
	for i := 5; i >= 0; i-- {
		bits[i] = byte(ms)
		ms >>= 8
	}
	rand.Read(bits[6:]) // never fails (crypto/rand)
	return IDFromBits(prefix, bits)
}

// IDFromBits returns the id with prefix whose 128 bits are bits: the 48 of
// its time in milliseconds, then 80 random ones, as NewID makes them. The
// 26 digits hold 130 bits: two zero bits, then bits.
func IDFromBits(prefix string, bits [16]byte) string {
	var b [26]byte
	acc, n, j := uint32(0), 2, 0 // the two zero bits
	for _, c := range bits {
		acc = acc<<8 | uint32(c)
		n += 8
		for n >= 5 {
			n -= 5
			b[j] = idAlphabet[(acc>>n)&31]
			j++
		}
	}
	return prefix + "_" + string(b[:])
}

// IDBits returns the 128 bits of an id with prefix (IDFromBits); ok is
// false when id is not the prefix, "_" and 26 digits whose first is at most
// 7 (the two zero bits). Other notations of an id, such as the Twilio
// surface's SIDs, are these bits written otherwise.
func IDBits(prefix, id string) (bits [16]byte, ok bool) {
	rest, found := strings.CutPrefix(id, prefix+"_")
	if !found || len(rest) != 26 {
		return bits, false
	}
	acc, n, j := uint32(0), -2, 0 // the two zero bits are dropped
	for i := range len(rest) {
		v := strings.IndexByte(idAlphabet, rest[i])
		if v < 0 || i == 0 && v > 7 {
			return bits, false
		}
		acc = acc<<5 | uint32(v)
		n += 5
		for n >= 8 {
			n -= 8
			bits[j] = byte(acc >> n)
			j++
		}
	}
	return bits, true
}
