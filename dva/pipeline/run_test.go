package pipeline

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gata-contrib/gata/dva"
	"github.com/gata-contrib/gata/dva/clip"
	"github.com/gata-contrib/gata/dva/cpu"
	"github.com/gata-contrib/gata/dva/dvatest"
)

// memStore is an in-memory ResultStore with the semantics storage.Store has: a result for
// a ref already stored replaces it only when the stored one failed.
type memStore struct {
	mu       sync.Mutex
	rows     map[int64]map[Ref]Result
	ignored  int // saves of refs already scored, ignored
	saves    int // SaveResults calls
	saved    atomic.Int64
	failSave error // returned by SaveResults when set
}

func newMemStore() *memStore { return &memStore{rows: map[int64]map[Ref]Result{}} }

func (s *memStore) Finished(ctx context.Context, run int64, refs []Ref) ([]bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]bool, len(refs))
	for i, r := range refs {
		_, out[i] = s.rows[run][r]
	}
	return out, nil
}

func (s *memStore) SaveResults(ctx context.Context, run int64, rs []Result) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failSave != nil {
		return s.failSave
	}
	s.saves++
	if s.rows[run] == nil {
		s.rows[run] = map[Ref]Result{}
	}
	for _, r := range rs {
		ref := Ref{Source: r.Source, Key: r.Key}
		if old, ok := s.rows[run][ref]; ok && old.Scored() {
			s.ignored++
			continue
		}
		s.rows[run][ref] = r
	}
	s.saved.Add(int64(len(rs)))
	return nil
}

func (s *memStore) EachResult(ctx context.Context, run int64, fn func(Result) error) error {
	s.mu.Lock()
	var rs []Result
	for _, r := range s.rows[run] {
		rs = append(rs, r)
	}
	s.mu.Unlock()
	sort.Slice(rs, func(i, j int) bool {
		if rs[i].Source != rs[j].Source {
			return rs[i].Source < rs[j].Source
		}
		return rs[i].Key < rs[j].Key
	})
	for _, r := range rs {
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

func (s *memStore) results(run int64) map[Ref]Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[Ref]Result{}
	for k, v := range s.rows[run] {
		out[k] = v
	}
	return out
}

// listSource yields its items in order. onYield, when set, runs before each yield.
type listSource struct {
	name    string
	items   []Item
	failAt  int  // when > 0, Items fails after this many items
	counted bool // implements Counter (through countedSource)
	onYield func(i int)
}

func (s *listSource) Name() string { return s.name }

func (s *listSource) Items(ctx context.Context, yield func(Item) error) error {
	for i, it := range s.items {
		if s.failAt > 0 && i == s.failAt {
			return errors.New("broken past recovery")
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if s.onYield != nil {
			s.onYield(i)
		}
		if err := yield(it); err != nil {
			return err
		}
	}
	return nil
}

type countedSource struct{ *listSource }

func (s countedSource) Count(context.Context) (int64, error) { return int64(len(s.items)), nil }

var photos = []struct{ file, caption string }{
	{"coffee.jpg", "a cup of coffee on a saucer"},
	{"chelsea.png", "a cat"},
	{"chelsea.jpg", "a tabby cat looking up"},
	{"astronaut.jpg", "an astronaut in a white suit"},
	{"rocket.jpg", "a rocket on the launch pad"},
	{"camera_gray_224x229.png", "a man with a camera"},
}

// photoItems returns n items cycling over the shared photos, keys k0000…, in one source.
func photoItems(t testing.TB, source string, n int) []Item {
	t.Helper()
	data := map[string][]byte{}
	var items []Item
	for i := range n {
		p := photos[i%len(photos)]
		if data[p.file] == nil {
			data[p.file] = dvatest.Photo(t, p.file)
		}
		items = append(items, Item{Source: source, Key: fmt.Sprintf("k%04d", i), Caption: fmt.Sprintf("%s, number %d", p.caption, i), Image: data[p.file],
			Extra: map[string]string{"file": p.file}})
	}
	return items
}

var (
	engineOnce sync.Once
	engineVal  *dva.Engine
	engineErr  error
)

// testEngine is the real engine on the shared tiny model, loaded once for the package.
func testEngine(t testing.TB) *dva.Engine {
	t.Helper()
	dir := dvatest.ClipDir(t)
	engineOnce.Do(func() {
		m, err := clip.LoadModel(dir)
		if err != nil {
			engineErr = err
			return
		}
		engineVal, engineErr = dva.NewEngine(m.Config, cpu.New(m, runtime.GOMAXPROCS(0)), dva.EngineOptions{BatchSize: 4, ModelDir: dir})
	})
	if engineErr != nil {
		t.Fatal(engineErr)
	}
	return engineVal
}

// wantScore is the engine's straight score of an item.
func wantScore(t *testing.T, e *dva.Engine, it Item) float32 {
	t.Helper()
	got, err := e.Score(context.Background(), []dva.Pair{{Image: dva.Image{Name: it.Key, Data: it.Image}, Caption: it.Caption}})
	if err != nil || got[0].Err != nil {
		t.Fatalf("Score(%s): %v %v", it.Key, err, got[0].Err)
	}
	return got[0].Score
}

func TestRunRecordsEveryItem(t *testing.T) {
	e := testEngine(t)
	items := photoItems(t, "/data/a", 23)
	png := dvatest.Photo(t, "chelsea.png")
	bad := []Item{
		{Source: "/data/a", Key: "truncated", Caption: "a cat", Image: png[:len(png)/3]},
		{Source: "/data/a", Key: "text", Caption: "a cat", Image: []byte("hello, not an image")},
		{Source: "/data/a", Key: "tiff", Caption: "a cat", Image: []byte("II*\x00\x08\x00\x00\x00")},
		{Source: "/data/a", Key: "caption", Caption: "", Image: png, Err: Fail(ReasonBadCaption, "empty caption")},
		{Source: "/data/a", Key: "k0003", Caption: "a second k0003", Image: png}, // duplicate key
		{Source: "/data/a", Key: "remote", URL: "http://127.0.0.1:1/cat.png", Caption: "a cat"},
		{Source: "/data/a", Key: "gone", URL: "http://127.0.0.1:1/gone.png", Caption: "a cat"},
		{Source: "/data/a", Key: "tiny", Caption: "a thin strip", Image: dvatest.Photo(t, "tiny_3x500.png"), UID: "own-uid"},
		{Source: "/data/a", Key: "retina", Caption: "a retina scan", Image: dvatest.Photo(t, "retina.jpg")},
	}
	items = append(items, bad...)
	fetch := func(ctx context.Context, url string) ([]byte, *ItemError) {
		if strings.HasSuffix(url, "/cat.png") {
			return png, nil
		}
		return nil, Fail(ReasonNotFound, "GET %s: 404 Not Found", url)
	}
	second := photoItems(t, "/data/b", 5)
	st := newMemStore()
	var last Progress
	var calls int
	stats, err := Run(context.Background(), RunOptions{
		Sources: []Source{&listSource{name: "/data/a", items: items}, &listSource{name: "/data/b", items: second}},
		Store:   st, RunID: 7, Scorer: e, Fetch: fetch, BatchSize: 5, Workers: 3, CommitEvery: 8, Backend: "cpu test",
		Progress: func(p Progress) { last = p; calls++ },
	})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	got := st.results(7)
	if len(got) != len(items)-1+len(second) {
		t.Errorf("store holds %d results, want %d", len(got), len(items)-1+len(second))
	}
	wantReasons := map[string]Reason{"truncated": ReasonCorrupt, "text": ReasonUnsupported, "tiff": ReasonUnsupported,
		"caption": ReasonBadCaption, "gone": ReasonNotFound}
	for _, it := range append(items, second...) {
		r, ok := got[Ref{Source: it.Source, Key: it.Key}]
		if !ok {
			t.Errorf("no result for %s/%s", it.Source, it.Key)
			continue
		}
		if want, bad := wantReasons[it.Key]; bad {
			if r.Reason != want || r.Error == "" || r.Width != 0 {
				t.Errorf("result %s = reason %q, error %q, %dx%d; want %q with a message", it.Key, r.Reason, r.Error, r.Width, r.Height, want)
			}
			continue
		}
		if !r.Scored() {
			t.Errorf("result %s failed: %s: %s", it.Key, r.Reason, r.Error)
			continue
		}
		if it.Key == "k0003" && r.Caption != it.Caption {
			continue // the duplicate, checked below
		}
		src := it
		if it.Key == "remote" {
			src.Image = png
		}
		if w := wantScore(t, e, src); math.Abs(float64(r.Score-w)) > 1e-6 {
			t.Errorf("result %s score = %v, want %v (Score)", it.Key, r.Score, w)
		}
		if r.Caption != it.Caption || r.URL != it.URL || r.UID != UID(it) || len(r.UID) == 0 {
			t.Errorf("result %s = %+v, want the item's caption, URL and uid %s", it.Key, r, UID(it))
		}
		if it.Extra != nil && r.Extra["file"] != it.Extra["file"] {
			t.Errorf("result %s extra = %v, want %v", it.Key, r.Extra, it.Extra)
		}
	}
	if r := got[Ref{"/data/a", "k0003"}]; r.Caption != items[3].Caption {
		t.Errorf("k0003 caption = %q: the duplicate replaced the first copy", r.Caption)
	}
	if r := got[Ref{"/data/a", "tiny"}]; r.UID != "own-uid" || r.Width != 3 || r.Height != 500 {
		t.Errorf("tiny = uid %q, %dx%d; want its own uid and 3x500", r.UID, r.Width, r.Height)
	}
	if r := got[Ref{"/data/a", "k0000"}]; r.Width != 600 || r.Height != 400 {
		t.Errorf("coffee.jpg recorded as %dx%d, want 600x400", r.Width, r.Height)
	}
	wantStats := Stats{Read: int64(len(items) + len(second)), Duplicates: 1, Scored: int64(len(items) - 1 + len(second) - len(wantReasons)), Failed: int64(len(wantReasons)),
		Reasons: map[Reason]int64{ReasonCorrupt: 1, ReasonUnsupported: 2, ReasonBadCaption: 1, ReasonNotFound: 1}}
	stats.Elapsed = 0
	if fmt.Sprint(stats) != fmt.Sprint(wantStats) {
		t.Errorf("Stats = %+v, want %+v", stats, wantStats)
	}
	n := int64(len(items) - 1 + len(second))
	if calls == 0 || last.Done != n || last.Total != n || last.Failed != int64(len(wantReasons)) || last.Backend != "cpu test" || last.Rate <= 0 {
		t.Errorf("last Progress = %+v after %d calls, want done = total = %d", last, calls, n)
	}
}

// cancelAfter wraps a scorer and cancels the run after n batches were scored.
type cancelAfter struct {
	Scorer
	n      atomic.Int64
	cancel context.CancelFunc
}

func (c *cancelAfter) ScorePrepared(ctx context.Context, px [][]float32, caps []string) ([]float32, error) {
	s, err := c.Scorer.ScorePrepared(ctx, px, caps)
	if c.n.Add(-1) == 0 {
		c.cancel()
	}
	return s, err
}

func TestRunCancelThenResume(t *testing.T) {
	e := testEngine(t)
	items := photoItems(t, "/data/shard-0.tar", 48)
	items[17].Image = []byte("corrupt")
	src := &listSource{name: "/data/shard-0.tar", items: items}

	straight := newMemStore()
	if _, err := Run(context.Background(), RunOptions{Sources: []Source{src}, Store: straight, RunID: 1, Scorer: e, BatchSize: 8}); err != nil {
		t.Fatalf("straight Run: %v", err)
	}

	st := newMemStore()
	ctx, cancel := context.WithCancel(context.Background())
	ca := &cancelAfter{Scorer: e, cancel: cancel}
	ca.n.Store(3)
	stats, err := Run(ctx, RunOptions{Sources: []Source{src}, Store: st, RunID: 1, Scorer: ca, BatchSize: 4, CommitEvery: 5})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Run = %v, want context.Canceled", err)
	}
	first := len(st.results(1))
	if first == 0 || first >= len(items) {
		t.Fatalf("after the cancel the store holds %d of %d results, want some", first, len(items))
	}
	if stats.Scored+stats.Failed != int64(first) {
		t.Errorf("cancelled Run stats = %+v, store holds %d", stats, first)
	}

	stats, err = Run(context.Background(), RunOptions{Sources: []Source{src}, Store: st, RunID: 1, Scorer: e, BatchSize: 8})
	if err != nil {
		t.Fatalf("resumed Run: %v", err)
	}
	if stats.Skipped != int64(first) || stats.Scored+stats.Failed != int64(len(items)-first) {
		t.Errorf("resumed Run stats = %+v, want %d skipped and %d new", stats, first, len(items)-first)
	}
	if st.ignored != 0 {
		t.Errorf("%d results were saved again", st.ignored)
	}
	got, want := st.results(1), straight.results(1)
	if len(got) != len(items) || len(want) != len(items) {
		t.Fatalf("resumed run holds %d results, straight run %d, want %d", len(got), len(want), len(items))
	}
	for ref, w := range want {
		g := got[ref]
		if g.Reason != w.Reason || math.Abs(float64(g.Score-w.Score)) > 1e-6 {
			t.Errorf("%s: resumed %v %q, straight %v %q", ref.Key, g.Score, g.Reason, w.Score, w.Reason)
		}
	}
	if got[Ref{src.name, items[17].Key}].Reason != ReasonUnsupported {
		t.Errorf("corrupt item = %+v", got[Ref{src.name, items[17].Key}])
	}

	// A third run finds nothing to do.
	stats, err = Run(context.Background(), RunOptions{Sources: []Source{src}, Store: st, RunID: 1, Scorer: e})
	if err != nil || stats.Skipped != int64(len(items)) || stats.Scored+stats.Failed != 0 {
		t.Errorf("Run on a finished run = %+v, %v; want everything skipped", stats, err)
	}
}

// fakeScorer scores without a model: Prepare reads the first byte as the score, and each
// batch waits for slow (when set) to let it through.
type fakeScorer struct {
	slow    chan struct{}
	batches atomic.Int64
	fail    error
}

func (f *fakeScorer) Prepare(data []byte) (dva.Prepared, error) {
	if len(data) == 0 {
		return dva.Prepared{}, errors.New("empty")
	}
	return dva.Prepared{Pixels: []float32{float32(data[0]) / 255}, Width: 1, Height: 1}, nil
}

func (f *fakeScorer) ScorePrepared(ctx context.Context, px [][]float32, caps []string) ([]float32, error) {
	f.batches.Add(1)
	if f.fail != nil {
		return nil, f.fail
	}
	if f.slow != nil {
		select {
		case <-f.slow:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	out := make([]float32, len(px))
	for i, p := range px {
		out[i] = p[0]
	}
	return out, nil
}

func byteItems(source string, n int) []Item {
	items := make([]Item, n)
	for i := range items {
		items[i] = Item{Source: source, Key: fmt.Sprintf("%06d", i), Caption: "x", Image: []byte{byte(i)}}
	}
	return items
}

// TestRunBackPressure: with a slow scorer the reader never runs ahead of the store by more
// than what the stages' channels and buffers hold.
func TestRunBackPressure(t *testing.T) {
	const n = 4000
	st := newMemStore()
	f := &fakeScorer{slow: make(chan struct{})}
	o := RunOptions{Store: st, RunID: 1, Scorer: f, Workers: 2, FetchConcurrency: 2, BatchSize: 4, CommitEvery: 4}
	o.withDefaults()
	bound := int64(o.maxInFlight())
	if bound > n/4 {
		t.Fatalf("maxInFlight = %d: the test needs a source much larger", bound)
	}
	var maxAhead atomic.Int64
	src := &listSource{name: "big", items: byteItems("big", n), onYield: func(i int) {
		ahead := int64(i) - st.saved.Load()
		if ahead > maxAhead.Load() {
			maxAhead.Store(ahead)
		}
	}}
	o.Sources = []Source{src}
	done := make(chan error, 1)
	go func() {
		_, err := Run(context.Background(), o)
		done <- err
	}()
	// Let one batch through at a time until the run ends.
	for {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if got := len(st.results(1)); got != n {
				t.Errorf("store holds %d results, want %d", got, n)
			}
			if m := maxAhead.Load(); m > bound {
				t.Errorf("reader ran %d items ahead of the store, bound %d", m, bound)
			}
			return
		case f.slow <- struct{}{}:
		}
	}
}

func TestRunPause(t *testing.T) {
	st := newMemStore()
	var p Pauser
	p.Pause()
	yielded := make(chan int, 100)
	src := &listSource{name: "s", items: byteItems("s", 50), onYield: func(i int) { yielded <- i }}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := Run(ctx, RunOptions{Sources: []Source{src}, Store: st, RunID: 1, Scorer: &fakeScorer{}, Pauser: &p})
		done <- err
	}()
	<-yielded // the reader is at the first item and waits there
	if !p.Paused() {
		t.Fatal("Paused() = false")
	}
	if n := len(st.results(1)); n != 0 {
		t.Errorf("%d results saved while paused from the start", n)
	}
	p.Resume()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if n := len(st.results(1)); n != 50 {
		t.Errorf("after resuming the store holds %d results, want 50", n)
	}

	// Cancel while paused: Run returns ctx's error.
	p.Pause()
	st2 := newMemStore()
	src2 := &listSource{name: "s", items: byteItems("s", 10)}
	ctx2, cancel2 := context.WithCancel(context.Background())
	go func() {
		_, err := Run(ctx2, RunOptions{Sources: []Source{src2}, Store: st2, RunID: 1, Scorer: &fakeScorer{}, Pauser: &p})
		done <- err
	}()
	cancel2()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Run cancelled while paused = %v, want context.Canceled", err)
	}
}

func TestRunErrors(t *testing.T) {
	t.Run("broken source", func(t *testing.T) {
		st := newMemStore()
		broken := &listSource{name: "/d/broken.csv", items: byteItems("/d/broken.csv", 10), failAt: 4}
		good := &listSource{name: "/d/good.csv", items: byteItems("/d/good.csv", 6)}
		stats, err := Run(context.Background(), RunOptions{Sources: []Source{broken, good}, Store: st, RunID: 1, Scorer: &fakeScorer{}})
		if err == nil || !strings.Contains(err.Error(), "read /d/broken.csv: broken past recovery") {
			t.Errorf("Run = %v, want the broken source's error", err)
		}
		if n := len(st.results(1)); n != 10 || stats.Scored != 10 {
			t.Errorf("store holds %d results, stats %+v; want the 4 read before the break and the 6 of the good source", n, stats)
		}
	})
	t.Run("scorer fails", func(t *testing.T) {
		st := newMemStore()
		boom := errors.New("device lost")
		items := byteItems("s", 10)
		items[2].Err = Fail(ReasonNotFound, "no such file")
		_, err := Run(context.Background(), RunOptions{Sources: []Source{&listSource{name: "s", items: items}}, Store: st, RunID: 1, Scorer: &fakeScorer{fail: boom}})
		if !errors.Is(err, boom) || !strings.HasPrefix(err.Error(), "score a batch: ") {
			t.Errorf("Run = %v, want the scorer's error", err)
		}
	})
	t.Run("store fails", func(t *testing.T) {
		st := newMemStore()
		st.failSave = errors.New("disk full")
		_, err := Run(context.Background(), RunOptions{Sources: []Source{&listSource{name: "s", items: byteItems("s", 600)}}, Store: st, RunID: 1, Scorer: &fakeScorer{}})
		if err == nil || err.Error() != "save results: disk full" {
			t.Errorf("Run = %v, want the store's error", err)
		}
	})
	t.Run("no fetcher", func(t *testing.T) {
		st := newMemStore()
		items := []Item{{Source: "s", Key: "a", URL: "https://example.invalid/a.jpg", Caption: "x"}}
		if _, err := Run(context.Background(), RunOptions{Sources: []Source{&listSource{name: "s", items: items}}, Store: st, RunID: 1, Scorer: &fakeScorer{}}); err != nil {
			t.Fatal(err)
		}
		if r := st.results(1)[Ref{"s", "a"}]; r.Reason != ReasonFetchFailed {
			t.Errorf("result = %+v, want fetch_failed", r)
		}
	})
	t.Run("missing parts", func(t *testing.T) {
		if _, err := Run(context.Background(), RunOptions{}); err == nil {
			t.Error("Run without a store or scorer succeeded")
		}
	})
}

func TestRunFilterAndTotal(t *testing.T) {
	st := newMemStore()
	items := byteItems("s", 20)
	for i := 5; i < len(items); i++ {
		items[i].Caption = "two words"
	}
	src := countedSource{&listSource{name: "s", items: items}}
	var totals []int64
	var mu sync.Mutex
	_, err := Run(context.Background(), RunOptions{Sources: []Source{src}, Store: st, RunID: 3, Scorer: &fakeScorer{},
		Filter:   &BasicFilter{MinWords: 2},
		Progress: func(p Progress) { mu.Lock(); totals = append(totals, p.Total); mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	got := st.results(3)
	for _, it := range items {
		r := got[Ref{"s", it.Key}]
		if filtered := it.Key < "000005"; filtered != (r.Reason == ReasonFiltered) || (filtered && r.Error != "caption has 1 words, fewer than 2") || r.Width != 1 {
			t.Errorf("%s = %q %q", it.Key, r.Reason, r.Error)
		}
	}
	for _, n := range totals {
		if n != 20 {
			t.Errorf("Progress.Total = %d, want 20 (the source counts)", n)
		}
	}
}

// TestRunStopsPromptly: cancelling a run whose source never ends returns.
func TestRunStopsPromptly(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	st := newMemStore()
	f := &fakeScorer{slow: make(chan struct{})}
	var once sync.Once
	src := &endless{onItem: func(i int) {
		if i == 1000 {
			once.Do(cancel)
		}
	}}
	done := make(chan error, 1)
	go func() {
		_, err := Run(ctx, RunOptions{Sources: []Source{src}, Store: st, RunID: 1, Scorer: f})
		done <- err
	}()
	go func() { // let batches through until the run ends
		for {
			select {
			case f.slow <- struct{}{}:
			case <-ctx.Done():
				return
			}
		}
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Run = %v, want context.Canceled", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Run did not return after its context was cancelled")
	}
}

type endless struct{ onItem func(int) }

func (endless) Name() string { return "endless" }
func (e *endless) Items(ctx context.Context, yield func(Item) error) error {
	for i := 0; ; i++ {
		e.onItem(i)
		if err := yield(Item{Source: "endless", Key: fmt.Sprint(i), Caption: "x", Image: []byte{1}}); err != nil {
			return err
		}
	}
}

func TestKeyWindow(t *testing.T) {
	w := newKeyWindow(dupWindow)
	if !w.add("a") || w.add("a") || !w.add("b") {
		t.Fatal("add: a repeated key was not caught")
	}
	for i := range dupWindow {
		w.add(fmt.Sprint(i))
	}
	if !w.add("a") {
		t.Error(`"a" is still remembered after dupWindow other keys`)
	}
	if len(w.set) > dupWindow {
		t.Errorf("window holds %d keys, more than %d", len(w.set), dupWindow)
	}
}

func TestImageReason(t *testing.T) {
	e := testEngine(t)
	for data, want := range map[string]Reason{"": ReasonCorrupt, "plain text": ReasonUnsupported, "\xff\xd8\xff\xe0 truncated": ReasonCorrupt} {
		_, err := e.Prepare([]byte(data))
		if got := ImageReason(err); got != want {
			t.Errorf("ImageReason(Prepare(%q) = %v) = %q, want %q", data, err, got, want)
		}
	}
}
