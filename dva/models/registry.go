// Package models is the model store of the Data Validation Agent: a registry of known CLIP
// models, downloads with HTTP Range resume and sha256 verification into the data folder's
// models/ (one folder per weights checksum), and resolution of a model name or a local
// model folder to a folder the engine can load.
package models

import (
	"encoding/json"
	"slices"
)

// License is what the user accepts before the first download of a model.
type License struct {
	Name    string `json:"name"`
	URL     string `json:"url"`
	Summary string `json:"summary"`
}

// Spec is a known model: where its weights come from, their size and checksum, and the
// OpenCLIP config the engine loads them with.
type Spec struct {
	Name        string          `json:"name"`
	Title       string          `json:"title"`
	Description string          `json:"description"`
	URL         string          `json:"url"`
	File        string          `json:"file"` // file name of the weights inside the model folder
	Size        int64           `json:"size"`
	SHA256      string          `json:"sha256"`
	License     License         `json:"license"`
	Config      json.RawMessage `json:"-"` // open_clip_config.json written beside the weights
}

// DefaultModel is the model used when none is named.
const DefaultModel = "dfn2b-vit-b-16"

const appleASCL = "Apple Sample Code License: use, reproduction, modification and redistribution are allowed, " +
	"provided the licence text is kept with redistributions; no trademark rights; provided as is, without warranty."

// dfn2bConfig is ViT-B-16 with QuickGELU, as OpenCLIP's own "dfn2b" pretrained entry
// specifies (the hub's open_clip_config.json omits quick_gelu).
const dfn2bConfig = `{
  "model_cfg": {
    "embed_dim": 512,
    "quick_gelu": true,
    "vision_cfg": {"image_size": 224, "layers": 12, "width": 768, "patch_size": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 512, "heads": 8, "layers": 12}
  },
  "preprocess_cfg": {
    "mean": [0.48145466, 0.4578275, 0.40821073],
    "std": [0.26862954, 0.26130258, 0.27577711],
    "interpolation": "bicubic",
    "resize_mode": "shortest"
  }
}
`

var registry = []Spec{
	{
		Name:        DefaultModel,
		Title:       "DFN2B CLIP ViT-B/16 (Apple)",
		Description: "CLIP ViT-B/16 trained on DFN-2B, 2 billion image–text pairs chosen by Data Filtering Networks; 224 px, QuickGELU.",
		URL:         "https://huggingface.co/apple/DFN2B-CLIP-ViT-B-16/resolve/main/open_clip_pytorch_model.bin",
		File:        "open_clip_pytorch_model.bin",
		Size:        598_597_605,
		SHA256:      "01832e9567e6f668928c6ef493fe9c0985f9df146e0212bdccc87f3e25e37084",
		License: License{Name: "Apple Sample Code License", URL: "https://huggingface.co/apple/DFN2B-CLIP-ViT-B-16/blob/main/LICENSE",
			Summary: appleASCL},
		Config: json.RawMessage(dfn2bConfig),
	},
}

// Known lists the models the app can download.
func Known() []Spec { return slices.Clone(registry) }

// Lookup finds a known model by name.
func Lookup(name string) (Spec, bool) {
	i := slices.IndexFunc(registry, func(s Spec) bool { return s.Name == name })
	if i < 0 {
		return Spec{}, false
	}
	return registry[i], true
}
