package dva_test

import (
	"bytes"
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/gata-contrib/gata/dva"
	"github.com/gata-contrib/gata/dva/clip"
	"github.com/gata-contrib/gata/dva/cpu"
	"github.com/gata-contrib/gata/dva/internal/refdata"
	"github.com/gata-contrib/gata/dva/preprocess"
)

// TestScorePreparedMatchesScore: preparing the images apart and scoring the prepared
// pixels gives Score's numbers, for every shared test image and for batch sizes that
// split the input unevenly.
func TestScorePreparedMatchesScore(t *testing.T) {
	dir := refdata.Clip(t)
	exp := readExpected(t, dir)
	files := []string{"tiny_3x500.png", "camera_gray_224x229.png"}
	for _, im := range exp.Images {
		files = append(files, im.File)
	}
	captions := []string{"a cat", "a cup of coffee", "an astronaut", "a rocket", "a camera man", "a retina scan", "a thin strip"}
	var pairs []dva.Pair
	for i, f := range files {
		data, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		pairs = append(pairs, dva.Pair{Image: dva.Image{Name: f, Data: data}, Caption: captions[i%len(captions)]})
	}
	for _, batch := range []int{1, 3, 32} {
		e := loadEngine(t, dir, batch)
		want, err := e.Score(context.Background(), pairs)
		if err != nil {
			t.Fatalf("Score: %v", err)
		}
		var pixels [][]float32
		var caps []string
		for _, p := range pairs {
			pr, err := e.Prepare(p.Image.Data)
			if err != nil {
				t.Fatalf("Prepare(%s): %v", p.Image.Name, err)
			}
			img, _, err := preprocess.Decode(openBytes(p.Image.Data), preprocess.Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if b := img.Bounds(); pr.Width != b.Dx() || pr.Height != b.Dy() {
				t.Errorf("Prepare(%s) size = %dx%d, want %dx%d", p.Image.Name, pr.Width, pr.Height, b.Dx(), b.Dy())
			}
			pixels = append(pixels, pr.Pixels)
			caps = append(caps, p.Caption)
		}
		got, err := e.ScorePrepared(context.Background(), pixels, caps)
		if err != nil {
			t.Fatalf("ScorePrepared: %v", err)
		}
		if len(got) != len(pairs) {
			t.Fatalf("ScorePrepared returned %d scores for %d pairs", len(got), len(pairs))
		}
		for i := range pairs {
			if want[i].Err != nil {
				t.Fatalf("Score(%s): %v", pairs[i].Image.Name, want[i].Err)
			}
			if d := math.Abs(float64(got[i] - want[i].Score)); d > 1e-6 {
				t.Errorf("batch %d: ScorePrepared(%s) = %v, Score = %v (differ by %g > 1e-6)", batch, pairs[i].Image.Name, got[i], want[i].Score, d)
			}
		}
	}
}

// TestPrepareBadImages: each kind of bad file gives an error a caller can tell apart.
func TestPrepareBadImages(t *testing.T) {
	dir := refdata.Clip(t)
	m, err := clip.LoadModel(dir)
	if err != nil {
		t.Fatal(err)
	}
	e, err := dva.NewEngine(m.Config, cpu.New(m, 1), dva.EngineOptions{Limits: preprocess.Limits{MaxPixels: 200_000, MaxBytes: 1 << 20}})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	png, err := os.ReadFile(filepath.Join(dir, "chelsea.png")) // 451x300
	if err != nil {
		t.Fatal(err)
	}
	jpg, err := os.ReadFile(filepath.Join(dir, "chelsea.jpg")) // 451x300
	if err != nil {
		t.Fatal(err)
	}
	big, err := os.ReadFile(filepath.Join(dir, "coffee.jpg")) // 600x400
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name              string
		data              []byte
		tooLarge, unknown bool
	}{
		{name: "truncated png", data: png[:len(png)/3]},
		{name: "truncated jpeg", data: jpg[:200]},
		{name: "empty", data: nil},
		{name: "text", data: []byte("hello, not an image"), unknown: true},
		{name: "tiff", data: []byte("II*\x00\x08\x00\x00\x00"), unknown: true},
		{name: "over the pixel cap", data: big, tooLarge: true},
		{name: "over the byte cap", data: append(append([]byte{}, png...), make([]byte, 1<<20)...), tooLarge: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := e.Prepare(tt.data)
			if err == nil {
				t.Fatalf("Prepare(%s) = %dx%d, want an error", tt.name, p.Width, p.Height)
			}
			if got := errors.Is(err, preprocess.ErrTooLarge); got != tt.tooLarge {
				t.Errorf("Prepare(%s) = %v: errors.Is(ErrTooLarge) = %v, want %v", tt.name, err, got, tt.tooLarge)
			}
			if got := errors.Is(err, preprocess.ErrUnsupportedFormat); got != tt.unknown {
				t.Errorf("Prepare(%s) = %v: errors.Is(ErrUnsupportedFormat) = %v, want %v", tt.name, err, got, tt.unknown)
			}
		})
	}
	if p, err := e.Prepare(png); err != nil || p.Width != 451 || p.Height != 300 {
		t.Errorf("Prepare(chelsea.png) = %dx%d, %v; want 451x300", p.Width, p.Height, err)
	}
}

// TestScorePreparedChecksItsInput: mismatched lengths and wrongly sized pixels are errors.
func TestScorePreparedChecksItsInput(t *testing.T) {
	e := loadEngine(t, refdata.Clip(t), 4)
	if _, err := e.ScorePrepared(context.Background(), [][]float32{make([]float32, 3)}, []string{"a"}); err == nil {
		t.Error("ScorePrepared(3 values) succeeded, want an error")
	}
	if _, err := e.ScorePrepared(context.Background(), nil, []string{"a"}); err == nil {
		t.Error("ScorePrepared(0 images, 1 caption) succeeded, want an error")
	}
	if got, err := e.ScorePrepared(context.Background(), nil, nil); err != nil || len(got) != 0 {
		t.Errorf("ScorePrepared(nothing) = %v, %v; want no scores", got, err)
	}
}

func openBytes(b []byte) *bytes.Reader { return bytes.NewReader(b) }
