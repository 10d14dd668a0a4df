package clip

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gata-contrib/gata/dva/internal/refdata"
)

func TestParseConfigRef(t *testing.T) {
	for _, tt := range []struct {
		file  string
		quick bool
	}{{"open_clip_config.json", true}, {"open_clip_config_gelu.json", false}} {
		t.Run(tt.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(refdata.Clip(t), tt.file))
			if err != nil {
				t.Fatal(err)
			}
			c, err := ParseConfig(data)
			if err != nil {
				t.Fatalf("ParseConfig: %v", err)
			}
			v, x := c.Vision, c.Text
			if c.EmbedDim != 16 || c.QuickGELU != tt.quick || v.ImageSize != 224 || v.PatchSize != 32 ||
				v.Width != 32 || v.Layers != 2 || v.Heads() != 2 || v.Tokens() != 50 || v.MLPWidth() != 128 ||
				x.ContextLength != 77 || x.VocabSize != 49408 || x.Width != 4 || x.Heads != 2 || x.Layers != 2 || x.MLPWidth() != 16 {
				t.Errorf("ParseConfig = %+v", c)
			}
			p := c.Preprocess
			if p.ImageSize != 224 || p.Mean != openAIMean || p.Std != openAIStd || p.Interpolation != "bicubic" || p.ResizeMode != "shortest" {
				t.Errorf("ParseConfig preprocess = %+v", p)
			}
		})
	}
}

// TestParseConfigDefaults reads ViT-B-16 as DFN2B ships it: head_width, mlp_ratio and the
// preprocess image size come from defaults.
func TestParseConfigDefaults(t *testing.T) {
	c, err := ParseConfig([]byte(`{"model_cfg": {"embed_dim": 512, "quick_gelu": true,
		"vision_cfg": {"image_size": 224, "layers": 12, "width": 768, "patch_size": 16},
		"text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 512, "heads": 8, "layers": 12}},
		"preprocess_cfg": {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5], "interpolation": "bicubic"}}`))
	if err != nil {
		t.Fatalf("ParseConfig: %v", err)
	}
	if c.Vision.Heads() != 12 || c.Vision.MLPWidth() != 3072 || c.Vision.Tokens() != 197 || c.Text.MLPWidth() != 2048 ||
		c.Preprocess.ImageSize != 224 || c.Preprocess.ResizeMode != "shortest" || c.Preprocess.Mean != [3]float64{0.5, 0.5, 0.5} {
		t.Errorf("ParseConfig = %+v", c)
	}
	// A bare model config (open_clip's model_configs form) and harmless inference-time fields.
	c, err = ParseConfig([]byte(`{"embed_dim": 1024, "vision_cfg": {"image_size": 378, "layers": 32,
		"width": 1280, "head_width": 80, "patch_size": 14, "patch_dropout": 0.0, "ls_init_value": null},
		"text_cfg": {"width": 1024, "heads": 16, "layers": 24, "pool_type": "argmax"}}`))
	if err != nil {
		t.Fatalf("ParseConfig(ViT-H-14-378): %v", err)
	}
	if c.Vision.Heads() != 16 || c.Vision.Tokens() != 730 || c.QuickGELU || c.Preprocess.ImageSize != 378 || c.Text.ContextLength != 77 {
		t.Errorf("ParseConfig(ViT-H-14-378) = %+v", c)
	}
}

func TestParseConfigErrors(t *testing.T) {
	const vis = `"vision_cfg": {"image_size": 224, "layers": 2, "width": 64, "patch_size": 16 %s}`
	const txt = `"text_cfg": {"width": 64, "heads": 2, "layers": 2 %s}`
	cfg := func(model, vision, text, pre string) string {
		return `{"model_cfg": {"embed_dim": 16` + model + `, ` + strings.Replace(vis, "%s", vision, 1) + `, ` +
			strings.Replace(txt, "%s", text, 1) + `}, "preprocess_cfg": {"mean": [0.5, 0.5, 0.5]` + pre + `}}`
	}
	for _, tt := range []struct {
		name, json, want string
	}{
		{"timm", cfg("", `, "timm_model_name": "vit_base_patch16_224"`, "", ""), `model_cfg.vision_cfg.timm_model_name = "vit_base_patch16_224"`},
		{"hf text", cfg("", "", `, "hf_model_name": "xlm-roberta-base"`, ""), `model_cfg.text_cfg.hf_model_name = "xlm-roberta-base"`},
		{"attentional pool", cfg("", `, "attentional_pool": true`, "", ""), "model_cfg.vision_cfg.attentional_pool = true"},
		{"no ln_pre", cfg("", `, "no_ln_pre": true`, "", ""), "model_cfg.vision_cfg.no_ln_pre = true"},
		{"layer scale", cfg("", `, "ls_init_value": 1e-5`, "", ""), "model_cfg.vision_cfg.ls_init_value"},
		{"gap pool", cfg("", `, "pool_type": "avg"`, "", ""), `model_cfg.vision_cfg.pool_type = "avg"`},
		{"resnet", cfg("", `, "layers": [3, 4, 6, 3]`, "", ""), "model_cfg.vision_cfg.layers is a list"},
		{"unknown vision", cfg("", `, "frobnicate": 1`, "", ""), "unknown field model_cfg.vision_cfg.frobnicate"},
		{"unknown model", cfg(`, "coca": {}`, "", "", ""), "unknown field model_cfg.coca"},
		{"custom text", cfg(`, "custom_text": true`, "", "", ""), "model_cfg.custom_text = true"},
		{"siglip bias", cfg(`, "init_logit_bias": -10`, "", "", ""), "model_cfg.init_logit_bias = -10"},
		{"no causal mask", cfg("", "", `, "no_causal_mask": true`, ""), "model_cfg.text_cfg.no_causal_mask = true"},
		{"unknown preprocess", cfg("", "", "", `, "crop_pct": 0.9`), "unknown field preprocess_cfg.crop_pct"},
		{"mean of 2", cfg("", "", "", `, "std": [0.5, 0.5]`), "preprocess_cfg.std has 2 values"},
		{"image size mismatch", cfg("", "", "", `, "image_size": 256`), "preprocess_cfg.image_size 256 differs"},
		{"patch does not divide", cfg("", `, "patch_size": 15`, "", ""), "image_size 224 is not a multiple of patch_size 15"},
		{"head width", cfg("", `, "head_width": 48`, "", ""), "width 64 is not a multiple of head_width 48"},
		{"text heads", cfg("", "", `, "heads": 3`, ""), "model_cfg.text_cfg.width 64 is not a multiple of heads 3"},
		{"fractional layers", cfg("", `, "layers": 2.5`, "", ""), "model_cfg.vision_cfg.layers = 2.5 is not an integer"},
		{"absurd layers", cfg("", `, "layers": 100000000`, "", ""), "beyond the supported limits"},
		{"absurd vocab", cfg("", "", `, "vocab_size": 1e9`, ""), "beyond the supported limits"},
		{"no embed_dim", `{"model_cfg": {"vision_cfg": {}, "text_cfg": {}}}`, "model_cfg.embed_dim is missing"},
		{"no text_cfg", `{"model_cfg": {"embed_dim": 4, "vision_cfg": {}}}`, "model_cfg.text_cfg is missing"},
		{"unknown top", `{"model_cfg": {"embed_dim": 4, "vision_cfg": {}, "text_cfg": {}}, "extra": 1}`, "unknown field extra"},
		{"not json", `{"model_cfg": `, "parse open_clip config"},
		{"bad type", cfg("", `, "width": "wide"`, "", ""), "parse model_cfg.vision_cfg.width"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tt.json))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseConfig = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}
