package tensor

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// refAttention is a float64 transcription of softmax(q·kᵀ/√d + mask)·v per sequence and head.
func refAttention(qkv []float32, batch, tokens, width, heads int, causal bool) []float64 {
	d := width / heads
	out := make([]float64, batch*tokens*width)
	at := func(b, t, c int) float64 { return float64(qkv[(b*tokens+t)*3*width+c]) }
	for b := 0; b < batch; b++ {
		for h := 0; h < heads; h++ {
			for i := 0; i < tokens; i++ {
				s := make([]float64, tokens)
				mx := math.Inf(-1)
				for j := 0; j < tokens; j++ {
					if causal && j > i {
						s[j] = math.Inf(-1)
						continue
					}
					for c := 0; c < d; c++ {
						s[j] += at(b, i, h*d+c) * at(b, j, width+h*d+c)
					}
					s[j] /= math.Sqrt(float64(d))
					mx = math.Max(mx, s[j])
				}
				var z float64
				for j := range s {
					s[j] = math.Exp(s[j] - mx)
					z += s[j]
				}
				for c := 0; c < d; c++ {
					var o float64
					for j := range s {
						o += s[j] / z * at(b, j, 2*width+h*d+c)
					}
					out[(b*tokens+i)*width+h*d+c] = o
				}
			}
		}
	}
	return out
}

func TestAttention(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for _, tt := range []struct {
		batch, tokens, width, heads int
		causal                      bool
	}{
		{1, 1, 4, 2, false}, {2, 50, 32, 2, false}, {3, 14, 8, 2, true}, {2, 77, 64, 4, true},
		{1, 197, 128, 2, false}, {2, 5, 48, 3, false},
	} {
		name := fmt.Sprintf("b%d_t%d_w%d_h%d_causal=%v", tt.batch, tt.tokens, tt.width, tt.heads, tt.causal)
		t.Run(name, func(t *testing.T) {
			qkv := randSlice(r, tt.batch*tt.tokens*3*tt.width)
			for i := range qkv {
				qkv[i] *= 2
			}
			want := refAttention(qkv, tt.batch, tt.tokens, tt.width, tt.heads, tt.causal)
			got := make([]float32, len(want))
			Attention(got, qkv, tt.batch, tt.tokens, tt.width, tt.heads, tt.causal, 2)
			for i := range want {
				if d := math.Abs(float64(got[i]) - want[i]); d > 2e-6+2e-6*math.Abs(want[i]) {
					t.Fatalf("Attention[%d] = %v, want %v", i, got[i], want[i])
				}
			}
		})
	}
}
