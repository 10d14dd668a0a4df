package pool

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/gata-contrib/gata/dva"
	"github.com/gata-contrib/gata/dva/pipeline"
	"github.com/gata-contrib/gata/storage"
)

// errStopRead ends a source's Items early.
var errStopRead = errors.New("stop reading")

// cutter is the state of reading the sources into groups.
type cutter struct {
	p       *Pool
	ordinal int64 // items yielded so far, over every source, in order
	skip    int64 // items before this were handled by an earlier session
	items   []groupItem
	images  [][]byte // the bytes of items' images, until the group is cut
	failed  []storage.DVAResult
	cands   []pipeline.Item // canary candidates, until the set is complete
	seen    map[string]bool // keys of the current source
}

// cut reads the sources from the ledger's cursor on: failed items are recorded at once,
// the first CanarySet good ones become the canary set (scored by the pool), and the rest
// go out in groups of JobSize, at most MaxOpenGroups open at a time.
func (p *Pool) cut(ctx context.Context) error {
	p.mu.Lock()
	if p.readAll {
		p.mu.Unlock()
		return nil
	}
	c := &cutter{p: p, skip: p.read}
	p.mu.Unlock()
	needCanaries := len(p.canaries) == 0 && c.skip == 0
	for _, src := range p.o.Sources {
		c.seen = map[string]bool{}
		err := src.Items(ctx, func(it pipeline.Item) error { return c.add(ctx, it, needCanaries && len(p.canaries) == 0) })
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", src.Name(), err)
		}
	}
	if len(c.cands) > 0 {
		if err := c.scoreCanaries(ctx); err != nil {
			return err
		}
	}
	if err := c.flush(ctx); err != nil {
		return err
	}
	if err := p.o.Ledger.SetPoolCursor(ctx, p.o.Run, c.ordinal, true); err != nil {
		return err
	}
	p.mu.Lock()
	p.read, p.readAll = c.ordinal, true
	p.mu.Unlock()
	p.report()
	return nil
}

func (c *cutter) add(ctx context.Context, it pipeline.Item, collect bool) error {
	p := c.p
	c.ordinal++
	if c.ordinal <= c.skip {
		return nil
	}
	if c.seen[it.Key] {
		return nil // a key seen before in its source: dropped, as a local run does
	}
	c.seen[it.Key] = true
	if it.Err == nil && it.Image == nil && it.URL != "" {
		if p.o.Fetch == nil {
			it.Err = pipeline.Fail(pipeline.ReasonFetchFailed, "no fetcher for %s", it.URL)
		} else if data, ierr := p.o.Fetch(ctx, it.URL); ierr != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			it.Err = ierr
		} else {
			it.Image = data
		}
	}
	if it.Err == nil && it.Image == nil {
		it.Err = pipeline.Fail(pipeline.ReasonNotFound, "no image")
	}
	if it.Err != nil {
		c.failed = append(c.failed, failedResult(it))
		if len(c.failed) >= 256 {
			return c.saveFailed(ctx)
		}
		return nil
	}
	if collect {
		c.cands = append(c.cands, it)
		if len(c.cands) >= p.o.CanarySet {
			return c.scoreCanaries(ctx)
		}
		return nil
	}
	c.items = append(c.items, groupItem{Source: it.Source, Key: it.Key, UID: pipeline.UID(it), URL: it.URL,
		Caption: it.Caption, Extra: it.Extra, Image: imageName(it.Image), Size: int64(len(it.Image))})
	c.images = append(c.images, it.Image)
	if len(c.items) >= p.o.JobSize {
		return c.flush(ctx)
	}
	return nil
}

func failedResult(it pipeline.Item) storage.DVAResult {
	r := storage.DVAResult{Source: it.Source, Key: it.Key, UID: pipeline.UID(it), URL: it.URL, Caption: it.Caption,
		Extra: it.Extra, Reason: string(it.Err.Reason)}
	if r.Reason == "" {
		r.Reason = string(pipeline.ReasonCorrupt)
	}
	if it.Err.Err != nil {
		r.Error = it.Err.Err.Error()
	} else {
		r.Error = r.Reason
	}
	return r
}

func (c *cutter) saveFailed(ctx context.Context) error {
	if len(c.failed) == 0 {
		return nil
	}
	if err := c.p.o.Ledger.SaveResults(ctx, c.p.o.Run, c.failed); err != nil {
		return err
	}
	c.failed = c.failed[:0]
	return nil
}

// scoreCanaries scores the candidates with the pool's own engine, records their results
// (they are items of the dataset too), keeps the scored ones as the canary set, and
// measures the pool's speed for timing profiles.
func (c *cutter) scoreCanaries(ctx context.Context) error {
	p := c.p
	started := time.Now()
	var pixels [][]float32
	var caps []string
	var idx []int
	results := make([]storage.DVAResult, len(c.cands))
	sizes := make([]dva.Prepared, len(c.cands))
	for i, it := range c.cands {
		results[i] = storage.DVAResult{Source: it.Source, Key: it.Key, UID: pipeline.UID(it), URL: it.URL, Caption: it.Caption, Extra: it.Extra}
		px, err := p.o.Scorer.Prepare(it.Image)
		if err != nil {
			results[i].Reason, results[i].Error = string(pipeline.ImageReason(err)), err.Error()
			continue
		}
		sizes[i] = px
		pixels, caps, idx = append(pixels, px.Pixels), append(caps, it.Caption), append(idx, i)
	}
	var scores []float32
	if len(pixels) > 0 {
		var err error
		if scores, err = p.o.Scorer.ScorePrepared(ctx, pixels, caps); err != nil {
			return fmt.Errorf("score the canaries: %w", err)
		}
		if len(scores) != len(pixels) {
			return fmt.Errorf("score the canaries: %d scores for %d pairs", len(scores), len(pixels))
		}
	}
	elapsed := time.Since(started)
	var set []canary
	var imgs [][]byte
	for k, i := range idx {
		it := c.cands[i]
		results[i].Score, results[i].Width, results[i].Height = scores[k], sizes[i].Width, sizes[i].Height
		name, err := p.putImage(ctx, it.Image)
		if err != nil {
			return err
		}
		set = append(set, canary{Image: name, Size: int64(len(it.Image)), Caption: it.Caption, Score: scores[k],
			Width: sizes[i].Width, Height: sizes[i].Height})
		imgs = append(imgs, it.Image)
	}
	if err := p.o.Ledger.SaveResults(ctx, p.o.Run, results); err != nil {
		return err
	}
	b, err := json.Marshal(set)
	if err != nil {
		return fmt.Errorf("encode the canaries: %w", err)
	}
	run := fmt.Sprint(p.o.Run)
	rate := float64(len(c.cands)) / max(elapsed.Seconds(), 1e-3)
	if err := p.o.Ledger.SetPoolMeta(ctx, metaCalRate+run, fmt.Sprint(rate)); err != nil {
		return err
	}
	if err := p.o.Ledger.SetPoolMeta(ctx, metaCanaries+run, string(b)); err != nil {
		return err
	}
	if err := c.saveFailed(ctx); err != nil {
		return err
	}
	if err := p.o.Ledger.SetPoolCursor(ctx, p.o.Run, c.ordinal, false); err != nil {
		return err
	}
	p.mu.Lock()
	p.canaries, p.canaryImg, p.calRate, p.read = set, imgs, rate, c.ordinal
	p.mu.Unlock()
	p.log.Info("canaries scored", "items", len(set), "pairs_per_s", fmt.Sprintf("%.1f", rate))
	c.cands = nil
	return nil
}

// flush turns the items read into a group with its first job, then waits while too many
// groups are open.
func (c *cutter) flush(ctx context.Context) error {
	p := c.p
	if err := c.saveFailed(ctx); err != nil {
		return err
	}
	if len(c.items) == 0 {
		return nil
	}
	p.mu.Lock()
	g := &group{id: fmt.Sprintf("%s-r%d-g%06d", p.id, p.o.Run, p.nGroups), items: c.items}
	shard := c.layout(g)
	p.mu.Unlock()
	name, err := p.putImage(ctx, shard)
	if err != nil {
		return err
	}
	g.rec.Shard, g.rec.ShardSize = name, int64(len(shard))
	p.mu.Lock()
	js := p.newJob(g, 0)
	p.mu.Unlock()
	items, err := json.Marshal(g.rec)
	if err != nil {
		return fmt.Errorf("encode group %s: %w", g.id, err)
	}
	sj, err := js.storage(p.o.Run)
	if err != nil {
		return err
	}
	if err := p.o.Ledger.AddPoolGroup(ctx, storage.PoolGroup{ID: g.id, Run: p.o.Run, Items: items}, sj, c.ordinal); err != nil {
		return err
	}
	p.mu.Lock()
	g.jobs = append(g.jobs, js)
	p.groups[g.id] = g
	p.jobs[js.rec.Job.ID] = js
	p.nGroups++
	p.read = c.ordinal
	p.mu.Unlock()
	c.items, c.images = nil, nil
	if err := p.publish(ctx, js); err != nil {
		return err
	}
	for {
		p.mu.Lock()
		open := len(p.groups)
		p.mu.Unlock()
		// Enough groups out to keep every connected worker busy.
		limit := p.o.MaxOpenGroups
		if p.srv != nil {
			limit = max(limit, 2*p.srv.Clients())
		}
		if open < limit {
			return nil
		}
		select {
		case <-ctx.Done():
			return errStopRead
		case <-p.space:
		case <-time.After(time.Second):
		}
	}
}

// layout picks the group's canaries and lays its items' and canaries' images out in one
// shard, in random order, so nothing in the shard tells them apart. It sets the offsets
// in g and returns the shard's bytes. p.mu must be held.
func (c *cutter) layout(g *group) []byte {
	p := c.p
	type piece struct {
		item, canary int
	}
	var pieces []piece
	for i := range g.items {
		pieces = append(pieces, piece{i, -1})
	}
	var picks []int
	if n := min(p.o.Canaries, len(p.canaries)); n > 0 {
		picks = p.rng.Perm(len(p.canaries))[:n]
		for k := range picks {
			pieces = append(pieces, piece{-1, k})
		}
	}
	p.rng.Shuffle(len(pieces), func(i, j int) { pieces[i], pieces[j] = pieces[j], pieces[i] })
	g.rec.Canaries = make([]groupCanary, len(picks))
	var size int
	for _, b := range c.images {
		size += len(b)
	}
	for _, k := range picks {
		size += len(p.canaryImg[k])
	}
	shard := make([]byte, 0, size)
	for _, pc := range pieces {
		off := int64(len(shard))
		if pc.item >= 0 {
			g.items[pc.item].Offset = off
			shard = append(shard, c.images[pc.item]...)
			continue
		}
		g.rec.Canaries[pc.canary] = groupCanary{Canary: picks[pc.canary], Offset: off}
		shard = append(shard, p.canaryImg[picks[pc.canary]]...)
	}
	g.rec.Items = g.items
	return shard
}
