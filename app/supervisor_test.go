package app

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestSupervisorRestartsFailedServices(t *testing.T) {
	s := NewSupervisor(context.Background(), quietLog())
	s.minBackoff = time.Millisecond
	var runs atomic.Int32
	ok := make(chan struct{})
	s.Add("flaky", ServiceFunc(func(ctx context.Context) error {
		switch runs.Add(1) {
		case 1:
			return errors.New("first run fails")
		case 2:
			panic("second run panics")
		}
		close(ok)
		<-ctx.Done()
		return nil
	}))
	select {
	case <-ok:
	case <-time.After(10 * time.Second):
		t.Fatalf("service not restarted: %d runs", runs.Load())
	}
	if err := s.Stop(5 * time.Second); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if n := runs.Load(); n != 3 {
		t.Errorf("runs = %d, want 3", n)
	}
}

func TestSupervisorStopDeadlineNamesStuckService(t *testing.T) {
	s := NewSupervisor(context.Background(), quietLog())
	release := make(chan struct{})
	defer close(release)
	s.Add("stuck", ServiceFunc(func(ctx context.Context) error { <-release; return nil }))
	s.Add("polite", ServiceFunc(func(ctx context.Context) error { <-ctx.Done(); return nil }))
	err := s.Stop(50 * time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "stuck") || strings.Contains(err.Error(), "polite") {
		t.Fatalf("Stop = %v, want an error naming only the stuck service", err)
	}
}

func TestSupervisorServiceThatFinishesIsNotRestarted(t *testing.T) {
	s := NewSupervisor(context.Background(), quietLog())
	var runs atomic.Int32
	done := make(chan struct{})
	s.Add("oneshot", ServiceFunc(func(ctx context.Context) error { runs.Add(1); close(done); return nil }))
	<-done
	if err := s.Stop(time.Second); err != nil {
		t.Fatal(err)
	}
	if runs.Load() != 1 {
		t.Errorf("runs = %d, want 1", runs.Load())
	}
}
