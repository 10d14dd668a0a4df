package pool_test

import (
	"context"
	"crypto/ecdsa"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/gata-contrib/gata/agent"
	"github.com/gata-contrib/gata/agent/pool"
	"github.com/gata-contrib/gata/dva"
	"github.com/gata-contrib/gata/dva/clip"
	"github.com/gata-contrib/gata/dva/cpu"
	"github.com/gata-contrib/gata/dva/dvatest"
	"github.com/gata-contrib/gata/dva/pipeline"
	"github.com/gata-contrib/gata/storage"
)

var (
	engineOnce sync.Once
	engineVal  *dva.Engine
	engineErr  error
)

// testEngine is the real engine on the shared tiny model, loaded once.
func testEngine(t testing.TB) *dva.Engine {
	t.Helper()
	dir := dvatest.ClipDir(t)
	engineOnce.Do(func() {
		m, err := clip.LoadModel(dir)
		if err != nil {
			engineErr = err
			return
		}
		engineVal, engineErr = dva.NewEngine(m.Config, cpu.New(m, runtime.GOMAXPROCS(0)), dva.EngineOptions{BatchSize: 8, ModelDir: dir})
	})
	if engineErr != nil {
		t.Fatal(engineErr)
	}
	return engineVal
}

// photos are the shared test photos the shards cycle over.
var photos = dvatest.ShardPhotos

// writeShard writes a WebDataset shard of n samples (the shared photos, each with its own
// caption) in dir and returns its path.
var writeShard = dvatest.WriteShard

// openStore opens a fresh database file.
func openStore(t testing.TB, dir string) *storage.Store {
	t.Helper()
	s, err := storage.Open(context.Background(), filepath.Join(dir, storage.DBName))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// poolRig is a pool on a real database and an embedded NATS server.
type poolRig struct {
	t       testing.TB
	store   *storage.Store
	dir     string
	run     int64
	sources []pipeline.Source
	token   string
	pool    *pool.Pool
	done    chan error
	cancel  context.CancelFunc
}

// newRig makes the database, the run over the dataset files and a worker credential.
func newRig(t testing.TB, specs ...string) *poolRig {
	t.Helper()
	var all []pipeline.Source
	for _, s := range specs {
		srcs, err := pipeline.Open(s, pipeline.SourceOptions{})
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, srcs...)
	}
	return newRigOf(t, all, specs)
}

// newRigOf is newRig over sources already open.
func newRigOf(t testing.TB, srcs []pipeline.Source, specs []string) *poolRig {
	t.Helper()
	dir := t.TempDir()
	r := &poolRig{t: t, dir: dir, store: openStore(t, dir), sources: srcs}
	var err error
	if r.run, err = r.store.CreateRun(context.Background(), storage.DVARun{Sources: specs, Model: "tiny"}); err != nil {
		t.Fatal(err)
	}
	tok, sum, err := pool.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	if err := r.store.AddPoolInvite(context.Background(), sum, "test"); err != nil {
		t.Fatal(err)
	}
	r.token = tok
	return r
}

// start runs the pool with the options (the rig fills in what it owns) and waits for it.
func (r *poolRig) start(o pool.Options) {
	r.t.Helper()
	o.Ledger, o.Run, o.Sources, o.DataDir = r.store, r.run, r.sources, r.dir
	if o.Scorer == nil {
		o.Scorer = testEngine(r.t)
	}
	if o.Listen == "" {
		o.Listen = "127.0.0.1:0"
	}
	o.Model = "tiny"
	p, err := pool.New(o)
	if err != nil {
		r.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.pool, r.cancel, r.done = p, cancel, make(chan error, 1)
	go func() { r.done <- p.Serve(ctx) }()
	select {
	case <-p.Ready():
	case err := <-r.done:
		r.t.Fatalf("pool stopped before it was ready: %v", err)
	case <-time.After(30 * time.Second):
		r.t.Fatal("pool not ready after 30 s")
	}
	r.t.Cleanup(func() { cancel(); <-r.done })
}

// wait waits for the pool to finish the run.
func (r *poolRig) wait(d time.Duration) {
	r.t.Helper()
	select {
	case err := <-r.done:
		r.done <- err // for the cleanup
		if err != nil {
			r.t.Fatalf("pool Serve: %v", err)
		}
	case <-time.After(d):
		r.t.Fatalf("pool not done after %s: %+v", d, r.pool.Status())
	}
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// engineFunc serves the tiny engine for any model name.
func engineFunc(t testing.TB) agent.EngineFunc {
	e := testEngine(t)
	return func(ctx context.Context, model, sha string) (pipeline.Scorer, string, error) {
		return e, e.Info().Backend, nil
	}
}

// startWorker runs a worker against the rig's pool until the test ends.
func (r *poolRig) startWorker(o agent.Options) *agent.Worker {
	r.t.Helper()
	if o.URL == "" {
		o.URL = r.pool.URL()
	}
	if o.Token == "" {
		o.Token = r.token
	}
	if o.Key == nil {
		o.Key = newKey(r.t)
	}
	if o.Engine == nil {
		o.Engine = engineFunc(r.t)
	}
	w, err := agent.New(o)
	if err != nil {
		r.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { defer close(stopped); w.Serve(ctx) }()
	r.t.Cleanup(func() { cancel(); <-stopped })
	return w
}

// results returns the run's results by key.
func (r *poolRig) results() map[string]storage.DVAResult {
	r.t.Helper()
	out := map[string]storage.DVAResult{}
	n := 0
	err := r.store.EachResult(context.Background(), r.run, func(res storage.DVAResult) error {
		n++
		out[res.Key] = res
		return nil
	})
	if err != nil {
		r.t.Fatal(err)
	}
	if n != len(out) {
		r.t.Fatalf("%d results for %d keys", n, len(out))
	}
	return out
}
