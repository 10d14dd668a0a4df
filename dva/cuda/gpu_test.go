package cuda

import (
	"bytes"
	"context"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/gata-contrib/gata/dva"
	"github.com/gata-contrib/gata/dva/dvatest"
	"github.com/gata-contrib/gata/dva/preprocess"
)

// The tests in this file need an NVIDIA GPU of compute capability 8.0 or newer and its
// driver. Without one they skip, saying "no NVIDIA GPU"; with GATA_REQUIRE_GPU=1 (as
// gpucheck.sh sets on the GPU machine) they fail instead, so that a broken setup there
// does not pass silently.

// gpuDevice opens CUDA device 0 for the test.
func gpuDevice(t testing.TB) *cudaDevice {
	t.Helper()
	d := openOrSkip(t)
	t.Cleanup(func() {
		if err := d.close(); err != nil {
			t.Errorf("close the device: %v", err)
		}
	})
	free, total, _ := d.memInfo()
	t.Logf("GPU: %s, compute %d.%d, %d multiprocessors, %d MB (%d MB free), %d KB shared memory per block",
		d.name, d.major, d.minor, d.multiprocessors, total>>20, free>>20, d.sharedOptin>>10)
	return d
}

// haveGPU skips the test like gpuDevice, leaving the device free for a runner child.
func haveGPU(t testing.TB) {
	t.Helper()
	openOrSkip(t).close()
}

// openOrSkip opens device 0, or skips the test without a usable GPU (fails it with
// GATA_REQUIRE_GPU=1).
func openOrSkip(t testing.TB) *cudaDevice {
	t.Helper()
	d, err := openDevice(0)
	if err != nil {
		if os.Getenv("GATA_REQUIRE_GPU") == "1" {
			t.Fatalf("GATA_REQUIRE_GPU=1 but the GPU cannot be used: %v", err)
		}
		t.Skipf("no NVIDIA GPU: %v", err)
	}
	return d
}

// TestGPUKernels runs the per-kernel tests (kernels_test.go) on the GPU: every kernel
// against dva/tensor on odd shapes, both GEMM tile sizes.
func TestGPUKernels(t *testing.T) {
	d := gpuDevice(t)
	runKernelTests(t, d)
	small := &smsOverride{cudaDevice: d, n: 1 << 20} // every GEMM on the 64x64 tile
	t.Run("tile64", func(t *testing.T) { testGEMM(t, small) })
}

// smsOverride changes what the device reports as its multiprocessor count.
type smsOverride struct {
	*cudaDevice
	n int
}

func (s *smsOverride) sms() int { return s.n }

// TestGPUConformance runs the conformance suite on the GPU in this process.
func TestGPUConformance(t *testing.T) {
	d := gpuDevice(t)
	dvatest.Run(t, func(t *testing.T, dir string) dva.Backend {
		e, err := newEngine(d, dir, d.name)
		if err != nil {
			t.Fatalf("newEngine(%s): %v", dir, err)
		}
		return e
	}, 5e-3)
}

// TestGPURunnerConformance runs the conformance suite through a GPU runner child process
// (this test binary in runner mode), pinned frames and all.
func TestGPURunnerConformance(t *testing.T) {
	haveGPU(t)
	dvatest.Run(t, func(t *testing.T, dir string) dva.Backend {
		b, err := StartRunner(context.Background(), dir, runnerOptions(t, "gpu"))
		if err != nil {
			t.Fatalf("StartRunner: %v", err)
		}
		t.Logf("runner: %s", b.Name())
		return b
	}, 5e-3)
}

// TestGPUFullModel compares the GPU with the CPU backend on a full-size model: the
// folder in $GATA_FULL_MODEL (clip_ref.py --write-full writes ViT-B/16 with random
// weights), PNG and JPEG test images and captions, embeddings and the score matrix within
// 5e-3.
func TestGPUFullModel(t *testing.T) {
	dir := os.Getenv("GATA_FULL_MODEL")
	if dir == "" {
		t.Skip("set GATA_FULL_MODEL to a model folder (clip_ref.py --write-full DIR) to compare a full-size model")
	}
	d := gpuDevice(t)
	g, err := newEngine(d, dir, d.name)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	c, err := openCPU(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	ref := dvatest.ClipDir(t)
	cfg := preprocess.DefaultConfig()
	cfg.Size = g.cfg.Vision.ImageSize
	var pix []float32
	var names []string
	for _, f := range []string{"chelsea.png", "coffee.jpg", "astronaut.jpg", "camera_gray_224x229.png", "rocket.jpg"} {
		data, err := os.ReadFile(filepath.Join(ref, f))
		if err != nil {
			t.Fatal(err)
		}
		p, err := preprocess.Image(bytes.NewReader(data), cfg, preprocess.DefaultLimits())
		if err != nil {
			t.Fatal(err)
		}
		pix, names = append(pix, p...), append(names, f)
	}
	n := len(names)
	texts := [][]int32{}
	for i := range 4 {
		row := make([]int32, g.cfg.Text.ContextLength)
		row[0] = 49406
		for j := 1; j <= 5+9*i; j++ { // 7 to 34 tokens
			row[j] = int32(400 + 31*i + 7*j)
		}
		row[6+9*i] = 49407
		texts = append(texts, row)
	}
	E := g.EmbedDim()
	gi, err := g.EncodeImages(ctx, pix, n)
	if err != nil {
		t.Fatal(err)
	}
	ci, err := c.EncodeImages(ctx, pix, n)
	if err != nil {
		t.Fatal(err)
	}
	gt, err := g.EncodeTexts(ctx, texts)
	if err != nil {
		t.Fatal(err)
	}
	ct, err := c.EncodeTexts(ctx, texts)
	if err != nil {
		t.Fatal(err)
	}
	compareNormalized(t, "image embeddings", gi, ci, E, 5e-3)
	compareNormalized(t, "text embeddings", gt, ct, E, 5e-3)
	worst := 0.0
	for i := range n {
		for j := range texts {
			gs := dot64(dva.Normalize(gi[i*E:(i+1)*E]), dva.Normalize(gt[j*E:(j+1)*E]))
			cs := dot64(dva.Normalize(ci[i*E:(i+1)*E]), dva.Normalize(ct[j*E:(j+1)*E]))
			worst = math.Max(worst, math.Abs(gs-cs))
			if math.Abs(gs-cs) > 5e-3 {
				t.Errorf("score(%s, text %d) = %.5f on the GPU, %.5f on the CPU", names[i], j, gs, cs)
			}
		}
	}
	t.Logf("largest score difference GPU vs CPU: %.2g", worst)
}

func dot64(a, b []float32) float64 {
	var s float64
	for i := range a {
		s += float64(a[i]) * float64(b[i])
	}
	return s
}

// TestGPUSmemFits checks that every attention variant fits the card's shared memory.
func TestGPUSmemFits(t *testing.T) {
	d := gpuDevice(t)
	for _, dp := range []int{16, 32, 64, 80, 128} {
		if s := attentionSmem(dp); s > d.sharedOptin {
			t.Errorf("attention_d%d needs %d bytes of shared memory, %s has %d", dp, s, d.name, d.sharedOptin)
		}
	}
}

// TestGPUOpen is the app's path on a GPU machine: NVML picks the card, the runner child
// gets it through CUDA_VISIBLE_DEVICES, and the model runs there.
func TestGPUOpen(t *testing.T) {
	haveGPU(t)
	t.Setenv("GATA_GPU", "")
	gpus, err := probeGPUs()
	if err != nil {
		t.Fatalf("NVML: %v", err)
	}
	for _, g := range gpus {
		t.Logf("NVML: GPU %d %s (%s), compute %d.%d, %d of %d MB free", g.Index, g.Name, g.UUID, g.Major, g.Minor, g.Free>>20, g.Total>>20)
	}
	b, err := Open(context.Background(), dvatest.ClipDir(t), runnerOptions(t, "gpu"))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if on, why := b.OnGPU(); !on {
		t.Fatalf("Open fell back to the CPU: %s", why)
	}
	t.Logf("Name() = %q", b.Name())
	ids := [][]int32{append([]int32{49406, 320, 1929, 49407}, make([]int32, 73)...)}
	if _, err := b.EncodeTexts(context.Background(), ids); err != nil {
		t.Fatal(err)
	}
}
