package simgate_test

import (
	"strings"
	"testing"

	"github.com/simgate/simgate"
)

func TestCountParts(t *testing.T) {
	for _, c := range []struct {
		name string
		text string
		want int
	}{
		{"short", "hello", 1},
		{"160 GSM-7", strings.Repeat("a", 160), 1},
		{"161 GSM-7", strings.Repeat("a", 161), 2},
		{"306 GSM-7", strings.Repeat("a", 306), 2},
		{"307 GSM-7", strings.Repeat("a", 307), 3},
		{"escapes count twice", strings.Repeat("€", 80), 1},
		{"escapes over", strings.Repeat("€", 81), 2},
		{"70 UCS-2", strings.Repeat("ж", 70), 1},
		{"71 UCS-2", strings.Repeat("ж", 71), 2},
		{"134 UCS-2", strings.Repeat("ж", 134), 2},
		{"135 UCS-2", strings.Repeat("ж", 135), 3},
		{"surrogates", strings.Repeat("😀", 35), 1},
		{"surrogates over", strings.Repeat("😀", 36), 2},
		// A part ends before a character that does not fit whole.
		{"escape not split", strings.Repeat("a", 152) + strings.Repeat("€", 77), 3},
		{"surrogate pair not split", strings.Repeat("ж", 66) + strings.Repeat("😀", 34), 3},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := simgate.CountParts(c.text); got != c.want {
				t.Fatalf("CountParts = %d, want %d", got, c.want)
			}
		})
	}
}
