package pipeline

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gata-contrib/gata/dva"
	"github.com/gata-contrib/gata/dva/preprocess"
)

// Scorer prepares images and scores prepared images against captions; *dva.Engine
// satisfies it.
type Scorer interface {
	// Prepare decodes and preprocesses one image file.
	Prepare(data []byte) (dva.Prepared, error)
	// ScorePrepared returns the cosine similarity of pixels[i] and captions[i].
	ScorePrepared(ctx context.Context, pixels [][]float32, captions []string) ([]float32, error)
}

// FetchFunc fetches the bytes of an item's image from its URL (http(s) or a local path).
type FetchFunc func(ctx context.Context, url string) ([]byte, *ItemError)

// Counter is a Source that can tell how many items it holds without yielding them (a
// Parquet footer, a listed folder). When every source of a run is one, the progress has a
// total from the start; otherwise the total is known once the last source is read.
type Counter interface {
	Count(ctx context.Context) (int64, error)
}

// RunOptions configure Run. Zero values mean the defaults.
type RunOptions struct {
	Sources []Source
	Store   ResultStore
	RunID   int64
	Scorer  Scorer
	// Fetch gets the images of items that name a URL and came without bytes; nil fails
	// such items.
	Fetch FetchFunc
	// Workers prepare images (decode, resize, normalise); default GOMAXPROCS.
	Workers int
	// FetchConcurrency is the number of fetches at once; default 16.
	FetchConcurrency int
	// BatchSize is the number of pairs per ScorePrepared call; default 32.
	BatchSize int
	// CommitEvery and CommitInterval bound how many results wait to be saved, and for how
	// long: default 256 results or 1 s, whichever comes first.
	CommitEvery    int
	CommitInterval time.Duration
	// Progress, when set, is called at most four times a second, and once at the end.
	Progress func(Progress)
	// Backend names what scores, for Progress (e.g. dva.ModelInfo.Backend).
	Backend string
	// Pauser, when set, stops the reading of items while it is paused; what was read goes
	// on to be scored and saved.
	Pauser *Pauser
	// Filter, when set, refuses items once their image is decoded and before they are
	// scored: they are recorded with ReasonFiltered, their size and the filter's message.
	Filter *BasicFilter
}

// Progress is the state of a run as it goes.
type Progress struct {
	Done    int64   `json:"done"`    // items with a result, skipped ones included
	Failed  int64   `json:"failed"`  // of those, recorded without a score in this session
	Skipped int64   `json:"skipped"` // had a result from an earlier session of the run
	Total   int64   `json:"total"`   // items in the sources, -1 while unknown
	Rate    float64 `json:"rate"`    // items per second since Run began, skipped ones not counted
	Backend string  `json:"backend,omitempty"`
	Paused  bool    `json:"paused,omitempty"`
}

// Stats count what one Run call did.
type Stats struct {
	Read       int64            `json:"read"`       // items the sources yielded
	Skipped    int64            `json:"skipped"`    // already had a result in the store
	Duplicates int64            `json:"duplicates"` // a key seen again in its source, dropped
	Scored     int64            `json:"scored"`     // results saved with a score
	Failed     int64            `json:"failed"`     // results saved with a reason
	Reasons    map[Reason]int64 `json:"reasons"`    // failed results by reason
	Elapsed    time.Duration    `json:"elapsed"`
}

// Defaults of RunOptions.
const (
	DefaultFetchConcurrency = 16
	DefaultBatchSize        = 32
	DefaultCommitEvery      = 256
	DefaultCommitInterval   = time.Second
)

const (
	// finishedChunk is how many refs the reader asks the store about at once.
	finishedChunk = 256
	// dupWindow is how many recent keys of a source the reader remembers to drop
	// duplicates. It is far larger than what can be in flight, so a repeated key is
	// dropped either here or, once its first copy is saved, as already finished.
	dupWindow = 1 << 16
	// progressEvery spaces Progress calls.
	progressEvery = 250 * time.Millisecond
	// idleFlush scores a partial batch when no item came for this long (a slow source, a
	// pause), so what was read does not wait.
	idleFlush = 200 * time.Millisecond
)

func (o *RunOptions) withDefaults() {
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	if o.FetchConcurrency <= 0 {
		o.FetchConcurrency = DefaultFetchConcurrency
	}
	if o.BatchSize <= 0 {
		o.BatchSize = DefaultBatchSize
	}
	if o.CommitEvery <= 0 {
		o.CommitEvery = DefaultCommitEvery
	}
	if o.CommitInterval <= 0 {
		o.CommitInterval = DefaultCommitInterval
	}
}

// Capacities of the channels between the stages.
func (o *RunOptions) fetchCap() int { return o.FetchConcurrency }
func (o *RunOptions) prepCap() int  { return o.Workers }
func (o *RunOptions) scoreCap() int { return o.BatchSize }
func (o *RunOptions) resCap() int   { return o.BatchSize }

// maxInFlight is the most items that can be between the reader and the store at once:
// the reader's chunk, every channel and every stage's hands full, and the unsaved results.
func (o *RunOptions) maxInFlight() int {
	return finishedChunk + 1 + // the chunk and the item being yielded
		o.fetchCap() + o.FetchConcurrency +
		o.prepCap() + o.Workers +
		o.scoreCap() + o.BatchSize +
		o.resCap() + o.CommitEvery
}

// ImageReason is the reason of an image that Prepare refused.
func ImageReason(err error) Reason {
	switch {
	case errors.Is(err, preprocess.ErrTooLarge):
		return ReasonTooLarge
	case errors.Is(err, preprocess.ErrUnsupportedFormat):
		return ReasonUnsupported
	}
	return ReasonCorrupt
}

// work is one item on its way through the stages.
type work struct {
	it  Item
	px  dva.Prepared
	res *Result // set once the item failed (or was filtered): nothing left but saving it
}

// runner holds the state shared by the stages of one Run.
type runner struct {
	o      RunOptions
	ctx    context.Context
	cancel context.CancelFunc

	wg sync.WaitGroup // every goroutine of the run

	errMu sync.Mutex
	err   error // the first error that stops the run (not ctx's own)

	srcErrs []error // sources that failed as a whole; the others still run

	read, skipped, dups atomic.Int64
	scored, failed      atomic.Int64
	total               atomic.Int64 // -1 while unknown
	reasonsMu           sync.Mutex
	reasons             map[Reason]int64
	start               time.Time
	lastProgress        time.Time
	progressMu          sync.Mutex
}

func (r *runner) fail(err error) {
	r.errMu.Lock()
	if r.err == nil {
		r.err = err
	}
	r.errMu.Unlock()
	r.cancel()
}

// Run scores every item of the sources that the store has no result for yet, saving
// results (scores and failures) as it goes. A bad item fails alone. When ctx ends, the
// stages stop, what was scored is saved, and ctx's error is returned: running again with
// the same RunID and sources goes on where it stopped. A source that cannot be read is
// reported in the error once the other sources are done.
func Run(ctx context.Context, o RunOptions) (Stats, error) {
	if o.Store == nil || o.Scorer == nil {
		return Stats{}, errors.New("run pipeline: a store and a scorer are required")
	}
	o.withDefaults()
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r := &runner{o: o, ctx: rctx, cancel: cancel, reasons: map[Reason]int64{}, start: time.Now()}
	r.total.Store(-1)
	r.wg.Go(r.count)

	fetchCh := make(chan work, o.fetchCap())
	prepCh := make(chan work, o.prepCap())
	scoreCh := make(chan work, o.scoreCap())
	resCh := make(chan Result, o.resCap())

	r.wg.Go(func() {
		defer close(fetchCh)
		r.readAll(fetchCh)
	})
	stage(&r.wg, o.FetchConcurrency, prepCh, func() {
		for w := range recv(rctx, fetchCh) {
			if !r.fetch(&w) {
				continue
			}
			if !send(rctx, prepCh, w) {
				return
			}
		}
	})
	stage(&r.wg, o.Workers, scoreCh, func() {
		for w := range recv(rctx, prepCh) {
			r.prepare(&w)
			if !send(rctx, scoreCh, w) {
				return
			}
		}
	})
	stage(&r.wg, 1, resCh, func() { r.score(scoreCh, resCh) })

	r.collect(resCh)
	cancel() // the stages are done; stop the count and any source still reading
	r.wg.Wait()

	st := r.stats()
	switch {
	case r.err != nil:
		return st, r.err
	case ctx.Err() != nil:
		return st, ctx.Err()
	case len(r.srcErrs) > 0:
		return st, errors.Join(r.srcErrs...)
	}
	return st, nil
}

// stage runs n goroutines of fn and closes out when they have all returned.
func stage[T any](all *sync.WaitGroup, n int, out chan<- T, fn func()) {
	var wg sync.WaitGroup
	for range n {
		wg.Go(fn)
	}
	all.Go(func() {
		wg.Wait()
		close(out)
	})
}

// recv yields what comes on ch until it is closed or ctx ends.
func recv[T any](ctx context.Context, ch <-chan T) func(func(T) bool) {
	return func(yield func(T) bool) {
		for {
			select {
			case <-ctx.Done():
				return
			case v, ok := <-ch:
				if !ok || !yield(v) {
					return
				}
			}
		}
	}
}

// send puts v on ch unless ctx ends first.
func send[T any](ctx context.Context, ch chan<- T, v T) bool {
	select {
	case ch <- v:
		return true
	case <-ctx.Done():
		return false
	}
}

// count sets the total when every source can count its items.
func (r *runner) count() {
	var n int64
	for _, s := range r.o.Sources {
		c, ok := s.(Counter)
		if !ok {
			return
		}
		k, err := c.Count(r.ctx)
		if err != nil {
			return
		}
		n += k
	}
	r.total.CompareAndSwap(-1, n)
}

// readAll reads the sources one after the other, drops duplicates and what the store has,
// and sends the rest on.
func (r *runner) readAll(out chan<- work) {
	var n int64
	for _, src := range r.o.Sources {
		rd := &reader{r: r, out: out, recent: newKeyWindow(dupWindow)}
		err := src.Items(r.ctx, rd.yield)
		if !errors.Is(err, errStop) {
			// What was read before a source broke is still good.
			if ferr := rd.flush(); ferr != nil {
				return
			}
		}
		n += rd.kept
		if r.ctx.Err() != nil {
			return
		}
		if err != nil {
			if errors.Is(err, errStop) {
				return
			}
			r.srcErrs = append(r.srcErrs, fmt.Errorf("read %s: %w", src.Name(), err))
		}
	}
	r.total.Store(n)
}

// errStop ends a source's Items when the run stops.
var errStop = errors.New("run stopped")

// reader is the state of reading one source.
type reader struct {
	r      *runner
	out    chan<- work
	recent *keyWindow
	chunk  []Item
	kept   int64 // items of the source that are not duplicates
}

func (rd *reader) yield(it Item) error {
	r := rd.r
	if p := r.o.Pauser; p != nil && p.Paused() {
		if err := rd.flush(); err != nil { // what was read goes on while paused
			return err
		}
		if err := p.wait(r.ctx); err != nil {
			return errStop
		}
	}
	if r.ctx.Err() != nil {
		return errStop
	}
	r.read.Add(1)
	if !rd.recent.add(it.Key) {
		r.dups.Add(1)
		return nil
	}
	rd.kept++
	rd.chunk = append(rd.chunk, it)
	if len(rd.chunk) >= finishedChunk {
		return rd.flush()
	}
	return nil
}

// flush asks the store which items of the chunk it has, and sends the others on.
func (rd *reader) flush() error {
	r := rd.r
	if len(rd.chunk) == 0 {
		return nil
	}
	refs := make([]Ref, len(rd.chunk))
	for i, it := range rd.chunk {
		refs[i] = Ref{Source: it.Source, Key: it.Key}
	}
	done, err := r.o.Store.Finished(r.ctx, r.o.RunID, refs)
	if err != nil {
		if r.ctx.Err() == nil {
			r.fail(fmt.Errorf("check finished items: %w", err))
		}
		return errStop
	}
	if len(done) != len(refs) {
		r.fail(fmt.Errorf("check finished items: %d answers for %d items", len(done), len(refs)))
		return errStop
	}
	for i, it := range rd.chunk {
		if done[i] {
			r.skipped.Add(1)
			continue
		}
		if !send(r.ctx, rd.out, work{it: it}) {
			return errStop
		}
	}
	clear(rd.chunk)
	rd.chunk = rd.chunk[:0]
	return nil
}

// fetch gets the image of an item that only names it. It reports false when the item must
// be dropped unrecorded (the run stops: the failure is not the item's).
func (r *runner) fetch(w *work) bool {
	it := &w.it
	if it.Err != nil || it.Image != nil || it.URL == "" {
		return true
	}
	if r.o.Fetch == nil {
		it.Err = Fail(ReasonFetchFailed, "no fetcher for %s", it.URL)
		return true
	}
	data, ierr := r.o.Fetch(r.ctx, it.URL)
	if r.ctx.Err() != nil {
		return false
	}
	if ierr != nil {
		it.Err = ierr
		return true
	}
	if data == nil {
		data = []byte{}
	}
	it.Image = data
	return true
}

// prepare decodes the image and applies the filter; a failure becomes the item's result.
func (r *runner) prepare(w *work) {
	it := &w.it
	if it.Err == nil && it.Image == nil {
		it.Err = Fail(ReasonNotFound, "no image")
	}
	if it.Err != nil {
		w.res = r.result(it, it.Err)
		return
	}
	px, err := r.o.Scorer.Prepare(it.Image)
	it.Image = nil // the pixels are all that is needed now
	if err != nil {
		w.res = r.result(it, &ItemError{Reason: ImageReason(err), Err: err})
		return
	}
	w.px = px
	if r.o.Filter != nil {
		res := r.result(it, nil)
		res.Width, res.Height = px.Width, px.Height
		if msg := r.o.Filter.Refusal(*res); msg != "" {
			res.Reason, res.Error = ReasonFiltered, msg
			w.res, w.px = res, dva.Prepared{}
		}
	}
}

// result is the Result of an item, failed with ierr when it is not nil.
func (r *runner) result(it *Item, ierr *ItemError) *Result {
	res := &Result{Source: it.Source, Key: it.Key, UID: UID(*it), URL: it.URL, Caption: it.Caption, Extra: it.Extra}
	if ierr != nil {
		res.Reason = ierr.Reason
		if res.Reason == "" {
			res.Reason = ReasonCorrupt
		}
		if ierr.Err != nil {
			res.Error = ierr.Err.Error()
		} else {
			res.Error = string(res.Reason)
		}
	}
	return res
}

// score batches prepared items for the scorer and passes every result on.
func (r *runner) score(in <-chan work, out chan<- Result) {
	batch := make([]work, 0, r.o.BatchSize)
	idle := time.NewTimer(idleFlush)
	defer idle.Stop()
	flush := func() bool {
		if len(batch) == 0 {
			return true
		}
		pixels := make([][]float32, len(batch))
		caps := make([]string, len(batch))
		for i, w := range batch {
			pixels[i], caps[i] = w.px.Pixels, w.it.Caption
		}
		scores, err := r.o.Scorer.ScorePrepared(r.ctx, pixels, caps)
		if r.ctx.Err() != nil {
			return false
		}
		if err == nil && len(scores) != len(batch) {
			err = fmt.Errorf("%d scores for %d pairs", len(scores), len(batch))
		}
		if err != nil {
			r.fail(fmt.Errorf("score a batch: %w", err))
			return false
		}
		for i, w := range batch {
			res := r.result(&w.it, nil)
			res.Score, res.Width, res.Height = scores[i], w.px.Width, w.px.Height
			out <- *res
		}
		clear(batch)
		batch = batch[:0]
		return true
	}
	for {
		select {
		case <-r.ctx.Done():
			return
		case w, ok := <-in:
			if !ok {
				flush()
				return
			}
			if w.res != nil {
				out <- *w.res
				continue
			}
			batch = append(batch, w)
			if len(batch) >= r.o.BatchSize && !flush() {
				return
			}
			idle.Reset(idleFlush)
		case <-idle.C:
			if !flush() {
				return
			}
			idle.Reset(idleFlush)
		}
	}
}

// collect saves results in batches until the stages are done, reporting progress. It
// reads everything that comes, even after a failure, so no stage blocks on it.
func (r *runner) collect(in <-chan Result) {
	buf := make([]Result, 0, r.o.CommitEvery)
	broken := false // a save failed: the rest is read and dropped
	commit := time.NewTicker(r.o.CommitInterval)
	defer commit.Stop()
	tick := time.NewTicker(progressEvery)
	defer tick.Stop()
	save := func() {
		if len(buf) == 0 {
			return
		}
		// Results already computed are saved even when the run is stopping.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.ctx), 30*time.Second)
		defer cancel()
		if !broken {
			if err := r.o.Store.SaveResults(ctx, r.o.RunID, buf); err != nil {
				broken = true
				r.fail(fmt.Errorf("save results: %w", err))
			} else {
				r.count1(buf)
			}
		}
		clear(buf)
		buf = buf[:0]
	}
	for {
		select {
		case res, ok := <-in:
			if !ok {
				save()
				r.report(true)
				return
			}
			buf = append(buf, res)
			if len(buf) >= r.o.CommitEvery {
				save()
			}
		case <-commit.C:
			save()
		case <-tick.C:
			r.report(false)
		}
	}
}

// count1 counts saved results.
func (r *runner) count1(rs []Result) {
	r.reasonsMu.Lock()
	defer r.reasonsMu.Unlock()
	for _, res := range rs {
		if res.Scored() {
			r.scored.Add(1)
			continue
		}
		r.failed.Add(1)
		r.reasons[res.Reason]++
	}
}

func (r *runner) report(final bool) {
	if r.o.Progress == nil {
		return
	}
	r.progressMu.Lock()
	defer r.progressMu.Unlock()
	now := time.Now()
	if !final && now.Sub(r.lastProgress) < progressEvery {
		return
	}
	r.lastProgress = now
	p := Progress{Failed: r.failed.Load(), Skipped: r.skipped.Load(), Total: r.total.Load(), Backend: r.o.Backend}
	n := r.scored.Load() + p.Failed
	p.Done = n + p.Skipped
	if el := now.Sub(r.start).Seconds(); el > 0 {
		p.Rate = float64(n) / el
	}
	if r.o.Pauser != nil {
		p.Paused = r.o.Pauser.Paused()
	}
	r.o.Progress(p)
}

func (r *runner) stats() Stats {
	r.reasonsMu.Lock()
	defer r.reasonsMu.Unlock()
	st := Stats{Read: r.read.Load(), Skipped: r.skipped.Load(), Duplicates: r.dups.Load(),
		Scored: r.scored.Load(), Failed: r.failed.Load(), Reasons: map[Reason]int64{}, Elapsed: time.Since(r.start)}
	for k, v := range r.reasons {
		st.Reasons[k] = v
	}
	return st
}

// keyWindow remembers the last n keys added.
type keyWindow struct {
	ring []string
	next int
	set  map[string]int // key → how many times it is in ring
}

func newKeyWindow(n int) *keyWindow {
	return &keyWindow{ring: make([]string, 0, min(n, 1024)), set: map[string]int{}}
}

// add records key and reports whether it was new to the window.
func (w *keyWindow) add(key string) bool {
	if w.set[key] > 0 {
		return false
	}
	if len(w.ring) < dupWindow {
		w.ring = append(w.ring, key)
	} else {
		old := w.ring[w.next]
		if w.set[old]--; w.set[old] <= 0 {
			delete(w.set, old)
		}
		w.ring[w.next] = key
		w.next = (w.next + 1) % len(w.ring)
	}
	w.set[key]++
	return true
}

// Pauser pauses and resumes a run; the zero value is running. It is safe for concurrent use.
type Pauser struct {
	mu     sync.Mutex
	resume chan struct{} // non-nil while paused; closed by Resume
}

// Pause stops the reading of new items until Resume.
func (p *Pauser) Pause() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.resume == nil {
		p.resume = make(chan struct{})
	}
}

// Resume lets a paused run read again.
func (p *Pauser) Resume() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.resume != nil {
		close(p.resume)
		p.resume = nil
	}
}

// Paused reports whether the run is paused.
func (p *Pauser) Paused() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.resume != nil
}

// wait blocks while paused, until resumed or ctx ends.
func (p *Pauser) wait(ctx context.Context) error {
	p.mu.Lock()
	ch := p.resume
	p.mu.Unlock()
	if ch == nil {
		return nil
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
