package dva_test

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gata-contrib/gata/dva"
	"github.com/gata-contrib/gata/dva/clip"
	"github.com/gata-contrib/gata/dva/cpu"
	"github.com/gata-contrib/gata/dva/internal/refdata"
	"github.com/gata-contrib/gata/dva/preprocess"
)

type expected struct {
	Images []struct {
		File      string    `json:"file"`
		Embedding []float64 `json:"embedding"`
	} `json:"images"`
	Captions []struct {
		Text      string    `json:"text"`
		Embedding []float64 `json:"embedding"`
	} `json:"captions"`
	Cosine [][]float64 `json:"cosine_image_x_caption"`
}

func loadEngine(t *testing.T, dir string, batch int) *dva.Engine {
	t.Helper()
	m, err := clip.LoadModel(dir)
	if err != nil {
		t.Fatal(err)
	}
	e, err := dva.NewEngine(m.Config, cpu.New(m, 0), dva.EngineOptions{BatchSize: batch, ModelDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func readExpected(t *testing.T, dir string) expected {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	var exp expected
	if err := json.Unmarshal(b, &exp); err != nil {
		t.Fatal(err)
	}
	return exp
}

func cosine(a []float32, b []float64) float64 {
	var s, na, nb float64
	for i := range a {
		s += float64(a[i]) * b[i]
		na += float64(a[i]) * float64(a[i])
		nb += b[i] * b[i]
	}
	return s / math.Sqrt(na*nb)
}

// TestEmbedEndToEnd runs decode, preprocessing, tokenizer and model on the reference files:
// the image embedding cosine ≥ 0.9999 and the score matrix within 5e-3 (testdata README,
// step 5); texts and PNG inputs, which have no decoder differences, much tighter.
func TestEmbedEndToEnd(t *testing.T) {
	dir := refdata.Clip(t)
	exp := readExpected(t, dir)
	var imgs []dva.Image
	for _, im := range exp.Images {
		data, err := os.ReadFile(filepath.Join(dir, im.File))
		if err != nil {
			t.Fatal(err)
		}
		imgs = append(imgs, dva.Image{Name: im.File, Data: data})
	}
	var texts []string
	for _, c := range exp.Captions {
		texts = append(texts, c.Text)
	}
	for _, batch := range []int{3, 32} {
		e := loadEngine(t, dir, batch)
		got, err := e.Embed(context.Background(), imgs, texts)
		if err != nil {
			t.Fatalf("Embed: %v", err)
		}
		if len(got.ImageErrors) != 0 {
			t.Fatalf("image errors: %v", got.ImageErrors)
		}
		for j, c := range exp.Captions {
			for k := range c.Embedding {
				if d := math.Abs(float64(got.Texts[j][k]) - c.Embedding[k]); d > 1e-5 {
					t.Fatalf("batch %d: text %q component %d differs by %g (> 1e-5)", batch, c.Text, k, d)
				}
			}
		}
		worst, worstScore := 1.0, 0.0
		for i, im := range exp.Images {
			cs := cosine(got.Images[i], im.Embedding)
			worst = math.Min(worst, cs)
			want := 0.9999
			if strings.HasSuffix(im.File, ".png") {
				want = 0.9999999 // PNG: bit-identical crops, only float noise
			}
			if cs < want {
				t.Errorf("batch %d: %s embedding cosine %.7f < %v", batch, im.File, cs, want)
			}
			for j := range exp.Captions {
				d := math.Abs(float64(got.Scores[i][j]) - exp.Cosine[i][j])
				worstScore = math.Max(worstScore, d)
				if d > 5e-3 {
					t.Errorf("batch %d: score[%s][%d] = %v, want %v ± 5e-3", batch, im.File, j, got.Scores[i][j], exp.Cosine[i][j])
				}
			}
		}
		t.Logf("batch %d: worst image cosine %.7f, worst score delta %.2g", batch, worst, worstScore)
		if info := e.Info(); info.EmbedDim != 16 || !info.QuickGELU || info.ImageSize != 224 || !strings.HasPrefix(info.Backend, "cpu") {
			t.Errorf("Info() = %+v", info)
		}
	}
}

func TestBadImageFailsAlone(t *testing.T) {
	dir := refdata.Clip(t)
	e := loadEngine(t, dir, 2)
	good, err := os.ReadFile(filepath.Join(dir, "chelsea.png"))
	if err != nil {
		t.Fatal(err)
	}
	pairs := []dva.Pair{
		{Image: dva.Image{Name: "truncated.png", Data: good[:len(good)/3]}, Caption: "a cat"},
		{Image: dva.Image{Name: "chelsea.png", Data: good}, Caption: "a cat"},
		{Image: dva.Image{Name: "text.txt", Data: []byte("hello, not an image")}, Caption: "a cat"},
		{Image: dva.Image{Name: "chelsea again", Data: good}, Caption: "a dog"},
	}
	got, err := e.Score(context.Background(), pairs)
	if err != nil {
		t.Fatalf("Score: %v", err)
	}
	for _, i := range []int{0, 2} {
		var ie *dva.ItemError
		if !errors.As(got[i].Err, &ie) || ie.Index != i || !strings.HasPrefix(ie.Error(), pairs[i].Image.Name+": ") {
			t.Errorf("pair %d error = %v, want an ItemError naming %s", i, got[i].Err, pairs[i].Image.Name)
		}
	}
	for _, i := range []int{1, 3} {
		if got[i].Err != nil || got[i].Score == 0 || math.Abs(float64(got[i].Score)) > 1 {
			t.Errorf("pair %d = %+v, want a score in [-1, 1]", i, got[i])
		}
	}
	if got[1].Score == got[3].Score {
		t.Errorf("different captions gave the same score %v", got[1].Score)
	}
}

func TestEmbedHonoursCancel(t *testing.T) {
	dir := refdata.Clip(t)
	e := loadEngine(t, dir, 1)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	data, _ := os.ReadFile(filepath.Join(dir, "chelsea.png"))
	if _, err := e.Embed(ctx, []dva.Image{{Name: "a", Data: data}}, []string{"x"}); !errors.Is(err, context.Canceled) {
		t.Errorf("Embed(cancelled) = %v, want context.Canceled", err)
	}
}

func TestImageLimitsApply(t *testing.T) {
	dir := refdata.Clip(t)
	m, err := clip.LoadModel(dir)
	if err != nil {
		t.Fatal(err)
	}
	e, err := dva.NewEngine(m.Config, cpu.New(m, 1), dva.EngineOptions{Limits: preprocess.Limits{MaxPixels: 1000, MaxBytes: 1 << 20}})
	if err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(filepath.Join(dir, "chelsea.png"))
	_, errs, err := e.EmbedImages(context.Background(), []dva.Image{{Name: "big", Data: data}})
	if err != nil || len(errs) != 1 || !errors.Is(errs[0], preprocess.ErrTooLarge) {
		t.Errorf("EmbedImages(over the pixel cap) = %v, %v; want ErrTooLarge for the item", errs, err)
	}
}
