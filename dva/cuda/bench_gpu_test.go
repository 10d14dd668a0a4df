package cuda

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/gata-contrib/gata/dva/tensor"
)

// Benchmarks on the GPU (they skip without one): the towers of a full-size model at
// batch 256, in this process and through the runner, and the GEMM's TFLOP/s at the shapes
// of ViT-B/16 at that batch. gpucheck.sh runs them beside clip_ref.py --bench --device cuda
// --dtype fp16 --batch 256 on the same card.
//
//	GATA_FULL_MODEL=DIR  the model (clip_ref.py --write-full DIR)
//	GATA_BENCH_BATCH=N   the batch (default 256)

func benchBatch() int {
	if n, err := strconv.Atoi(os.Getenv("GATA_BENCH_BATCH")); err == nil && n > 0 {
		return n
	}
	return 256
}

func fullModel(b *testing.B) string {
	dir := os.Getenv("GATA_FULL_MODEL")
	if dir == "" {
		b.Skip("set GATA_FULL_MODEL to a model folder (clip_ref.py --write-full DIR)")
	}
	return dir
}

// benchTexts are n token rows like clip_ref.py's benchmark: 12 random tokens between the
// start and end tokens (14 positions).
func benchTexts(n, ctxLen int) [][]int32 {
	r := newRand(3)
	ids := make([][]int32, n)
	for i := range ids {
		ids[i] = make([]int32, ctxLen)
		ids[i][0] = 49406
		for j := 1; j <= 12; j++ {
			ids[i][j] = int32(1 + r.IntN(49000))
		}
		ids[i][13] = 49407
	}
	return ids
}

// measure calls fn once to warm up (workspace, clocks), then b.N times, and reports
// items/s as unit.
func measure(b *testing.B, items int, unit string, fn func() error) {
	b.Helper()
	if err := fn(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	start := time.Now()
	for b.Loop() {
		if err := fn(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(items*b.N)/time.Since(start).Seconds(), unit)
}

// fullEngine is the full-size model's engine on the GPU, closed when the benchmark ends.
func fullEngine(b *testing.B) *engine {
	b.Helper()
	dir := fullModel(b)
	d := gpuDevice(b)
	e, err := newEngine(d, dir, d.name)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { e.Close() })
	return e
}

func BenchmarkGPUImages(b *testing.B) {
	e := fullEngine(b)
	n := benchBatch()
	S := e.cfg.Vision.ImageSize
	pix := halvesParallel(randn(newRand(1), n*3*S*S, 1))
	measure(b, n, "images/s", func() error {
		_, err := e.encodeImagesHalf(context.Background(), pix, n)
		return err
	})
}

func BenchmarkGPUTexts(b *testing.B) {
	e := fullEngine(b)
	n := benchBatch()
	ids := benchTexts(n, e.cfg.Text.ContextLength)
	measure(b, n, "texts/s", func() error {
		_, err := e.EncodeTexts(context.Background(), ids)
		return err
	})
}

// BenchmarkGPURunnerImages is the path the app takes: float pixels converted to half in
// the parent, sent over the pipe, run in the child.
func BenchmarkGPURunnerImages(b *testing.B) {
	dir := fullModel(b)
	haveGPU(b)
	opts := Options{Command: []string{os.Args[0]}, Env: []string{"GATA_TEST_RUNNER=gpu"}}
	r, err := StartRunner(context.Background(), dir, opts)
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	n := benchBatch()
	S := r.cfg.Vision.ImageSize
	pix := randn(newRand(1), n*3*S*S, 1)
	measure(b, n, "images/s", func() error {
		_, err := r.EncodeImages(context.Background(), pix, n)
		return err
	})
}

// BenchmarkGPUGEMM times the GEMMs of a ViT-B/16 block at batch 256 (M = 256·197 rows).
func BenchmarkGPUGEMM(b *testing.B) {
	d := gpuDevice(b)
	M := benchBatch() * 197
	for _, s := range []struct {
		name string
		n, k int
		act  tensor.Act
		epi  epilogue
	}{
		{"qkv_768x2304", 2304, 768, tensor.None, epiHalf},
		{"c_fc_768x3072_gelu", 3072, 768, tensor.QuickGELU, epiHalf},
		{"c_proj_3072x768_residual", 768, 3072, tensor.None, epiFloatAdd},
	} {
		b.Run(s.name, func(b *testing.B) {
			mem := &arena{dev: d}
			defer mem.release()
			alloc := func(n int) dptr {
				p, err := mem.alloc(n)
				if err != nil {
					b.Fatal(err)
				}
				return p
			}
			a, w, bias := alloc(2*M*s.k), alloc(2*s.n*s.k), alloc(4*s.n)
			outBytes := 2 * M * s.n
			if s.epi != epiHalf {
				outBytes = 4 * M * s.n
			}
			op := gemmOp{a: a, lda: s.k, w: w, ldw: s.k, bias: bias, out: alloc(outBytes), ldc: s.n, m: M, n: s.n, k: s.k, act: s.act, epilogue: s.epi}
			const reps = 20
			if err := gemm(d, op); err != nil {
				b.Fatal(err)
			}
			if err := d.sync(); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			start := time.Now()
			for b.Loop() {
				for range reps {
					if err := gemm(d, op); err != nil {
						b.Fatal(err)
					}
				}
				if err := d.sync(); err != nil {
					b.Fatal(err)
				}
			}
			sec := time.Since(start).Seconds()
			b.ReportMetric(2*float64(M)*float64(s.n)*float64(s.k)*reps*float64(b.N)/sec/1e12, "TFLOP/s")
			b.Log(fmt.Sprintf("M=%d N=%d K=%d", M, s.n, s.k))
		})
	}
}
