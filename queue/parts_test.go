package queue

import (
	"testing"
)

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
