//go:build !amd64 || purego

package tensor

// useAsm is false: this architecture has no assembly micro-kernel.
var useAsm = false

// kernel adds the 6×16 product of a packed A panel and a packed B panel to c (row stride ldc).
func kernel(k int, a, b, c []float32, ldc int) {
	kernelGo(k, a, b, c, ldc)
}
