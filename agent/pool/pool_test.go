package pool_test

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/gata-contrib/gata/agent"
	"github.com/gata-contrib/gata/agent/pool"
	"github.com/gata-contrib/gata/dva"
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
	// Each confirmed result earns its pairs, canaries included; each group's pairs are
	// confirmed at least once.
	if confirmed < int64(n-6) {
		t.Errorf("confirmed credits %d < %d pairs handed out", confirmed, n-6)
	}
}
