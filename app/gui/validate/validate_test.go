package validate

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	fstorage "fyne.io/fyne/v2/storage"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"github.com/gata-contrib/gata/app/core"
	"github.com/gata-contrib/gata/app/gui/internal/widgettest"
	"github.com/gata-contrib/gata/dva"
	"github.com/gata-contrib/gata/dva/clip"
	"github.com/gata-contrib/gata/dva/cpu"
	"github.com/gata-contrib/gata/dva/dvatest"
	"github.com/gata-contrib/gata/dva/models"
	"github.com/gata-contrib/gata/storage"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// env is the page in a window of Fyne's test app over a real core on a real SQLite file,
// with the real model store and the CPU engine.
type env struct {
	core   *core.Core
	screen *Screen
	win    fyne.Window
	ui     *widgettest.Queue
}

// newEnv builds the page; specs replaces the registry of known models (nil: the built-in one).
func newEnv(t *testing.T, specs []models.Spec) *env {
	t.Helper()
	test.NewTempApp(t)
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	st, err := storage.Open(ctx, filepath.Join(dir, storage.DBName))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	c, err := core.New(core.Options{Version: "test", DataDir: dir, Store: st, Logger: log,
		Models: models.NewStore(filepath.Join(dir, "models"), models.Options{Specs: specs, RetryWait: time.Millisecond}),
		LoadEngine: func(ctx context.Context, dir string) (core.Engine, error) {
			m, err := clip.LoadModel(dir)
			if err != nil {
				return nil, err
			}
			return dva.NewEngine(m.Config, cpu.New(m, 2),
				dva.EngineOptions{ModelDir: dir, ModelName: filepath.Base(dir)})
		}})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- c.Jobs().Serve(ctx) }()

	q := &widgettest.Queue{}
	w := test.NewWindow(nil)
	w.Resize(fyne.NewSize(800, 1100))
	s := New(ctx, testSection, c, w, q.Do)
	w.SetContent(s.Content())

	// The core's events reach the page as the shell hands them over.
	follow := q.Follow(ctx, c, func(e core.Event) {
		switch d := e.Data.(type) {
		case core.JobInfo:
			s.ApplyJob(d)
		case []core.Setting:
			s.ApplySettings(d)
		case core.RunPaused:
			s.ApplyRunPaused(d)
		case core.VerdictChange:
			s.ApplyVerdict(d)
		}
	})
	t.Cleanup(func() {
		cancel()
		follow()
		s.Close()
		if err := <-served; err != nil {
			t.Errorf("Jobs.Serve returned %v", err)
		}
		c.Close()
		st.Close()
		w.Close()
	})
	return &env{core: c, screen: s, win: w, ui: q}
}

var testSection = core.Section{ID: "validate", Title: "Validate", Summary: "Score image–text pairs.",
	Coming: []string{"Batch runs", "A review screen"}}

// useModel stores the Validate model setting and waits for the page to show it ready.
func (e *env) useModel(t *testing.T, model string) {
	t.Helper()
	if _, err := e.core.UpdateSettings(context.Background(), map[string]string{core.SettingModel: model}); err != nil {
		t.Fatal(err)
	}
	e.ui.Until(t, "the page to follow the model setting", func() bool { return e.screen.state.Model == model })
}

// choose hands a file to the page the way the file dialog does, and waits until it is read.
func (e *env) choose(t *testing.T, path string) {
	t.Helper()
	s := e.screen
	s.ChooseFile(fstorage.Reader(fstorage.NewFileURI(path)))
	e.ui.Until(t, "the chosen file to be read", func() bool { return !s.scoreBtn.Disabled() || s.scoreMsg.Visible() })
}

// scoreWith types a caption, taps Score and waits for the scoring to end.
func (e *env) scoreWith(t *testing.T, caption string) {
	t.Helper()
	s := e.screen
	test.Type(s.caption, caption)
	test.Tap(s.scoreBtn)
	if !s.scoreBtn.Disabled() || !s.scoring {
		t.Error("Score button still enabled while scoring")
	}
	e.ui.Until(t, "the scoring to end", func() bool { return !s.scoring })
}

func TestScoreAChosenImage(t *testing.T) {
	e := newEnv(t, nil)
	s := e.screen
	dir := dvatest.ClipDir(t)
	e.useModel(t, dir)
	if got := s.modelStatus.Text; !s.state.Ready || !strings.HasPrefix(got, "Ready") {
		t.Errorf("model status with a model folder = %q (ready %v), want ready", got, s.state.Ready)
	}
	if s.downloadBtn.Visible() || s.verifyBtn.Visible() || s.licence.Visible() {
		t.Error("a model folder shows Download, Verify or a licence; those are for known models")
	}
	if !s.scoreBtn.Disabled() {
		t.Error("Score enabled before an image is chosen")
	}

	path := filepath.Join(dir, "coffee.jpg")
	e.choose(t, path)
	if s.scoreBtn.Disabled() || !s.preview.Visible() || s.preview.Resource == nil || s.preview.Resource.Name() != "coffee.jpg" {
		t.Fatalf("after choosing coffee.jpg: Score disabled %v, preview visible %v", s.scoreBtn.Disabled(), s.preview.Visible())
	}
	if s.preview.FillMode != canvas.ImageFillContain || s.preview.MinSize() != previewSize {
		t.Errorf("preview fill mode %v, min size %v; want contain, %v", s.preview.FillMode, s.preview.MinSize(), previewSize)
	}
	const caption = "a cup of coffee on a saucer, seen from above"
	e.scoreWith(t, caption)
	if !s.result.Visible() || s.scoreMsg.Visible() {
		t.Fatalf("no score shown; message %q", s.scoreMsg.Text)
	}

	// What the core answers for the same input, asked directly.
	img, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want, err := e.core.ScorePair(context.Background(), core.ScoreRequest{Name: "coffee.jpg", Image: img, Caption: caption})
	if err != nil {
		t.Fatal(err)
	}
	if got, w := s.score.Text, fmt.Sprintf("%.3f", want.Score); got != w {
		t.Errorf("score shown = %q, ScorePair = %v; want %q", got, want.Score, w)
	}
	if s.scored.Text != caption {
		t.Errorf("caption shown = %q, want %q", s.scored.Text, caption)
	}
	if got, w := s.usedModel.Text, "clip · "+want.Model.Backend; got != w {
		t.Errorf("model shown = %q, want %q", got, w)
	}
	if !s.state.Loaded || s.modelStatus.Text != "Ready, loaded." {
		t.Errorf("model status after scoring = %q, want it loaded", s.modelStatus.Text)
	}
	// The scoring card does not depend on where the model folder is (its name is its
	// folder's name; the engine runs on two threads on every machine).
	assertMarkup(t, "scored.xml", s.scoreCard)
}

func TestNotAnImage(t *testing.T) {
	e := newEnv(t, nil)
	s := e.screen
	e.useModel(t, dvatest.ClipDir(t))
	path := filepath.Join(t.TempDir(), "notes.txt")
	if err := os.WriteFile(path, []byte("shopping list:\nmilk\ncoffee\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.choose(t, path)
	e.scoreWith(t, "a shopping list")
	msg := s.scoreMsg.Text
	if !s.scoreMsg.Visible() || s.scoreMsg.Importance != widget.DangerImportance || !strings.Contains(msg, "notes.txt") || strings.Contains(msg, "\n") {
		t.Errorf("error shown = %q (visible %v), want one line naming notes.txt", msg, s.scoreMsg.Visible())
	}
	if s.result.Visible() || s.score.Text != "" {
		t.Errorf("a score is shown for a non-image: %q", s.score.Text)
	}
	if s.scoreBtn.Disabled() || s.chooseBtn.Disabled() {
		t.Error("buttons stay disabled after the error")
	}
}

func TestImageTooLarge(t *testing.T) {
	e := newEnv(t, nil)
	s := e.screen
	path := filepath.Join(t.TempDir(), "huge.png")
	if err := os.WriteFile(path, make([]byte, core.MaxImageBytes+1), 0o644); err != nil {
		t.Fatal(err)
	}
	e.choose(t, path)
	if !s.scoreMsg.Visible() || !strings.Contains(s.scoreMsg.Text, "limit") || !s.scoreBtn.Disabled() {
		t.Errorf("after a file over the limit: message %q, Score disabled %v", s.scoreMsg.Text, s.scoreBtn.Disabled())
	}
}

func TestDefaultModelNotDownloaded(t *testing.T) {
	e := newEnv(t, nil)
	s := e.screen
	sp, ok := models.Lookup(models.DefaultModel)
	if !ok {
		t.Fatal("no default model in the registry")
	}
	if s.state.Model != models.DefaultModel || s.state.Ready {
		t.Fatalf("state = %+v, want the default model, not ready", s.state)
	}
	if !s.downloadBtn.Visible() || s.downloadBtn.Disabled() || s.verifyBtn.Visible() {
		t.Errorf("Download visible %v enabled %v, Verify visible %v; want only Download", s.downloadBtn.Visible(), !s.downloadBtn.Disabled(), s.verifyBtn.Visible())
	}
	if !s.licence.Visible() || s.licenceLink.Text != sp.License.Name || s.licenceLink.URL == nil || s.licenceLink.URL.String() != sp.License.URL {
		t.Errorf("licence shown as %q → %v, want %q → %s", s.licenceLink.Text, s.licenceLink.URL, sp.License.Name, sp.License.URL)
	}
	if !strings.Contains(s.modelStatus.Text, "not downloaded") || !strings.Contains(s.modelInfo.Text, "598.6 MB") {
		t.Errorf("status %q, info %q", s.modelStatus.Text, s.modelInfo.Text)
	}
	assertMarkup(t, "not_downloaded.xml", e.win.Canvas())

	// Download asks for the licence first; declining starts nothing.
	test.Tap(s.downloadBtn)
	top := e.win.Canvas().Overlays().Top()
	if top == nil {
		t.Fatal("no licence dialog after tapping Download")
	}
	if !strings.Contains(strings.Join(widgettest.Labels(top), " "), sp.License.Name) {
		t.Errorf("licence dialog says %q, want the licence's name", widgettest.Labels(top))
	}
	widgettest.Button(t, top, AcceptLabel) // it is there
	test.Tap(widgettest.Button(t, top, "Cancel"))
	if n := len(e.core.ListJobs()); n != 0 || e.win.Canvas().Overlays().Top() != nil {
		t.Errorf("after declining: %d jobs, dialog still open %v", n, e.win.Canvas().Overlays().Top() != nil)
	}
	if ms, _ := e.core.Models(context.Background()); ms[0].LicenseAccepted {
		t.Error("the licence is recorded as accepted after declining")
	}
}

// tinySpec is the test folder's model as a known model served from a loopback server,
// which sends the first half and then waits for release (closed: send the rest).
func tinySpec(t *testing.T, release chan struct{}) models.Spec {
	t.Helper()
	dir := dvatest.ClipDir(t)
	weights, err := os.ReadFile(filepath.Join(dir, models.TorchFile))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := os.ReadFile(filepath.Join(dir, models.ConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Range") != "" {
			http.Error(w, "no ranges here", http.StatusRequestedRangeNotSatisfiable)
			return
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(weights)))
		half := len(weights) / 2
		w.Write(weights[:half])
		w.(http.Flusher).Flush()
		select {
		case <-release:
			w.Write(weights[half:])
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	sum := sha256.Sum256(weights)
	return models.Spec{Name: "tiny-clip", Title: "Tiny CLIP", Description: "The test folder's model.",
		URL: srv.URL + "/" + models.TorchFile, File: models.TorchFile, Size: int64(len(weights)), SHA256: hex.EncodeToString(sum[:]),
		License: models.License{Name: "Test Licence", URL: srv.URL + "/LICENSE"}, Config: json.RawMessage(cfg)}
}

func TestDownloadVerifyAndScore(t *testing.T) {
	release := make(chan struct{})
	sp := tinySpec(t, release)
	e := newEnv(t, []models.Spec{sp})
	s := e.screen
	e.useModel(t, sp.Name)
	if s.state.Ready || !s.downloadBtn.Visible() {
		t.Fatalf("state before the download = %+v", s.state)
	}

	test.Tap(s.downloadBtn)
	test.Tap(widgettest.Button(t, e.win.Canvas().Overlays().Top(), AcceptLabel))
	if s.jobID == "" || !s.cancelBtn.Visible() || !s.jobBar.Visible() || !s.downloadBtn.Disabled() {
		t.Fatalf("after accepting: job %q, Cancel visible %v, bar visible %v", s.jobID, s.cancelBtn.Visible(), s.jobBar.Visible())
	}
	e.ui.Until(t, "the download's progress", func() bool { return s.jobBar.Value >= 0.4 && s.jobBar.Value < 1 })
	if !strings.Contains(s.jobMsg.Text, "Downloading Tiny CLIP") || !strings.Contains(s.jobMsg.Text, "of 1.3 MB") {
		t.Errorf("progress message = %q", s.jobMsg.Text)
	}
	close(release)
	e.ui.Until(t, "the download to end", func() bool { return s.jobID == "" })
	if s.jobMsg.Text != "Downloaded and verified." || !s.state.Ready || s.downloadBtn.Visible() || !s.verifyBtn.Visible() || s.cancelBtn.Visible() {
		t.Fatalf("after the download: message %q, ready %v, Download visible %v, Verify visible %v",
			s.jobMsg.Text, s.state.Ready, s.downloadBtn.Visible(), s.verifyBtn.Visible())
	}
	if s.licenceNote.Text != "(accepted)" || !s.licenceNote.Visible() {
		t.Errorf("licence note = %q, want (accepted)", s.licenceNote.Text)
	}

	test.Tap(s.verifyBtn)
	e.ui.Until(t, "the verification to end", func() bool { return s.jobID == "" })
	if s.jobMsg.Text != "Verified: the weights match their checksum." {
		t.Errorf("after Verify: %q", s.jobMsg.Text)
	}

	e.choose(t, filepath.Join(dvatest.ClipDir(t), "coffee.jpg"))
	e.scoreWith(t, "a cup of coffee")
	if !s.result.Visible() || !strings.HasPrefix(s.usedModel.Text, "sha256-") {
		t.Errorf("scoring with the downloaded model: score %q, model %q, message %q", s.score.Text, s.usedModel.Text, s.scoreMsg.Text)
	}
}

func TestCancelDownload(t *testing.T) {
	release := make(chan struct{}) // never closed: the server stalls halfway
	sp := tinySpec(t, release)
	e := newEnv(t, []models.Spec{sp})
	s := e.screen
	e.useModel(t, sp.Name)
	if err := e.core.AcceptModelLicense(context.Background(), sp.Name); err != nil {
		t.Fatal(err)
	}
	s.Refresh()
	test.Tap(s.downloadBtn) // accepted already: no dialog
	if top := e.win.Canvas().Overlays().Top(); top != nil {
		t.Fatal("licence dialog shown for an accepted licence")
	}
	e.ui.Until(t, "the download's progress", func() bool { return s.jobBar.Value > 0 })
	id := s.jobID
	test.Tap(s.cancelBtn)
	e.ui.Until(t, "the download to end", func() bool { return s.jobID == "" })
	j, err := e.core.Job(id)
	if err != nil || j.State != core.JobCancelled {
		t.Fatalf("job after Cancel = %+v, %v; want cancelled", j, err)
	}
	if s.jobMsg.Text != "Cancelled." || s.cancelBtn.Visible() || !s.downloadBtn.Visible() || s.downloadBtn.Disabled() {
		t.Errorf("after Cancel: message %q, Cancel visible %v, Download enabled %v", s.jobMsg.Text, s.cancelBtn.Visible(), !s.downloadBtn.Disabled())
	}
	if !strings.Contains(s.modelInfo.Text, "downloaded so far") {
		t.Errorf("model info after a cancelled download = %q, want the partial size", s.modelInfo.Text)
	}
}

// assertMarkup compares a canvas's or an object's rendering with a golden markup file,
// rewriting it with -update.
func assertMarkup(t *testing.T, name string, o any) {
	t.Helper()
	var markup string
	switch x := o.(type) {
	case fyne.Canvas:
		markup = test.RenderToMarkup(x)
	case fyne.CanvasObject:
		markup = test.RenderObjectToMarkup(x)
	}
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join("testdata", name), []byte(markup), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	switch x := o.(type) {
	case fyne.Canvas:
		test.AssertRendersToMarkup(t, name, x)
	case fyne.CanvasObject:
		test.AssertObjectRendersToMarkup(t, name, x)
	}
}
