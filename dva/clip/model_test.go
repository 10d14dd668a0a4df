package clip

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gata-contrib/gata/dva/internal/refdata"
	"github.com/gata-contrib/gata/dva/tensor"
	"github.com/gata-contrib/gata/dva/weights"
)

type expected struct {
	Captions []struct {
		TokenIDs  []int32   `json:"token_ids"`
		EOTIndex  int       `json:"eot_index"`
		Embedding []float64 `json:"embedding"`
		Norm      float64   `json:"unnormalized_norm"`
	} `json:"captions"`
	Synthetic struct {
		PixelsSum     float64              `json:"pixels_sum"`
		Embedding     []float64            `json:"embedding"`
		Intermediates map[string][]float64 `json:"intermediates_first8"`
	} `json:"synthetic_image"`
	TextIntermediates map[string]json.RawMessage `json:"text_intermediates_first8"`
}

func loadExpected(t *testing.T) *expected {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(refdata.Clip(t), "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	var e expected
	if err := json.Unmarshal(data, &e); err != nil {
		t.Fatalf("parse expected.json: %v", err)
	}
	return &e
}

var (
	tinyModel  *Model
	tinyLoaded bool
)

func loadTiny(t *testing.T) *Model {
	t.Helper()
	if !tinyLoaded {
		m, err := LoadModel(refdata.Clip(t))
		if err != nil {
			t.Fatalf("LoadModel: %v", err)
		}
		tinyModel, tinyLoaded = m, true
	}
	return tinyModel
}

// syntheticImage is the input of expected.json's synthetic_image (exact in float32).
func syntheticImage(S int) []float32 {
	x := make([]float32, 3*S*S)
	for c := 0; c < 3; c++ {
		for y := 0; y < S; y++ {
			for i := 0; i < S; i++ {
				x[(c*S+y)*S+i] = float32((c*101+y*7+i*13+i*y)%64-32) / 16
			}
		}
	}
	return x
}

func within(got float32, want, tol float64) bool {
	return math.Abs(float64(got)-want) <= tol*math.Max(1, math.Abs(want))
}

func TestImageIntermediates(t *testing.T) {
	m, e := loadTiny(t), loadExpected(t)
	S, T := m.Config.Vision.ImageSize, m.Config.Vision.Tokens()
	pix := syntheticImage(S)
	var sum float64
	for _, v := range pix {
		sum += float64(v)
	}
	if sum != e.Synthetic.PixelsSum {
		t.Fatalf("synthetic image sums to %v, want %v", sum, e.Synthetic.PixelsSum)
	}
	got := map[string][]float32{}
	ctx := WithTrace(context.Background(), func(stage string, x []float32, rows, width int) {
		row := func(r int) []float32 { return append([]float32(nil), x[r*width:r*width+8]...) }
		switch {
		case stage == "patch_embed":
			got["patch_embed_token0 (first patch, before class token)"] = row(0)
		case stage == "embed_plus_pos":
			got["embed_plus_pos_token0 (class)"] = row(0)
			got["embed_plus_pos_token1"] = row(1)
		case stage == "ln_pre":
			got["ln_pre_token1"] = row(1)
		case strings.HasPrefix(stage, "block"):
			got[stage+"_token0"] = row(0)
			got[stage+"_token_last"] = row(T - 1)
		case stage == "ln_post":
			got["ln_post_class_token"] = row(0)
		case stage == "proj":
			got["proj_unnormalized"] = row(0)
		}
	})
	if _, err := m.EncodeImages(ctx, pix, 1, 2); err != nil {
		t.Fatalf("EncodeImages: %v", err)
	}
	if len(e.Synthetic.Intermediates) != 6+2*m.Config.Vision.Layers {
		t.Fatalf("expected.json has %d image intermediates", len(e.Synthetic.Intermediates))
	}
	for name, want := range e.Synthetic.Intermediates {
		g, ok := got[name]
		if !ok {
			t.Errorf("stage %q was not traced", name)
			continue
		}
		for i, w := range want {
			if !within(g[i], w, 1e-5) {
				t.Errorf("%s[%d] = %v, want %v", name, i, g[i], w)
			}
		}
	}
}

func TestTextIntermediates(t *testing.T) {
	m, e := loadTiny(t), loadExpected(t)
	var ci, eot int
	if err := errors.Join(json.Unmarshal(e.TextIntermediates["caption_index"], &ci),
		json.Unmarshal(e.TextIntermediates["eot_index"], &eot)); err != nil {
		t.Fatal(err)
	}
	got := map[string][]float32{}
	ctx := WithTrace(context.Background(), func(stage string, x []float32, rows, width int) {
		row := func(r int) []float32 { return append([]float32(nil), x[r*width:r*width+min(8, width)]...) }
		switch {
		case stage == "embed_plus_pos":
			if rows != eot+1 {
				t.Errorf("text tower ran %d positions, want %d (up to the EOT)", rows, eot+1)
			}
			got["embed_plus_pos_token0"] = row(0)
			got["embed_plus_pos_token1"] = row(1)
		case strings.HasPrefix(stage, "block"):
			got[stage+"_token1"] = row(1)
			got[stage+"_eot"] = row(eot)
		case stage == "ln_final":
			got["ln_final_eot"] = row(0)
		case stage == "proj":
			got["proj_unnormalized"] = row(0)
		}
	})
	if _, err := m.EncodeTexts(ctx, [][]int32{e.Captions[ci].TokenIDs}, 1); err != nil {
		t.Fatalf("EncodeTexts: %v", err)
	}
	n := 0
	for name, raw := range e.TextIntermediates {
		if name == "caption_index" || name == "eot_index" {
			continue
		}
		n++
		var want []float64
		if err := json.Unmarshal(raw, &want); err != nil {
			t.Fatalf("parse %s: %v", name, err)
		}
		g, ok := got[name]
		if !ok {
			t.Errorf("stage %q was not traced", name)
			continue
		}
		for i, w := range want {
			if !within(g[i], w, 1e-5) {
				t.Errorf("%s[%d] = %v, want %v", name, i, g[i], w)
			}
		}
	}
	if n != 4+2*m.Config.Text.Layers {
		t.Errorf("expected.json has %d text intermediates", n)
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

func TestEmbeddings(t *testing.T) {
	m, e := loadTiny(t), loadExpected(t)
	E := m.Config.EmbedDim
	ids := make([][]int32, len(e.Captions))
	for i, c := range e.Captions {
		ids[i] = c.TokenIDs
	}
	txt, err := m.EncodeTexts(context.Background(), ids, 2)
	if err != nil {
		t.Fatalf("EncodeTexts: %v", err)
	}
	for i, c := range e.Captions {
		got := normalize(txt[i*E : (i+1)*E])
		for j, w := range c.Embedding {
			if math.Abs(got[j]-w) > 1e-5 {
				t.Errorf("caption %d embedding[%d] = %v, want %v", i, j, got[j], w)
			}
		}
	}
	img, err := m.EncodeImages(context.Background(), syntheticImage(m.Config.Vision.ImageSize), 1, 2)
	if err != nil {
		t.Fatalf("EncodeImages: %v", err)
	}
	got := normalize(img)
	for j, w := range e.Synthetic.Embedding {
		if math.Abs(got[j]-w) > 1e-5 {
			t.Errorf("synthetic image embedding[%d] = %v, want %v", j, got[j], w)
		}
	}
}

// TestLoadModelTorch loads the same weights from the torch .bin and gets the same model.
func TestLoadModelTorch(t *testing.T) {
	src := refdata.Clip(t)
	dir := t.TempDir()
	for _, f := range []string{ConfigFile, TorchFile} {
		if err := os.Symlink(filepath.Join(src, f), filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	m, err := LoadModel(dir)
	if err != nil {
		t.Fatalf("LoadModel(.bin): %v", err)
	}
	ref := loadTiny(t)
	ids := [][]int32{loadExpected(t).Captions[0].TokenIDs}
	a, _ := m.EncodeTexts(context.Background(), ids, 1)
	b, _ := ref.EncodeTexts(context.Background(), ids, 1)
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("text embedding from .bin [%d] = %v, from safetensors %v", i, a[i], b[i])
		}
	}
	if m.LogitScale != ref.LogitScale || math.Abs(math.Exp(float64(m.LogitScale))-100) > 1e-3 {
		t.Errorf("LogitScale = %v (exp %v), want log(100)", m.LogitScale, math.Exp(float64(m.LogitScale)))
	}
}

// reshaped serves the tiny model's tensors, with one of them given a wrong shape or removed.
type reshaped struct {
	set    *weights.Set
	name   string
	shape  []int
	remove bool
}

func (r reshaped) Get(name string) (*tensor.Tensor, bool) {
	t, ok := r.set.Get(name)
	if name != r.name || !ok {
		return t, ok
	}
	if r.remove {
		return nil, false
	}
	return &tensor.Tensor{Shape: r.shape, Data: t.Data[:tensor.Numel(r.shape)]}, true
}

func TestNewModelErrors(t *testing.T) {
	dir := refdata.Clip(t)
	set, err := weights.Load(filepath.Join(dir, SafetensorsFile))
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	data, err := os.ReadFile(filepath.Join(dir, ConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseConfig(data)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		src  reshaped
		want string
	}{
		{reshaped{set: set, name: "visual.proj", shape: []int{32, 8}}, "visual.proj has shape [32 8], the config expects [32 16]"},
		{reshaped{set: set, name: "transformer.resblocks.1.mlp.c_fc.bias", remove: true}, "transformer.resblocks.1.mlp.c_fc.bias is missing"},
		{reshaped{set: set, name: "logit_scale", shape: []int{1}}, "logit_scale has shape [1]"},
	} {
		t.Run(tt.src.name, func(t *testing.T) {
			_, err := NewModel(cfg, tt.src)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("NewModel = %v, want an error containing %q", err, tt.want)
			}
		})
	}
	// A config that does not match the checkpoint: more vision layers than it holds.
	big := *cfg
	big.Vision.Layers = 3
	if _, err := NewModel(&big, set); err == nil || !strings.Contains(err.Error(), "visual.transformer.resblocks.2.ln_1.weight is missing") {
		t.Errorf("NewModel(3 layers) = %v, want a missing-tensor error", err)
	}
}

func TestEncodeErrors(t *testing.T) {
	m := loadTiny(t)
	ctx := context.Background()
	if _, err := m.EncodeImages(ctx, make([]float32, 10), 1, 1); err == nil {
		t.Error("EncodeImages(10 values) succeeded, want a size error")
	}
	bad := make([]int32, 77)
	bad[3] = 49408
	if _, err := m.EncodeTexts(ctx, [][]int32{bad}, 1); err == nil || !strings.Contains(err.Error(), "49408") {
		t.Errorf("EncodeTexts(id 49408) = %v, want an out-of-vocabulary error", err)
	}
	if _, err := m.EncodeTexts(ctx, [][]int32{make([]int32, 5)}, 1); err == nil {
		t.Error("EncodeTexts(5 ids) succeeded, want a length error")
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := m.EncodeImages(cctx, syntheticImage(224), 1, 1); !errors.Is(err, context.Canceled) {
		t.Errorf("EncodeImages(cancelled) = %v, want context.Canceled", err)
	}
	if _, err := m.EncodeTexts(cctx, [][]int32{loadExpected(t).Captions[0].TokenIDs}, 1); !errors.Is(err, context.Canceled) {
		t.Errorf("EncodeTexts(cancelled) = %v, want context.Canceled", err)
	}
	if out, err := m.EncodeTexts(ctx, nil, 1); err != nil || len(out) != 0 {
		t.Errorf("EncodeTexts(nil) = %v, %v; want empty", out, err)
	}
}

// TestCancelBetweenLayers cancels the context while the first block's output is traced: the
// forward pass must stop before the next layer and return the context's error.
func TestCancelBetweenLayers(t *testing.T) {
	m := loadTiny(t)
	for _, tower := range []string{"image", "text"} {
		t.Run(tower, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var stages []string
			ctx = WithTrace(ctx, func(stage string, x []float32, rows, width int) {
				stages = append(stages, stage)
				if stage == "block0" {
					cancel()
				}
			})
			var err error
			if tower == "image" {
				_, err = m.EncodeImages(ctx, syntheticImage(m.Config.Vision.ImageSize), 1, 1)
			} else {
				_, err = m.EncodeTexts(ctx, [][]int32{loadExpected(t).Captions[0].TokenIDs}, 1)
			}
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Encode (cancelled after block0) = %v, want context.Canceled", err)
			}
			if last := stages[len(stages)-1]; last != "block0" {
				t.Errorf("stages traced %v: ran past block0 after cancellation", stages)
			}
		})
	}
}
