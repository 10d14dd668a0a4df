package dva

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"

	"github.com/gata-contrib/gata/dva/clip"
	"github.com/gata-contrib/gata/dva/preprocess"
	"github.com/gata-contrib/gata/dva/tokenizer"
)

// Image is one image to embed: the bytes of its file and a name for messages.
type Image struct {
	Name string
	Data []byte
}

// EngineOptions tune an Engine. Zero values mean the defaults.
type EngineOptions struct {
	BatchSize int               // images or texts per backend call (default 32)
	Workers   int               // goroutines that decode and preprocess (default GOMAXPROCS)
	Limits    preprocess.Limits // caps on one image (default preprocess.DefaultLimits)
	ModelName string            // shown in ModelInfo
	ModelDir  string            // shown in ModelInfo
}

// Engine embeds and scores image–text pairs with one model on one backend.
// It is safe for concurrent use.
type Engine struct {
	cfg     *clip.Config
	pre     preprocess.Config
	tok     *tokenizer.Tokenizer
	backend Backend
	opts    EngineOptions
}

// NewEngine combines a model's config and a backend that has loaded its weights.
func NewEngine(cfg *clip.Config, b Backend, opts EngineOptions) (*Engine, error) {
	tok, err := tokenizer.New()
	if err != nil {
		return nil, fmt.Errorf("load tokenizer: %w", err)
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = 32
	}
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	if opts.Limits == (preprocess.Limits{}) {
		opts.Limits = preprocess.DefaultLimits()
	}
	p := cfg.Preprocess
	pre := preprocess.Config{Size: cfg.Vision.ImageSize, ResizeMode: p.ResizeMode, Interpolation: p.Interpolation}
	if p.ImageSize > 0 {
		pre.Size = p.ImageSize
	}
	for c := range 3 {
		pre.Mean[c], pre.Std[c] = float32(p.Mean[c]), float32(p.Std[c])
	}
	if err := pre.Validate(); err != nil {
		return nil, fmt.Errorf("model preprocessing: %w", err)
	}
	if b.EmbedDim() != cfg.EmbedDim {
		return nil, fmt.Errorf("backend embeds into %d dimensions, the model into %d", b.EmbedDim(), cfg.EmbedDim)
	}
	return &Engine{cfg: cfg, pre: pre, tok: tok, backend: b, opts: opts}, nil
}

// Close releases the backend.
func (e *Engine) Close() error { return e.backend.Close() }

// ModelInfo describes the loaded model and where it runs.
type ModelInfo struct {
	Name       string `json:"name,omitempty"`
	Dir        string `json:"dir,omitempty"`
	Backend    string `json:"backend"`
	EmbedDim   int    `json:"embed_dim"`
	ImageSize  int    `json:"image_size"`
	PatchSize  int    `json:"patch_size"`
	QuickGELU  bool   `json:"quick_gelu"`
	ResizeMode string `json:"resize_mode"`
	Context    int    `json:"context_length"`
}

// Info describes the model.
func (e *Engine) Info() ModelInfo {
	rm := e.pre.ResizeMode
	if rm == "" {
		rm = preprocess.ResizeShortest
	}
	return ModelInfo{Name: e.opts.ModelName, Dir: e.opts.ModelDir, Backend: e.backend.Name(), EmbedDim: e.cfg.EmbedDim,
		ImageSize: e.pre.Size, PatchSize: e.cfg.Vision.PatchSize, QuickGELU: e.cfg.QuickGELU, ResizeMode: rm,
		Context: e.cfg.Text.ContextLength}
}

// ItemError is the failure of one input; the others still count.
type ItemError struct {
	Index int
	Name  string
	Err   error
}

func (e *ItemError) Error() string { return fmt.Sprintf("%s: %v", e.Name, e.Err) }
func (e *ItemError) Unwrap() error { return e.Err }

// Embeddings are L2-normalised embeddings of images and texts and their cosine scores.
// A failed image has a nil row and an entry in ImageErrors.
type Embeddings struct {
	Images      [][]float32
	Texts       [][]float32
	Scores      [][]float32 // Scores[i][j] = cosine(image i, text j); NaN for a failed image
	ImageErrors []*ItemError
}

// Embed embeds every image and text and scores each image against each text.
func (e *Engine) Embed(ctx context.Context, images []Image, texts []string) (*Embeddings, error) {
	out := &Embeddings{}
	var err error
	out.Images, out.ImageErrors, err = e.EmbedImages(ctx, images)
	if err != nil {
		return nil, err
	}
	out.Texts, err = e.EmbedTexts(ctx, texts)
	if err != nil {
		return nil, err
	}
	out.Scores = make([][]float32, len(out.Images))
	for i, im := range out.Images {
		out.Scores[i] = make([]float32, len(out.Texts))
		for j, tx := range out.Texts {
			if im == nil {
				out.Scores[i][j] = float32(math.NaN())
				continue
			}
			out.Scores[i][j] = dot(im, tx)
		}
	}
	return out, nil
}

// EmbedTexts returns the normalised embedding of each text.
func (e *Engine) EmbedTexts(ctx context.Context, texts []string) ([][]float32, error) {
	out := make([][]float32, 0, len(texts))
	for start := 0; start < len(texts); start += e.opts.BatchSize {
		end := min(start+e.opts.BatchSize, len(texts))
		ids := make([][]int32, 0, end-start)
		for _, t := range texts[start:end] {
			ids = append(ids, e.tok.EncodeContext(t, e.cfg.Text.ContextLength))
		}
		flat, err := e.backend.EncodeTexts(ctx, ids)
		if err != nil {
			return nil, fmt.Errorf("embed texts: %w", err)
		}
		out = append(out, e.rows(flat, len(ids))...)
	}
	return out, nil
}

// EmbedImages returns the normalised embedding of each image; a corrupt, unsupported or
// too large image fails alone (nil row, an ItemError), the others go on.
func (e *Engine) EmbedImages(ctx context.Context, images []Image) ([][]float32, []*ItemError, error) {
	out := make([][]float32, len(images))
	var errs []*ItemError
	px := e.pre.Size * e.pre.Size * 3
	for start := 0; start < len(images); start += e.opts.BatchSize {
		end := min(start+e.opts.BatchSize, len(images))
		batch := images[start:end]
		pixels := make([]float32, len(batch)*px)
		ok := make([]bool, len(batch))
		perr := make([]error, len(batch))
		e.parallel(len(batch), func(i int) {
			p, err := preprocess.Image(bytes.NewReader(batch[i].Data), e.pre, e.opts.Limits)
			if err != nil {
				perr[i] = err
				return
			}
			copy(pixels[i*px:], p)
			ok[i] = true
		})
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		// Pack the good images together for the backend.
		n := 0
		idx := make([]int, 0, len(batch))
		for i := range batch {
			if !ok[i] {
				errs = append(errs, &ItemError{Index: start + i, Name: batch[i].Name, Err: perr[i]})
				continue
			}
			if n != i {
				copy(pixels[n*px:(n+1)*px], pixels[i*px:(i+1)*px])
			}
			idx = append(idx, start+i)
			n++
		}
		if n == 0 {
			continue
		}
		flat, err := e.backend.EncodeImages(ctx, pixels[:n*px], n)
		if err != nil {
			return nil, nil, fmt.Errorf("embed images: %w", err)
		}
		for k, row := range e.rows(flat, n) {
			out[idx[k]] = row
		}
	}
	return out, errs, nil
}

// parallel runs fn(0..n-1) on the engine's workers.
func (e *Engine) parallel(n int, fn func(i int)) {
	var wg sync.WaitGroup
	next := make(chan int)
	for range min(e.opts.Workers, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				fn(i)
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}

// rows splits n×EmbedDim into L2-normalised rows.
func (e *Engine) rows(flat []float32, n int) [][]float32 {
	d := e.cfg.EmbedDim
	out := make([][]float32, n)
	for i := range n {
		out[i] = Normalize(flat[i*d : (i+1)*d])
	}
	return out
}

// Normalize returns v / max(‖v‖, 1e-12), as OpenCLIP's F.normalize does.
func Normalize(v []float32) []float32 {
	var s float64
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	n := max(math.Sqrt(s), 1e-12)
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(float64(x) / n)
	}
	return out
}

func dot(a, b []float32) float32 {
	var s float64
	for i := range a {
		s += float64(a[i]) * float64(b[i])
	}
	return float32(s)
}

// Pair is an image and its caption.
type Pair struct {
	Image   Image
	Caption string
}

// PairScore is the cosine similarity of a pair, or why it could not be scored.
type PairScore struct {
	Score float32
	Err   error
}

// Score scores each pair (image i with caption i), in batches.
func (e *Engine) Score(ctx context.Context, pairs []Pair) ([]PairScore, error) {
	imgs := make([]Image, len(pairs))
	caps := make([]string, len(pairs))
	for i, p := range pairs {
		imgs[i], caps[i] = p.Image, p.Caption
	}
	ie, ierrs, err := e.EmbedImages(ctx, imgs)
	if err != nil {
		return nil, err
	}
	te, err := e.EmbedTexts(ctx, caps)
	if err != nil {
		return nil, err
	}
	out := make([]PairScore, len(pairs))
	for _, ie := range ierrs {
		out[ie.Index].Err = ie
	}
	for i := range pairs {
		if ie[i] != nil {
			out[i].Score = dot(ie[i], te[i])
		}
	}
	return out, nil
}

// ErrNoInput is returned when there is nothing to embed.
var ErrNoInput = errors.New("no image or text given")

// Prepared is one image decoded and preprocessed for the model, ready for ScorePrepared.
type Prepared struct {
	Pixels []float32 // [3, S, S] in CHW order, normalised
	Width  int       // of the decoded image, before resizing
	Height int
}

// Prepare decodes and preprocesses one image file with the engine's limits, apart from the
// model so that a pipeline can prepare the next batch while the model runs this one. The
// error of a bad image wraps preprocess.ErrTooLarge or preprocess.ErrUnsupportedFormat
// when it is one of those; any other error means the file is corrupt.
func (e *Engine) Prepare(data []byte) (Prepared, error) {
	img, _, err := preprocess.Decode(bytes.NewReader(data), e.opts.Limits)
	if err != nil {
		return Prepared{}, err
	}
	rgb, err := preprocess.Crop(img, e.pre)
	if err != nil {
		return Prepared{}, err
	}
	b := img.Bounds()
	p := Prepared{Pixels: make([]float32, 3*e.pre.Size*e.pre.Size), Width: b.Dx(), Height: b.Dy()}
	preprocess.Normalize(rgb.Pix, e.pre, p.Pixels)
	return p, nil
}

// ScorePrepared scores pixels[i] (from Prepare) against captions[i]: the cosine similarity
// of their normalised embeddings, with one backend call per BatchSize images and one per
// BatchSize texts.
func (e *Engine) ScorePrepared(ctx context.Context, pixels [][]float32, captions []string) ([]float32, error) {
	if len(pixels) != len(captions) {
		return nil, fmt.Errorf("score prepared images: %d images and %d captions", len(pixels), len(captions))
	}
	px := e.pre.Size * e.pre.Size * 3
	out := make([]float32, 0, len(pixels))
	for start := 0; start < len(pixels); start += e.opts.BatchSize {
		end := min(start+e.opts.BatchSize, len(pixels))
		flat := make([]float32, (end-start)*px)
		for i, p := range pixels[start:end] {
			if len(p) != px {
				return nil, fmt.Errorf("score prepared images: image %d has %d values, want %d", start+i, len(p), px)
			}
			copy(flat[i*px:], p)
		}
		emb, err := e.backend.EncodeImages(ctx, flat, end-start)
		if err != nil {
			return nil, fmt.Errorf("embed images: %w", err)
		}
		texts, err := e.EmbedTexts(ctx, captions[start:end])
		if err != nil {
			return nil, err
		}
		for k, row := range e.rows(emb, end-start) {
			out = append(out, dot(row, texts[k]))
		}
	}
	return out, nil
}
