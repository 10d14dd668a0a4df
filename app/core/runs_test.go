package core

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gata-contrib/gata/dva/dvatest"
	"github.com/gata-contrib/gata/dva/pipeline"
	"github.com/gata-contrib/gata/storage"
)

// photoFolder writes n copies of small shared photos with .txt captions into a folder,
// and one corrupt image.
func photoFolder(t *testing.T, n int) string {
	t.Helper()
	clip := dvatest.ClipDir(t)
	dir := filepath.Join(t.TempDir(), "photos")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	photos := []struct{ file, caption string }{
		{"chelsea.jpg", "a tabby cat looking up at the camera"},
		{"camera_gray_224x229.png", "a man with a camera on a tripod"},
		{"chelsea.png", "a cat"},
	}
	for i := range n {
		p := photos[i%len(photos)]
		data, err := os.ReadFile(filepath.Join(clip, p.file))
		if err != nil {
			t.Fatal(err)
		}
		name := fmt.Sprintf("%04d%s", i, filepath.Ext(p.file))
		os.WriteFile(filepath.Join(dir, name), data, 0o644)
		os.WriteFile(filepath.Join(dir, fmt.Sprintf("%04d.txt", i)), []byte(fmt.Sprintf("%s, photo %d\n", p.caption, i)), 0o644)
	}
	os.WriteFile(filepath.Join(dir, "broken.jpg"), []byte("\xff\xd8\xff\xe0 not really a jpeg"), 0o644)
	os.WriteFile(filepath.Join(dir, "broken.txt"), []byte("a broken file"), 0o644)
	return dir
}

func waitJob(t *testing.T, c *Core, j JobInfo) JobInfo {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	info, err := c.Jobs().Wait(ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

func TestStartRunScoresAFolderAndExports(t *testing.T) {
	ctx := context.Background()
	c, st := newTestCore(t)
	withValidate(t, c, nil)
	model := dvatest.ClipDir(t)
	src := photoFolder(t, 30)
	out := filepath.Join(t.TempDir(), "out")

	job, err := c.StartRun(ctx, RunRequest{Sources: []string{src}, Model: model, Out: out, KeepTop: 0.5, BatchSize: 4})
	if err != nil {
		t.Fatalf("StartRun: %v", err)
	}
	if job.Kind != "dva.run" || job.Subject == "" {
		t.Errorf("job = %+v, want kind dva.run with the run id as subject", job)
	}
	info := waitJob(t, c, job)
	if info.State != JobDone {
		t.Fatalf("job ended %s: %s", info.State, info.Error)
	}
	res, ok := info.Result.(*RunResult)
	if !ok {
		t.Fatalf("job result = %T, want *RunResult", info.Result)
	}
	id, _ := strconv.ParseInt(job.Subject, 10, 64)
	if res.Run.ID != id || res.Run.Scored != 30 || res.Run.Failed["corrupt"] != 1 || res.Stats.Scored != 30 {
		t.Errorf("run = %+v, stats %+v; want 30 scored and 1 corrupt", res.Run, res.Stats)
	}
	if res.Summary.Scored != 30 || res.Summary.Kept != 16 || res.Summary.Threshold == nil {
		t.Errorf("summary = scored %d, kept %d, threshold %v; want 30, 16 (keep-top 0.5), a threshold", res.Summary.Scored, res.Summary.Kept, res.Summary.Threshold)
	}
	for _, f := range []string{pipeline.ScoresFile, pipeline.UIDsFile, pipeline.SummaryFile, filepath.Join(pipeline.ShardsDir, "00000.tar")} {
		if st, err := os.Stat(filepath.Join(out, f)); err != nil || st.Size() == 0 {
			t.Errorf("output %s: %v", f, err)
		}
	}
	if res.Summary.ShardSamples != res.Summary.Kept || res.Summary.ImageErrors != 0 {
		t.Errorf("shards hold %d samples (%d image errors), want the %d kept", res.Summary.ShardSamples, res.Summary.ImageErrors, res.Summary.Kept)
	}
	run, err := st.Run(ctx, id)
	if err != nil || run.State != storage.RunDone || run.Finished.IsZero() || run.OutDir != out || run.Sources[0] != src {
		t.Errorf("stored run = %+v, %v; want done, with its sources and out folder", run, err)
	}

	sum, err := c.RunSummary(ctx, id)
	if err != nil || sum.Summary == nil || sum.Summary.Kept != 16 || sum.Scored != 30 {
		t.Errorf("RunSummary = %+v, %v", sum, err)
	}
	runs, err := c.Runs(ctx)
	if err != nil || len(runs) != 1 || runs[0].ID != id || runs[0].Scored != 30 || runs[0].Failed["corrupt"] != 1 {
		t.Errorf("Runs = %+v, %v; want the run with its counts", runs, err)
	}

	// Resuming a finished run scores nothing again; retrying the failed one tries it again.
	job, err = c.StartRun(ctx, RunRequest{Resume: id, RetryFailed: true, MinScore: ptr(-1.0)})
	if err != nil {
		t.Fatalf("StartRun(resume): %v", err)
	}
	info = waitJob(t, c, job)
	if info.State != JobDone {
		t.Fatalf("resumed job ended %s: %s", info.State, info.Error)
	}
	res = info.Result.(*RunResult)
	if res.Stats.Skipped != 30 || res.Stats.Scored != 0 || res.Stats.Failed != 1 || res.Run.Failed["corrupt"] != 1 {
		t.Errorf("resumed stats = %+v, run %+v; want 30 skipped and the corrupt one tried again", res.Stats, res.Run)
	}
	if res.Summary.Kept != 30 || res.Summary.KeepFraction != 0 {
		t.Errorf("resumed export kept %d (keep fraction %v), want all 30 with --min-score -1", res.Summary.Kept, res.Summary.KeepFraction)
	}
	if u, err := c.LastUnfinishedRun(ctx, []string{src}); !errors.Is(err, ErrNoRun) {
		t.Errorf("LastUnfinishedRun = %+v, %v; want ErrNoRun (the run is done)", u, err)
	}
}

func ptr[T any](v T) *T { return &v }

func TestStartRunCancelThenResume(t *testing.T) {
	ctx := context.Background()
	c, st := newTestCore(t)
	withValidate(t, c, nil)
	model := dvatest.ClipDir(t)
	src := photoFolder(t, 60)
	out := filepath.Join(t.TempDir(), "out")
	last := c.LastEventID()
	job, err := c.StartRun(ctx, RunRequest{Sources: []string{src}, Model: model, Out: out, BatchSize: 1, CommitEvery: 1})
	if err != nil {
		t.Fatal(err)
	}
	id, _ := strconv.ParseInt(job.Subject, 10, 64)
	// Cancel once some results are in.
	for {
		scored, _, err := st.RunCounts(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if scored > 0 {
			break
		}
		evs, _, err := c.WaitEvents(ctx, last)
		if err != nil {
			t.Fatal(err)
		}
		last = evs[len(evs)-1].ID
	}
	c.CancelJob(job.ID)
	info := waitJob(t, c, job)
	run, _ := st.Run(ctx, id)
	if info.State != JobCancelled || run.State != storage.RunCancelled || !strings.Contains(run.Message, fmt.Sprintf("--resume %d", id)) {
		t.Fatalf("cancelled job %s (%s), run %s %q", info.State, info.Error, run.State, run.Message)
	}
	if _, err := os.Stat(filepath.Join(out, pipeline.SummaryFile)); err == nil {
		t.Error("a cancelled run exported")
	}
	u, err := c.LastUnfinishedRun(ctx, []string{src})
	if err != nil || u.ID != id {
		t.Fatalf("LastUnfinishedRun = %+v, %v; want run %d", u, err, id)
	}

	job, err = c.StartRun(ctx, RunRequest{Sources: []string{src}, Resume: id})
	if err != nil {
		t.Fatal(err)
	}
	info = waitJob(t, c, job)
	if info.State != JobDone {
		t.Fatalf("resumed job ended %s: %s", info.State, info.Error)
	}
	res := info.Result.(*RunResult)
	if res.Run.Scored != 60 || res.Run.Failed["corrupt"] != 1 || res.Stats.Skipped == 0 || res.Summary.Total != 61 {
		t.Errorf("resumed run = %+v, stats %+v, summary total %d", res.Run, res.Stats, res.Summary.Total)
	}
}

func TestStartRunRefusesBadRequests(t *testing.T) {
	ctx := context.Background()
	c, _ := newTestCore(t)
	withValidate(t, c, nil)
	model := dvatest.ClipDir(t)
	src := photoFolder(t, 1)
	out := t.TempDir()
	tests := []struct {
		name string
		req  RunRequest
		want error
	}{
		{"no sources", RunRequest{Model: model, Out: out}, ErrBadRun},
		{"no out", RunRequest{Sources: []string{src}, Model: model}, ErrBadRun},
		{"keep-top over 1", RunRequest{Sources: []string{src}, Model: model, Out: out, KeepTop: 1.5}, ErrBadRun},
		{"min-score over 1", RunRequest{Sources: []string{src}, Model: model, Out: out, MinScore: ptr(2.0)}, ErrBadRun},
		{"missing source", RunRequest{Sources: []string{filepath.Join(out, "nope")}, Model: model, Out: out}, ErrBadRun},
		{"unknown model", RunRequest{Sources: []string{src}, Model: "no-such-model", Out: out}, ErrUnknownModel},
		{"unknown run", RunRequest{Resume: 99}, ErrNoRun},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := c.StartRun(ctx, tt.req); !errors.Is(err, tt.want) {
				t.Errorf("StartRun(%+v) = %v, want %v", tt.req, err, tt.want)
			}
		})
	}
}
