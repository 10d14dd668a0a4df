//go:build amd64 && !purego

package tensor

import "golang.org/x/sys/cpu"

// useAsm selects the assembly micro-kernels (AVX2/FMA, AVX-512 where present); tests turn
// it off to check the portable one, and useAVX512 off to check the AVX2 one.
var (
	useAsm    = cpu.X86.HasAVX2 && cpu.X86.HasFMA
	useAVX512 = useAsm && cpu.X86.HasAVX512F
)

//go:noescape
func kern6x16(k int, a, b, c *float32, ldc int)

//go:noescape
func kern6x16AVX512(k int, a, b, c *float32, ldc int)

// kernel adds the 6×16 product of a packed A panel and a packed B panel to c (row stride ldc).
func kernel(k int, a, b, c []float32, ldc int) {
	if !useAsm {
		kernelGo(k, a, b, c, ldc)
		return
	}
	_ = a[k*mr-1]
	_ = b[k*nr-1]
	_ = c[(mr-1)*ldc+nr-1]
	if useAVX512 {
		kern6x16AVX512(k, &a[0], &b[0], &c[0], ldc)
		return
	}
	kern6x16(k, &a[0], &b[0], &c[0], ldc)
}
