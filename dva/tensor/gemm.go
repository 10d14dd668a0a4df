package tensor

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
)

// Register tile of the micro-kernel: mr rows of A times nr columns of B.
const (
	mr = 6
	nr = 16
)

// Cache blocking: a kc-deep slice of A for mc rows (mc*kc*4 bytes = 576 KiB) stays in L2 and
// each nr-wide panel of B (kc*nr*4 = 32 KiB) is used against all of it before the next; a deep
// kc means few read-modify-write passes over C. Measured on a Zen 4 core: kc 512-768 beat 256
// by a few percent for the ViT-B/16 shapes.
const (
	kc = 512
	mc = 288
)

// Packed is the right-hand operand B [K, N] of MatMul, rearranged once into column panels
// nr = 16 wide: element B[k][j] lives at Data[(j/16)*K*16 + k*16 + j%16]. N is padded with
// zero columns up to a multiple of 16. Weights are packed once when a model is loaded.
type Packed struct {
	K, N int
	Data []float32
}

func newPacked(k, n int) *Packed {
	np := (n + nr - 1) / nr
	return &Packed{K: k, N: n, Data: make([]float32, np*k*nr)}
}

// PackT packs B = Wᵀ for a weight W [n, k] in the row-major layout of a PyTorch Linear
// ([out, in]), so that MatMul computes x·Wᵀ.
func PackT(w []float32, n, k int) *Packed {
	if len(w) < n*k {
		panic(fmt.Sprintf("tensor.PackT: %d values for [%d,%d]", len(w), n, k))
	}
	p := newPacked(k, n)
	packTInto(p.Data, w, n, k, k)
	return p
}

// packTInto packs B[kk][j] = w[j*ldw+kk] for j < n, kk < k into dst (panel layout).
func packTInto(dst, w []float32, n, k, ldw int) {
	for j := 0; j < n; j++ {
		panel := dst[(j/nr)*k*nr:]
		c := j % nr
		row := w[j*ldw : j*ldw+k]
		for kk, v := range row {
			panel[kk*nr+c] = v
		}
	}
}

// Pack packs B = P for a matrix P [k, n] in row-major layout (a projection [in, out]).
func Pack(p []float32, k, n int) *Packed {
	if len(p) < n*k {
		panic(fmt.Sprintf("tensor.Pack: %d values for [%d,%d]", len(p), k, n))
	}
	b := newPacked(k, n)
	packInto(b.Data, p, k, n, n)
	return b
}

// packInto packs B[kk][j] = p[kk*ldp+j] for j < n, kk < k into dst (panel layout).
func packInto(dst, p []float32, k, n, ldp int) {
	for j0 := 0; j0 < n; j0 += nr {
		w := min(nr, n-j0)
		panel := dst[(j0/nr)*k*nr:]
		for kk := 0; kk < k; kk++ {
			copy(panel[kk*nr:kk*nr+w], p[kk*ldp+j0:kk*ldp+j0+w])
		}
	}
}

// Act is an activation applied to the output of MatMul.
type Act int

const (
	// None applies no activation.
	None Act = iota
	// QuickGELU is x·sigmoid(1.702x).
	QuickGELU
	// GELU is the exact GELU 0.5x(1+erf(x/√2)).
	GELU
)

// String names the activation.
func (a Act) String() string {
	switch a {
	case None:
		return "none"
	case QuickGELU:
		return "quick_gelu"
	case GELU:
		return "gelu"
	}
	return fmt.Sprintf("Act(%d)", int(a))
}

// MatMul computes dst = act(a·B + bias) for a [m, B.K] and dst [m, B.N], both row-major and
// contiguous; bias (length B.N) may be nil. It runs on up to threads goroutines (0 means
// GOMAXPROCS).
func MatMul(dst, a []float32, m int, b *Packed, bias []float32, act Act, threads int) {
	if len(a) < m*b.K || len(dst) < m*b.N || (bias != nil && len(bias) < b.N) {
		panic(fmt.Sprintf("tensor.MatMul: sizes a=%d dst=%d bias=%d for m=%d K=%d N=%d",
			len(a), len(dst), len(bias), m, b.K, b.N))
	}
	gemm(threads, m, a, b.K, b, dst, b.N, bias, act, false)
}

// MatMulAdd adds a·B + bias to dst [m, B.N] (a residual connection fused into the product).
func MatMulAdd(dst, a []float32, m int, b *Packed, bias []float32, threads int) {
	if len(a) < m*b.K || len(dst) < m*b.N || (bias != nil && len(bias) < b.N) {
		panic(fmt.Sprintf("tensor.MatMulAdd: sizes a=%d dst=%d bias=%d for m=%d K=%d N=%d",
			len(a), len(dst), len(bias), m, b.K, b.N))
	}
	gemm(threads, m, a, b.K, b, dst, b.N, bias, None, true)
}

// Threads returns the number of goroutines to use for a request of n (n <= 0: GOMAXPROCS).
func Threads(n int) int {
	if n <= 0 {
		return runtime.GOMAXPROCS(0)
	}
	return n
}

// Parallel calls fn(i) for i in [0, n) on up to threads goroutines; the work is handed out
// one index at a time, so uneven items balance themselves.
func Parallel(threads, n int, fn func(i int)) {
	threads = min(Threads(threads), n)
	if threads <= 1 {
		for i := 0; i < n; i++ {
			fn(i)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < threads; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				fn(i)
			}
		}()
	}
	wg.Wait()
}

// ParallelRange splits [0, n) into contiguous chunks of at least grain items and calls
// fn(lo, hi) for each on up to threads goroutines.
func ParallelRange(threads, n, grain int, fn func(lo, hi int)) {
	threads = Threads(threads)
	if n <= 0 {
		return
	}
	chunks := min(threads*4, (n+grain-1)/grain)
	if chunks <= 1 || threads == 1 {
		fn(0, n)
		return
	}
	size := (n + chunks - 1) / chunks
	Parallel(threads, (n+size-1)/size, func(i int) {
		fn(i*size, min(n, (i+1)*size))
	})
}

var packPool = sync.Pool{New: func() any { s := make([]float32, mc*kc); return &s }}

// gemm computes c = act(a·B + bias) with a [m, K] (row stride lda) and c [m, N] (row stride
// ldc); with accumulate it computes c += a·B + bias instead (act must be None).
func gemm(threads, m int, a []float32, lda int, b *Packed, c []float32, ldc int, bias []float32, act Act, accumulate bool) {
	if m == 0 || b.N == 0 {
		return
	}
	threads = Threads(threads)
	panels := (b.N + nr - 1) / nr
	// Row blocks of at most mc rows, as many as a multiple of threads when there are enough,
	// so that no thread is left with one extra block at the end.
	mBlocks := (m + mc - 1) / mc
	if threads > 1 && mBlocks >= threads {
		mBlocks = (mBlocks + threads - 1) / threads * threads
	}
	bm := ((m+mBlocks-1)/mBlocks + mr - 1) / mr * mr
	mBlocks = (m + bm - 1) / bm
	// Split the columns too when there are too few row blocks to keep every thread busy.
	nChunks := 1
	if threads > 1 && mBlocks < 4*threads {
		nChunks = min(panels, (4*threads+mBlocks-1)/mBlocks)
	}
	chunk := (panels + nChunks - 1) / nChunks
	nChunks = (panels + chunk - 1) / chunk
	Parallel(threads, mBlocks*nChunks, func(job int) {
		ib, jc := job/nChunks, job%nChunks
		i0, i1 := ib*bm, min(m, (ib+1)*bm)
		p0, p1 := jc*chunk, min(panels, (jc+1)*chunk)
		gemmBlock(a, lda, b, c, ldc, bias, act, accumulate, i0, i1, p0, p1)
	})
}

// gemmBlock computes rows [i0, i1) (at most mc) and column panels [p0, p1) of c.
func gemmBlock(a []float32, lda int, b *Packed, c []float32, ldc int, bias []float32, act Act, accumulate bool, i0, i1, p0, p1 int) {
	j0, j1 := p0*nr, min(b.N, p1*nr)
	for i := i0; i < i1; i++ {
		row := c[i*ldc+j0 : i*ldc+j1]
		if accumulate {
			if bias != nil {
				Add(row, bias[j0:j1])
			}
		} else if bias != nil {
			copy(row, bias[j0:j1])
		} else {
			clear(row)
		}
	}
	bufp := packPool.Get().(*[]float32)
	defer packPool.Put(bufp)
	buf := *bufp
	rows := i1 - i0
	var edge [mr * nr]float32
	K := b.K
	for k0 := 0; k0 < K; k0 += kc {
		kn := min(kc, K-k0)
		packA(buf, a, lda, i0, rows, k0, kn)
		for p := p0; p < p1; p++ {
			bp := b.Data[p*K*nr+k0*nr : p*K*nr+(k0+kn)*nr]
			cols := min(nr, b.N-p*nr)
			for r := 0; r < rows; r += mr {
				ap := buf[r*kn : (r+mr)*kn]
				h := min(mr, rows-r)
				ci := (i0+r)*ldc + p*nr
				if h == mr && cols == nr {
					kernel(kn, ap, bp, c[ci:], ldc)
					continue
				}
				clear(edge[:])
				kernel(kn, ap, bp, edge[:], nr)
				for y := 0; y < h; y++ {
					dst := c[ci+y*ldc : ci+y*ldc+cols]
					for x := range dst {
						dst[x] += edge[y*nr+x]
					}
				}
			}
		}
	}
	if act != None {
		for i := i0; i < i1; i++ {
			activate(c[i*ldc+j0:i*ldc+j1], act)
		}
	}
}

// packA copies rows [i0, i0+rows) and columns [k0, k0+kn) of a into buf as mr-row panels:
// panel r holds element (r*mr+y, kk) at r*mr*kn + kk*mr + y; missing rows are zero.
func packA(buf, a []float32, lda, i0, rows, k0, kn int) {
	for r := 0; r < rows; r += mr {
		panel := buf[r*kn : (r+mr)*kn]
		h := min(mr, rows-r)
		if h == mr {
			base := (i0+r)*lda + k0
			r0 := a[base : base+kn]
			r1 := a[base+lda : base+lda+kn]
			r2 := a[base+2*lda : base+2*lda+kn]
			r3 := a[base+3*lda : base+3*lda+kn]
			r4 := a[base+4*lda : base+4*lda+kn]
			r5 := a[base+5*lda : base+5*lda+kn]
			for kk := range r0 {
				p := (*[mr]float32)(panel[kk*mr:])
				p[0], p[1], p[2], p[3], p[4], p[5] = r0[kk], r1[kk], r2[kk], r3[kk], r4[kk], r5[kk]
			}
			continue
		}
		for y := 0; y < h; y++ {
			src := a[(i0+r+y)*lda+k0 : (i0+r+y)*lda+k0+kn]
			for kk, v := range src {
				panel[kk*mr+y] = v
			}
		}
		for y := h; y < mr; y++ {
			for kk := 0; kk < kn; kk++ {
				panel[kk*mr+y] = 0
			}
		}
	}
}

// kernelGo is the portable micro-kernel: c[y*ldc+x] += Σk a[k*mr+y]·b[k*nr+x] for a 6×16 tile.
func kernelGo(k int, a, b, c []float32, ldc int) {
	var acc [mr][nr]float32
	a = a[:k*mr]
	b = b[:k*nr]
	for kk := 0; kk < k; kk++ {
		bv := (*[nr]float32)(b[kk*nr:])
		av := (*[mr]float32)(a[kk*mr:])
		for y := 0; y < mr; y++ {
			ay := av[y]
			row := &acc[y]
			for x := 0; x < nr; x++ {
				row[x] += ay * bv[x]
			}
		}
	}
	for y := 0; y < mr; y++ {
		row := c[y*ldc : y*ldc+nr]
		for x := range row {
			row[x] += acc[y][x]
		}
	}
}
