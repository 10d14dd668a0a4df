package core

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gata-contrib/gata/dva"
	"github.com/gata-contrib/gata/dva/clip"
	"github.com/gata-contrib/gata/dva/cpu"
	"github.com/gata-contrib/gata/dva/dvatest"
	"github.com/gata-contrib/gata/dva/models"
)

func withValidate(t *testing.T, c *Core, specs []models.Spec) *int {
	loads := new(int)
	c.opts.Models = models.NewStore(filepath.Join(c.opts.DataDir, "models"), models.Options{Specs: specs, RetryWait: time.Millisecond})
	c.opts.LoadEngine = func(ctx context.Context, dir string) (Engine, error) {
		*loads++
		m, err := clip.LoadModel(dir)
		if err != nil {
			return nil, err
		}
		return dva.NewEngine(m.Config, cpu.New(m, runtime.GOMAXPROCS(0)), dva.EngineOptions{ModelDir: dir})
	}
	t.Cleanup(func() { c.Close() })
	return loads
}

func TestScorePairWithAModelFolder(t *testing.T) {
	ctx := context.Background()
	c, _ := newTestCore(t)
	loads := withValidate(t, c, nil)
	dir := dvatest.ClipDir(t)
	img, err := os.ReadFile(filepath.Join(dir, "coffee.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.ScorePair(ctx, ScoreRequest{Model: dir, Name: "coffee.jpg", Image: img, Caption: "a cup of coffee on a saucer, seen from above"})
	if err != nil {
		t.Fatalf("ScorePair: %v", err)
	}
	emb, err := c.Embed(ctx, EmbedRequest{Model: dir, Images: []dva.Image{{Name: "coffee.jpg", Data: img}}, Texts: []string{"a cup of coffee on a saucer, seen from above", "a photo of an astronaut"}})
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(float64(emb.Scores[0][0]-res.Score)) > 1e-6 {
		t.Errorf("ScorePair = %v, Embed score = %v; want the same", res.Score, emb.Scores[0][0])
	}
	if len(emb.ImageEmbeddings) != 1 || len(emb.TextEmbeddings) != 2 || len(emb.ImageEmbeddings[0]) != 16 {
		t.Errorf("Embed shapes: %d images, %d texts", len(emb.ImageEmbeddings), len(emb.TextEmbeddings))
	}
	if *loads != 1 {
		t.Errorf("model loaded %d times, want once (cached)", *loads)
	}
	if res.Model.EmbedDim != 16 || res.Model.Dir != dir {
		t.Errorf("model info = %+v", res.Model)
	}

	if _, err := c.ScorePair(ctx, ScoreRequest{Model: dir, Name: "bad.jpg", Image: []byte("not an image"), Caption: "x"}); !errors.Is(err, ErrBadImage) || !strings.Contains(err.Error(), "bad.jpg") {
		t.Errorf("ScorePair(bad image) = %v, want ErrBadImage naming it", err)
	}
	if _, err := c.ScorePair(ctx, ScoreRequest{Model: "no-such-model", Image: img, Caption: "x"}); !errors.Is(err, ErrUnknownModel) {
		t.Errorf("ScorePair(unknown model) = %v, want ErrUnknownModel", err)
	}
	if _, err := c.ScorePair(ctx, ScoreRequest{Model: "", Image: img, Caption: "x"}); !errors.Is(err, models.ErrNotDownloaded) {
		t.Errorf("ScorePair(default model, not downloaded) = %v, want ErrNotDownloaded", err)
	}
	if _, err := c.Embed(ctx, EmbedRequest{Model: dir}); !errors.Is(err, dva.ErrNoInput) {
		t.Errorf("Embed(nothing) = %v, want ErrNoInput", err)
	}
}

func TestPullModelNeedsTheLicence(t *testing.T) {
	ctx := context.Background()
	c, _ := newTestCore(t)
	sp := models.Spec{Name: "m", Title: "M", URL: "http://127.0.0.1:1/none", File: models.TorchFile, Size: 1, SHA256: strings.Repeat("0", 64),
		License: models.License{Name: "Test Licence", URL: "http://127.0.0.1:1/licence"}}
	withValidate(t, c, []models.Spec{sp})
	if _, err := c.PullModel(ctx, "m"); !errors.Is(err, ErrLicenseNotAccepted) || !strings.Contains(err.Error(), "Test Licence") {
		t.Fatalf("PullModel before accepting = %v, want ErrLicenseNotAccepted naming the licence", err)
	}
	ms, err := c.Models(ctx)
	if err != nil || len(ms) != 1 || ms[0].LicenseAccepted {
		t.Fatalf("Models() = %+v, %v", ms, err)
	}
	if err := c.AcceptModelLicense(ctx, "m"); err != nil {
		t.Fatal(err)
	}
	if ms, _ := c.Models(ctx); !ms[0].LicenseAccepted {
		t.Error("licence not recorded as accepted")
	}
	job, err := c.PullModel(ctx, "m")
	if err != nil {
		t.Fatalf("PullModel after accepting: %v", err)
	}
	// Nothing listens on port 1: the job fails with the download error, it does not hang.
	if job.Kind != "model.pull" || job.Subject != "m" {
		t.Errorf("pull job kind %q subject %q, want model.pull of m", job.Kind, job.Subject)
	}
	got, err := c.Jobs().Wait(ctx, job.ID)
	if err != nil || got.State != JobFailed || !strings.Contains(got.Error, "pull m") {
		t.Errorf("pull job = %+v, %v; want failed with the download error", got, err)
	}
	if err := c.AcceptModelLicense(ctx, "nope"); err == nil {
		t.Error("AcceptModelLicense(unknown) succeeded")
	}
}

func TestValidateStateFollowsTheModelSetting(t *testing.T) {
	ctx := context.Background()
	c, _ := newTestCore(t)
	loads := withValidate(t, c, nil)
	dir := dvatest.ClipDir(t)

	st, err := c.ValidateState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Model != models.DefaultModel || st.Ready || st.Known == nil || st.Known.Downloaded || !strings.Contains(st.Problem, "not downloaded") {
		t.Errorf("ValidateState() before any download = %+v, want the default model, not ready, not downloaded", st)
	}
	if len(st.Models) == 0 {
		t.Error("ValidateState() lists no known models")
	}

	for _, bad := range []string{"", "no-such-model", filepath.Join(t.TempDir(), "missing")} {
		if _, err := c.UpdateSettings(ctx, map[string]string{SettingModel: bad}); err == nil {
			t.Errorf("UpdateSettings(%s=%q) succeeded, want it refused", SettingModel, bad)
		}
	}
	if _, err := c.UpdateSettings(ctx, map[string]string{SettingModel: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "open_clip_config.json") {
		t.Errorf("UpdateSettings(empty folder) = %v, want an error naming the missing config", err)
	}
	// A known model that is not downloaded yet may be chosen: the screen then offers the download.
	if _, err := c.UpdateSettings(ctx, map[string]string{SettingModel: models.DefaultModel}); err != nil {
		t.Errorf("UpdateSettings(default model) = %v", err)
	}
	if _, err := c.UpdateSettings(ctx, map[string]string{SettingModel: dir}); err != nil {
		t.Fatalf("UpdateSettings(model folder) = %v", err)
	}

	st, err = c.ValidateState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Model != dir || !st.Ready || st.Known != nil || st.Loaded || st.Problem != "" {
		t.Errorf("ValidateState() with a model folder = %+v, want ready, not loaded yet", st)
	}
	img, err := os.ReadFile(filepath.Join(dir, "coffee.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.ScorePair(ctx, ScoreRequest{Name: "coffee.jpg", Image: img, Caption: "a cup of coffee"})
	if err != nil {
		t.Fatalf("ScorePair with the chosen model: %v", err)
	}
	if res.Model.Dir != dir || *loads != 1 {
		t.Errorf("ScorePair used %q (%d loads), want the chosen folder %q loaded once", res.Model.Dir, *loads, dir)
	}
	if st, _ := c.ValidateState(ctx); !st.Loaded || st.Backend == "" || st.Backend != res.Model.Backend {
		t.Errorf("ValidateState() after scoring = loaded %v on %q, want loaded on %q", st.Loaded, st.Backend, res.Model.Backend)
	}

	huge := make([]byte, MaxImageBytes+1)
	if _, err := c.ScorePair(ctx, ScoreRequest{Name: "huge.jpg", Image: huge, Caption: "x"}); !errors.Is(err, ErrBadImage) || !strings.Contains(err.Error(), "limit") {
		t.Errorf("ScorePair(%d bytes) = %v, want the size limit", len(huge), err)
	}
}
