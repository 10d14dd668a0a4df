package core

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gata-contrib/gata/dva/dvatest"
	"github.com/gata-contrib/gata/dva/pipeline"
)

// reviewRun scores a folder of n photos (and one corrupt file) and returns the run's id.
func reviewRun(t *testing.T, c *Core, n int, keepTop float64) (int64, string, string) {
	t.Helper()
	withValidate(t, c, nil)
	src := photoFolder(t, n)
	out := filepath.Join(t.TempDir(), "out")
	job, err := c.StartRun(context.Background(), RunRequest{Sources: []string{src}, Model: dvatest.ClipDir(t), Out: out, KeepTop: keepTop, BatchSize: 4})
	if err != nil {
		t.Fatalf("StartRun: %v", err)
	}
	if info := waitJob(t, c, job); info.State != JobDone {
		t.Fatalf("run ended %s: %s", info.State, info.Error)
	}
	id, _ := strconv.ParseInt(job.Subject, 10, 64)
	return id, src, out
}

func TestReviewPagesDistributionAndVerdicts(t *testing.T) {
	ctx := context.Background()
	c, _ := newTestCore(t)
	id, src, out := reviewRun(t, c, 20, 0.5)

	page, err := c.Review(ctx, id, ReviewQuery{Limit: 8})
	if err != nil {
		t.Fatalf("Review: %v", err)
	}
	if page.Total != 20 || len(page.Items) != 8 {
		t.Fatalf("Review(limit 8) = %d items of %d, want 8 of 20", len(page.Items), page.Total)
	}
	if !slices.IsSortedFunc(page.Items, func(a, b ReviewItem) int { return -cmpF(a.Score, b.Score) }) {
		t.Error("Review() is not sorted by score, highest first")
	}
	asc, _ := c.Review(ctx, id, ReviewQuery{Order: OrderScoreAsc, Limit: 1})
	if len(asc.Items) != 1 || asc.Items[0].Score > page.Items[len(page.Items)-1].Score {
		t.Errorf("Review(score_asc) first = %+v, want the lowest score", asc.Items)
	}
	failed, err := c.Review(ctx, id, ReviewQuery{Failed: true})
	if err != nil || failed.Total != 1 || failed.Items[0].Reason != "corrupt" || failed.Items[0].Error == "" {
		t.Errorf("Review(failed) = %+v, %v; want the corrupt file with its error", failed, err)
	}
	if _, err := c.Review(ctx, id, ReviewQuery{Order: "random"}); err == nil {
		t.Error("Review(order random) succeeded")
	}
	if _, err := c.Review(ctx, id+100, ReviewQuery{}); !errors.Is(err, ErrNoRun) {
		t.Errorf("Review(unknown run) = %v, want ErrNoRun", err)
	}

	d, err := c.ScoreDistribution(ctx, id, 10)
	if err != nil {
		t.Fatal(err)
	}
	sum := 0
	for _, n := range d.Counts {
		sum += n
	}
	if d.Total != 20 || sum != 20 || len(d.Edges) != 11 || d.Edges[0] != d.Min || d.Edges[10] != d.Max || d.Max != page.Items[0].Score {
		t.Errorf("ScoreDistribution = %+v, want 20 scores in 10 bins from min to max", d)
	}
	if _, err := c.ScoreDistribution(ctx, id, 0); err == nil {
		t.Error("ScoreDistribution(0 bins) succeeded")
	}

	// The threshold keep-top 0.5 implies keeps what the run's export kept.
	k, err := c.ThresholdFor(ctx, id, 0.5)
	if err != nil {
		t.Fatal(err)
	}
	sum2, err := c.RunSummary(ctx, id)
	if err != nil || sum2.Summary == nil {
		t.Fatalf("RunSummary: %+v, %v", sum2, err)
	}
	if int64(k.Kept) != sum2.Summary.Kept || k.Total != 20 || *sum2.Summary.Threshold != k.Threshold {
		t.Errorf("ThresholdFor(0.5) = %+v; the export kept %d at %v", k, sum2.Summary.Kept, *sum2.Summary.Threshold)
	}
	at, err := c.KeepAt(ctx, id, float64(page.Items[0].Score))
	if err != nil || at.Kept != 1 || at.Fraction != 0.05 {
		t.Errorf("KeepAt(top score) = %+v, %v; want 1 of 20", at, err)
	}
	if at, _ := c.KeepAt(ctx, id, -1); at.Kept != 20 || at.Fraction != 1 {
		t.Errorf("KeepAt(-1) = %+v, want everything", at)
	}
	if _, err := c.KeepAt(ctx, id, 2); err == nil {
		t.Error("KeepAt(2) succeeded")
	}

	// A verdict is stored, shows in the review, filters, and wins in the next export.
	top, low := page.Items[0], asc.Items[0]
	after := c.LastEventID()
	if err := c.SetVerdict(ctx, id, top.Source, top.Key, VerdictReject); err != nil {
		t.Fatalf("SetVerdict: %v", err)
	}
	if err := c.SetVerdict(ctx, id, page.Items[1].Source, page.Items[1].Key, VerdictReject); err != nil {
		t.Fatalf("SetVerdict: %v", err)
	}
	if err := c.SetVerdict(ctx, id, low.Source, low.Key, VerdictKeep); err != nil {
		t.Fatalf("SetVerdict: %v", err)
	}
	if evs, _ := c.Events(after); len(evs) != 3 || evs[0].Type != EventVerdict {
		t.Errorf("events after three verdicts = %+v, want three %s events", evs, EventVerdict)
	}
	rejected, _ := c.Review(ctx, id, ReviewQuery{Verdict: VerdictReject})
	if rejected.Total != 2 || rejected.Items[0].Key != top.Key || rejected.Items[0].Verdict != VerdictReject {
		t.Errorf("Review(verdict reject) = %+v, want the top two pairs", rejected)
	}
	if err := c.SetVerdict(ctx, id, top.Source, top.Key, "maybe"); err == nil {
		t.Error("SetVerdict(maybe) succeeded")
	}
	if err := c.SetVerdict(ctx, id, top.Source, "no-such-key", VerdictKeep); !errors.Is(err, ErrNoItem) {
		t.Errorf("SetVerdict(unknown key) = %v, want ErrNoItem", err)
	}
	job, err := c.StartRun(ctx, RunRequest{Resume: id, KeepTop: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	if info := waitJob(t, c, job); info.State != JobDone {
		t.Fatalf("re-export ended %s: %s", info.State, info.Error)
	}
	res, ok := waitJob(t, c, job).Result.(*RunResult)
	if !ok {
		t.Fatal("re-export job has no run result")
	}
	if want := sum2.Summary.Kept - 2 + 1; res.Summary.Kept != want { // two rejected from the top, one kept from the bottom
		t.Errorf("re-export kept %d, want %d (two rejected, one kept by hand)", res.Summary.Kept, want)
	}

	// The image of a pair comes back byte for byte from its source.
	data, ctype, err := c.ReviewImage(ctx, id, top.Source, top.Key)
	if err != nil {
		t.Fatalf("ReviewImage: %v", err)
	}
	matches, _ := filepath.Glob(filepath.Join(src, top.Key+".*"))
	var want []byte
	for _, m := range matches {
		if filepath.Ext(m) != ".txt" {
			want, _ = os.ReadFile(m)
		}
	}
	if !bytes.Equal(data, want) || (ctype != "image/jpeg" && ctype != "image/png") {
		t.Errorf("ReviewImage(%s) = %d bytes %s, want the %d bytes of the source file", top.Key, len(data), ctype, len(want))
	}
	if _, _, err := c.ReviewImage(ctx, id, top.Source, "no-such-key"); !errors.Is(err, ErrNoItem) {
		t.Errorf("ReviewImage(unknown key) = %v, want ErrNoItem", err)
	}
	if _, err := os.Stat(filepath.Join(out, pipeline.ScoresFile)); err != nil {
		t.Errorf("re-export left no %s: %v", pipeline.ScoresFile, err)
	}
}

func cmpF(a, b float32) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func TestPauseRunThenGoOn(t *testing.T) {
	ctx := context.Background()
	c, _ := newTestCore(t)
	withValidate(t, c, nil)
	src := photoFolder(t, 40)
	job, err := c.StartRun(ctx, RunRequest{Sources: []string{src}, Model: dvatest.ClipDir(t), Out: filepath.Join(t.TempDir(), "out"), BatchSize: 1, CommitEvery: 1})
	if err != nil {
		t.Fatal(err)
	}
	id, _ := strconv.ParseInt(job.Subject, 10, 64)
	after := c.LastEventID()
	if err := c.PauseRun(id, true); err != nil {
		t.Fatalf("PauseRun: %v", err)
	}
	if !c.RunIsPaused(id) {
		t.Error("RunIsPaused = false after PauseRun")
	}
	// The job says it is paused in its progress, and stays running.
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for seen := false; !seen; {
		evs, _, err := c.WaitEvents(wctx, after)
		if err != nil {
			t.Fatalf("no progress event saying paused: %v", err)
		}
		for _, e := range evs {
			after = e.ID
			if j, ok := e.Data.(JobInfo); ok && j.ID == job.ID && strings.Contains(j.Progress.Message, "paused") {
				seen = true
				if j.State != JobRunning {
					t.Errorf("paused job state = %s, want running", j.State)
				}
			}
		}
	}
	if err := c.PauseRun(id, false); err != nil {
		t.Fatalf("PauseRun(false): %v", err)
	}
	info := waitJob(t, c, job)
	if info.State != JobDone {
		t.Fatalf("run ended %s: %s", info.State, info.Error)
	}
	if res := info.Result.(*RunResult); res.Run.Scored != 40 {
		t.Errorf("after going on, %d scored, want 40", res.Run.Scored)
	}
	if err := c.PauseRun(id, true); !errors.Is(err, ErrNoRun) {
		t.Errorf("PauseRun(finished run) = %v, want ErrNoRun", err)
	}
}
