package core

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gata-contrib/gata/storage"
)

// newTestCore builds a core on a real SQLite file and serves its job registry until the test ends.
func newTestCore(t testing.TB) (*Core, *storage.Store) {
	t.Helper()
	dir := t.TempDir()
	st, err := storage.Open(context.Background(), filepath.Join(dir, storage.DBName))
	if err != nil {
		t.Fatal(err)
	}
	lv := new(slog.LevelVar)
	c, err := New(Options{Version: "test", DataDir: dir, Store: st, LogLevel: lv,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Jobs().Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Jobs.Serve returned %v", err)
		}
		st.Close()
	})
	return c, st
}

func TestJobLifecycle(t *testing.T) {
	tests := []struct {
		name      string
		run       JobFunc
		cancel    bool
		wantState JobState
		wantErr   string
	}{
		{name: "done", run: func(ctx context.Context, report func(Progress)) (any, error) {
			for i := 1; i <= 5; i++ {
				report(Progress{Done: int64(i), Total: 5, Unit: "items"})
			}
			return "result", nil
		}, wantState: JobDone},
		{name: "failed", run: func(context.Context, func(Progress)) (any, error) {
			return nil, errors.New("disk on fire")
		}, wantState: JobFailed, wantErr: "disk on fire"},
		{name: "panic", run: func(context.Context, func(Progress)) (any, error) {
			panic("boom")
		}, wantState: JobFailed, wantErr: "internal error: boom"},
		{name: "cancelled", run: func(ctx context.Context, report func(Progress)) (any, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		}, cancel: true, wantState: JobCancelled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, st := newTestCore(t)
			info, err := c.Jobs().Start(JobSpec{Kind: "test", Title: tt.name, Run: tt.run})
			if err != nil {
				t.Fatal(err)
			}
			if info.State != JobRunning {
				t.Errorf("Start().State = %q, want running", info.State)
			}
			if tt.cancel {
				if err := c.CancelJob(info.ID); err != nil {
					t.Fatalf("CancelJob: %v", err)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			got, err := c.Jobs().Wait(ctx, info.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.State != tt.wantState || got.Error != tt.wantErr {
				t.Errorf("job ended %q %q, want %q %q", got.State, got.Error, tt.wantState, tt.wantErr)
			}
			if got.Finished.IsZero() {
				t.Error("Finished not set")
			}
			if tt.wantState == JobDone && (got.Result != "result" || got.Progress.Done != 5 || got.Fraction() != 1) {
				t.Errorf("done job = %+v, want result and full progress", got)
			}
			// The history in SQLite has it (it is written just after the end).
			deadline := time.Now().Add(5 * time.Second)
			for {
				hist, err := st.RecentJobs(context.Background(), 10)
				if err != nil {
					t.Fatal(err)
				}
				if len(hist) == 1 {
					if hist[0].ID != info.ID || hist[0].State != string(tt.wantState) {
						t.Errorf("history = %+v", hist[0])
					}
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("job not recorded in history")
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
}

func TestJobEventsAreThrottledAndEndWithFinalState(t *testing.T) {
	c, _ := newTestCore(t)
	r := serveJobs(t, c, time.Hour) // no progress event can pass the throttle in this test
	release := make(chan struct{})
	info, err := r.Start(JobSpec{Kind: "test", Run: func(ctx context.Context, report func(Progress)) (any, error) {
		for i := 0; i < 10000; i++ {
			report(Progress{Done: int64(i + 1), Total: 10000})
		}
		<-release
		return nil, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	close(release)
	if _, err := r.Wait(context.Background(), info.ID); err != nil {
		t.Fatal(err)
	}
	evs, _ := c.Events(0)
	var jobEvents []JobInfo
	var lastID int64
	for _, e := range evs {
		if e.ID <= lastID {
			t.Fatalf("event IDs not growing: %d after %d", e.ID, lastID)
		}
		lastID = e.ID
		if e.Type == EventJob {
			jobEvents = append(jobEvents, e.Data.(JobInfo))
		}
	}
	// 10000 progress reports collapse into the start and the end.
	if len(jobEvents) != 2 {
		t.Fatalf("got %d job events, want 2 (start, end)", len(jobEvents))
	}
	if jobEvents[0].State != JobRunning || jobEvents[1].State != JobDone || jobEvents[1].Progress.Done != 10000 {
		t.Errorf("job events = %+v", jobEvents)
	}
}

// serveJobs runs a second registry on the core's event bus with the given throttle.
func serveJobs(t *testing.T, c *Core, throttle time.Duration) *Jobs {
	r := newJobs(c.bus, nil, c.log)
	r.throttle = throttle
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Serve(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return r
}

func TestJobsServeCancelsRunningJobsOnShutdown(t *testing.T) {
	c, _ := newTestCore(t)
	ctx, cancel := context.WithCancel(context.Background())
	// A second registry on the same bus with its own lifetime.
	r := newJobs(c.bus, nil, c.log)
	done := make(chan error, 1)
	go func() { done <- r.Serve(ctx) }()
	var stopped sync.WaitGroup
	stopped.Add(1)
	info, err := r.Start(JobSpec{Kind: "long", Run: func(ctx context.Context, _ func(Progress)) (any, error) {
		defer stopped.Done()
		<-ctx.Done()
		return nil, ctx.Err()
	}})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve = %v", err)
	}
	stopped.Wait() // Serve returned only after the job returned
	got, err := r.Get(info.ID)
	if err != nil || got.State != JobCancelled {
		t.Errorf("after shutdown job = %+v, %v; want cancelled", got, err)
	}
	if _, err := r.Start(JobSpec{Kind: "late", Run: func(context.Context, func(Progress)) (any, error) { return nil, nil }}); !errors.Is(err, ErrShuttingDown) {
		t.Errorf("Start after shutdown err = %v, want ErrShuttingDown", err)
	}
}

func TestUnknownJob(t *testing.T) {
	c, _ := newTestCore(t)
	if err := c.CancelJob("nope"); !errors.Is(err, ErrNoJob) {
		t.Errorf("CancelJob(nope) = %v, want ErrNoJob", err)
	}
	if _, err := c.Job("nope"); !errors.Is(err, ErrNoJob) {
		t.Errorf("Job(nope) = %v, want ErrNoJob", err)
	}
}

func TestEventBusRingAndWait(t *testing.T) {
	b := newEventBus(4)
	for i := 0; i < 6; i++ {
		b.publish("x", i)
	}
	evs, missed, _ := b.since(0)
	if missed || len(evs) != 4 || evs[0].ID != 3 || evs[3].ID != 6 {
		t.Errorf("since(0) = %v missed=%v, want IDs 3..6 not missed", evs, missed)
	}
	evs, missed, _ = b.since(1)
	if !missed || len(evs) != 4 {
		t.Errorf("since(1) = %d events missed=%v, want 4 and missed", len(evs), missed)
	}
	evs, _, _ = b.since(5)
	if len(evs) != 1 || evs[0].ID != 6 || evs[0].Data != 5 {
		t.Errorf("since(5) = %v, want only ID 6", evs)
	}
	if evs, _, _ := b.since(6); len(evs) != 0 {
		t.Errorf("since(6) = %v, want none", evs)
	}

	got := make(chan []Event, 1)
	go func() {
		evs, _, err := b.wait(context.Background(), 6)
		if err != nil {
			t.Error(err)
		}
		got <- evs
	}()
	time.Sleep(10 * time.Millisecond)
	b.publish("y", "new")
	if evs := <-got; len(evs) != 1 || evs[0].ID != 7 || evs[0].Type != "y" {
		t.Errorf("wait(6) = %v, want ID 7", evs)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := b.wait(ctx, 7); !errors.Is(err, context.Canceled) {
		t.Errorf("wait(cancelled ctx) = %v, want context.Canceled", err)
	}
}

func TestSettings(t *testing.T) {
	ctx := context.Background()
	c, st := newTestCore(t)
	all, err := c.Settings(ctx)
	if err != nil {
		t.Fatal(err)
	}
	vals := map[string]string{}
	for _, s := range all {
		vals[s.Key] = s.Value
	}
	if vals[SettingWebAddr] != DefaultWebAddr || vals[SettingTheme] != "system" || vals[SettingDataDir] != c.opts.DataDir {
		t.Errorf("defaults = %v", vals)
	}

	bad := []struct {
		key, value, want string
	}{
		{SettingTheme, "purple", `"purple" is not one of system, light, dark`},
		{SettingWebAddr, "nonsense", "not host:port"},
		{SettingWebAddr, "127.0.0.1:99999", "port"},
		{SettingWebAddr, "example.com:80", "must be an IP address or localhost"},
		{SettingDataDir, "/tmp", "read-only"},
		{"no.such", "1", "unknown setting"},
		{SettingSharePaused, "maybe", "not true or false"},
	}
	for _, b := range bad {
		t.Run(b.key+"="+b.value, func(t *testing.T) {
			_, err := c.UpdateSettings(ctx, map[string]string{b.key: b.value, SettingTheme: "dark"})
			var fe *FieldError
			if !errors.As(err, &fe) || !strings.Contains(err.Error(), b.want) {
				t.Fatalf("UpdateSettings(%s=%q) = %v, want FieldError containing %q", b.key, b.value, err, b.want)
			}
			// Nothing was stored: all or none.
			if v, _ := c.SettingValue(ctx, SettingTheme); v != "system" && b.key != SettingTheme {
				t.Errorf("theme = %q after a refused update, want system", v)
			}
		})
	}

	last := c.LastEventID()
	if _, err := c.UpdateSettings(ctx, map[string]string{SettingTheme: "dark", SettingLogLevel: "debug", SettingWebAddr: " 127.0.0.1:7801 "}); err != nil {
		t.Fatal(err)
	}
	if c.opts.LogLevel.Level() != slog.LevelDebug {
		t.Errorf("log level = %v after setting debug", c.opts.LogLevel.Level())
	}
	stored, _ := st.Settings(ctx)
	if stored[SettingTheme] != "dark" || stored[SettingWebAddr] != "127.0.0.1:7801" {
		t.Errorf("stored = %v", stored)
	}
	evs, _ := c.Events(last)
	if len(evs) != 1 || evs[0].Type != EventSettings || len(evs[0].Data.([]Setting)) != 3 {
		t.Errorf("events after update = %+v, want one settings event with 3 changes", evs)
	}

	if err := c.SetSharingPaused(ctx, true); err != nil || !c.SharingPaused(ctx) {
		t.Errorf("SetSharingPaused(true) = %v, paused=%v", err, c.SharingPaused(ctx))
	}
}

func TestDataCheck(t *testing.T) {
	c, _ := newTestCore(t)
	info, err := c.StartDataCheck()
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Jobs().Wait(context.Background(), info.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != JobDone {
		t.Fatalf("data check = %s %s, want done", got.State, got.Error)
	}
	rep := got.Result.(CheckReport)
	if len(rep.Items) != 6 {
		t.Fatalf("report has %d items, want 6: %+v", len(rep.Items), rep)
	}
	for _, it := range rep.Items {
		if it.Status == CheckFail {
			t.Errorf("%s failed: %s", it.Name, it.Detail)
		}
	}
	for _, d := range dataSubdirs {
		if st, err := os.Stat(filepath.Join(c.opts.DataDir, d)); err != nil || !st.IsDir() {
			t.Errorf("subfolder %s not created: %v", d, err)
		}
	}
}

func TestDataCheckFailsOnUnwritableFolder(t *testing.T) {
	c, _ := newTestCore(t)
	// Point the check at a folder that is a regular file: not a folder, not writable.
	f := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(f, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.opts.DataDir = f
	info, _ := c.StartDataCheck()
	got, _ := c.Jobs().Wait(context.Background(), info.ID)
	if got.State != JobFailed || !strings.Contains(got.Error, "is not a folder") {
		t.Fatalf("check of a file = %s %q, want failed with 'is not a folder'", got.State, got.Error)
	}
}

func TestHumanBytes(t *testing.T) {
	for _, tt := range []struct {
		n    int64
		want string
	}{{0, "0 B"}, {1023, "1023 B"}, {1536, "1.5 KiB"}, {598597605, "570.9 MiB"}, {3 << 40, "3.0 TiB"}} {
		if got := HumanBytes(tt.n); got != tt.want {
			t.Errorf("HumanBytes(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
}
