package storage

import (
	"context"
	"sync"
	"testing"
	"time"
)

// openTwice opens one database file as two stores, as two processes would.
func openTwice(t *testing.T) (*Store, *Store) {
	t.Helper()
	a, path := openTemp(t)
	b, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return a, b
}

// TestLeaseOneHolderAtATime: two stores on one database file, as two processes on one data
// folder, share the lease: one holds it, renews it, and loses it only once it expired.
func TestLeaseOneHolderAtATime(t *testing.T) {
	ctx := context.Background()
	a, b := openTwice(t)
	t0 := time.UnixMilli(1_800_000_000_000)
	const ttl = 30 * time.Second
	steps := []struct {
		name   string
		store  *Store
		holder string
		at     time.Duration
		wantOK bool
		want   string // the holder after the step
	}{
		{"A takes the free lease", a, "A", 0, true, "A"},
		{"B is refused while A holds it", b, "B", 10 * time.Second, false, "A"},
		{"A renews it", a, "A", 20 * time.Second, true, "A"},
		{"B is refused until the renewed lease expires", b, "B", 49 * time.Second, false, "A"},
		{"B takes it once expired", b, "B", 50 * time.Second, true, "B"},
		{"A, back late, is refused", a, "A", 51 * time.Second, false, "B"},
	}
	for _, st := range steps {
		l, ok, err := st.store.TakeLease(ctx, "uploader", st.holder, t0.Add(st.at), ttl)
		if err != nil || ok != st.wantOK || l.Holder != st.want {
			t.Fatalf("%s: %+v ok=%v err=%v, want ok=%v held by %s", st.name, l, ok, err, st.wantOK, st.want)
		}
		if ok && !l.Expires.Equal(t0.Add(st.at+ttl)) {
			t.Errorf("%s: expires %s, want %s", st.name, l.Expires, t0.Add(st.at+ttl))
		}
	}
	if err := a.ReleaseLease(ctx, "uploader", "A"); err != nil {
		t.Fatal(err)
	}
	if l, ok, _ := a.TakeLease(ctx, "uploader", "A", t0.Add(52*time.Second), ttl); ok {
		t.Fatalf("A's release of B's lease let A take it: %+v", l)
	}
	if err := b.ReleaseLease(ctx, "uploader", "B"); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := a.TakeLease(ctx, "uploader", "A", t0.Add(53*time.Second), ttl); !ok || err != nil {
		t.Fatalf("A cannot take the lease B released: ok=%v err=%v", ok, err)
	}
}

// TestLeaseRace: many takers at once on a free lease, from two stores: exactly one wins.
func TestLeaseRace(t *testing.T) {
	ctx := context.Background()
	a, b := openTwice(t)
	now := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	winners := map[string]bool{}
	for i := range 16 {
		s := a
		if i%2 == 1 {
			s = b
		}
		holder := string(rune('a' + i))
		wg.Go(func() {
			_, ok, err := s.TakeLease(ctx, "race", holder, now, time.Minute)
			if err != nil {
				t.Error(err)
				return
			}
			if ok {
				mu.Lock()
				winners[holder] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(winners) != 1 {
		t.Errorf("%d takers won the lease (%v), want 1", len(winners), winners)
	}
}
