package widgettest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/gata-contrib/gata/app/core"
)

// Queue stands in for Fyne's main loop in a page's tests: the page's goroutines post UI
// updates with Do and the test goroutine runs them in Until, so widgets are only ever
// touched by one goroutine.
type Queue struct {
	mu  sync.Mutex
	fns []func()
}

// Do posts f; pass it to a page as its "run on the UI goroutine" function.
func (q *Queue) Do(f func()) {
	q.mu.Lock()
	q.fns = append(q.fns, f)
	q.mu.Unlock()
}

// Until runs posted updates until cond holds, failing the test after 30 seconds.
func (q *Queue) Until(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		for {
			q.mu.Lock()
			fns := q.fns
			q.fns = nil
			q.mu.Unlock()
			if len(fns) == 0 {
				break
			}
			for _, f := range fns {
				f()
			}
		}
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Events is the part of the core that hands out its events; *core.Core satisfies it.
type Events interface {
	WaitEvents(ctx context.Context, after int64) ([]core.Event, bool, error)
	LastEventID() int64
}

// Follow hands each of c's events from now on to apply, through the queue, the way the
// window's shell hands them to its pages, until ctx ends. Call the returned wait after
// cancelling ctx.
func (q *Queue) Follow(ctx context.Context, c Events, apply func(core.Event)) (wait func()) {
	var wg sync.WaitGroup
	wg.Add(1)
	after := c.LastEventID()
	go func() {
		defer wg.Done()
		for {
			evs, _, err := c.WaitEvents(ctx, after)
			if err != nil {
				return
			}
			if n := len(evs); n > 0 {
				after = evs[n-1].ID
			}
			q.Do(func() {
				for _, e := range evs {
					apply(e)
				}
			})
		}
	}()
	return wg.Wait
}
