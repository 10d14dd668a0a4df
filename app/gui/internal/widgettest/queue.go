package widgettest

import (
	"sync"
	"testing"
	"time"
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
