// Package dvatest is the conformance suite that every dva.Backend (CPU, CUDA) must pass: it
// runs the tiny reference model of shared/testdata/clip and compares embeddings and scores
// with expected.json and expected_gelu.json, checks that results do not depend on the batch
// size, and that a cancelled context stops the work.
//
// It also holds what tests elsewhere share: the reference model's folder (ClipDir), its
// photos (Photo), and test datasets built from them (TarBytes, WriteShard). Only tests
// import this package; its files are ordinary ones so that other packages' tests can.
package dvatest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/gata-contrib/gata/dva"
	"github.com/gata-contrib/gata/dva/internal/refdata"
	"github.com/gata-contrib/gata/dva/preprocess"
)

// NewBackend opens the model in modelDir (an OpenCLIP folder: open_clip_config.json and
// the weights) on the backend under test. Run closes what it returns.
type NewBackend func(t *testing.T, modelDir string) dva.Backend

// Run runs the suite. tol is the largest accepted |difference| per component of an
// L2-normalised embedding and per score: 1e-5 for float32 backends (the reference's own
// float32 noise is 2e-7), about 5e-3 for half precision.
func Run(t *testing.T, newBackend NewBackend, tol float64) {
	ref := refdata.Clip(t)
	exp := readExpected(t, filepath.Join(ref, "expected.json"))
	inputs := makeInputs(t, ref, exp)

	t.Run("quick_gelu", func(t *testing.T) {
		b := newBackend(t, ref)
		defer closeBackend(t, b)
		if b.Name() == "" {
			t.Error("Name() is empty")
		}
		if got := b.EmbedDim(); got != len(exp.Synthetic.Embedding) {
			t.Fatalf("EmbedDim() = %d, want %d", got, len(exp.Synthetic.Embedding))
		}
		want := wantSet{texts: exp.captionEmbeddings(), synthetic: exp.Synthetic.Embedding, images: map[int][]float64{}}
		for i := range inputs.files {
			want.images[inputs.files[i].index] = exp.Images[inputs.files[i].index].Embedding
		}
		runEmbeddings(t, b, inputs, want, tol)
		t.Run("scores", func(t *testing.T) { runScores(t, b, inputs, exp, tol) })
		t.Run("batch_invariance", func(t *testing.T) { runBatchInvariance(t, b, inputs, tol) })
		t.Run("cancel", func(t *testing.T) { runCancel(t, b, inputs) })
		t.Run("bad_input", func(t *testing.T) { runBadInput(t, b, inputs) })
	})

	t.Run("gelu", func(t *testing.T) {
		gelu := readExpectedGELU(t, filepath.Join(ref, "expected_gelu.json"))
		dir := t.TempDir()
		link(t, filepath.Join(ref, "open_clip_config_gelu.json"), filepath.Join(dir, "open_clip_config.json"))
		link(t, filepath.Join(ref, "open_clip_model.safetensors"), filepath.Join(dir, "open_clip_model.safetensors"))
		b := newBackend(t, dir)
		defer closeBackend(t, b)
		want := wantSet{texts: gelu.CaptionEmbeddings, images: map[int][]float64{}}
		for _, f := range inputs.files {
			want.images[f.index] = gelu.ImageEmbeddings[f.index]
		}
		runEmbeddings(t, b, inputs, want, tol)
		// Exact GELU moves these embeddings by up to 3e-3 from the QuickGELU ones: the
		// suite must be able to tell the two apart at tolerance 1e-5.
		if tol < 1e-3 {
			moved := 0.0
			for i, e := range gelu.CaptionEmbeddings {
				for j := range e {
					moved = math.Max(moved, math.Abs(e[j]-exp.Captions[i].Embedding[j]))
				}
			}
			if moved < 10*tol {
				t.Errorf("expected_gelu.json differs from expected.json by only %g", moved)
			}
		}
	})
}

type wantSet struct {
	texts     [][]float64
	synthetic []float64         // nil: not checked
	images    map[int][]float64 // expected.json image index -> embedding
}

func runEmbeddings(t *testing.T, b dva.Backend, in *inputs, want wantSet, tol float64) {
	ctx := context.Background()
	t.Run("texts", func(t *testing.T) {
		got, err := b.EncodeTexts(ctx, in.ids)
		if err != nil {
			t.Fatalf("EncodeTexts(%d captions): %v", len(in.ids), err)
		}
		compareRows(t, "EncodeTexts caption", got, len(in.ids), want.texts, tol)
	})
	if want.synthetic != nil {
		t.Run("synthetic_image", func(t *testing.T) {
			got, err := b.EncodeImages(ctx, in.synthetic, 1)
			if err != nil {
				t.Fatalf("EncodeImages(synthetic): %v", err)
			}
			compareRows(t, "EncodeImages synthetic", got, 1, [][]float64{want.synthetic}, tol)
		})
	}
	t.Run("png_images", func(t *testing.T) {
		var pix []float32
		var rows [][]float64
		for _, f := range in.files {
			pix = append(pix, f.pixels...)
			rows = append(rows, want.images[f.index])
		}
		got, err := b.EncodeImages(ctx, pix, len(in.files))
		if err != nil {
			t.Fatalf("EncodeImages(%d images): %v", len(in.files), err)
		}
		compareRows(t, "EncodeImages png", got, len(in.files), rows, tol)
	})
}

// runScores checks the cosine of the synthetic image and the PNG images with every
// caption, from the backend's own embeddings.
func runScores(t *testing.T, b dva.Backend, in *inputs, exp *expected, tol float64) {
	ctx := context.Background()
	txt, err := b.EncodeTexts(ctx, in.ids)
	if err != nil {
		t.Fatalf("EncodeTexts: %v", err)
	}
	pix := append([]float32(nil), in.synthetic...)
	for _, f := range in.files {
		pix = append(pix, f.pixels...)
	}
	img, err := b.EncodeImages(ctx, pix, 1+len(in.files))
	if err != nil {
		t.Fatalf("EncodeImages: %v", err)
	}
	E := b.EmbedDim()
	for i := 0; i <= len(in.files); i++ {
		iv := normalize(img[i*E : (i+1)*E])
		for j := range in.ids {
			tv := normalize(txt[j*E : (j+1)*E])
			var got float64
			for k := range iv {
				got += iv[k] * tv[k]
			}
			var want float64
			name := "synthetic"
			if i == 0 {
				for k, v := range exp.Synthetic.Embedding {
					want += v * exp.Captions[j].Embedding[k]
				}
			} else {
				f := in.files[i-1]
				name = f.name
				want = exp.Cosine[f.index][j]
			}
			if math.Abs(got-want) > tol {
				t.Errorf("score(%s, caption %d) = %.7f, want %.7f (tolerance %g)", name, j, got, want, tol)
			}
		}
	}
}

// runBatchInvariance encodes items one at a time and as one batch of 8.
func runBatchInvariance(t *testing.T, b dva.Backend, in *inputs, tol float64) {
	ctx := context.Background()
	E := b.EmbedDim()
	batch, err := b.EncodeTexts(ctx, in.ids)
	if err != nil {
		t.Fatalf("EncodeTexts(batch): %v", err)
	}
	for i, ids := range in.ids {
		one, err := b.EncodeTexts(ctx, [][]int32{ids})
		if err != nil {
			t.Fatalf("EncodeTexts(caption %d): %v", i, err)
		}
		compareVec(t, fmt.Sprintf("EncodeTexts caption %d alone vs in a batch of %d", i, len(in.ids)),
			normalize(one), normalize(batch[i*E:(i+1)*E]), tol)
	}

	images := in.variety(8)
	S3 := len(in.synthetic)
	batch, err = b.EncodeImages(ctx, images, 8)
	if err != nil {
		t.Fatalf("EncodeImages(batch of 8): %v", err)
	}
	for i := 0; i < 8; i++ {
		one, err := b.EncodeImages(ctx, images[i*S3:(i+1)*S3], 1)
		if err != nil {
			t.Fatalf("EncodeImages(image %d): %v", i, err)
		}
		compareVec(t, fmt.Sprintf("EncodeImages image %d alone vs in a batch of 8", i),
			normalize(one), normalize(batch[i*E:(i+1)*E]), tol)
	}
}

func runCancel(t *testing.T, b dva.Backend, in *inputs) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := b.EncodeImages(ctx, in.variety(4), 4); !errors.Is(err, context.Canceled) {
		t.Errorf("EncodeImages(cancelled context) = %v, want context.Canceled", err)
	}
	if _, err := b.EncodeTexts(ctx, in.ids); !errors.Is(err, context.Canceled) {
		t.Errorf("EncodeTexts(cancelled context) = %v, want context.Canceled", err)
	}
	dctx, dcancel := context.WithTimeout(context.Background(), 0)
	defer dcancel()
	<-dctx.Done()
	if _, err := b.EncodeImages(dctx, in.synthetic, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("EncodeImages(expired context) = %v, want context.DeadlineExceeded", err)
	}
	// The backend is still usable afterwards.
	if _, err := b.EncodeImages(context.Background(), in.synthetic, 1); err != nil {
		t.Errorf("EncodeImages after a cancelled call: %v", err)
	}
}

func runBadInput(t *testing.T, b dva.Backend, in *inputs) {
	ctx := context.Background()
	if _, err := b.EncodeImages(ctx, in.synthetic[:len(in.synthetic)-1], 1); err == nil {
		t.Error("EncodeImages(one value short) succeeded, want an error")
	}
	if _, err := b.EncodeImages(ctx, in.synthetic, 2); err == nil {
		t.Error("EncodeImages(n=2, pixels for 1) succeeded, want an error")
	}
	if _, err := b.EncodeTexts(ctx, [][]int32{in.ids[0][:10]}); err == nil {
		t.Error("EncodeTexts(10 ids) succeeded, want an error")
	}
	bad := append([]int32(nil), in.ids[0]...)
	bad[2] = -1
	if _, err := b.EncodeTexts(ctx, [][]int32{bad}); err == nil {
		t.Error("EncodeTexts(id -1) succeeded, want an error")
	}
	if got, err := b.EncodeImages(ctx, nil, 0); err != nil || len(got) != 0 {
		t.Errorf("EncodeImages(0 images) = %d values, %v; want none", len(got), err)
	}
}

// --- inputs ---------------------------------------------------------------------------

type fileInput struct {
	name   string
	index  int // in expected.json images
	pixels []float32
}

type inputs struct {
	ids       [][]int32
	synthetic []float32
	files     []fileInput // the PNG images: decoders agree, so the pixels are exact
	size      int
}

func makeInputs(t *testing.T, ref string, exp *expected) *inputs {
	t.Helper()
	size := exp.Config.ModelCfg.VisionCfg.ImageSize
	in := &inputs{synthetic: synthetic(size, 0), size: size}
	for _, c := range exp.Captions {
		in.ids = append(in.ids, c.TokenIDs)
	}
	cfg := preprocess.DefaultConfig()
	cfg.Size = size
	for i, im := range exp.Images {
		if im.Format != "PNG" {
			continue
		}
		data, err := os.ReadFile(filepath.Join(ref, im.File))
		if err != nil {
			t.Fatal(err)
		}
		pix, err := preprocess.Image(bytes.NewReader(data), cfg, preprocess.DefaultLimits())
		if err != nil {
			t.Fatalf("preprocess %s: %v", im.File, err)
		}
		for k, w := range im.PixelsFirst16 {
			if math.Abs(float64(pix[k])-w) > 1e-6 {
				t.Fatalf("preprocess %s: pixel %d = %v, want %v (the suite needs exact pixels)", im.File, k, pix[k], w)
			}
		}
		in.files = append(in.files, fileInput{name: im.File, index: i, pixels: pix})
	}
	if len(in.files) == 0 {
		t.Fatal("expected.json lists no PNG image")
	}
	return in
}

// variety returns n different images: the PNG files, then shifted synthetic patterns.
func (in *inputs) variety(n int) []float32 {
	var out []float32
	for i := 0; i < n; i++ {
		if i < len(in.files) {
			out = append(out, in.files[i].pixels...)
		} else {
			out = append(out, synthetic(in.size, i)...)
		}
	}
	return out
}

// synthetic is expected.json's synthetic image for shift 0:
// x[c][y][x] = float32(((c*101 + y*7 + x*13 + x*y + shift) mod 64) - 32) / 16.
func synthetic(size, shift int) []float32 {
	x := make([]float32, 3*size*size)
	for c := 0; c < 3; c++ {
		for y := 0; y < size; y++ {
			for i := 0; i < size; i++ {
				x[(c*size+y)*size+i] = float32((c*101+y*7+i*13+i*y+shift*5)%64-32) / 16
			}
		}
	}
	return x
}

// --- expected files -------------------------------------------------------------------

type expected struct {
	Config struct {
		ModelCfg struct {
			VisionCfg struct {
				ImageSize int `json:"image_size"`
			} `json:"vision_cfg"`
		} `json:"model_cfg"`
	} `json:"config"`
	Images []struct {
		File          string    `json:"file"`
		Format        string    `json:"format"`
		PixelsFirst16 []float64 `json:"pixels_first16"`
		Embedding     []float64 `json:"embedding"`
	} `json:"images"`
	Captions []struct {
		TokenIDs  []int32   `json:"token_ids"`
		Embedding []float64 `json:"embedding"`
	} `json:"captions"`
	Cosine    [][]float64 `json:"cosine_image_x_caption"`
	Synthetic struct {
		Embedding []float64 `json:"embedding"`
	} `json:"synthetic_image"`
}

func (e *expected) captionEmbeddings() [][]float64 {
	out := make([][]float64, len(e.Captions))
	for i, c := range e.Captions {
		out[i] = c.Embedding
	}
	return out
}

type expectedGELU struct {
	ImageEmbeddings   [][]float64 `json:"image_embeddings"`
	CaptionEmbeddings [][]float64 `json:"caption_embeddings"`
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
}

func readExpected(t *testing.T, path string) *expected {
	var e expected
	readJSON(t, path, &e)
	if len(e.Captions) == 0 || len(e.Synthetic.Embedding) == 0 || e.Config.ModelCfg.VisionCfg.ImageSize == 0 {
		t.Fatalf("%s: no captions, synthetic image or image size", path)
	}
	return &e
}

func readExpectedGELU(t *testing.T, path string) *expectedGELU {
	var e expectedGELU
	readJSON(t, path, &e)
	if len(e.CaptionEmbeddings) == 0 || len(e.ImageEmbeddings) == 0 {
		t.Fatalf("%s: no embeddings", path)
	}
	return &e
}

// --- helpers --------------------------------------------------------------------------

func link(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.Symlink(src, dst); err != nil {
		t.Fatal(err)
	}
}

func closeBackend(t *testing.T, b dva.Backend) {
	t.Helper()
	if err := b.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

func normalize(x []float32) []float64 {
	var s float64
	for _, v := range x {
		s += float64(v) * float64(v)
	}
	n := math.Max(math.Sqrt(s), 1e-12)
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = float64(v) / n
	}
	return out
}

func compareRows(t *testing.T, call string, got []float32, n int, want [][]float64, tol float64) {
	t.Helper()
	if len(want) != n || n == 0 {
		t.Fatalf("%s: %d expected rows for %d items", call, len(want), n)
	}
	E := len(want[0])
	if len(got) != n*E {
		t.Fatalf("%s: %d values, want %d x %d", call, len(got), n, E)
	}
	for i := 0; i < n; i++ {
		compareVec(t, fmt.Sprintf("%s %d", call, i), normalize(got[i*E:(i+1)*E]), want[i], tol)
	}
}

func compareVec(t *testing.T, what string, got, want []float64, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d components, want %d", what, len(got), len(want))
	}
	worst, at := 0.0, 0
	for i := range got {
		if d := math.Abs(got[i] - want[i]); d > worst || math.IsNaN(got[i]) {
			worst, at = d, i
			if math.IsNaN(got[i]) {
				worst = math.Inf(1)
			}
		}
	}
	if worst > tol {
		t.Errorf("%s: component %d = %.8f, want %.8f (|diff| %.2g > %g)", what, at, got[at], want[at], worst, tol)
	}
}
