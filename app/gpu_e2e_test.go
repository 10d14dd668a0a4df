//go:build e2e

package app

import (
	"context"
	"encoding/json"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gata-contrib/gata/dva/cuda"
	"github.com/gata-contrib/gata/dva/dvatest"
)

// TestGPUBackendChoice runs the real binary: `gata dva embed` names the backend it used
// (a CUDA device where the GPU is usable, else the CPU and why not), and the hidden
// `gata gpu-runner` answers the runner protocol, which is not in the help.
func TestGPUBackendChoice(t *testing.T) {
	bin := binary(t)
	dir := dvatest.ClipDir(t)
	out, err := exec.Command(bin, "dva", "embed", "--data-dir", t.TempDir(), "--model", dir,
		"--image", filepath.Join(dir, "coffee.jpg"), "--text", "a cup of coffee", "--json").Output()
	if err != nil {
		t.Fatalf("gata dva embed: %v", err)
	}
	var res struct {
		Model struct {
			Backend string `json:"backend"`
		} `json:"model"`
		Scores [][]float32 `json:"scores"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("parse %s: %v", out, err)
	}
	backend := res.Model.Backend
	t.Logf("backend: %s", backend)

	b, err := cuda.StartRunner(context.Background(), dir, cuda.Options{Command: []string{bin, "gpu-runner"}})
	if err == nil {
		defer b.Close()
		if !strings.HasPrefix(backend, "cuda:") {
			t.Errorf("the runner opens the model on %q, but gata dva embed scored on %q", b.Name(), backend)
		}
	} else {
		var re *cuda.RunnerError
		if !errors.As(err, &re) || !strings.Contains(err.Error(), "no NVIDIA driver") && !strings.Contains(err.Error(), "compute capability") {
			t.Errorf("StartRunner(gata gpu-runner) = %v, want the runner's own report of why there is no GPU", err)
		}
		if !strings.HasPrefix(backend, "cpu (") || !strings.Contains(backend, "GPU not used: ") {
			t.Errorf("backend %q, want the CPU and the reason the GPU is not used", backend)
		}
	}

	help, err := exec.Command(bin, "help").Output()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(help), "gpu-runner") {
		t.Error("gata help lists the hidden gpu-runner command")
	}
}
