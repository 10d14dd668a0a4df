package core

import (
	"fmt"
	"sync"

	"github.com/gata-contrib/gata/dva/pipeline"
)

// runPausers holds the pause switch of each run whose job is running.
type runPausers struct {
	mu sync.Mutex
	m  map[int64]*pipeline.Pauser
}

// add registers a running run and returns its switch; remove it when the job ends.
func (p *runPausers) add(id int64) *pipeline.Pauser {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil {
		p.m = map[int64]*pipeline.Pauser{}
	}
	ps := &pipeline.Pauser{}
	p.m[id] = ps
	return ps
}

func (p *runPausers) remove(id int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.m, id)
}

func (p *runPausers) get(id int64) *pipeline.Pauser {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.m[id]
}

// PauseRun pauses a running run (no new items are read; what was read is still scored and
// saved) or, with paused false, lets it go on. A run that is not running gives ErrNoRun.
func (c *Core) PauseRun(id int64, paused bool) error {
	ps := c.pausers.get(id)
	if ps == nil {
		return fmt.Errorf("pause run %d: %w (it is not running)", id, ErrNoRun)
	}
	if paused {
		ps.Pause()
	} else {
		ps.Resume()
	}
	c.bus.publish(EventRunPaused, RunPaused{Run: id, Paused: paused})
	return nil
}

// RunIsPaused reports whether a running run is paused.
func (c *Core) RunIsPaused(id int64) bool {
	ps := c.pausers.get(id)
	return ps != nil && ps.Paused()
}

// EventRunPaused is published when a run is paused or goes on; its data is a RunPaused.
const EventRunPaused = "run.paused"

// RunPaused is the data of an EventRunPaused.
type RunPaused struct {
	Run    int64 `json:"run"`
	Paused bool  `json:"paused"`
}
