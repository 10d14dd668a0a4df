package agent

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gata-contrib/gata/agent/pool"
	"github.com/gata-contrib/gata/dva"
	"github.com/gata-contrib/gata/dva/pipeline"
)

// EngineFunc loads the scorer of a job's model (by name or folder, and the sha256 of its
// weights when the pool names it) and says what backend runs it.
type EngineFunc func(ctx context.Context, model, sha256 string) (scorer pipeline.Scorer, backend string, err error)

// Gate says whether the worker may use the machine; *Governor implements it.
type Gate interface {
	State() State
	Wait(ctx context.Context) error
}

// Options configure a Worker.
type Options struct {
	// URL is the pool's NATS address (nats:// or tls://); a credential from `gata pool
	// invite` may be its user part or Token.
	URL   string
	Token string
	// TLSCAFile, when set, is the CA that signed the pool's certificate.
	TLSCAFile string
	// Key signs results; its address is the worker's identity in the pool's ledger.
	Key    *ecdsa.PrivateKey
	Engine EngineFunc
	// Gate, when set, is asked before every job and every batch; nil runs all the time.
	Gate Gate
	// Device names the GPU or CPU in results (default: "cpu").
	Device string
	// BatchSize is the pairs per model call (default 16): the worker can yield the machine
	// between two calls.
	BatchSize int
	// SpoolDir keeps results not yet accepted by the pool, so a restart sends them again.
	SpoolDir string
	// Type is the job type taken (default pool.TypeDVA).
	Type   string
	Logger *slog.Logger
	// OnEvent, when set, hears what the worker does.
	OnEvent func(Event)
	// Tamper, when set, may change a result before it is signed. It exists for tests that
	// play dishonest workers against the pool; the app never sets it.
	Tamper func(job *pool.Job, res *pool.Result)
	// Name is the NATS connection's name (default gata-worker).
	Name string
}

// Event kinds.
const (
	EventConnected    = "connected"
	EventDisconnected = "disconnected"
	EventJob          = "job"     // a job was taken
	EventBatch        = "batch"   // a batch is about to be scored
	EventDone         = "done"    // a job's result was accepted by the pool's stream
	EventYield        = "yield"   // a job was given back because the gate closed
	EventPaused       = "paused"  // the gate closed
	EventResumed      = "resumed" // the gate opened
	EventSkip         = "skip"    // a job this worker may not take was left for others
	EventError        = "error"
	EventCredits      = "credits" // the pool's ledger changed this worker's credit
)

// Event is one thing the worker did.
type Event struct {
	Time   time.Time `json:"time"`
	Kind   string    `json:"kind"`
	Job    string    `json:"job,omitempty"`
	Items  int       `json:"items,omitempty"`
	Reason string    `json:"reason,omitempty"`
}

// Stats count what the worker did since it started.
type Stats struct {
	Address   string    `json:"address"`
	Connected bool      `json:"connected"`
	Jobs      int64     `json:"jobs"`
	Items     int64     `json:"items"`
	Yielded   int64     `json:"yielded"`
	ComputeMS int64     `json:"compute_ms"`
	Started   time.Time `json:"started"`
	Current   string    `json:"current,omitempty"` // the job in hand
	// Credits is this worker's credit in the pool's ledger, as the pool last told it (nil
	// before the first word).
	Credits *pool.CreditNote `json:"credits,omitempty"`
}

// Worker takes jobs from a pool, scores them, signs and returns the results.
type Worker struct {
	o    Options
	addr string
	log  *slog.Logger

	connected atomic.Bool
	jobs      atomic.Int64
	items     atomic.Int64
	yielded   atomic.Int64
	computeMS atomic.Int64
	started   time.Time
	mu        sync.Mutex
	current   string
	credits   *pool.CreditNote

	cacheMu sync.Mutex
	cache   map[string][]byte // shards by sha256
	cacheN  int64
}

// maxCache bounds the bytes of shards the worker keeps between jobs.
const maxCache = 64 << 20

// New checks the options.
func New(o Options) (*Worker, error) {
	if o.URL == "" || o.Key == nil || o.Engine == nil {
		return nil, errors.New("new worker: a pool URL, a key and an engine are required")
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 16
	}
	if o.Type == "" {
		o.Type = pool.TypeDVA
	}
	if o.Device == "" {
		o.Device = "cpu"
	}
	if o.Name == "" {
		o.Name = "gata-worker"
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Worker{o: o, addr: pool.Address(o.Key), log: o.Logger, cache: map[string][]byte{}}, nil
}

// Address is the worker's identity: the address of its key.
func (w *Worker) Address() string { return w.addr }

// Stats returns the counts so far.
func (w *Worker) Stats() Stats {
	w.mu.Lock()
	cur, credits := w.current, w.credits
	w.mu.Unlock()
	return Stats{Address: w.addr, Connected: w.connected.Load(), Jobs: w.jobs.Load(), Items: w.items.Load(),
		Yielded: w.yielded.Load(), ComputeMS: w.computeMS.Load(), Started: w.started, Current: cur, Credits: credits}
}

func (w *Worker) emit(e Event) {
	e.Time = time.Now()
	if w.o.OnEvent != nil {
		w.o.OnEvent(e)
	}
}

func (w *Worker) connect() (*nats.Conn, error) {
	opts := []nats.Option{nats.Name(w.o.Name), nats.MaxReconnects(-1), nats.ReconnectWait(250 * time.Millisecond),
		nats.RetryOnFailedConnect(true), nats.ReconnectJitter(100*time.Millisecond, time.Second),
		nats.ConnectHandler(func(*nats.Conn) { w.connected.Store(true); w.emit(Event{Kind: EventConnected}) }),
		nats.ReconnectHandler(func(*nats.Conn) { w.connected.Store(true); w.emit(Event{Kind: EventConnected}) }),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			w.connected.Store(false)
			reason := ""
			if err != nil {
				reason = err.Error()
			}
			w.emit(Event{Kind: EventDisconnected, Reason: reason})
		}),
	}
	if w.o.Token != "" {
		opts = append(opts, nats.Token(w.o.Token))
	}
	if w.o.TLSCAFile != "" {
		pem, err := os.ReadFile(w.o.TLSCAFile)
		if err != nil {
			return nil, fmt.Errorf("read the pool's CA: %w", err)
		}
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("read the pool's CA %s: no certificate in it", w.o.TLSCAFile)
		}
		opts = append(opts, nats.Secure(&tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}))
	}
	nc, err := nats.Connect(w.o.URL, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to the pool %s: %w", RedactURL(w.o.URL), err)
	}
	if nc.IsConnected() {
		w.connected.Store(true)
	}
	return nc, nil
}

// RedactURL hides a credential in a URL's user part.
func RedactURL(u string) string {
	scheme, rest, ok := strings.Cut(u, "://")
	if !ok {
		return u
	}
	if at := strings.LastIndexByte(rest, '@'); at >= 0 {
		return scheme + "://***@" + rest[at+1:]
	}
	return u
}

// Serve takes and does jobs until ctx ends. It survives the pool going away and coming
// back: the connection is retried for ever, and a result not yet accepted is sent again.
func (w *Worker) Serve(ctx context.Context) error {
	w.started = time.Now()
	nc, err := w.connect()
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("open JetStream: %w", err)
	}
	sub, err := nc.Subscribe(pool.CreditsSubjectPrefix+strings.ToLower(w.addr), w.heard)
	if err != nil {
		return fmt.Errorf("follow this worker's credit: %w", err)
	}
	defer sub.Unsubscribe()
	w.resend(ctx, js)
	var cons jetstream.Consumer
	paused := false
	for ctx.Err() == nil {
		if w.o.Gate != nil {
			if st := w.o.Gate.State(); !st.Run {
				if !paused {
					paused = true
					w.emit(Event{Kind: EventPaused, Reason: st.Reason})
				}
				wctx, cancel := context.WithTimeout(ctx, time.Second)
				w.o.Gate.Wait(wctx)
				cancel()
				continue
			}
			if paused {
				paused = false
				w.emit(Event{Kind: EventResumed})
			}
		}
		if cons == nil {
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			cons, err = js.Consumer(cctx, pool.JobsStream, pool.WorkerConsumer(w.o.Type))
			cancel()
			if err != nil {
				cons = nil
				w.log.Debug("find the pool's jobs", "err", err)
				sleep(ctx, 500*time.Millisecond)
				continue
			}
		}
		batch, err := cons.Fetch(1, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			if ctx.Err() == nil {
				w.log.Debug("fetch a job", "err", err)
				if errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrConsumerDeleted) {
					cons = nil
				}
				sleep(ctx, 250*time.Millisecond)
			}
			continue
		}
		skipped := false
		for m := range batch.Messages() {
			if w.do(ctx, js, m) {
				skipped = true
			}
		}
		if skipped {
			// Pulling again at once, in step with another worker skipping the job this one
			// may take, would hand each the wrong job again and again; a random pause, and a
			// random time the skipped job stays away, break the step.
			sleep(ctx, skipPause())
		}
		if err := batch.Error(); err != nil && ctx.Err() == nil && !errors.Is(err, nats.ErrTimeout) {
			w.log.Debug("fetch a job", "err", err)
			sleep(ctx, 250*time.Millisecond)
		}
	}
	return nil
}

// heard takes a credit note from the pool.
func (w *Worker) heard(m *nats.Msg) {
	var n pool.CreditNote
	if json.Unmarshal(m.Data, &n) != nil || !strings.EqualFold(n.Worker, w.addr) {
		return
	}
	w.mu.Lock()
	w.credits = &n
	w.mu.Unlock()
	w.emit(Event{Kind: EventCredits, Reason: fmt.Sprintf("%d pairs confirmed, %d pending, %d rejected", n.Confirmed, n.Pending, n.Rejected)})
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// errYield stops a job because the gate closed.
var errYield = errors.New("yield")

// skipPause is how long a worker waits before pulling again after it skipped a job:
// 100 to 500 ms, at random.
func skipPause() time.Duration {
	return 100*time.Millisecond + rand.N(400*time.Millisecond)
}

// skipDelay is how long a skipped job stays away from every worker: 250 ms to 1.25 s, at
// random. Sent back at once, a job no connected worker may take would come first on every
// pull, ahead of all the others.
func skipDelay() time.Duration {
	return 250*time.Millisecond + rand.N(time.Second)
}

// do runs one job message: heartbeats while it works, the result published (and sent again
// until the stream has it), then the job acknowledged. It reports whether it skipped the job
// because this worker may not take it.
func (w *Worker) do(ctx context.Context, js jetstream.JetStream, m jetstream.Msg) (skipped bool) {
	var job pool.Job
	if err := json.Unmarshal(m.Data(), &job); err != nil || job.ID == "" {
		w.log.Warn("drop a job that is not one", "err", err)
		m.Term()
		return
	}
	if job.Excludes(w.addr) {
		w.emit(Event{Kind: EventSkip, Job: job.ID, Reason: "already answered its group"})
		m.NakWithDelay(skipDelay())
		return true
	}
	w.mu.Lock()
	w.current = job.ID
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		w.current = ""
		w.mu.Unlock()
	}()
	w.emit(Event{Kind: EventJob, Job: job.ID, Items: len(job.Items)})
	hbCtx, stopHB := context.WithCancel(ctx)
	defer stopHB()
	every := time.Duration(job.AckWaitMS) * time.Millisecond / 3
	if every <= 0 {
		every = 10 * time.Second
	}
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-hbCtx.Done():
				return
			case <-t.C:
				m.InProgress()
			}
		}
	}()
	res, err := w.score(ctx, js, &job)
	if err != nil {
		switch {
		case ctx.Err() != nil:
			m.Nak()
		case errors.Is(err, errYield):
			w.yielded.Add(1)
			w.emit(Event{Kind: EventYield, Job: job.ID, Reason: w.o.Gate.State().Reason})
			m.Nak()
		default:
			w.log.Warn("job failed; it goes back to the pool", "job", job.ID, "err", err)
			w.emit(Event{Kind: EventError, Job: job.ID, Reason: err.Error()})
			m.NakWithDelay(5 * time.Second)
		}
		return
	}
	if w.o.Tamper != nil {
		w.o.Tamper(&job, res)
	}
	if err := res.Sign(w.o.Key); err != nil {
		w.emit(Event{Kind: EventError, Job: job.ID, Reason: err.Error()})
		m.NakWithDelay(5 * time.Second)
		return
	}
	body, err := json.Marshal(res)
	if err != nil {
		m.NakWithDelay(5 * time.Second)
		return
	}
	spool := w.spoolWrite(job.ID, body)
	if err := w.send(ctx, js, job.ID, body); err != nil {
		return // ctx ended: the spool has it, and the job comes back to someone
	}
	w.spoolRemove(spool)
	m.Ack()
	w.jobs.Add(1)
	w.items.Add(int64(len(res.Items)))
	w.computeMS.Add(res.ComputeMS)
	w.emit(Event{Kind: EventDone, Job: job.ID, Items: len(res.Items)})
	return false
}

// send publishes a result until the results stream acknowledges it or ctx ends.
func (w *Worker) send(ctx context.Context, js jetstream.JetStream, jobID string, body []byte) error {
	subject := pool.ResultsSubjectPrefix + w.o.Type
	for attempt := 0; ; attempt++ {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := js.Publish(pctx, subject, body, jetstream.WithMsgID(jobID+"/"+w.addr))
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		w.log.Debug("send a result; trying again", "job", jobID, "err", err)
		sleep(ctx, min(time.Duration(attempt+1)*250*time.Millisecond, 2*time.Second))
	}
}

func (w *Worker) spoolWrite(jobID string, body []byte) string {
	if w.o.SpoolDir == "" {
		return ""
	}
	if err := os.MkdirAll(w.o.SpoolDir, 0o700); err != nil {
		w.log.Warn("keep a result for sending", "err", err)
		return ""
	}
	p := filepath.Join(w.o.SpoolDir, strings.NewReplacer("/", "_", string(filepath.Separator), "_").Replace(jobID)+".json")
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, body, 0o600); err != nil {
		w.log.Warn("keep a result for sending", "err", err)
		return ""
	}
	if err := os.Rename(tmp, p); err != nil {
		w.log.Warn("keep a result for sending", "err", err)
		return ""
	}
	return p
}

func (w *Worker) spoolRemove(p string) {
	if p != "" {
		os.Remove(p)
	}
}

// resend sends the results a stopped worker left in its spool.
func (w *Worker) resend(ctx context.Context, js jetstream.JetStream) {
	if w.o.SpoolDir == "" {
		return
	}
	files, _ := filepath.Glob(filepath.Join(w.o.SpoolDir, "*.json"))
	for _, f := range files {
		body, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		var r pool.Result
		if json.Unmarshal(body, &r) != nil {
			os.Remove(f)
			continue
		}
		if err := w.send(ctx, js, r.Job, body); err != nil {
			return
		}
		os.Remove(f)
	}
}

// image returns an object's bytes (a job's shard) from the cache or the bucket, checked
// against its name.
func (w *Worker) image(ctx context.Context, obs jetstream.ObjectStore, name string) ([]byte, error) {
	w.cacheMu.Lock()
	b, ok := w.cache[name]
	w.cacheMu.Unlock()
	if ok {
		return b, nil
	}
	b, err := obs.GetBytes(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("get shard %s: %w", name, err)
	}
	h := sha256.Sum256(b)
	if hex.EncodeToString(h[:]) != name {
		return nil, fmt.Errorf("shard %s: the bytes do not match their name", name)
	}
	w.cacheMu.Lock()
	if w.cacheN+int64(len(b)) > maxCache {
		clear(w.cache)
		w.cacheN = 0
	}
	w.cache[name] = b
	w.cacheN += int64(len(b))
	w.cacheMu.Unlock()
	return b, nil
}

// score does the work of a job: fetch the images, prepare them on every core, score them in
// batches, asking the gate between batches and keeping to its duty cycle.
func (w *Worker) score(ctx context.Context, js jetstream.JetStream, job *pool.Job) (*pool.Result, error) {
	res := &pool.Result{Job: job.ID, Type: job.Type, Device: w.o.Device, BatchSize: w.o.BatchSize, Started: time.Now().UTC()}
	scorer, backend, err := w.o.Engine(ctx, job.Model, job.ModelSHA256)
	if err != nil {
		return nil, fmt.Errorf("load model %s: %w", job.Model, err)
	}
	res.Backend = backend
	fetchStart := time.Now()
	obs, err := js.ObjectStore(ctx, pool.ImagesBucket)
	if err != nil {
		return nil, fmt.Errorf("open the images bucket: %w", err)
	}
	res.Items = make([]pool.ItemResult, len(job.Items))
	data := make([][]byte, len(job.Items))
	shard, err := w.image(ctx, obs, job.Shard)
	if err != nil {
		return nil, err
	}
	for i, it := range job.Items {
		res.Items[i].ID = it.ID
		if it.Offset < 0 || it.Size < 0 || it.Offset+it.Size > int64(len(shard)) {
			res.Items[i].Reason, res.Items[i].Error = string(pipeline.ReasonNotFound), "the image lies outside the job's shard"
			continue
		}
		b := shard[it.Offset : it.Offset+it.Size]
		if h := sha256.Sum256(b); hex.EncodeToString(h[:]) != it.Image {
			res.Items[i].Reason, res.Items[i].Error = string(pipeline.ReasonNotFound), "the image's bytes in the shard do not match its sha256"
			continue
		}
		data[i] = b
	}
	res.FetchMS = time.Since(fetchStart).Milliseconds()

	compute := time.Now()
	prepared := make([]dva.Prepared, len(job.Items))
	var wg sync.WaitGroup
	next := make(chan int)
	for range min(runtime.GOMAXPROCS(0), max(len(job.Items), 1)) {
		wg.Go(func() {
			for i := range next {
				px, err := scorer.Prepare(data[i])
				if err != nil {
					res.Items[i].Reason, res.Items[i].Error = string(pipeline.ImageReason(err)), err.Error()
					continue
				}
				prepared[i] = px
				res.Items[i].Width, res.Items[i].Height = px.Width, px.Height
			}
		})
	}
	for i := range job.Items {
		if data[i] != nil {
			next <- i
		}
	}
	close(next)
	wg.Wait()
	var todo []int
	for i := range job.Items {
		if data[i] != nil && res.Items[i].Reason == "" {
			todo = append(todo, i)
		}
	}
	for start := 0; start < len(todo); start += w.o.BatchSize {
		duty := 1.0
		if w.o.Gate != nil {
			st := w.o.Gate.State()
			if !st.Run {
				return nil, errYield
			}
			duty = st.Duty
		}
		end := min(start+w.o.BatchSize, len(todo))
		px := make([][]float32, 0, end-start)
		caps := make([]string, 0, end-start)
		for _, i := range todo[start:end] {
			px, caps = append(px, prepared[i].Pixels), append(caps, job.Items[i].Caption)
		}
		w.emit(Event{Kind: EventBatch, Job: job.ID, Items: end - start})
		t0 := time.Now()
		scores, err := scorer.ScorePrepared(ctx, px, caps)
		if err != nil {
			return nil, fmt.Errorf("score: %w", err)
		}
		if len(scores) != len(px) {
			return nil, fmt.Errorf("score: %d scores for %d pairs", len(scores), len(px))
		}
		for k, i := range todo[start:end] {
			res.Items[i].Score = scores[k]
			prepared[i] = dva.Prepared{}
		}
		d := time.Since(t0)
		if duty > 0 && duty < 1 && end < len(todo) {
			if err := w.rest(ctx, time.Duration(float64(d)*(1-duty)/duty)); err != nil {
				return nil, err
			}
		}
	}
	res.ComputeMS = max(time.Since(compute).Milliseconds(), 1)
	res.Finished = time.Now().UTC()
	return res, nil
}

// rest idles for d to keep to the duty cycle, giving up at once when the gate closes.
func (w *Worker) rest(ctx context.Context, d time.Duration) error {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if st := w.o.Gate.State(); !st.Run {
			return errYield
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		sleep(ctx, min(time.Until(deadline), 100*time.Millisecond))
	}
	return nil
}
