package queue

import (
	"strings"
	"testing"
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
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := countParts(c.text); got != c.want {
				t.Fatalf("countParts = %d, want %d", got, c.want)
			}
		})
	}
}

func TestKeyword(t *testing.T) {
	for _, c := range []struct {
		text string
		want string
		out  bool
	}{
		{"STOP", "STOP", true}, {" stop. ", "STOP", true}, {"Unsubscribe", "UNSUBSCRIBE", true},
		{"start", "START", false}, {"unstop", "UNSTOP", false}, {"please stop", "", false}, {"", "", false},
	} {
		if got, out := keyword(c.text); got != c.want || out != c.out {
			t.Errorf("keyword(%q) = %q %v, want %q %v", c.text, got, out, c.want, c.out)
		}
	}
}
