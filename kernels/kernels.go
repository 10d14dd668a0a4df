package kernels

import _ "embed" // the PTX below

//go:generate sh gen.sh

// Module is one PTX module: the kernels of one .cu file.
type Module struct {
	Name    string   // the .cu file without its extension
	PTX     string   // compute_80 PTX, as nvcc wrote it
	Kernels []string // the entry points, extern "C" names
}

var (
	//go:embed gemm.ptx
	gemmPTX string
	//go:embed attention.ptx
	attentionPTX string
	//go:embed layernorm.ptx
	layernormPTX string
	//go:embed embed.ptx
	embedPTX string
	//go:embed resize.ptx
	resizePTX string
)

// Modules returns every module with its kernels.
func Modules() []Module {
	return []Module{
		{"gemm", gemmPTX, []string{
			"gemm_h_128x128_a8", "gemm_h_128x128", "gemm_h_64x64_a8", "gemm_h_64x64",
			"gemm_f_128x128_a8", "gemm_f_128x128", "gemm_f_64x64_a8", "gemm_f_64x64",
			"gemm_fadd_128x128_a8", "gemm_fadd_128x128", "gemm_fadd_64x64_a8", "gemm_fadd_64x64",
		}},
		{"attention", attentionPTX, []string{"attention_d16", "attention_d32", "attention_d64", "attention_d80", "attention_d128"}},
		{"layernorm", layernormPTX, []string{"layernorm_h", "layernorm_f"}},
		{"embed", embedPTX, []string{"f32_to_f16", "im2col", "vision_tokens", "text_tokens", "l2_normalize"}},
		{"resize", resizePTX, []string{"resize_coeffs", "resize_h", "resize_v_normalize"}},
	}
}
