// Package clip is the OpenCLIP ViT model (the architecture of Apple's DFN CLIP models): its
// configuration, its weights as small structs (one per layer kind) and the float32 forward
// pass of the image and text towers on the CPU kernels of dva/tensor.
package clip

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"sort"
)

// Config is an open_clip_config.json: the model and its preprocessing.
type Config struct {
	EmbedDim   int
	QuickGELU  bool
	Vision     VisionConfig
	Text       TextConfig
	Preprocess PreprocessConfig
}

// VisionConfig describes the ViT image tower.
type VisionConfig struct {
	ImageSize int
	PatchSize int
	Width     int
	Layers    int
	HeadWidth int
	MLPRatio  float64
}

// Heads is Width / HeadWidth (open_clip's rule).
func (v VisionConfig) Heads() int { return v.Width / v.HeadWidth }

// Grid is the number of patches along a side.
func (v VisionConfig) Grid() int { return v.ImageSize / v.PatchSize }

// Tokens is the sequence length: one class token plus Grid² patches.
func (v VisionConfig) Tokens() int { return v.Grid()*v.Grid() + 1 }

// MLPWidth is the hidden width of each block's MLP.
func (v VisionConfig) MLPWidth() int { return int(float64(v.Width) * v.MLPRatio) }

// TextConfig describes the causal text transformer.
type TextConfig struct {
	ContextLength int
	VocabSize     int
	Width         int
	Heads         int
	Layers        int
	MLPRatio      float64
}

// MLPWidth is the hidden width of each block's MLP.
func (t TextConfig) MLPWidth() int { return int(float64(t.Width) * t.MLPRatio) }

// PreprocessConfig is how images are turned into pixels for the image tower.
type PreprocessConfig struct {
	ImageSize     int
	Mean, Std     [3]float64
	Interpolation string
	ResizeMode    string
}

// OpenAI CLIP normalisation, the default when preprocess_cfg does not give one.
var (
	openAIMean = [3]float64{0.48145466, 0.4578275, 0.40821073}
	openAIStd  = [3]float64{0.26862954, 0.26130258, 0.27577711}
)

// ParseConfig reads an open_clip_config.json ({"model_cfg": …, "preprocess_cfg": …}) or a
// bare model config. Fields that select an architecture this package does not implement
// (timm or Hugging Face towers, attentional pooling, no ln_pre, layer scale, …) are errors
// that name the field; so are fields it does not know.
func ParseConfig(data []byte) (*Config, error) {
	var top obj
	if err := unmarshalObj(data, &top); err != nil {
		return nil, fmt.Errorf("parse open_clip config: %w", err)
	}
	mc, pc := top, obj{}
	if raw, ok := top["model_cfg"]; ok {
		mc = nil
		if err := unmarshalObj(raw, &mc); err != nil {
			return nil, fmt.Errorf("parse model_cfg: %w", err)
		}
		if raw, ok := top["preprocess_cfg"]; ok && string(raw) != "null" {
			if err := unmarshalObj(raw, &pc); err != nil {
				return nil, fmt.Errorf("parse preprocess_cfg: %w", err)
			}
		}
		if err := top.known("", "model_cfg", "preprocess_cfg"); err != nil {
			return nil, err
		}
	}
	c := &Config{}
	var vc, tc obj
	p := parser{}
	p.int(mc, "model_cfg.embed_dim", "embed_dim", &c.EmbedDim, -1)
	p.bool(mc, "model_cfg.quick_gelu", "quick_gelu", &c.QuickGELU, false)
	p.obj(mc, "model_cfg.vision_cfg", "vision_cfg", &vc)
	p.obj(mc, "model_cfg.text_cfg", "text_cfg", &tc)
	p.unsupported(mc, "model_cfg", map[string]string{
		"custom_text": "false", "init_logit_bias": "null", "cast_dtype": "",
		"init_logit_scale": "", "text_pool_type": "", "multimodal_cfg": "null",
	})
	if err := p.err; err != nil {
		return nil, err
	}

	v := &c.Vision
	if raw, ok := vc["layers"]; ok && len(bytes.TrimSpace(raw)) > 0 && bytes.TrimSpace(raw)[0] == '[' {
		return nil, fmt.Errorf("model_cfg.vision_cfg.layers is a list: a ResNet image tower is not supported (ViT only)")
	}
	p.int(vc, "model_cfg.vision_cfg.image_size", "image_size", &v.ImageSize, 224)
	p.int(vc, "model_cfg.vision_cfg.patch_size", "patch_size", &v.PatchSize, 16)
	p.int(vc, "model_cfg.vision_cfg.width", "width", &v.Width, 768)
	p.int(vc, "model_cfg.vision_cfg.layers", "layers", &v.Layers, 12)
	p.int(vc, "model_cfg.vision_cfg.head_width", "head_width", &v.HeadWidth, 64)
	p.float(vc, "model_cfg.vision_cfg.mlp_ratio", "mlp_ratio", &v.MLPRatio, 4)
	p.unsupported(vc, "model_cfg.vision_cfg", map[string]string{
		"timm_model_name": "null", "timm_model_pretrained": "", "timm_pool": "", "timm_proj": "",
		"timm_proj_bias": "", "timm_drop": "", "timm_drop_path": "",
		"attentional_pool": "false", "attn_pooler_queries": "", "attn_pooler_heads": "",
		"no_ln_pre": "false", "pos_embed_type": `"learnable"`, "final_ln_after_pool": "false",
		"pool_type": `"tok"`, "output_tokens": "false", "ls_init_value": "null",
		"input_patchnorm": "false", "global_average_pool": "false", "act_kwargs": "null",
		"norm_kwargs": "null", "patch_dropout": "", "emb_dropout": "", "proj_bias": "false",
		"proj_type": `"linear"`,
	})
	if err := p.err; err != nil {
		return nil, err
	}

	t := &c.Text
	p.int(tc, "model_cfg.text_cfg.context_length", "context_length", &t.ContextLength, 77)
	p.int(tc, "model_cfg.text_cfg.vocab_size", "vocab_size", &t.VocabSize, 49408)
	p.int(tc, "model_cfg.text_cfg.width", "width", &t.Width, 512)
	p.int(tc, "model_cfg.text_cfg.heads", "heads", &t.Heads, 8)
	p.int(tc, "model_cfg.text_cfg.layers", "layers", &t.Layers, 12)
	p.float(tc, "model_cfg.text_cfg.mlp_ratio", "mlp_ratio", &t.MLPRatio, 4)
	p.unsupported(tc, "model_cfg.text_cfg", map[string]string{
		"hf_model_name": "null", "hf_tokenizer_name": "null", "hf_model_pretrained": "",
		"hf_proj_type": "", "hf_pooler_type": "", "tokenizer_kwargs": "null",
		"ls_init_value": "null", "embed_cls": "false", "pad_id": "0", "no_causal_mask": "false",
		"final_ln_after_pool": "false", "pool_type": `"argmax"`, "proj_bias": "false",
		"proj_type": `"linear"`, "output_tokens": "false", "act_kwargs": "null", "norm_kwargs": "null",
		"proj": `"linear"`, "attentional_pool": "false",
	})
	if err := p.err; err != nil {
		return nil, err
	}

	pp := &c.Preprocess
	p.int(pc, "preprocess_cfg.image_size", "image_size", &pp.ImageSize, v.ImageSize)
	p.triple(pc, "preprocess_cfg.mean", "mean", &pp.Mean, openAIMean)
	p.triple(pc, "preprocess_cfg.std", "std", &pp.Std, openAIStd)
	p.str(pc, "preprocess_cfg.interpolation", "interpolation", &pp.Interpolation, "bicubic")
	p.str(pc, "preprocess_cfg.resize_mode", "resize_mode", &pp.ResizeMode, "shortest")
	p.unsupported(pc, "preprocess_cfg", map[string]string{"fill_color": ""})
	if err := p.err; err != nil {
		return nil, err
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// Limits far above any published CLIP model; they keep a corrupt or hostile config from
// asking for absurd allocations.
const (
	maxLayers    = 256
	maxWidth     = 1 << 14
	maxImageSize = 4096
	maxContext   = 1 << 14
	maxVocab     = 1 << 22
	maxMLPRatio  = 64
)

func (c *Config) validate() error {
	v, t := c.Vision, c.Text
	checks := []struct {
		bad  bool
		what string
	}{
		{c.EmbedDim <= 0, fmt.Sprintf("model_cfg.embed_dim %d must be positive", c.EmbedDim)},
		{v.Width <= 0 || v.Layers < 0 || v.PatchSize <= 0 || v.ImageSize <= 0 || v.HeadWidth <= 0,
			"model_cfg.vision_cfg: width, patch_size, image_size and head_width must be positive"},
		{v.ImageSize%v.PatchSize != 0, fmt.Sprintf("model_cfg.vision_cfg.image_size %d is not a multiple of patch_size %d", v.ImageSize, v.PatchSize)},
		{v.Width%v.HeadWidth != 0, fmt.Sprintf("model_cfg.vision_cfg.width %d is not a multiple of head_width %d", v.Width, v.HeadWidth)},
		{v.MLPWidth() <= 0, "model_cfg.vision_cfg.mlp_ratio must be positive"},
		{t.Width <= 0 || t.Heads <= 0 || t.Layers < 0 || t.ContextLength <= 0 || t.VocabSize <= 0,
			"model_cfg.text_cfg: width, heads, context_length and vocab_size must be positive"},
		{t.Width%max(t.Heads, 1) != 0, fmt.Sprintf("model_cfg.text_cfg.width %d is not a multiple of heads %d", t.Width, t.Heads)},
		{t.MLPWidth() <= 0, "model_cfg.text_cfg.mlp_ratio must be positive"},
		{v.Layers > maxLayers || t.Layers > maxLayers || v.Width > maxWidth || t.Width > maxWidth ||
			v.ImageSize > maxImageSize || t.ContextLength > maxContext || t.VocabSize > maxVocab ||
			c.EmbedDim > maxWidth || v.MLPRatio > maxMLPRatio || t.MLPRatio > maxMLPRatio,
			fmt.Sprintf("sizes beyond the supported limits (layers %d, widths %d, image %d, context %d, vocabulary %d, mlp_ratio %d, embed_dim %d)",
				maxLayers, maxWidth, maxImageSize, maxContext, maxVocab, maxMLPRatio, maxWidth)},
		{c.Preprocess.ImageSize != v.ImageSize, fmt.Sprintf("preprocess_cfg.image_size %d differs from model_cfg.vision_cfg.image_size %d", c.Preprocess.ImageSize, v.ImageSize)},
	}
	for _, ch := range checks {
		if ch.bad {
			return fmt.Errorf("invalid open_clip config: %s", ch.what)
		}
	}
	return nil
}

// obj is a JSON object with its values left raw.
type obj map[string]json.RawMessage

func unmarshalObj(data []byte, o *obj) error {
	if err := json.Unmarshal(data, o); err != nil {
		return err
	}
	if *o == nil {
		*o = obj{}
	}
	return nil
}

// known fails on the first key (in sorted order) that is not in names.
func (o obj) known(where string, names ...string) error {
	var unknown []string
	for k := range o {
		ok := false
		for _, n := range names {
			ok = ok || k == n
		}
		if !ok {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	sort.Strings(unknown)
	field := unknown[0]
	if where != "" {
		field = where + "." + field
	}
	return fmt.Errorf("unsupported open_clip config: unknown field %s", field)
}

// parser reads typed fields and keeps the first error.
type parser struct{ err error }

func (p *parser) get(o obj, path, key string, dst any) bool {
	raw, ok := o[key]
	if p.err != nil || !ok || string(bytes.TrimSpace(raw)) == "null" {
		return false
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		p.err = fmt.Errorf("parse %s: %w", path, err)
		return false
	}
	return true
}

func (p *parser) int(o obj, path, key string, dst *int, def int) {
	var f float64
	if !p.get(o, path, key, &f) {
		if p.err == nil && def < 0 {
			p.err = fmt.Errorf("open_clip config: %s is missing", path)
		}
		*dst = def
		return
	}
	if f != math.Trunc(f) || math.Abs(f) > 1<<30 {
		p.err = fmt.Errorf("open_clip config: %s = %v is not an integer", path, f)
	}
	*dst = int(f)
}

func (p *parser) float(o obj, path, key string, dst *float64, def float64) {
	if !p.get(o, path, key, dst) {
		*dst = def
	}
}

func (p *parser) bool(o obj, path, key string, dst *bool, def bool) {
	if !p.get(o, path, key, dst) {
		*dst = def
	}
}

func (p *parser) str(o obj, path, key string, dst *string, def string) {
	if !p.get(o, path, key, dst) {
		*dst = def
	}
}

func (p *parser) triple(o obj, path, key string, dst *[3]float64, def [3]float64) {
	var s []float64
	if !p.get(o, path, key, &s) {
		*dst = def
		return
	}
	if len(s) != 3 {
		p.err = fmt.Errorf("open_clip config: %s has %d values, want 3", path, len(s))
		return
	}
	copy(dst[:], s)
}

func (p *parser) obj(o obj, path, key string, dst *obj) {
	*dst = obj{}
	raw, ok := o[key]
	if p.err != nil || !ok {
		if p.err == nil {
			p.err = fmt.Errorf("open_clip config: %s is missing", path)
		}
		return
	}
	if err := unmarshalObj(raw, dst); err != nil {
		p.err = fmt.Errorf("parse %s: %w", path, err)
	}
}

// unsupported checks that every key of o is either one of the regular keys read above, or
// in allowed with a value that does not change the architecture: allowed maps a key to the
// only value (as compact JSON) this package implements, or to "" when any value is harmless
// at inference time. JSON null always means the default.
func (p *parser) unsupported(o obj, where string, allowed map[string]string) {
	if p.err != nil {
		return
	}
	regular := map[string]bool{}
	switch where {
	case "model_cfg":
		for _, k := range []string{"embed_dim", "quick_gelu", "vision_cfg", "text_cfg"} {
			regular[k] = true
		}
	case "model_cfg.vision_cfg":
		for _, k := range []string{"image_size", "patch_size", "width", "layers", "head_width", "mlp_ratio"} {
			regular[k] = true
		}
	case "model_cfg.text_cfg":
		for _, k := range []string{"context_length", "vocab_size", "width", "heads", "layers", "mlp_ratio"} {
			regular[k] = true
		}
	case "preprocess_cfg":
		for _, k := range []string{"image_size", "mean", "std", "interpolation", "resize_mode"} {
			regular[k] = true
		}
	}
	keys := make([]string, 0, len(o))
	for k := range o {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if regular[k] {
			continue
		}
		want, ok := allowed[k]
		if !ok {
			p.err = fmt.Errorf("unsupported open_clip config: unknown field %s.%s", where, k)
			return
		}
		var buf bytes.Buffer
		if err := json.Compact(&buf, o[k]); err != nil {
			p.err = fmt.Errorf("parse %s.%s: %w", where, k, err)
			return
		}
		got := buf.String()
		if want == "" || got == "null" || got == want || (want == "null" && (got == "{}" || got == "false")) {
			continue
		}
		p.err = fmt.Errorf("unsupported open_clip config: %s.%s = %s (only %s is implemented)", where, k, got, want)
		return
	}
}
