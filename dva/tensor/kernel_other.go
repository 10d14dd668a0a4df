//go:build !amd64 || purego

package tensor

// useAsm and useAVX512 are false: this architecture has no assembly micro-kernel.
var (
	useAsm    = false
	useAVX512 = false
)

// kernel adds the 6×16 product of a packed A panel and a packed B panel to c (row stride ldc).
func kernel(k int, a, b, c []float32, ldc int) {
	kernelGo(k, a, b, c, ldc)
}

// quickGELU applies x·sigmoid(1.702x) in place.
func quickGELU(x []float32) { quickGELUGo(x) }

// expShiftSum sets x[i] = e^((x[i]-mx)·scale) and returns the sum.
func expShiftSum(x []float32, mx, scale float32) float32 { return expShiftSumGo(x, mx, scale) }
