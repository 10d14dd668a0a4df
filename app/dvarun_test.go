package app

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gata-contrib/gata/dva/dvatest"
)

// captionedPhotos writes n copies of small shared photos with .txt captions into a new
// folder, and one file that is no image.
func captionedPhotos(t *testing.T, n int) string {
	t.Helper()
	clip := dvatest.ClipDir(t)
	dir := filepath.Join(t.TempDir(), "photos")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	photos := []struct{ file, caption string }{
		{"chelsea.jpg", "a tabby cat looking up"},
		{"camera_gray_224x229.png", "a man with a camera on a tripod"},
	}
	for i := range n {
		p := photos[i%len(photos)]
		data, err := os.ReadFile(filepath.Join(clip, p.file))
		if err != nil {
			t.Fatal(err)
		}
		base := filepath.Join(dir, fmt.Sprintf("%05d", i))
		if err := os.WriteFile(base+filepath.Ext(p.file), data, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(base+".txt", fmt.Appendf(nil, "%s, photo %d\n", p.caption, i), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(dir, "zz-not-an-image.png"), []byte("plain text"), 0o644)
	os.WriteFile(filepath.Join(dir, "zz-not-an-image.txt"), []byte("a caption"), 0o644)
	return dir
}

func TestDVARunCommand(t *testing.T) {
	model := dvatest.ClipDir(t)
	src := captionedPhotos(t, 12)
	data := t.TempDir()
	out := filepath.Join(t.TempDir(), "out")
	code, stdout, stderr := runCLI(t, "dva", "run", src, "--data-dir", data, "--model", model, "--out", out, "--keep-top", "0.5")
	if code != 0 {
		t.Fatalf("gata dva run exited %d: %s%s", code, stdout, stderr)
	}
	for _, want := range []string{"run 1: 13 items, 12 scored, 1 not scored (unsupported 1)", "(top 50%): kept 7 of 12 scored", "outputs in " + out + ": "} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout = %q, want it to contain %q", stdout, want)
		}
	}
	if !strings.Contains(stderr, "run 1 started") || !strings.Contains(stderr, "13/13 items") {
		t.Errorf("stderr = %q, want the start and a final progress line", stderr)
	}
	for _, f := range []string{"scores.parquet", "uids.npy", "summary.json", "shards/00000.tar"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("output %s: %v", f, err)
		}
	}

	// Resume by id with --json, exporting again with a min score instead.
	code, stdout, stderr = runCLI(t, "dva", "run", "--data-dir", data, "--resume", "1", "--min-score", "-1", "--json")
	if code != 0 {
		t.Fatalf("gata dva run --resume 1 exited %d: %s%s", code, stdout, stderr)
	}
	var res struct {
		Run struct {
			ID     int64            `json:"id"`
			Scored int64            `json:"scored"`
			Failed map[string]int64 `json:"failed"`
		} `json:"run"`
		Stats struct {
			Skipped int64 `json:"skipped"`
			Scored  int64 `json:"scored"`
		} `json:"stats"`
		Summary struct {
			Kept int64 `json:"kept"`
		} `json:"summary"`
	}
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("--json output is not one object: %v\n%s", err, stdout)
	}
	if res.Run.ID != 1 || res.Run.Scored != 12 || res.Stats.Skipped != 13 || res.Stats.Scored != 0 || res.Summary.Kept != 12 {
		t.Errorf("resumed result = %+v", res)
	}

	// Failures are one line, exit 1 (a run that does not exist) or 2 (usage).
	code, _, stderr = runCLI(t, "dva", "run", "--data-dir", data, "--resume", "99")
	if code != 1 || !strings.Contains(stderr, "no such run") || strings.Count(stderr, "\n") != 1 {
		t.Errorf("--resume 99: exit %d, stderr %q", code, stderr)
	}
	code, _, stderr = runCLI(t, "dva", "run", filepath.Join(src, "missing"), "--data-dir", data, "--model", model, "--out", out)
	if code != 2 || !strings.Contains(stderr, "no such file or folder") {
		t.Errorf("missing source: exit %d, stderr %q", code, stderr)
	}
	code, _, stderr = runCLI(t, "dva", "run", src, "--data-dir", data, "--resume")
	if code != 1 || !strings.Contains(stderr, "no unfinished run") {
		t.Errorf("--resume with every run done: exit %d, stderr %q", code, stderr)
	}
}
