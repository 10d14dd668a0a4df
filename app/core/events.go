package core

import (
	"context"
	"encoding/json"
	"sync"
	"time"
)

// Event is something that happened in the app that a UI may want to show. IDs grow by one
// per event, so a client that saw event N asks for everything after N (SSE Last-Event-ID).
type Event struct {
	ID   int64     `json:"id"`
	Type string    `json:"type"`
	Time time.Time `json:"time"`
	Data any       `json:"data"`
}

// Event types.
const (
	EventJob      = "job"      // Data: JobInfo, on start, throttled progress, and the end
	EventSettings = "settings" // Data: []Setting that changed
)

// JSON renders the event's data for a wire format.
func (e Event) JSON() []byte {
	b, err := json.Marshal(e.Data)
	if err != nil {
		b, _ = json.Marshal(map[string]string{"error": err.Error()})
	}
	return b
}

// eventBus keeps the last events in a ring buffer and wakes waiters on each new one.
type eventBus struct {
	mu     sync.Mutex
	ring   []Event
	next   int64 // ID of the next event; the first is 1
	notify chan struct{}
	now    func() time.Time
}

func newEventBus(size int) *eventBus {
	return &eventBus{ring: make([]Event, 0, size), next: 1, notify: make(chan struct{}), now: time.Now}
}

func (b *eventBus) publish(typ string, data any) Event {
	b.mu.Lock()
	e := Event{ID: b.next, Type: typ, Time: b.now(), Data: data}
	b.next++
	if len(b.ring) < cap(b.ring) {
		b.ring = append(b.ring, e)
	} else {
		copy(b.ring, b.ring[1:])
		b.ring[len(b.ring)-1] = e
	}
	close(b.notify)
	b.notify = make(chan struct{})
	b.mu.Unlock()
	return e
}

// since returns the buffered events with ID > after, and whether some were already
// dropped from the buffer (the client missed them and should reload its state).
func (b *eventBus) since(after int64) (evs []Event, missed bool, wake <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	wake = b.notify
	if len(b.ring) == 0 {
		return nil, false, wake
	}
	first := b.ring[0].ID
	if after < first-1 {
		missed = after > 0
		after = first - 1
	}
	if after >= b.next-1 {
		return nil, missed, wake
	}
	start := int(after - first + 1)
	return append([]Event(nil), b.ring[start:]...), missed, wake
}

// wait blocks until there are events with ID > after, or ctx ends.
func (b *eventBus) wait(ctx context.Context, after int64) ([]Event, bool, error) {
	for {
		evs, missed, wake := b.since(after)
		if len(evs) > 0 || missed {
			return evs, missed, nil
		}
		select {
		case <-ctx.Done():
			return nil, false, ctx.Err()
		case <-wake:
		}
	}
}

// lastID is the ID of the newest event (0 when none).
func (b *eventBus) lastID() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.next - 1
}
