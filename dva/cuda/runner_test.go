package cuda

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gata-contrib/gata/dva"
	"github.com/gata-contrib/gata/dva/dvatest"
)

// The runner tests start this test binary as the runner child (TestMain serves the
// protocol when $GATA_TEST_RUNNER names a mode), with the CPU backend or the emulated GPU
// inside: a real child process, real pipes, real kills.

func TestMain(m *testing.M) {
	if mode := os.Getenv("GATA_TEST_RUNNER"); mode != "" {
		os.Exit(testRunner(mode))
	}
	os.Exit(m.Run())
}

// testRunnerModes are more runner modes, from files with build constraints ("emu").
var testRunnerModes = map[string]openBackend{}

func testRunner(mode string) int {
	var open openBackend
	switch mode {
	case "exit": // dies before reading anything
		fmt.Fprintln(os.Stderr, "test runner: exiting at once")
		return 3
	case "cpu":
		open = func(dir string) (dva.Backend, error) {
			b, err := openCPU(dir)
			if err != nil {
				return nil, err
			}
			return &testBackend{Backend: b, stall: os.Getenv("GATA_TEST_RUNNER_STALL"), sticky: os.Getenv("GATA_TEST_RUNNER_STICKY"),
				die: os.Getenv("GATA_TEST_RUNNER_DIE") != ""}, nil
		}
	case "gpu":
		open = openGPU
	case "fail":
		open = func(dir string) (dva.Backend, error) { return nil, errors.New("no GPU in this test runner") }
	default:
		if open = testRunnerModes[mode]; open == nil {
			fmt.Fprintf(os.Stderr, "unknown test runner mode %q\n", mode)
			return 2
		}
	}
	if err := serveRunner(context.Background(), os.Stdin, os.Stdout, open); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// testBackend is the CPU backend with faults for the tests: with stall set, the first
// image request (the one that finds no file at that path) creates the file and waits
// until its context ends; with sticky set, the first image request fails with a sticky
// CUDA error; with die set, every request kills the process.
type testBackend struct {
	dva.Backend
	stall, sticky string
	die           bool
}

func (b *testBackend) EncodeImages(ctx context.Context, pixels []float32, n int) ([]float32, error) {
	if b.die {
		os.Exit(7)
	}
	if b.sticky != "" {
		if _, err := os.Stat(b.sticky); errors.Is(err, os.ErrNotExist) {
			os.WriteFile(b.sticky, nil, 0o644)
			return nil, &Error{Call: "cuStreamSynchronize", Code: 700, Name: "CUDA_ERROR_ILLEGAL_ADDRESS", Msg: "an illegal memory access was encountered"}
		}
	}
	if b.stall != "" {
		if _, err := os.Stat(b.stall); errors.Is(err, os.ErrNotExist) {
			if err := os.WriteFile(b.stall, []byte(fmt.Sprint(os.Getpid())), 0o644); err != nil {
				return nil, err
			}
			<-ctx.Done()
			return nil, ctx.Err()
		}
	}
	return b.Backend.EncodeImages(ctx, pixels, n)
}

func runnerOptions(t *testing.T, mode string, env ...string) Options {
	return Options{
		Command:      []string{os.Args[0]},
		Env:          append([]string{"GATA_TEST_RUNNER=" + mode}, env...),
		StartTimeout: time.Minute,
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

// TestRunnerConformance runs the conformance suite through the runner protocol with the
// CPU backend in the child. Pixels travel in half precision, hence the tolerance.
func TestRunnerConformance(t *testing.T) {
	dvatest.Run(t, func(t *testing.T, dir string) dva.Backend {
		b, err := StartRunner(context.Background(), dir, runnerOptions(t, "cpu"))
		if err != nil {
			t.Fatalf("StartRunner: %v", err)
		}
		if on, why := b.OnGPU(); !on || !strings.Contains(b.Name(), "GPU runner") {
			t.Errorf("Name() = %q, OnGPU() = %v, %q; want the runner", b.Name(), on, why)
		}
		return b
	}, 5e-3)
}

// testInputs returns images and token rows of the reference model, and what the CPU
// backend in this process makes of them (with the pixels rounded to half, as they
// travel to the runner).
func testInputs(t *testing.T) (dir string, pix []float32, n int, ids [][]int32, wantImg, wantTxt []float32) {
	t.Helper()
	dir = dvatest.ClipDir(t)
	c, err := openCPU(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	n = 5
	S := 224
	pix = roundHalf(randn(newRand(7), n*3*S*S, 1))
	ids = make([][]int32, 3)
	for i := range ids {
		ids[i] = make([]int32, 77)
		ids[i][0] = 49406
		for j := 1; j < 4+3*i; j++ {
			ids[i][j] = int32(300 + 17*i + j)
		}
		ids[i][4+3*i] = 49407
	}
	if wantImg, err = c.EncodeImages(context.Background(), pix, n); err != nil {
		t.Fatal(err)
	}
	if wantTxt, err = c.EncodeTexts(context.Background(), ids); err != nil {
		t.Fatal(err)
	}
	return dir, pix, n, ids, wantImg, wantTxt
}

// TestRunnerSplitsLargeRequests: a batch above the per-frame limits goes as several
// frames and comes back whole and in order.
func TestRunnerSplitsLargeRequests(t *testing.T) {
	dir, pix, n, ids, wantImg, wantTxt := testInputs(t)
	oldI, oldT := maxImagesPerRequest, maxTextsPerRequest
	maxImagesPerRequest, maxTextsPerRequest = 2, 2
	defer func() { maxImagesPerRequest, maxTextsPerRequest = oldI, oldT }()
	b, err := StartRunner(context.Background(), dir, runnerOptions(t, "cpu"))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	got, err := b.EncodeImages(context.Background(), pix, n)
	if err != nil {
		t.Fatal(err)
	}
	compare(t, "EncodeImages in frames of 2", got, wantImg, 0, 0)
	txt, err := b.EncodeTexts(context.Background(), ids)
	if err != nil {
		t.Fatal(err)
	}
	compare(t, "EncodeTexts in frames of 2", txt, wantTxt, 0, 0)
}

func TestRunnerKilledMidBatchRestarts(t *testing.T) {
	dir, pix, n, ids, wantImg, wantTxt := testInputs(t)
	for _, tt := range []struct {
		name    string
		fault   string        // the test backend's variable
		timeout time.Duration // of a call: a stalled runner is killed as hung
		kill    bool          // the test kills the stalled runner
	}{
		{name: "killed", fault: "GATA_TEST_RUNNER_STALL", timeout: time.Minute, kill: true},
		{name: "hung", fault: "GATA_TEST_RUNNER_STALL", timeout: 2 * time.Second},
		{name: "sticky_cuda_error", fault: "GATA_TEST_RUNNER_STICKY", timeout: time.Minute},
	} {
		t.Run(tt.name, func(t *testing.T) {
			marker := filepath.Join(t.TempDir(), "fault")
			opts := runnerOptions(t, "cpu", tt.fault+"="+marker)
			opts.CallTimeout = tt.timeout
			b, err := StartRunner(context.Background(), dir, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			first := b.proc.cmd.Process.Pid
			if tt.kill {
				go func() {
					for {
						if _, err := os.Stat(marker); err == nil {
							b.proc.cmd.Process.Kill()
							return
						}
						time.Sleep(10 * time.Millisecond)
					}
				}()
			}
			got, err := b.EncodeImages(context.Background(), pix, n)
			if err != nil {
				t.Fatalf("EncodeImages: %v", err)
			}
			compare(t, "EncodeImages after a restart", got, wantImg, 0, 0)
			if r := b.Restarts(); r != 1 {
				t.Errorf("Restarts() = %d, want 1", r)
			}
			if on, why := b.OnGPU(); !on {
				t.Errorf("fell back to the CPU after one restart: %s", why)
			}
			if b.proc.cmd.Process.Pid == first {
				t.Error("the runner process is the same after the restart")
			}
			txt, err := b.EncodeTexts(context.Background(), ids)
			if err != nil {
				t.Fatal(err)
			}
			compare(t, "EncodeTexts after a restart", txt, wantTxt, 0, 0)
		})
	}
}

func TestRunnerCancel(t *testing.T) {
	dir, pix, n, _, wantImg, _ := testInputs(t)
	marker := filepath.Join(t.TempDir(), "stalled")
	b, err := StartRunner(context.Background(), dir, runnerOptions(t, "cpu", "GATA_TEST_RUNNER_STALL="+marker))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for {
			if _, err := os.Stat(marker); err == nil {
				cancel()
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	if _, err := b.EncodeImages(ctx, pix, n); !errors.Is(err, context.Canceled) {
		t.Fatalf("EncodeImages(cancelled mid-call) = %v, want context.Canceled", err)
	}
	// The runner got the cancel, gave up the request and serves the next one.
	got, err := b.EncodeImages(context.Background(), pix, n)
	if err != nil {
		t.Fatal(err)
	}
	compare(t, "EncodeImages after a cancel", got, wantImg, 0, 0)
	if r := b.Restarts(); r != 0 {
		t.Errorf("Restarts() = %d after a cancel, want 0", r)
	}
}

func TestRunnerFailuresFallBackToCPU(t *testing.T) {
	dir, pix, n, _, wantImg, _ := testInputs(t)
	usable := func() ([]gpuInfo, error) {
		return []gpuInfo{{Index: 0, UUID: "GPU-test", Name: "Test GPU", Major: 9, Free: 80 << 30, Total: 80 << 30}}, nil
	}
	for _, tt := range []struct {
		name, mode string
		env        []string
		reason     string // in Name
	}{
		{name: "runner_exits_at_start", mode: "exit", reason: "exited before opening the model"},
		{name: "no_gpu_in_runner", mode: "fail", reason: "no GPU in this test runner"},
		{name: "runner_dies_on_every_request", mode: "cpu", env: []string{"GATA_TEST_RUNNER_DIE=1"}, reason: "failed 3 times"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("GATA_GPU", "")
			b, err := open(context.Background(), dir, runnerOptions(t, tt.mode, tt.env...), usable)
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			defer b.Close()
			got, err := b.EncodeImages(context.Background(), pix, n)
			if err != nil {
				t.Fatalf("EncodeImages: %v", err)
			}
			compare(t, "EncodeImages on the fallback", got, wantImg, 0, 0)
			on, why := b.OnGPU()
			if on || !strings.Contains(why, tt.reason) {
				t.Errorf("OnGPU() = %v, %q; want the CPU because %q", on, why, tt.reason)
			}
			if name := b.Name(); !strings.HasPrefix(name, "cpu (") || !strings.Contains(name, "GPU not used: ") {
				t.Errorf("Name() = %q, want the CPU backend and the reason", name)
			}
		})
	}
}

// TestOpenWithoutDriver: on a machine without a usable NVIDIA driver, Open gives the CPU
// backend and names the reason.
func TestOpenWithoutDriver(t *testing.T) {
	t.Setenv("GATA_GPU", "")
	if gpus, err := probeGPUs(); err == nil && len(gpus) > 0 {
		t.Skipf("NVML finds %d GPUs here: the no-driver fallback is tested where there is none", len(gpus))
	}
	dir := dvatest.ClipDir(t)
	b, err := Open(context.Background(), dir, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	on, why := b.OnGPU()
	if on || !strings.Contains(why, "no NVIDIA driver") {
		t.Errorf("OnGPU() = %v, %q; want the CPU because there is no NVIDIA driver", on, why)
	}
	t.Logf("Name() = %q", b.Name())
	if _, err := b.EncodeTexts(context.Background(), [][]int32{append([]int32{49406, 320, 49407}, make([]int32, 74)...)}); err != nil {
		t.Errorf("EncodeTexts on the fallback: %v", err)
	}
}

func TestOpenDisabled(t *testing.T) {
	t.Setenv("GATA_GPU", "off")
	b, err := open(context.Background(), dvatest.ClipDir(t), Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, func() ([]gpuInfo, error) {
		t.Error("NVML asked although GATA_GPU=off")
		return nil, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if on, why := b.OnGPU(); on || why != "GATA_GPU=off" {
		t.Errorf("OnGPU() = %v, %q; want the CPU because GATA_GPU=off", on, why)
	}
}

// compareNormalized compares rows of embeddings after L2 normalisation.
func compareNormalized(t *testing.T, what string, got, want []float32, dim int, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := 0; i < len(got); i += dim {
		g, w := dva.Normalize(got[i:i+dim]), dva.Normalize(want[i:i+dim])
		for j := range g {
			if d := math.Abs(float64(g[j] - w[j])); d > tol || math.IsNaN(d) {
				t.Errorf("%s row %d component %d = %g, want %g (tolerance %g)", what, i/dim, j, g[j], w[j], tol)
				break
			}
		}
	}
}
