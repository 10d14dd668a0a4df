package validate

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"github.com/gata-contrib/gata/app/core"
	"github.com/gata-contrib/gata/app/gui/internal/widgettest"
	"github.com/gata-contrib/gata/app/gui/review"
	"github.com/gata-contrib/gata/app/gui/runs"
	"github.com/gata-contrib/gata/dva/dvatest"
)

// photoFolder writes a folder of n copies of the shared photos with .txt captions, and one
// corrupt file.
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
	write := func(name string, data []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		p := photos[i%len(photos)]
		data, err := os.ReadFile(filepath.Join(clip, p.file))
		if err != nil {
			t.Fatal(err)
		}
		write(fmt.Sprintf("%04d%s", i, filepath.Ext(p.file)), data)
		write(fmt.Sprintf("%04d.txt", i), []byte(fmt.Sprintf("%s, photo %d\n", p.caption, i)))
	}
	write("broken.jpg", []byte("\xff\xd8\xff\xe0 not really a jpeg"))
	write("broken.txt", []byte("a broken file"))
	return dir
}

// onlyRun returns the id of the one run the core knows.
func (e *env) onlyRun(t *testing.T) int64 {
	t.Helper()
	list, err := e.core.Runs(context.Background())
	if err != nil || len(list) != 1 {
		t.Fatalf("core.Runs = %d runs, %v; want one", len(list), err)
	}
	return list[0].ID
}

// row waits until the runs card lists a run and returns its row.
func (e *env) row(t *testing.T, id int64) *runs.Row {
	t.Helper()
	e.ui.Until(t, fmt.Sprintf("run %d in the list", id), func() bool { return e.screen.Runs().Row(id) != nil })
	return e.screen.Runs().Row(id)
}

// key sends a key to the window's canvas the way the driver does when nothing is focused.
func (e *env) key(name fyne.KeyName) { e.win.Canvas().OnTypedKey()(&fyne.KeyEvent{Name: name}) }

func (e *env) reviewPage(t *testing.T, run int64, q core.ReviewQuery) core.ReviewPage {
	t.Helper()
	p, err := e.core.Review(context.Background(), run, q)
	if err != nil {
		t.Fatalf("core.Review(%+v): %v", q, err)
	}
	return p
}

func TestBatchRunReviewAndExport(t *testing.T) {
	e := newEnv(t, nil)
	s := e.screen
	e.useModel(t, dvatest.ClipDir(t))
	src := photoFolder(t, 12)
	out := filepath.Join(t.TempDir(), "out")

	// The form starts the run.
	source, outE, keep, value, _, start, msg := s.Runs().Form()
	if value.Visible() {
		t.Error("the keep value entry is shown while keeping every scored pair")
	}
	test.Type(source, src)
	test.Type(outE, out)
	keep.SetSelected(runs.KeepTop)
	test.Type(value, "50")
	test.Tap(start)
	e.ui.Until(t, "the run to start", func() bool {
		return strings.HasPrefix(msg.Text, "Started run") || msg.Importance == widget.DangerImportance
	})
	if !strings.HasPrefix(msg.Text, "Started run") {
		t.Fatalf("after Start run: %q", msg.Text)
	}
	id := e.onlyRun(t)
	row := e.row(t, id)
	e.ui.Until(t, "the run to finish", func() bool { return row.State.Text == "done" })
	if got, want := row.Counts.Text, "12 scored · 1 failed (corrupt 1)"; got != want {
		t.Errorf("counts shown = %q, want %q", got, want)
	}
	if row.Bar.Visible() || row.Pause.Visible() || row.Cancel.Visible() || row.Continue.Visible() || !row.Retry.Visible() || !row.Review.Visible() {
		t.Errorf("a done run with a failed item shows bar %v pause %v cancel %v continue %v retry %v review %v; want only Retry and Review",
			row.Bar.Visible(), row.Pause.Visible(), row.Cancel.Visible(), row.Continue.Visible(), row.Retry.Visible(), row.Review.Visible())
	}
	sum, err := e.core.RunSummary(context.Background(), id)
	if err != nil || sum.Summary == nil || sum.Summary.KeepFraction != 0.5 {
		t.Fatalf("RunSummary = %+v, %v; want an export keeping the top 50 %%", sum, err)
	}
	assertMarkup(t, "runs_done.xml", s.Runs().List())

	// Review opens on the highest score.
	test.Tap(row.Review)
	if !s.ReviewShown() || s.main.Visible() {
		t.Fatal("Review did not show the review view in place of the page")
	}
	rv := s.Review()
	all := e.reviewPage(t, id, core.ReviewQuery{Limit: 100})
	if all.Total != 12 {
		t.Fatalf("core.Review total = %d, want 12", all.Total)
	}
	at := func(i int) core.ReviewItem { return all.Items[i] }
	e.waitItem(t, at(0).Key)
	if got := widgettest.Labels(rv.Content()); !slices.Contains(got, at(0).Caption) || !slices.Contains(got, fmt.Sprintf("%.3f", at(0).Score)) ||
		!slices.Contains(got, "1 of 12") || !slices.Contains(got, review.ShortcutsText) {
		t.Errorf("review shows %q; want the first pair's caption, score, its place and the shortcuts", got)
	}
	e.ui.Until(t, "the image and the keep count", func() bool { return shownImage(rv.Content()) != nil && rv.Kept().Total == 12 })
	if img := shownImage(rv.Content()); img.Resource.Name() != at(0).Key || len(img.Resource.Content()) == 0 {
		t.Errorf("image shown = %q, want the bytes of %q", img.Resource.Name(), at(0).Key)
	}
	assertMarkup(t, "review.xml", rv.Content())

	// Keys: → next, K keep, → next, R reject, → next, K then U (cleared), ← back.
	e.key(fyne.KeyRight)
	e.waitItem(t, at(1).Key)
	test.TypeOnCanvas(e.win.Canvas(), "k")
	e.waitVerdict(t, core.VerdictKeep)
	e.key(fyne.KeyRight)
	e.waitItem(t, at(2).Key)
	test.TypeOnCanvas(e.win.Canvas(), "r")
	e.waitVerdict(t, core.VerdictReject)
	e.key(fyne.KeyRight)
	e.waitItem(t, at(3).Key)
	test.TypeOnCanvas(e.win.Canvas(), "k")
	e.waitVerdict(t, core.VerdictKeep)
	test.TypeOnCanvas(e.win.Canvas(), "u")
	e.waitVerdict(t, "")
	e.key(fyne.KeyLeft)
	e.key(fyne.KeyLeft)
	e.waitItem(t, at(1).Key)
	if v := rv.Item().Verdict; v != core.VerdictKeep {
		t.Errorf("verdict shown on %s after going back = %q, want keep", at(1).Key, v)
	}
	kept := e.reviewPage(t, id, core.ReviewQuery{Verdict: core.VerdictKeep})
	rejected := e.reviewPage(t, id, core.ReviewQuery{Verdict: core.VerdictReject})
	if kept.Total != 1 || kept.Items[0].Key != at(1).Key || rejected.Total != 1 || rejected.Items[0].Key != at(2).Key {
		t.Errorf("stored verdicts: keep %+v, reject %+v; want %s kept and %s rejected", kept.Items, rejected.Items, at(1).Key, at(2).Key)
	}

	// Filters: the rejected pairs, then the failed items, then everything by key.
	root := rv.Content()
	selectWith(t, root, review.VerdictAll).SetSelected(review.VerdictReject)
	e.waitItem(t, at(2).Key)
	if !slices.Contains(widgettest.Labels(root), "1 of 1") {
		t.Errorf("with the rejected filter the view shows %q, want 1 of 1", widgettest.Labels(root))
	}
	selectWith(t, root, review.VerdictReject).SetSelected(review.VerdictAll)
	test.Tap(checkWith(t, root, review.FailedLabel))
	e.waitItem(t, "broken")
	if !slices.Contains(widgettest.Labels(root), "failed: corrupt") {
		t.Errorf("a failed item shows %q, want its reason", widgettest.Labels(root))
	}
	test.Tap(checkWith(t, root, review.FailedLabel))
	selectWith(t, root, review.OrderHigh).SetSelected(review.OrderKey)
	byKey := e.reviewPage(t, id, core.ReviewQuery{Order: core.OrderKey, Limit: 1})
	e.waitItem(t, byKey.Items[0].Key)

	// The slider: the count it shows is core.KeepAt's.
	thr := float64(at(5).Score)
	rv.Slider().SetValue(thr)
	want, err := e.core.KeepAt(context.Background(), id, rv.Slider().Value)
	if err != nil {
		t.Fatal(err)
	}
	e.ui.Until(t, "the keep count at the new threshold", func() bool { return rv.Kept() == want })
	if line := fmt.Sprintf("keeps %d of %d pairs: the top %.1f %%.", want.Kept, want.Total, 100*want.Fraction); !containsPart(widgettest.Labels(root), line) {
		t.Errorf("view says %q, want it to contain %q", widgettest.Labels(root), line)
	}

	// Apply: the run is exported again at that minimum score; verdicts win.
	test.Tap(widgettest.Button(t, root, review.ApplyLabel))
	e.ui.Until(t, "the export", func() bool { return rv.Exported() != nil })
	x := rv.Exported().Summary
	t32 := float32(rv.Slider().Value)
	wantKept := 0
	for _, it := range all.Items {
		v := ""
		switch it.Key {
		case at(1).Key:
			v = core.VerdictKeep
		case at(2).Key:
			v = core.VerdictReject
		}
		if v == core.VerdictKeep || (v == "" && it.Score >= t32) {
			wantKept++
		}
	}
	if x.MinScore == nil || *x.MinScore != t32 || x.Kept != int64(wantKept) || x.VerdictKeep != 1 || x.VerdictReject != 1 || x.Scored != 12 {
		t.Errorf("re-export summary: min score %v kept %d (verdicts %d keep, %d reject) of %d; want %v, %d, 1, 1, 12",
			x.MinScore, x.Kept, x.VerdictKeep, x.VerdictReject, x.Scored, t32, wantKept)
	}
	if !containsPart(widgettest.Labels(root), fmt.Sprintf("Exported: %d of 12 scored pairs kept", wantKept)) {
		t.Errorf("view says %q after the export", widgettest.Labels(root))
	}

	// Back to the runs; the row shows the run done again.
	test.Tap(widgettest.Button(t, root, review.BackLabel))
	if s.ReviewShown() || !s.main.Visible() {
		t.Error("Runs did not go back to the page")
	}
	e.ui.Until(t, "the row after the export", func() bool { return row.State.Text == "done" })
}

func TestBatchRunPauseCancelContinueRetry(t *testing.T) {
	e := newEnv(t, nil)
	s := e.screen
	model := dvatest.ClipDir(t)
	e.useModel(t, model)
	src := photoFolder(t, 40)
	// A slow run, one item a batch: started on the core directly (the form has no batch size).
	j, err := e.core.StartRun(context.Background(), core.RunRequest{Sources: []string{src}, Out: filepath.Join(t.TempDir(), "out"),
		BatchSize: 1, CommitEvery: 1})
	if err != nil {
		t.Fatal(err)
	}
	id, _ := strconv.ParseInt(j.Subject, 10, 64)
	row := e.row(t, id)
	e.ui.Until(t, "the row to show the run running", func() bool { return row.State.Text == "running" || row.State.Text == "done" })
	if row.State.Text == "done" {
		t.Fatal("the run ended before it could be paused")
	}
	if !row.Pause.Visible() || !row.Cancel.Visible() || row.Review.Visible() || row.Continue.Visible() {
		t.Errorf("a running run shows pause %v cancel %v review %v continue %v", row.Pause.Visible(), row.Cancel.Visible(), row.Review.Visible(), row.Continue.Visible())
	}
	test.Tap(row.Pause)
	e.ui.Until(t, "the row to show the run paused", func() bool { return row.State.Text == "paused" && row.Pause.Text == runs.GoOnLabel })
	if !e.core.RunIsPaused(id) {
		t.Error("RunIsPaused = false after Pause")
	}
	test.Tap(row.Pause) // Go on
	e.ui.Until(t, "the row to show the run going on", func() bool { return row.State.Text != "paused" })
	if e.core.RunIsPaused(id) {
		t.Error("RunIsPaused = true after Go on")
	}
	// The runner's progress reaches the row: items, failures and the backend. (That the
	// core's progress says "paused" while paused is tested in app/core.)
	e.ui.Until(t, "the run's progress", func() bool {
		p := row.Progress.Text
		return strings.Contains(p, " items") && strings.Contains(p, "failed") && strings.Contains(p, "cpu") || row.State.Text == "done"
	})

	test.Tap(row.Cancel)
	e.ui.Until(t, "the run to stop", func() bool { return row.State.Text == "cancelled" || row.State.Text == "done" })
	if row.State.Text == "cancelled" {
		if !row.Continue.Visible() || !strings.Contains(row.Message.Text, "resume") {
			t.Errorf("a cancelled run: Continue visible %v, message %q", row.Continue.Visible(), row.Message.Text)
		}
		test.Tap(row.Continue)
		e.ui.Until(t, "the continued run to finish", func() bool { return row.State.Text == "done" })
	}
	if got, want := row.Counts.Text, "40 scored · 1 failed (corrupt 1)"; got != want {
		t.Errorf("counts after continuing = %q, want %q", got, want)
	}

	test.Tap(row.Retry)
	e.ui.Until(t, "the retry to start", func() bool { return row.State.Text != "done" })
	e.ui.Until(t, "the retry to finish", func() bool { return row.State.Text == "done" })
	if got := row.Counts.Text; got != "40 scored · 1 failed (corrupt 1)" {
		t.Errorf("counts after Retry failed = %q", got)
	}
	_ = s
}

// waitItem waits until the review shows the pair with the given key.
func (e *env) waitItem(t *testing.T, key string) {
	t.Helper()
	rv := e.screen.Review()
	e.ui.Until(t, "the review to show "+key, func() bool { return rv.Item() != nil && rv.Item().Key == key })
}

// waitVerdict waits until the pair shown has the verdict (the core's event sets it).
func (e *env) waitVerdict(t *testing.T, v string) {
	t.Helper()
	rv := e.screen.Review()
	e.ui.Until(t, fmt.Sprintf("verdict %q", v), func() bool { return rv.Item() != nil && rv.Item().Verdict == v })
}

// shownImage is the visible image with a resource under root, or nil.
func shownImage(root fyne.CanvasObject) *canvas.Image {
	var found *canvas.Image
	widgettest.Walk(root, func(o fyne.CanvasObject) {
		if img, ok := o.(*canvas.Image); ok && img.Visible() && img.Resource != nil && !strings.HasSuffix(img.Resource.Name(), ".svg") && found == nil {
			found = img
		}
	})
	return found
}

func selectWith(t *testing.T, root fyne.CanvasObject, selected string) *widget.Select {
	t.Helper()
	var found *widget.Select
	widgettest.Walk(root, func(o fyne.CanvasObject) {
		if s, ok := o.(*widget.Select); ok && s.Selected == selected && found == nil {
			found = s
		}
	})
	if found == nil {
		t.Fatalf("no select showing %q", selected)
	}
	return found
}

func checkWith(t *testing.T, root fyne.CanvasObject, text string) *widget.Check {
	t.Helper()
	var found *widget.Check
	widgettest.Walk(root, func(o fyne.CanvasObject) {
		if c, ok := o.(*widget.Check); ok && c.Text == text && found == nil {
			found = c
		}
	})
	if found == nil {
		t.Fatalf("no check %q", text)
	}
	return found
}

func containsPart(texts []string, part string) bool {
	for _, s := range texts {
		if strings.Contains(s, part) {
			return true
		}
	}
	return false
}
