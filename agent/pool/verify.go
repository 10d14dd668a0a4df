package pool

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/gata-contrib/gata/dva/pipeline"
	"github.com/gata-contrib/gata/storage"
)

// consume takes results off the results stream one at a time; each is acknowledged only
// once the ledger holds it, so a stop loses none.
func (p *Pool) consume(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	cons, err := p.js.CreateOrUpdateConsumer(cctx, ResultsStream, jetstream.ConsumerConfig{Durable: "pool-" + TypeDVA,
		FilterSubject: ResultsSubjectPrefix + TypeDVA, AckPolicy: jetstream.AckExplicitPolicy, AckWait: time.Minute,
		MaxDeliver: -1, MaxAckPending: 4096})
	cancel()
	if err != nil {
		return fmt.Errorf("create the results consumer: %w", err)
	}
	for ctx.Err() == nil {
		batch, err := cons.Fetch(64, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			p.log.Debug("fetch results", "err", err)
			time.Sleep(200 * time.Millisecond)
			continue
		}
		for m := range batch.Messages() {
			if err := p.handle(ctx, m.Data()); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				p.log.Warn("handle a result; it comes again", "err", err)
				m.NakWithDelay(time.Second)
				continue
			}
			m.Ack()
		}
	}
	return nil
}

// handle takes one result: it checks it, records it, and settles its group. An error
// means the result must come again (the ledger failed).
func (p *Pool) handle(ctx context.Context, data []byte) error {
	var r Result
	if err := json.Unmarshal(data, &r); err != nil {
		p.log.Warn("drop a result that is not JSON", "err", err)
		return nil
	}
	if err := r.Verify(); err != nil {
		p.log.Warn("drop a result with a bad signature", "job", r.Job, "worker", r.Worker, "err", err)
		return nil
	}
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	js := p.jobs[r.Job]
	rec := storage.PoolResult{Job: r.Job, Worker: r.Worker, Run: p.o.Run, Received: now, State: storage.ResultPending,
		Credits: scoredItems(&r), Backend: r.Backend, ComputeMS: r.ComputeMS, Body: data}
	if js == nil {
		if !p.closed[r.Job] {
			p.log.Warn("drop a result for a job this pool does not know", "job", r.Job, "worker", r.Worker)
			return nil
		}
		// The group was verified meanwhile (the job was handed out again after a silence).
		rec.Group = strings.TrimSuffix(r.Job, r.Job[strings.LastIndexByte(r.Job, '-'):])
		rec.State, rec.Reason, rec.Decided = storage.ResultRejected, "late: the job's group was already verified", now
		ok, err := p.o.Ledger.AddPoolResult(ctx, rec)
		if err != nil {
			return err
		}
		if ok {
			p.results++
			p.rejected++
			p.tellCredits(map[string]CreditNote{strings.ToLower(r.Worker): p.credit(r.Worker, rec.Credits, "", storage.ResultRejected)})
		}
		return nil
	}
	g := p.groups[js.group]
	rec.Group = g.id
	reason := p.check(g, js, &r, now)
	ok, err := p.o.Ledger.AddPoolResult(ctx, rec)
	if err != nil {
		return err
	}
	if !ok {
		return nil // delivered twice
	}
	p.results++
	g.results = append(g.results, &resultState{rec: rec, res: r, job: js, reason: reason})
	p.credit(r.Worker, rec.Credits, "", storage.ResultPending)
	p.mu.Unlock()
	err = p.settle(ctx, g)
	p.mu.Lock()
	return err
}

// scoredItems counts the pairs a result scored: its credit.
func scoredItems(r *Result) int64 {
	var n int64
	for _, it := range r.Items {
		if it.Scored() {
			n++
		}
	}
	return n
}

// check returns why a result cannot be accepted, or "": the signature is checked already;
// here the worker's right to the job, completeness, the canaries and the timing.
// p.mu must be held.
func (p *Pool) check(g *group, js *jobState, r *Result, received time.Time) string {
	job := &js.rec.Job
	if r.Type != job.Type {
		return fmt.Sprintf("wrong type %q", r.Type)
	}
	if job.Excludes(r.Worker) {
		return "excluded: this worker already answered the job's group"
	}
	for _, o := range g.results {
		if strings.EqualFold(o.rec.Worker, r.Worker) && o.rec.Job != r.Job {
			return "excluded: this worker already answered the job's group"
		}
	}
	got := make(map[string]ItemResult, len(r.Items))
	for _, it := range r.Items {
		if _, dup := got[it.ID]; dup {
			return fmt.Sprintf("item %s answered twice", it.ID)
		}
		got[it.ID] = it
	}
	missing := 0
	for _, it := range job.Items {
		if _, ok := got[it.ID]; !ok {
			missing++
		}
	}
	if missing > 0 || len(got) != len(job.Items) {
		return fmt.Sprintf("incomplete: %d of %d items answered", len(job.Items)-missing, len(job.Items))
	}
	for k, s := range js.rec.Slots {
		if s.Item >= 0 {
			continue
		}
		c := p.canaries[g.rec.Canaries[s.Canary].Canary]
		ir := got[job.Items[k].ID]
		if !ir.Scored() {
			return fmt.Sprintf("canary: an item the pool scored was reported %s", ir.Reason)
		}
		if d := math.Abs(float64(ir.Score) - float64(c.Score)); !(d <= float64(p.o.Tolerance)) {
			return fmt.Sprintf("canary: scored %.4f where the pool scored %.4f", ir.Score, c.Score)
		}
	}
	return p.checkTiming(js, r, received)
}

// checkTiming flags throughput impossible for the backend the result names, and compute
// time longer than the job has existed.
func (p *Pool) checkTiming(js *jobState, r *Result, received time.Time) string {
	n := float64(len(r.Items))
	secs := max(float64(r.ComputeMS)/1000, 1e-4)
	rate := n / secs
	if limit := p.maxRate(r.Backend); limit > 0 && rate > limit {
		return fmt.Sprintf("timing: %.0f pairs/s claimed, over the %.0f pairs/s possible on %s", rate, limit, r.Backend)
	}
	if !js.published.IsZero() {
		wall := received.Sub(js.published)
		if claimed := time.Duration(r.ComputeMS+r.FetchMS) * time.Millisecond; claimed > wall+2*time.Second {
			return fmt.Sprintf("timing: claims %s of work in the %s since the job was handed out",
				claimed.Round(time.Millisecond), wall.Round(time.Millisecond))
		}
	}
	return ""
}

// maxRate is the most pairs per second believable on a backend (0: no limit known).
func (p *Pool) maxRate(backend string) float64 {
	if p.o.MaxRate != nil {
		return p.o.MaxRate(backend)
	}
	if p.calRate <= 0 {
		return 0
	}
	if strings.HasPrefix(strings.ToLower(backend), "cpu") {
		return p.calRate * DefaultCPUSpeedup
	}
	return p.calRate * DefaultGPUSpeedup
}

// ReplicationRate is the chance that a valid result of a worker with n consecutive valid
// results is checked by a second worker: every result of a new worker, then less as trust
// grows, never below min (BOINC's adaptive replication).
func ReplicationRate(n int64, min float64) float64 {
	return math.Max(min, 1/float64(n+1))
}

// outstanding returns the jobs of g nobody answered yet.
func outstanding(g *group) []*jobState {
	var out []*jobState
	for _, js := range g.jobs {
		answered := false
		for _, r := range g.results {
			if r.rec.Job == js.rec.Job.ID {
				answered = true
				break
			}
		}
		if !answered {
			out = append(out, js)
		}
	}
	return out
}

// itemsOf maps a result onto the group's items.
func itemsOf(g *group, r *resultState) []ItemResult {
	out := make([]ItemResult, len(g.items))
	byID := make(map[string]ItemResult, len(r.res.Items))
	for _, it := range r.res.Items {
		byID[it.ID] = it
	}
	for k, s := range r.job.rec.Slots {
		if s.Item >= 0 {
			out[s.Item] = byID[r.job.rec.Job.Items[k].ID]
		}
	}
	return out
}

// agree reports whether two results give every item of the group the same outcome: scores
// within the tolerance, or the same reason of failure.
func (p *Pool) agree(g *group, a, b *resultState) bool {
	ia, ib := itemsOf(g, a), itemsOf(g, b)
	for i := range ia {
		x, y := ia[i], ib[i]
		if x.Scored() != y.Scored() {
			return false
		}
		if !x.Scored() {
			if x.Reason != y.Reason {
				return false
			}
			continue
		}
		if d := math.Abs(float64(x.Score) - float64(y.Score)); !(d <= float64(p.o.Tolerance)) {
			return false
		}
	}
	return true
}

// worker returns the standing of an address, made on first sight. p.mu must be held.
func (p *Pool) worker(addr, backend string) *storage.PoolWorker {
	k := strings.ToLower(addr)
	w := p.workers[k]
	if w == nil {
		w = &storage.PoolWorker{Address: addr, FirstSeen: time.Now()}
		p.workers[k] = w
	}
	w.LastSeen = time.Now()
	if backend != "" {
		w.Backend = backend
	}
	return w
}

// settle decides what a group's results so far mean and applies it: results that failed
// the checks are rejected; one valid result is confirmed alone or checked by another
// worker (by the chance ReplicationRate gives its worker); two or more are confirmed when
// they agree, the outvoted rejected, and a job goes to one more worker when none agree.
// A verified group's scores go to the run's results.
func (p *Pool) settle(ctx context.Context, g *group) error {
	p.mu.Lock()
	d := storage.PoolDecision{Group: g.id}
	touched := map[string]*storage.PoolWorker{}
	var valid []*resultState
	var verdicts []*resultState
	for _, r := range g.results {
		if r.rec.State != storage.ResultPending {
			continue
		}
		if r.reason != "" {
			d.Verdicts = append(d.Verdicts, storage.PoolVerdict{Job: r.rec.Job, Worker: r.rec.Worker, State: storage.ResultRejected, Reason: r.reason})
			verdicts = append(verdicts, r)
			w := p.worker(r.rec.Worker, r.res.Backend)
			w.ConsecutiveValid, w.Invalid = 0, w.Invalid+1
			touched[strings.ToLower(w.Address)] = w
			continue
		}
		valid = append(valid, r)
	}
	var winner *resultState
	var confirmed []*resultState
	needMore := false
	switch {
	case len(valid) == 0:
		needMore = true
	case len(valid) == 1 && len(g.jobs) == 1:
		w := p.worker(valid[0].rec.Worker, valid[0].res.Backend)
		if p.rng.Float64() < ReplicationRate(w.ConsecutiveValid, p.o.MinReplication) {
			needMore = true
		} else {
			winner, confirmed = valid[0], valid
		}
	case len(valid) == 1:
		// A second copy was asked for already (a check, or a replacement for a rejected result).
		needMore = true
	default:
		best, bestAgree := -1, []*resultState(nil)
		for i, a := range valid {
			agreeing := []*resultState{a}
			for j, b := range valid {
				if i != j && p.agree(g, a, b) {
					agreeing = append(agreeing, b)
				}
			}
			if len(agreeing) > len(bestAgree) {
				best, bestAgree = i, agreeing
			}
		}
		if len(bestAgree) >= 2 {
			winner, confirmed = valid[best], bestAgree
			in := map[*resultState]bool{}
			for _, r := range bestAgree {
				in[r] = true
			}
			for _, r := range valid {
				if !in[r] {
					r.reason = fmt.Sprintf("disagreed with %d workers that agree", len(bestAgree))
					d.Verdicts = append(d.Verdicts, storage.PoolVerdict{Job: r.rec.Job, Worker: r.rec.Worker, State: storage.ResultRejected, Reason: r.reason})
					verdicts = append(verdicts, r)
					w := p.worker(r.rec.Worker, r.res.Backend)
					w.ConsecutiveValid, w.Invalid = 0, w.Invalid+1
					touched[strings.ToLower(w.Address)] = w
				}
			}
		} else {
			needMore = true
		}
	}
	var outputs []storage.DVAResult
	if winner != nil {
		d.Verified = true
		for _, r := range confirmed {
			d.Verdicts = append(d.Verdicts, storage.PoolVerdict{Job: r.rec.Job, Worker: r.rec.Worker, State: storage.ResultConfirmed})
			verdicts = append(verdicts, r)
			w := p.worker(r.rec.Worker, r.res.Backend)
			w.ConsecutiveValid, w.Valid = w.ConsecutiveValid+1, w.Valid+1
			touched[strings.ToLower(w.Address)] = w
		}
		// Results still out for this group will come late; they earn nothing.
		for _, r := range g.results {
			if r.rec.State == storage.ResultPending && !containsResult(verdicts, r) {
				d.Verdicts = append(d.Verdicts, storage.PoolVerdict{Job: r.rec.Job, Worker: r.rec.Worker, State: storage.ResultRejected,
					Reason: "not needed: the group was verified by others"})
				verdicts = append(verdicts, r)
			}
		}
		outputs = p.outputs(g, winner)
	}
	var newJob *jobState
	if needMore && len(outstanding(g)) == 0 {
		newJob = p.newJob(g, len(g.jobs))
		sj, err := newJob.storage(p.o.Run)
		if err != nil {
			p.mu.Unlock()
			return err
		}
		d.NewJobs = append(d.NewJobs, sj)
	}
	for _, w := range touched {
		d.Workers = append(d.Workers, *w)
	}
	p.mu.Unlock()

	if len(d.Verdicts) == 0 && len(d.NewJobs) == 0 && !d.Verified {
		return nil
	}
	// The scores first: a stop between the two saves leaves the group open, and settling it
	// again saves the same scores, which the run then ignores.
	if len(outputs) > 0 {
		if err := p.o.Ledger.SaveResults(ctx, p.o.Run, outputs); err != nil {
			return err
		}
	}
	if err := p.o.Ledger.DecidePool(ctx, d); err != nil {
		return err
	}
	p.mu.Lock()
	notes := map[string]CreditNote{}
	for _, v := range d.Verdicts {
		for _, r := range g.results {
			if r.rec.Job == v.Job && strings.EqualFold(r.rec.Worker, v.Worker) {
				notes[strings.ToLower(r.rec.Worker)] = p.credit(r.rec.Worker, r.rec.Credits, r.rec.State, v.State)
				r.rec.State, r.rec.Reason = v.State, v.Reason
				if v.State == storage.ResultRejected {
					p.rejected++
				}
			}
		}
	}
	p.tellCredits(notes)
	if newJob != nil {
		g.jobs = append(g.jobs, newJob)
		p.jobs[newJob.rec.Job.ID] = newJob
	}
	var withdraw []uint64
	if d.Verified {
		for _, js := range outstanding(g) {
			if js.seq != 0 {
				withdraw = append(withdraw, js.seq)
			}
		}
		delete(p.groups, g.id)
		for _, js := range g.jobs {
			delete(p.jobs, js.rec.Job.ID)
			p.closed[js.rec.Job.ID] = true
		}
		p.verified++
		p.pairs += int64(len(g.items))
	}
	p.mu.Unlock()
	if newJob != nil {
		if err := p.publish(ctx, newJob); err != nil {
			return err
		}
	}
	if d.Verified {
		p.withdraw(ctx, withdraw)
		p.dropShard(ctx, g.rec.Shard)
		select {
		case p.space <- struct{}{}:
		default:
		}
	}
	p.report()
	return nil
}

func containsResult(rs []*resultState, r *resultState) bool {
	for _, x := range rs {
		if x == r {
			return true
		}
	}
	return false
}

// outputs are the run's results for a verified group, from the winning result.
func (p *Pool) outputs(g *group, r *resultState) []storage.DVAResult {
	items := itemsOf(g, r)
	out := make([]storage.DVAResult, len(g.items))
	for i, gi := range g.items {
		ir := items[i]
		o := storage.DVAResult{Source: gi.Source, Key: gi.Key, UID: gi.UID, URL: gi.URL, Caption: gi.Caption, Extra: gi.Extra,
			Score: ir.Score, Width: ir.Width, Height: ir.Height}
		if !ir.Scored() {
			o.Score = 0
			o.Reason, o.Error = knownReason(ir.Reason), ir.Error
		}
		out[i] = o
	}
	return out
}

// knownReason keeps the image failure reasons a worker may report and calls anything else
// corrupt.
func knownReason(r string) string {
	switch pipeline.Reason(r) {
	case pipeline.ReasonCorrupt, pipeline.ReasonTooLarge, pipeline.ReasonUnsupported, pipeline.ReasonNotFound:
		return r
	}
	return string(pipeline.ReasonCorrupt)
}
