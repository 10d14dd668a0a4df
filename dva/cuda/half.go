package cuda

import (
	"math"
)

// toHalf returns the IEEE binary16 bits nearest to f (ties to even), as the GPU's
// __float2half_rn: overflow gives ±Inf, NaN stays NaN.
func toHalf(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int(b>>23) & 0xff
	man := b & 0x7fffff
	switch {
	case exp == 0xff: // Inf or NaN
		if man != 0 {
			return sign | 0x7e00
		}
		return sign | 0x7c00
	case exp > 127+15: // too large
		return sign | 0x7c00
	case exp >= 127-14: // normal half
		e := uint32(exp-127+15) << 10
		v := e | man>>13
		rest := man & 0x1fff
		if rest > 0x1000 || rest == 0x1000 && v&1 == 1 {
			v++ // may carry into the exponent, up to Inf: still correct
		}
		return sign | uint16(v)
	case exp >= 127-25: // subnormal half
		m := man | 0x800000      // the implicit 1
		shift := uint(126 - exp) // 14 … 24 (bits dropped: 13 + the exponent deficit)
		v := m >> shift
		rest := m & (1<<shift - 1)
		halfway := uint32(1) << (shift - 1)
		if rest > halfway || rest == halfway && v&1 == 1 {
			v++
		}
		return sign | uint16(v)
	default:
		return sign
	}
}

// fromHalf returns the float32 value of binary16 bits h (exact).
func fromHalf(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	man := uint32(h & 0x3ff)
	switch {
	case exp == 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | man<<13)
	case exp != 0:
		return math.Float32frombits(sign | (exp+127-15)<<23 | man<<13)
	case man == 0:
		return math.Float32frombits(sign)
	default: // subnormal: man · 2^-24
		v := float32(man) * (1.0 / (1 << 24))
		if sign != 0 {
			v = -v
		}
		return v
	}
}

// halves appends the binary16 bits of every value of src to dst, little-endian.
func halves(dst []byte, src []float32) []byte {
	for _, f := range src {
		h := toHalf(f)
		dst = append(dst, byte(h), byte(h>>8))
	}
	return dst
}
