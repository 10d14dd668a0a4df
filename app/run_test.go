package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gata-contrib/gata/dva/dvatest"
)

func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, strings.NewReader(""), &out, &errb, false)
	return code, out.String(), errb.String()
}

// TestDVAEmbedReproducesTheReference runs `gata dva embed --json` on the shared tiny model
// and compares with expected.json: text embeddings within 1e-5, PNG image embeddings within
// 1e-5 (bit-identical preprocessing), JPEG ones at cosine ≥ 0.9999, scores within 5e-3.
func TestDVAEmbedReproducesTheReference(t *testing.T) {
	dir := dvatest.ClipDir(t)
	var exp struct {
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
	b, err := os.ReadFile(filepath.Join(dir, "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &exp); err != nil {
		t.Fatal(err)
	}
	args := []string{"dva", "embed", "--data-dir", t.TempDir(), "--model", dir, "--json"}
	for _, im := range exp.Images {
		args = append(args, "--image", filepath.Join(dir, im.File))
	}
	for _, c := range exp.Captions {
		args = append(args, "--text", c.Text)
	}
	code, stdout, stderr := runCLI(t, args...)
	if code != 0 {
		t.Fatalf("gata %v exited %d: %s%s", args, code, stdout, stderr)
	}
	var got struct {
		Model struct {
			EmbedDim int    `json:"embed_dim"`
			Backend  string `json:"backend"`
		} `json:"model"`
		Images [][]float64 `json:"image_embeddings"`
		Texts  [][]float64 `json:"text_embeddings"`
		Scores [][]float64 `json:"scores"`
	}
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatalf("output is not one JSON object: %v\n%s", err, stdout)
	}
	if got.Model.EmbedDim != 16 || !strings.HasPrefix(got.Model.Backend, "cpu") {
		t.Errorf("model = %+v", got.Model)
	}
	if len(got.Images) != len(exp.Images) || len(got.Texts) != len(exp.Captions) || len(got.Scores) != len(exp.Images) {
		t.Fatalf("got %d images, %d texts, %d score rows", len(got.Images), len(got.Texts), len(got.Scores))
	}
	maxDiff := func(a, b []float64) (d float64) {
		for i := range a {
			d = math.Max(d, math.Abs(a[i]-b[i]))
		}
		return d
	}
	for j, c := range exp.Captions {
		if d := maxDiff(got.Texts[j], c.Embedding); d > 1e-5 {
			t.Errorf("text %q differs by %g", c.Text, d)
		}
	}
	for i, im := range exp.Images {
		var dot float64
		for k := range im.Embedding {
			dot += got.Images[i][k] * im.Embedding[k]
		}
		if strings.HasSuffix(im.File, ".png") {
			if d := maxDiff(got.Images[i], im.Embedding); d > 1e-5 {
				t.Errorf("%s embedding differs by %g (> 1e-5)", im.File, d)
			}
		} else if dot < 0.9999 {
			t.Errorf("%s embedding cosine %.6f < 0.9999", im.File, dot)
		}
		if d := maxDiff(got.Scores[i], exp.Cosine[i]); d > 5e-3 {
			t.Errorf("%s scores differ by %g (> 5e-3)", im.File, d)
		}
	}
}

func TestDVACommandErrors(t *testing.T) {
	dir := dvatest.ClipDir(t)
	data := t.TempDir()
	bad := filepath.Join(t.TempDir(), "bad.jpg")
	os.WriteFile(bad, []byte("not a jpeg"), 0o600)
	tests := []struct {
		name     string
		args     []string
		wantCode int
		want     string // in the one-line error (stderr), or the JSON error (stdout)
		json     bool
	}{
		{"no inputs", []string{"dva", "embed", "--model", dir}, 2, "give at least one --image or --text", false},
		{"missing image", []string{"dva", "embed", "--model", dir, "--image", "/nonexistent.jpg", "--json"}, 1, "no such file", true},
		{"corrupt image", []string{"dva", "embed", "--model", dir, "--image", bad, "--text", "x", "--json"}, 1, "bad.jpg", true},
		{"model not downloaded", []string{"dva", "score", "--data-dir", data, filepath.Join(dir, "coffee.jpg"), "coffee"}, 1, "gata models pull dfn2b-vit-b-16", false},
		{"not a model folder", []string{"dva", "embed", "--model", data, "--text", "x"}, 1, "has no open_clip_config.json", false},
		{"score args", []string{"dva", "score", "only-one"}, 2, "want IMAGE and CAPTION", false},
		{"unknown subcommand", []string{"dva", "frob"}, 2, `unknown subcommand "frob"`, false},
		{"pull unknown model", []string{"models", "pull", "--data-dir", data, "nope"}, 1, `unknown model "nope"`, false},
		{"pull without licence", []string{"models", "pull", "--data-dir", data}, 1, "--accept-license", false},
		{"verify not downloaded", []string{"models", "verify", "--data-dir", data}, 1, "not downloaded", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := tt.args
			if !slices.Contains(args, "--data-dir") {
				args = append(args[:2:2], append([]string{"--data-dir", data}, args[2:]...)...)
			}
			code, stdout, stderr := runCLI(t, args...)
			if code != tt.wantCode {
				t.Fatalf("gata %v = %d, want %d\nstdout: %s\nstderr: %s", args, code, tt.wantCode, stdout, stderr)
			}
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			last := lines[len(lines)-1]
			if !strings.HasPrefix(last, "gata: ") || !strings.Contains(last, tt.want) {
				t.Errorf("last stderr line = %q, want a one-line error containing %q", last, tt.want)
			}
			if tt.json {
				var e map[string]string
				if err := json.Unmarshal([]byte(stdout), &e); err != nil || !strings.Contains(e["error"], tt.want) {
					t.Errorf("stdout = %q, want {\"error\": …%q…}", stdout, tt.want)
				}
			}
		})
	}
}

func TestModelsListAndScore(t *testing.T) {
	dir := dvatest.ClipDir(t)
	code, stdout, stderr := runCLI(t, "models", "list", "--data-dir", t.TempDir())
	if code != 0 || !strings.Contains(stdout, "dfn2b-vit-b-16") || !strings.Contains(stdout, "not downloaded") {
		t.Errorf("models list = %d %q %q", code, stdout, stderr)
	}
	code, stdout, stderr = runCLI(t, "dva", "score", "--data-dir", t.TempDir(), "--model", dir, filepath.Join(dir, "chelsea.png"), "A photo of a CAT.")
	if code != 0 {
		t.Fatalf("dva score = %d %q", code, stderr)
	}
	var v float64
	if _, err := fmt.Sscan(strings.TrimSpace(stdout), &v); err != nil || v < -1 || v > 1 {
		t.Errorf("dva score printed %q, want one number in [-1, 1]", stdout)
	}
}
