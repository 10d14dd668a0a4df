package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Service is a long-running part of the app. Serve runs until ctx ends and then returns
// nil; an error return means the service failed and the supervisor restarts it.
type Service interface {
	Serve(ctx context.Context) error
}

// ServiceFunc adapts a function to Service.
type ServiceFunc func(ctx context.Context) error

// Serve calls f.
func (f ServiceFunc) Serve(ctx context.Context) error { return f(ctx) }

// Supervisor runs services, restarts the ones that fail (with backoff), and stops them all
// together: Stop cancels their context and waits for them up to a deadline.
type Supervisor struct {
	log        *slog.Logger
	minBackoff time.Duration
	maxBackoff time.Duration

	mu      sync.Mutex
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	running map[string]bool
}

// NewSupervisor returns a supervisor whose services run under ctx.
func NewSupervisor(ctx context.Context, log *slog.Logger) *Supervisor {
	ctx, cancel := context.WithCancel(ctx)
	return &Supervisor{log: log, minBackoff: 500 * time.Millisecond, maxBackoff: 30 * time.Second,
		ctx: ctx, cancel: cancel, running: map[string]bool{}}
}

// Context is the supervisor's context; it ends when Stop is called.
func (s *Supervisor) Context() context.Context { return s.ctx }

// Add starts a service under the supervisor.
func (s *Supervisor) Add(name string, svc Service) {
	s.mu.Lock()
	s.running[name] = true
	s.mu.Unlock()
	s.wg.Add(1)
	go s.run(name, svc)
}

func (s *Supervisor) run(name string, svc Service) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.running, name)
		s.mu.Unlock()
	}()
	backoff := s.minBackoff
	for {
		start := time.Now()
		err := serveOnce(s.ctx, svc)
		if s.ctx.Err() != nil {
			if err != nil && !errors.Is(err, context.Canceled) {
				s.log.Warn("service stopped with an error", "service", name, "err", err)
			}
			return
		}
		if err == nil {
			s.log.Debug("service finished", "service", name)
			return
		}
		if time.Since(start) > time.Minute {
			backoff = s.minBackoff
		}
		s.log.Error("service failed, restarting", "service", name, "err", err, "in", backoff)
		select {
		case <-s.ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, s.maxBackoff)
	}
}

func serveOnce(ctx context.Context, svc Service) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return svc.Serve(ctx)
}

// Stop cancels every service and waits for them to return, up to the deadline. It returns
// an error naming the services still running when the deadline passed.
func (s *Supervisor) Stop(deadline time.Duration) error {
	s.cancel()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-time.After(deadline):
		s.mu.Lock()
		defer s.mu.Unlock()
		var names []string
		for n := range s.running {
			names = append(names, n)
		}
		return fmt.Errorf("services still running after %v: %v", deadline, names)
	}
}
