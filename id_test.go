package simgate

import (
	"strings"
	"testing"
	"time"
)

// TestNewID checks the ids' form and that they sort by their creation time,
// which the indexes keyed by them rely on for locality (see NewID).
func TestNewID(t *testing.T) {
	base := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	seen := map[string]bool{}
	prev := ""
	for i := range 2000 {
		now := base.Add(time.Duration(i/4) * time.Millisecond) // four ids per millisecond
		id := NewID("msg", now)
		rest, ok := strings.CutPrefix(id, "msg_")
		if !ok || len(rest) != 26 {
			t.Fatalf("id %q: want msg_ and 26 digits", id)
		}
		var ms int64
		for j, c := range rest {
			v := strings.IndexRune(idAlphabet, c)
			if v < 0 {
				t.Fatalf("id %q: %q is not a digit of %q", id, c, idAlphabet)
			}
			if j < 10 {
				ms = ms<<5 | int64(v)
			}
		}
		if ms != now.UnixMilli() {
			t.Fatalf("id %q begins with %d, want the time %d", id, ms, now.UnixMilli())
		}
		if seen[id] {
			t.Fatalf("id %q twice", id)
		}
		seen[id] = true
		if i%4 == 0 && prev != "" && id <= prev {
			t.Fatalf("id %q of a later millisecond sorts before %q", id, prev)
		}
		if i%4 == 3 {
			prev = id
		}
	}
	// The random part varies within one millisecond.
	if a, b := NewID("x", base), NewID("x", base); a[12:] == b[12:] {
		t.Fatalf("two ids of one millisecond share their random part: %q %q", a, b)
	}
}

// TestIDBits: the bits of an id give the id back, the first 48 are its
// time, and what is not such an id has none.
func TestIDBits(t *testing.T) {
	now := time.Date(2026, 12, 3, 15, 4, 5, 678_000_000, time.UTC)
	for range 200 {
		id := NewID("ver", now)
		bits, ok := IDBits("ver", id)
		if !ok {
			t.Fatalf("IDBits(%q) found none", id)
		}
		var ms int64
		for _, b := range bits[:6] {
			ms = ms<<8 | int64(b)
		}
		if ms != now.UnixMilli() {
			t.Fatalf("%s: time bits %d, want %d", id, ms, now.UnixMilli())
		}
		if back := IDFromBits("ver", bits); back != id {
			t.Fatalf("IDFromBits(IDBits(%q)) = %q", id, back)
		}
	}
	var all [16]byte
	for i := range all {
		all[i] = 0xff
	}
	if id := IDFromBits("key", all); id != "key_7zzzzzzzzzzzzzzzzzzzzzzzzz" {
		t.Fatalf("all ones: %q", id)
	}
	good := strings.TrimPrefix(NewID("ver", now), "ver_")
	for _, bad := range []string{"", "ver_", "msg_" + good, "ver_" + good[:25], "ver_" + good + "0", "ver_8" + good[1:],
		"ver_" + good[:25] + "u", "ver_" + strings.ToUpper(good), "ver-" + good} {
		if _, ok := IDBits("ver", bad); ok {
			t.Fatalf("IDBits(%q) took it", bad)
		}
	}
}
