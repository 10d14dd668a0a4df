package core

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/gata-contrib/gata/storage"
)

// JobState is where a job is in its life.
type JobState string

// Job states. A job ends in exactly one of Done, Failed or Cancelled.
const (
	JobRunning   JobState = "running"
	JobDone      JobState = "done"
	JobFailed    JobState = "failed"
	JobCancelled JobState = "cancelled"
)

// Ended reports whether the state is final.
func (s JobState) Ended() bool { return s == JobDone || s == JobFailed || s == JobCancelled }

// Progress is what a running job reports about itself. Total is 0 when unknown.
type Progress struct {
	Done    int64  `json:"done"`
	Total   int64  `json:"total"`
	Unit    string `json:"unit,omitempty"` // "items", "bytes", "steps"
	Message string `json:"message,omitempty"`
}

// JobInfo is a snapshot of a job, safe to hand to a UI.
type JobInfo struct {
	ID       string    `json:"id"`
	Kind     string    `json:"kind"`
	Title    string    `json:"title"`
	Subject  string    `json:"subject,omitempty"` // what it works on: a model's name, a run's ID
	State    JobState  `json:"state"`
	Progress Progress  `json:"progress"`
	Rate     float64   `json:"rate"`        // units per second, over the whole run
	ETA      float64   `json:"eta_seconds"` // seconds left, 0 when unknown
	Error    string    `json:"error,omitempty"`
	Result   any       `json:"result,omitempty"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished,omitzero"`
}

// Fraction is Done/Total in [0, 1], or -1 when the total is unknown.
func (j JobInfo) Fraction() float64 {
	if j.Progress.Total <= 0 {
		return -1
	}
	f := float64(j.Progress.Done) / float64(j.Progress.Total)
	return min(max(f, 0), 1)
}

// JobFunc is the work of a job. It calls report as it goes (cheap: the registry throttles
// the events) and returns a result for the UI, or an error. It must return soon after ctx ends.
type JobFunc func(ctx context.Context, report func(Progress)) (result any, err error)

// JobSpec describes a job to start.
type JobSpec struct {
	Kind    string // machine-readable, e.g. "check", "model.pull", "dva.run"
	Title   string // for people, e.g. "Checking the data folder"
	Subject string // what it works on, if anything: a model's name, a run's ID
	Run     JobFunc
}

// JobHistory keeps finished jobs; storage.Store satisfies it.
type JobHistory interface {
	RecordJob(ctx context.Context, j storage.JobRecord) error
}

// ErrNoJob is returned for a job ID the registry does not know.
var ErrNoJob = errors.New("no such job")

// ErrShuttingDown is returned by Start once the registry is stopping.
var ErrShuttingDown = errors.New("the app is shutting down")

type job struct {
	info        JobInfo
	cancel      context.CancelFunc
	done        chan struct{}
	lastEmit    time.Time
	pendingEmit bool
}

// Jobs runs long tasks (model downloads, batch scoring, uploads, checks), tracks their
// progress, and publishes throttled progress events. It is a supervised service: Serve
// returns when its context ends, after cancelling every running job and waiting for it.
type Jobs struct {
	mu       sync.Mutex
	jobs     map[string]*job
	order    []string
	bus      *eventBus
	history  JobHistory
	log      *slog.Logger
	throttle time.Duration
	keep     int
	ctx      context.Context // the registry's run context, set by Serve
	stopping bool
	wg       sync.WaitGroup
	started  chan struct{}
	now      func() time.Time
}

func newJobs(bus *eventBus, history JobHistory, log *slog.Logger) *Jobs {
	return &Jobs{
		jobs:     map[string]*job{},
		bus:      bus,
		history:  history,
		log:      log,
		throttle: 250 * time.Millisecond,
		keep:     50,
		started:  make(chan struct{}),
		now:      time.Now,
	}
}

// Serve runs until ctx ends, then cancels all jobs and waits for them to return.
func (r *Jobs) Serve(ctx context.Context) error {
	r.mu.Lock()
	r.ctx = ctx
	close(r.started)
	r.mu.Unlock()

	t := time.NewTicker(r.throttle)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			r.mu.Lock()
			r.stopping = true
			for _, j := range r.jobs {
				j.cancel()
			}
			r.mu.Unlock()
			r.wg.Wait()
			return nil
		case <-t.C:
			r.flushThrottled()
		}
	}
}

func newID() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Start runs a job in the background and returns its first snapshot. Jobs started before
// the registry serves wait for it.
func (r *Jobs) Start(spec JobSpec) (JobInfo, error) {
	if spec.Run == nil || spec.Kind == "" {
		return JobInfo{}, fmt.Errorf("start job: kind and run function are required")
	}
	<-r.started
	r.mu.Lock()
	if r.stopping || r.ctx.Err() != nil {
		r.mu.Unlock()
		return JobInfo{}, ErrShuttingDown
	}
	ctx, cancel := context.WithCancel(r.ctx)
	title := spec.Title
	if title == "" {
		title = spec.Kind
	}
	j := &job{
		info:   JobInfo{ID: newID(), Kind: spec.Kind, Title: title, Subject: spec.Subject, State: JobRunning, Started: r.now()},
		cancel: cancel,
		done:   make(chan struct{}),
	}
	r.jobs[j.info.ID] = j
	r.order = append(r.order, j.info.ID)
	r.wg.Add(1)
	info := j.info
	r.emitLocked(j)
	r.mu.Unlock()

	r.log.Info("job started", "job", info.ID, "kind", info.Kind)
	go r.run(ctx, j, spec.Run)
	return info, nil
}

func (r *Jobs) run(ctx context.Context, j *job, fn JobFunc) {
	defer r.wg.Done()
	defer close(j.done)
	defer j.cancel()
	report := func(p Progress) {
		r.mu.Lock()
		defer r.mu.Unlock()
		if j.info.State.Ended() {
			return
		}
		j.info.Progress = p
		r.updateRateLocked(j)
		if r.now().Sub(j.lastEmit) >= r.throttle {
			r.emitLocked(j)
		} else {
			j.pendingEmit = true
		}
	}
	result, err := func() (res any, err error) {
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("internal error: %v", p)
			}
		}()
		return fn(ctx, report)
	}()

	r.mu.Lock()
	switch {
	case err == nil:
		j.info.State = JobDone
	case ctx.Err() != nil && errors.Is(err, ctx.Err()):
		j.info.State = JobCancelled
		err = nil
	default:
		j.info.State = JobFailed
		j.info.Error = err.Error()
	}
	j.info.Result = result
	j.info.Finished = r.now()
	r.updateRateLocked(j)
	j.info.ETA = 0
	info := j.info
	r.emitLocked(j)
	r.pruneLocked()
	r.mu.Unlock()

	r.log.Info("job ended", "job", info.ID, "kind", info.Kind, "state", info.State, "error", info.Error)
	if r.history != nil {
		hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		rec := storage.JobRecord{ID: info.ID, Kind: info.Kind, Title: info.Title, State: string(info.State),
			Message: info.Error, Started: info.Started, Finished: info.Finished}
		if err := r.history.RecordJob(hctx, rec); err != nil {
			r.log.Warn("record job", "job", info.ID, "err", err)
		}
	}
}

func (r *Jobs) updateRateLocked(j *job) {
	end := r.now()
	if !j.info.Finished.IsZero() {
		end = j.info.Finished
	}
	el := end.Sub(j.info.Started).Seconds()
	p := j.info.Progress
	if el > 0 && p.Done > 0 {
		j.info.Rate = float64(p.Done) / el
		if p.Total > p.Done {
			j.info.ETA = float64(p.Total-p.Done) / j.info.Rate
		} else {
			j.info.ETA = 0
		}
	}
}

func (r *Jobs) emitLocked(j *job) {
	j.lastEmit = r.now()
	j.pendingEmit = false
	r.bus.publish(EventJob, j.info)
}

func (r *Jobs) flushThrottled() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, id := range r.order {
		if j := r.jobs[id]; j.pendingEmit && r.now().Sub(j.lastEmit) >= r.throttle {
			r.emitLocked(j)
		}
	}
}

// pruneLocked forgets the oldest ended jobs beyond the keep limit (the history has them).
func (r *Jobs) pruneLocked() {
	ended := 0
	for _, id := range r.order {
		if r.jobs[id].info.State.Ended() {
			ended++
		}
	}
	for i := 0; ended > r.keep && i < len(r.order); {
		id := r.order[i]
		if r.jobs[id].info.State.Ended() {
			delete(r.jobs, id)
			r.order = append(r.order[:i], r.order[i+1:]...)
			ended--
			continue
		}
		i++
	}
}

// List returns the known jobs, newest first.
func (r *Jobs) List() []JobInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]JobInfo, 0, len(r.order))
	for _, id := range r.order {
		out = append(out, r.jobs[id].info)
	}
	sort.SliceStable(out, func(a, b int) bool { return out[a].Started.After(out[b].Started) })
	return out
}

// Get returns one job.
func (r *Jobs) Get(id string) (JobInfo, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	j, ok := r.jobs[id]
	if !ok {
		return JobInfo{}, fmt.Errorf("job %q: %w", id, ErrNoJob)
	}
	return j.info, nil
}

// Cancel asks a job to stop; it ends as cancelled once its function returns.
// Cancelling an ended job is not an error.
func (r *Jobs) Cancel(id string) error {
	r.mu.Lock()
	j, ok := r.jobs[id]
	r.mu.Unlock()
	if !ok {
		return fmt.Errorf("cancel job %q: %w", id, ErrNoJob)
	}
	j.cancel()
	return nil
}

// Wait blocks until the job has ended or ctx ends, and returns its final snapshot.
func (r *Jobs) Wait(ctx context.Context, id string) (JobInfo, error) {
	r.mu.Lock()
	j, ok := r.jobs[id]
	r.mu.Unlock()
	if !ok {
		return JobInfo{}, fmt.Errorf("wait for job %q: %w", id, ErrNoJob)
	}
	select {
	case <-j.done:
	case <-ctx.Done():
		return JobInfo{}, ctx.Err()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return j.info, nil
}
