//go:build amd64 && !purego

package tensor

//go:noescape
func quickGELUAVX2(x []float32)

//go:noescape
func expShiftSumAVX2(x []float32, mx, scale float32) float32

// quickGELU applies x·sigmoid(1.702x) in place.
func quickGELU(x []float32) {
	if useAsm {
		quickGELUAVX2(x)
		x = x[len(x)&^7:]
	}
	quickGELUGo(x)
}

// expShiftSum sets x[i] = e^((x[i]-mx)·scale) and returns the sum.
func expShiftSum(x []float32, mx, scale float32) float32 {
	var sum float32
	if useAsm {
		sum = expShiftSumAVX2(x, mx, scale)
		x = x[len(x)&^7:]
	}
	return sum + expShiftSumGo(x, mx, scale)
}
