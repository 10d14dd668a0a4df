// Package preprocess turns image file bytes into the normalised [3, S, S] float32 tensor
// (CHW order) that an OpenCLIP / DFN CLIP image tower takes, reproducing open_clip's eval
// transform on PIL bit for bit where the decoder allows it: decode in the file's own mode,
// resize with a port of PIL's fixed-point separable resampler (shortest side to S, or
// both sides for "squash"), centre crop with half-to-even offsets, convert("RGB") and
// normalise with float32 arithmetic.
//
// PNG, GIF, BMP and WebP inputs give PIL's crop byte for byte. JPEG and lossy WebP colours
// are converted as libjpeg and libwebp do it (triangle chroma upsampling, their rounding);
// for JPEG only the IDCT still differs from libjpeg-turbo's, which leaves crops within a
// few levels of PIL's (mean under 0.06 levels on the test images).
//
// The steps are exported separately (Decode, Crop, Normalize) for tests and for callers
// that show the cropped image; Image does all of them. Every function is safe for
// concurrent use.
package preprocess

import (
	"errors"
	"fmt"
	"io"
)

// Resize modes of Config.ResizeMode (open_clip's preprocess_cfg "resize_mode").
const (
	// ResizeShortest resizes the shorter side to Size, keeping the aspect ratio, and
	// centre crops Size x Size.
	ResizeShortest = "shortest"
	// ResizeSquash resizes both sides to Size; nothing is cropped.
	ResizeSquash = "squash"
)

// Interpolations of Config.Interpolation.
const (
	Bicubic  = "bicubic"
	Bilinear = "bilinear"
)

// Config describes the preprocessing of one model (open_clip's preprocess_cfg plus the
// image size of the vision tower).
type Config struct {
	Size          int        // side of the square output, 224 for ViT-B-16
	Mean, Std     [3]float32 // per-channel normalisation, applied after dividing by 255
	ResizeMode    string     // ResizeShortest (default when empty) or ResizeSquash
	Interpolation string     // Bicubic (default when empty) or Bilinear
}

// OpenAI mean and standard deviation, used by the DFN and OpenAI CLIP models.
var (
	OpenAIMean = [3]float32{0.48145466, 0.4578275, 0.40821073}
	OpenAIStd  = [3]float32{0.26862954, 0.26130258, 0.27577711}
)

// DefaultConfig is the preprocessing of DFN2B-CLIP-ViT-B-16: 224 px, OpenAI mean/std,
// shortest side resize with bicubic interpolation and a centre crop.
func DefaultConfig() Config {
	return Config{Size: 224, Mean: OpenAIMean, Std: OpenAIStd, ResizeMode: ResizeShortest, Interpolation: Bicubic}
}

// Validate reports whether the configuration can be used.
func (c Config) Validate() error {
	if c.Size <= 0 || c.Size > 1<<14 {
		return fmt.Errorf("preprocess config: image size %d out of range", c.Size)
	}
	switch c.ResizeMode {
	case "", ResizeShortest, ResizeSquash:
	default:
		return fmt.Errorf("preprocess config: unsupported resize mode %q", c.ResizeMode)
	}
	switch c.Interpolation {
	case "", Bicubic, Bilinear:
	default:
		return fmt.Errorf("preprocess config: unsupported interpolation %q", c.Interpolation)
	}
	for i, s := range c.Std {
		if !(s > 0) {
			return fmt.Errorf("preprocess config: std[%d] = %v must be positive", i, s)
		}
	}
	return nil
}

// Limits caps what one image may cost before it is decoded.
type Limits struct {
	MaxPixels int64 // width*height from the file header; larger images are rejected before decoding
	MaxBytes  int64 // size of the encoded file
}

// DefaultMaxPixels is PIL's Image.MAX_IMAGE_PIXELS (about 89.5 megapixels), above which
// PIL warns of a decompression bomb.
const DefaultMaxPixels = 1024 * 1024 * 1024 / 4 / 3

// DefaultLimits returns PIL's decompression-bomb pixel limit and a 64 MiB file size cap.
func DefaultLimits() Limits {
	return Limits{MaxPixels: DefaultMaxPixels, MaxBytes: 64 << 20}
}

// Sentinel errors that callers may branch on with errors.Is.
var (
	// ErrTooLarge: the file or its pixel count is over the Limits.
	ErrTooLarge = errors.New("image too large")
	// ErrUnsupportedFormat: the bytes are not one of the supported formats.
	ErrUnsupportedFormat = errors.New("unsupported image format")
)

// Image decodes one image file and returns its normalised [3, Size, Size] tensor in CHW
// order: Decode, then Crop, then Normalize.
func Image(r io.Reader, cfg Config, lim Limits) ([]float32, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	dst := make([]float32, 3*cfg.Size*cfg.Size)
	if err := ImageInto(r, cfg, lim, dst); err != nil {
		return nil, err
	}
	return dst, nil
}

// ImageInto is Image writing into dst, which must hold 3*Size*Size values (for example
// one image's slot of a batch tensor). dst is left alone when an error is returned.
func ImageInto(r io.Reader, cfg Config, lim Limits, dst []float32) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if n := 3 * cfg.Size * cfg.Size; len(dst) < n {
		return fmt.Errorf("preprocess image: destination holds %d values, need %d", len(dst), n)
	}
	img, _, err := Decode(r, lim)
	if err != nil {
		return err
	}
	rgb, err := Crop(img, cfg)
	if err != nil {
		return err
	}
	Normalize(rgb.Pix, cfg, dst)
	return nil
}
