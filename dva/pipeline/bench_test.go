package pipeline_test

// Benchmarks of batch runs, driven by bench.sh (make bench-pipeline). They read their data
// from GATA_BENCH_* variables and skip when those are unset, so a plain `go test -bench .`
// costs nothing:
//
//	GATA_BENCH_JPEG        one JPEG photo, timed through decode and preprocessing
//	GATA_BENCH_DATA        a folder of image–caption pairs (x.jpg with x.txt)
//	GATA_BENCH_TINY_MODEL  a small model folder, so that the pipeline is decode-bound
//	GATA_BENCH_MODEL       a full-size ViT-B-16 folder (clip_ref.py --write-full DIR)
//	GATA_BENCH_FULL_PAIRS  pairs for the full-size model (default 256)
//	GATA_BENCH_THREADS     backend threads (default GOMAXPROCS)
//
// This is an external test package because the runs save into the real SQLite storage,
// which the pipeline package itself must not import.

import (
	"bytes"
	"context"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gata-contrib/gata/dva"
	"github.com/gata-contrib/gata/dva/clip"
	"github.com/gata-contrib/gata/dva/cpu"
	"github.com/gata-contrib/gata/dva/pipeline"
	"github.com/gata-contrib/gata/dva/preprocess"
	"github.com/gata-contrib/gata/storage"
)

// benchBatch is the batch size of the runs, the pipeline's default.
const benchBatch = pipeline.DefaultBatchSize

// BenchmarkPreprocess times decoding and preprocessing (resize, centre crop, normalise to
// 224 px, DFN ViT-B-16's settings) of the JPEG in $GATA_BENCH_JPEG, the work that
// `clip_ref.py --bench` times with PIL: on one core (GOMAXPROCS 1, so the garbage
// collector counts too) and on every core, one goroutine per core.
func BenchmarkPreprocess(b *testing.B) {
	path := os.Getenv("GATA_BENCH_JPEG")
	if path == "" {
		b.Skip("set GATA_BENCH_JPEG to a JPEG photo (bench.sh writes a 600x400 one at quality 90) to run this benchmark")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	cfg, lim := preprocess.DefaultConfig(), preprocess.DefaultLimits()
	prep := func(dst []float32) {
		if err := preprocess.ImageInto(bytes.NewReader(data), cfg, lim, dst); err != nil {
			b.Fatalf("ImageInto(%s): %v", path, err)
		}
	}
	px := 3 * cfg.Size * cfg.Size

	b.Run("1core", func(b *testing.B) {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
		dst := make([]float32, px)
		prep(dst)
		b.ResetTimer()
		cpu0 := cpuSeconds()
		for range b.N {
			prep(dst)
		}
		reportRate(b, "images/s", float64(b.N), b.Elapsed(), cpuSeconds()-cpu0, 1)
	})
	b.Run("allcores", func(b *testing.B) {
		workers := runtime.GOMAXPROCS(0)
		var next atomic.Int64
		var wg sync.WaitGroup
		b.ResetTimer()
		cpu0 := cpuSeconds()
		for range workers {
			wg.Go(func() {
				dst := make([]float32, px)
				for next.Add(1) <= int64(b.N) {
					prep(dst)
				}
			})
		}
		wg.Wait()
		reportRate(b, "images/s", float64(b.N), b.Elapsed(), cpuSeconds()-cpu0, workers)
	})
}

// BenchmarkPipelineTiny runs the whole pipeline (folder source, decode on every core,
// scoring, results saved to SQLite) over $GATA_BENCH_DATA with the small model of
// $GATA_BENCH_TINY_MODEL, which leaves decoding as the bottleneck. One iteration is one
// run into a fresh database. Reported: pairs/s, CPU utilisation (process CPU time / wall
// time / GOMAXPROCS), the share of the time the model was scoring ("scorer-busy") and the
// peak resident set size.
func BenchmarkPipelineTiny(b *testing.B) {
	data, model := os.Getenv("GATA_BENCH_DATA"), os.Getenv("GATA_BENCH_TINY_MODEL")
	if data == "" || model == "" {
		b.Skip("set GATA_BENCH_DATA to a folder of x.jpg + x.txt pairs and GATA_BENCH_TINY_MODEL to a small model folder (see bench.sh) to run this benchmark")
	}
	e := loadEngine(b, model)
	b.Logf("backend %s, model %s, data %s", e.Info().Backend, model, data)
	benchRun(b, e, data)
}

// BenchmarkPipelineViTB16 compares the whole pipeline with the full-size model of
// $GATA_BENCH_MODEL against the engine alone on the same pairs already decoded
// (ScorePrepared on prepared pixels): the first $GATA_BENCH_FULL_PAIRS pairs of
// $GATA_BENCH_DATA. The model is the bottleneck here, so pipeline/engine, and the share of
// the run the model was scoring ("scorer-busy"), say how busy the pipeline keeps the backend.
func BenchmarkPipelineViTB16(b *testing.B) {
	data, model := os.Getenv("GATA_BENCH_DATA"), os.Getenv("GATA_BENCH_MODEL")
	if data == "" || model == "" {
		b.Skip("set GATA_BENCH_DATA to a folder of x.jpg + x.txt pairs and GATA_BENCH_MODEL to a full-size model folder (clip_ref.py --write-full DIR) to run this benchmark")
	}
	n := 256
	if v, err := strconv.Atoi(os.Getenv("GATA_BENCH_FULL_PAIRS")); err == nil && v > 0 {
		n = v
	}
	e := loadEngine(b, model)
	b.Logf("backend %s, model %s, %d pairs of %s", e.Info().Backend, model, n, data)
	subset, images, captions := firstPairs(b, data, n)

	b.Run("engine", func(b *testing.B) {
		pixels := make([][]float32, len(images))
		for i, img := range images {
			p, err := e.Prepare(img)
			if err != nil {
				b.Fatalf("Prepare(pair %d): %v", i, err)
			}
			pixels[i] = p.Pixels
		}
		ctx := context.Background()
		b.ResetTimer()
		var cpu float64
		var wall time.Duration
		for range b.N {
			cpu0, t0 := cpuSeconds(), time.Now()
			if _, err := e.ScorePrepared(ctx, pixels, captions); err != nil {
				b.Fatal(err)
			}
			wall += time.Since(t0)
			cpu += cpuSeconds() - cpu0
		}
		reportRate(b, "pairs/s", float64(b.N*len(pixels)), wall, cpu, runtime.GOMAXPROCS(0))
	})
	b.Run("pipeline", func(b *testing.B) { benchRun(b, e, subset) })
}

// benchRun times pipeline.Run over the folder dir, one fresh database per iteration, and
// reports pairs/s and the rest.
func benchRun(b *testing.B, e *dva.Engine, dir string) {
	ctx := context.Background()
	srcs, err := pipeline.Open(dir, pipeline.SourceOptions{})
	if err != nil {
		b.Fatal(err)
	}
	var pairs int64
	var cpu float64
	var wall time.Duration
	sc := &timedScorer{Scorer: e}
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		st, err := storage.Open(ctx, filepath.Join(b.TempDir(), "bench-"+strconv.Itoa(i)+".db"))
		if err != nil {
			b.Fatal(err)
		}
		run, err := st.CreateRun(ctx, storage.DVARun{Sources: []string{dir}, Model: e.Info().Dir})
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		b.StartTimer()

		cpu0, t0 := cpuSeconds(), time.Now()
		stats, err := pipeline.Run(ctx, pipeline.RunOptions{Sources: srcs, Store: resultStore{st}, RunID: run,
			Scorer: sc, BatchSize: benchBatch, Backend: e.Info().Backend})
		wall += time.Since(t0)
		cpu += cpuSeconds() - cpu0

		b.StopTimer()
		if err != nil {
			b.Fatalf("Run: %v", err)
		}
		if stats.Failed > 0 || stats.Scored == 0 {
			b.Fatalf("Run scored %d pairs and failed %d (%v); the bench data should all score", stats.Scored, stats.Failed, stats.Reasons)
		}
		pairs += stats.Scored
		if err := st.Close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	reportRate(b, "pairs/s", float64(pairs), wall, cpu, runtime.GOMAXPROCS(0))
	b.ReportMetric(float64(pairs)/float64(b.N), "pairs/run")
	// Unlike the CPU time, this does not depend on what else the machine runs: a backend
	// kept busy is scoring all the time, however slowly.
	b.ReportMetric(time.Duration(sc.busy.Load()).Seconds()/wall.Seconds(), "scorer-busy")
}

// timedScorer is a Scorer that adds up the wall time spent in ScorePrepared.
type timedScorer struct {
	pipeline.Scorer
	busy atomic.Int64 // nanoseconds
}

func (s *timedScorer) ScorePrepared(ctx context.Context, pixels [][]float32, captions []string) ([]float32, error) {
	t0 := time.Now()
	defer func() { s.busy.Add(int64(time.Since(t0))) }()
	return s.Scorer.ScorePrepared(ctx, pixels, captions)
}

// reportRate reports n items in wall time as unit, and, because a machine shared with
// other work makes the wall clock lie, also what the CPU time used would give with each
// of the cores on its own ("-cpu-est"), the CPU utilisation (CPU time / wall time / cores)
// and the peak resident set size.
func reportRate(b *testing.B, unit string, n float64, wall time.Duration, cpu float64, cores int) {
	if wall > 0 {
		b.ReportMetric(n/wall.Seconds(), unit)
	}
	if cpu > 0 && wall > 0 {
		b.ReportMetric(n/(cpu/float64(cores)), unit+"-cpu-est")
		b.ReportMetric(cpu/wall.Seconds()/float64(cores), "cpu-util")
	}
	b.ReportMetric(float64(peakRSS())/(1<<20), "peak-RSS-MiB")
}

// loadEngine loads the model folder onto the CPU backend with $GATA_BENCH_THREADS threads.
func loadEngine(b *testing.B, dir string) *dva.Engine {
	b.Helper()
	m, err := clip.LoadModel(dir)
	if err != nil {
		b.Fatalf("LoadModel(%s): %v", dir, err)
	}
	threads, _ := strconv.Atoi(os.Getenv("GATA_BENCH_THREADS"))
	e, err := dva.NewEngine(m.Config, cpu.New(m, threads), dva.EngineOptions{BatchSize: benchBatch, ModelDir: dir})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { e.Close() })
	return e
}

// firstPairs links the first n pairs (x.jpg and x.txt, in walk order) of the folder dir
// into a temporary folder, and returns it with their images and captions.
func firstPairs(b *testing.B, dir string, n int) (subset string, images [][]byte, captions []string) {
	b.Helper()
	subset = b.TempDir()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if len(images) == n {
			return fs.SkipAll
		}
		if d.IsDir() || strings.HasPrefix(d.Name(), ".") || !strings.EqualFold(filepath.Ext(p), ".jpg") {
			return nil
		}
		txt := strings.TrimSuffix(p, filepath.Ext(p)) + ".txt"
		img, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		caption, err := os.ReadFile(txt)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		for _, f := range []string{rel, strings.TrimSuffix(rel, filepath.Ext(rel)) + ".txt"} {
			if err := linkOrCopy(filepath.Join(dir, f), filepath.Join(subset, f)); err != nil {
				return err
			}
		}
		images = append(images, img)
		captions = append(captions, strings.TrimRight(string(caption), "\r\n"))
		return nil
	})
	if err != nil {
		b.Fatalf("read pairs of %s: %v", dir, err)
	}
	if len(images) < n {
		b.Fatalf("%s holds %d pairs, want %d", dir, len(images), n)
	}
	return subset, images, captions
}

// linkOrCopy hard-links src to dst, or copies it where a link cannot be made.
func linkOrCopy(src, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	if os.Link(src, dst) == nil {
		return nil
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// resultStore is storage.Store as a pipeline.ResultStore (app/core has the same adapter).
type resultStore struct{ s *storage.Store }

func (a resultStore) Finished(ctx context.Context, run int64, refs []pipeline.Ref) ([]bool, error) {
	out := make([]storage.ResultRef, len(refs))
	for i, r := range refs {
		out[i] = storage.ResultRef{Source: r.Source, Key: r.Key}
	}
	return a.s.Finished(ctx, run, out)
}

func (a resultStore) SaveResults(ctx context.Context, run int64, rs []pipeline.Result) error {
	out := make([]storage.DVAResult, len(rs))
	for i, r := range rs {
		out[i] = storage.DVAResult{Source: r.Source, Key: r.Key, UID: r.UID, URL: r.URL, Caption: r.Caption,
			Score: r.Score, Width: r.Width, Height: r.Height, Reason: string(r.Reason), Error: r.Error,
			Extra: r.Extra, Verdict: r.Verdict}
	}
	return a.s.SaveResults(ctx, run, out)
}

func (a resultStore) EachResult(ctx context.Context, run int64, fn func(pipeline.Result) error) error {
	return a.s.EachResult(ctx, run, func(r storage.DVAResult) error {
		return fn(pipeline.Result{Source: r.Source, Key: r.Key, UID: r.UID, URL: r.URL, Caption: r.Caption,
			Score: r.Score, Width: r.Width, Height: r.Height, Reason: pipeline.Reason(r.Reason), Error: r.Error,
			Extra: r.Extra, Verdict: r.Verdict})
	})
}

// cpuSeconds is the CPU time (user + system) of this process so far, from the utime and
// stime fields of /proc/self/stat (in clock ticks of 1/100 s), or 0 without /proc.
func cpuSeconds() float64 {
	stat, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0
	}
	// The command name, field 2, is in parentheses and may hold spaces and parentheses:
	// count from after the last one.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0
	}
	fields := strings.Fields(string(stat[i+1:])) // fields 3 onwards: utime is field 14
	if len(fields) < 13 {
		return 0
	}
	user, _ := strconv.ParseFloat(fields[11], 64)
	sys, _ := strconv.ParseFloat(fields[12], 64)
	return (user + sys) / 100
}

// peakRSS is the peak resident set size of this process in bytes (VmHWM in
// /proc/self/status, what getrusage reports as ru_maxrss), or 0 without /proc.
func peakRSS() int64 {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(status)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}
