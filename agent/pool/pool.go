package pool

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gata-contrib/gata/dva/pipeline"
	"github.com/gata-contrib/gata/storage"
)

// Ledger is what the pool keeps in the database; *storage.Store satisfies it.
type Ledger interface {
	TokenChecker
	PoolCursor(ctx context.Context, run int64) (int64, bool, error)
	SetPoolCursor(ctx context.Context, run, cursor int64, readAll bool) error
	AddPoolGroup(ctx context.Context, g storage.PoolGroup, j storage.PoolJob, cursor int64) error
	MarkPoolJobPublished(ctx context.Context, id string) error
	PoolGroups(ctx context.Context, run int64, state string) ([]storage.PoolGroup, error)
	PoolJobs(ctx context.Context, run int64) ([]storage.PoolJob, error)
	PoolResultsOf(ctx context.Context, group string) ([]storage.PoolResult, error)
	AddPoolResult(ctx context.Context, r storage.PoolResult) (bool, error)
	DecidePool(ctx context.Context, d storage.PoolDecision) error
	PoolWorkers(ctx context.Context) ([]storage.PoolWorker, error)
	PoolCredits(ctx context.Context, run int64) ([]storage.PoolCredit, error)
	SetPoolMeta(ctx context.Context, key, value string) error
	PoolMeta(ctx context.Context, key string) (string, error)
	SaveResults(ctx context.Context, run int64, rs []storage.DVAResult) error
}

// Defaults of Options.
const (
	DefaultJobSize        = 256
	DefaultCanaries       = 4
	DefaultCanarySet      = 32
	DefaultAckWait        = time.Minute
	DefaultTolerance      = 5e-3
	DefaultMinReplication = 0.1
	DefaultMaxOpenGroups  = 64
	// DefaultCPUSpeedup and DefaultGPUSpeedup bound how much faster than the pool's own
	// measurement a worker's claimed throughput may be on a CPU and on anything else.
	DefaultCPUSpeedup = 20
	DefaultGPUSpeedup = 2000
)

// Options configure a Pool. Zero values mean the defaults.
type Options struct {
	Ledger  Ledger
	Run     int64 // the DVA run the verified scores go to
	Sources []pipeline.Source
	// Model and ModelSHA256 are told to workers, who must score with the same weights.
	Model       string
	ModelSHA256 string
	// Scorer is the pool's own engine: it scores the canary set and measures the speed
	// that timing profiles are judged by.
	Scorer pipeline.Scorer
	// Fetch gets the images of items that name a URL; nil fails such items.
	Fetch pipeline.FetchFunc

	// DataDir holds JetStream's files (StoreDir) for the embedded server.
	DataDir string
	// Listen is the embedded server's host:port (DefaultListen; port 0 picks one).
	Listen string
	// NATSURL joins an existing NATS with JetStream instead of embedding a server.
	NATSURL                 string
	TLSCertFile, TLSKeyFile string

	JobSize   int           // pairs of the dataset per job (DefaultJobSize)
	Canaries  int           // canary items mixed into each job (DefaultCanaries; <0 for none)
	CanarySet int           // items the pool scores itself to draw canaries from (DefaultCanarySet)
	AckWait   time.Duration // how long a job may go without word from its worker (DefaultAckWait)
	// Tolerance is the largest difference between two scores of one pair that still agree
	// (DefaultTolerance: CPU and GPU backends agree within 5e-3, DESIGN §5).
	Tolerance float32
	// MinReplication is the share of a fully trusted worker's jobs still checked by a
	// second worker (DefaultMinReplication).
	MinReplication float64
	// MaxOpenGroups bounds the groups handed out and not yet verified (DefaultMaxOpenGroups,
	// or twice the connected clients of the embedded server when that is more).
	MaxOpenGroups int
	// MaxRate, when set, is the most pairs per second a backend can score; above it a
	// result's timing is impossible. Default: the pool's own speed on the canary set times
	// DefaultCPUSpeedup for CPU backends and DefaultGPUSpeedup for others.
	MaxRate func(backend string) float64
	// Seed makes the choice of canaries, item order and replication repeatable (0: random).
	Seed uint64

	Logger *slog.Logger
	// Progress, when set, is called after every change of the verified work.
	Progress func(Status)
}

// Status is the state of a pool's run.
type Status struct {
	Run        int64         `json:"run"`
	URL        string        `json:"url"`
	Read       int64         `json:"read"` // items of the sources read so far
	ReadAll    bool          `json:"read_all"`
	Groups     int           `json:"groups"`
	Verified   int           `json:"verified"`
	Open       int           `json:"open"`
	Queued     int           `json:"queued"` // jobs handed out with no result yet
	Results    int           `json:"results"`
	Rejected   int           `json:"rejected"`
	Canaries   int           `json:"canaries"`
	Pairs      int64         `json:"pairs"` // pairs verified this session
	Elapsed    time.Duration `json:"elapsed"`
	Throughput float64       `json:"throughput"` // pairs verified per second this session
	Clients    int           `json:"clients,omitempty"`
	Done       bool          `json:"done"`
}

// canary is an item the pool scored itself.
type canary struct {
	Image   string  `json:"image"`
	Size    int64   `json:"size"`
	Caption string  `json:"caption"`
	Score   float32 `json:"score"`
	Width   int     `json:"width"`
	Height  int     `json:"height"`
}

// groupItem is one pair of the dataset in a group, with what the output needs of it.
type groupItem struct {
	Source  string            `json:"source"`
	Key     string            `json:"key"`
	UID     string            `json:"uid"`
	URL     string            `json:"url,omitempty"`
	Caption string            `json:"caption"`
	Extra   map[string]string `json:"extra,omitempty"`
	Image   string            `json:"image"`
	Offset  int64             `json:"offset"` // in the group's shard
	Size    int64             `json:"size"`
}

// groupCanary is a canary mixed into a group: which one and where its image lies in the
// group's shard.
type groupCanary struct {
	Canary int   `json:"canary"`
	Offset int64 `json:"offset"`
}

// groupRecord is a group as the ledger keeps it.
type groupRecord struct {
	Shard     string        `json:"shard"`
	ShardSize int64         `json:"shard_size"`
	Items     []groupItem   `json:"items"`
	Canaries  []groupCanary `json:"canaries,omitempty"`
}

// slot says what a job's item is: an item of the group (Item ≥ 0) or a canary.
type slot struct {
	Item   int `json:"i"`
	Canary int `json:"c"`
}

// jobRecord is a job as the ledger keeps it: the message and the pool's own key to it.
type jobRecord struct {
	Job   Job    `json:"job"`
	Slots []slot `json:"slots"`
}

type jobState struct {
	rec       jobRecord
	group     string
	replica   int
	published time.Time
	seq       uint64 // its message in the jobs stream, when published in this session
}

type resultState struct {
	rec    storage.PoolResult
	res    Result
	job    *jobState
	reason string // why it fails the checks; "" when it passes
}

type group struct {
	id      string
	rec     groupRecord
	items   []groupItem // rec.Items
	jobs    []*jobState
	results []*resultState
}

// Pool hands a run's datasets out to workers and verifies what comes back.
type Pool struct {
	o   Options
	log *slog.Logger
	srv *Server
	nc  *nats.Conn
	js  jetstream.JetStream
	obs jetstream.ObjectStore

	id    string // this pool's id, kept in the ledger
	ready chan struct{}
	url   string

	mu        sync.Mutex
	rng       *mrand.Rand
	groups    map[string]*group
	jobs      map[string]*jobState
	closed    map[string]bool // jobs of groups verified in this session
	workers   map[string]*storage.PoolWorker
	credits   map[string]*CreditNote // by lower-case address, over every run
	canaries  []canary
	canaryImg [][]byte // the canaries' image bytes, for the shards
	calRate   float64  // pairs per second the pool scored its canaries at
	objects   map[string]bool
	nGroups   int
	read      int64
	readAll   bool
	verified  int
	results   int
	rejected  int
	pairs     int64
	started   time.Time
	space     chan struct{} // signalled when a group is verified
	changed   chan struct{} // signalled on every decision
}

// New checks the options; Serve does the work.
func New(o Options) (*Pool, error) {
	if o.Ledger == nil || o.Scorer == nil || o.Run == 0 {
		return nil, errors.New("new pool: a ledger, a scorer and a run are required")
	}
	if o.NATSURL == "" && o.DataDir == "" {
		return nil, errors.New("new pool: a data folder is required for the embedded server")
	}
	if o.JobSize <= 0 {
		o.JobSize = DefaultJobSize
	}
	if o.Canaries == 0 {
		o.Canaries = DefaultCanaries
	}
	if o.Canaries < 0 {
		o.Canaries = 0
	}
	if o.CanarySet <= 0 {
		o.CanarySet = DefaultCanarySet
	}
	if o.CanarySet < o.Canaries {
		o.CanarySet = o.Canaries
	}
	if o.AckWait <= 0 {
		o.AckWait = DefaultAckWait
	}
	if o.Tolerance <= 0 {
		o.Tolerance = DefaultTolerance
	}
	if o.MinReplication <= 0 {
		o.MinReplication = DefaultMinReplication
	}
	if o.MaxOpenGroups <= 0 {
		o.MaxOpenGroups = DefaultMaxOpenGroups
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	seed := o.Seed
	if seed == 0 {
		var b [8]byte
		rand.Read(b[:])
		for _, x := range b {
			seed = seed<<8 | uint64(x)
		}
	}
	return &Pool{
		o: o, log: o.Logger, ready: make(chan struct{}), rng: mrand.New(mrand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		groups: map[string]*group{}, jobs: map[string]*jobState{}, closed: map[string]bool{},
		workers: map[string]*storage.PoolWorker{}, credits: map[string]*CreditNote{}, objects: map[string]bool{},
		space: make(chan struct{}, 1), changed: make(chan struct{}, 1),
	}, nil
}

// Ready is closed once the pool takes workers.
func (p *Pool) Ready() <-chan struct{} { return p.ready }

// URL is where workers connect (valid once Ready is closed).
func (p *Pool) URL() string { return p.url }

// Serve runs the pool until every item of the sources has a verified result (it returns
// nil; the run's results are then complete), ctx ends, or it fails. Serve again on the same
// ledger and data folder goes on where it stopped.
func (p *Pool) Serve(ctx context.Context) error {
	p.started = time.Now()
	if err := p.connect(); err != nil {
		return err
	}
	defer p.close()
	if err := p.setup(ctx); err != nil {
		return err
	}
	if err := p.load(ctx); err != nil {
		return err
	}
	close(p.ready)
	p.log.Info("pool ready", "url", p.url, "run", p.o.Run, "open_groups", len(p.groups))

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := p.consume(ctx); err != nil && ctx.Err() == nil {
			cancel(err)
		}
	})
	wg.Go(func() {
		if err := p.cut(ctx); err != nil && ctx.Err() == nil {
			cancel(err)
		}
	})
	err := p.waitDone(ctx)
	cancel(err)
	wg.Wait()
	if err != nil {
		if c := context.Cause(ctx); c != nil && !errors.Is(c, context.Canceled) {
			return c
		}
		return err
	}
	p.report()
	return nil
}

// waitDone returns nil once every group is verified and the sources are read.
func (p *Pool) waitDone(ctx context.Context) error {
	for {
		p.mu.Lock()
		done := p.readAll && len(p.groups) == 0
		p.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			if c := context.Cause(ctx); c != nil {
				return c
			}
			return ctx.Err()
		case <-p.changed:
		case <-time.After(time.Second):
		}
	}
}

func (p *Pool) connect() error {
	opts := []nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(250 * time.Millisecond)}
	if p.o.NATSURL != "" {
		nc, err := nats.Connect(p.o.NATSURL, append(opts, nats.Name("gata-pool"), nats.RetryOnFailedConnect(false))...)
		if err != nil {
			return fmt.Errorf("connect to %s: %w", p.o.NATSURL, err)
		}
		p.nc, p.url = nc, p.o.NATSURL
		return nil
	}
	srv, err := StartServer(ServerOptions{Listen: p.o.Listen, StoreDir: StoreDir(p.o.DataDir), TLSCertFile: p.o.TLSCertFile,
		TLSKeyFile: p.o.TLSKeyFile, Tokens: p.o.Ledger, Logger: p.log})
	if err != nil {
		return err
	}
	nc, err := srv.Connect(opts...)
	if err != nil {
		srv.Shutdown()
		return err
	}
	p.srv, p.nc, p.url = srv, nc, srv.URL()
	return nil
}

func (p *Pool) close() {
	if p.nc != nil {
		p.nc.FlushTimeout(2 * time.Second) // the last credit notes
		p.nc.Close()
	}
	if p.srv != nil {
		p.srv.Shutdown()
	}
}

// setup creates the streams, the consumers and the images bucket (or finds them).
func (p *Pool) setup(ctx context.Context) error {
	js, err := jetstream.New(p.nc)
	if err != nil {
		return fmt.Errorf("open JetStream: %w", err)
	}
	p.js = js
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: JobsStream, Subjects: []string{JobsSubjectPrefix + ">"},
		Retention: jetstream.WorkQueuePolicy, Storage: jetstream.FileStorage, Duplicates: 10 * time.Minute}); err != nil {
		return fmt.Errorf("create the jobs stream: %w", err)
	}
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: ResultsStream, Subjects: []string{ResultsSubjectPrefix + ">"},
		Retention: jetstream.WorkQueuePolicy, Storage: jetstream.FileStorage, Duplicates: 10 * time.Minute}); err != nil {
		return fmt.Errorf("create the results stream: %w", err)
	}
	if _, err := js.CreateOrUpdateConsumer(ctx, JobsStream, jetstream.ConsumerConfig{Durable: WorkerConsumer(TypeDVA),
		FilterSubject: JobsSubjectPrefix + TypeDVA, AckPolicy: jetstream.AckExplicitPolicy, AckWait: p.o.AckWait,
		MaxDeliver: -1, MaxAckPending: 100000, MaxWaiting: 4096}); err != nil {
		return fmt.Errorf("create the workers' consumer: %w", err)
	}
	if p.obs, err = js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: ImagesBucket, Storage: jetstream.FileStorage}); err != nil {
		return fmt.Errorf("create the images bucket: %w", err)
	}
	return nil
}

const (
	metaID       = "id"
	metaURL      = "url"
	metaCanaries = "canaries-"
	metaCalRate  = "calibration-"
)

// load reads the ledger: the pool's id, the canaries, the workers' standing, and the open
// groups with their jobs and results; jobs never published are published now.
func (p *Pool) load(ctx context.Context) error {
	l := p.o.Ledger
	id, err := l.PoolMeta(ctx, metaID)
	if err != nil {
		return err
	}
	if id == "" {
		var b [4]byte
		rand.Read(b[:])
		id = hex.EncodeToString(b[:])
		if err := l.SetPoolMeta(ctx, metaID, id); err != nil {
			return err
		}
	}
	p.id = id
	if err := l.SetPoolMeta(ctx, metaURL, p.url); err != nil {
		return err
	}
	objs, err := p.obs.List(ctx)
	if err != nil && !errors.Is(err, jetstream.ErrNoObjectsFound) {
		return fmt.Errorf("list the images bucket: %w", err)
	}
	for _, o := range objs {
		p.objects[o.Name] = true
	}
	run := fmt.Sprint(p.o.Run)
	if s, err := l.PoolMeta(ctx, metaCanaries+run); err != nil {
		return err
	} else if s != "" {
		if err := json.Unmarshal([]byte(s), &p.canaries); err != nil {
			return fmt.Errorf("read the canaries of run %d: %w", p.o.Run, err)
		}
		if s, _ := l.PoolMeta(ctx, metaCalRate+run); s != "" {
			fmt.Sscan(s, &p.calRate)
		}
		for _, c := range p.canaries {
			b, err := p.obs.GetBytes(ctx, c.Image)
			if err != nil {
				return fmt.Errorf("read canary image %s: %w", c.Image, err)
			}
			p.canaryImg = append(p.canaryImg, b)
		}
	}
	ws, err := l.PoolWorkers(ctx)
	if err != nil {
		return err
	}
	for i := range ws {
		p.workers[strings.ToLower(ws[i].Address)] = &ws[i]
	}
	cs, err := l.PoolCredits(ctx, 0)
	if err != nil {
		return err
	}
	for _, c := range cs {
		p.credits[strings.ToLower(c.Worker)] = &CreditNote{Worker: c.Worker, Pending: c.Pending, Confirmed: c.Confirmed, Rejected: c.Rejected}
	}
	if p.read, p.readAll, err = l.PoolCursor(ctx, p.o.Run); err != nil {
		return err
	}
	all, err := l.PoolGroups(ctx, p.o.Run, "")
	if err != nil {
		return err
	}
	p.nGroups = len(all)
	for _, sg := range all {
		if sg.State != storage.GroupOpen {
			continue
		}
		g := &group{id: sg.ID}
		if err := json.Unmarshal(sg.Items, &g.rec); err != nil {
			return fmt.Errorf("read pool group %s: %w", sg.ID, err)
		}
		g.items = g.rec.Items
		p.groups[g.id] = g
	}
	jobs, err := l.PoolJobs(ctx, p.o.Run)
	if err != nil {
		return err
	}
	var unpublished []*jobState
	for _, sj := range jobs {
		g := p.groups[sj.Group]
		if g == nil {
			continue
		}
		js := &jobState{group: sj.Group, replica: sj.Replica, published: sj.Published}
		if err := json.Unmarshal(sj.Body, &js.rec); err != nil {
			return fmt.Errorf("read pool job %s: %w", sj.ID, err)
		}
		g.jobs = append(g.jobs, js)
		p.jobs[sj.ID] = js
		if sj.State == storage.JobNew {
			unpublished = append(unpublished, js)
		}
	}
	for _, g := range p.groups {
		rs, err := l.PoolResultsOf(ctx, g.id)
		if err != nil {
			return err
		}
		for _, r := range rs {
			st := &resultState{rec: r, job: p.jobs[r.Job]}
			if err := json.Unmarshal(r.Body, &st.res); err != nil || st.job == nil {
				continue
			}
			if r.State == storage.ResultPending {
				st.reason = p.check(g, st.job, &st.res, r.Received)
			} else {
				st.reason = r.Reason
			}
			g.results = append(g.results, st)
		}
	}
	for _, js := range unpublished {
		if err := p.publish(ctx, js); err != nil {
			return err
		}
	}
	// A decision interrupted by a stop is taken again.
	for _, g := range p.groups {
		if err := p.settle(ctx, g); err != nil {
			return err
		}
	}
	return nil
}

// publish puts a job on the jobs stream (deduplicated by its id) and records it.
func (p *Pool) publish(ctx context.Context, js *jobState) error {
	body, err := json.Marshal(js.rec.Job)
	if err != nil {
		return fmt.Errorf("encode job %s: %w", js.rec.Job.ID, err)
	}
	for attempt := 0; ; attempt++ {
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		var ack *jetstream.PubAck
		ack, err = p.js.Publish(pctx, JobsSubjectPrefix+TypeDVA, body, jetstream.WithMsgID(js.rec.Job.ID))
		cancel()
		if err == nil {
			p.mu.Lock()
			js.seq = ack.Sequence
			p.mu.Unlock()
			break
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		p.log.Warn("publish a job; trying again", "job", js.rec.Job.ID, "err", err)
		time.Sleep(min(time.Duration(attempt+1)*200*time.Millisecond, 2*time.Second))
	}
	js.published = time.Now()
	return p.o.Ledger.MarkPoolJobPublished(ctx, js.rec.Job.ID)
}

// Status returns the pool's state now.
func (p *Pool) Status() Status {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := Status{Run: p.o.Run, URL: p.url, Read: p.read, ReadAll: p.readAll, Groups: p.nGroups, Open: len(p.groups),
		Results: p.results, Rejected: p.rejected, Canaries: len(p.canaries), Pairs: p.pairs, Elapsed: time.Since(p.started)}
	s.Verified = s.Groups - s.Open
	for _, g := range p.groups {
		s.Queued += len(outstanding(g))
	}
	if el := s.Elapsed.Seconds(); el > 0 {
		s.Throughput = float64(s.Pairs) / el
	}
	if p.srv != nil {
		s.Clients = p.srv.Clients()
	}
	s.Done = p.readAll && len(p.groups) == 0
	return s
}

func (p *Pool) report() {
	select {
	case p.changed <- struct{}{}:
	default:
	}
	if p.o.Progress != nil {
		p.o.Progress(p.Status())
	}
}

// newID returns n random bytes as hex.
func newID(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// newJob builds a copy of g for workers: the group's items and its canaries, shuffled,
// under fresh random ids, excluding the workers that already answered the group.
// p.mu must be held.
func (p *Pool) newJob(g *group, replica int) *jobState {
	slots := make([]slot, 0, len(g.items)+len(g.rec.Canaries))
	for i := range g.items {
		slots = append(slots, slot{Item: i, Canary: -1})
	}
	for k := range g.rec.Canaries {
		slots = append(slots, slot{Item: -1, Canary: k})
	}
	p.rng.Shuffle(len(slots), func(i, j int) { slots[i], slots[j] = slots[j], slots[i] })
	job := Job{ID: fmt.Sprintf("%s-%s", g.id, fmt.Sprint(replica)), Type: TypeDVA, Model: p.o.Model, ModelSHA256: p.o.ModelSHA256,
		Shard: g.rec.Shard, ShardSize: g.rec.ShardSize, AckWaitMS: p.o.AckWait.Milliseconds(), Issued: time.Now().UTC()}
	seen := map[string]bool{}
	for _, r := range g.results {
		a := strings.ToLower(r.rec.Worker)
		if !seen[a] {
			seen[a] = true
			job.Exclude = append(job.Exclude, r.rec.Worker)
		}
	}
	ids := map[string]bool{}
	for _, s := range slots {
		id := newID(5)
		for ids[id] {
			id = newID(5)
		}
		ids[id] = true
		it := JobItem{ID: id}
		if s.Item >= 0 {
			gi := g.items[s.Item]
			it.Image, it.Offset, it.Size, it.Caption = gi.Image, gi.Offset, gi.Size, gi.Caption
		} else {
			gc := g.rec.Canaries[s.Canary]
			c := p.canaries[gc.Canary]
			it.Image, it.Offset, it.Size, it.Caption = c.Image, gc.Offset, c.Size, c.Caption
		}
		job.Items = append(job.Items, it)
	}
	return &jobState{rec: jobRecord{Job: job, Slots: slots}, group: g.id, replica: replica}
}

func (js *jobState) storage(run int64) (storage.PoolJob, error) {
	body, err := json.Marshal(js.rec)
	if err != nil {
		return storage.PoolJob{}, fmt.Errorf("encode job %s: %w", js.rec.Job.ID, err)
	}
	return storage.PoolJob{ID: js.rec.Job.ID, Group: js.group, Run: run, Replica: js.replica, Body: body}, nil
}

// imageName is the name of image bytes in the bucket: their hex sha256.
func imageName(data []byte) string {
	h := sha256.Sum256(data)
	return hex.EncodeToString(h[:])
}

// putImage puts image bytes in the bucket under their sha256 unless they are there (the
// bucket's names are read at start).
func (p *Pool) putImage(ctx context.Context, data []byte) (string, error) {
	name := imageName(data)
	p.mu.Lock()
	known := p.objects[name]
	p.mu.Unlock()
	if known {
		return name, nil
	}
	if _, err := p.obs.PutBytes(ctx, name, data); err != nil {
		return "", fmt.Errorf("put image %s: %w", name, err)
	}
	p.mu.Lock()
	p.objects[name] = true
	p.mu.Unlock()
	return name, nil
}

// dropShard deletes a verified group's image shard from the bucket unless an open group's
// jobs use the same bytes or it is a canary's image. A worker still on one of its jobs has the shard already, or fails
// the job, whose result nobody waits for.
func (p *Pool) dropShard(ctx context.Context, name string) {
	if name == "" {
		return
	}
	p.mu.Lock()
	for _, c := range p.canaries {
		if c.Image == name { // a one-pair shard that is a canary's image: kept for a restart
			p.mu.Unlock()
			return
		}
	}
	for _, g := range p.groups {
		if g.rec.Shard == name {
			p.mu.Unlock()
			return
		}
	}
	delete(p.objects, name)
	p.mu.Unlock()
	if err := p.obs.Delete(ctx, name); err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) && ctx.Err() == nil {
		p.log.Warn("delete a verified group's images", "shard", name, "err", err)
	}
}

// withdraw takes the messages of jobs no longer needed off the jobs stream, so no worker
// spends time on them (one already taken just comes back late).
func (p *Pool) withdraw(ctx context.Context, seqs []uint64) {
	if len(seqs) == 0 {
		return
	}
	st, err := p.js.Stream(ctx, JobsStream)
	if err != nil {
		return
	}
	for _, seq := range seqs {
		st.DeleteMsg(ctx, seq)
	}
}

// credit moves n pairs of a worker's credit between states ("" for none) and returns the
// worker's note. p.mu must be held.
func (p *Pool) credit(addr string, n int64, from, to string) CreditNote {
	k := strings.ToLower(addr)
	c := p.credits[k]
	if c == nil {
		c = &CreditNote{Worker: addr}
		p.credits[k] = c
	}
	for _, x := range []struct {
		state string
		d     int64
	}{{from, -n}, {to, n}} {
		switch x.state {
		case storage.ResultPending:
			c.Pending += x.d
		case storage.ResultConfirmed:
			c.Confirmed += x.d
		case storage.ResultRejected:
			c.Rejected += x.d
		}
	}
	return *c
}

// tellCredits sends workers their credit notes (core NATS: a note missed is made up by
// the next one).
func (p *Pool) tellCredits(notes map[string]CreditNote) {
	for k, n := range notes {
		b, err := json.Marshal(n)
		if err == nil {
			p.nc.Publish(CreditsSubjectPrefix+k, b)
		}
	}
}
