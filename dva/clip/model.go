package clip

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/gata-contrib/gata/dva/tensor"
	"github.com/gata-contrib/gata/dva/weights"
)

// File names of an OpenCLIP model folder (the Hugging Face hub layout).
const (
	ConfigFile      = "open_clip_config.json"
	SafetensorsFile = "open_clip_model.safetensors"
	TorchFile       = "open_clip_pytorch_model.bin"
)

// Model is a loaded OpenCLIP ViT model. Its weights are copied out of the checkpoint (the
// matrices packed for tensor.MatMul), so it holds no file open. It is safe for concurrent use.
type Model struct {
	Config     *Config
	Vision     *VisionTransformer
	Text       *TextTransformer
	LogitScale float32 // logit_scale as stored (the log of the scale)
}

// LoadModel reads open_clip_config.json and the weights (open_clip_model.safetensors when
// present, else open_clip_pytorch_model.bin) from dir.
func LoadModel(dir string) (*Model, error) {
	data, err := os.ReadFile(filepath.Join(dir, ConfigFile))
	if err != nil {
		return nil, fmt.Errorf("load model: %w", err)
	}
	cfg, err := ParseConfig(data)
	if err != nil {
		return nil, fmt.Errorf("load model config %q: %w", filepath.Join(dir, ConfigFile), err)
	}
	path := filepath.Join(dir, SafetensorsFile)
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		path = filepath.Join(dir, TorchFile)
	}
	set, err := weights.Load(path)
	if err != nil {
		return nil, fmt.Errorf("load model weights: %w", err)
	}
	defer set.Close()
	m, err := NewModel(cfg, set)
	if err != nil {
		return nil, fmt.Errorf("load model weights %q: %w", path, err)
	}
	return m, nil
}

// Getter is where NewModel finds tensors by state_dict name (a *weights.Set).
type Getter interface {
	Get(name string) (*tensor.Tensor, bool)
}

// Shape is one expected tensor of the checkpoint.
type Shape struct {
	Name  string
	Shape []int
}

// Shapes lists every tensor the model reads, with its shape, in open_clip state_dict order.
func (c *Config) Shapes() []Shape {
	v, t := c.Vision, c.Text
	W, P, g, D, E := v.Width, v.PatchSize, v.Grid(), t.Width, c.EmbedDim
	out := []Shape{
		{"positional_embedding", []int{t.ContextLength, D}},
		{"text_projection", []int{D, E}},
		{"logit_scale", []int{}},
		{"visual.class_embedding", []int{W}},
		{"visual.positional_embedding", []int{g*g + 1, W}},
		{"visual.proj", []int{W, E}},
		{"visual.conv1.weight", []int{W, 3, P, P}},
		{"visual.ln_pre.weight", []int{W}},
		{"visual.ln_pre.bias", []int{W}},
	}
	block := func(prefix string, w, m int) {
		out = append(out,
			Shape{prefix + "ln_1.weight", []int{w}}, Shape{prefix + "ln_1.bias", []int{w}},
			Shape{prefix + "attn.in_proj_weight", []int{3 * w, w}}, Shape{prefix + "attn.in_proj_bias", []int{3 * w}},
			Shape{prefix + "attn.out_proj.weight", []int{w, w}}, Shape{prefix + "attn.out_proj.bias", []int{w}},
			Shape{prefix + "ln_2.weight", []int{w}}, Shape{prefix + "ln_2.bias", []int{w}},
			Shape{prefix + "mlp.c_fc.weight", []int{m, w}}, Shape{prefix + "mlp.c_fc.bias", []int{m}},
			Shape{prefix + "mlp.c_proj.weight", []int{w, m}}, Shape{prefix + "mlp.c_proj.bias", []int{w}},
		)
	}
	for i := 0; i < v.Layers; i++ {
		block(fmt.Sprintf("visual.transformer.resblocks.%d.", i), W, v.MLPWidth())
	}
	out = append(out, Shape{"visual.ln_post.weight", []int{W}}, Shape{"visual.ln_post.bias", []int{W}})
	for i := 0; i < t.Layers; i++ {
		block(fmt.Sprintf("transformer.resblocks.%d.", i), D, t.MLPWidth())
	}
	return append(out,
		Shape{"token_embedding.weight", []int{t.VocabSize, D}},
		Shape{"ln_final.weight", []int{D}}, Shape{"ln_final.bias", []int{D}})
}

// NewModel builds the model from the tensors of a checkpoint, after checking that every
// tensor cfg needs is present with the right shape. The tensors are copied: ws may be closed
// afterwards.
func NewModel(cfg *Config, ws Getter) (*Model, error) {
	ts := map[string]*tensor.Tensor{}
	for _, s := range cfg.Shapes() {
		t, ok := ws.Get(s.Name)
		if !ok {
			return nil, fmt.Errorf("tensor %s is missing (the config expects shape %v)", s.Name, s.Shape)
		}
		if !slices.Equal(t.Shape, s.Shape) || len(t.Data) != tensor.Numel(s.Shape) {
			return nil, fmt.Errorf("tensor %s has shape %v, the config expects %v", s.Name, t.Shape, s.Shape)
		}
		ts[s.Name] = t
	}
	vec := func(name string) []float32 { return slices.Clone(ts[name].Data) }
	linear := func(weight, bias string) Linear {
		w := ts[weight]
		return Linear{Weight: tensor.PackT(w.Data, w.Shape[0], w.Shape[1]), Bias: vec(bias)}
	}
	ln := func(prefix string) LayerNorm {
		return LayerNorm{Weight: vec(prefix + ".weight"), Bias: vec(prefix + ".bias")}
	}
	act := tensor.GELU
	if cfg.QuickGELU {
		act = tensor.QuickGELU
	}
	block := func(prefix string, heads int, causal bool) Block {
		return Block{
			LN1: ln(prefix + "ln_1"),
			Attn: Attention{
				InProj:  linear(prefix+"attn.in_proj_weight", prefix+"attn.in_proj_bias"),
				OutProj: linear(prefix+"attn.out_proj.weight", prefix+"attn.out_proj.bias"),
				Heads:   heads,
				Causal:  causal,
			},
			LN2: ln(prefix + "ln_2"),
			MLP: MLP{
				FC:   linear(prefix+"mlp.c_fc.weight", prefix+"mlp.c_fc.bias"),
				Proj: linear(prefix+"mlp.c_proj.weight", prefix+"mlp.c_proj.bias"),
				Act:  act,
			},
		}
	}

	v := cfg.Vision
	P := v.PatchSize
	vis := &VisionTransformer{
		Config:         v,
		Conv1:          Linear{Weight: tensor.PackT(ts["visual.conv1.weight"].Data, v.Width, 3*P*P)},
		ClassEmbedding: vec("visual.class_embedding"),
		PosEmbedding:   vec("visual.positional_embedding"),
		LNPre:          ln("visual.ln_pre"),
		LNPost:         ln("visual.ln_post"),
		Proj:           tensor.Pack(ts["visual.proj"].Data, v.Width, cfg.EmbedDim),
	}
	for i := 0; i < v.Layers; i++ {
		vis.Blocks = append(vis.Blocks, block(fmt.Sprintf("visual.transformer.resblocks.%d.", i), v.Heads(), false))
	}

	t := cfg.Text
	txt := &TextTransformer{
		Config:         t,
		TokenEmbedding: vec("token_embedding.weight"),
		PosEmbedding:   vec("positional_embedding"),
		LNFinal:        ln("ln_final"),
		Proj:           tensor.Pack(ts["text_projection"].Data, t.Width, cfg.EmbedDim),
	}
	for i := 0; i < t.Layers; i++ {
		txt.Blocks = append(txt.Blocks, block(fmt.Sprintf("transformer.resblocks.%d.", i), t.Heads, true))
	}
	return &Model{Config: cfg, Vision: vis, Text: txt, LogitScale: ts["logit_scale"].Data[0]}, nil
}

// EncodeImages runs the image tower on n images [n, 3, S, S] (CHW, already normalised) using
// up to threads goroutines (0: GOMAXPROCS) and returns n unnormalised embeddings, row-major.
func (m *Model) EncodeImages(ctx context.Context, pixels []float32, n, threads int) ([]float32, error) {
	return m.Vision.Forward(ctx, threads, pixels, n)
}

// EncodeTexts runs the text tower on rows of ContextLength token ids and returns
// len(ids) unnormalised embeddings, row-major.
func (m *Model) EncodeTexts(ctx context.Context, ids [][]int32, threads int) ([]float32, error) {
	return m.Text.Forward(ctx, threads, ids)
}

// TraceFunc receives intermediate activations of a forward pass, for tests and debugging:
// x is [rows, width] and is only valid during the call. Stages of the image tower:
// patch_embed (one row per patch, no class token), embed_plus_pos, ln_pre, block0 …,
// ln_post (class tokens), proj. Of the text tower: embed_plus_pos, block0 …, ln_final (the
// pooled rows), proj. Sequences are stacked: row b*tokens+i is token i of item b.
type TraceFunc func(stage string, x []float32, rows, width int)

type traceKey struct{}

// WithTrace returns a context that makes forward passes run under it report to fn.
func WithTrace(ctx context.Context, fn TraceFunc) context.Context {
	return context.WithValue(ctx, traceKey{}, fn)
}

func traceFrom(ctx context.Context) TraceFunc {
	fn, _ := ctx.Value(traceKey{}).(TraceFunc)
	return fn
}

func (fn TraceFunc) emit(stage string, x []float32, rows, width int) {
	if fn != nil {
		fn(stage, x, rows, width)
	}
}
