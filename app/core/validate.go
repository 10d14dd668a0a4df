package core

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/gata-contrib/gata/dva"
	"github.com/gata-contrib/gata/dva/models"
	"github.com/gata-contrib/gata/dva/preprocess"
)

// ModelStore downloads, verifies and finds CLIP models; *models.Store satisfies it.
type ModelStore interface {
	List() []models.Status
	Spec(name string) (models.Spec, error)
	Pull(ctx context.Context, name string, progress models.Progress) (string, error)
	Verify(ctx context.Context, name string, progress models.Progress) error
	Resolve(nameOrPath string) (string, error)
}

// Engine embeds and scores with one loaded model; *dva.Engine satisfies it.
type Engine interface {
	Embed(ctx context.Context, images []dva.Image, texts []string) (*dva.Embeddings, error)
	Info() dva.ModelInfo
	Close() error
}

// EngineLoader loads the model in a folder onto the best backend available.
type EngineLoader func(ctx context.Context, dir string) (Engine, error)

// engines caches loaded models: loading the default one reads 600 MB.
type engines struct {
	mu     sync.Mutex
	loaded map[string]Engine
}

// ModelStatus is a known model as the Validate screens show it.
type ModelStatus struct {
	models.Status
	LicenseAccepted bool `json:"license_accepted"`
}

func licenseKey(name string) string { return "models.license." + name }

// Models lists the known models: downloaded or not, partial downloads, licence accepted.
func (c *Core) Models(ctx context.Context) ([]ModelStatus, error) {
	if c.opts.Models == nil {
		return nil, ErrNoValidate
	}
	stored, err := c.store.Settings(ctx)
	if err != nil {
		return nil, fmt.Errorf("list models: %w", err)
	}
	var out []ModelStatus
	for _, st := range c.opts.Models.List() {
		out = append(out, ModelStatus{Status: st, LicenseAccepted: stored[licenseKey(st.Spec.Name)] == "accepted"})
	}
	return out, nil
}

// Errors of the Validate methods that callers branch on (a UI maps them to a status).
var (
	// ErrNoValidate: this build or set-up has no model store or engine.
	ErrNoValidate = errors.New("validation is not available in this build")
	// ErrLicenseNotAccepted is returned by PullModel until the user accepts the model's licence.
	ErrLicenseNotAccepted = errors.New("the model's licence has not been accepted")
	// ErrUnknownModel: no known model has that name (and it is no model folder).
	ErrUnknownModel = models.ErrUnknownModel
	// ErrModelNotDownloaded: the model is known but not downloaded yet.
	ErrModelNotDownloaded = models.ErrNotDownloaded
	// ErrBadImage marks an image the user gave that cannot be used: not an image, corrupt,
	// too large. Its message names the file and says why.
	ErrBadImage = errors.New("bad image")
)

// badImage marks err as ErrBadImage, keeping its message.
func badImage(err error) error { return markedError{err: err, mark: ErrBadImage} }

// markedError is err with a sentinel that errors.Is finds, and err's message alone.
type markedError struct{ err, mark error }

func (e markedError) Error() string   { return e.err.Error() }
func (e markedError) Unwrap() []error { return []error{e.err, e.mark} }

// AcceptModelLicense records that the user accepted a model's licence.
func (c *Core) AcceptModelLicense(ctx context.Context, name string) error {
	if c.opts.Models == nil {
		return ErrNoValidate
	}
	if _, err := c.opts.Models.Spec(name); err != nil {
		return err
	}
	return c.store.SetSettings(ctx, map[string]string{licenseKey(name): "accepted"})
}

// PullModel starts the download of a known model (resuming a partial one). The user must
// have accepted its licence first.
func (c *Core) PullModel(ctx context.Context, name string) (JobInfo, error) {
	if c.opts.Models == nil {
		return JobInfo{}, ErrNoValidate
	}
	sp, err := c.opts.Models.Spec(name)
	if err != nil {
		return JobInfo{}, err
	}
	v, err := c.store.Settings(ctx)
	if err != nil {
		return JobInfo{}, fmt.Errorf("pull model: %w", err)
	}
	if v[licenseKey(name)] != "accepted" {
		return JobInfo{}, fmt.Errorf("pull %s: %w (%s, %s)", name, ErrLicenseNotAccepted, sp.License.Name, sp.License.URL)
	}
	return c.jobs.Start(JobSpec{Kind: "model.pull", Title: "Downloading " + sp.Title, Subject: name,
		Run: func(ctx context.Context, report func(Progress)) (any, error) {
			dir, err := c.opts.Models.Pull(ctx, name, func(done, total int64) {
				report(Progress{Done: done, Total: total, Unit: "bytes"})
			})
			if err != nil {
				return nil, err
			}
			return map[string]string{"model": name, "dir": dir}, nil
		}})
}

// VerifyModel starts a job that re-checks a downloaded model's checksum.
func (c *Core) VerifyModel(name string) (JobInfo, error) {
	if c.opts.Models == nil {
		return JobInfo{}, ErrNoValidate
	}
	sp, err := c.opts.Models.Spec(name)
	if err != nil {
		return JobInfo{}, err
	}
	return c.jobs.Start(JobSpec{Kind: "model.verify", Title: "Verifying " + sp.Title, Subject: name,
		Run: func(ctx context.Context, report func(Progress)) (any, error) {
			err := c.opts.Models.Verify(ctx, name, func(done, total int64) {
				report(Progress{Done: done, Total: total, Unit: "bytes"})
			})
			if err != nil {
				return nil, err
			}
			return map[string]string{"model": name, "sha256": sp.SHA256}, nil
		}})
}

// checkModelSetting accepts a known model's name or an existing model folder.
func (c *Core) checkModelSetting(v string) error {
	if v == "" {
		return errors.New("name a model or a model folder")
	}
	if c.opts.Models == nil {
		return nil
	}
	if _, err := c.opts.Models.Spec(v); err == nil {
		return nil
	}
	if _, err := c.opts.Models.Resolve(v); err != nil {
		if errors.Is(err, models.ErrNotDownloaded) {
			return nil
		}
		if !strings.ContainsAny(v, `/\`) {
			return fmt.Errorf("%q is neither a known model nor a model folder", v)
		}
		return err
	}
	return nil
}

// modelName is the model a request names, or the one the Validate setting chose.
func (c *Core) modelName(ctx context.Context, model string) (string, error) {
	if model != "" {
		return model, nil
	}
	return c.SettingValue(ctx, SettingModel)
}

// ValidateState is what the Validate screens show above the scoring form.
type ValidateState struct {
	Model   string        `json:"model"`             // the chosen model: a name or a folder
	Known   *ModelStatus  `json:"known,omitempty"`   // the chosen model when it is a known one
	Ready   bool          `json:"ready"`             // it can score now
	Problem string        `json:"problem,omitempty"` // why it cannot, for people
	Loaded  bool          `json:"loaded"`            // it is in memory already
	Backend string        `json:"backend,omitempty"` // where the loaded model runs: the GPU, or the CPU and why not the GPU
	Models  []ModelStatus `json:"models"`            // every known model
}

// ValidateState reports the chosen model, whether it is downloaded and loaded, and the
// known models with their download state.
func (c *Core) ValidateState(ctx context.Context) (ValidateState, error) {
	var st ValidateState
	all, err := c.Models(ctx)
	if err != nil {
		return st, err
	}
	st.Models = all
	if st.Model, err = c.modelName(ctx, ""); err != nil {
		return st, err
	}
	for i := range all {
		if all[i].Spec.Name == st.Model {
			st.Known = &all[i]
		}
	}
	dir, err := c.opts.Models.Resolve(st.Model)
	if err != nil {
		st.Problem = err.Error()
		if errors.Is(err, models.ErrNotDownloaded) && st.Known != nil {
			st.Problem = st.Known.Spec.Title + " is not downloaded yet."
		}
		return st, nil
	}
	st.Ready = true
	c.engines.mu.Lock()
	e, loaded := c.engines.loaded[dir]
	c.engines.mu.Unlock()
	if st.Loaded = loaded; loaded {
		st.Backend = e.Info().Backend
	}
	return st, nil
}

// engine returns the loaded engine for a model name or folder (empty: the one the Validate
// setting chose), loading it on first use.
func (c *Core) engine(ctx context.Context, model string) (Engine, error) {
	if c.opts.Models == nil || c.opts.LoadEngine == nil {
		return nil, ErrNoValidate
	}
	model, err := c.modelName(ctx, model)
	if err != nil {
		return nil, err
	}
	dir, err := c.opts.Models.Resolve(model)
	if err != nil {
		return nil, err
	}
	c.engines.mu.Lock()
	defer c.engines.mu.Unlock()
	if e, ok := c.engines.loaded[dir]; ok {
		return e, nil
	}
	e, err := c.opts.LoadEngine(ctx, dir)
	if err != nil {
		return nil, fmt.Errorf("load model %q: %w", model, err)
	}
	if c.engines.loaded == nil {
		c.engines.loaded = map[string]Engine{}
	}
	c.engines.loaded[dir] = e
	return e, nil
}

// closeEngines releases every loaded model.
func (c *Core) closeEngines() error {
	c.engines.mu.Lock()
	defer c.engines.mu.Unlock()
	var errs []error
	for k, e := range c.engines.loaded {
		errs = append(errs, e.Close())
		delete(c.engines.loaded, k)
	}
	return errors.Join(errs...)
}

// EmbedRequest asks for embeddings of images and texts with one model (a name or a folder;
// empty: the model the Validate setting chose).
type EmbedRequest struct {
	Model  string
	Images []dva.Image
	Texts  []string
}

// EmbedResult is what `gata dva embed --json` prints.
type EmbedResult struct {
	Model           dva.ModelInfo `json:"model"`
	ImageEmbeddings [][]float32   `json:"image_embeddings"`
	TextEmbeddings  [][]float32   `json:"text_embeddings"`
	Scores          [][]float32   `json:"scores"`
}

// Embed embeds images and texts and scores every image against every text. A bad image is
// an error naming it (nothing partial is returned).
func (c *Core) Embed(ctx context.Context, req EmbedRequest) (*EmbedResult, error) {
	if len(req.Images) == 0 && len(req.Texts) == 0 {
		return nil, dva.ErrNoInput
	}
	e, err := c.engine(ctx, req.Model)
	if err != nil {
		return nil, err
	}
	got, err := e.Embed(ctx, req.Images, req.Texts)
	if err != nil {
		return nil, err
	}
	if len(got.ImageErrors) > 0 {
		return nil, badImage(fmt.Errorf("image %w", got.ImageErrors[0]))
	}
	res := &EmbedResult{Model: e.Info(), ImageEmbeddings: got.Images, TextEmbeddings: got.Texts, Scores: got.Scores}
	if res.ImageEmbeddings == nil {
		res.ImageEmbeddings = [][]float32{}
	}
	if res.TextEmbeddings == nil {
		res.TextEmbeddings = [][]float32{}
	}
	if res.Scores == nil {
		res.Scores = [][]float32{}
	}
	return res, nil
}

// ImageExtensions are the file-name extensions of the image formats the scorer reads, for
// the screens' file pickers.
var ImageExtensions = slices.Clone(preprocess.Extensions)

// MaxImageBytes is the largest image file the Validate screens take (the decoder also caps
// the decoded size, against decompression bombs).
const MaxImageBytes = 50 << 20

// ScoreRequest is one image and a caption to score.
type ScoreRequest struct {
	Model   string `json:"model"`
	Name    string `json:"name"`
	Image   []byte `json:"-"`
	Caption string `json:"caption"`
}

// ScoreResult is the score of one pair, for the Validate screens.
type ScoreResult struct {
	Score   float32       `json:"score"`
	Caption string        `json:"caption"`
	Name    string        `json:"name"`
	Model   dva.ModelInfo `json:"model"`
}

// ScorePair scores how well a caption describes an image: the cosine similarity of their
// normalised embeddings, in [-1, 1].
func (c *Core) ScorePair(ctx context.Context, req ScoreRequest) (*ScoreResult, error) {
	if len(req.Image) == 0 {
		return nil, badImage(errors.New("no image given"))
	}
	if len(req.Image) > MaxImageBytes {
		return nil, badImage(fmt.Errorf("image %s is %d MB; the limit is %d MB", req.Name, len(req.Image)>>20, MaxImageBytes>>20))
	}
	if req.Name == "" {
		req.Name = "image"
	}
	res, err := c.Embed(ctx, EmbedRequest{Model: req.Model, Images: []dva.Image{{Name: req.Name, Data: req.Image}}, Texts: []string{req.Caption}})
	if err != nil {
		return nil, err
	}
	return &ScoreResult{Score: res.Scores[0][0], Caption: req.Caption, Name: req.Name, Model: res.Model}, nil
}
