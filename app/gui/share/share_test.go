package share

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"github.com/gata-contrib/gata/app/core"
	"github.com/gata-contrib/gata/app/gui/internal/widgettest"
)

// fakeCore records what the page asks and answers with what the test sets.
type fakeCore struct {
	mu       sync.Mutex
	started  []core.WorkerRequest
	startErr error
	stopped  int
	worker   core.WorkerState
	pool     core.PoolState
	poolErr  error
}

func (f *fakeCore) StartSharing(req core.WorkerRequest) (core.JobInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.startErr != nil {
		return core.JobInfo{}, f.startErr
	}
	f.started = append(f.started, req)
	f.worker.Running = true
	return core.JobInfo{ID: "j1", Kind: "share.worker"}, nil
}

func (f *fakeCore) StopSharing() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stopped++
	f.worker = core.WorkerState{}
	return nil
}

func (f *fakeCore) ShareState() core.WorkerState {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.worker
}

func (f *fakeCore) PoolState(ctx context.Context) (core.PoolState, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.pool, f.poolErr
}

func newPage(t *testing.T, f *fakeCore) (*Screen, *widgettest.Queue) {
	t.Helper()
	test.NewTempApp(t)
	ctx, cancel := context.WithCancel(context.Background())
	q := &widgettest.Queue{}
	sec := core.Section{ID: "share", Title: "Share", Summary: "Donate spare GPU time.", Coming: []string{"GPU jobs"}}
	s := New(ctx, sec, f, q.Do)
	w := test.NewWindow(s.Content())
	w.Resize(fyne.NewSize(900, 1400))
	t.Cleanup(func() { cancel(); s.Close(); w.Close() })
	return s, q
}

func hasLabel(root fyne.CanvasObject, part string) bool {
	for _, l := range widgettest.Labels(root) {
		if strings.Contains(l, part) {
			return true
		}
	}
	return false
}

// TestShareStartsWithTheLimitsTyped fills the form, starts sharing and checks the request
// the core got, then the worker's paused state with its reason, then stopping.
func TestShareStartsWithTheLimitsTyped(t *testing.T) {
	f := &fakeCore{poolErr: fmt.Errorf("%w has run in this data folder yet", core.ErrNoPool)}
	s, q := newPage(t, f)
	q.Until(t, "the page shows it is not sharing", func() bool { return hasLabel(s.Content(), IdleText) && hasLabel(s.Content(), "No pool has run") })

	test.Type(s.pool, "nats://gw_secret@127.0.0.1:4222")
	test.Type(s.maxTemp, "80")
	test.Type(s.maxPower, "200")
	test.Type(s.schedule, "22:00-07:00")
	test.Type(s.gpus, "0, 1")
	s.pauseFor.SetSelected(Pause1h)
	test.Tap(s.allowBusy)
	test.Tap(s.active)
	test.Tap(widgettest.Button(t, s.Content(), StartLabel))
	q.Until(t, "sharing starts", func() bool { return hasLabel(s.Content(), "Sharing with nats://***@127.0.0.1:4222") })
	f.mu.Lock()
	got := f.started
	f.mu.Unlock()
	want := core.WorkerRequest{Pool: "nats://gw_secret@127.0.0.1:4222", MaxTempC: 80, MaxPowerW: 200, Schedule: "22:00-07:00",
		GPUs: []int{0, 1}, PauseFor: "1h", AllowBusyGPU: true, PauseWhileActive: true}
	if len(got) != 1 || fmt.Sprint(got[0]) != fmt.Sprint(want) {
		t.Fatalf("StartSharing got %+v, want %+v", got, want)
	}
	if hasLabel(s.Content(), "gw_secret") {
		t.Error("the page shows the pool credential")
	}

	f.mu.Lock()
	f.worker = core.WorkerState{Running: true, Limits: []string{"pauses a GPU at 80 °C", "not while a fullscreen program is in front"}, Stats: core.WorkerStats{Address: "0xAbC", Connected: true, Jobs: 7, Items: 1800,
		Credits: &core.CreditNote{Worker: "0xAbC", Confirmed: 1536, Pending: 256}},
		Gate: core.GateState{Run: false, Reason: "GPU 0 at 85 °C, at or over the 80 °C limit",
			GPUs: []core.GPUState{{Index: 0, Name: "Fake GPU", TempC: 85, PowerW: 190, OtherProcesses: 0}}}}
	f.mu.Unlock()
	s.ApplyJob(core.JobInfo{Kind: "share.worker"})
	q.Until(t, "the pause and its reason show", func() bool {
		return hasLabel(s.Content(), "Paused: GPU 0 at 85 °C, at or over the 80 °C limit") && hasLabel(s.Content(), "7 jobs done, 1800 pairs") &&
			hasLabel(s.Content(), "Earned in the pool: 1536 pairs confirmed, 256 pending, 0 rejected") &&
			hasLabel(s.Content(), "Limits: pauses a GPU at 80 °C; not while a fullscreen program is in front")
	})
	if !s.start.Disabled() {
		t.Error("Start is enabled while sharing")
	}
	test.Tap(widgettest.Button(t, s.Content(), StopLabel))
	q.Until(t, "sharing stops", func() bool { return hasLabel(s.Content(), "Stopped sharing") && hasLabel(s.Content(), IdleText) })
	if f.stopped != 1 {
		t.Errorf("StopSharing called %d times", f.stopped)
	}
}

// TestShareRefusesBadLimits: numbers that are not, and the core's own refusal, show under
// the form and start nothing.
func TestShareRefusesBadLimits(t *testing.T) {
	f := &fakeCore{}
	s, q := newPage(t, f)
	test.Type(s.pool, "127.0.0.1:4222")
	test.Type(s.maxTemp, "hot")
	test.Tap(widgettest.Button(t, s.Content(), StartLabel))
	q.Until(t, "the error shows", func() bool { return hasLabel(s.Content(), `max temperature: "hot" is not a number`) })
	s.maxTemp.SetText("")
	f.mu.Lock()
	f.startErr = errors.New("bad run request: schedule \"22-07\": want HH:MM-HH:MM")
	f.mu.Unlock()
	test.Tap(widgettest.Button(t, s.Content(), StartLabel))
	q.Until(t, "the core's error shows", func() bool { return hasLabel(s.Content(), "want HH:MM-HH:MM") })
	if len(f.started) != 0 {
		t.Errorf("started %d workers", len(f.started))
	}
}

// TestSharePoolCard: the pool's counts, the credits per worker and the rejected results.
func TestSharePoolCard(t *testing.T) {
	f := &fakeCore{pool: core.PoolState{Run: core.RunInfo{ID: 3, State: "running"},
		Counts:   core.PoolCounts{Groups: 12, Verified: 5, Unanswered: 4, Confirmed: 9, Pending: 2, Rejected: 1},
		Credits:  []core.PoolCredit{{Worker: "0x1111", Confirmed: 1200, Pending: 256, ConsecutiveValid: 5}, {Worker: "0x2222", Rejected: 256}},
		Rejected: []core.RejectedResult{{Job: "g000004-1", Worker: "0x2222", Reason: "canary: scored 0.2500 where the pool scored 0.3088"}}}}
	s, q := newPage(t, f)
	q.Until(t, "the pool card fills", func() bool {
		return hasLabel(s.Content(), "Run 3 (running): 5 of 12 groups verified, 4 jobs waiting") && hasLabel(s.Content(), "0x1111")
	})
	for _, want := range []string{"1200", "256", "0x2222", "g000004-1 from 0x2222: canary: scored 0.2500"} {
		if !hasLabel(s.Content(), want) {
			t.Errorf("the pool card lacks %q: %q", want, widgettest.Labels(s.Content()))
		}
	}
	var boldHeads int
	widgettest.Walk(s.credits, func(o fyne.CanvasObject) {
		if l, ok := o.(*widget.Label); ok && l.TextStyle.Bold {
			boldHeads++
		}
	})
	if boldHeads != 5 {
		t.Errorf("%d column heads, want 5", boldHeads)
	}
}
