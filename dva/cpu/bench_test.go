package cpu

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"

	"github.com/gata-contrib/gata/dva/clip"
)

// BenchmarkViTB16 measures the towers of a full-size model at batch 32, the setting of
// `clip_ref.py --bench`: the model folder comes from $GATA_BENCH_MODEL (write one with
// `clip_ref.py --write-full DIR`), the thread count from $GATA_BENCH_THREADS (default
// GOMAXPROCS). Reported: images/s, texts/s and the peak resident set size of the process.
func BenchmarkViTB16(b *testing.B) {
	dir := os.Getenv("GATA_BENCH_MODEL")
	if dir == "" {
		b.Skip("set GATA_BENCH_MODEL to a full-size OpenCLIP model folder (clip_ref.py --write-full DIR) to run this benchmark")
	}
	threads, _ := strconv.Atoi(os.Getenv("GATA_BENCH_THREADS"))
	m, err := clip.LoadModel(dir)
	if err != nil {
		b.Fatalf("LoadModel(%s): %v", dir, err)
	}
	be := New(m, threads)
	b.Logf("backend %s, model %s", be.Name(), dir)
	const batch = 32
	ctx := context.Background()
	r := rand.New(rand.NewPCG(0, 0))
	S := m.Config.Vision.ImageSize
	pix := make([]float32, batch*3*S*S)
	for i := range pix {
		pix[i] = float32(r.NormFloat64())
	}
	texts := func(words int) [][]int32 {
		ids := make([][]int32, batch)
		for i := range ids {
			row := make([]int32, m.Config.Text.ContextLength)
			row[0] = 49406
			for j := 1; j <= words; j++ {
				row[j] = int32(1 + r.IntN(49000))
			}
			row[words+1] = 49407
			ids[i] = row
		}
		return ids
	}
	run := func(b *testing.B, unit string, fn func() error) {
		if err := fn(); err != nil { // warm-up: page in the weights, size the pools
			b.Fatal(err)
		}
		b.ResetTimer()
		cpu0 := cpuSeconds()
		for i := 0; i < b.N; i++ {
			if err := fn(); err != nil {
				b.Fatal(err)
			}
		}
		cpu := cpuSeconds() - cpu0
		b.ReportMetric(float64(batch*b.N)/b.Elapsed().Seconds(), unit)
		// On a machine shared with other work the wall clock undercounts; like clip_ref.py,
		// also report what the CPU time used would give with every thread on its own core.
		if cpu > 0 {
			b.ReportMetric(float64(batch*b.N)/(cpu/float64(be.threads)), unit+"-cpu-est")
			b.ReportMetric(cpu/b.Elapsed().Seconds(), "cpu/wall")
		}
		b.ReportMetric(float64(peakRSS())/(1<<20), "peak-RSS-MiB")
	}
	b.Run("images_batch32", func(b *testing.B) {
		run(b, "images/s", func() error { _, err := be.EncodeImages(ctx, pix, batch); return err })
	})
	for _, words := range []int{12, m.Config.Text.ContextLength - 2} {
		ids := texts(words)
		b.Run("texts_"+strconv.Itoa(words+2)+"tokens_batch32", func(b *testing.B) {
			run(b, "texts/s", func() error { _, err := be.EncodeTexts(ctx, ids); return err })
		})
	}
}

// cpuSeconds is the CPU time (user + system) this process has used, from /proc/self/stat
// (clock ticks of 1/100 s), or 0 where /proc is missing.
func cpuSeconds() float64 {
	data, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0
	}
	// Fields after the command name (which is in parentheses and may hold spaces).
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0
	}
	f := bytes.Fields(data[i+1:])
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseFloat(string(f[11]), 64)
	stime, _ := strconv.ParseFloat(string(f[12]), 64)
	return (utime + stime) / 100
}

// peakRSS is the process's peak resident set size in bytes (VmHWM), or 0 where /proc is missing.
func peakRSS() int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range bytes.Split(data, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte("VmHWM:")); ok {
			f := bytes.Fields(v)
			if len(f) > 0 {
				kb, _ := strconv.ParseInt(string(f[0]), 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}
