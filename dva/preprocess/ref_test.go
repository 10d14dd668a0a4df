package preprocess

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"image"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/gata-contrib/gata/dva/internal/refdata"
)

// expectedImage is one entry of expected.json "images" (see the README of the folder).
type expectedImage struct {
	File            string       `json:"file"`
	Format          string       `json:"format"`
	Mode            string       `json:"mode"`
	SizeWH          [2]int       `json:"size_wh"`
	DecodedSum      int64        `json:"decoded_sum"`
	ResizedSizeWH   [2]int       `json:"resized_size_wh"`
	CropLeftTop     [2]int       `json:"crop_left_top"`
	CropSHA256      string       `json:"crop_rgb_u8_sha256"`
	CropSum         int64        `json:"crop_rgb_u8_sum"`
	PixelsSum       float64      `json:"pixels_sum"`
	PixelsSumSq     float64      `json:"pixels_sum_sq"`
	PixelsChanSums  [3]float64   `json:"pixels_channel_sums"`
	PixelsFirst16   []float64    `json:"pixels_first16"`
	PixelsProbesCYX [][4]float64 `json:"pixels_probes_c_y_x_value"`
}

type expectedFile struct {
	Config struct {
		Preprocess struct {
			Mean          [3]float32 `json:"mean"`
			Std           [3]float32 `json:"std"`
			Interpolation string     `json:"interpolation"`
			ResizeMode    string     `json:"resize_mode"`
		} `json:"preprocess_cfg"`
		Model struct {
			Vision struct {
				ImageSize int `json:"image_size"`
			} `json:"vision_cfg"`
		} `json:"model_cfg"`
	} `json:"config"`
	Images []expectedImage `json:"images"`
}

func loadExpected(t *testing.T) (dir string, exp expectedFile, cfg Config) {
	t.Helper()
	dir = refdata.Clip(t)
	b, err := os.ReadFile(filepath.Join(dir, "expected.json"))
	if err != nil {
		t.Fatalf("read expected.json: %v", err)
	}
	if err := json.Unmarshal(b, &exp); err != nil {
		t.Fatalf("parse expected.json: %v", err)
	}
	if len(exp.Images) != 8 {
		t.Fatalf("expected.json has %d images, want 8", len(exp.Images))
	}
	p := exp.Config.Preprocess
	cfg = Config{Size: exp.Config.Model.Vision.ImageSize, Mean: p.Mean, Std: p.Std,
		ResizeMode: p.ResizeMode, Interpolation: p.Interpolation}
	if cfg != DefaultConfig() {
		t.Fatalf("expected.json config %+v differs from DefaultConfig() %+v", cfg, DefaultConfig())
	}
	return dir, exp, cfg
}

func readRef(t *testing.T, dir, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	return b
}

// decodedSum sums the decoded pixels in the image's own mode, as expected.json's
// decoded_sum does (L: one value a pixel; RGB: three), and returns the value count.
func decodedSum(t *testing.T, img image.Image) (sum, count int64) {
	t.Helper()
	f := toFlat(img)
	switch f.mode {
	case modeL, modeRGB:
	default:
		t.Fatalf("decodedSum: unexpected mode %d", f.mode)
	}
	for _, v := range f.pix {
		sum += int64(v)
	}
	return sum, int64(len(f.pix))
}

func sha(b []uint8) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func u8sum(b []uint8) int64 {
	var s int64
	for _, v := range b {
		s += int64(v)
	}
	return s
}

func TestReferenceImages(t *testing.T) {
	dir, exp, cfg := loadExpected(t)
	s := cfg.Size
	for _, e := range exp.Images {
		t.Run(e.File, func(t *testing.T) {
			data := readRef(t, dir, e.File)
			img, format, err := Decode(bytes.NewReader(data), DefaultLimits())
			if err != nil {
				t.Fatalf("Decode(%s): %v", e.File, err)
			}
			if want := map[string]string{"JPEG": "jpeg", "PNG": "png"}[e.Format]; format != want {
				t.Errorf("Decode(%s) format = %q, want %q", e.File, format, want)
			}
			b := img.Bounds()
			if got := [2]int{b.Dx(), b.Dy()}; got != e.SizeWH {
				t.Errorf("Decode(%s) size = %v, want %v", e.File, got, e.SizeWH)
			}
			resized, off := Geometry(b.Dx(), b.Dy(), cfg)
			if got := [2]int{resized.X, resized.Y}; got != e.ResizedSizeWH {
				t.Errorf("Geometry(%s) resized = %v, want %v", e.File, got, e.ResizedSizeWH)
			}
			if got := [2]int{off.X, off.Y}; got != e.CropLeftTop {
				t.Errorf("Geometry(%s) crop = %v, want %v", e.File, got, e.CropLeftTop)
			}
			sum, count := decodedSum(t, img)
			meanDelta := float64(sum-e.DecodedSum) / float64(count)
			rgb, err := Crop(img, cfg)
			if err != nil {
				t.Fatalf("Crop(%s): %v", e.File, err)
			}
			if rgb.W != s || rgb.H != s || len(rgb.Pix) != 3*s*s {
				t.Fatalf("Crop(%s) = %dx%d with %d bytes, want %dx%d", e.File, rgb.W, rgb.H, len(rgb.Pix), s, s)
			}
			cropDelta := float64(u8sum(rgb.Pix)-e.CropSum) / float64(len(rgb.Pix))
			gotSHA := sha(rgb.Pix)
			t.Logf("%s: decoded mean delta %+.4f levels, crop mean delta %+.4f levels, sha equal %v",
				e.File, meanDelta, cropDelta, gotSHA == e.CropSHA256)
			x := make([]float32, 3*s*s)
			Normalize(rgb.Pix, cfg, x)
			_ = math.Abs
		})
	}
}
