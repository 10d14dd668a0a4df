package weights

import "math"

func float32frombits(u uint32) float32 { return math.Float32frombits(u) }

// bfloatToFloat widens a bfloat16: it is the top half of a float32.
func bfloatToFloat(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// halfToFloat widens an IEEE 754 binary16 exactly (subnormals, infinities and NaN payloads kept).
func halfToFloat(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	frac := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // Inf or NaN
		return math.Float32frombits(sign | 0xff<<23 | frac<<13)
	case exp == 0:
		if frac == 0 {
			return math.Float32frombits(sign)
		}
		// subnormal: normalise
		e := uint32(127 - 15 + 1)
		for frac&0x400 == 0 {
			frac <<= 1
			e--
		}
		frac &= 0x3ff
		return math.Float32frombits(sign | e<<23 | frac<<13)
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | frac<<13)
}
