package storage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func newRun(t *testing.T, s *Store) int64 {
	t.Helper()
	id, err := s.CreateRun(context.Background(), DVARun{
		Sources:     []string{"/data/a", "/data/b.tar"},
		Model:       "apple/DFN2B-CLIP-ViT-B-16",
		ModelSHA256: strings.Repeat("ab", 32),
		Options:     json.RawMessage(`{"keep_top":0.3}`),
		OutDir:      "/out",
	})
	if err != nil {
		t.Fatalf("CreateRun: %v", err)
	}
	return id
}

// synth returns result i of a synthetic run: every 10th fails as not_found, every 25th
// (that is not a failure) carries a second extra field.
func synth(i int) DVAResult {
	r := DVAResult{
		Source:  fmt.Sprintf("/data/src%d", i%2),
		Key:     fmt.Sprintf("%06d", i),
		UID:     fmt.Sprintf("%032x", i),
		URL:     fmt.Sprintf("https://example.com/%d.jpg", i),
		Caption: fmt.Sprintf("caption number %d", i),
		Score:   float32(i%1000)/1000 - 0.5,
		Width:   200 + i%7,
		Height:  300,
		Extra:   map[string]string{"lang": "en"},
	}
	if i%10 == 0 {
		r.Reason, r.Error, r.Score, r.Width, r.Height = "not_found", "404 Not Found", 0, 0, 0
	} else if i%25 == 0 {
		r.Extra["license"] = "cc-by"
	}
	return r
}

func saveSynth(t *testing.T, s *Store, run int64, n, batch int) {
	t.Helper()
	for start := 0; start < n; start += batch {
		var rs []DVAResult
		for i := start; i < min(start+batch, n); i++ {
			rs = append(rs, synth(i))
		}
		if err := s.SaveResults(context.Background(), run, rs); err != nil {
			t.Fatalf("SaveResults(batch at %d): %v", start, err)
		}
	}
}

func TestRunLifecycle(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	first := newRun(t, s)
	time.Sleep(2 * time.Millisecond) // distinct created times order the list
	second := newRun(t, s)

	r, err := s.Run(ctx, first)
	if err != nil {
		t.Fatalf("Run(%d): %v", first, err)
	}
	if r.State != RunRunning || r.Model != "apple/DFN2B-CLIP-ViT-B-16" || r.OutDir != "/out" ||
		!reflect.DeepEqual(r.Sources, []string{"/data/a", "/data/b.tar"}) || string(r.Options) != `{"keep_top":0.3}` ||
		r.Created.IsZero() || !r.Finished.IsZero() {
		t.Errorf("Run(%d) = %+v", first, r)
	}

	done := time.UnixMilli(time.Now().UnixMilli())
	if err := s.UpdateRun(ctx, first, RunDone, "9000 scored", done); err != nil {
		t.Fatalf("UpdateRun: %v", err)
	}
	r, err = s.Run(ctx, first)
	if err != nil {
		t.Fatal(err)
	}
	if r.State != RunDone || r.Message != "9000 scored" || !r.Finished.Equal(done) {
		t.Errorf("after UpdateRun: state %q message %q finished %v, want done, 9000 scored, %v", r.State, r.Message, r.Finished, done)
	}
	if err := s.UpdateRun(ctx, first, "exploded", "", time.Time{}); err == nil {
		t.Error("UpdateRun(state exploded) succeeded, want an error")
	}
	if err := s.UpdateRun(ctx, 999, RunPaused, "", time.Time{}); !errors.Is(err, ErrNotFound) {
		t.Errorf("UpdateRun(999) err = %v, want ErrNotFound", err)
	}
	if _, err := s.Run(ctx, 999); !errors.Is(err, ErrNotFound) {
		t.Errorf("Run(999) err = %v, want ErrNotFound", err)
	}
	if _, err := s.CreateRun(ctx, DVARun{Options: json.RawMessage(`{nope`)}); err == nil {
		t.Error("CreateRun(bad options JSON) succeeded, want an error")
	}

	runs, err := s.Runs(ctx, 10)
	if err != nil {
		t.Fatalf("Runs: %v", err)
	}
	if len(runs) != 2 || runs[0].ID != second || runs[1].ID != first {
		t.Errorf("Runs(10) ids = %v, want [%d %d]", ids(runs), second, first)
	}
	if runs, _ := s.Runs(ctx, 1); len(runs) != 1 {
		t.Errorf("Runs(1) gave %d runs", len(runs))
	}
}

func ids(runs []DVARun) []int64 {
	var out []int64
	for _, r := range runs {
		out = append(out, r.ID)
	}
	return out
}

func TestResultsResumeAndCounts(t *testing.T) {
	ctx := context.Background()
	s, path := openTemp(t)
	run := newRun(t, s)
	other := newRun(t, s)
	const n = 10000
	saveSynth(t, s, run, n, 500)

	// Finished: every saved ref, none of the unsaved, none of another run; repeats allowed.
	var refs []ResultRef
	for i := n - 3000; i < n+1000; i++ {
		r := synth(i)
		refs = append(refs, ResultRef{r.Source, r.Key})
	}
	refs = append(refs, refs[0], ResultRef{"/elsewhere", "000001"})
	got, err := s.Finished(ctx, run, refs)
	if err != nil {
		t.Fatalf("Finished: %v", err)
	}
	for i, ok := range got {
		want := i < 3000 || i == 4000
		if ok != want {
			t.Fatalf("Finished(%v) = %v, want %v", refs[i], ok, want)
		}
	}
	if got, _ := s.Finished(ctx, other, refs[:10]); slices.Contains(got, true) {
		t.Errorf("Finished(other run) = %v, want all false", got)
	}

	scored, byReason, err := s.RunCounts(ctx, run)
	if err != nil {
		t.Fatalf("RunCounts: %v", err)
	}
	if scored != 9000 || !reflect.DeepEqual(byReason, map[string]int64{"not_found": 1000}) {
		t.Errorf("RunCounts = %d, %v; want 9000, map[not_found:1000]", scored, byReason)
	}

	// A verdict on a failed item, then re-saves: the scored one is ignored, the failed one
	// is replaced and keeps its verdict.
	failed, scoredOne := synth(20), synth(21)
	if err := s.SetVerdict(ctx, run, failed.Source, failed.Key, VerdictReject); err != nil {
		t.Fatalf("SetVerdict: %v", err)
	}
	retry := failed
	retry.Reason, retry.Error, retry.Score, retry.Width, retry.Height = "", "", 0.42, 640, 480
	changed := scoredOne
	changed.Score, changed.Caption = 0.99, "changed"
	if err := s.SaveResults(ctx, run, []DVAResult{retry, changed}); err != nil {
		t.Fatalf("SaveResults(re-save): %v", err)
	}
	byKey := map[string]DVAResult{}
	var order []string
	if err := s.EachResult(ctx, run, func(r DVAResult) error {
		byKey[r.Source+"/"+r.Key] = r
		order = append(order, r.Source+"\x00"+r.Key)
		return nil
	}); err != nil {
		t.Fatalf("EachResult: %v", err)
	}
	if len(order) != n || !slices.IsSorted(order) {
		t.Errorf("EachResult gave %d results, sorted %v; want %d in (source, key) order", len(order), slices.IsSorted(order), n)
	}
	wantRetry := retry
	wantRetry.Verdict = VerdictReject
	if g := byKey[failed.Source+"/"+failed.Key]; !reflect.DeepEqual(g, wantRetry) {
		t.Errorf("retried failed item = %+v, want %+v", g, wantRetry)
	}
	if g := byKey[scoredOne.Source+"/"+scoredOne.Key]; !reflect.DeepEqual(g, scoredOne) {
		t.Errorf("re-saved scored item = %+v, want it unchanged %+v", g, scoredOne)
	}
	for i := range 100 {
		want := synth(i)
		if i == 20 {
			want = wantRetry
		}
		if g := byKey[want.Source+"/"+want.Key]; !reflect.DeepEqual(g, want) {
			t.Fatalf("EachResult item %d = %+v, want %+v", i, g, want)
		}
	}
	stop := errors.New("stop")
	calls := 0
	if err := s.EachResult(ctx, run, func(DVAResult) error { calls++; return stop }); err != stop || calls != 1 {
		t.Errorf("EachResult with fn failing = %v after %d calls, want stop after 1", err, calls)
	}

	scores, err := s.Scores(ctx, run)
	if err != nil {
		t.Fatalf("Scores: %v", err)
	}
	if len(scores) != 9001 || !slices.Contains(scores, float32(0.42)) {
		t.Errorf("Scores gave %d (has 0.42: %v), want 9001 with 0.42", len(scores), slices.Contains(scores, float32(0.42)))
	}

	// Retry-failed pass: clear one reason, then all.
	if err := s.SaveResults(ctx, run, []DVAResult{{Source: "/x", Key: "t", Reason: "timeout", Error: "slow"}}); err != nil {
		t.Fatal(err)
	}
	if k, err := s.ClearFailed(ctx, run, "timeout", "opted_out"); err != nil || k != 1 {
		t.Errorf("ClearFailed(timeout, opted_out) = %d, %v; want 1", k, err)
	}
	if k, err := s.ClearFailed(ctx, run); err != nil || k != 999 {
		t.Errorf("ClearFailed(all) = %d, %v; want 999", k, err)
	}
	if got, _ := s.Finished(ctx, run, []ResultRef{{synth(30).Source, synth(30).Key}, {synth(31).Source, synth(31).Key}}); !reflect.DeepEqual(got, []bool{false, true}) {
		t.Errorf("Finished after ClearFailed = %v, want [false true]", got)
	}

	// The file keeps it all.
	s.Close()
	s2, err := Open(ctx, path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s2.Close()
	scored, byReason, err = s2.RunCounts(ctx, run)
	if err != nil || scored != 9001 || len(byReason) != 0 {
		t.Errorf("after reopen RunCounts = %d, %v, %v; want 9001, map[]", scored, byReason, err)
	}
	if r, err := s2.Run(ctx, run); err != nil || r.ModelSHA256 != strings.Repeat("ab", 32) {
		t.Errorf("after reopen Run = %+v, %v", r, err)
	}
}

func TestSaveResultsRejectsBadVerdict(t *testing.T) {
	s, _ := openTemp(t)
	run := newRun(t, s)
	err := s.SaveResults(context.Background(), run, []DVAResult{synth(1), {Source: "s", Key: "k", Verdict: "maybe"}})
	if !errors.Is(err, ErrBadVerdict) {
		t.Fatalf("SaveResults(verdict maybe) err = %v, want ErrBadVerdict", err)
	}
	if scored, _, _ := s.RunCounts(context.Background(), run); scored != 0 {
		t.Errorf("a failed SaveResults stored %d results, want none (one transaction)", scored)
	}
}

func f64(v float64) *float64 { return &v }

func TestReviewPage(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	run := newRun(t, s)
	var rs []DVAResult
	// Scores 0.0 .. 0.9 with a tie at 0.5, and two failures.
	for i, sc := range []float32{0.3, 0.5, 0.9, 0.1, 0.5, 0.7, 0.0, 0.2, 0.8, 0.6, 0.4} {
		rs = append(rs, DVAResult{Source: "src", Key: fmt.Sprintf("k%02d", i), Score: sc, Caption: "c"})
	}
	rs = append(rs, DVAResult{Source: "src", Key: "f1", Reason: "corrupt", Error: "bad"},
		DVAResult{Source: "src", Key: "f2", Reason: "timeout", Error: "slow"})
	if err := s.SaveResults(ctx, run, rs); err != nil {
		t.Fatal(err)
	}
	if err := s.SetVerdict(ctx, run, "src", "k02", VerdictReject); err != nil {
		t.Fatal(err)
	}
	if err := s.SetVerdict(ctx, run, "src", "k05", VerdictKeep); err != nil {
		t.Fatal(err)
	}

	keys := func(rs []DVAResult) string {
		var ks []string
		for _, r := range rs {
			ks = append(ks, r.Key)
		}
		return strings.Join(ks, ",")
	}
	tests := []struct {
		name      string
		q         ReviewQuery
		want      string
		wantTotal int
	}{
		{"best first, first page", ReviewQuery{Limit: 4}, "k02,k08,k05,k09", 11},
		{"best first, second page with the tie", ReviewQuery{Order: OrderScoreDesc, Offset: 4, Limit: 3}, "k04,k01,k10", 11},
		{"worst first", ReviewQuery{Order: OrderScoreAsc, Limit: 5}, "k06,k03,k07,k00,k10", 11},
		{"by key", ReviewQuery{Order: OrderKey, Offset: 9}, "k09,k10", 11},
		{"score range", ReviewQuery{MinScore: f64(0.3), MaxScore: f64(0.6), Order: OrderScoreAsc}, "k00,k10,k01,k04,k09", 5},
		{"kept by a person", ReviewQuery{Verdict: VerdictKeep}, "k05", 1},
		{"rejected by a person", ReviewQuery{Verdict: VerdictReject}, "k02", 1},
		{"not judged, top 2", ReviewQuery{Verdict: VerdictNone, Limit: 2}, "k08,k09", 9},
		{"failed", ReviewQuery{Failed: true, Order: OrderKey}, "f1,f2", 2},
		{"failed of one reason", ReviewQuery{Failed: true, Reason: "timeout"}, "f2", 1},
		{"past the end", ReviewQuery{Offset: 50}, "", 11},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, total, err := s.ReviewPage(ctx, run, tt.q)
			if err != nil {
				t.Fatalf("ReviewPage(%+v): %v", tt.q, err)
			}
			if keys(got) != tt.want || total != tt.wantTotal {
				t.Errorf("ReviewPage(%+v) = %s (total %d), want %s (total %d)", tt.q, keys(got), total, tt.want, tt.wantTotal)
			}
		})
	}
	if _, _, err := s.ReviewPage(ctx, run, ReviewQuery{Order: "random"}); err == nil {
		t.Error("ReviewPage(order random) succeeded, want an error")
	}
	if _, _, err := s.ReviewPage(ctx, run, ReviewQuery{Verdict: "maybe"}); err == nil {
		t.Error("ReviewPage(verdict maybe) succeeded, want an error")
	}

	page, _, _ := s.ReviewPage(ctx, run, ReviewQuery{Verdict: VerdictKeep})
	if len(page) != 1 || page[0].Verdict != VerdictKeep || page[0].Score != 0.7 {
		t.Errorf("kept page = %+v, want k05 with verdict keep and score 0.7", page)
	}
	if err := s.SetVerdict(ctx, run, "src", "k05", ""); err != nil {
		t.Errorf("SetVerdict(clear): %v", err)
	}
	if _, total, _ := s.ReviewPage(ctx, run, ReviewQuery{Verdict: VerdictKeep}); total != 0 {
		t.Errorf("after clearing, %d kept, want 0", total)
	}
	if err := s.SetVerdict(ctx, run, "src", "k05", "maybe"); !errors.Is(err, ErrBadVerdict) {
		t.Errorf("SetVerdict(maybe) err = %v, want ErrBadVerdict", err)
	}
	if err := s.SetVerdict(ctx, run, "src", "nope", VerdictKeep); !errors.Is(err, ErrNotFound) {
		t.Errorf("SetVerdict(unknown item) err = %v, want ErrNotFound", err)
	}
}

// The queries a large run leans on use the indexes, not a scan and a sort.
func TestRunQueriesUseIndexes(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	plan := func(q string, args ...any) string {
		rows, err := s.DB().QueryContext(ctx, "EXPLAIN QUERY PLAN "+q, args...)
		if err != nil {
			t.Fatalf("explain %s: %v", q, err)
		}
		defer rows.Close()
		var lines []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			lines = append(lines, detail)
		}
		return strings.Join(lines, "; ")
	}
	tests := []struct{ q, want string }{
		{`SELECT key FROM dva_results WHERE run_id = 1 AND source = 's' AND key IN ('a', 'b')`, "INDEX sqlite_autoindex_dva_results_1"},
		{`SELECT key FROM dva_results WHERE run_id = 1 AND reason = '' ORDER BY score DESC, rowid DESC LIMIT 50`, "USING INDEX dva_results_score"},
		{`SELECT reason, COUNT(*) FROM dva_results WHERE run_id = 1 GROUP BY reason`, "USING COVERING INDEX dva_results_score"},
		{`SELECT score FROM dva_results WHERE run_id = 1 AND reason = ''`, "USING COVERING INDEX dva_results_score"},
	}
	for _, tt := range tests {
		p := plan(tt.q)
		if !strings.Contains(p, tt.want) || strings.Contains(p, "TEMP B-TREE") {
			t.Errorf("plan of %s = %q, want %q and no temp b-tree", tt.q, p, tt.want)
		}
	}
}

func TestConcurrentSaveResults(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	run := newRun(t, s)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for g := range 2 {
		wg.Go(func() {
			for b := range 20 {
				var rs []DVAResult
				for i := range 100 {
					r := synth(g*100000 + b*100 + i + 1)
					r.Reason, r.Error = "", ""
					rs = append(rs, r)
				}
				if err := s.SaveResults(ctx, run, rs); err != nil {
					errs[g] = err
					return
				}
			}
		})
	}
	wg.Wait()
	for g, err := range errs {
		if err != nil {
			t.Errorf("goroutine %d: SaveResults: %v", g, err)
		}
	}
	if scored, _, err := s.RunCounts(ctx, run); err != nil || scored != 4000 {
		t.Errorf("RunCounts = %d, %v; want 4000", scored, err)
	}
}
