package core

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gata-contrib/gata/dva/pipeline"
	"github.com/gata-contrib/gata/storage"
)

// RunStore keeps batch scoring runs and their results; storage.Store satisfies it.
type RunStore interface {
	CreateRun(ctx context.Context, r storage.DVARun) (int64, error)
	Run(ctx context.Context, id int64) (storage.DVARun, error)
	Runs(ctx context.Context, limit int) ([]storage.DVARun, error)
	UpdateRun(ctx context.Context, id int64, state, message string, finished time.Time) error
	Finished(ctx context.Context, run int64, refs []storage.ResultRef) ([]bool, error)
	SaveResults(ctx context.Context, run int64, rs []storage.DVAResult) error
	ClearFailed(ctx context.Context, run int64, reasons ...string) (int64, error)
	EachResult(ctx context.Context, run int64, fn func(storage.DVAResult) error) error
	RunCounts(ctx context.Context, run int64) (scored int64, byReason map[string]int64, err error)
}

// Errors of the run methods that callers branch on.
var (
	// ErrNoRun: no run has that id, or there is no unfinished run to resume.
	ErrNoRun = errors.New("no such run")
	// ErrBadRun: the request cannot start a run (no sources, no output folder, options out
	// of range, a resume that names other sources or another model).
	ErrBadRun = errors.New("bad run request")
)

// RunRequest starts a batch scoring run, or resumes one.
type RunRequest struct {
	// Sources are dataset paths or URLs, brace patterns allowed (pipeline.Open). Empty when
	// resuming: the run's own.
	Sources []string `json:"sources"`
	// Model is a known model's name or a model folder; empty: the validate.model setting
	// (or, when resuming, the run's model).
	Model string `json:"model"`
	// Out is the folder the outputs go to; empty when resuming: the run's.
	Out string `json:"out"`
	// KeepTop keeps the top fraction of the scores (DataComp's keep-top), in (0, 1]; 0
	// keeps every scored item unless MinScore is set.
	KeepTop float64 `json:"keep_top,omitempty"`
	// MinScore keeps only items scoring at least this much.
	MinScore *float64 `json:"min_score,omitempty"`
	// BasicFilter applies DataComp's basic filter (caption length, image size, aspect).
	BasicFilter bool `json:"basic_filter,omitempty"`
	// Resume names the run to go on with; 0 starts a new one.
	Resume int64 `json:"resume,omitempty"`
	// RetryFailed, with Resume, tries the run's failed items again.
	RetryFailed bool `json:"retry_failed,omitempty"`
	// FetchTimeout bounds one download of an image named by URL (0: 10 s).
	FetchTimeout time.Duration `json:"-"`
	// BatchSize, Workers and CommitEvery tune the runner (0: its defaults).
	BatchSize   int `json:"-"`
	Workers     int `json:"-"`
	CommitEvery int `json:"-"`
}

// runOptions is what a run keeps of its request in the database, to resume it alike.
type runOptions struct {
	KeepTop     float64  `json:"keep_top,omitempty"`
	MinScore    *float64 `json:"min_score,omitempty"`
	BasicFilter bool     `json:"basic_filter,omitempty"`
	ModelDir    string   `json:"model_dir,omitempty"`
}

// RunInfo is a run as the screens and the CLI list it.
type RunInfo struct {
	ID       int64            `json:"id"`
	State    string           `json:"state"`
	Sources  []string         `json:"sources"`
	Model    string           `json:"model"`
	Out      string           `json:"out"`
	Message  string           `json:"message,omitempty"`
	Created  time.Time        `json:"created"`
	Updated  time.Time        `json:"updated"`
	Finished time.Time        `json:"finished,omitzero"`
	Scored   int64            `json:"scored"`
	Failed   map[string]int64 `json:"failed"` // by reason
}

// RunResult is the result of a finished "dva.run" job.
type RunResult struct {
	Run     RunInfo          `json:"run"`
	Stats   pipeline.Stats   `json:"stats"`   // this session's counts
	Summary pipeline.Summary `json:"summary"` // what the export wrote
}

// RunSummary is a run with the summary of its last export, when there is one.
type RunSummary struct {
	RunInfo
	Summary *pipeline.Summary `json:"summary,omitempty"`
}

// runsStore returns the store's run methods.
func (c *Core) runsStore() (RunStore, error) { return c.store, nil }

// absSpec makes a local dataset path absolute, so a run started in one folder is found
// from another; URLs stay as they are.
func absSpec(s string) string {
	l := strings.ToLower(s)
	if strings.HasPrefix(l, "http://") || strings.HasPrefix(l, "https://") || strings.HasPrefix(l, "file://") {
		return s
	}
	if a, err := filepath.Abs(s); err == nil {
		return a
	}
	return s
}

// StartRun scores datasets: it opens the sources, records the run (or takes up the one
// Resume names), and starts a job of kind "dva.run" whose subject is the run's id. The job
// scores what the run has no result for yet, then exports the outcome into Out
// (scores.parquet, shards, uids.npy, summary.json). Cancelling the job stops it cleanly;
// StartRun with Resume set goes on where it stopped.
func (c *Core) StartRun(ctx context.Context, req RunRequest) (JobInfo, error) {
	if c.opts.Models == nil || c.opts.LoadEngine == nil {
		return JobInfo{}, ErrNoValidate
	}
	rs, err := c.runsStore()
	if err != nil {
		return JobInfo{}, err
	}
	if req.KeepTop != 0 && !(req.KeepTop > 0 && req.KeepTop <= 1) {
		return JobInfo{}, fmt.Errorf("%w: --keep-top %v is not in (0, 1]", ErrBadRun, req.KeepTop)
	}
	if req.MinScore != nil && !(*req.MinScore >= -1 && *req.MinScore <= 1) {
		return JobInfo{}, fmt.Errorf("%w: --min-score %v is not in [-1, 1]", ErrBadRun, *req.MinScore)
	}
	specs := make([]string, len(req.Sources))
	for i, s := range req.Sources {
		specs[i] = absSpec(s)
	}
	var run storage.DVARun
	var opts runOptions
	if req.Resume != 0 {
		run, err = rs.Run(ctx, req.Resume)
		if errors.Is(err, storage.ErrNotFound) {
			return JobInfo{}, fmt.Errorf("resume run %d: %w", req.Resume, ErrNoRun)
		}
		if err != nil {
			return JobInfo{}, err
		}
		if len(specs) > 0 && !slices.Equal(specs, run.Sources) {
			return JobInfo{}, fmt.Errorf("%w: run %d scored %s, not %s", ErrBadRun, run.ID, strings.Join(run.Sources, " "), strings.Join(specs, " "))
		}
		specs = run.Sources
		if len(run.Options) > 0 {
			if err := json.Unmarshal(run.Options, &opts); err != nil {
				return JobInfo{}, fmt.Errorf("resume run %d: read its options: %w", run.ID, err)
			}
		}
		// Options given again replace the stored ones: the threshold is the export's.
		if req.KeepTop != 0 || req.MinScore != nil {
			opts.KeepTop, opts.MinScore = req.KeepTop, req.MinScore
		}
		if req.BasicFilter {
			opts.BasicFilter = true
		}
		if req.Out != "" {
			run.OutDir = req.Out
		}
		if req.Model == "" {
			req.Model = run.Model
		}
	} else {
		if len(specs) == 0 {
			return JobInfo{}, fmt.Errorf("%w: no dataset given", ErrBadRun)
		}
		if req.Out == "" {
			return JobInfo{}, fmt.Errorf("%w: no output folder given (--out)", ErrBadRun)
		}
		run.OutDir = req.Out
		opts = runOptions{KeepTop: req.KeepTop, MinScore: req.MinScore, BasicFilter: req.BasicFilter}
	}
	if run.OutDir != "" {
		if run.OutDir, err = filepath.Abs(run.OutDir); err != nil {
			return JobInfo{}, fmt.Errorf("output folder: %w", err)
		}
	}

	var srcs []pipeline.Source
	srcOpts := pipeline.SourceOptions{Fetch: pipeline.FetchOptions{Version: c.opts.Version, Timeout: req.FetchTimeout}}
	for _, s := range specs {
		ss, err := pipeline.Open(s, srcOpts)
		if err != nil {
			return JobInfo{}, fmt.Errorf("%w: %v", ErrBadRun, err)
		}
		srcs = append(srcs, ss...)
	}
	model, err := c.modelName(ctx, req.Model)
	if err != nil {
		return JobInfo{}, err
	}
	if strings.ContainsAny(model, `/\`) {
		model = absSpec(model)
	}
	dir, err := c.opts.Models.Resolve(model)
	if err != nil {
		return JobInfo{}, err
	}
	if req.Resume != 0 && opts.ModelDir != "" && opts.ModelDir != dir {
		return JobInfo{}, fmt.Errorf("%w: run %d was scored with %s, not %s", ErrBadRun, run.ID, run.Model, model)
	}
	opts.ModelDir = dir
	optJSON, err := json.Marshal(opts)
	if err != nil {
		return JobInfo{}, fmt.Errorf("start run: %w", err)
	}

	if req.Resume == 0 {
		run.Sources, run.Model, run.Options = specs, model, optJSON
		if sp, err := c.opts.Models.Spec(model); err == nil {
			run.ModelSHA256 = sp.SHA256
		}
		if run.ID, err = rs.CreateRun(ctx, run); err != nil {
			return JobInfo{}, err
		}
	} else {
		if req.RetryFailed {
			if _, err := rs.ClearFailed(ctx, run.ID); err != nil {
				return JobInfo{}, err
			}
		}
		if err := rs.UpdateRun(ctx, run.ID, storage.RunRunning, "", time.Time{}); err != nil {
			return JobInfo{}, err
		}
	}

	fetcher := pipeline.NewFetcher(srcOpts.Fetch)
	title := "Scoring " + filepath.Base(specs[0])
	if len(specs) > 1 {
		title += fmt.Sprintf(" and %d more", len(specs)-1)
	}
	id := run.ID
	pauser := c.pausers.add(id) // before the job starts, so it can be paused at once
	job, err := c.jobs.Start(JobSpec{Kind: "dva.run", Title: title, Subject: strconv.FormatInt(id, 10),
		Run: func(ctx context.Context, report func(Progress)) (any, error) {
			defer c.pausers.remove(id)
			res, err := c.runJob(ctx, rs, run, opts, srcs, fetcher, req, pauser, report)
			c.endRun(rs, id, err)
			if err != nil {
				return nil, err
			}
			return res, nil
		}})
	if err != nil {
		c.pausers.remove(id)
		c.endRun(rs, id, err)
		return JobInfo{}, err
	}
	return job, nil
}

// runJob is the work of a "dva.run" job: score, then export.
func (c *Core) runJob(ctx context.Context, rs RunStore, run storage.DVARun, opts runOptions, srcs []pipeline.Source,
	fetcher *pipeline.Fetcher, req RunRequest, pauser *pipeline.Pauser, report func(Progress)) (*RunResult, error) {
	defer fetcher.CloseIdleConnections()
	e, err := c.engine(ctx, opts.ModelDir)
	if err != nil {
		return nil, err
	}
	scorer, ok := e.(pipeline.Scorer)
	if !ok {
		return nil, errors.New("the loaded model cannot score batches")
	}
	var filter *pipeline.BasicFilter
	if opts.BasicFilter {
		f := pipeline.DefaultBasicFilter()
		filter = &f
	}
	backend := e.Info().Backend
	started := time.Now()
	stats, err := pipeline.Run(ctx, pipeline.RunOptions{
		Sources: srcs, Store: runStoreAdapter{rs}, RunID: run.ID, Scorer: scorer, Fetch: fetcher.Fetch,
		Workers: req.Workers, BatchSize: req.BatchSize, CommitEvery: req.CommitEvery, Backend: backend, Filter: filter, Pauser: pauser,
		Progress: func(p pipeline.Progress) {
			// The job's rate and ETA are of this session: items done before are left out.
			total := p.Total - p.Skipped
			if p.Total < 0 {
				total = 0
			}
			msg := fmt.Sprintf("%d failed · %s", p.Failed, p.Backend)
			if p.Skipped > 0 {
				msg += fmt.Sprintf(" · %d done before", p.Skipped)
			}
			if p.Paused {
				msg += " · paused"
			}
			report(Progress{Done: p.Done - p.Skipped, Total: total, Unit: "items", Message: msg})
		},
	})
	if err != nil {
		return nil, err
	}
	scoring := time.Since(started)
	report(Progress{Done: stats.Scored + stats.Failed, Total: stats.Scored + stats.Failed, Unit: "items", Message: "exporting to " + run.OutDir})
	eo := pipeline.ExportOptions{Dir: run.OutDir, KeepFraction: opts.KeepTop, Filter: filter,
		Images: pipeline.SourceImages(srcs, fetcher.Fetch), Model: run.Model, ModelSHA256: run.ModelSHA256, Sources: run.Sources}
	if opts.MinScore != nil {
		m := float32(*opts.MinScore)
		eo.MinScore = &m
	}
	eo.Timings = map[string]float64{"score": scoring.Seconds()}
	sum, err := pipeline.Export(ctx, eo, func(fn func(pipeline.Result) error) error {
		return rs.EachResult(ctx, run.ID, func(r storage.DVAResult) error { return fn(fromStorage(r)) })
	})
	if err != nil {
		return nil, fmt.Errorf("export run %d: %w", run.ID, err)
	}
	info, err := c.runInfo(ctx, rs, run.ID)
	if err != nil {
		return nil, err
	}
	info.State = storage.RunDone
	return &RunResult{Run: info, Stats: stats, Summary: sum}, nil
}

// endRun records how the run's job ended.
func (c *Core) endRun(rs RunStore, id int64, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	state, msg, fin := storage.RunDone, "", time.Now()
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, ErrShuttingDown):
		state, msg, fin = storage.RunCancelled, fmt.Sprintf("stopped; resume with --resume %d", id), time.Time{}
	case err != nil:
		state, msg, fin = storage.RunFailed, err.Error(), time.Time{}
	}
	if uerr := rs.UpdateRun(ctx, id, state, msg, fin); uerr != nil {
		c.log.Warn("record the end of a run", "run", id, "err", uerr)
	}
}

// Runs lists the batch scoring runs, newest first.
func (c *Core) Runs(ctx context.Context) ([]RunInfo, error) {
	rs, err := c.runsStore()
	if err != nil {
		return nil, err
	}
	runs, err := rs.Runs(ctx, 200)
	if err != nil {
		return nil, err
	}
	out := make([]RunInfo, 0, len(runs))
	for _, r := range runs {
		info := runInfoOf(r)
		if info.Scored, info.Failed, err = rs.RunCounts(ctx, r.ID); err != nil {
			return nil, err
		}
		out = append(out, info)
	}
	return out, nil
}

// LastUnfinishedRun returns the newest run over the same sources (paths made absolute)
// that has not finished, for a resume that names no run.
func (c *Core) LastUnfinishedRun(ctx context.Context, sources []string) (RunInfo, error) {
	specs := make([]string, len(sources))
	for i, s := range sources {
		specs[i] = absSpec(s)
	}
	runs, err := c.Runs(ctx)
	if err != nil {
		return RunInfo{}, err
	}
	for _, r := range runs {
		if r.State != storage.RunDone && (len(specs) == 0 || slices.Equal(r.Sources, specs)) {
			return r, nil
		}
	}
	return RunInfo{}, fmt.Errorf("no unfinished run of %s to resume: %w", strings.Join(specs, " "), ErrNoRun)
}

// RunSummary returns a run, its counts, and the summary.json of its output folder when the
// run was exported.
func (c *Core) RunSummary(ctx context.Context, id int64) (RunSummary, error) {
	rs, err := c.runsStore()
	if err != nil {
		return RunSummary{}, err
	}
	info, err := c.runInfo(ctx, rs, id)
	if err != nil {
		return RunSummary{}, err
	}
	out := RunSummary{RunInfo: info}
	if info.Out != "" {
		if b, err := os.ReadFile(filepath.Join(info.Out, pipeline.SummaryFile)); err == nil {
			var s pipeline.Summary
			if json.Unmarshal(b, &s) == nil {
				out.Summary = &s
			}
		}
	}
	return out, nil
}

func (c *Core) runInfo(ctx context.Context, rs RunStore, id int64) (RunInfo, error) {
	r, err := rs.Run(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return RunInfo{}, fmt.Errorf("run %d: %w", id, ErrNoRun)
	}
	if err != nil {
		return RunInfo{}, err
	}
	info := runInfoOf(r)
	if info.Scored, info.Failed, err = rs.RunCounts(ctx, id); err != nil {
		return RunInfo{}, err
	}
	return info, nil
}

func runInfoOf(r storage.DVARun) RunInfo {
	return RunInfo{ID: r.ID, State: r.State, Sources: r.Sources, Model: r.Model, Out: r.OutDir, Message: r.Message,
		Created: r.Created, Updated: r.Updated, Finished: r.Finished, Failed: map[string]int64{}}
}

// runStoreAdapter is the storage's run results as a pipeline.ResultStore.
type runStoreAdapter struct{ rs RunStore }

func (a runStoreAdapter) Finished(ctx context.Context, run int64, refs []pipeline.Ref) ([]bool, error) {
	out := make([]storage.ResultRef, len(refs))
	for i, r := range refs {
		out[i] = storage.ResultRef{Source: r.Source, Key: r.Key}
	}
	return a.rs.Finished(ctx, run, out)
}

func (a runStoreAdapter) SaveResults(ctx context.Context, run int64, rs []pipeline.Result) error {
	out := make([]storage.DVAResult, len(rs))
	for i, r := range rs {
		out[i] = toStorage(r)
	}
	return a.rs.SaveResults(ctx, run, out)
}

func (a runStoreAdapter) EachResult(ctx context.Context, run int64, fn func(pipeline.Result) error) error {
	return a.rs.EachResult(ctx, run, func(r storage.DVAResult) error { return fn(fromStorage(r)) })
}

func toStorage(r pipeline.Result) storage.DVAResult {
	return storage.DVAResult{Source: r.Source, Key: r.Key, UID: r.UID, URL: r.URL, Caption: r.Caption, Score: r.Score,
		Width: r.Width, Height: r.Height, Reason: string(r.Reason), Error: r.Error, Extra: r.Extra, Verdict: r.Verdict}
}

func fromStorage(r storage.DVAResult) pipeline.Result {
	return pipeline.Result{Source: r.Source, Key: r.Key, UID: r.UID, URL: r.URL, Caption: r.Caption, Score: r.Score,
		Width: r.Width, Height: r.Height, Reason: pipeline.Reason(r.Reason), Error: r.Error, Extra: r.Extra, Verdict: r.Verdict}
}
