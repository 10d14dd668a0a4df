package web

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gata-contrib/gata/app/core"
	"github.com/gata-contrib/gata/dva/dvatest"
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
		{"coffee.jpg", "a cup of coffee on a saucer"},
	}
	for i := range n {
		p := photos[i%len(photos)]
		data, err := os.ReadFile(filepath.Join(clip, p.file))
		if err != nil {
			t.Fatal(err)
		}
		name := fmt.Sprintf("%04d%s", i, filepath.Ext(p.file))
		writeFile(t, filepath.Join(dir, name), data)
		writeFile(t, filepath.Join(dir, fmt.Sprintf("%04d.txt", i)), fmt.Appendf(nil, "%s, photo %d\n", p.caption, i))
	}
	writeFile(t, filepath.Join(dir, "broken.jpg"), []byte("\xff\xd8\xff\xe0 not really a jpeg"))
	writeFile(t, filepath.Join(dir, "broken.txt"), []byte("a broken file"))
	return dir
}

func writeFile(t *testing.T, name string, data []byte) {
	t.Helper()
	if err := os.WriteFile(name, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// startRunAPI posts a run request and returns the run's job.
func startRunAPI(t *testing.T, base, path, body string) core.JobInfo {
	t.Helper()
	r := call(t, "POST", base+path, body, withKey(map[string]string{"Content-Type": "application/json"}))
	if r.status != 202 {
		t.Fatalf("POST %s %s = %d %s", path, body, r.status, r.body)
	}
	var j core.JobInfo
	r.json(t, &j)
	if j.Kind != "dva.run" || j.Subject == "" {
		t.Fatalf("POST %s = %+v, want a dva.run job naming its run", path, j)
	}
	return j
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	r := call(t, "GET", url, "", withKey(nil))
	if r.status != 200 {
		t.Fatalf("GET %s = %d %s", url, r.status, r.body)
	}
	r.json(t, v)
}

// sameJSON reports whether two values encode alike.
func sameJSON(t *testing.T, a, b any) bool {
	t.Helper()
	ja, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	jb, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Equal(ja, jb)
}

func TestRunAndReviewThroughTheAPI(t *testing.T) {
	ctx := context.Background()
	c := newValidateCore(t, nil)
	_, ts, _ := serveCore(t, c, Options{})
	patchSetting(t, ts.URL, core.SettingModel, dvatest.ClipDir(t))
	src := photoFolder(t, 12)
	out := filepath.Join(t.TempDir(), "out")

	body, _ := json.Marshal(map[string]any{"sources": []string{src}, "out": out, "keep_top": 0.5})
	job := startRunAPI(t, ts.URL, "/api/runs", string(body))
	if j := waitJob(t, ts.URL, job.ID); j.State != core.JobDone {
		t.Fatalf("run job ended %s: %s", j.State, j.Error)
	}
	id, _ := strconv.ParseInt(job.Subject, 10, 64)
	base := fmt.Sprintf("%s/api/runs/%d", ts.URL, id)

	var runs []core.RunInfo
	getJSON(t, ts.URL+"/api/runs", &runs)
	if len(runs) != 1 || runs[0].ID != id || runs[0].State != "done" || runs[0].Out != out {
		t.Errorf("GET /api/runs = %+v, want the one done run into %s", runs, out)
	}
	var sum core.RunSummary
	getJSON(t, base, &sum)
	half, err := c.ThresholdFor(ctx, id, 0.5)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Scored != 12 || sum.Failed["corrupt"] != 1 || sum.Summary == nil || sum.Summary.Kept != int64(half.Kept) {
		t.Fatalf("GET /api/runs/%d = %+v, want 12 scored, 1 corrupt, %d kept (the top half)", id, sum, half.Kept)
	}

	t.Run("review pages", func(t *testing.T) {
		var p core.ReviewPage
		getJSON(t, base+"/review?order=score_desc&limit=5", &p)
		want, err := c.Review(ctx, id, core.ReviewQuery{Order: core.OrderScoreDesc, Limit: 5})
		if err != nil {
			t.Fatal(err)
		}
		if p.Total != 12 || len(p.Items) != 5 || !sameJSON(t, p, want) {
			t.Errorf("GET review limit 5 = %+v, Review = %+v; want the same 5 of 12", p, want)
		}
		for i := 1; i < len(p.Items); i++ {
			if p.Items[i].Score > p.Items[i-1].Score {
				t.Errorf("review page not sorted high to low: %v after %v", p.Items[i].Score, p.Items[i-1].Score)
			}
		}
		getJSON(t, base+"/review?order=key&offset=10&limit=5", &p)
		if p.Total != 12 || p.Offset != 10 || len(p.Items) != 2 || p.Items[1].Key != "0011" {
			t.Errorf("GET review by key from 10 = %+v, want the last 2 of 12", p)
		}
		getJSON(t, base+"/review?failed=true", &p)
		if p.Total != 1 || p.Items[0].Reason != "corrupt" || p.Items[0].Key != "broken" {
			t.Errorf("GET review failed = %+v, want the broken file, corrupt", p)
		}
		getJSON(t, base+"/review?failed=true&reason=timeout", &p)
		if p.Total != 0 {
			t.Errorf("GET review failed by timeout = %+v, want none", p)
		}
		lo := want.Items[4].Score
		getJSON(t, base+"/review?min="+strconv.FormatFloat(float64(lo), 'g', -1, 32), &p)
		if p.Total < 5 {
			t.Errorf("GET review min=%v = %d pairs, want at least the top 5", lo, p.Total)
		}
	})

	t.Run("verdicts", func(t *testing.T) {
		sctx, cancel := context.WithCancel(ctx)
		defer cancel()
		events := openStream(t, sctx, ts.URL+"/api/events", nil)
		var low core.ReviewPage
		getJSON(t, base+"/review?order=score_asc&limit=1", &low)
		v, _ := json.Marshal(verdictRequest{Source: low.Items[0].Source, Key: low.Items[0].Key, Verdict: "keep"})
		if r := call(t, "POST", base+"/verdict", string(v), withKey(nil)); r.status != 200 {
			t.Fatalf("POST verdict = %d %s", r.status, r.body)
		}
		for e := nextEvents(t, events, 1)[0]; e.event != core.EventVerdict; e = nextEvents(t, events, 1)[0] {
		}
		var p core.ReviewPage
		getJSON(t, base+"/review?verdict=keep", &p)
		if p.Total != 1 || p.Items[0].Key != low.Items[0].Key || p.Items[0].Verdict != "keep" {
			t.Errorf("GET review verdict=keep = %+v, want the lowest pair kept", p)
		}
		getJSON(t, base+"/review?verdict=none", &p)
		if p.Total != 11 {
			t.Errorf("GET review verdict=none = %d pairs, want 11", p.Total)
		}
	})

	t.Run("distribution and keep", func(t *testing.T) {
		var d core.ScoreDistribution
		getJSON(t, base+"/distribution?bins=10", &d)
		want, err := c.ScoreDistribution(ctx, id, 10)
		if err != nil {
			t.Fatal(err)
		}
		if d.Total != 12 || len(d.Counts) != 10 || !sameJSON(t, d, want) {
			t.Errorf("GET distribution = %+v, ScoreDistribution = %+v", d, want)
		}
		getJSON(t, base+"/distribution", &d)
		if len(d.Counts) != defaultBins {
			t.Errorf("GET distribution has %d bins, want %d", len(d.Counts), defaultBins)
		}
		mid := (float64(want.Min) + float64(want.Max)) / 2
		var k core.Keep
		getJSON(t, base+"/keep?threshold="+strconv.FormatFloat(mid, 'f', 6, 64), &k)
		wk, err := c.KeepAt(ctx, id, mid)
		if err != nil {
			t.Fatal(err)
		}
		if k.Total != 12 || k.Kept != wk.Kept || math.Abs(k.Fraction-wk.Fraction) > 1e-9 {
			t.Errorf("GET keep at %v = %+v, KeepAt = %+v", mid, k, wk)
		}
		getJSON(t, base+"/keep?keep_top=0.25", &k)
		wk, err = c.ThresholdFor(ctx, id, 0.25)
		if err != nil {
			t.Fatal(err)
		}
		if !sameJSON(t, k, wk) || k.Kept < 3 {
			t.Errorf("GET keep top 0.25 = %+v, ThresholdFor = %+v; want at least 3 kept", k, wk)
		}
	})

	t.Run("image", func(t *testing.T) {
		r := call(t, "GET", base+"/image?source="+url.QueryEscape(src)+"&key=0002", "", withKey(nil))
		want, err := os.ReadFile(filepath.Join(src, "0002.jpg"))
		if err != nil {
			t.Fatal(err)
		}
		if r.status != 200 || r.body != string(want) {
			t.Fatalf("GET image 0002 = %d, %d bytes; want the %d bytes of the file", r.status, len(r.body), len(want))
		}
		if ct, cc := r.header.Get("Content-Type"), r.header.Get("Cache-Control"); ct != "image/jpeg" || !strings.HasPrefix(cc, "private") {
			t.Errorf("GET image headers: Content-Type %q, Cache-Control %q; want image/jpeg, private", ct, cc)
		}
		var p core.ReviewPage
		getJSON(t, base+"/review?order=key&limit=1", &p)
		r = call(t, "GET", base+"/image?source="+url.QueryEscape(p.Items[0].Source)+"&key="+p.Items[0].Key, "", withKey(nil))
		if r.status != 200 || r.header.Get("Content-Type") != "image/jpeg" {
			t.Errorf("GET image of the first pair = %d %s", r.status, r.header.Get("Content-Type"))
		}
	})

	t.Run("export again at a threshold", func(t *testing.T) {
		// The lowest pair was kept by hand; the threshold keeps the top pairs.
		var k core.Keep
		getJSON(t, base+"/keep?keep_top=0.5", &k)
		body := fmt.Sprintf(`{"min_score": %v}`, k.Threshold)
		j := startRunAPI(t, ts.URL, fmt.Sprintf("/api/runs/%d/continue", id), body)
		if j.Subject != strconv.FormatInt(id, 10) {
			t.Errorf("continue started a job for run %s, want %d", j.Subject, id)
		}
		if j := waitJob(t, ts.URL, j.ID); j.State != core.JobDone {
			t.Fatalf("export job ended %s: %s", j.State, j.Error)
		}
		var s core.RunSummary
		getJSON(t, base, &s)
		if s.Summary == nil || s.Summary.MinScore == nil || *s.Summary.MinScore != k.Threshold || s.Summary.Kept != int64(k.Kept)+1 || s.Summary.VerdictKeep != 1 {
			t.Errorf("summary after the export = %+v, want min score %v and %d kept (%d by the threshold, 1 by hand)", s.Summary, k.Threshold, k.Kept+1, k.Kept)
		}
	})

	t.Run("partials", func(t *testing.T) {
		html := call(t, "GET", ts.URL+"/ui/validate/runs", "", withKey(nil)).body
		for _, want := range []string{fmt.Sprintf(`data-run-id="%d"`, id), `data-run-state="done"`, fmt.Sprintf(`href="#/validate/review/%d"`, id), `data-testid="run-retry"`, "12 scored", "corrupt 1", "kept</span> at ≥ 0."} {
			if !strings.Contains(html, want) {
				t.Errorf("GET /ui/validate/runs lacks %s:\n%s", want, html)
			}
		}
		if strings.Contains(html, `data-testid="run-continue"`) || strings.Contains(html, `data-testid="run-pause"`) {
			t.Errorf("a done run offers Continue or Pause:\n%s", html)
		}
		sec := call(t, "GET", ts.URL+"/ui/section/validate", "", withKey(nil)).body
		if !strings.Contains(sec, `id="run-form"`) || !strings.Contains(sec, `data-testid="run-review"`) {
			t.Errorf("the Validate section lacks the batch runs card:\n%s", sec)
		}
		rv := call(t, "GET", fmt.Sprintf("%s/ui/validate/review/%d", ts.URL, id), "", withKey(nil))
		for _, want := range []string{`data-testid="section-review"`, fmt.Sprintf(`data-run="%d"`, id), `<option value="failed:corrupt">`, `data-testid="threshold"`, `data-testid="shortcuts"`, `data-threshold="`} {
			if rv.status != 200 || !strings.Contains(rv.body, want) {
				t.Errorf("GET /ui/validate/review/%d = %d, lacks %s:\n%s", id, rv.status, want, rv.body)
			}
		}
	})

	t.Run("errors", func(t *testing.T) {
		jsonHdr := withKey(map[string]string{"Content-Type": "application/json"})
		okVerdict := `{"source":` + strconv.Quote(src) + `,"key":"0001","verdict":"reject"}`
		tests := []struct {
			name, method, path, body string
			want                     int
			words                    string
		}{
			{"unknown run", "GET", "/api/runs/999", "", 404, "no such run"},
			{"run id not a number", "GET", "/api/runs/abc/review", "", 404, "no such run"},
			{"review of an unknown run", "GET", "/api/runs/999/review", "", 404, "no such run"},
			{"bad order", "GET", fmt.Sprintf("/api/runs/%d/review?order=random", id), "", 400, "random"},
			{"bad min", "GET", fmt.Sprintf("/api/runs/%d/review?min=high", id), "", 400, "not a number"},
			{"bad bins", "GET", fmt.Sprintf("/api/runs/%d/distribution?bins=0", id), "", 400, "from 1 to 200"},
			{"threshold out of range", "GET", fmt.Sprintf("/api/runs/%d/keep?threshold=2", id), "", 400, "not in [-1, 1]"},
			{"keep without a threshold", "GET", fmt.Sprintf("/api/runs/%d/keep", id), "", 400, "threshold"},
			{"image of an unknown key", "GET", fmt.Sprintf("/api/runs/%d/image?source=%s&key=nope", id, url.QueryEscape(src)), "", 404, "no such item"},
			{"bad verdict", "POST", fmt.Sprintf("/api/runs/%d/verdict", id), `{"source":` + strconv.Quote(src) + `,"key":"0001","verdict":"maybe"}`, 400, "maybe"},
			{"verdict on an unknown key", "POST", fmt.Sprintf("/api/runs/%d/verdict", id), `{"source":"x","key":"nope","verdict":"keep"}`, 404, "no such item"},
			{"verdict on an unknown run", "POST", "/api/runs/999/verdict", okVerdict, 404, "no such"},
			{"verdict not JSON", "POST", fmt.Sprintf("/api/runs/%d/verdict", id), `keep`, 400, "JSON"},
			{"run without datasets", "POST", "/api/runs", `{"out":"/tmp/x"}`, 400, "no dataset"},
			{"run with an unknown field", "POST", "/api/runs", `{"sources":["x"],"batch":3}`, 400, "batch"},
			{"run with keep-top out of range", "POST", "/api/runs", `{"sources":["x"],"out":"/tmp/x","keep_top":30}`, 400, "keep-top"},
			{"continue an unknown run", "POST", "/api/runs/999/continue", "", 404, "no such run"},
			{"pause a run that is not running", "POST", fmt.Sprintf("/api/runs/%d/pause", id), "", 404, "not running"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				r := call(t, tt.method, ts.URL+tt.path, tt.body, jsonHdr)
				if r.status != tt.want {
					t.Errorf("%s %s = %d %s, want %d", tt.method, tt.path, r.status, r.body, tt.want)
				}
				if msg := errorLine(t, r); !strings.Contains(msg, tt.words) {
					t.Errorf("error %q does not say %q", msg, tt.words)
				}
			})
		}

		// A browser session needs the CSRF token for every run action.
		sr := call(t, "POST", ts.URL+"/api/session", "", withKey(nil))
		ck := sessionCookie(t, sr)
		cookie := map[string]string{"Cookie": ck.Name + "=" + ck.Value, "Content-Type": "application/json"}
		for _, p := range []string{"/api/runs", "/verdict", "/pause", "/resume", "/continue", "/retry"} {
			path := p
			if p != "/api/runs" {
				path = fmt.Sprintf("/api/runs/%d%s", id, p)
			}
			if r := call(t, "POST", ts.URL+path, okVerdict, cookie); r.status != 403 {
				t.Errorf("POST %s without CSRF token = %d %s, want 403", path, r.status, r.body)
			}
		}
		if r := call(t, "GET", base+"/review", "", cookie); r.status != 200 {
			t.Errorf("GET review with the session cookie = %d, want 200", r.status)
		}
	})
}

// slowImages serves one image at every path, each only once release is closed.
func slowImages(t *testing.T, img []byte, release <-chan struct{}) *httptest.Server {
	t.Helper()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		w.Header().Set("Content-Type", "image/jpeg")
		w.Write(img)
	}))
	t.Cleanup(ts.Close)
	return ts
}

func TestRunPauseCancelContinue(t *testing.T) {
	c := newValidateCore(t, nil)
	_, ts, _ := serveCore(t, c, Options{})
	clip := dvatest.ClipDir(t)
	patchSetting(t, ts.URL, core.SettingModel, clip)
	img, err := os.ReadFile(filepath.Join(clip, "coffee.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	images := slowImages(t, img, release)
	list := filepath.Join(t.TempDir(), "list.csv")
	var csv strings.Builder
	csv.WriteString("url,caption\n")
	for i := range 4 {
		fmt.Fprintf(&csv, "%s/%d.jpg,a cup of coffee number %d\n", images.URL, i, i)
	}
	writeFile(t, list, []byte(csv.String()))
	out := filepath.Join(t.TempDir(), "out")

	body, _ := json.Marshal(map[string]any{"sources": []string{list}, "out": out})
	job := startRunAPI(t, ts.URL, "/api/runs", string(body))
	id := job.Subject
	base := ts.URL + "/api/runs/" + id

	// The images are held back: the run keeps running until they are released.
	r := call(t, "POST", base+"/pause", "", withKey(nil))
	var p core.RunPaused
	r.json(t, &p)
	if r.status != 200 || !p.Paused {
		t.Fatalf("POST pause = %d %s, want it paused", r.status, r.body)
	}
	html := call(t, "GET", ts.URL+"/ui/validate/runs", "", withKey(nil)).body
	for _, want := range []string{`data-run-state="paused"`, `data-testid="run-goon"`, `data-testid="run-cancel"`, `data-job-id="` + job.ID + `"`, `data-testid="run-progress"`} {
		if !strings.Contains(html, want) {
			t.Errorf("runs card of a paused run lacks %s:\n%s", want, html)
		}
	}
	r = call(t, "POST", base+"/resume", "", withKey(nil))
	r.json(t, &p)
	if r.status != 200 || p.Paused {
		t.Fatalf("POST resume = %d %s, want it going on", r.status, r.body)
	}
	if html := call(t, "GET", ts.URL+"/ui/validate/runs", "", withKey(nil)).body; !strings.Contains(html, `data-run-state="running"`) || !strings.Contains(html, `data-testid="run-pause"`) {
		t.Errorf("runs card of a running run offers no Pause:\n%s", html)
	}

	if r := call(t, "POST", ts.URL+"/api/jobs/"+job.ID+"/cancel", "", withKey(nil)); r.status != 202 {
		t.Fatalf("cancel the run's job = %d %s", r.status, r.body)
	}
	if j := waitJob(t, ts.URL, job.ID); j.State != core.JobCancelled {
		t.Fatalf("cancelled run job ended %s: %s", j.State, j.Error)
	}
	waitRunState(t, base, "cancelled")
	html = call(t, "GET", ts.URL+"/ui/validate/runs", "", withKey(nil)).body
	if !strings.Contains(html, `data-testid="run-continue"`) || strings.Contains(html, `data-testid="run-pause"`) {
		t.Errorf("runs card of a cancelled run offers no Continue, or Pause:\n%s", html)
	}

	close(release)
	j := startRunAPI(t, ts.URL, "/api/runs/"+id+"/continue", "")
	if j := waitJob(t, ts.URL, j.ID); j.State != core.JobDone {
		t.Fatalf("continued run ended %s: %s", j.State, j.Error)
	}
	var s core.RunSummary
	getJSON(t, base, &s)
	if s.State != "done" || s.Scored != 4 || s.Summary == nil || s.Summary.Kept != 4 {
		t.Errorf("continued run = %+v, want done with the 4 pairs scored and kept", s)
	}
	j = startRunAPI(t, ts.URL, "/api/runs/"+id+"/retry", "")
	if j := waitJob(t, ts.URL, j.ID); j.State != core.JobDone {
		t.Fatalf("retried run ended %s: %s", j.State, j.Error)
	}
}

// waitRunState polls a run until it is in the state.
func waitRunState(t *testing.T, base, state string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var s core.RunSummary
		getJSON(t, base, &s)
		if s.State == state {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("run is %s after 30 s, want %s", s.State, state)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
