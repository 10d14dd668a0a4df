package pool_test

import (
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gata-contrib/gata/agent"
	"github.com/gata-contrib/gata/agent/pool"
	"github.com/gata-contrib/gata/dva/pipeline"
)

// TestWorkerCredentials: only a credential the ledger issued connects, and a worker may
// not publish jobs, touch the streams or write images; a revoked credential stops working.
func TestWorkerCredentials(t *testing.T) {
	src := memSource{name: "mem://creds", n: 40}
	r := newRigOf(t, []pipeline.Source{src}, []string{src.name})
	r.start(simOptions(3))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	if nc, err := nats.Connect(r.pool.URL(), nats.Token("gw_not-issued"), nats.MaxReconnects(0)); err == nil {
		nc.Close()
		t.Fatal("a credential never issued connected")
	}
	if nc, err := nats.Connect(r.pool.URL(), nats.MaxReconnects(0)); err == nil {
		nc.Close()
		t.Fatal("a client without a credential connected")
	}
	nc, err := nats.Connect(r.pool.URL(), nats.Token(r.token))
	if err != nil {
		t.Fatalf("connect with an issued credential: %v", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Consumer(ctx, pool.JobsStream, pool.WorkerConsumer(pool.TypeDVA)); err != nil {
		t.Errorf("a worker cannot find the jobs: %v", err)
	}
	// A refused request gets no answer: each is given a second.
	var ctx1 context.Context
	refused := []struct {
		name string
		do   func() error
	}{
		{"publish a job", func() error {
			_, err := js.Publish(ctx1, pool.JobsSubjectPrefix+pool.TypeDVA, []byte(`{"id":"forged"}`))
			return err
		}},
		{"delete the jobs stream", func() error { return js.DeleteStream(ctx1, pool.JobsStream) }},
		{"purge the results", func() error {
			s, err := js.Stream(ctx1, pool.ResultsStream)
			if err != nil {
				return err
			}
			return s.Purge(ctx1)
		}},
		{"read the results", func() error {
			_, err := js.CreateOrUpdateConsumer(ctx1, pool.ResultsStream, jetstream.ConsumerConfig{Durable: "thief", AckPolicy: jetstream.AckExplicitPolicy})
			return err
		}},
		{"write an image", func() error {
			obs, err := js.ObjectStore(ctx1, pool.ImagesBucket)
			if err != nil {
				return err
			}
			_, err = obs.PutBytes(ctx1, "forged", []byte("not an image"))
			return err
		}},
	}
	for _, x := range refused {
		var cancel1 context.CancelFunc
		ctx1, cancel1 = context.WithTimeout(ctx, time.Second)
		if err := x.do(); err == nil {
			t.Errorf("a worker could %s", x.name)
		}
		cancel1()
	}
	if _, err := js.Stream(ctx, pool.JobsStream); err != nil {
		t.Errorf("the jobs stream is gone: %v", err)
	}

	if n, err := r.store.RevokePoolInvite(ctx, "test"); err != nil || n != 1 {
		t.Fatalf("RevokePoolInvite = %d, %v", n, err)
	}
	// The server remembers a valid credential for 30 s; a new one is checked at once.
	tok, sum, _ := pool.NewToken()
	if err := r.store.AddPoolInvite(ctx, sum, "later"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.store.RevokePoolInvite(ctx, "later"); err != nil {
		t.Fatal(err)
	}
	if nc, err := nats.Connect(r.pool.URL(), nats.Token(tok), nats.MaxReconnects(0)); err == nil {
		nc.Close()
		t.Error("a revoked credential connected")
	}
}

// TestServerNeedsTLSOffLoopback: a pool listening beyond loopback without a certificate
// does not start.
func TestServerNeedsTLSOffLoopback(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", "192.0.2.1:4222", "[::]:0"} {
		if s, err := pool.StartServer(pool.ServerOptions{Listen: addr, StoreDir: t.TempDir()}); err == nil {
			s.Shutdown()
			t.Errorf("StartServer(%s) without TLS started", addr)
		}
	}
	for _, addr := range []string{"127.0.0.1", "localhost:x"} {
		if s, err := pool.StartServer(pool.ServerOptions{Listen: addr, StoreDir: t.TempDir()}); err == nil {
			s.Shutdown()
			t.Errorf("StartServer(%q) with a bad address started", addr)
		}
	}
}

// startNATS runs a NATS server with JetStream on loopback, without credentials, as an
// operator's own cluster would be for the pool.
func startNATS(t *testing.T) *server.Server {
	t.Helper()
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true,
		StoreDir: t.TempDir(), NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS not ready")
	}
	t.Cleanup(ns.Shutdown)
	return ns
}

// dialJetStream connects to ns as a plain client, for what the test itself reads or puts.
func dialJetStream(t *testing.T, ns *server.Server) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// TestPoolJoinsAnExistingNATS: with NATSURL the pool embeds nothing and works through a
// NATS server it did not start (the way it grows past one machine).
func TestPoolJoinsAnExistingNATS(t *testing.T) {
	ns := startNATS(t)
	src := memSource{name: "mem://cluster", n: 80}
	r := newRigOf(t, []pipeline.Source{src}, []string{src.name})
	o := simOptions(11)
	o.NATSURL = ns.ClientURL()
	r.start(o)
	if r.pool.URL() != ns.ClientURL() {
		t.Errorf("pool URL %s, want the server's %s", r.pool.URL(), ns.ClientURL())
	}
	for i := range 2 {
		r.simWorker(uint64(200+i), nil)
	}
	r.wait(2 * time.Minute)
	r.checkOutputs(src, 5e-3)
	if info, err := ns.Jsz(nil); err != nil || info.Streams < 3 { // jobs, results, the images bucket
		t.Errorf("the existing server holds %+v streams (%v), want the pool's 3", info, err)
	}
	// The verified groups' image shards are gone; the canaries' images stay for a restart.
	js := dialJetStream(t, ns)
	obs, err := js.ObjectStore(context.Background(), pool.ImagesBucket)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := obs.List(context.Background())
	if err != nil && !errors.Is(err, jetstream.ErrNoObjectsFound) {
		t.Fatal(err)
	}
	if st := r.pool.Status(); len(objs) != st.Canaries {
		t.Errorf("%d objects left in the images bucket after %d groups verified, want the %d canary images", len(objs), st.Groups, st.Canaries)
	}
}

// Two workers and every job checked by a second worker: each second job may go only to the
// worker that did not answer the first, so the two keep being handed the job the other must
// take; both must still get through the run.
func TestTwoWorkersCheckEveryJob(t *testing.T) {
	src := memSource{name: "mem://pairs", n: 160}
	r := newRigOf(t, []pipeline.Source{src}, []string{src.name})
	o := simOptions(12)
	o.MinReplication = 1
	r.start(o)
	for i := range 2 {
		r.simWorker(uint64(300+i), nil)
	}
	r.wait(2 * time.Minute)
	r.checkOutputs(src, 5e-3)
	if st := r.pool.Status(); st.Results < 2*st.Groups || st.Rejected != 0 {
		t.Errorf("%d results, %d rejected for %d groups; want every group answered twice and none rejected", st.Results, st.Rejected, st.Groups)
	}
}

// TestAJobNoWorkerMayTakeBlocksNothing: a job that every connected worker must skip (its
// group needs a worker that has not come yet) keeps coming back first; the workers still
// get past it to the rest of the run.
func TestAJobNoWorkerMayTakeBlocksNothing(t *testing.T) {
	ns := startNATS(t)
	src := memSource{name: "mem://blocked", n: 48}
	r := newRigOf(t, []pipeline.Source{src}, []string{src.name})
	o := simOptions(14)
	o.NATSURL = ns.ClientURL()
	keys := []*ecdsa.PrivateKey{newKey(t), newKey(t)}
	// The job is in the stream before the pool's own: it comes back first each time it is skipped.
	js := dialJetStream(t, ns)
	if _, err := js.CreateOrUpdateStream(context.Background(), jetstream.StreamConfig{Name: pool.JobsStream,
		Subjects: []string{pool.JobsSubjectPrefix + ">"}, Retention: jetstream.WorkQueuePolicy, Storage: jetstream.FileStorage,
		Duplicates: 10 * time.Minute}); err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(pool.Job{ID: "elsewhere-r1-g000000-9", Type: pool.TypeDVA, Model: "tiny",
		Exclude: []string{pool.Address(keys[0]), pool.Address(keys[1])}, AckWaitMS: 30000, Issued: time.Now().UTC()})
	if _, err := js.Publish(context.Background(), pool.JobsSubjectPrefix+pool.TypeDVA, body); err != nil {
		t.Fatal(err)
	}
	r.start(o)
	for i, k := range keys {
		s := newSimScorer(2e-3, 20*time.Microsecond, uint64(500+i))
		r.startWorker(agent.Options{Key: k, Engine: func(ctx context.Context, model, sha string) (pipeline.Scorer, string, error) {
			return s, "cpu (simulated)", nil
		}})
	}
	r.wait(2 * time.Minute)
	r.checkOutputs(src, 5e-3)
}
