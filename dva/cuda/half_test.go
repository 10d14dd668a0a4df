package cuda

import (
	"math"
	"testing"
)

// TestHalfRoundTrip checks every binary16 value: decoding is exact and encoding the
// decoded value gives the same bits back.
func TestHalfRoundTrip(t *testing.T) {
	for h := range 1 << 16 {
		f := fromHalf(uint16(h))
		got := toHalf(f)
		if math.IsNaN(float64(f)) {
			if got&0x7c00 != 0x7c00 || got&0x3ff == 0 {
				t.Errorf("toHalf(NaN from %#04x) = %#04x, not a NaN", h, got)
			}
			continue
		}
		if got != uint16(h) {
			t.Errorf("toHalf(fromHalf(%#04x) = %g) = %#04x", h, f, got)
		}
	}
}

// TestHalfRounding checks values between neighbouring halves: below the midpoint rounds
// down, above rounds up, on it to the even neighbour.
func TestHalfRounding(t *testing.T) {
	for h := 0; h < 0x7bff; h++ { // positive finite halves with a finite successor
		lo, hi := float64(fromHalf(uint16(h))), float64(fromHalf(uint16(h+1)))
		mid := (lo + hi) / 2 // exact in float64 and representable in float32
		even := uint16(h)
		if h&1 == 1 {
			even = uint16(h + 1)
		}
		for _, tt := range []struct {
			f    float64
			want uint16
		}{
			{mid, even},
			{math.Nextafter(mid, lo), uint16(h)},
			{math.Nextafter(mid, hi), uint16(h + 1)},
		} {
			f32 := float32(tt.f)
			if float64(f32) != tt.f {
				continue // not representable as float32 (near the midpoint of tiny subnormals)
			}
			if got := toHalf(f32); got != tt.want {
				t.Fatalf("toHalf(%g) = %#04x, want %#04x (between %#04x and %#04x)", tt.f, got, tt.want, h, h+1)
			}
			if got := toHalf(-f32); got != tt.want|0x8000 {
				t.Fatalf("toHalf(%g) = %#04x, want %#04x", -tt.f, got, tt.want|0x8000)
			}
		}
	}
	for _, tt := range []struct {
		f    float32
		want uint16
	}{
		{65504, 0x7bff}, {65519.99, 0x7bff}, {65520, 0x7c00}, {1e9, 0x7c00},
		{float32(math.Inf(-1)), 0xfc00}, {1, 0x3c00}, {-2, 0xc000}, {0.1, 0x2e66},
		{5.960464477539063e-08, 0x0001}, {2.9802322387695312e-08, 0}, {2.98023259e-08, 0x0001}, {1e-10, 0},
	} {
		if got := toHalf(tt.f); got != tt.want {
			t.Errorf("toHalf(%g) = %#04x, want %#04x", tt.f, got, tt.want)
		}
	}
}
