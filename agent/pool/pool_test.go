package pool_test

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gata-contrib/gata/agent"
	"github.com/gata-contrib/gata/agent/pool"
	"github.com/gata-contrib/gata/dva"
	"github.com/gata-contrib/gata/dva/dvatest"
	"github.com/gata-contrib/gata/dva/pipeline"
)

// TestPoolScoresEveryItemOnce runs a pool over a shard with three honest workers and
// checks that every item has exactly one result, equal to the engine's own score, and
// that every result counted is confirmed credit.
func TestPoolScoresEveryItemOnce(t *testing.T) {
	const n = 90
	dir := t.TempDir()
	shard := writeShard(t, dir, n)
	r := newRig(t, shard)
	r.start(pool.Options{JobSize: 16, CanarySet: 6, Canaries: 2, AckWait: 10 * time.Second, Seed: 1})
	var ws []*agent.Worker
	for range 3 {
		ws = append(ws, r.startWorker(agent.Options{BatchSize: 5}))
	}
	r.wait(5 * time.Minute)

	got := r.results()
	if len(got) != n {
		t.Fatalf("%d results, want %d", len(got), n)
	}
	e := testEngine(t)
	srcs := r.sources
	for _, src := range srcs {
		err := src.Items(context.Background(), func(it pipeline.Item) error {
			res, ok := got[it.Key]
			if !ok {
				return fmt.Errorf("no result for %s", it.Key)
			}
			if res.Reason != "" {
				return fmt.Errorf("%s failed: %s %s", it.Key, res.Reason, res.Error)
			}
			want, err := e.Score(context.Background(), []dva.Pair{{Image: dva.Image{Name: it.Key, Data: it.Image}, Caption: it.Caption}})
			if err != nil {
				return err
			}
			if d := math.Abs(float64(res.Score - want[0].Score)); d > 1e-4 {
				return fmt.Errorf("%s scored %v, the engine %v", it.Key, res.Score, want[0].Score)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	credits, err := r.store.PoolCredits(context.Background(), r.run)
	if err != nil {
		t.Fatal(err)
	}
	var confirmed, pending, rejected int64
	for _, c := range credits {
		confirmed += c.Confirmed
		pending += c.Pending
		rejected += c.Rejected
	}
	counts, err := r.store.PoolCounts(context.Background(), r.run)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("credits %+v counts %+v", credits, counts)
	if pending != 0 || rejected != 0 {
		t.Errorf("pending %d, rejected %d credits of honest workers; want 0", pending, rejected)
	}
	if counts.Verified != counts.Groups || counts.Groups == 0 {
		t.Errorf("%d of %d groups verified", counts.Verified, counts.Groups)
	}
	// Each worker heard its credit from the pool.
	for _, w := range ws {
		var want int64
		for _, c := range credits {
			if c.Worker == w.Address() {
				want = c.Confirmed
			}
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			st := w.Stats()
			if st.Credits != nil && st.Credits.Confirmed == want && st.Credits.Pending == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("worker %s knows its credit as %+v, the ledger says %d confirmed", w.Address(), st.Credits, want)
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// Each confirmed result earns its pairs, canaries included; each group's pairs are
	// confirmed at least once.
	if confirmed < int64(n-6) {
		t.Errorf("confirmed credits %d < %d pairs handed out", confirmed, n-6)
	}
}

// TestToleranceCoversBatchSizes measures how much the batch size changes the CPU
// backend's scores of the shared photos (workers choose their own batch size): it must be
// far below the pool's tolerance, which is set by the CPU-vs-GPU bound of DESIGN §5.
func TestToleranceCoversBatchSizes(t *testing.T) {
	e := testEngine(t)
	var px [][]float32
	var caps []string
	for i := range 24 {
		b, err := os.ReadFile(filepath.Join(dvatest.ClipDir(t), photos[i%len(photos)]))
		if err != nil {
			t.Fatal(err)
		}
		p, err := e.Prepare(b)
		if err != nil {
			t.Fatal(err)
		}
		px, caps = append(px, p.Pixels), append(caps, fmt.Sprintf("photo number %d, a %s", i, photos[i%len(photos)]))
	}
	ref, err := e.ScorePrepared(context.Background(), px, caps)
	if err != nil {
		t.Fatal(err)
	}
	worst := 0.0
	for _, bs := range []int{1, 3, 7, 24} {
		var got []float32
		for start := 0; start < len(px); start += bs {
			end := min(start+bs, len(px))
			s, err := e.ScorePrepared(context.Background(), px[start:end], caps[start:end])
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, s...)
		}
		for i := range got {
			worst = max(worst, math.Abs(float64(got[i]-ref[i])))
		}
	}
	t.Logf("largest score change across batch sizes 1, 3, 7, 24: %.2g (tolerance %g)", worst, pool.DefaultTolerance)
	if worst > pool.DefaultTolerance/100 {
		t.Errorf("batch sizes change scores by %g, too close to the tolerance %g", worst, pool.DefaultTolerance)
	}
}
