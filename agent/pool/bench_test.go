package pool_test

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gata-contrib/gata/agent"
	"github.com/gata-contrib/gata/agent/pool"
	"github.com/gata-contrib/gata/dva/pipeline"
	"github.com/gata-contrib/gata/storage"
)

// The scale benchmark runs the pool in a child process (this test binary again), so the
// pool's own memory can be measured apart from the simulated workers'.
const (
	childDir   = "GATA_POOL_BENCH_DIR"
	childRun   = "GATA_POOL_BENCH_RUN"
	childItems = "GATA_POOL_BENCH_ITEMS"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(childDir); dir != "" {
		os.Exit(poolChild(dir))
	}
	os.Exit(m.Run())
}

// poolChild runs a pool over the in-memory dataset on the database in dir, prints its URL,
// and when the run is done its peak resident memory.
func poolChild(dir string) int {
	ctx := context.Background()
	store, err := storage.Open(ctx, filepath.Join(dir, storage.DBName))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer store.Close()
	run, _ := strconv.ParseInt(os.Getenv(childRun), 10, 64)
	items, _ := strconv.Atoi(os.Getenv(childItems))
	o := simOptions(77)
	o.Ledger, o.Run, o.DataDir, o.Listen = store, run, dir, "127.0.0.1:0"
	o.Sources = []pipeline.Source{memSource{name: "mem://bench", n: items}}
	o.Logger = slog.New(slog.DiscardHandler)
	p, err := pool.New(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	go func() {
		<-p.Ready()
		fmt.Printf("URL %s\n", p.URL())
	}()
	if err := p.Serve(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	st := p.Status()
	fmt.Printf("DONE %d %d %.3f\n", st.Results, st.Groups, st.Elapsed.Seconds())
	fmt.Printf("RSS %d\n", peakRSS())
	return 0
}

// peakRSS is the process's peak resident memory in kB (Linux), 0 when unknown.
func peakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for l := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	return 0
}

// BenchmarkPool500Workers: 500 simulated workers (goroutines with the simulated scorer,
// each its own NATS client) against one pool in its own process, over 1,000 groups of 8
// pairs. It reports jobs per second, the p50 and p99 time from a job's issue to its result,
// and the pool's peak RSS. Run it with `make bench-pool`.
func BenchmarkPool500Workers(b *testing.B) {
	const workers, groups = 500, 1000
	for range b.N {
		dir := b.TempDir()
		store := openStore(b, dir)
		run, err := store.CreateRun(context.Background(), storage.DVARun{Sources: []string{"mem://bench"}, Model: "sim"})
		if err != nil {
			b.Fatal(err)
		}
		tok, sum, _ := pool.NewToken()
		if err := store.AddPoolInvite(context.Background(), sum, "bench"); err != nil {
			b.Fatal(err)
		}
		items := simOptions(0).CanarySet + groups*simOptions(0).JobSize
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), childDir+"="+dir, childRun+"="+fmt.Sprint(run), childItems+"="+fmt.Sprint(items))
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			b.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		lines := make(chan string, 8)
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		url := strings.TrimPrefix(<-lines, "URL ")

		var mu sync.Mutex
		var lat []time.Duration
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		start := time.Now()
		for i := range workers {
			s := newSimScorer(2e-3, 20*time.Microsecond, uint64(i+1))
			w, err := agent.New(agent.Options{URL: url, Token: tok, Key: newKey(b), Logger: slog.New(slog.DiscardHandler),
				Engine: func(ctx context.Context, model, sha string) (pipeline.Scorer, string, error) {
					return s, "cpu (simulated)", nil
				},
				Tamper: func(job *pool.Job, res *pool.Result) {
					d := time.Since(job.Issued)
					mu.Lock()
					lat = append(lat, d)
					mu.Unlock()
				}})
			if err != nil {
				b.Fatal(err)
			}
			wg.Go(func() { w.Serve(ctx) })
		}
		var done, rss string
		for l := range lines {
			switch {
			case strings.HasPrefix(l, "DONE "):
				done = l
			case strings.HasPrefix(l, "RSS "):
				rss = l
			}
		}
		elapsed := time.Since(start)
		if err := cmd.Wait(); err != nil {
			b.Fatalf("pool process: %v", err)
		}
		cancel()
		wg.Wait()
		var results, nGroups int
		var poolSecs float64
		fmt.Sscanf(done, "DONE %d %d %f", &results, &nGroups, &poolSecs)
		var kb int64
		fmt.Sscanf(rss, "RSS %d", &kb)
		if nGroups != groups {
			b.Fatalf("pool cut %d groups, want %d", nGroups, groups)
		}
		slices.Sort(lat)
		pct := func(q float64) time.Duration { return lat[min(len(lat)-1, int(q*float64(len(lat))))] }
		b.ReportMetric(float64(results)/poolSecs, "jobs/s")
		b.ReportMetric(float64(pct(0.50).Milliseconds()), "p50-ms")
		b.ReportMetric(float64(pct(0.99).Milliseconds()), "p99-ms")
		b.ReportMetric(float64(kb)/1024, "pool-RSS-MB")
		b.Logf("%d workers, %d groups, %d results in %.1f s (%.1f s with the workers' start); p50 %s, p99 %s; pool peak RSS %.0f MB",
			workers, nGroups, results, poolSecs, elapsed.Seconds(), pct(0.5), pct(0.99), float64(kb)/1024)
	}
}
