package pool_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gata-contrib/gata/agent"
	"github.com/gata-contrib/gata/dva/pipeline"
)

// fakeGPU is telemetry with one card whose other programs a test switches on and off.
type fakeGPU struct{ others atomic.Int32 }

func (f *fakeGPU) GPUs(ctx context.Context) ([]agent.GPU, error) {
	return []agent.GPU{{Index: 0, Name: "Fake GPU", TempC: 50, PowerW: 100, OtherProcesses: int(f.others.Load())}}, nil
}

// eventLog keeps what happened, in order, with the time.
type eventLog struct {
	mu  sync.Mutex
	evs []agent.Event
}

func (l *eventLog) add(e agent.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.evs = append(l.evs, e)
}

func (l *eventLog) mark(kind string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.evs = append(l.evs, agent.Event{Time: time.Now(), Kind: kind})
	return len(l.evs) - 1
}

// waitKind waits for an event of the kind after index from and returns its index.
func (l *eventLog) waitKind(t *testing.T, kind string, from int, d time.Duration) int {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		l.mu.Lock()
		for i := from; i < len(l.evs); i++ {
			if l.evs[i].Kind == kind {
				l.mu.Unlock()
				return i
			}
		}
		l.mu.Unlock()
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("no %q event after #%d in %s", kind, from, d)
	return -1
}

func (l *eventLog) get(i int) agent.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.evs[i]
}

func (l *eventLog) since(i int) []agent.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]agent.Event(nil), l.evs[i:]...)
}

// TestWorkerYieldsWithinTwoSeconds runs a real worker loop against a pool with fake GPU
// telemetry: when another program starts on the card, the worker stops scoring (no batch
// starts after it gave the job back) well within the 2 s promised, and it starts again only
// after the card has been free of other programs for the grace period.
func TestWorkerYieldsWithinTwoSeconds(t *testing.T) {
	src := memSource{name: "mem://yield", n: 4000}
	r := newRigOf(t, []pipeline.Source{src}, []string{src.name})
	o := simOptions(5)
	o.JobSize = 64
	r.start(o)
	gpu := &fakeGPU{}
	const grace, interval = 500 * time.Millisecond, 100 * time.Millisecond
	gov := agent.NewGovernor(agent.GovernorOptions{Telemetry: gpu, Interval: interval,
		Preferences: agent.Preferences{RequireIdle: true, IdleGrace: grace}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go gov.Serve(ctx)
	log := &eventLog{}
	s := newSimScorer(2e-3, 5*time.Millisecond, 9) // 20 ms a batch of 4
	r.startWorker(agent.Options{Gate: gov, BatchSize: 4, OnEvent: log.add,
		Engine: func(ctx context.Context, model, sha string) (pipeline.Scorer, string, error) {
			return s, "cpu (simulated)", nil
		}})

	// Working: several batches scored.
	first := log.waitKind(t, "batch", 0, time.Minute)
	log.waitKind(t, "batch", first+3, 30*time.Second)

	busy := log.mark("another program starts")
	gpu.others.Store(1)
	start := log.get(busy).Time
	yield := log.waitKind(t, "yield", busy, 10*time.Second)
	paused := log.waitKind(t, "paused", busy, 10*time.Second)
	var lastBatch time.Time
	for _, e := range log.since(busy) {
		if e.Kind == "batch" {
			lastBatch = e.Time
		}
	}
	took := log.get(yield).Time.Sub(start)
	if yield > paused {
		t.Errorf("paused (#%d) before the job was given back (#%d)", paused, yield)
	}
	if took > 2*time.Second || lastBatch.Sub(start) > 2*time.Second {
		t.Errorf("yielded %s after the other program started (last batch began %s after it), want within 2 s", took, lastBatch.Sub(start))
	}
	if r := gov.State().Reason; r == "" {
		t.Error("paused without a reason")
	}
	t.Logf("yielded %s after another program started on the GPU; reason %q", took.Round(time.Millisecond), gov.State().Reason)

	// Nothing runs while the other program is there.
	time.Sleep(400 * time.Millisecond)
	for _, e := range log.since(paused) {
		if e.Kind == "batch" {
			t.Fatalf("a batch started at %s while another program used the GPU", e.Time.Sub(start))
		}
	}
	free := log.mark("the other program ends")
	gpu.others.Store(0)
	again := log.waitKind(t, "batch", free, 30*time.Second)
	// The grace period counts from the last reading that saw the other program, at most
	// one polling interval before it ended.
	if wait := log.get(again).Time.Sub(log.get(free).Time); wait < grace-interval {
		t.Errorf("work started again %s after the GPU was free, before the %s grace period", wait, grace)
	}
	log.waitKind(t, "resumed", paused, time.Second)
}
