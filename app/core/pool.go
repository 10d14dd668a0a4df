package core

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gata-contrib/gata/agent/pool"
	"github.com/gata-contrib/gata/dva/pipeline"
	"github.com/gata-contrib/gata/storage"
)

// PoolLedger is the pool's part of the database; storage.Store satisfies it.
type PoolLedger interface {
	pool.Ledger
	PoolCounts(ctx context.Context, run int64) (storage.PoolCounts, error)
	PoolCredits(ctx context.Context, run int64) ([]storage.PoolCredit, error)
	PoolRejected(ctx context.Context, limit int) ([]storage.PoolResult, error)
	AddPoolInvite(ctx context.Context, tokenSHA256, name string) error
}

// Pool types as the screens and the CLI show them.
type (
	// PoolProgress is the state of a running pool.
	PoolProgress = pool.Status
	// PoolCredit sums a worker's credits.
	PoolCredit = storage.PoolCredit
	// PoolCounts count a pool run's groups, jobs and results.
	PoolCounts = storage.PoolCounts
)

// ErrNoPool: the database keeps no pool ledger, or no pool has run yet.
var ErrNoPool = errors.New("no pool")

// PoolRequest starts `gata pool`: the datasets to hand out, the model, and where the
// verified scores go.
type PoolRequest struct {
	Sources []string `json:"sources"`
	Model   string   `json:"model"`
	// Out is the output folder (default: exports/pool-<run> in the data folder).
	Out string `json:"out"`
	// Listen is the embedded NATS server's address (default 127.0.0.1:4222; port 0 picks
	// one); NATS joins an existing NATS with JetStream instead.
	Listen          string `json:"listen,omitempty"`
	NATS            string `json:"nats,omitempty"`
	TLSCert, TLSKey string `json:"-"`
	// KeepTop and MinScore choose what the export keeps, as for `gata dva run`.
	KeepTop  float64  `json:"keep_top,omitempty"`
	MinScore *float64 `json:"min_score,omitempty"`
	// JobSize, Canaries, CanarySet and AckWait tune the pool (0: its defaults).
	JobSize   int           `json:"job_size,omitempty"`
	Canaries  int           `json:"canaries,omitempty"`
	CanarySet int           `json:"canary_set,omitempty"`
	AckWait   time.Duration `json:"-"`
}

// poolRunOptions is what a pool run keeps in the database (the run's options).
type poolRunOptions struct {
	runOptions
	Pool bool `json:"pool"`
}

// PoolResult is what a finished pool run did.
type PoolResult struct {
	Run     RunInfo          `json:"run"`
	Summary pipeline.Summary `json:"summary"`
	Status  PoolProgress     `json:"status"`
}

func (c *Core) poolLedger() (PoolLedger, error) {
	l, ok := c.store.(PoolLedger)
	if !ok {
		return nil, fmt.Errorf("%w: the database keeps no pool ledger", ErrNoPool)
	}
	return l, nil
}

// RunPool runs a pool until every item of the sources has a verified score, then exports
// the run like `gata dva run` does. A pool stopped before the end goes on where it stopped
// when started again over the same sources and model. ready is called with the workers'
// address once the pool takes them; progress after every change.
func (c *Core) RunPool(ctx context.Context, req PoolRequest, ready func(url string), progress func(PoolProgress)) (PoolResult, error) {
	var out PoolResult
	if c.opts.Models == nil || c.opts.LoadEngine == nil {
		return out, ErrNoValidate
	}
	ledger, err := c.poolLedger()
	if err != nil {
		return out, err
	}
	rs, _ := c.runsStore()
	if len(req.Sources) == 0 {
		return out, fmt.Errorf("%w: no dataset given (--dataset)", ErrBadRun)
	}
	if req.KeepTop != 0 && !(req.KeepTop > 0 && req.KeepTop <= 1) {
		return out, fmt.Errorf("%w: --keep-top %v is not in (0, 1]", ErrBadRun, req.KeepTop)
	}
	specs := make([]string, len(req.Sources))
	var srcs []pipeline.Source
	srcOpts := pipeline.SourceOptions{Fetch: pipeline.FetchOptions{Version: c.opts.Version}}
	for i, s := range req.Sources {
		specs[i] = absSpec(s)
		ss, err := pipeline.Open(specs[i], srcOpts)
		if err != nil {
			return out, fmt.Errorf("%w: %v", ErrBadRun, err)
		}
		srcs = append(srcs, ss...)
	}
	model, err := c.modelName(ctx, req.Model)
	if err != nil {
		return out, err
	}
	if strings.ContainsAny(model, `/\`) {
		model = absSpec(model)
	}
	dir, err := c.opts.Models.Resolve(model)
	if err != nil {
		return out, err
	}
	run, opts, err := c.poolRun(ctx, rs, specs, model, dir, req)
	if err != nil {
		return out, err
	}
	e, err := c.engine(ctx, dir)
	if err != nil {
		return out, err
	}
	scorer, ok := e.(pipeline.Scorer)
	if !ok {
		return out, errors.New("the loaded model cannot score batches")
	}
	fetcher := pipeline.NewFetcher(srcOpts.Fetch)
	defer fetcher.CloseIdleConnections()
	p, err := pool.New(pool.Options{
		Ledger: ledger, Run: run.ID, Sources: srcs, Model: model, ModelSHA256: run.ModelSHA256, Scorer: scorer,
		Fetch: fetcher.Fetch, DataDir: c.opts.DataDir, Listen: req.Listen, NATSURL: req.NATS,
		TLSCertFile: req.TLSCert, TLSKeyFile: req.TLSKey, JobSize: req.JobSize, Canaries: req.Canaries,
		CanarySet: req.CanarySet, AckWait: req.AckWait, Logger: c.log, Progress: progress,
	})
	if err != nil {
		return out, err
	}
	go func() {
		select {
		case <-p.Ready():
			if ready != nil {
				ready(p.URL())
			}
		case <-ctx.Done():
		}
	}()
	started := time.Now()
	if err := p.Serve(ctx); err != nil {
		c.endRun(rs, run.ID, err)
		return out, err
	}
	out.Status = p.Status()
	sum, err := c.exportRun(ctx, rs, run, opts.runOptions, srcs, fetcher.Fetch, map[string]float64{"score": time.Since(started).Seconds()})
	if err != nil {
		c.endRun(rs, run.ID, err)
		return out, err
	}
	c.endRun(rs, run.ID, nil)
	out.Summary = sum
	if out.Run, err = c.runInfo(ctx, rs, run.ID); err != nil {
		return out, err
	}
	return out, nil
}

// poolRun finds the unfinished pool run over the same sources and model, or records a new one.
func (c *Core) poolRun(ctx context.Context, rs RunStore, specs []string, model, dir string, req PoolRequest) (storage.DVARun, poolRunOptions, error) {
	runs, err := rs.Runs(ctx, 200)
	if err != nil {
		return storage.DVARun{}, poolRunOptions{}, err
	}
	for _, r := range runs {
		var o poolRunOptions
		if r.State == storage.RunDone || json.Unmarshal(r.Options, &o) != nil || !o.Pool {
			continue
		}
		if slices.Equal(r.Sources, specs) && o.ModelDir == dir {
			if err := rs.UpdateRun(ctx, r.ID, storage.RunRunning, "", time.Time{}); err != nil {
				return r, o, err
			}
			c.log.Info("pool goes on with its run", "run", r.ID)
			if req.Out != "" {
				if r.OutDir, err = filepath.Abs(req.Out); err != nil {
					return r, o, fmt.Errorf("output folder: %w", err)
				}
			}
			if r.OutDir == "" {
				r.OutDir = defaultPoolOut(c.opts.DataDir, r.ID)
			}
			return r, o, nil
		}
	}
	o := poolRunOptions{runOptions: runOptions{KeepTop: req.KeepTop, MinScore: req.MinScore, ModelDir: dir}, Pool: true}
	b, err := json.Marshal(o)
	if err != nil {
		return storage.DVARun{}, o, fmt.Errorf("start pool run: %w", err)
	}
	run := storage.DVARun{Sources: specs, Model: model, Options: b}
	if sp, err := c.opts.Models.Spec(model); err == nil {
		run.ModelSHA256 = sp.SHA256
	}
	if req.Out != "" {
		if run.OutDir, err = filepath.Abs(req.Out); err != nil {
			return run, o, fmt.Errorf("output folder: %w", err)
		}
	}
	if run.ID, err = rs.CreateRun(ctx, run); err != nil {
		return run, o, err
	}
	if run.OutDir == "" {
		// The default output folder names the run, known only now.
		run.OutDir = defaultPoolOut(c.opts.DataDir, run.ID)
	}
	return run, o, nil
}

// defaultPoolOut is the output folder of a pool run that names none.
func defaultPoolOut(dataDir string, run int64) string {
	return filepath.Join(dataDir, "exports", "pool-"+strconv.FormatInt(run, 10))
}

// exportRun writes a run's outputs into its folder, as `gata dva run` does.
func (c *Core) exportRun(ctx context.Context, rs RunStore, run storage.DVARun, opts runOptions, srcs []pipeline.Source,
	fetch pipeline.FetchFunc, timings map[string]float64) (pipeline.Summary, error) {
	var filter *pipeline.BasicFilter
	if opts.BasicFilter {
		f := pipeline.DefaultBasicFilter()
		filter = &f
	}
	eo := pipeline.ExportOptions{Dir: run.OutDir, KeepFraction: opts.KeepTop, Filter: filter,
		Images: pipeline.SourceImages(srcs, fetch), Model: run.Model, ModelSHA256: run.ModelSHA256, Sources: run.Sources,
		Timings: timings}
	if opts.MinScore != nil {
		m := float32(*opts.MinScore)
		eo.MinScore = &m
	}
	sum, err := pipeline.Export(ctx, eo, func(fn func(pipeline.Result) error) error {
		return rs.EachResult(ctx, run.ID, func(r storage.DVAResult) error { return fn(fromStorage(r)) })
	})
	if err != nil {
		return sum, fmt.Errorf("export run %d: %w", run.ID, err)
	}
	return sum, nil
}

// Invite is a worker credential and how to use it.
type Invite struct {
	Name  string `json:"name"`
	Token string `json:"token"`
	// URL is the pool's address with the credential in it: `gata worker --pool URL`.
	URL string `json:"url"`
}

// PoolInvite issues a worker credential. The pool's address is addr when given, else the
// one the pool last listened on, else the default.
func (c *Core) PoolInvite(ctx context.Context, name, addr string) (Invite, error) {
	ledger, err := c.poolLedger()
	if err != nil {
		return Invite{}, err
	}
	tok, sum, err := pool.NewToken()
	if err != nil {
		return Invite{}, err
	}
	if name == "" {
		name = "worker-" + sum[:6]
	}
	if err := ledger.AddPoolInvite(ctx, sum, name); err != nil {
		return Invite{}, err
	}
	if addr == "" {
		if addr, err = ledger.PoolMeta(ctx, "url"); err != nil {
			return Invite{}, err
		}
	}
	if addr == "" {
		addr = "nats://" + pool.DefaultListen
	}
	u, err := poolURL(addr)
	if err != nil {
		return Invite{}, err
	}
	u.User = url.User(tok)
	return Invite{Name: name, Token: tok, URL: u.String()}, nil
}

// poolURL reads a pool address: a nats:// or tls:// URL, or host:port.
func poolURL(addr string) (*url.URL, error) {
	if !strings.Contains(addr, "://") {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, fmt.Errorf("pool address %q: want host:port or a nats:// URL", addr)
		}
		addr = "nats://" + addr
	}
	u, err := url.Parse(addr)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("pool address %q: want host:port or a nats:// URL", addr)
	}
	return u, nil
}

// PoolState is what `gata pool status` and the pool page show: the newest pool run, its
// counts, the workers' credits and the latest rejected results.
type PoolState struct {
	Run      RunInfo          `json:"run"`
	URL      string           `json:"url,omitempty"`
	Counts   PoolCounts       `json:"counts"`
	Credits  []PoolCredit     `json:"credits"`
	Rejected []RejectedResult `json:"rejected"`
}

// RejectedResult is a result the pool refused, and why.
type RejectedResult struct {
	Job     string    `json:"job"`
	Worker  string    `json:"worker"`
	Reason  string    `json:"reason"`
	Credits int64     `json:"credits"`
	Decided time.Time `json:"decided"`
}

// PoolState reads the ledger of the newest pool run (it works while the pool runs in
// another process).
func (c *Core) PoolState(ctx context.Context) (PoolState, error) {
	var st PoolState
	ledger, err := c.poolLedger()
	if err != nil {
		return st, err
	}
	rs, _ := c.runsStore()
	runs, err := rs.Runs(ctx, 200)
	if err != nil {
		return st, err
	}
	var run *storage.DVARun
	for i, r := range runs {
		var o poolRunOptions
		if json.Unmarshal(r.Options, &o) == nil && o.Pool {
			run = &runs[i]
			break
		}
	}
	if run == nil {
		return st, fmt.Errorf("%w has run in this data folder yet", ErrNoPool)
	}
	if st.Run, err = c.runInfo(ctx, rs, run.ID); err != nil {
		return st, err
	}
	if st.URL, err = ledger.PoolMeta(ctx, "url"); err != nil {
		return st, err
	}
	if st.Counts, err = ledger.PoolCounts(ctx, run.ID); err != nil {
		return st, err
	}
	if st.Credits, err = ledger.PoolCredits(ctx, 0); err != nil {
		return st, err
	}
	rej, err := ledger.PoolRejected(ctx, 50)
	if err != nil {
		return st, err
	}
	for _, r := range rej {
		st.Rejected = append(st.Rejected, RejectedResult{Job: r.Job, Worker: r.Worker, Reason: r.Reason, Credits: r.Credits, Decided: r.Decided})
	}
	return st, nil
}
