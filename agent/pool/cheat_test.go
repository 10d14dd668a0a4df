package pool_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gata-contrib/gata/agent"
	"github.com/gata-contrib/gata/agent/pool"
	"github.com/gata-contrib/gata/dva/pipeline"
	"github.com/gata-contrib/gata/storage"
)

// tamper changes a result before it is signed, as a dishonest worker would.
type tamper = func(job *pool.Job, res *pool.Result)

// cheats are the dishonest workers the pool must catch.
var cheats = []struct {
	name string
	make func() tamper
}{
	{"random scores", func() tamper {
		rng := rand.New(rand.NewPCG(7, 8))
		return func(_ *pool.Job, r *pool.Result) {
			for i := range r.Items {
				r.Items[i].Score = float32(rng.Float64()*2 - 1)
			}
		}
	}},
	{"a constant score", func() tamper {
		return func(_ *pool.Job, r *pool.Result) {
			for i := range r.Items {
				r.Items[i].Score = 0.25
			}
		}
	}},
	{"honest scores + 0.02", func() tamper {
		return func(_ *pool.Job, r *pool.Result) {
			for i := range r.Items {
				r.Items[i].Score += 0.02
			}
		}
	}},
	{"skips half the items", func() tamper {
		return func(_ *pool.Job, r *pool.Result) { r.Items = r.Items[:len(r.Items)/2] }
	}},
	{"half claimed unreadable", func() tamper {
		return func(_ *pool.Job, r *pool.Result) {
			for i := range r.Items[:len(r.Items)/2] {
				r.Items[i].Score, r.Items[i].Reason, r.Items[i].Error = 0, "corrupt", "corrupt: claimed"
			}
		}
	}},
	{"replays another job's results", func() tamper {
		var first []pool.ItemResult
		return func(_ *pool.Job, r *pool.Result) {
			if first == nil {
				first = slices.Clone(r.Items) // the first job honestly, to have something to replay
				return
			}
			for i := range r.Items {
				src := first[i%len(first)]
				r.Items[i].Score, r.Items[i].Width, r.Items[i].Height = src.Score, src.Width, src.Height
			}
		}
	}},
	{"too-fast claims", func() tamper {
		return func(_ *pool.Job, r *pool.Result) { r.ComputeMS, r.FetchMS = 0, 0 }
	}},
}

// simOptions are the pool options of the simulated runs: small jobs, two canaries each,
// and a device speed limit far above what the simulated workers reach.
func simOptions(seed uint64) pool.Options {
	return pool.Options{JobSize: 8, Canaries: 2, CanarySet: 16, AckWait: 30 * time.Second, Seed: seed,
		Scorer: newSimScorer(0, 0, seed), MaxRate: func(string) float64 { return 50000 }}
}

// simWorker runs a worker on the simulated scorer: honest noise within 2e-3, 20 µs a pair.
func (r *poolRig) simWorker(seed uint64, t tamper) *agent.Worker {
	s := newSimScorer(2e-3, 20*time.Microsecond, seed)
	return r.startWorker(agent.Options{Tamper: t, Engine: func(ctx context.Context, model, sha string) (pipeline.Scorer, string, error) {
		return s, "cpu (simulated)", nil
	}})
}

// checkOutputs checks that every item of src has one result, within tol of its true score.
func (r *poolRig) checkOutputs(src memSource, tol float64) {
	r.t.Helper()
	got := r.results()
	sim := newSimScorer(0, 0, 0)
	bad := 0
	src.Items(context.Background(), func(it pipeline.Item) error {
		res, ok := got[it.Key]
		if !ok {
			r.t.Errorf("no result for %s", it.Key)
			return nil
		}
		px, _ := sim.Prepare(it.Image)
		if d := math.Abs(float64(res.Score - truth(px.Pixels[0], it.Caption))); !(d <= tol) || res.Reason != "" {
			bad++
		}
		return nil
	})
	if bad > 0 {
		r.t.Errorf("%d of %d results are not the true score within %g (cheated scores got in)", bad, src.n, tol)
	}
}

// workerResults returns a worker's results in the order they came.
func (r *poolRig) workerResults(addr string) []storage.PoolResult {
	r.t.Helper()
	rows, err := r.store.DB().Query(`SELECT job_id, state, reason FROM pool_results WHERE lower(worker) = lower(?) ORDER BY received, rowid`, addr)
	if err != nil {
		r.t.Fatal(err)
	}
	defer rows.Close()
	var out []storage.PoolResult
	for rows.Next() {
		var p storage.PoolResult
		if err := rows.Scan(&p.Job, &p.State, &p.Reason); err != nil {
			r.t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

// honestFailure reports whether a rejection says the result was wrong (not merely late
// or not needed).
func honestFailure(reason string) bool {
	return reason != "" && !strings.HasPrefix(reason, "late:") && !strings.HasPrefix(reason, "not needed:")
}

// TestCheatersAreCaught plays each dishonest worker against a pool with two honest ones
// and reports when it was caught. The verified scores must be the true ones, and the
// honest workers must not be rejected.
func TestCheatersAreCaught(t *testing.T) {
	type row struct {
		name             string
		detected         int
		rejected, total  int
		reason           string
		honestRejections int
		honestResults    int
	}
	var mu sync.Mutex
	var table []row
	for i, c := range cheats {
		t.Run(c.name, func(t *testing.T) {
			src := memSource{name: "mem://cheat-" + fmt.Sprint(i), n: 200}
			r := newRigOf(t, []pipeline.Source{src}, []string{src.name})
			r.start(simOptions(uint64(100 + i)))
			cheater := r.simWorker(uint64(10*i+1), c.make())
			time.Sleep(200 * time.Millisecond) // the cheater first, so it surely gets jobs
			h1 := r.simWorker(uint64(10*i+2), nil)
			h2 := r.simWorker(uint64(10*i+3), nil)
			r.wait(5 * time.Minute)
			r.checkOutputs(src, 5e-3)

			res := r.workerResults(cheater.Address())
			if len(res) == 0 {
				t.Fatal("the cheater took no job")
			}
			rw := row{name: c.name, total: len(res)}
			for k, p := range res {
				if p.State == storage.ResultRejected {
					rw.rejected++
					if rw.detected == 0 && honestFailure(p.Reason) {
						rw.detected, rw.reason = k+1, p.Reason
					}
				}
			}
			for _, h := range []*agent.Worker{h1, h2} {
				for _, p := range r.workerResults(h.Address()) {
					rw.honestResults++
					if honestFailure(p.Reason) {
						rw.honestRejections++
						t.Errorf("honest worker rejected: %s %s", p.Job, p.Reason)
					}
				}
			}
			if rw.detected == 0 {
				t.Fatalf("cheater never caught: %+v", res)
			}
			// Only the replaying cheater answers its first job honestly.
			want := 1
			if c.name == "replays another job's results" {
				want = 2
			}
			if rw.detected > want {
				t.Errorf("caught at its job %d, want by its job %d", rw.detected, want)
			}
			mu.Lock()
			table = append(table, rw)
			mu.Unlock()
		})
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n| dishonest worker | caught at its job | its results rejected | first reason | honest results rejected |\n|---|---|---|---|---|\n")
	for _, rw := range table {
		fmt.Fprintf(&b, "| %s | %d | %d of %d | %s | %d of %d |\n", rw.name, rw.detected, rw.rejected, rw.total, rw.reason,
			rw.honestRejections, rw.honestResults)
	}
	t.Log(b.String())
}

// TestHonestWorkersOver1000Jobs runs a thousand groups through six honest workers whose
// scores differ from the pool's by up to 2e-3 (within the 5e-3 of DESIGN §5) and counts
// the results rejected as wrong: there must be none.
func TestHonestWorkersOver1000Jobs(t *testing.T) {
	const groups = 1000
	o := simOptions(42)
	o.JobSize = 4
	src := memSource{name: "mem://honest", n: o.CanarySet + groups*o.JobSize}
	r := newRigOf(t, []pipeline.Source{src}, []string{src.name})
	o.MaxOpenGroups = 128
	r.start(o)
	var ws []*agent.Worker
	for i := range 6 {
		ws = append(ws, r.simWorker(uint64(1000+i), nil))
	}
	r.wait(5 * time.Minute)
	r.checkOutputs(src, 5e-3)
	var results, wrong, notNeeded int
	for _, w := range ws {
		for _, p := range r.workerResults(w.Address()) {
			results++
			switch {
			case honestFailure(p.Reason):
				wrong++
				t.Errorf("honest result rejected: %s %s", p.Job, p.Reason)
			case p.State == storage.ResultRejected:
				notNeeded++
			}
		}
	}
	counts, err := r.store.PoolCounts(context.Background(), r.run)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d groups, %d jobs, %d results of honest workers: %d rejected as wrong (%.2f%%), %d not needed; %d jobs = %.2f per group",
		counts.Groups, counts.Jobs, results, wrong, 100*float64(wrong)/float64(results), notNeeded, counts.Jobs, float64(counts.Jobs)/float64(counts.Groups))
	if counts.Groups != groups {
		t.Errorf("%d groups, want %d", counts.Groups, groups)
	}
}
