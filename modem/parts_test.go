package modem

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/simgate/simgate"
)

// The parts the queue plans and the API's budgets count
// (simgate.CountParts) are the parts the encoder makes, for texts at every
// boundary of both alphabets and for random mixes of them.
func TestCountPartsAgreesWithEncoder(t *testing.T) {
	texts := []string{
		"hello", "hello ü", "Ça va? Δ", "ça va",
		strings.Repeat("a", 160), strings.Repeat("a", 161), strings.Repeat("a", 306), strings.Repeat("a", 307),
		strings.Repeat("€", 80), strings.Repeat("€", 81), strings.Repeat("a", 152) + "€", strings.Repeat("a", 153) + "€",
		strings.Repeat("ж", 70), strings.Repeat("ж", 71), strings.Repeat("ж", 134), strings.Repeat("ж", 135),
		strings.Repeat("😀", 35), strings.Repeat("😀", 36), strings.Repeat("ж", 66) + "😀", strings.Repeat("ж", 67) + "😀",
		strings.Repeat("a\n", 80), strings.Repeat("[]", 77), strings.Repeat("a", 152) + strings.Repeat("€", 77),
		strings.Repeat("ж", 66) + strings.Repeat("😀", 34),
	}
	alphabet := []rune("aZ0 @£$¥èΔ_\n\r{}[]~|€^\\жé😀ç")
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		r := make([]rune, 1+rng.IntN(700))
		gsm := rng.IntN(2) == 0
		for i := range r {
			r[i] = alphabet[rng.IntN(len(alphabet))]
			if gsm && r[i] >= 'ж' {
				r[i] = 'a'
			}
		}
		texts = append(texts, string(r))
	}
	e := newEncoder(24 * time.Hour)
	for _, text := range texts {
		pdus, err := encode(e, "+15557654321", text)
		if err != nil {
			t.Fatalf("encode %q: %v", text, err)
		}
		if got := simgate.CountParts(text); got != len(pdus) {
			t.Errorf("CountParts(%q) = %d, the encoder makes %d", text, got, len(pdus))
		}
	}
}
